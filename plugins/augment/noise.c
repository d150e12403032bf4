/* noise.c — the `noise` augment plugin: additive Gaussian noise on the (scaled) features.
 *
 * mode "snr": each sample draws a signal-to-noise ratio uniformly in [snr_min, snr_max] dB
 * (audiomentations' AddGaussianSNR) relative to its own power, the mean of its squared values
 * as the model sees them (after scaling): std = sqrt(power / 10^(snr / 10)). A sample of zeros
 * stays unchanged. mode "std": noise of a fixed standard deviation `std`, in the units of the
 * scaled features (0.05 on minmax-scaled features is 5 % of their range).
 *
 * Draws, per batch: a 64-bit key (two rng_u32 words), then per sample in sample order the p
 * coin (only when 0 < p < 1) and, in snr mode, the SNR. The noise values themselves come from
 * Philox4x32-10 blocks under that key, block (sample * blocks_per_sample + j / 4) for element
 * j, the same counter-based generator as the core's: all randomness still flows from the
 * augmentation stream, while the bulk of normals is generated in parallel and does not depend
 * on the thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"

static const mf_api *mf;

typedef struct noise {
  int snr_mode;
  double snr_min, snr_max, std, p;
  scratch draws;
} noise;

static const mf_param_spec params[] = {
    {"mode", MF_PT_STRING, "snr", 0, -1, "snr|std",
     "snr: a random SNR relative to each sample's power; std: a fixed absolute std"},
    {"snr_min", MF_PT_FLOAT, "10", -30, 100, NULL,
     "lowest signal-to-noise ratio in dB (mode snr; power = mean of the squared scaled values)"},
    {"snr_max", MF_PT_FLOAT, "30", -30, 100, NULL,
     "highest signal-to-noise ratio in dB (mode snr)"},
    {"std", MF_PT_FLOAT, "0.05", 0, 1000, NULL,
     "noise standard deviation in units of the scaled features (mode std)"},
    AUG_P_PARAM("noise is added to a sample"),
    {0}};

static void *create(const mf_values *v) {
  noise *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->snr_mode = !strcmp(mf->value_string(v, "mode"), "snr");
  s->snr_min = mf->value_float(v, "snr_min");
  s->snr_max = mf->value_float(v, "snr_max");
  s->std = mf->value_float(v, "std");
  s->p = mf->value_float(v, "p");
  if (s->snr_mode && s->snr_min > s->snr_max) {
    mf->set_error(MF_EINVAL, "noise: snr_min = %g dB is above snr_max = %g dB; swap them",
                  s->snr_min, s->snr_max);
    free(s);
    return NULL;
  }
  return s;
}

/* Philox4x32-10 (Salmon et al., SC'11), word for word the core's mf_philox4x32. */
static inline void philox(uint32_t k0, uint32_t k1, uint64_t counter, uint32_t out[4]) {
  uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
  for (int r = 0; r < 10; r++) {
    const uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
    const uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    c1 = (uint32_t)p1;
    c3 = (uint32_t)p0;
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

/* Four standard normals from one block: Box-Muller on two pairs of 24-bit uniforms (float is
 * plenty for noise; the tails reach 5.7 sigma). */
static inline void normals4(uint32_t k0, uint32_t k1, uint64_t counter, float z[4]) {
  uint32_t w[4];
  philox(k0, k1, counter, w);
  for (int h = 0; h < 2; h++) {
    const float u1 = (float)((w[2 * h] >> 8) + 1) * (1.0f / 16777216.0f); /* (0, 1] */
    const float u2 = (float)(w[2 * h + 1] >> 8) * (1.0f / 16777216.0f);
    const float r = sqrtf(-2.0f * logf(u1)), th = 6.2831853f * u2;
    z[2 * h] = r * cosf(th);
    z[2 * h + 1] = r * sinf(th);
  }
}

typedef struct draw {
  int on;
  float snr_db; /* mode snr */
  float sd;     /* the noise std of the sample */
} draw;

static mf_status apply(void *state, mf_tensor *x, mf_tensor *targets, mf_rng *rng) {
  (void)targets;
  noise *s = state;
  const int64_t n = x->shape[0], size = n ? x->numel / n : 0;
  if (n == 0 || size == 0) return MF_OK;
  draw *d = scratch_get(mf, &s->draws, sizeof(draw) * (size_t)n, "noise");
  if (!d) return MF_ENOMEM;
  const uint32_t k0 = mf->rng_u32(rng), k1 = mf->rng_u32(rng);
  for (int64_t i = 0; i < n; i++) {
    d[i].on = coin(mf, rng, s->p);
    d[i].sd = (float)s->std;
    if (d[i].on && s->snr_mode)
      d[i].snr_db = (float)(s->snr_min + (s->snr_max - s->snr_min) * mf->rng_uniform(rng));
  }
  float *data = x->data;
  if (s->snr_mode) {
#pragma omp parallel for schedule(static) if (n * size > AUG_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
      if (!d[i].on) continue;
      const float *v = data + i * size;
      double pw = 0;
      for (int64_t k = 0; k < size; k++) pw += (double)v[k] * v[k];
      pw /= (double)size;
      d[i].sd = (float)sqrt(pw / pow(10.0, d[i].snr_db / 10.0));
    }
  }
  /* Element j of sample i comes from block i * bps + j / 4; blocks are generated 16 at a time
   * into a buffer, then added in one vectorisable loop. */
  const int64_t bps = (size + 3) / 4, chunks = (size + 63) / 64;
#pragma omp parallel for collapse(2) schedule(static) if (n * size > AUG_PAR_MIN)
  for (int64_t i = 0; i < n; i++)
    for (int64_t c = 0; c < chunks; c++) {
      if (!d[i].on || d[i].sd == 0) continue;
      float z[64];
      const int64_t j0 = c * 64, m = size - j0 < 64 ? size - j0 : 64;
      for (int64_t b = 0; b < (m + 3) / 4; b++)
        normals4(k0, k1, (uint64_t)(i * bps + c * 16 + b), z + 4 * b);
      const float sd = d[i].sd;
      float *v = data + i * size + j0;
      for (int64_t k = 0; k < m; k++) v[k] += sd * z[k];
    }
  return MF_OK;
}

static void destroy(void *state) {
  noise *s = state;
  scratch_free(&s->draws);
  free(s);
}

static const mf_augment_vtable vtable = {create, apply, destroy};

static mf_status init(const mf_registrar *reg) {
  mf = reg->api;
  return reg->add_augment(
      reg,
      &(mf_component_desc){
          "noise", "additive Gaussian noise at a random SNR per sample, or of a fixed std", params},
      &vtable);
}

MF_PLUGIN_ENTRY(init)
