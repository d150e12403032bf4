/* random_crop.c — the `random_crop` augment plugin: train on random windows of the rows.
 *
 * Training on random W-frame crops of longer spectrograms (and evaluating on whole clips) is a
 * common recipe for models that pool over time. Here a batch keeps its shape — the model is
 * built for the dataset's rows — so the crop is done in place: each sample keeps one random
 * window of W consecutive frames where it is, and every frame outside the window becomes the
 * fill value (the sample's mean, zero, or its minimum: silence for log-mel features). The
 * model thus gets at most W frames of context per training sample, at a random offset, while
 * evaluation sees whole rows. Neither stretching the window back to the full length (which
 * would change the tempo) nor tiling it (which would invent repetitions) keeps the content
 * honest; masking does.
 *
 * W is `frames`, or, when frames is 0, round(fraction x T) (at least 1) for rows of T frames;
 * the window's first frame is uniform in {0, ..., T - W}. time_axis names the frame axis within
 * a sample: -1 (the default) for mel spectrograms [n_mels, frames], 0 for MFCC rows
 * [frames, n_coeffs].
 *
 * Draws per sample, in sample order: the p coin (only when 0 < p < 1), then the window start.
 */
#include <math.h>
#include <stdlib.h>

#include "batch.h"

static const mf_api *mf;

typedef struct random_crop {
  int64_t frames;
  double fraction, p;
  int time_axis;
  fill_kind fill;
  scratch starts;
} random_crop;

static const mf_param_spec params[] = {
    {"frames", MF_PT_INT, "0", 0, 1 << 20, NULL,
     "window length W in frames; frames outside the window are filled (0: use fraction)"},
    {"fraction", MF_PT_FLOAT, "0.5", 1e-3, 1, NULL,
     "window length as a fraction of the row's frames, when frames is 0"},
    {"fill", MF_PT_STRING, "mean", 0, -1, "mean|zero|min",
     "frames outside the window: the sample's mean, zero, or its minimum"},
    AUG_P_PARAM("a sample is cropped"),
    AUG_TIME_AXIS_PARAM,
    {0}};

static void *create(const mf_values *v) {
  random_crop *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->frames = mf->value_int(v, "frames");
  c->fraction = mf->value_float(v, "fraction");
  c->fill = fill_parse(mf->value_string(v, "fill"));
  c->p = mf->value_float(v, "p");
  c->time_axis = (int)mf->value_int(v, "time_axis");
  return c;
}

static mf_status apply(void *state, mf_tensor *x, mf_tensor *targets, mf_rng *rng) {
  (void)targets;
  random_crop *c = state;
  sample_axis ax;
  if (sample_axis_of(mf, x, c->time_axis, "random_crop", "time_axis", &ax) != MF_OK)
    return MF_EINVAL;
  const int64_t T = ax.len, n = ax.n, size = ax.size;
  if (c->frames > T)
    return mf->set_error(MF_EINVAL,
                         "random_crop: frames = %lld, but the samples have only %lld frames "
                         "along axis %d; choose a window of at most %lld frames",
                         (long long)c->frames, (long long)T, ax.axis, (long long)T);
  int64_t W = c->frames > 0 ? c->frames : (int64_t)llround(c->fraction * (double)T);
  if (W < 1) W = 1;
  if (W >= T) return MF_OK; /* the window is the whole row */
  int64_t *start =
      scratch_get(mf, &c->starts, sizeof(int64_t) * (size_t)(n ? n : 1), "random_crop");
  if (!start) return MF_ENOMEM;
  for (int64_t i = 0; i < n; i++)
    start[i] = coin(mf, rng, c->p) ? (int64_t)mf->rng_below(rng, (uint32_t)(T - W + 1)) : -1;
  float *data = x->data;
#pragma omp parallel for schedule(static) if (n * size > AUG_PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    if (start[i] < 0) continue;
    float *v = data + i * size;
    const float f = sample_fill(v, size, c->fill);
    fill_frames(v, &ax, 0, start[i], f);
    fill_frames(v, &ax, start[i] + W, T - start[i] - W, f);
  }
  return MF_OK;
}

static void destroy(void *state) {
  random_crop *c = state;
  scratch_free(&c->starts);
  free(c);
}

static const mf_augment_vtable vtable = {create, apply, destroy};

static mf_status init(const mf_registrar *reg) {
  mf = reg->api;
  return reg->add_augment(
      reg,
      &(mf_component_desc){"random_crop",
                           "keeps a random window of frames per sample and fills the rest "
                           "(random crops, shape kept)",
                           params},
      &vtable);
}

MF_PLUGIN_ENTRY(init)
