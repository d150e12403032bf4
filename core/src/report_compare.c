/* report_compare.c — many runs side by side: groups by (experiment, model) with the mean and
 * sample std of their runs, and paired significance tests between the groups.
 *
 * Pairs are formed per seed: with the same seed and dataset the split is the same, so the
 * two runs predicted the same test rows. That is checked rather than assumed — the rows
 * (by their dataset row index) and their labels must match, else the pair is reported as
 * skipped with the reason.
 *
 * The text table and the HTML page are written in report_compare_page.c.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melforge/report.h"
#include "melforge/rng.h"
#include "report_html.h"

/* ---- loading ------------------------------------------------------------------------------- */

static char *dup_or(const char *s, const char *fallback) { return strdup(s ? s : fallback); }

static mf_status load_entry(const char *dir, mf_report_entry *e) {
  memset(e, 0, sizeof *e);
  json_t *sum;
  mf_status s = mf__load_summary(dir, &sum);
  if (s != MF_OK) return s;
  const json_t *test = json_object_get(sum, "test");
  e->dir = strdup(dir);
  e->experiment = dup_or(json_string_value(json_object_get(sum, "experiment")), "?");
  e->model = dup_or(json_string_value(json_object_get(sum, "model")), "?");
  e->dataset = dup_or(json_string_value(json_object_get(sum, "dataset")), "?");
  e->seed = (uint64_t)json_integer_value(json_object_get(sum, "seed"));
  e->test_accuracy = mf__json_num(test, "accuracy");
  e->test_track_accuracy = mf__json_num(test, "track_accuracy");
  e->test_macro_f1 = mf__json_num(test, "macro_f1");
  e->params = mf__json_num(sum, "params_count");
  e->train_seconds = mf__json_num(sum, "train_seconds");
  e->epochs_run = (int)json_integer_value(json_object_get(sum, "epochs_run"));
  e->best_epoch = (int)json_integer_value(json_object_get(sum, "best_epoch"));
  json_decref(sum);
  if (!e->dir || !e->experiment || !e->model || !e->dataset)
    return mf_set_error(MF_ENOMEM, "out of memory reading %s", dir);
  return MF_OK;
}

static int cmp_entry(const void *pa, const void *pb) {
  const mf_report_entry *a = pa, *b = pb;
  int c = strcmp(a->experiment, b->experiment);
  if (!c) c = strcmp(a->model, b->model);
  if (!c) c = a->seed < b->seed ? -1 : a->seed > b->seed;
  if (!c) c = strcmp(a->dir, b->dir);
  return c;
}

static mf_report_stat stat_of(const mf_comparison *c, const mf_report_group *g, size_t offset) {
  mf_report_stat st = {NAN, NAN, 0};
  double sum = 0;
  for (int i = 0; i < g->n_runs; i++) {
    double v = *(const double *)((const char *)&c->runs[g->runs[i]] + offset);
    if (isfinite(v)) sum += v, st.n++;
  }
  if (st.n == 0) return st;
  st.mean = sum / st.n;
  if (st.n < 2) return st;
  double sq = 0;
  for (int i = 0; i < g->n_runs; i++) {
    double v = *(const double *)((const char *)&c->runs[g->runs[i]] + offset);
    if (isfinite(v)) sq += (v - st.mean) * (v - st.mean);
  }
  st.std = sqrt(sq / (st.n - 1));
  return st;
}

static mf_status make_groups(mf_comparison *c) {
  c->groups = calloc((size_t)c->n_runs, sizeof *c->groups);
  if (!c->groups) return mf_set_error(MF_ENOMEM, "out of memory");
  for (int i = 0; i < c->n_runs; i++) {
    mf_report_entry *e = &c->runs[i];
    int g = 0;
    while (g < c->n_groups &&
           (strcmp(c->groups[g].experiment, e->experiment) || strcmp(c->groups[g].model, e->model)))
      g++;
    mf_report_group *gr = &c->groups[g];
    if (g == c->n_groups) {
      c->n_groups++;
      gr->experiment = strdup(e->experiment);
      gr->model = strdup(e->model);
      gr->runs = malloc(sizeof(int) * (size_t)c->n_runs);
      if (!gr->experiment || !gr->model || !gr->runs)
        return mf_set_error(MF_ENOMEM, "out of memory");
    }
    gr->runs[gr->n_runs++] = i;
    e->group = g;
  }
  /* Labels: the shortest name that still tells the groups apart. */
  int models_unique = 1, experiments_unique = 1;
  for (int a = 0; a < c->n_groups; a++)
    for (int b = a + 1; b < c->n_groups; b++) {
      models_unique &= strcmp(c->groups[a].model, c->groups[b].model) != 0;
      experiments_unique &= strcmp(c->groups[a].experiment, c->groups[b].experiment) != 0;
    }
  for (int g = 0; g < c->n_groups; g++) {
    mf_report_group *gr = &c->groups[g];
    if (models_unique)
      gr->label = strdup(gr->model);
    else if (experiments_unique)
      gr->label = strdup(gr->experiment);
    else if (asprintf(&gr->label, "%s/%s", gr->experiment, gr->model) < 0)
      gr->label = NULL;
    if (!gr->label) return mf_set_error(MF_ENOMEM, "out of memory");
    gr->accuracy = stat_of(c, gr, offsetof(mf_report_entry, test_accuracy));
    gr->track_accuracy = stat_of(c, gr, offsetof(mf_report_entry, test_track_accuracy));
    gr->macro_f1 = stat_of(c, gr, offsetof(mf_report_entry, test_macro_f1));
    gr->params = stat_of(c, gr, offsetof(mf_report_entry, params));
    gr->train_seconds = stat_of(c, gr, offsetof(mf_report_entry, train_seconds));
  }
  return MF_OK;
}

/* test_predictions.csv of one run, sorted by dataset row. */
typedef struct preds {
  int tried;
  char *error; /* why it could not be read */
  int64_t n;
  int64_t *row;
  int32_t *label, *pred;
} preds;

static void preds_free(preds *p) {
  free(p->error);
  free(p->row);
  free(p->label);
  free(p->pred);
}

typedef struct keyed {
  int64_t row;
  int32_t label, pred;
} keyed;

static int cmp_keyed(const void *a, const void *b) {
  int64_t x = ((const keyed *)a)->row, y = ((const keyed *)b)->row;
  return x < y ? -1 : x > y;
}

static void preds_fail(preds *p, const char *fmt, const char *path) {
  if (asprintf(&p->error, fmt, path) < 0) p->error = NULL;
}

static void preds_load(preds *p, const char *dir) {
  p->tried = 1;
  char *path = mf__path_join(dir, "test_predictions.csv");
  char *txt = path ? mf__read_file(path, NULL) : NULL;
  if (!txt) {
    preds_fail(p, "%s could not be read", path ? path : dir);
    free(path);
    return;
  }
  int lines = 0;
  for (char *q = txt; *q; q++) lines += *q == '\n';
  keyed *k = malloc(sizeof(keyed) * (size_t)(lines + 1));
  int col_row = -1, col_label = -1, col_pred = -1, field = 0;
  char *save = NULL, *line = strtok_r(txt, "\n", &save);
  for (char *q = line; q && *q; field++) {
    size_t len = strcspn(q, ",\r");
    if (len == 3 && !strncmp(q, "row", 3)) col_row = field;
    if (len == 5 && !strncmp(q, "label", 5)) col_label = field;
    if (len == 9 && !strncmp(q, "predicted", 9)) col_pred = field;
    q += len;
    if (*q != ',') break;
    q++;
  }
  if (!k || col_row < 0 || col_label < 0 || col_pred < 0) {
    preds_fail(p, k ? "%s lacks a row, label or predicted column" : "out of memory reading %s",
               path);
    goto out;
  }
  int64_t n = 0;
  while ((line = strtok_r(NULL, "\n", &save))) {
    long long v[3] = {LLONG_MIN, LLONG_MIN, LLONG_MIN};
    char *q = line;
    for (field = 0; q; field++) {
      int which = field == col_row ? 0 : field == col_label ? 1 : field == col_pred ? 2 : -1;
      if (which >= 0) {
        char *end;
        long long x = strtoll(q, &end, 10);
        if (end != q) v[which] = x;
      }
      q = strchr(q, ',');
      if (q) q++;
    }
    if (v[0] == LLONG_MIN && !line[strspn(line, " \r")]) continue; /* a blank line */
    if (v[0] == LLONG_MIN || v[1] < INT32_MIN || v[1] > INT32_MAX || v[2] < INT32_MIN ||
        v[2] > INT32_MAX) {
      preds_fail(p, "%s has a line without a row, label and predicted class", path);
      goto out;
    }
    k[n++] = (keyed){v[0], (int32_t)v[1], (int32_t)v[2]};
  }
  qsort(k, (size_t)n, sizeof *k, cmp_keyed);
  p->row = malloc(sizeof(int64_t) * (size_t)(n + 1));
  p->label = malloc(sizeof(int32_t) * (size_t)(n + 1));
  p->pred = malloc(sizeof(int32_t) * (size_t)(n + 1));
  if (!p->row || !p->label || !p->pred) {
    preds_fail(p, "out of memory reading %s", path);
    goto out;
  }
  for (int64_t i = 0; i < n; i++)
    p->row[i] = k[i].row, p->label[i] = k[i].label, p->pred[i] = k[i].pred;
  p->n = n;
out:
  free(k);
  free(txt);
  free(path);
}

/* Pairs group a's and group b's runs of one seed; fills pr->skipped when they cannot be. */
static mf_status compare_pair(const mf_comparison *c, preds *pa, preds *pb, mf_report_pair *pr) {
  const mf_report_entry *ea = &c->runs[pr->run_a], *eb = &c->runs[pr->run_b];
  if (!pa->tried) preds_load(pa, ea->dir);
  if (!pb->tried) preds_load(pb, eb->dir);
  const preds *bad = pa->error ? pa : pb->error ? pb : NULL;
  if (bad) {
    if (asprintf(&pr->skipped, "no test predictions: %s", bad->error) < 0) pr->skipped = NULL;
    return pr->skipped ? MF_OK : mf_set_error(MF_ENOMEM, "out of memory");
  }
  int64_t common = 0;
  for (int64_t i = 0, j = 0; i < pa->n && j < pb->n;) {
    if (pa->row[i] == pb->row[j])
      common++, i++, j++;
    else if (pa->row[i] < pb->row[j])
      i++;
    else
      j++;
  }
  int r;
  if (pa->n == 0 || pb->n == 0) {
    r = asprintf(&pr->skipped, "no test rows");
  } else if (common != pa->n || common != pb->n) {
    r = asprintf(&pr->skipped,
                 "different test rows (%lld and %lld, %lld in common): different splits or "
                 "datasets",
                 (long long)pa->n, (long long)pb->n, (long long)common);
  } else {
    int64_t i = 0;
    while (i < pa->n && pa->label[i] == pb->label[i]) i++;
    if (i < pa->n)
      r = asprintf(&pr->skipped,
                   "row %lld has label %d in one run and %d in the other: different "
                   "datasets",
                   (long long)pa->row[i], pa->label[i], pb->label[i]);
    else
      r = 0;
  }
  if (r < 0) return mf_set_error(MF_ENOMEM, "out of memory");
  if (pr->skipped) return MF_OK;

  pr->n = pa->n;
  int64_t ra = 0, rb = 0;
  for (int64_t i = 0; i < pa->n; i++)
    ra += pa->pred[i] == pa->label[i], rb += pb->pred[i] == pa->label[i];
  pr->accuracy_a = (double)ra / (double)pa->n;
  pr->accuracy_b = (double)rb / (double)pa->n;
  mf_status s = mf_mcnemar_test(pa->pred, pb->pred, pa->label, pa->n, &pr->mcnemar);
  mf_rng rng = mf_rng_stream(pr->seed, MF_REPORT_BOOTSTRAP_STREAM);
  if (s == MF_OK)
    s = mf_bootstrap_accuracy_diff(pa->pred, pb->pred, pa->label, pa->n,
                                   MF_REPORT_BOOTSTRAP_RESAMPLES, MF_REPORT_BOOTSTRAP_ALPHA, &rng,
                                   &pr->bootstrap);
  if (s != MF_OK) return s;
  if (strcmp(ea->dataset, eb->dataset) &&
      asprintf(&pr->note, "dataset files differ (%s, %s); test rows and labels match", ea->dataset,
               eb->dataset) < 0)
    return mf_set_error(MF_ENOMEM, "out of memory");
  return MF_OK;
}

static mf_status make_pairs(mf_comparison *c) {
  const int G = c->n_groups;
  preds *p = calloc((size_t)c->n_runs + 1, sizeof *p);
  int cap = 16;
  c->pairs = malloc(sizeof *c->pairs * (size_t)cap);
  if (!p || !c->pairs) {
    free(p);
    return mf_set_error(MF_ENOMEM, "out of memory");
  }
  mf_status s = MF_OK;
  for (int a = 0; a < G && s == MF_OK; a++)
    for (int b = a + 1; b < G && s == MF_OK; b++) {
      const mf_report_group *ga = &c->groups[a], *gb = &c->groups[b];
      for (int i = 0; i < ga->n_runs && s == MF_OK; i++) {
        const int ra = ga->runs[i];
        /* The first run of each seed only (runs are sorted by seed within a group). */
        if (i > 0 && c->runs[ga->runs[i - 1]].seed == c->runs[ra].seed) continue;
        int rb = -1;
        for (int j = 0; j < gb->n_runs && rb < 0; j++)
          if (c->runs[gb->runs[j]].seed == c->runs[ra].seed) rb = gb->runs[j];
        if (rb < 0) continue;
        if (c->n_pairs == cap) {
          mf_report_pair *np = realloc(c->pairs, sizeof *np * (size_t)(cap *= 2));
          if (!np) {
            s = mf_set_error(MF_ENOMEM, "out of memory");
            break;
          }
          c->pairs = np;
        }
        mf_report_pair *pr = &c->pairs[c->n_pairs++];
        memset(pr, 0, sizeof *pr);
        pr->a = a, pr->b = b, pr->run_a = ra, pr->run_b = rb, pr->seed = c->runs[ra].seed;
        s = compare_pair(c, &p[ra], &p[rb], pr);
      }
    }
  for (int i = 0; i < c->n_runs; i++) preds_free(&p[i]);
  free(p);
  return s;
}

mf_status mf_comparison_load(char *const *run_dirs, int n, mf_comparison *out) {
  if (!out) return mf_set_error(MF_EINVAL, "mf_comparison_load: no output given");
  memset(out, 0, sizeof *out);
  if (!run_dirs || n < 1)
    return mf_set_error(MF_EINVAL, "mf_comparison_load: no run folders given");
  out->runs = calloc((size_t)n, sizeof *out->runs);
  if (!out->runs) return mf_set_error(MF_ENOMEM, "out of memory");
  mf_status s = MF_OK;
  for (int i = 0; i < n && s == MF_OK; i++) {
    s = load_entry(run_dirs[i], &out->runs[i]);
    out->n_runs = i + 1;
  }
  if (s == MF_OK) {
    qsort(out->runs, (size_t)n, sizeof *out->runs, cmp_entry);
    s = make_groups(out);
  }
  if (s == MF_OK) s = make_pairs(out);
  if (s != MF_OK) mf_comparison_free(out);
  return s;
}

void mf_comparison_free(mf_comparison *c) {
  if (!c) return;
  for (int i = 0; i < c->n_runs; i++) {
    free(c->runs[i].dir);
    free(c->runs[i].experiment);
    free(c->runs[i].model);
    free(c->runs[i].dataset);
  }
  for (int g = 0; g < c->n_groups; g++) {
    free(c->groups[g].experiment);
    free(c->groups[g].model);
    free(c->groups[g].label);
    free(c->groups[g].runs);
  }
  for (int p = 0; p < c->n_pairs; p++) {
    free(c->pairs[p].skipped);
    free(c->pairs[p].note);
  }
  free(c->runs);
  free(c->groups);
  free(c->pairs);
  memset(c, 0, sizeof *c);
}
