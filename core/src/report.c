/* report.c — a run folder's report.html with its curves.png and confusion.png, and the
 * search for run folders. The comparison of many runs is in report_compare.c. */
#define _GNU_SOURCE
#include "melforge/report.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "melforge/plot.h"
#include "mf_config.h"
#include "report_html.h"

#define TRAIN_COLOR 0x0072B2u /* palette 0 */
#define VAL_COLOR 0xD55E00u   /* palette 1 */
#define MARK_COLOR 0x666666u

/* Seeds are unsigned 64-bit; JSON integers are signed: read the bits back. */
static unsigned long long seed_of(const json_t *sum) {
  return (unsigned long long)json_integer_value(json_object_get(sum, "seed"));
}

static const char *jstr(const json_t *o, const char *key, const char *fallback) {
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : fallback;
}

/* ---- plots -------------------------------------------------------------------------------- */

static mf_status plot_curves(const json_t *sum, const mf__history *h, mf_png *out) {
  char title[512], subtitle[256], best[64];
  snprintf(title, sizeof title, "%s \xc2\xb7 %s \xc2\xb7 seed %llu", jstr(sum, "experiment", "?"),
           jstr(sum, "model", "?"), seed_of(sum));
  const int best_epoch = (int)json_integer_value(json_object_get(sum, "best_epoch"));
  const int stopped = json_is_true(json_object_get(sum, "stopped_early"));
  if (best_epoch > 0)
    snprintf(subtitle, sizeof subtitle, "%d epochs%s; best epoch %d by %s", h->n,
             stopped ? " (stopped early)" : "", best_epoch, jstr(sum, "monitor", "val_loss"));
  else
    snprintf(subtitle, sizeof subtitle, "%d epochs%s", h->n, stopped ? " (stopped early)" : "");
  snprintf(best, sizeof best, "best epoch %d", best_epoch);
  const int markers = h->n <= 40;
  const double *ep = h->col[MF__H_EPOCH];
  mf_plot_line loss[2] = {
      {ep, h->col[MF__H_TRAIN_LOSS], h->n, TRAIN_COLOR, 2.2, 0, markers},
      {ep, h->col[MF__H_VAL_LOSS], h->n, VAL_COLOR, 2.2, 0, markers},
  };
  mf_plot_line acc[2] = {
      {ep, h->col[MF__H_TRAIN_ACCURACY], h->n, TRAIN_COLOR, 2.2, 0, markers},
      {ep, h->col[MF__H_VAL_ACCURACY], h->n, VAL_COLOR, 2.2, 0, markers},
  };
  const double mark = best_epoch > 0 ? best_epoch : NAN;
  mf_plot_panel panels[2] = {
      {"Loss", "epoch", "cross-entropy loss", loss, 2, 1, mark, best},
      {"Accuracy", "epoch", "accuracy (segments)", acc, 2, 1, mark, best},
  };
  /* Without a validation set only the training lines are drawn and named. */
  int has_val = 0;
  for (int i = 0; i < h->n; i++)
    has_val |= isfinite(h->col[MF__H_VAL_LOSS][i]) || isfinite(h->col[MF__H_VAL_ACCURACY][i]);
  panels[0].n_lines = panels[1].n_lines = has_val ? 2 : 1;
  mf_plot_legend legend[3] = {{"train", TRAIN_COLOR, 0}, {"validation", VAL_COLOR, 0}};
  int n_legend = has_val ? 2 : 1;
  if (best_epoch > 0) legend[n_legend++] = (mf_plot_legend){"best epoch", MARK_COLOR, 1};
  mf_plot_figure fig = {1200, 480, title, subtitle, panels, 2, legend, n_legend};
  return mf_plot_lines(&fig, out, NULL);
}

/* The test confusion matrix of the summary; MF_ENOTFOUND when the run had no test set. */
static mf_status plot_confusion(const json_t *sum, mf_png *out) {
  const json_t *test = json_object_get(sum, "test");
  const json_t *conf = json_object_get(test, "confusion"), *cls = json_object_get(sum, "classes");
  const int C = (int)json_array_size(cls);
  if (!json_is_array(conf) || C < 1) return MF_ENOTFOUND;
  if ((int)json_array_size(conf) != C)
    return mf_set_error(MF_EFORMAT, "summary.json: test.confusion has %d rows for %d classes",
                        (int)json_array_size(conf), C);
  int64_t *counts = malloc(sizeof(int64_t) * (size_t)C * (size_t)C);
  char **names = malloc(sizeof(char *) * (size_t)C);
  if (!counts || !names) {
    free(counts), free(names);
    return mf_set_error(MF_ENOMEM, "out of memory for a %d-class confusion matrix", C);
  }
  int64_t total = 0;
  mf_status s = MF_OK;
  for (int r = 0; r < C && s == MF_OK; r++) {
    const json_t *row = json_array_get(conf, (size_t)r);
    names[r] = (char *)json_string_value(json_array_get(cls, (size_t)r));
    if ((int)json_array_size(row) != C) {
      s = mf_set_error(MF_EFORMAT,
                       "summary.json: test.confusion row %d has %d values for %d classes", r,
                       (int)json_array_size(row), C);
      break;
    }
    for (int c = 0; c < C; c++) {
      counts[(int64_t)r * C + c] = json_integer_value(json_array_get(row, (size_t)c));
      total += counts[(int64_t)r * C + c];
    }
  }
  if (s == MF_OK) {
    char title[128], subtitle[512];
    snprintf(title, sizeof title, "Test confusion matrix \xe2\x80\x94 accuracy %.3f",
             mf__json_num(test, "accuracy"));
    snprintf(subtitle, sizeof subtitle, "%s \xc2\xb7 %s \xc2\xb7 seed %llu \xc2\xb7 %lld segments",
             jstr(sum, "experiment", "?"), jstr(sum, "model", "?"), seed_of(sum), (long long)total);
    s = mf_plot_confusion(counts, C, names, title, subtitle, out, NULL);
  }
  free(counts);
  free(names);
  return s;
}

/* ---- html ---------------------------------------------------------------------------------- */

static void num_cell(mf__text *t, double v, int decimals) {
  char b[64];
  mf__format_num(v, decimals, b, sizeof b);
  mf__text_addf(t, "<td class=\"n\">%s</td>", b);
}

static void card(mf__text *t, const char *label, double v) {
  char b[64];
  mf__format_num(v, 3, b, sizeof b);
  mf__text_addf(t, "<div class=\"card\"><div class=\"v\">%s</div><div class=\"k\">", b);
  mf__text_html(t, label);
  mf__text_add(t, "</div></div>\n");
}

static void kv_begin(mf__text *t, const char *key) {
  mf__text_add(t, "<tr><td class=\"k\">");
  mf__text_html(t, key);
  mf__text_add(t, "</td><td class=\"path\">");
}

static void kv(mf__text *t, const char *key, const char *value) {
  kv_begin(t, key);
  mf__text_html(t, value);
  mf__text_add(t, "</td></tr>\n");
}

/* "hidden = [64, 32], dropout = [0.2]" from the model's parameter object. */
static void model_params(mf__text *t, const json_t *params) {
  const char *key;
  json_t *v;
  int first = 1;
  json_object_foreach((json_t *)params, key, v) {
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(6));
    mf__text_add(t, first ? "" : ", ");
    mf__text_html(t, key);
    mf__text_add(t, " = ");
    mf__text_html(t, s ? s : "?");
    free(s);
    first = 0;
  }
  if (first) mf__text_add(t, "(defaults)");
}

static void summary_table(mf__text *t, const json_t *sum, const char *run_dir) {
  char b[512];
  mf__text_add(t, "<table class=\"kv\">\n<tbody>\n");
  kv(t, "experiment", jstr(sum, "experiment", "?"));
  kv(t, "model", jstr(sum, "model", "?"));
  kv_begin(t, "model parameters");
  mf__text_add(t, "<code>");
  model_params(t, json_object_get(sum, "model_params"));
  mf__text_add(t, "</code></td></tr>\n");
  mf__format_count(mf__json_num(sum, "params_count"), b, sizeof b);
  kv(t, "trainable parameters", b);
  snprintf(b, sizeof b, "%llu", seed_of(sum));
  kv(t, "seed", b);
  kv(t, "dataset", jstr(sum, "dataset", "?"));
  kv_begin(t, "classes");
  const json_t *cls = json_object_get(sum, "classes");
  mf__text_addf(t, "%d: ", (int)json_array_size(cls));
  for (size_t i = 0; i < json_array_size(cls); i++) {
    if (i) mf__text_add(t, ", ");
    mf__text_html(t, json_string_value(json_array_get(cls, i)));
  }
  mf__text_add(t, "</td></tr>\n");
  const json_t *split = json_object_get(sum, "split");
  kv_begin(t, "split (segments / tracks)");
  static const char *const parts[3] = {"train", "val", "test"};
  for (int k = 0; k < 3; k++) {
    const json_t *p = json_object_get(split, parts[k]);
    mf__text_addf(t, "%s%s %lld / %lld", k ? " &middot; " : "", parts[k],
                  (long long)json_integer_value(json_object_get(p, "segments")),
                  (long long)json_integer_value(json_object_get(p, "tracks")));
  }
  if (json_is_false(json_object_get(split, "grouped_by_track")))
    mf__text_add(t,
                 " <span class=\"sig\">(not grouped by track: segments of one track are in "
                 "several sets)</span>");
  mf__text_add(t, "</td></tr>\n");
  snprintf(b, sizeof b, "%lld%s", (long long)json_integer_value(json_object_get(sum, "epochs_run")),
           json_is_true(json_object_get(sum, "stopped_early")) ? " (stopped early)" : "");
  kv(t, "epochs", b);
  const long long best = json_integer_value(json_object_get(sum, "best_epoch"));
  if (best > 0)
    snprintf(b, sizeof b, "%lld (by %s)", best, jstr(sum, "monitor", "?"));
  else
    snprintf(b, sizeof b, "none");
  kv(t, "best epoch", b);
  kv(t, "evaluated weights", jstr(sum, "evaluated_weights", "?"));
  mf__format_seconds(mf__json_num(sum, "train_seconds"), b, sizeof b);
  const long long threads = json_integer_value(json_object_get(sum, "threads"));
  if (threads > 0) snprintf(b + strlen(b), sizeof b - strlen(b), " on %lld threads", threads);
  kv(t, "training time", b);
  kv(t, "run folder", run_dir);
  mf__text_add(t, "</tbody>\n</table>\n");
}

static void metrics_table(mf__text *t, const json_t *test, const json_t *val) {
  char topk[64];
  long long k = json_integer_value(json_object_get(test ? test : val, "top_k"));
  snprintf(topk, sizeof topk, "top-%lld accuracy", k > 0 ? k : 3);
  static const struct {
    const char *key, *label;
    int decimals;
  } rows[] = {{"accuracy", "accuracy (segments)", 3},
              {"track_accuracy", "track accuracy", 3},
              {"macro_f1", "macro F1", 3},
              {"weighted_f1", "weighted F1", 3},
              {"macro_precision", "macro precision", 3},
              {"macro_recall", "macro recall", 3},
              {"top_k_accuracy", NULL, 3},
              {"loss", "loss", 4},
              {"n", "segments", 0},
              {"n_tracks", "tracks", 0}};
  mf__text_add(t,
               "<table>\n<thead><tr><th>metric</th><th class=\"n\">test</th>"
               "<th class=\"n\">validation</th></tr></thead>\n<tbody>\n");
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    mf__text_add(t, "<tr><td class=\"k\">");
    mf__text_html(t, rows[i].label ? rows[i].label : topk);
    mf__text_add(t, "</td>");
    num_cell(t, mf__json_num(test, rows[i].key), rows[i].decimals);
    num_cell(t, mf__json_num(val, rows[i].key), rows[i].decimals);
    mf__text_add(t, "</tr>\n");
  }
  mf__text_add(t, "</tbody>\n</table>\n");
}

/* scikit-learn's classification_report as a table. */
static void class_report(mf__text *t, const json_t *m, const json_t *classes) {
  mf__text_add(t,
               "<table>\n<thead><tr><th>class</th><th class=\"n\">precision</th>"
               "<th class=\"n\">recall</th><th class=\"n\">F1</th><th class=\"n\">support</th>"
               "</tr></thead>\n<tbody>\n");
  const json_t *per = json_object_get(m, "per_class");
  long long total = 0;
  for (size_t i = 0; i < json_array_size(classes); i++) {
    const char *name = json_string_value(json_array_get(classes, i));
    const json_t *c = json_object_get(per, name ? name : "");
    mf__text_add(t, "<tr><td>");
    mf__text_html(t, name);
    mf__text_add(t, "</td>");
    num_cell(t, mf__json_num(c, "precision"), 3);
    num_cell(t, mf__json_num(c, "recall"), 3);
    num_cell(t, mf__json_num(c, "f1"), 3);
    long long sup = json_integer_value(json_object_get(c, "support"));
    total += sup;
    mf__text_addf(t, "<td class=\"n\">%lld</td></tr>\n", sup);
  }
  mf__text_add(t, "<tr class=\"avg first\"><td>accuracy</td><td></td><td></td>");
  num_cell(t, mf__json_num(m, "accuracy"), 3);
  mf__text_addf(t, "<td class=\"n\">%lld</td></tr>\n", total);
  static const char *const avg[2] = {"macro", "weighted"};
  for (int a = 0; a < 2; a++) {
    char key[32];
    mf__text_addf(t, "<tr class=\"avg\"><td>%s avg</td>", avg[a]);
    snprintf(key, sizeof key, "%s_precision", avg[a]);
    num_cell(t, mf__json_num(m, key), 3);
    snprintf(key, sizeof key, "%s_recall", avg[a]);
    num_cell(t, mf__json_num(m, key), 3);
    snprintf(key, sizeof key, "%s_f1", avg[a]);
    num_cell(t, mf__json_num(m, key), 3);
    mf__text_addf(t, "<td class=\"n\">%lld</td></tr>\n", total);
  }
  mf__text_add(t, "</tbody>\n</table>\n");
}

static void build_html(mf__text *t, const json_t *sum, const char *run_dir, const mf_png *curves,
                       const char *curves_note, const mf_png *confusion, const char *config) {
  char title[512];
  snprintf(title, sizeof title, "%s \xc2\xb7 %s \xc2\xb7 seed %llu", jstr(sum, "experiment", "?"),
           jstr(sum, "model", "?"), seed_of(sum));
  const json_t *test = json_object_get(sum, "test"), *val = json_object_get(sum, "val");
  const json_t *classes = json_object_get(sum, "classes");
  mf__html_begin(t, title);
  mf__text_add(t, "<h1>");
  mf__text_html(t, title);
  mf__text_add(t, "</h1>\n<p class=\"sub\">run report &middot; dataset ");
  mf__text_html(t, jstr(sum, "dataset", "?"));
  mf__text_addf(t, " &middot; %d classes</p>\n", (int)json_array_size(classes));

  const json_t *head = json_is_object(test) ? test : val;
  if (json_is_object(head)) {
    char topk[64];
    snprintf(topk, sizeof topk, "%s top-%lld accuracy", head == test ? "test" : "validation",
             (long long)json_integer_value(json_object_get(head, "top_k")));
    const char *set = head == test ? "test" : "validation";
    char label[64];
    mf__text_add(t, "<div class=\"cards\">\n");
    snprintf(label, sizeof label, "%s accuracy (segments)", set);
    card(t, label, mf__json_num(head, "accuracy"));
    snprintf(label, sizeof label, "%s track accuracy", set);
    card(t, label, mf__json_num(head, "track_accuracy"));
    snprintf(label, sizeof label, "%s macro F1", set);
    card(t, label, mf__json_num(head, "macro_f1"));
    card(t, topk, mf__json_num(head, "top_k_accuracy"));
    mf__text_add(t, "</div>\n");
  }

  mf__text_add(t, "<h2>Summary</h2>\n<div class=\"cols\">\n<div>\n");
  summary_table(t, sum, run_dir);
  mf__text_add(t, "</div>\n<div>\n");
  metrics_table(t, json_is_object(test) ? test : NULL, json_is_object(val) ? val : NULL);
  mf__text_add(t, "</div>\n</div>\n");

  mf__text_add(t, "<h2>Training curves</h2>\n");
  if (curves && curves->data) {
    mf__text_add(t, "<figure>");
    mf__text_img(t, curves, "loss and accuracy per epoch, train and validation");
    mf__text_add(t,
                 "<figcaption>Training values are averages over each epoch's batches (with "
                 "dropout and augmentation active); validation values are computed after the "
                 "epoch.</figcaption></figure>\n");
  } else {
    mf__text_add(t, "<p class=\"note\">No curves: ");
    mf__text_html(t, curves_note);
    mf__text_add(t, "</p>\n");
  }

  if (json_is_object(test)) {
    mf__text_addf(t, "<h2>Test set (%s weights)</h2>\n<div class=\"cols\">\n<div>\n",
                  jstr(sum, "evaluated_weights", "final"));
    mf__text_add(t, "<h3>Classification report</h3>\n");
    class_report(t, test, classes);
    mf__text_add(t, "</div>\n");
    if (confusion && confusion->data) {
      mf__text_add(t, "<figure>");
      mf__text_img(t, confusion, "confusion matrix of the test set");
      mf__text_add(t,
                   "<figcaption>Rows: true class; columns: predicted class. Each cell holds its "
                   "count; its colour is the share of the row.</figcaption></figure>\n");
    }
    mf__text_add(t, "</div>\n");
  } else {
    mf__text_add(t, "<h2>Test set</h2>\n<p class=\"note\">This run had no test set.</p>\n");
  }
  if (json_is_object(val)) {
    mf__text_add(t,
                 "<h2>Validation set</h2>\n<details><summary>classification report of the "
                 "validation set</summary>\n");
    class_report(t, val, classes);
    mf__text_add(t, "</details>\n");
  }

  mf__text_add(t,
               "<h2>Configuration</h2>\n<details><summary>resolved configuration "
               "(config.json)</summary>\n<pre>");
  mf__text_html(t, config ? config : "config.json was not found in the run folder.");
  mf__text_add(t, "</pre>\n</details>\n");
  mf__text_addf(t,
                "<footer>melforge %s &middot; written from summary.json, metrics.csv and "
                "config.json of ",
                MF_VERSION_STRING);
  mf__text_html(t, run_dir);
  mf__text_add(t, "</footer>\n");
  mf__html_end(t);
}

mf_status mf_report_run(const char *run_dir, const char *html_path) {
  if (!run_dir) return mf_set_error(MF_EINVAL, "mf_report_run: no run folder given");
  json_t *sum;
  mf_status s = mf__load_summary(run_dir, &sum);
  if (s != MF_OK) return s;
  mf_png curves = {0}, confusion = {0};
  char *config = NULL, *path = NULL, *own_html = NULL;
  char note[512] = "";
  mf__history h;
  mf_status hs = mf__read_history(run_dir, &h);
  if (hs == MF_OK && h.n > 0) {
    s = plot_curves(sum, &h, &curves);
    mf__history_free(&h);
    if (s != MF_OK) goto out;
    path = mf__path_join(run_dir, "curves.png");
    if ((s = mf_png_write(&curves, path)) != MF_OK) goto out;
    free(path), path = NULL;
  } else {
    /* A report without curves still beats none: say why they are missing. */
    snprintf(note, sizeof note, "%s", hs != MF_OK ? mf_error() : "metrics.csv holds no epochs");
    if (hs == MF_OK) mf__history_free(&h);
  }
  s = plot_confusion(sum, &confusion);
  if (s == MF_OK) {
    path = mf__path_join(run_dir, "confusion.png");
    if ((s = mf_png_write(&confusion, path)) != MF_OK) goto out;
    free(path), path = NULL;
  } else if (s != MF_ENOTFOUND) {
    goto out;
  }
  path = mf__path_join(run_dir, "config.json");
  config = path ? mf__read_file(path, NULL) : NULL;
  free(path), path = NULL;
  mf__text t = {0};
  build_html(&t, sum, run_dir, &curves, note, &confusion, config);
  if (!html_path) html_path = own_html = mf__path_join(run_dir, "report.html");
  s = mf__write_text(html_path, &t);
  free(t.p);
out:
  free(path);
  free(own_html);
  free(config);
  mf_png_free(&curves);
  mf_png_free(&confusion);
  json_decref(sum);
  return s;
}

/* ---- finding runs --------------------------------------------------------------------------- */

typedef struct dir_list {
  char **v;
  int n, cap;
} dir_list;

static int is_run(const char *dir) {
  char *p = mf__path_join(dir, "summary.json");
  struct stat st;
  int yes = p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
  free(p);
  return yes;
}

static mf_status walk(const char *dir, int depth, dir_list *out) {
  if (is_run(dir)) {
    if (out->n == out->cap) {
      int cap = out->cap ? out->cap * 2 : 16;
      char **v = realloc(out->v, sizeof(char *) * (size_t)cap);
      if (!v) return mf_set_error(MF_ENOMEM, "out of memory listing runs");
      out->v = v, out->cap = cap;
    }
    if (!(out->v[out->n] = strdup(dir))) return mf_set_error(MF_ENOMEM, "out of memory");
    out->n++;
    return MF_OK; /* runs do not nest */
  }
  /* Deep enough for runs/<experiment>/<seed> under a few levels of folders; also stops
   * symbolic-link cycles. */
  if (depth > 8) return MF_OK;
  DIR *d = opendir(dir);
  if (!d) {
    if (depth == 0)
      return mf_set_error(errno == ENOENT ? MF_ENOTFOUND : MF_EIO, "cannot open folder %s: %s", dir,
                          strerror(errno));
    return MF_OK; /* an unreadable sub-folder holds no runs we could report */
  }
  mf_status s = MF_OK;
  struct dirent *e;
  while (s == MF_OK && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char *sub = mf__path_join(dir, e->d_name);
    if (!sub) {
      s = mf_set_error(MF_ENOMEM, "out of memory");
      break;
    }
    struct stat st;
    if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode)) s = walk(sub, depth + 1, out);
    free(sub);
  }
  closedir(d);
  return s;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

mf_status mf_report_find_runs(const char *root, char ***dirs, int *n) {
  *dirs = NULL, *n = 0;
  if (!root || !*root) return mf_set_error(MF_EINVAL, "mf_report_find_runs: no folder given");
  struct stat st;
  if (stat(root, &st) != 0) return mf_set_error(MF_ENOTFOUND, "%s: %s", root, strerror(errno));
  if (!S_ISDIR(st.st_mode))
    return mf_set_error(MF_EINVAL, "%s is not a folder (give a run folder or a folder of runs)",
                        root);
  /* Without the trailing slash, so paths print and join cleanly. */
  char *clean = strdup(root);
  if (!clean) return mf_set_error(MF_ENOMEM, "out of memory");
  for (size_t len = strlen(clean); len > 1 && clean[len - 1] == '/';) clean[--len] = '\0';
  dir_list l = {0};
  mf_status s = walk(clean, 0, &l);
  free(clean);
  if (s != MF_OK) {
    mf_report_free_dirs(l.v, l.n);
    return s;
  }
  if (l.n > 1) qsort(l.v, (size_t)l.n, sizeof(char *), cmp_str);
  *dirs = l.v, *n = l.n;
  return MF_OK;
}

void mf_report_free_dirs(char **dirs, int n) {
  for (int i = 0; i < n; i++) free(dirs[i]);
  free(dirs);
}
