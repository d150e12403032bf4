/* report_compare_page.c — a comparison (report_compare.c) as text and as an HTML page with
 * the validation curves of every run overlaid. */
#define _GNU_SOURCE
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "melforge/plot.h"
#include "melforge/report.h"
#include "mf_config.h"
#include "report_html.h"

/* ---- formatting ---------------------------------------------------------------------------- */

#define PM "\xc2\xb1"       /* ± */
#define DASH "\xe2\x80\x93" /* – */

/* "0.812 ± 0.013"; the mean alone for one run. */
static void fmt_stat(const mf_report_stat *s, int decimals, char *buf, size_t size) {
  if (s->n == 0)
    snprintf(buf, size, DASH);
  else if (s->n == 1)
    snprintf(buf, size, "%.*f", decimals, s->mean);
  else
    snprintf(buf, size, "%.*f " PM " %.*f", decimals, s->mean, decimals, s->std);
}

static void fmt_count_stat(const mf_report_stat *s, char *buf, size_t size) {
  mf__format_count(s->mean, buf, size);
  if (s->n > 1 && s->std > 0) {
    size_t k = strlen(buf);
    snprintf(buf + k, size - k, " " PM " ");
    k = strlen(buf);
    mf__format_count(s->std, buf + k, size - k);
  }
}

/* "28.0 ± 0.9 s": the spread in the mean's unit, so the two read as one quantity. */
static void fmt_time_stat(const mf_report_stat *s, char *buf, size_t size) {
  if (s->n < 2 || !isfinite(s->mean) || !isfinite(s->std) || s->mean < 0) {
    mf__format_seconds(s->mean, buf, size);
    return;
  }
  if (s->mean < 1)
    snprintf(buf, size, "%.0f " PM " %.0f ms", s->mean * 1e3, s->std * 1e3);
  else if (s->mean < 60)
    snprintf(buf, size, "%.1f " PM " %.1f s", s->mean, s->std);
  else if (s->mean < 3600)
    snprintf(buf, size, "%.1f " PM " %.1f min", s->mean / 60, s->std / 60);
  else
    snprintf(buf, size, "%.2f " PM " %.2f h", s->mean / 3600, s->std / 3600);
}

static void fmt_seeds(const mf_comparison *c, const mf_report_group *g, char *buf, size_t size) {
  size_t k = 0;
  buf[0] = '\0';
  for (int i = 0; i < g->n_runs && k + 24 < size; i++)
    k += (size_t)snprintf(buf + k, size - k, "%s%llu", i ? ", " : "",
                          (unsigned long long)c->runs[g->runs[i]].seed);
}

static void fmt_p(double p, char *buf, size_t size) {
  if (p < 0.001)
    snprintf(buf, size, "< 0.001");
  else
    snprintf(buf, size, "%.3f", p);
}

/* ---- text ---------------------------------------------------------------------------------- */

#define TEXT_COLS 9

char *mf_comparison_text(const mf_comparison *c) {
  if (!c) return NULL;
  mf__text t = {0};
  /* Cells first, then columns as wide as their widest cell. */
  const int rows = c->n_groups + 1;
  char(*cell)[TEXT_COLS][96] = calloc((size_t)rows, sizeof *cell);
  if (!cell) return NULL;
  static const char *const head[TEXT_COLS] = {"experiment",    "model",          "runs",
                                              "test accuracy", "track accuracy", "macro F1",
                                              "parameters",    "train time",     "seeds"};
  for (int k = 0; k < TEXT_COLS; k++) snprintf(cell[0][k], 96, "%s", head[k]);
  for (int g = 0; g < c->n_groups; g++) {
    const mf_report_group *gr = &c->groups[g];
    char(*r)[96] = cell[g + 1];
    snprintf(r[0], 96, "%s", gr->experiment);
    snprintf(r[1], 96, "%s", gr->model);
    snprintf(r[2], 96, "%d", gr->n_runs);
    fmt_stat(&gr->accuracy, 3, r[3], 96);
    fmt_stat(&gr->track_accuracy, 3, r[4], 96);
    fmt_stat(&gr->macro_f1, 3, r[5], 96);
    fmt_count_stat(&gr->params, r[6], 96);
    fmt_time_stat(&gr->train_seconds, r[7], 96);
    fmt_seeds(c, gr, r[8], 96);
  }
  int width[TEXT_COLS] = {0};
  for (int i = 0; i < rows; i++)
    for (int k = 0; k < TEXT_COLS; k++) {
      int w = 0;
      for (const unsigned char *q = (const unsigned char *)cell[i][k]; *q; q++)
        w += (*q & 0xC0) != 0x80;
      if (w > width[k]) width[k] = w;
    }
  mf__text_addf(&t, "%d runs, %d %s; test set, mean " PM " sample std over runs\n", c->n_runs,
                c->n_groups, c->n_groups == 1 ? "model" : "models");
  for (int i = 0; i < rows; i++) {
    mf__text_add(&t, "  ");
    for (int k = 0; k < TEXT_COLS; k++) {
      mf__text_pad(&t, cell[i][k], k == TEXT_COLS - 1 ? 0 : width[k], k >= 2 && k <= 7 && i > 0);
      if (k < TEXT_COLS - 1) mf__text_add(&t, "   ");
    }
    mf__text_add(&t, "\n");
  }
  free(cell);

  if (c->n_pairs) {
    mf__text_addf(&t,
                  "\npaired tests on the same test rows: accuracy difference A - B with a "
                  "bootstrap %.0f%% interval\n(%d resamples); McNemar's test on b (only A "
                  "right) and c (only B right)\n",
                  100 * (1 - MF_REPORT_BOOTSTRAP_ALPHA), MF_REPORT_BOOTSTRAP_RESAMPLES);
    int wa = 1, wb = 1;
    for (int p = 0; p < c->n_pairs; p++) {
      int la = (int)strlen(c->groups[c->pairs[p].a].label),
          lb = (int)strlen(c->groups[c->pairs[p].b].label);
      if (la > wa) wa = la;
      if (lb > wb) wb = lb;
    }
    mf__text_addf(&t, "  %-*s   %-*s   %6s   %6s   %6s   %6s   %7s   %-18s   %5s   %5s   %s\n", wa,
                  "A", wb, "B", "seed", "rows", "acc A", "acc B", "A - B", "95% interval", "b", "c",
                  "p");
    for (int p = 0; p < c->n_pairs; p++) {
      const mf_report_pair *pr = &c->pairs[p];
      mf__text_addf(&t, "  %-*s   %-*s   %6llu   ", wa, c->groups[pr->a].label, wb,
                    c->groups[pr->b].label, (unsigned long long)pr->seed);
      if (pr->skipped) {
        mf__text_addf(&t, "not compared: %s\n", pr->skipped);
        continue;
      }
      char ci[64], pv[32];
      snprintf(ci, sizeof ci, "[%+.3f, %+.3f]", pr->bootstrap.lo, pr->bootstrap.hi);
      fmt_p(pr->mcnemar.p_value, pv, sizeof pv);
      mf__text_addf(&t, "%6lld   %6.3f   %6.3f   %+7.3f   %-18s   %5lld   %5lld   %s%s\n",
                    (long long)pr->n, pr->accuracy_a, pr->accuracy_b, pr->bootstrap.diff, ci,
                    (long long)pr->mcnemar.b, (long long)pr->mcnemar.c, pv,
                    pr->mcnemar.exact ? " (exact)" : "");
    }
  }
  if (t.oom) {
    free(t.p);
    return NULL;
  }
  return t.p;
}

/* ---- html ---------------------------------------------------------------------------------- */

static mf_status plot_comparison(const mf_comparison *c, mf_png *out, int *drawn) {
  *drawn = 0;
  mf__history *h = calloc((size_t)c->n_runs, sizeof *h);
  mf_plot_line *acc = calloc((size_t)c->n_runs, sizeof *acc);
  mf_plot_line *loss = calloc((size_t)c->n_runs, sizeof *loss);
  mf_plot_legend *legend = calloc((size_t)c->n_groups, sizeof *legend);
  char **labels = calloc((size_t)c->n_groups, sizeof *labels);
  mf_status s = MF_OK;
  if (!h || !acc || !loss || !legend || !labels) {
    s = mf_set_error(MF_ENOMEM, "out of memory");
    goto out;
  }
  int n = 0;
  for (int i = 0; i < c->n_runs; i++) {
    if (mf__read_history(c->runs[i].dir, &h[i]) != MF_OK || h[i].n == 0) continue;
    const int g = c->runs[i].group;
    /* Dots only while there are few epochs: on long runs they clutter the overlay. */
    const mf_plot_line base = {h[i].col[MF__H_EPOCH], NULL, h[i].n,
                               mf_plot_color(g),      1.6,  (g / MF_PLOT_PALETTE_SIZE) % 2,
                               h[i].n <= 15};
    acc[n] = loss[n] = base;
    acc[n].y = h[i].col[MF__H_VAL_ACCURACY];
    loss[n].y = h[i].col[MF__H_VAL_LOSS];
    n++;
  }
  mf_clear_error();
  if (n == 0) goto out;
  for (int g = 0; g < c->n_groups; g++) {
    if (asprintf(&labels[g], "%s (%d %s)", c->groups[g].label, c->groups[g].n_runs,
                 c->groups[g].n_runs == 1 ? "run" : "runs") < 0) {
      labels[g] = NULL;
      s = mf_set_error(MF_ENOMEM, "out of memory");
      goto out;
    }
    legend[g] = (mf_plot_legend){labels[g], mf_plot_color(g), (g / MF_PLOT_PALETTE_SIZE) % 2};
  }
  mf_plot_panel panels[2] = {
      {"Validation accuracy", "epoch", "accuracy (segments)", acc, n, 1, NAN, NULL},
      {"Validation loss", "epoch", "cross-entropy loss", loss, n, 1, NAN, NULL},
  };
  char title[96];
  snprintf(title, sizeof title, "Validation curves of %d runs", n);
  mf_plot_figure fig = {1200,   500, title,  "one colour per model, one line per run (seed)",
                        panels, 2,   legend, c->n_groups};
  s = mf_plot_lines(&fig, out, NULL);
  *drawn = s == MF_OK;
out:
  for (int i = 0; h && i < c->n_runs; i++) mf__history_free(&h[i]);
  for (int g = 0; labels && g < c->n_groups; g++) free(labels[g]);
  free(h), free(acc), free(loss), free(legend), free(labels);
  return s;
}

/* Path of `to` relative to folder `from` (both absolute and without . or .. parts). */
static char *relative_path(const char *from, const char *to) {
  const char *f = from, *t = to;
  for (;;) {
    while (*f == '/') f++;
    while (*t == '/') t++;
    size_t lf = strcspn(f, "/"), lt = strcspn(t, "/");
    if (!lf || lf != lt || strncmp(f, t, lf)) break;
    f += lf, t += lt;
  }
  int ups = 0;
  for (const char *q = f; *q;) {
    while (*q == '/') q++;
    if (*q) ups++;
    q += strcspn(q, "/");
  }
  char *r = malloc((size_t)ups * 3 + strlen(t) + 1);
  if (!r) return NULL;
  r[0] = '\0';
  for (int u = 0; u < ups; u++) strcat(r, "../");
  strcat(r, t);
  return r;
}

/* The run's folder relative to the comparison's folder, or NULL when it cannot be resolved. */
static char *run_link(const char *html_dir_abs, const char *run_dir) {
  char *abs = realpath(run_dir, NULL);
  char *rel = abs && html_dir_abs ? relative_path(html_dir_abs, abs) : NULL;
  free(abs);
  return rel;
}

static int has_report(const char *run_dir) {
  char *page = mf__path_join(run_dir, "report.html");
  struct stat st;
  int yes = page && stat(page, &st) == 0;
  free(page);
  return yes;
}

static void stat_cell(mf__text *t, const mf_report_stat *s, int best) {
  char b[96];
  fmt_stat(s, 3, b, sizeof b);
  mf__text_addf(t, "<td class=\"n%s\">%s</td>", best ? " best" : "", b);
}

static int best_group(const mf_comparison *c, size_t offset) {
  int best = -1;
  for (int g = 0; g < c->n_groups; g++) {
    const mf_report_stat *s = (const mf_report_stat *)((const char *)&c->groups[g] + offset);
    const mf_report_stat *b =
        best < 0 ? NULL : (const mf_report_stat *)((const char *)&c->groups[best] + offset);
    if (s->n > 0 && (!b || s->mean > b->mean)) best = g;
  }
  return c->n_groups > 1 ? best : -1;
}

static void models_table(mf__text *t, const mf_comparison *c) {
  const int ba = best_group(c, offsetof(mf_report_group, accuracy));
  const int bt = best_group(c, offsetof(mf_report_group, track_accuracy));
  const int bf = best_group(c, offsetof(mf_report_group, macro_f1));
  mf__text_add(t,
               "<div class=\"wide\"><table class=\"compact\">\n<thead><tr><th>experiment</th>"
               "<th>model</th><th>runs (seeds)</th>"
               "<th class=\"n\">test accuracy</th><th class=\"n\">track accuracy</th>"
               "<th class=\"n\">macro F1</th><th class=\"n\">parameters</th>"
               "<th class=\"n\">train time</th></tr></thead>\n<tbody>\n");
  for (int g = 0; g < c->n_groups; g++) {
    const mf_report_group *gr = &c->groups[g];
    char b[512];
    mf__text_addf(t, "<tr><td class=\"name\"><span style=\"color:#%06x\">&#9632;</span> ",
                  (unsigned)mf_plot_color(g));
    mf__text_html(t, gr->experiment);
    mf__text_add(t, "</td><td>");
    mf__text_html(t, gr->model);
    fmt_seeds(c, gr, b, sizeof b);
    mf__text_addf(t, "</td><td>%d (", gr->n_runs);
    mf__text_html(t, b);
    mf__text_add(t, ")</td>");
    stat_cell(t, &gr->accuracy, g == ba);
    stat_cell(t, &gr->track_accuracy, g == bt);
    stat_cell(t, &gr->macro_f1, g == bf);
    fmt_count_stat(&gr->params, b, sizeof b);
    mf__text_addf(t, "<td class=\"n\">%s</td>", b);
    fmt_time_stat(&gr->train_seconds, b, sizeof b);
    mf__text_addf(t, "<td class=\"n\">%s</td></tr>\n", b);
  }
  mf__text_add(t, "</tbody>\n</table></div>\n");
}

static void pairs_table(mf__text *t, const mf_comparison *c) {
  mf__text_add(
      t,
      "<div class=\"wide\"><table>\n<thead><tr><th>A</th><th>B</th><th class=\"n\">seed</th>"
      "<th class=\"n\">test rows</th><th class=\"n\">accuracy A</th>"
      "<th class=\"n\">accuracy B</th><th class=\"n\">A &minus; B</th>");
  mf__text_addf(t, "<th class=\"n\">%.0f%% interval</th>", 100 * (1 - MF_REPORT_BOOTSTRAP_ALPHA));
  mf__text_add(t,
               "<th class=\"n\">b</th><th class=\"n\">c</th><th class=\"n\">McNemar p</th>"
               "</tr></thead>\n<tbody>\n");
  /* A pair's note (most often the same for many pairs) becomes a numbered footnote below
   * the table, so the numbers keep their width. */
  const char **notes = calloc((size_t)c->n_pairs + 1, sizeof *notes);
  int n_notes = 0;
  for (int p = 0; p < c->n_pairs; p++) {
    const mf_report_pair *pr = &c->pairs[p];
    mf__text_add(t, "<tr><td>");
    mf__text_html(t, c->groups[pr->a].label);
    mf__text_add(t, "</td><td>");
    mf__text_html(t, c->groups[pr->b].label);
    if (notes && pr->note && *pr->note && !pr->skipped) {
      int k = 0;
      while (k < n_notes && strcmp(notes[k], pr->note)) k++;
      if (k == n_notes) notes[n_notes++] = pr->note;
      mf__text_addf(t, "<sup>%d</sup>", k + 1);
    }
    mf__text_addf(t, "</td><td class=\"n\">%llu</td>", (unsigned long long)pr->seed);
    if (pr->skipped) {
      mf__text_add(t, "<td class=\"skip\" colspan=\"8\">not compared: ");
      mf__text_html(t, pr->skipped);
      mf__text_add(t, "</td></tr>\n");
      continue;
    }
    char pv[32];
    fmt_p(pr->mcnemar.p_value, pv, sizeof pv);
    const int ci_sig = pr->bootstrap.lo > 0 || pr->bootstrap.hi < 0;
    const int p_sig = pr->mcnemar.p_value < MF_REPORT_BOOTSTRAP_ALPHA;
    mf__text_addf(t,
                  "<td class=\"n\">%lld</td><td class=\"n\">%.3f</td><td class=\"n\">%.3f</td>"
                  "<td class=\"n\">%+.3f</td><td class=\"n%s\">[%+.3f, %+.3f]</td>"
                  "<td class=\"n\">%lld</td><td class=\"n\">%lld</td>"
                  "<td class=\"n%s\">%s%s</td></tr>\n",
                  (long long)pr->n, pr->accuracy_a, pr->accuracy_b, pr->bootstrap.diff,
                  ci_sig ? " sig" : "", pr->bootstrap.lo, pr->bootstrap.hi,
                  (long long)pr->mcnemar.b, (long long)pr->mcnemar.c, p_sig ? " sig" : "", pv,
                  pr->mcnemar.exact ? " (exact)" : "");
  }
  mf__text_add(t, "</tbody>\n</table></div>\n");
  for (int k = 0; k < n_notes; k++) {
    mf__text_addf(t, "<p class=\"note\"><sup>%d</sup> ", k + 1);
    mf__text_html(t, notes[k]);
    mf__text_add(t, "</p>\n");
  }
  free(notes);
}

static void runs_table(mf__text *t, const mf_comparison *c, const char *html_dir_abs) {
  mf__text_add(t,
               "<div class=\"wide\"><table class=\"compact\">\n<thead><tr><th>experiment</th>"
               "<th>model</th><th class=\"n\">seed</th><th class=\"n\">test accuracy</th>"
               "<th class=\"n\">track accuracy</th><th class=\"n\">macro F1</th>"
               "<th class=\"n\">epochs (best)</th><th class=\"n\">train time</th>"
               "<th>dataset</th><th>run folder</th></tr></thead>\n<tbody>\n");
  for (int i = 0; i < c->n_runs; i++) {
    const mf_report_entry *e = &c->runs[i];
    char a[64], tr[64], f[64], s[64];
    mf__format_num(e->test_accuracy, 3, a, sizeof a);
    mf__format_num(e->test_track_accuracy, 3, tr, sizeof tr);
    mf__format_num(e->test_macro_f1, 3, f, sizeof f);
    mf__format_seconds(e->train_seconds, s, sizeof s);
    mf__text_add(t, "<tr><td>");
    mf__text_html(t, e->experiment);
    mf__text_add(t, "</td><td>");
    mf__text_html(t, e->model);
    mf__text_addf(t,
                  "</td><td class=\"n\">%llu</td><td class=\"n\">%s</td><td class=\"n\">%s</td>"
                  "<td class=\"n\">%s</td><td class=\"n\">%d (%d)</td><td class=\"n\">%s</td>"
                  "<td class=\"path\">",
                  (unsigned long long)e->seed, a, tr, f, e->epochs_run, e->best_epoch, s);
    mf__text_html(t, e->dataset);
    mf__text_add(t, "</td><td class=\"path\">");
    /* Folders print relative to the page, as the links are. */
    char *rel = run_link(html_dir_abs, e->dir);
    const char *shown = rel && *rel ? rel : e->dir;
    if (rel && has_report(e->dir)) {
      mf__text_add(t, "<a href=\"");
      mf__text_html(t, *rel ? rel : ".");
      mf__text_add(t, "/report.html\">");
      mf__text_html(t, shown);
      mf__text_add(t, "</a>");
    } else {
      mf__text_html(t, shown);
    }
    free(rel);
    mf__text_add(t, "</td></tr>\n");
  }
  mf__text_add(t, "</tbody>\n</table></div>\n");
}

mf_status mf_comparison_write_html(const mf_comparison *c, const char *path) {
  if (!c || !path) return mf_set_error(MF_EINVAL, "mf_comparison_write_html: nothing to write");
  mf_png curves = {0};
  int drawn;
  mf_status s = plot_comparison(c, &curves, &drawn);
  if (s != MF_OK) return s;
  /* Links are relative to the folder the page lands in. */
  char *dir = strdup(path);
  char *slash = dir ? strrchr(dir, '/') : NULL;
  char *html_dir = NULL;
  if (dir) {
    if (slash) *(slash == dir ? slash + 1 : slash) = '\0';
    html_dir = realpath(slash ? dir : ".", NULL);
  }
  free(dir);

  mf__text t = {0};
  char title[128];
  snprintf(title, sizeof title, "Comparison of %d runs", c->n_runs);
  mf__html_begin(&t, title);
  mf__text_addf(&t,
                "<h1>%s</h1>\n<p class=\"sub\">%d %s &middot; test-set metrics, mean " PM
                " sample standard deviation over runs (seeds)</p>\n",
                title, c->n_groups, c->n_groups == 1 ? "model" : "models");
  mf__text_add(&t, "<h2>Models</h2>\n");
  models_table(&t, c);
  mf__text_add(&t,
               "<p class=\"note\">Accuracy counts test segments; track accuracy classifies each "
               "track by its segments' mean probabilities. The best mean of each column is in "
               "bold.</p>\n");
  mf__text_add(&t, "<h2>Validation curves</h2>\n");
  if (drawn) {
    mf__text_add(&t, "<figure>");
    mf__text_img(&t, &curves, "validation accuracy and loss per epoch of every run");
    mf__text_add(&t, "</figure>\n");
  } else {
    mf__text_add(&t, "<p class=\"note\">No run has a metrics.csv with epochs.</p>\n");
  }
  mf__text_add(&t, "<h2>Paired tests</h2>\n");
  if (c->n_pairs) {
    pairs_table(&t, c);
    mf__text_addf(&t,
                  "<p class=\"note\">Pairs are the runs of two models with the same seed, "
                  "compared on the same test rows (checked by row index and label). "
                  "A &minus; B is the difference in test accuracy, with a percentile bootstrap "
                  "%.0f%% interval over %d resamples of the paired rows. McNemar's test counts "
                  "the rows only A classifies correctly (b) and only B does (c); p is exact "
                  "(binomial) when b + c &lt; 25, else chi-square with continuity correction. "
                  "Highlighted: intervals excluding 0 and p &lt; %.2f. Segments of one track are "
                  "not independent, so both tests are optimistic: trust consistent results "
                  "across seeds more than one small p.</p>\n",
                  100 * (1 - MF_REPORT_BOOTSTRAP_ALPHA), MF_REPORT_BOOTSTRAP_RESAMPLES,
                  MF_REPORT_BOOTSTRAP_ALPHA);
  } else {
    mf__text_add(&t,
                 "<p class=\"note\">No pairs: paired tests need two models run with the same "
                 "seed.</p>\n");
  }
  mf__text_add(&t, "<h2>Runs</h2>\n");
  runs_table(&t, c, html_dir);
  mf__text_addf(&t,
                "<footer>melforge %s &middot; written from the run folders' summary.json, "
                "metrics.csv and test_predictions.csv</footer>\n",
                MF_VERSION_STRING);
  mf__html_end(&t);
  s = mf__write_text(path, &t);
  free(t.p);
  free(html_dir);
  mf_png_free(&curves);
  return s;
}
