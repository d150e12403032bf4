/* melforge/report.h — HTML reports of finished runs.
 *
 * Per run: mf_report_run reads the files the training engine left in a run folder
 * (summary.json, metrics.csv, config.json) and writes curves.png (loss and accuracy per
 * epoch, train vs val, the best epoch marked), confusion.png (the test confusion matrix)
 * and report.html (summary, test and val metrics, classification report, both plots, the
 * resolved configuration). The engine calls it at the end of every run.
 *
 * Across runs: mf_comparison_load groups run folders by (experiment, model), one row per
 * group with the mean and sample standard deviation over its runs (seeds); and tests every
 * pair of groups on runs with the same seed whose test_predictions.csv cover the same rows
 * with the same labels: McNemar's test on the paired predictions and a bootstrap confidence
 * interval of the accuracy difference (metrics.h). mf_comparison_text prints the tables,
 * mf_comparison_write_html writes the report with every run's validation curves overlaid.
 *
 * Reports are self-contained: images are embedded as base64 data URIs and the CSS is
 * inline, so a file opens anywhere, offline, and can be mailed or archived alone.
 */
#ifndef MELFORGE_REPORT_H
#define MELFORGE_REPORT_H

#include <stdint.h>

#include "melforge/error.h"
#include "melforge/metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Writes curves.png, confusion.png (when the run has a test set) and the report into
 * run_dir; the report goes to html_path, or run_dir/report.html when NULL. */
mf_status mf_report_run(const char *run_dir, const char *html_path);

/* The run folders (holding a summary.json) at or below root, sorted by path; root itself
 * when it is one. Free with mf_report_free_dirs. */
mf_status mf_report_find_runs(const char *root, char ***dirs, int *n);
void mf_report_free_dirs(char **dirs, int n);

/* Mean and sample standard deviation (n - 1) of the finite values among a group's runs;
 * n counts them; std is NaN when n < 2 and mean NaN when n = 0. */
typedef struct mf_report_stat {
  double mean, std;
  int n;
} mf_report_stat;

typedef struct mf_report_entry {
  char *dir;
  char *experiment, *model, *dataset;
  uint64_t seed;
  double test_accuracy, test_track_accuracy, test_macro_f1; /* NaN when absent */
  double params, train_seconds;
  int epochs_run, best_epoch;
  int group;
} mf_report_entry;

typedef struct mf_report_group {
  char *experiment, *model;
  char *label; /* the model, the experiment, or both: whatever tells the groups apart */
  int n_runs;
  int *runs; /* indices into mf_comparison.runs, by seed */
  mf_report_stat accuracy, track_accuracy, macro_f1, params, train_seconds;
} mf_report_group;

/* Groups a and b compared on the runs with one seed. */
typedef struct mf_report_pair {
  int a, b;         /* group indices, a < b */
  int run_a, run_b; /* run indices */
  uint64_t seed;
  int64_t n; /* paired test rows */
  double accuracy_a, accuracy_b;
  mf_mcnemar mcnemar;
  mf_bootstrap bootstrap;
  char *skipped; /* why the pair was not compared; NULL when it was */
  char *note;    /* e.g. different dataset files with identical rows; or NULL */
} mf_report_pair;

/* Bootstrap settings: BOOTSTRAP_RESAMPLES resamples, alpha 0.05, drawn from the stream
 * mf_rng_stream(seed, MF_REPORT_BOOTSTRAP_STREAM) of the pair's seed: a pair gets the same
 * interval whichever other runs are in the report. */
#define MF_REPORT_BOOTSTRAP_RESAMPLES 2000
#define MF_REPORT_BOOTSTRAP_ALPHA 0.05
#define MF_REPORT_BOOTSTRAP_STREAM (MF_RNG_USER + 1)

typedef struct mf_comparison {
  int n_runs;
  mf_report_entry *runs; /* sorted by experiment, model, seed */
  int n_groups;
  mf_report_group *groups; /* in order of their first run */
  int n_pairs;
  mf_report_pair *pairs; /* by group pair, then seed */
} mf_comparison;

/* Reads the run folders (summary.json, metrics.csv, test_predictions.csv) and computes the
 * groups and the paired tests. */
mf_status mf_comparison_load(char *const *run_dirs, int n, mf_comparison *out);
void mf_comparison_free(mf_comparison *c);

/* The models table and the paired tests as aligned plain text (malloc'd). */
char *mf_comparison_text(const mf_comparison *c);

/* The comparison report at path (atomic); links to each run's report.html are relative to
 * the report's folder. */
mf_status mf_comparison_write_html(const mf_comparison *c, const char *path);

#ifdef __cplusplus
}
#endif
#endif
