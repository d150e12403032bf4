/* specaugment.c — the `specaugment` augment plugin: frequency and time masking (Park et al.,
 * "SpecAugment", 2019; torchaudio.transforms.FrequencyMasking / TimeMasking; the GTZAN Keras
 * notebook's masking layer), without time warping.
 *
 * Each sample, with probability p, gets freq_masks bands masks and time_masks frame masks,
 * drawn independently per sample: a mask's width is uniform in {0, ..., F} (F = freq_mask or
 * time_mask, at most the axis length) and its start uniform in {0, ..., n - width}, as in the
 * paper (torchaudio draws widths in [0, F), a hair narrower). Masks may overlap. Masked values
 * become mask_value: the sample's mean before masking (as the Keras notebook), zero, or the
 * sample's minimum (silence for log-mel features).
 *
 * Draws per sample, in sample order: the p coin (only when 0 < p < 1), then for each
 * frequency mask its width and start, then the same for each time mask.
 */
#include <stdlib.h>

#include "batch.h"

static const mf_api *mf;

typedef struct specaugment {
  int64_t freq_masks, freq_mask, time_masks, time_mask;
  int freq_axis, time_axis;
  fill_kind fill;
  double p;
  scratch draws; /* per sample: applied flag, then (start, width) per mask */
} specaugment;

static const mf_param_spec params[] = {
    {"freq_masks", MF_PT_INT, "2", 0, 64, NULL, "frequency masks per sample"},
    {"freq_mask", MF_PT_INT, "15", 0, 1 << 20, NULL,
     "largest frequency mask, in bands: width ~ U{0..freq_mask} (torchaudio freq_mask_param)"},
    {"time_masks", MF_PT_INT, "2", 0, 64, NULL, "time masks per sample"},
    {"time_mask", MF_PT_INT, "25", 0, 1 << 20, NULL,
     "largest time mask, in frames: width ~ U{0..time_mask} (torchaudio time_mask_param)"},
    {"mask_value", MF_PT_STRING, "mean", 0, -1, "mean|zero|min",
     "what masked values become: the sample's mean, zero, or the sample's minimum"},
    AUG_P_PARAM("a sample is masked"),
    {"freq_axis", MF_PT_INT, "-2", -5, 4, NULL,
     "axis of a sample holding bands, from the end when negative: -2 for mel [n_mels, frames] "
     "(with or without a channel axis), 1 for MFCC rows [frames, n_coeffs]"},
    AUG_TIME_AXIS_PARAM,
    {0}};

static void *create(const mf_values *v) {
  specaugment *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->freq_masks = mf->value_int(v, "freq_masks");
  s->freq_mask = mf->value_int(v, "freq_mask");
  s->time_masks = mf->value_int(v, "time_masks");
  s->time_mask = mf->value_int(v, "time_mask");
  s->freq_axis = (int)mf->value_int(v, "freq_axis");
  s->time_axis = (int)mf->value_int(v, "time_axis");
  s->fill = fill_parse(mf->value_string(v, "mask_value"));
  s->p = mf->value_float(v, "p");
  return s;
}

/* Width and start of one mask along an axis of length n. */
static void draw_mask(mf_rng *rng, int64_t n, int64_t max_width, int64_t *rec) {
  const int64_t cap = max_width < n ? max_width : n;
  const int64_t w = mf->rng_below(rng, (uint32_t)(cap + 1));
  rec[0] = mf->rng_below(rng, (uint32_t)(n - w + 1));
  rec[1] = w;
}

static mf_status apply(void *state, mf_tensor *x, mf_tensor *targets, mf_rng *rng) {
  (void)targets;
  specaugment *s = state;
  sample_axis fa = {0}, ta = {0};
  const int use_f = s->freq_masks > 0, use_t = s->time_masks > 0;
  if (!use_f && !use_t) return MF_OK;
  if (use_f && sample_axis_of(mf, x, s->freq_axis, "specaugment", "freq_axis", &fa) != MF_OK)
    return MF_EINVAL;
  if (use_t && sample_axis_of(mf, x, s->time_axis, "specaugment", "time_axis", &ta) != MF_OK)
    return MF_EINVAL;
  if (use_f && use_t && fa.axis == ta.axis)
    return mf->set_error(MF_EINVAL,
                         "specaugment: freq_axis = %d and time_axis = %d are the same axis (%d) of "
                         "the samples; for MFCC rows [frames, n_coeffs] set time_axis = 0 and "
                         "freq_axis = 1",
                         s->freq_axis, s->time_axis, fa.axis);
  const sample_axis *any = use_f ? &fa : &ta;
  const int64_t n = any->n, size = any->size;
  const int64_t per = 1 + 2 * (s->freq_masks + s->time_masks);
  int64_t *rec = scratch_get(mf, &s->draws, sizeof(int64_t) * (size_t)(n * per + 1), "specaugment");
  if (!rec) return MF_ENOMEM;
  for (int64_t i = 0; i < n; i++) {
    int64_t *r = rec + i * per;
    r[0] = coin(mf, rng, s->p);
    if (!r[0]) continue;
    for (int64_t m = 0; m < s->freq_masks; m++) draw_mask(rng, fa.len, s->freq_mask, r + 1 + 2 * m);
    for (int64_t m = 0; m < s->time_masks; m++)
      draw_mask(rng, ta.len, s->time_mask, r + 1 + 2 * (s->freq_masks + m));
  }
  float *data = x->data;
#pragma omp parallel for schedule(static) if (n * size > AUG_PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    const int64_t *r = rec + i * per;
    if (!r[0]) continue;
    float *sample = data + i * size;
    const float v = sample_fill(sample, size, s->fill);
    for (int64_t m = 0; m < s->freq_masks; m++)
      fill_frames(sample, &fa, r[1 + 2 * m], r[2 + 2 * m], v);
    for (int64_t m = 0; m < s->time_masks; m++) {
      const int64_t *tm = r + 1 + 2 * (s->freq_masks + m);
      fill_frames(sample, &ta, tm[0], tm[1], v);
    }
  }
  return MF_OK;
}

static void destroy(void *state) {
  specaugment *s = state;
  scratch_free(&s->draws);
  free(s);
}

static const mf_augment_vtable vtable = {create, apply, destroy};

static mf_status init(const mf_registrar *reg) {
  mf = reg->api;
  return reg->add_augment(
      reg,
      &(mf_component_desc){"specaugment",
                           "SpecAugment frequency and time masking, independently per sample",
                           params},
      &vtable);
}

MF_PLUGIN_ENTRY(init)
