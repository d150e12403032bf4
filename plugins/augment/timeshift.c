/* timeshift.c — the `timeshift` augment plugin: moves each sample along its time axis by a
 * random whole number of frames s, uniform in {-S, ..., S}; positive s moves the content later.
 *
 * mode "roll" is circular, like torch.roll / np.roll: frames pushed out at one end come back
 * at the other (out[t] = x[(t - s) mod T]). mode "shift" drops them and fills the vacated
 * frames with `fill`: the sample's mean, zero, its minimum (silence for log-mel features) or
 * edge, a copy of the nearest kept frame (replicate padding).
 *
 * S is max_shift frames, or, when max_shift is 0, floor(max_fraction x T) for rows of T frames
 * (at most T - 1). time_axis names the frame axis within a sample: -1 (the default) for mel
 * spectrograms [n_mels, frames] with or without a channel axis, 0 for MFCC rows
 * [frames, n_coeffs].
 *
 * Draws per sample, in sample order: the p coin (only when 0 < p < 1), then the shift.
 */
#include <stdlib.h>
#include <string.h>

#include "batch.h"

static const mf_api *mf;

typedef struct timeshift {
  int64_t max_shift;
  double max_fraction, p;
  int roll, time_axis;
  fill_kind fill;
  scratch shifts, copy;
} timeshift;

static const mf_param_spec params[] = {
    {"max_shift", MF_PT_INT, "0", 0, 1 << 20, NULL,
     "largest shift in frames, either way (0: use max_fraction)"},
    {"max_fraction", MF_PT_FLOAT, "0.2", 0, 1, NULL,
     "largest shift as a fraction of the frames, when max_shift is 0"},
    {"mode", MF_PT_STRING, "roll", 0, -1, "roll|shift",
     "roll: circular (torch.roll); shift: vacated frames get the fill value"},
    {"fill", MF_PT_STRING, "mean", 0, -1, "mean|zero|min|edge",
     "vacated frames in mode shift: the sample's mean, zero, its minimum, or the nearest frame"},
    AUG_P_PARAM("a sample is shifted"),
    AUG_TIME_AXIS_PARAM,
    {0}};

static void *create(const mf_values *v) {
  timeshift *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->max_shift = mf->value_int(v, "max_shift");
  s->max_fraction = mf->value_float(v, "max_fraction");
  s->roll = !strcmp(mf->value_string(v, "mode"), "roll");
  s->fill = fill_parse(mf->value_string(v, "fill"));
  s->p = mf->value_float(v, "p");
  s->time_axis = (int)mf->value_int(v, "time_axis");
  return s;
}

/* Frames [from, from + count) of src to frames [to, to + count) of dst, for every outer index. */
static void move_frames(float *dst, const float *src, const sample_axis *ax, int64_t to,
                        int64_t from, int64_t count) {
  if (count <= 0) return;
  for (int64_t o = 0; o < ax->outer; o++)
    memcpy(dst + (o * ax->len + to) * ax->inner, src + (o * ax->len + from) * ax->inner,
           sizeof(float) * (size_t)(count * ax->inner));
}

/* Frames [to, to + count) of dst become copies of frame `from` of src. */
static void replicate_frame(float *dst, const float *src, const sample_axis *ax, int64_t to,
                            int64_t from, int64_t count) {
  for (int64_t t = 0; t < count; t++) move_frames(dst, src, ax, to + t, from, 1);
}

static mf_status apply(void *state, mf_tensor *x, mf_tensor *targets, mf_rng *rng) {
  (void)targets;
  timeshift *s = state;
  sample_axis ax;
  if (sample_axis_of(mf, x, s->time_axis, "timeshift", "time_axis", &ax) != MF_OK) return MF_EINVAL;
  const int64_t T = ax.len, n = ax.n, size = ax.size;
  if (s->max_shift >= T && T > 0)
    return mf->set_error(MF_EINVAL,
                         "timeshift: max_shift = %lld frames, but the samples have %lld frames "
                         "along axis %d; use at most %lld (or max_fraction)",
                         (long long)s->max_shift, (long long)T, ax.axis, (long long)(T - 1));
  int64_t S = s->max_shift > 0 ? s->max_shift : (int64_t)(s->max_fraction * (double)T);
  if (S > T - 1) S = T - 1; /* max_fraction = 1: every shift that keeps a frame */
  int64_t *shift = scratch_get(mf, &s->shifts, sizeof(int64_t) * (size_t)(n ? n : 1), "timeshift");
  float *copy =
      scratch_get(mf, &s->copy, sizeof(float) * (size_t)(x->numel ? x->numel : 1), "timeshift");
  if (!shift || !copy) return MF_ENOMEM;
  for (int64_t i = 0; i < n; i++) {
    shift[i] = 0;
    if (coin(mf, rng, s->p) && S > 0)
      shift[i] = (int64_t)mf->rng_below(rng, (uint32_t)(2 * S + 1)) - S;
  }
  float *data = x->data;
#pragma omp parallel for schedule(static) if (n * size > AUG_PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    const int64_t sh = shift[i];
    if (sh == 0) continue;
    float *dst = data + i * size, *src = copy + i * size;
    memcpy(src, dst, sizeof(float) * (size_t)size);
    const int64_t a = sh > 0 ? sh : -sh;
    if (s->roll) {
      const int64_t r = sh > 0 ? sh : T + sh; /* out[t] = x[(t - r) mod T] */
      move_frames(dst, src, &ax, r, 0, T - r);
      move_frames(dst, src, &ax, 0, T - r, r);
      continue;
    }
    /* The kept frames move by sh; the a vacated ones are at the start (sh > 0) or the end. */
    const int64_t vacated = sh > 0 ? 0 : T - a;
    move_frames(dst, src, &ax, sh > 0 ? a : 0, sh > 0 ? 0 : a, T - a);
    if (s->fill == FILL_EDGE)
      replicate_frame(dst, src, &ax, vacated, sh > 0 ? 0 : T - 1, a);
    else
      fill_frames(dst, &ax, vacated, a, sample_fill(src, size, s->fill));
  }
  return MF_OK;
}

static void destroy(void *state) {
  timeshift *s = state;
  scratch_free(&s->shifts);
  scratch_free(&s->copy);
  free(s);
}

static const mf_augment_vtable vtable = {create, apply, destroy};

static mf_status init(const mf_registrar *reg) {
  mf = reg->api;
  return reg->add_augment(
      reg,
      &(mf_component_desc){
          "timeshift", "random shift along time per sample, circular (roll) or with fill", params},
      &vtable);
}

MF_PLUGIN_ENTRY(init)
