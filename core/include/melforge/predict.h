/* melforge/predict.h — a checkpoint loaded as a ready classifier: the model plugin rebuilt
 * from its stored name and parameters with the trained weights, the fitted scaler, and (when
 * the checkpoint was trained on features a plugin computes from audio) the feature plugin
 * with its stored parameters and segmenting. What `melforge eval` and `melforge predict`
 * run on, usable from plain C.
 *
 * Life cycle:
 *   mf_classifier *c; mf_classifier_load("runs/cnn/42/best.h5", &c);
 *   float p[C]; int64_t segs;
 *   mf_classifier_classify_file(c, "song.wav", p, &segs);      // mean segment softmax
 *   ... or mf_classifier_rows / mf_classifier_evaluate on dataset rows ...
 *   mf_classifier_free(c);
 *
 * Rows are classified exactly as the training engine evaluates them (eval mode, no grad,
 * the scaler applied to a copy, batches of the run's eval_batch_size by default, the arena
 * reset between batches), so evaluating the test split of the run that wrote a checkpoint
 * reproduces the run's test metrics. One classifier owns one arena: classify from one thread
 * at a time. Turning audio into feature rows (mf_classifier_features) is thread-safe, so
 * files can be prepared in parallel and classified in turn.
 */
#ifndef MELFORGE_PREDICT_H
#define MELFORGE_PREDICT_H

#include <stdint.h>

#include "melforge/checkpoint.h"
#include "melforge/dataset.h"
#include "melforge/extract.h"
#include "melforge/metrics.h"
#include "melforge/split.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mf_classifier mf_classifier;

/* Loads the checkpoint and builds its model (the model plugin must be loaded: see
 * component.h) with the stored weights. The feature plugin is optional here: without it
 * the classifier still works on feature rows, and mf_classifier_audio_ready says why audio
 * cannot be classified. Errors name the file and the missing or malformed part. */
mf_status mf_classifier_load(const char *checkpoint_path, mf_classifier **out);
void mf_classifier_free(mf_classifier *c);

const mf_checkpoint *mf_classifier_checkpoint(const mf_classifier *c);
int mf_classifier_n_classes(const mf_classifier *c);
char *const *mf_classifier_classes(const mf_classifier *c);
mf_shape mf_classifier_input_shape(const mf_classifier *c);

/* What the run that wrote the checkpoint used for its evaluations (from the stored
 * configuration; the engine's defaults when there is none). */
typedef struct mf_classifier_settings {
  int eval_batch_size;    /* rows per forward pass: 128 unless the run changed it */
  int top_k;              /* 3 unless the run changed it (at most the number of classes) */
  double label_smoothing; /* of the reported loss */
} mf_classifier_settings;
mf_classifier_settings mf_classifier_run_settings(const mf_classifier *c);

typedef struct mf_classify_options {
  int batch; /* rows per forward pass; 0: the run's eval_batch_size */
  /* Called after each batch (may be NULL). */
  void (*progress)(int64_t done, int64_t total, void *user);
  void *user;
} mf_classify_options;

/* Softmax probabilities probs [n, n_classes] for n rows of the input shape, unscaled (as a
 * dataset stores them): row i is rows[idx[i]] (idx NULL: rows[i]). With labels (aligned
 * with the output rows, checkpoint class indices) *loss gets the mean cross-entropy with
 * the run's label smoothing, as the engine reports it; loss may be NULL. opt may be NULL. */
mf_status mf_classifier_rows(mf_classifier *c, const float *rows, const int64_t *idx, int64_t n,
                             const int32_t *labels, const mf_classify_options *opt, float *probs,
                             double *loss);

/* ---- datasets ----------------------------------------------------------------------------- */

/* How a dataset's classes and features relate to the checkpoint's. */
typedef struct mf_dataset_match {
  int32_t *label_map; /* [dataset classes]: dataset class -> checkpoint class */
  int reordered;      /* the classes are the same but in another order */
  int missing;        /* checkpoint classes the dataset has no rows of, or lacks */
  /* Differences of feature plugin, its parameters, segmenting or sample rate, one per line
   * ("feature parameter n_mels: 64 in the dataset, 128 in the checkpoint"); NULL when none.
   * Evaluating still works but the numbers do not measure what the model learned. */
  char *warnings;
} mf_dataset_match;

/* Maps the dataset's classes onto the checkpoint's by name. Errors: a class the checkpoint
 * does not know (named), a sample shape other than the model's input shape (both named). */
mf_status mf_classifier_match(const mf_classifier *c, const mf_dataset_info *info,
                              mf_dataset_match *out);
void mf_dataset_match_clear(mf_dataset_match *m);

/* The split of the run that wrote the checkpoint, recomputed as mf_train_run does: from the
 * stored configuration (ratios, stratify, group, k-fold, or the fixed list files) and the
 * seed's split stream. Given the same dataset, out->test holds the rows the run tested on.
 * desc (may be NULL) gets a one-line description ("0.64/0.16/0.20, stratified, grouped by
 * track, seed 42"). MF_ENOTFOUND when the checkpoint holds no configuration. */
mf_status mf_classifier_run_split(const mf_classifier *c, const mf_dataset *ds, mf_split *out,
                                  char *desc, size_t desc_size);

/* Segment- and track-level metrics of rows idx[0..n) of ds (idx NULL: every row), labels
 * mapped through match (NULL: the dataset's classes are the checkpoint's). top_k 0: the
 * run's. *probs_out (may be NULL) gets the probabilities [n, n_classes] (malloc'd). */
mf_status mf_classifier_evaluate(mf_classifier *c, const mf_dataset *ds,
                                 const mf_dataset_match *match, const int64_t *idx, int64_t n,
                                 int top_k, const mf_classify_options *opt, mf_metrics *out,
                                 float **probs_out);

/* ---- audio -------------------------------------------------------------------------------- */

/* MF_OK when audio can be classified; otherwise the reason (a checkpoint trained on imported
 * features has no feature plugin; a plugin that is not loaded; bad stored segmenting). */
mf_status mf_classifier_audio_ready(const mf_classifier *c);
/* The rate audio must have (the checkpoint's sample rate). */
double mf_classifier_sample_rate(const mf_classifier *c);

/* Mono audio at the sample rate -> *n_rows unscaled feature rows of the input shape
 * (malloc'd), with the stored feature and segmenting; "N equal segments of a T-second
 * track" is applied as consecutive segments of the trained length over the whole audio. Errors: too short (the reason names
 * both lengths), rows of another shape than the model's. Thread-safe. */
mf_status mf_classifier_features(const mf_classifier *c, const float *audio, int64_t n,
                                 float **rows, int64_t *n_rows);

/* The mean of the segment probabilities of n_rows rows: probs [n_classes]. */
mf_status mf_classifier_average(mf_classifier *c, const float *rows, int64_t n_rows,
                                const mf_classify_options *opt, float *probs);

/* One audio file made ready for the model: its feature rows, or why it cannot be. */
typedef struct mf_file_rows {
  float *rows; /* n_rows rows of the input shape, unscaled (malloc'd) */
  int64_t n_rows;
  mf_status status; /* MF_ENOTFOUND (no such file), MF_EFORMAT (not audio), MF_EINVAL (too
                       short, ...) with error set; MF_OK */
  char *error;      /* the reason, naming the file (malloc'd), when it failed; rows NULL */
} mf_file_rows;

/* Reads n audio files (any format libsndfile reads) at the sample rate and turns each into
 * feature rows, in parallel over files (decoding, resampling and features are where the time
 * goes); out[i] belongs to paths[i] whatever the thread count. */
void mf_classifier_prepare_files(const mf_classifier *c, const char *const *paths, int n,
                                 mf_file_rows *out);
void mf_file_rows_clear(mf_file_rows *r);

/* One file: prepared as above, its segment probabilities averaged: probs [n_classes];
 * n_segments may be NULL. */
mf_status mf_classifier_classify_file(mf_classifier *c, const char *path, float *probs,
                                      int64_t *n_segments);

/* The k most probable classes into out[0..k), most probable first (ties: the lower index
 * first); a k above n_classes lists all n_classes. */
void mf_top_k(const float *probs, int n_classes, int k, int *out);

#ifdef __cplusplus
}
#endif
#endif
