/* Metrics against a 3-class example worked by hand, top-k, track accuracy by probability
 * averaging, zero-division classes, the text and JSON forms, McNemar's test and the paired
 * bootstrap.
 *
 * The example (10 rows, classes blues / classical / hiphop):
 *
 *   confusion (rows true, columns predicted)   predicted totals 5, 3, 2
 *     3 1 0      support 4
 *     2 2 0      support 4
 *     0 0 2      support 2
 *
 *   precision 3/5 = 0.6, 2/3, 2/2 = 1        recall 3/4, 2/4, 2/2
 *   F1 = 2tp / (2tp + fp + fn): 6/9, 4/7, 1   accuracy 7/10
 *   macro:    P (0.6 + 2/3 + 1) / 3 = 0.755556, R (0.75 + 0.5 + 1) / 3 = 0.75,
 *             F1 (2/3 + 4/7 + 1) / 3 = 0.746032
 *   weighted: P (4 * 0.6 + 4 * 2/3 + 2) / 10 = 0.706667, R 0.7,
 *             F1 (4 * 2/3 + 4 * 4/7 + 2) / 10 = 0.695238
 *
 * so sklearn.metrics.classification_report(digits=4) prints accuracy 0.7000, macro avg
 * 0.7556 0.7500 0.7460 and weighted avg 0.7067 0.7000 0.6952. Ratios are exact in double up
 * to rounding of the divisions: 1e-12.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "melforge/melforge.h"
#include "melforge/metrics.h"
#include "mftest.h"

#define TOL 1e-12

static char *NAMES[3] = {"blues", "classical", "hiphop"};

/* Tracks: 40 (blues, 3 rows, all right), 7 (blues, 1 row predicted classical: wrong), 13
 * (classical, 2 rows predicted blues at 0.55 and one sure classical row: the segment
 * majority says blues, the averaged probabilities 0.367 / 0.633 say classical), 2
 * (classical, right), 99 (hiphop, right). Averaging: 4 of 5 tracks; majority vote: 3 of 5. */
static const float PROBS[10][3] = {{0.8f, 0.2f, 0.0f}, {0.7f, 0.3f, 0.0f},   {0.6f, 0.3f, 0.1f},
                                   {0.0f, 0.9f, 0.1f}, {0.55f, 0.45f, 0.0f}, {0.55f, 0.45f, 0.0f},
                                   {0.0f, 1.0f, 0.0f}, {0.2f, 0.7f, 0.1f},   {0.1f, 0.1f, 0.8f},
                                   {0.2f, 0.1f, 0.7f}};
static const int32_t LABELS[10] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2};
static const int32_t TRACKS[10] = {40, 40, 40, 7, 13, 13, 13, 2, 99, 99};

static mf_metrics example(int top_k, const int32_t *tracks) {
  mf_metrics m;
  mf_status st = mf_metrics_compute(&PROBS[0][0], LABELS, tracks, 10, 3, top_k, 1.25, &m);
  EXPECT(st == MF_OK, "compute failed: %s", mf_error());
  return m;
}

TEST(test_hand_computed_three_class_example) {
  mf_metrics m = example(1, NULL);
  EXPECT_EQ_INT(m.n, 10);
  EXPECT_NEAR(m.loss, 1.25, 0);
  EXPECT_NEAR(m.accuracy, 0.7, TOL);
  const int64_t conf[9] = {3, 1, 0, 2, 2, 0, 0, 0, 2};
  for (int i = 0; i < 9; i++)
    EXPECT(m.confusion[i] == conf[i], "confusion[%d] = %lld, want %lld", i,
           (long long)m.confusion[i], (long long)conf[i]);
  const double p[3] = {0.6, 2.0 / 3, 1}, r[3] = {0.75, 0.5, 1}, f[3] = {6.0 / 9, 4.0 / 7, 1};
  const int64_t sup[3] = {4, 4, 2};
  for (int k = 0; k < 3; k++) {
    EXPECT_NEAR(m.precision[k], p[k], TOL);
    EXPECT_NEAR(m.recall[k], r[k], TOL);
    EXPECT_NEAR(m.f1[k], f[k], TOL);
    EXPECT_EQ_INT(m.support[k], sup[k]);
  }
  EXPECT_NEAR(m.macro_precision, (0.6 + 2.0 / 3 + 1) / 3, TOL);
  EXPECT_NEAR(m.macro_recall, 0.75, TOL);
  EXPECT_NEAR(m.macro_f1, (6.0 / 9 + 4.0 / 7 + 1) / 3, TOL);
  EXPECT_NEAR(m.weighted_precision, (4 * 0.6 + 4 * 2.0 / 3 + 2) / 10, TOL);
  EXPECT_NEAR(m.weighted_recall, 0.7, TOL);
  EXPECT_NEAR(m.weighted_f1, (4 * 6.0 / 9 + 4 * 4.0 / 7 + 2) / 10, TOL);
  /* sklearn's rounded figures, for the record. */
  EXPECT_NEAR(m.macro_f1, 0.7460, 5e-5);
  EXPECT_NEAR(m.weighted_f1, 0.6952, 5e-5);
  const int32_t pred[10] = {0, 0, 0, 1, 0, 0, 1, 1, 2, 2};
  EXPECT(memcmp(m.predicted, pred, sizeof pred) == 0, "argmax predictions differ");
  EXPECT_EQ_INT(m.n_tracks, 0);
  mf_metrics_clear(&m);
}

TEST(test_top_k_counts_the_label_among_the_k_highest) {
  /* Row 3 (label blues, score 0) ranks third: out of the top 2. Every other label is first
   * or second. */
  mf_metrics m1 = example(1, NULL), m2 = example(2, NULL), m3 = example(3, NULL);
  EXPECT_NEAR(m1.top_k_accuracy, m1.accuracy, 0);
  EXPECT_NEAR(m2.top_k_accuracy, 0.9, TOL);
  EXPECT_NEAR(m3.top_k_accuracy, 1.0, 0);
  EXPECT_EQ_INT(m2.top_k, 2);
  mf_metrics_clear(&m1), mf_metrics_clear(&m2), mf_metrics_clear(&m3);
}

TEST(test_ties_go_to_the_lowest_class_in_argmax_and_top_k) {
  /* [0.5, 0.5, 0] with label 1: argmax is 0 (numpy), so top-1 misses and top-2 hits. */
  float probs[3] = {0.5f, 0.5f, 0.0f};
  int32_t label = 1;
  mf_metrics m;
  EXPECT(mf_metrics_compute(probs, &label, NULL, 1, 3, 1, 0, &m) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(m.predicted[0], 0);
  EXPECT_NEAR(m.top_k_accuracy, 0, 0);
  mf_metrics_clear(&m);
  EXPECT(mf_metrics_compute(probs, &label, NULL, 1, 3, 2, 0, &m) == MF_OK, "%s", mf_error());
  EXPECT_NEAR(m.top_k_accuracy, 1, 0);
  mf_metrics_clear(&m);
}

TEST(test_track_accuracy_averages_probabilities_not_votes) {
  mf_metrics m = example(1, TRACKS);
  EXPECT_EQ_INT(m.n_tracks, 5);
  EXPECT_NEAR(m.track_accuracy, 0.8, TOL); /* a majority vote would give 0.6 */
  mf_metrics_clear(&m);
}

TEST(test_track_with_two_labels_is_an_error) {
  int32_t tracks[10] = {40, 40, 40, 7, 13, 13, 13, 2, 99, 7}; /* 7: blues and hiphop */
  mf_metrics m;
  EXPECT(mf_metrics_compute(&PROBS[0][0], LABELS, tracks, 10, 3, 1, 0, &m) == MF_EINVAL,
         "mixed track accepted");
  EXPECT(strstr(mf_error(), "track 7 ") != NULL, "message: %s", mf_error());
  EXPECT(m.confusion == NULL, "failed compute left arrays behind");
}

TEST(test_zero_division_classes_count_as_zero) {
  /* 4 classes: class 2 is predicted once but never true (precision 0/1, recall undefined),
   * class 3 never appears (everything undefined). sklearn with zero_division=0 and
   * labels=[0..3] reports 0 for all of them and averages over 4 classes. */
  float probs[4 * 4] = {1, 0, 0, 0,  /* true 0 -> 0 */
                        0, 1, 0, 0,  /* true 1 -> 1 */
                        0, 0, 1, 0,  /* true 1 -> 2 */
                        1, 0, 0, 0}; /* true 0 -> 0 */
  int32_t labels[4] = {0, 1, 1, 0};
  mf_metrics m;
  EXPECT(mf_metrics_compute(probs, labels, NULL, 4, 4, 1, 0, &m) == MF_OK, "%s", mf_error());
  EXPECT_NEAR(m.precision[2], 0, 0);
  EXPECT_NEAR(m.recall[2], 0, 0);
  EXPECT_NEAR(m.f1[2], 0, 0);
  EXPECT_EQ_INT(m.support[2], 0);
  EXPECT_NEAR(m.precision[3], 0, 0);
  EXPECT_NEAR(m.recall[3], 0, 0);
  EXPECT_NEAR(m.f1[3], 0, 0);
  /* class 0: P 1 R 1 F1 1; class 1: P 1 R 1/2 F1 2/3. */
  EXPECT_NEAR(m.macro_precision, (1 + 1 + 0 + 0) / 4.0, TOL);
  EXPECT_NEAR(m.macro_recall, (1 + 0.5) / 4.0, TOL);
  EXPECT_NEAR(m.macro_f1, (1 + 2.0 / 3) / 4.0, TOL);
  EXPECT_NEAR(m.weighted_f1, (2 * 1 + 2 * 2.0 / 3) / 4.0, TOL);
  mf_metrics_clear(&m);
}

TEST(test_bad_arguments_are_errors) {
  mf_metrics m;
  int32_t bad[10] = {0, 0, 0, 0, 1, 1, 3, 1, 2, 2};
  EXPECT(mf_metrics_compute(&PROBS[0][0], bad, NULL, 10, 3, 1, 0, &m) == MF_EINVAL, "label 3");
  EXPECT(strstr(mf_error(), "row 6") != NULL, "message: %s", mf_error());
  EXPECT(mf_metrics_compute(&PROBS[0][0], LABELS, NULL, 10, 3, 4, 0, &m) == MF_EINVAL,
         "top 4 of 3");
  EXPECT(strstr(mf_error(), "top_k") != NULL, "message: %s", mf_error());
  EXPECT(mf_metrics_compute(&PROBS[0][0], LABELS, NULL, 0, 3, 1, 0, &m) == MF_EINVAL, "no rows");
}

/* Whether `text` has `line` as one whole line. */
static int has_line(const char *text, const char *line) {
  size_t len = strlen(line);
  for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
    if ((p == text || p[-1] == '\n') && (p[len] == '\n' || p[len] == '\0')) return 1;
  return 0;
}

TEST(test_report_has_sklearn_lines_with_left_aligned_names) {
  mf_metrics m = example(1, NULL);
  char *r = mf_metrics_report(&m, NAMES);
  EXPECT(r != NULL, "%s", mf_error());
  if (!r) return;
  /* Name column 12 wide ("weighted avg" is the longest label), then sklearn's columns:
   * these are sklearn's format strings with ljust in place of rjust for the names. */
  const char *lines[] = {
      "              precision    recall  f1-score   support",
      "blues            0.6000    0.7500    0.6667         4",
      "classical        0.6667    0.5000    0.5714         4",
      "hiphop           1.0000    1.0000    1.0000         2",
      "accuracy                             0.7000        10",
      "macro avg        0.7556    0.7500    0.7460        10",
      "weighted avg     0.7067    0.7000    0.6952        10",
  };
  for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
    EXPECT(has_line(r, lines[i]), "report lacks the line\n[%s]\nreport:\n%s", lines[i], r);
  /* sklearn's blank lines: after the header and before accuracy. */
  EXPECT(strstr(r, "support\n\nblues") && strstr(r, "2\n\naccuracy"), "blank lines:\n%s", r);
  free(r);
  mf_metrics_clear(&m);
}

TEST(test_report_widens_for_long_names_and_numbers_classes_without_names) {
  mf_metrics m = example(2, TRACKS);
  char *long_names[3] = {"blues", "classical-and-baroque", "hiphop"};
  char *r = mf_metrics_report(&m, long_names);
  EXPECT(r && has_line(r, "classical-and-baroque     0.6667    0.5000    0.5714         4"),
         "report:\n%s", r ? r : mf_error());
  EXPECT(
      r && has_line(r, "top-2 accuracy 0.9000") && has_line(r, "track accuracy 0.8000 (5 tracks)"),
      "report:\n%s", r ? r : "");
  free(r);
  r = mf_metrics_report(&m, NULL);
  EXPECT(r && has_line(r, "1                0.6667    0.5000    0.5714         4"), "report:\n%s",
         r ? r : mf_error());
  free(r);
  mf_metrics_clear(&m);
}

TEST(test_confusion_text_labels_rows_and_abbreviates_columns) {
  mf_metrics m = example(1, NULL);
  char *t = mf_metrics_confusion_text(&m, NAMES);
  EXPECT(t != NULL, "%s", mf_error());
  if (!t) return;
  const char *lines[] = {
      "true \\ pred  blues  class  hipho",
      "blues            3      1      0",
      "classical        2      2      0",
      "hiphop           0      0      2",
  };
  for (size_t i = 0; i < 4; i++)
    EXPECT(has_line(t, lines[i]), "missing line\n[%s]\ntext:\n%s", lines[i], t);
  free(t);
  mf_metrics_clear(&m);
}

TEST(test_confusion_text_numbers_columns_when_abbreviations_clash) {
  mf_metrics m = example(1, NULL);
  char *names[3] = {"classical-a", "classical-b", "jazz"};
  char *t = mf_metrics_confusion_text(&m, names);
  const char *lines[] = {
      "true \\ pred    0  1  2",
      "0 classical-a  3  1  0",
      "1 classical-b  2  2  0",
      "2 jazz         0  0  2",
  };
  for (size_t i = 0; i < 4; i++)
    EXPECT(t && has_line(t, lines[i]), "missing line\n[%s]\ntext:\n%s", lines[i], t ? t : "");
  free(t);
  mf_metrics_clear(&m);
}

static double num(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  EXPECT(json_is_number(v), "key '%s' missing or not a number", key);
  return json_number_value(v);
}

TEST(test_json_has_the_documented_keys_and_values) {
  mf_metrics m = example(2, TRACKS);
  char *text = mf_metrics_to_json(&m, NAMES);
  EXPECT(text != NULL, "%s", mf_error());
  json_error_t err;
  json_t *o = text ? json_loads(text, 0, &err) : NULL;
  EXPECT(o != NULL, "JSON does not parse: %s\n%s", o ? "" : err.text, text ? text : "");
  if (!o) {
    free(text);
    return;
  }
  EXPECT_NEAR(num(o, "accuracy"), 0.7, TOL);
  EXPECT_NEAR(num(o, "loss"), 1.25, 0);
  EXPECT_NEAR(num(o, "top_k_accuracy"), 0.9, TOL);
  EXPECT_NEAR(num(o, "macro_f1"), m.macro_f1, 1e-14);
  EXPECT_NEAR(num(o, "weighted_f1"), m.weighted_f1, 1e-14);
  EXPECT_NEAR(num(o, "macro_precision"), m.macro_precision, 1e-14);
  EXPECT_NEAR(num(o, "macro_recall"), 0.75, TOL);
  EXPECT_NEAR(num(o, "track_accuracy"), 0.8, TOL);
  EXPECT_NEAR(num(o, "n"), 10, 0);
  EXPECT_NEAR(num(o, "n_tracks"), 5, 0);
  json_t *conf = json_object_get(o, "confusion");
  EXPECT(json_array_size(conf) == 3, "confusion is not 3 rows");
  EXPECT(json_integer_value(json_array_get(json_array_get(conf, 1), 0)) == 2, "confusion[1][0]");
  json_t *pc = json_object_get(json_object_get(o, "per_class"), "classical");
  EXPECT(json_is_object(pc), "per_class.classical missing");
  EXPECT_NEAR(num(pc, "precision"), 2.0 / 3, 1e-14);
  EXPECT_NEAR(num(pc, "recall"), 0.5, 0);
  EXPECT_NEAR(num(pc, "f1"), 4.0 / 7, 1e-14);
  EXPECT_NEAR(num(pc, "support"), 4, 0);
  json_decref(o);
  free(text);
  mf_metrics_clear(&m);
}

TEST(test_json_writes_null_for_nan_loss_and_missing_tracks) {
  mf_metrics m;
  EXPECT(mf_metrics_compute(&PROBS[0][0], LABELS, NULL, 10, 3, 1, NAN, &m) == MF_OK, "%s",
         mf_error());
  char *text = mf_metrics_to_json(&m, NULL);
  json_t *o = text ? json_loads(text, 0, NULL) : NULL;
  EXPECT(o != NULL, "JSON does not parse:\n%s", text ? text : mf_error());
  if (o) {
    EXPECT(json_is_null(json_object_get(o, "loss")), "NaN loss not null");
    EXPECT(json_is_null(json_object_get(o, "track_accuracy")), "track_accuracy not null");
    EXPECT(json_is_object(json_object_get(json_object_get(o, "per_class"), "2")),
           "unnamed classes keyed by index");
  }
  json_decref(o);
  free(text);
  mf_metrics_clear(&m);
}

/* ---- paired comparisons ---------------------------------------------------------------- */

/* n rows, label 0 everywhere: the first b rows only A is right, the next c only B, then
 * `both` rows both right and the rest both wrong. */
static void paired(int n, int b, int c, int both, int32_t *pa, int32_t *pb, int32_t *y) {
  for (int i = 0; i < n; i++) {
    y[i] = 0;
    pa[i] = (i < b || (i >= b + c && i < b + c + both)) ? 0 : 1;
    pb[i] = (i >= b && i < b + c + both) ? 0 : 1;
  }
}

TEST(test_mcnemar_matches_the_textbook_chi_square) {
  /* b = 10, c = 25: chi2 = (|10 - 25| - 1)^2 / 35 = 196 / 35 = 5.6; with 1 degree of
   * freedom p = erfc(sqrt(2.8)) = 0.0179604775 (chi2.sf(5.6, 1)). */
  int32_t pa[100], pb[100], y[100];
  paired(100, 10, 25, 40, pa, pb, y);
  mf_mcnemar t;
  EXPECT(mf_mcnemar_test(pa, pb, y, 100, &t) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(t.b, 10);
  EXPECT_EQ_INT(t.c, 25);
  EXPECT_NEAR(t.statistic, 5.6, 1e-12);
  EXPECT_NEAR(t.p_value, 0.017960477526078766, 1e-12);
  EXPECT_EQ_INT(t.exact, 0);
}

TEST(test_mcnemar_uses_the_exact_binomial_below_25_disagreements) {
  /* b = 1, c = 6: p = 2 * (C(7,0) + C(7,1)) / 2^7 = 16 / 128 = 0.125. */
  int32_t pa[20], pb[20], y[20];
  paired(20, 1, 6, 5, pa, pb, y);
  mf_mcnemar t;
  EXPECT(mf_mcnemar_test(pa, pb, y, 20, &t) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(t.exact, 1);
  EXPECT_NEAR(t.p_value, 0.125, 1e-15);
  EXPECT_NEAR(t.statistic, 16.0 / 7, 1e-12);
  /* b = c: the two-sided p caps at 1. */
  paired(20, 3, 3, 5, pa, pb, y);
  EXPECT(mf_mcnemar_test(pa, pb, y, 20, &t) == MF_OK, "%s", mf_error());
  EXPECT_NEAR(t.p_value, 1.0, 0);
  /* No disagreement at all. */
  paired(20, 0, 0, 5, pa, pb, y);
  EXPECT(mf_mcnemar_test(pa, pb, y, 20, &t) == MF_OK, "%s", mf_error());
  EXPECT(t.b == 0 && t.c == 0 && t.p_value == 1.0, "b %lld c %lld p %g", (long long)t.b,
         (long long)t.c, t.p_value);
}

static mf_bootstrap boot(const int32_t *pa, const int32_t *pb, const int32_t *y, int n,
                         uint64_t seed) {
  mf_rng r = mf_rng_stream(seed, MF_RNG_USER + 3);
  mf_bootstrap b;
  EXPECT(mf_bootstrap_accuracy_diff(pa, pb, y, n, 2000, 0.05, &r, &b) == MF_OK, "%s", mf_error());
  return b;
}

TEST(test_bootstrap_interval_contains_the_observed_difference_and_is_deterministic) {
  /* 300 rows: A right on 240, B on 210 (b = 60, c = 30): difference 0.1. The normal
   * approximation of the paired difference has sd sqrt((b + c) / n - d^2) / sqrt(n)
   * = sqrt(0.29) / sqrt(300) = 0.0311, a 95 % width of about 0.122. */
  enum { N = 300 };
  int32_t pa[N], pb[N], y[N];
  paired(N, 60, 30, 180, pa, pb, y);
  mf_bootstrap a = boot(pa, pb, y, N, 5);
  EXPECT_NEAR(a.diff, 0.1, 1e-15);
  EXPECT(a.lo < a.diff && a.diff < a.hi, "interval [%g, %g] misses %g", a.lo, a.hi, a.diff);
  double width = a.hi - a.lo;
  EXPECT(width > 0.09 && width < 0.16, "width %g, normal approximation 0.122", width);
  EXPECT(a.resamples == 2000 && a.alpha == 0.05, "echoed parameters");
  mf_bootstrap b = boot(pa, pb, y, N, 5);
  EXPECT(a.lo == b.lo && a.hi == b.hi, "same stream, different interval");
  /* Another stream: another sample of resamples, the same interval up to Monte Carlo
   * noise (the percentiles move in steps of 1/300). */
  mf_bootstrap c = boot(pa, pb, y, N, 6);
  EXPECT(fabs(c.lo - a.lo) < 0.015 && fabs(c.hi - a.hi) < 0.015, "[%g, %g] vs [%g, %g]", c.lo, c.hi,
         a.lo, a.hi);
  int before = mf_num_threads();
  mf_set_num_threads(1);
  mf_bootstrap d = boot(pa, pb, y, N, 5);
  mf_set_num_threads(before);
  EXPECT(a.lo == d.lo && a.hi == d.hi, "interval depends on the thread count");
}

TEST(test_bootstrap_advances_the_stream_and_checks_its_arguments) {
  enum { N = 50 };
  int32_t pa[N], pb[N], y[N];
  paired(N, 10, 5, 20, pa, pb, y);
  mf_rng r = mf_rng_stream(1, MF_RNG_USER);
  mf_rng start = r;
  mf_bootstrap a;
  EXPECT(mf_bootstrap_accuracy_diff(pa, pb, y, N, 500, 0.1, &r, &a) == MF_OK, "%s", mf_error());
  EXPECT(mf_rng_u64(&r) != mf_rng_u64(&start), "the stream was not advanced");
  EXPECT(mf_bootstrap_accuracy_diff(pa, pb, y, N, 500, 1.0, &r, &a) == MF_EINVAL, "alpha 1");
  EXPECT(strstr(mf_error(), "alpha") != NULL, "message: %s", mf_error());
  EXPECT(mf_bootstrap_accuracy_diff(pa, pb, y, N, 0, 0.05, &r, &a) == MF_EINVAL, "0 resamples");
  EXPECT(strstr(mf_error(), "resamples") != NULL, "message: %s", mf_error());
}
