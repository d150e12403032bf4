/* mfcc.c — the `mfcc` feature plugin: librosa.feature.mfcc(...).T, optionally followed by
 * librosa.feature.delta of order 1 and 2, output frame-major [frames, n_mfcc * (1 + deltas)]
 * (time on axis 0: the MLP notebooks' [130, 13] segments).
 *
 * The log-mel is melspec's dB output with the same parameters (all of melspec's are
 * accepted; db must stay true), then the orthonormal DCT-II over the bands keeps the first
 * n_mfcc coefficients (13 by default, the GTZAN recipe; librosa's default is 20), then the
 * optional sinusoidal lifter. deltas = 1 appends the delta, 2 also the delta-delta, each a
 * Savitzky-Golay derivative over delta_width frames with scipy's 'interp' edges; like
 * librosa, they need at least delta_width frames.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spectral.h"

static const mf_api *mf;

static const mf_param_spec params[] = {
    SPECTRAL_PARAMS,
    {"n_mfcc", MF_PT_INT, "13", 1, 4096, NULL, "coefficients kept (at most n_mels)"},
    {"lifter", MF_PT_FLOAT, "0", 0, 1e6, NULL,
     "sinusoidal liftering 1 + (lifter/2) sin(pi (k+1) / lifter) of coefficient k; 0 = none"},
    {"deltas", MF_PT_INT, "0", 0, 2, NULL, "1 appends deltas, 2 also delta-deltas"},
    {"delta_width", MF_PT_INT, "9", 3, 999, NULL, "frames in each delta's window (odd)"},
    {0}};

typedef struct mfcc {
  spectral *spec;
  int n_mels, n_mfcc, deltas;
  double *dct; /* [n_mfcc, n_mels]: orthonormal DCT-II rows times the lifter */
  delta_filter delta[2];
} mfcc;

static void destroy(void *state) {
  mfcc *m = state;
  if (!m) return;
  spectral_free(m->spec);
  free(m->dct);
  for (int d = 0; d < 2; d++) delta_filter_release(&m->delta[d]);
  free(m);
}

static void *create(const mf_values *v, double sample_rate) {
  spectral_cfg cfg;
  if (spectral_read_cfg(mf, v, sample_rate, "mfcc", &cfg)) return NULL;
  const int n_mfcc = (int)mf->value_int(v, "n_mfcc");
  const int width = (int)mf->value_int(v, "delta_width");
  const double lifter = mf->value_float(v, "lifter");
  if (!cfg.db) {
    mf->set_error(MF_EINVAL,
                  "mfcc: parameter 'db' must be true: MFCCs are the DCT of the log-mel (use the "
                  "melspec feature for mel power)");
    return NULL;
  }
  if (n_mfcc > cfg.n_mels) {
    mf->set_error(MF_EINVAL, "mfcc: parameter 'n_mfcc' = %d exceeds n_mels = %d", n_mfcc,
                  cfg.n_mels);
    return NULL;
  }
  if (width % 2 == 0) {
    mf->set_error(MF_EINVAL, "mfcc: parameter 'delta_width' = %d must be odd", width);
    return NULL;
  }
  mfcc *m = calloc(1, sizeof *m);
  if (!m) goto nomem;
  m->n_mels = cfg.n_mels;
  m->n_mfcc = n_mfcc;
  m->deltas = (int)mf->value_int(v, "deltas");
  m->dct = malloc((size_t)n_mfcc * (size_t)cfg.n_mels * sizeof(double));
  if (!m->dct) goto nomem;
  /* scipy.fft.dct(type=2, norm='ortho'): sqrt(2/N) cos(pi k (2n+1) / 2N), row 0 over sqrt(2) */
  const int nm = cfg.n_mels;
  for (int k = 0; k < n_mfcc; k++) {
    double scale = sqrt(2.0 / nm) * (k == 0 ? sqrt(0.5) : 1.0);
    if (lifter > 0) scale *= 1.0 + lifter / 2 * sin(M_PI * (k + 1) / lifter);
    for (int n = 0; n < nm; n++)
      m->dct[(size_t)k * nm + n] = scale * cos(M_PI * k * (2.0 * n + 1) / (2.0 * nm));
  }
  for (int d = 0; d < m->deltas; d++)
    if (delta_filter_init(mf, width, d + 1, &m->delta[d])) {
      destroy(m);
      return NULL;
    }
  m->spec = spectral_new(mf, &cfg);
  if (!m->spec) {
    destroy(m);
    return NULL;
  }
  return m;
nomem:
  destroy(m);
  mf->set_error(MF_ENOMEM, "mfcc: out of memory");
  return NULL;
}

/* Frames for n samples, or 0 with the error set. */
static int64_t frames_of(const mfcc *m, int64_t n) {
  const spectral_cfg *c = spectral_config(m->spec);
  const int64_t frames = spectral_frames(m->spec, n);
  if (frames <= 0) {
    mf->set_error(MF_EINVAL, "mfcc: %lld samples give no frame (n_fft %d)", (long long)n, c->n_fft);
    return 0;
  }
  if (m->deltas && frames < m->delta[0].width) {
    mf->set_error(MF_EINVAL,
                  "mfcc: deltas need at least delta_width = %d frames, but %lld samples give %lld "
                  "(hop_length %d); use longer audio or a smaller delta_width",
                  m->delta[0].width, (long long)n, (long long)frames, c->hop_length);
    return 0;
  }
  return frames;
}

static mf_status layout(void *state, int64_t n_samples, mf_feature_layout *out) {
  const mfcc *m = state;
  const int64_t frames = frames_of(m, n_samples);
  if (!frames) return MF_EINVAL;
  out->shape = MF_SHAPE(frames, (int64_t)m->n_mfcc * (1 + m->deltas));
  out->time_axis = 0;
  out->hop = spectral_config(m->spec)->hop_length;
  return MF_OK;
}

typedef float v4sf_u __attribute__((vector_size(16), aligned(4), may_alias));
typedef double v4df __attribute__((vector_size(32)));

/* out[t * cols + k] = sum_n dct[k][n] db[n][t], accumulated in double: the terms reach
 * +-100 dB and float sums over 128 bands would cost ~1e-4 of the 1e-3 budget against librosa.
 * Eight frames of up to four coefficients stay in registers while n runs over the bands: four
 * independent accumulator pairs hide the add latency, and each load feeds four of them. */
HOT static void dct_frames(const mfcc *m, const float *db, int64_t frames, float *out,
                           int64_t cols) {
  const int nm = m->n_mels;
  int64_t t = 0;
  for (; t + 8 <= frames; t += 8) {
    for (int k0 = 0; k0 < m->n_mfcc; k0 += 4) {
      const int nk = m->n_mfcc - k0 < 4 ? m->n_mfcc - k0 : 4;
      const double *r0 = m->dct + (size_t)k0 * nm;
      /* rows past n_mfcc repeat the last one; their sums are dropped */
      const double *r1 = r0 + (nk > 1) * nm, *r2 = r0 + (nk > 2) * 2 * nm,
                   *r3 = r0 + (nk > 3) * 3 * nm;
      v4df a[4][2] = {{{0}}};
      for (int n = 0; n < nm; n++) {
        const float *d = db + n * frames + t;
        const v4df lo = __builtin_convertvector(*(const v4sf_u *)d, v4df);
        const v4df hi = __builtin_convertvector(*(const v4sf_u *)(d + 4), v4df);
        a[0][0] += r0[n] * lo;
        a[0][1] += r0[n] * hi;
        a[1][0] += r1[n] * lo;
        a[1][1] += r1[n] * hi;
        a[2][0] += r2[n] * lo;
        a[2][1] += r2[n] * hi;
        a[3][0] += r3[n] * lo;
        a[3][1] += r3[n] * hi;
      }
      for (int j = 0; j < nk; j++)
        for (int i = 0; i < 4; i++) {
          out[(t + i) * cols + k0 + j] = (float)a[j][0][i];
          out[(t + 4 + i) * cols + k0 + j] = (float)a[j][1][i];
        }
    }
  }
  for (; t < frames; t++)
    for (int k = 0; k < m->n_mfcc; k++) {
      const double *row = m->dct + (size_t)k * nm;
      double acc = 0;
      for (int n = 0; n < nm; n++) acc += row[n] * db[n * frames + t];
      out[t * cols + k] = (float)acc;
    }
}

static mf_status compute(void *state, const float *audio, int64_t n_samples, float *out) {
  const mfcc *m = state;
  const int64_t frames = frames_of(m, n_samples);
  if (!frames) return MF_EINVAL;
  float *db = malloc((size_t)(m->n_mels * frames) * sizeof(float));
  double *tmp = malloc((size_t)m->n_mfcc * sizeof(double));
  mf_status st = db && tmp ? MF_OK : mf->set_error(MF_ENOMEM, "mfcc: out of memory");
  if (!st) st = spectral_mel(m->spec, audio, n_samples, db);
  if (!st) {
    const int64_t cols = (int64_t)m->n_mfcc * (1 + m->deltas);
    dct_frames(m, db, frames, out, cols);
    for (int d = 0; d < m->deltas; d++)
      delta_filter_apply(&m->delta[d], out, cols, frames, m->n_mfcc, out + (d + 1) * m->n_mfcc,
                         cols, tmp);
  }
  free(db);
  free(tmp);
  return st;
}

static const mf_feature_vtable vtable = {create, layout, compute, destroy};

static mf_status init(const mf_registrar *reg) {
  mf = reg->api;
  return reg->add_feature(
      reg,
      &(mf_component_desc){"mfcc",
                           "MFCCs [frames, n_mfcc] (+ deltas): DCT-II of melspec's log-mel "
                           "(librosa.feature.mfcc(...).T)",
                           params},
      &vtable);
}

MF_PLUGIN_ENTRY(init)
