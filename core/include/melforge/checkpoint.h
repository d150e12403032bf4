/* melforge/checkpoint.h — self-contained training checkpoints in HDF5 (DESIGN.md section 5).
 *
 *   /model/params/<name>    float32, PyTorch layouts (trainable parameters)
 *   /model/buffers/<name>   float32 (batchnorm running statistics, ...)
 *   /optimizer/<name>       optimizer state buffers; attribute steps
 *   /rng/<stream>           uint32 [4]: key0, key1, counter low, counter high
 *   /scaler/offset, /scaler/scale   with attributes kind, per_band, band_axis
 *   /meta                   attributes: model, model_params (JSON), input_shape, n_classes,
 *                           classes, feature, feature_params, segmenting, sample_rate,
 *                           experiment, source (the experiment script), config (JSON),
 *                           dataset, seed, epoch, step, history (JSON), state (JSON),
 *                           melforge_version
 *
 * A checkpoint alone predicts a genre from an audio file: it names the model plugin and its
 * parameters, the feature plugin and its parameters, the segmenting and the fitted scaler.
 * Writes are atomic (temporary file, fsync, rename): a crash never leaves a broken file and
 * the previous checkpoint stays intact until the new one is complete.
 */
#ifndef MELFORGE_CHECKPOINT_H
#define MELFORGE_CHECKPOINT_H

#include <stdint.h>

#include "melforge/component.h"
#include "melforge/optim.h"
#include "melforge/params.h"
#include "melforge/rng.h"
#include "melforge/scaler.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mf_checkpoint_meta {
  char *model;          /* model plugin name */
  char *model_params;   /* JSON */
  mf_shape input_shape; /* one sample */
  int n_classes;
  char **classes;
  char *feature;        /* feature plugin name ("" for imported datasets) */
  char *feature_params; /* JSON */
  char *segmenting;     /* JSON */
  double sample_rate;
  char *experiment;     /* name */
  char *source;         /* the experiment script's text */
  char *config;         /* resolved configuration, JSON */
  char *dataset;        /* path of the dataset trained on */
  uint64_t seed;
  int epoch;            /* epochs completed */
  int step;             /* steps done into epoch + 1 (an interrupted epoch), else 0 */
  char *history;        /* JSON array of per-epoch logs */
  char *state;          /* JSON object: the engine's callback/schedule state */
} mf_checkpoint_meta;

#define MF_CKPT_MAX_RNG 8

typedef struct mf_checkpoint {
  mf_checkpoint_meta meta;
  mf_params *model;       /* parameters (trainable) and buffers, by name */
  mf_params *optim_state; /* NULL when the checkpoint holds none */
  int64_t optim_steps;
  mf_scaler scaler;
  int n_rng;
  char *rng_names[MF_CKPT_MAX_RNG];
  mf_rng rng[MF_CKPT_MAX_RNG];
} mf_checkpoint;

/* Writes path atomically. optim may be NULL (best.h5 keeps weights only); rng_names /
 * rngs may be empty. */
mf_status mf_checkpoint_save(const char *path, const mf_checkpoint_meta *meta,
                             const mf_params *model, const mf_optim *optim,
                             const mf_scaler *scaler, int n_rng, const char *const *rng_names,
                             const mf_rng *rngs);
/* Reads everything; errors name the file and the missing or malformed part. */
mf_status mf_checkpoint_load(const char *path, mf_checkpoint **out);
void mf_checkpoint_free(mf_checkpoint *c);

/* Copies the checkpoint's weights into a model's store: every entry must exist with the
 * same shape on both sides (an error names the first that does not). */
mf_status mf_checkpoint_restore_params(const mf_checkpoint *c, mf_params *model);
/* The stream saved under name, or MF_ENOTFOUND. */
mf_status mf_checkpoint_rng(const mf_checkpoint *c, const char *name, mf_rng *out);

void mf_checkpoint_meta_clear(mf_checkpoint_meta *m);

#ifdef __cplusplus
}
#endif
#endif
