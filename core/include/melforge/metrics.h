/* melforge/metrics.h — classification metrics from predicted probabilities.
 *
 * Segment level: accuracy, mean loss (given), top-k accuracy, per-class precision, recall,
 * F1 and support, their macro and support-weighted averages (as sklearn's
 * classification_report), and the confusion matrix (rows = true class, columns =
 * predicted). Track level: the probabilities of a track's segments are averaged and the
 * argmax compared with the track's label (how a song is classified in practice).
 *
 * Also paired comparisons of two models on one test set: McNemar's test on the
 * disagreements and a bootstrap confidence interval of the accuracy difference.
 */
#ifndef MELFORGE_METRICS_H
#define MELFORGE_METRICS_H

#include <stdint.h>

#include "melforge/error.h"
#include "melforge/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mf_metrics {
  int n_classes;
  int64_t n;              /* rows evaluated */
  double loss;            /* as given */
  double accuracy;
  int top_k;
  double top_k_accuracy;
  double *precision, *recall, *f1; /* n_classes each; 0 where undefined (sklearn's zero_division=0) */
  int64_t *support;
  double macro_precision, macro_recall, macro_f1;
  double weighted_precision, weighted_recall, weighted_f1;
  int64_t *confusion;     /* n_classes x n_classes */
  int64_t n_tracks;       /* 0 when no track ids were given */
  double track_accuracy;
  int32_t *predicted;     /* n argmax predictions (kept for paired tests) */
} mf_metrics;

/* probs [n, n_classes] (rows of probabilities or logits: argmax is what counts; track
 * averaging uses the values as given, so pass probabilities), labels [n], tracks [n] or
 * NULL. top_k >= 1. */
mf_status mf_metrics_compute(const float *probs, const int32_t *labels, const int32_t *tracks,
                             int64_t n, int n_classes, int top_k, double loss, mf_metrics *out);
void mf_metrics_clear(mf_metrics *m);

/* sklearn-style classification report (malloc'd text) with class names. */
char *mf_metrics_report(const mf_metrics *m, char *const *class_names);
/* The confusion matrix as aligned text with class names (malloc'd). */
char *mf_metrics_confusion_text(const mf_metrics *m, char *const *class_names);
/* JSON object (malloc'd): accuracy, loss, top_k_accuracy, macro_f1, weighted_f1,
 * macro_precision, macro_recall, track_accuracy, n, n_tracks, confusion (array of rows),
 * per_class {name: {precision, recall, f1, support}}. */
char *mf_metrics_to_json(const mf_metrics *m, char *const *class_names);

/* McNemar's test with continuity correction on paired predictions of two models for the
 * same rows: b = A right & B wrong, c = A wrong & B right; chi2 = (|b - c| - 1)^2 / (b + c),
 * p from the chi-square distribution with 1 degree of freedom (exact binomial test when
 * b + c < 25). */
typedef struct mf_mcnemar {
  int64_t b, c;
  double statistic, p_value;
  int exact;
} mf_mcnemar;
mf_status mf_mcnemar_test(const int32_t *pred_a, const int32_t *pred_b, const int32_t *labels,
                          int64_t n, mf_mcnemar *out);

/* Percentile bootstrap of accuracy(A) - accuracy(B) over resampled rows (paired):
 * `resamples` draws from rng; returns the observed difference and the (1 - alpha) interval. */
typedef struct mf_bootstrap {
  double diff, lo, hi, alpha;
  int resamples;
} mf_bootstrap;
mf_status mf_bootstrap_accuracy_diff(const int32_t *pred_a, const int32_t *pred_b,
                                     const int32_t *labels, int64_t n, int resamples,
                                     double alpha, mf_rng *rng, mf_bootstrap *out);

#ifdef __cplusplus
}
#endif
#endif
