/* batch.h — what the augmentation plugins share (compiled into each .so): finding an axis of
 * the samples inside a batch, per-sample fill values, the per-sample coin flip and scratch
 * buffers that grow once and are then reused, so the steady-state training step allocates
 * nothing.
 *
 * A batch is x [N, ...]: N samples of one shape, e.g. [n_mels, frames] (mel spectrograms, time
 * on the last axis), [frames, n_coeffs] (MFCC rows, time on axis 0) or [1, n_mels, frames]
 * (with a channel axis). The plugins do not see which axis is time, so time- and
 * frequency-based plugins take it as a parameter, counted within one sample: from the end
 * when negative (-1 the last axis, -2 the one before), from the front otherwise.
 */
#ifndef MF_PLUGIN_AUGMENT_BATCH_H
#define MF_PLUGIN_AUGMENT_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "melforge/plugin.h"

/* Batches smaller than this many floats run on one thread (the core's MF_PAR_MIN). */
#define AUG_PAR_MIN 32768

/* Schema lines shared by several plugins. */
#define AUG_P_PARAM(what) \
  { "p", MF_PT_FLOAT, "1", 0, 1, NULL, "probability that " what " (drawn independently)" }
#define AUG_TIME_AXIS_PARAM                                                                 \
  {                                                                                         \
    "time_axis", MF_PT_INT, "-1", -5, 4, NULL,                                              \
        "axis of a sample holding frames, from the end when negative: -1 for mel [n_mels, " \
        "frames] "                                                                          \
        "(with or without a channel axis), 0 for MFCC rows [frames, n_coeffs]"              \
  }

/* One axis of the samples of a batch: a sample is outer x len x inner floats with the axis in
 * the middle, so element (o, k, i) of sample s is x->data[s * size + (o * len + k) * inner + i]. */
typedef struct sample_axis {
  int64_t n;    /* samples in the batch */
  int64_t size; /* floats per sample */
  int64_t outer, len, inner;
  int axis; /* resolved, 0-based within a sample */
} sample_axis;

/* Resolves `axis` (a parameter named `param` of plugin `who`) for batch x. MF_EINVAL naming the
 * plugin, the parameter, its value and the sample shape when it names no axis. */
mf_status sample_axis_of(const mf_api *mf, const mf_tensor *x, int axis, const char *who,
                         const char *param, sample_axis *out);

/* Fills frames [start, start + width) of one sample along ax with v. */
void fill_frames(float *sample, const sample_axis *ax, int64_t start, int64_t width, float v);

/* What masked or vacated values become: the sample's mean (SpecAugment's Keras layer), zero,
 * the sample's minimum (silence, for log-mel features) or the nearest kept frame (edge). */
typedef enum fill_kind { FILL_MEAN, FILL_ZERO, FILL_MIN, FILL_EDGE } fill_kind;
fill_kind fill_parse(const char *name); /* a schema-validated choice */
/* The value for mean / zero / min over a whole sample (mean accumulated in double). */
float sample_fill(const float *sample, int64_t size, fill_kind k);

/* 1 with probability p. Draws nothing when p is 0 or 1, so p = 1 leaves the stream to the
 * augmentation itself. */
int coin(const mf_api *mf, mf_rng *rng, double p);

/* A heap buffer kept by a plugin instance; grows to the largest batch seen. */
typedef struct scratch {
  void *p;
  size_t cap;
} scratch;
/* At least `bytes` bytes, or NULL after setting MF_ENOMEM naming `who`. */
void *scratch_get(const mf_api *mf, scratch *s, size_t bytes, const char *who);
void scratch_free(scratch *s);

#endif
