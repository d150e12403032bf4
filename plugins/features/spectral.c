/* spectral.c — STFT, mel filterbank, power_to_db and deltas for the feature plugins.
 *
 * Speed (30 s track, 1292 frames of 2048 points: ~1.9 ms on one core, of which FFTW ~1.0).
 * - An even n_fft is transformed as a complex FFT of n_fft / 2 points over the frame read as
 *   interleaved (even, odd) samples, then split into the real spectrum (split_power). With
 *   FFTW_ESTIMATE this takes 1.2 ms per track where FFTW's own r2c plan takes 2.9 (ESTIMATE
 *   picks scalar codelets for it). FFTW_MEASURE is not used: it times candidate plans, and
 *   separate processes then pick different plans and give different bits (seen: three
 *   different outputs in six runs), which would break bit-reproducible extraction.
 * - The filterbank is stored per band as its contiguous run of non-zero bins (2018 weights
 *   instead of a dense 128 x 1025 product), and four frames are filtered at once so each
 *   band's weights are loaded once for four independent accumulators.
 * - The logarithm of power_to_db is a polynomial the compiler vectorises (db10).
 * - The loops above are HOT: also compiled for AVX2 + FMA and picked at load time.
 *
 * Determinism: a frame's mel power depends only on its samples, never on the call, its
 * position in a batch or the thread; the dB scale depends on the maximum over the call.
 */
#include "spectral.h"

#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Generic 8-wide vectors: two SSE registers in the baseline build, one AVX register in the
 * x86-64-v3 clones of the HOT functions. */
typedef float v8sf __attribute__((vector_size(32)));
typedef int32_t v8si __attribute__((vector_size(32)));
typedef float v4sf __attribute__((vector_size(16)));
typedef float v8sf_u __attribute__((vector_size(32), aligned(4), may_alias)); /* unaligned */
typedef float v4sf_u __attribute__((vector_size(16), aligned(4), may_alias));
#define VW 8
/* Macros, not functions: a function passing 32-byte vectors changes the ABI without AVX. */
#define LOAD8(p) (*(const v8sf_u *)(p))
#define STORE8(p, v) (*(v8sf_u *)(p) = (v))
#define STORE4(p, v) (*(v4sf_u *)(p) = (v))

#define GROUP 4  /* frames filtered together */
#define ALIGN 64 /* bytes; buffers handed to FFTW keep the planning arrays' SIMD alignment */

struct spectral {
  const mf_api *mf;
  spectral_cfg cfg;
  int n_bins;
  int half;           /* n_fft / 2 for an even n_fft (half-length complex FFT), 0 for odd */
  int win_lo, win_hi; /* support of the window inside the frame */
  float *window;      /* [n_fft], zero outside [win_lo, win_hi) */
  float *hcos, *hsin; /* [half / 2 + 1]: 0.5 cos, 0.5 sin of 2 pi k / n_fft */
  fftwf_plan plan;
  /* Band m's weights cover bins [first[m], first[m] + VW nchunk[m]) from weights + offset[m],
   * its non-zero run zero-padded at the end to whole vectors. */
  int *first, *nchunk, *offset;
  float *weights;
  /* per-call buffer layout, in floats */
  int64_t frame_len, spec_len, power_len;
};

static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

static void *aligned_calloc(size_t bytes) {
  void *p = NULL;
  if (posix_memalign(&p, ALIGN, bytes ? bytes : ALIGN)) return NULL;
  memset(p, 0, bytes);
  return p;
}

/* ---- configuration ------------------------------------------------------------------------ */

mf_status spectral_read_cfg(const mf_api *mf, const mf_values *v, double sr, const char *who,
                            spectral_cfg *c) {
  memset(c, 0, sizeof *c);
  if (!(sr > 0) || !isfinite(sr))
    return mf->set_error(MF_EINVAL, "%s: sample rate %g is not a positive number", who, sr);
  c->sr = sr;
  c->n_fft = (int)mf->value_int(v, "n_fft");
  c->hop_length = (int)mf->value_int(v, "hop_length");
  c->win_length = (int)mf->value_int(v, "win_length");
  c->n_mels = (int)mf->value_int(v, "n_mels");
  c->fmin = mf->value_float(v, "fmin");
  c->fmax = mf->value_float(v, "fmax");
  c->htk = mf->value_bool(v, "htk");
  c->norm_slaney = strcmp(mf->value_string(v, "norm"), "slaney") == 0;
  c->power = mf->value_float(v, "power");
  c->db = mf->value_bool(v, "db");
  c->top_db = mf->value_float(v, "top_db");
  c->amin = mf->value_float(v, "amin");
  c->ref = mf->value_float(v, "ref");
  if (c->win_length == 0) c->win_length = c->n_fft;
  if (c->win_length > c->n_fft)
    return mf->set_error(MF_EINVAL,
                         "%s: parameter 'win_length' = %d exceeds n_fft = %d; the window is "
                         "zero-padded to n_fft, so use win_length <= n_fft (0 = n_fft)",
                         who, c->win_length, c->n_fft);
  const double nyquist = sr / 2;
  if (c->fmax <= 0) c->fmax = nyquist;
  if (c->fmax > nyquist)
    return mf->set_error(MF_EINVAL,
                         "%s: parameter 'fmax' = %g Hz is above the Nyquist frequency sr/2 = %g Hz "
                         "(sample rate %g); use fmax <= %g, or 0 for sr/2",
                         who, c->fmax, nyquist, sr, nyquist);
  if (c->fmin >= c->fmax)
    return mf->set_error(MF_EINVAL, "%s: parameter 'fmin' = %g Hz must be below fmax = %g Hz", who,
                         c->fmin, c->fmax);
  return MF_OK;
}

/* ---- mel scale and filterbank --------------------------------------------------------------- */

double spectral_hz_to_mel(double hz, int htk) {
  if (htk) return 2595.0 * log10(1.0 + hz / 700.0);
  /* Slaney: linear below 1 kHz (200/3 Hz per mel), logarithmic above. */
  const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
  const double logstep = log(6.4) / 27.0;
  return hz >= min_log_hz ? min_log_mel + log(hz / min_log_hz) / logstep : hz / f_sp;
}

double spectral_mel_to_hz(double mel, int htk) {
  if (htk) return 700.0 * (pow(10.0, mel / 2595.0) - 1.0);
  const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
  const double logstep = log(6.4) / 27.0;
  return mel >= min_log_mel ? min_log_hz * exp(logstep * (mel - min_log_mel)) : f_sp * mel;
}

/* librosa.filters.mel, operation for operation: float64 ramps rounded into a float32 array,
 * then scaled in float64 by the Slaney norm and rounded again. */
static float *dense_filterbank(const spectral_cfg *c, int n_bins) {
  const int nm = c->n_mels;
  float *w = calloc((size_t)nm * (size_t)n_bins, sizeof *w);
  double *fftf = malloc((size_t)n_bins * sizeof *fftf);
  double *melf = malloc((size_t)(nm + 2) * sizeof *melf);
  if (!w || !fftf || !melf) {
    free(w);
    w = NULL;
    goto done;
  }
  const double val = 1.0 / (c->n_fft * (1.0 / c->sr)); /* numpy.fft.rfftfreq */
  for (int k = 0; k < n_bins; k++) fftf[k] = k * val;
  const double m0 = spectral_hz_to_mel(c->fmin, c->htk), m1 = spectral_hz_to_mel(c->fmax, c->htk);
  const double step = (m1 - m0) / (nm + 1); /* numpy.linspace(m0, m1, nm + 2) */
  for (int i = 0; i < nm + 2; i++)
    melf[i] = spectral_mel_to_hz(i == nm + 1 ? m1 : i * step + m0, c->htk);
  for (int i = 0; i < nm; i++) {
    const double d0 = melf[i + 1] - melf[i], d1 = melf[i + 2] - melf[i + 1];
    const double enorm = 2.0 / (melf[i + 2] - melf[i]);
    float *row = w + (size_t)i * (size_t)n_bins;
    for (int k = 0; k < n_bins; k++) {
      const double lower = -(melf[i] - fftf[k]) / d0, upper = (melf[i + 2] - fftf[k]) / d1;
      const double x = fmax(0.0, fmin(lower, upper));
      row[k] = (float)x;
      if (c->norm_slaney) row[k] = (float)((double)row[k] * enorm);
    }
  }
done:
  free(fftf);
  free(melf);
  return w;
}

static int build_sparse_filterbank(spectral *s) {
  const int nm = s->cfg.n_mels, nb = s->n_bins;
  float *dense = dense_filterbank(&s->cfg, nb);
  s->first = malloc((size_t)nm * sizeof(int));
  s->nchunk = malloc((size_t)nm * sizeof(int));
  s->offset = malloc((size_t)nm * sizeof(int));
  if (!dense || !s->first || !s->nchunk || !s->offset) {
    free(dense);
    return 0;
  }
  int64_t total = 0;
  for (int m = 0; m < nm; m++) {
    const float *row = dense + (size_t)m * (size_t)nb;
    int lo = 0, hi = nb;
    while (lo < nb && row[lo] == 0.0f) lo++;
    while (hi > lo && row[hi - 1] == 0.0f) hi--;
    s->first[m] = lo;
    s->nchunk[m] = (hi - lo + VW - 1) / VW;
    s->offset[m] = (int)total;
    total += VW * (int64_t)s->nchunk[m];
  }
  s->weights = aligned_calloc((size_t)(total ? total : VW) * sizeof(float));
  if (!s->weights) {
    free(dense);
    return 0;
  }
  for (int m = 0; m < nm; m++) {
    const float *row = dense + (size_t)m * (size_t)nb;
    for (int j = 0; j < VW * s->nchunk[m] && s->first[m] + j < nb; j++)
      s->weights[s->offset[m] + j] = row[s->first[m] + j];
  }
  free(dense);
  return 1;
}

void spectral_filterbank(const spectral *s, float *out) {
  const int nb = s->n_bins;
  memset(out, 0, (size_t)s->cfg.n_mels * (size_t)nb * sizeof *out);
  for (int m = 0; m < s->cfg.n_mels; m++)
    for (int j = 0; j < VW * s->nchunk[m] && s->first[m] + j < nb; j++)
      out[(size_t)m * (size_t)nb + (size_t)(s->first[m] + j)] = s->weights[s->offset[m] + j];
}

/* ---- create / destroy ----------------------------------------------------------------------- */

/* FFTW's planner is process-wide state and not thread-safe. The mutex serialises the plugins'
 * own planning; each feature .so has its own copy of it, so fftwf_make_planner_thread_safe
 * also puts FFTW's lock around every planner call in the process (other .so files included). */
static pthread_mutex_t plan_lock = PTHREAD_MUTEX_INITIALIZER;

spectral *spectral_new(const mf_api *mf, const spectral_cfg *cfg) {
  spectral *s = calloc(1, sizeof *s);
  if (!s) goto nomem;
  s->mf = mf;
  s->cfg = *cfg;
  const int n_fft = cfg->n_fft;
  s->n_bins = n_fft / 2 + 1;
  s->half = n_fft % 2 == 0 ? n_fft / 2 : 0;
  s->frame_len = round_up(n_fft, 16);
  s->spec_len = round_up(2 * (int64_t)s->n_bins, 16);
  /* a band's last vector may read up to VW - 1 bins past the last one */
  s->power_len = round_up(s->n_bins + VW, 16);

  s->window = aligned_calloc((size_t)n_fft * sizeof(float));
  if (!s->window) goto nomem;
  /* periodic Hann of win_length, centred in n_fft (librosa.util.pad_center) */
  s->win_lo = (n_fft - cfg->win_length) / 2;
  s->win_hi = s->win_lo + cfg->win_length;
  for (int i = 0; i < cfg->win_length; i++)
    s->window[s->win_lo + i] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * i / cfg->win_length));

  if (s->half) {
    s->hcos = malloc((size_t)(s->half / 2 + 1) * sizeof(float));
    s->hsin = malloc((size_t)(s->half / 2 + 1) * sizeof(float));
    if (!s->hcos || !s->hsin) goto nomem;
    for (int k = 0; k <= s->half / 2; k++) {
      s->hcos[k] = (float)(0.5 * cos(2.0 * M_PI * k / n_fft));
      s->hsin[k] = (float)(0.5 * sin(2.0 * M_PI * k / n_fft));
    }
  }
  if (!build_sparse_filterbank(s)) goto nomem;

  float *in = aligned_calloc((size_t)s->frame_len * sizeof(float));
  float *out = aligned_calloc((size_t)s->spec_len * sizeof(float));
  if (!in || !out) {
    free(in);
    free(out);
    goto nomem;
  }
  pthread_mutex_lock(&plan_lock);
  fftwf_make_planner_thread_safe();
  if (s->half)
    s->plan = fftwf_plan_dft_1d(s->half, (fftwf_complex *)in, (fftwf_complex *)out, FFTW_FORWARD,
                                FFTW_ESTIMATE);
  else
    s->plan = fftwf_plan_dft_r2c_1d(n_fft, in, (fftwf_complex *)out, FFTW_ESTIMATE);
  pthread_mutex_unlock(&plan_lock);
  free(in);
  free(out);
  if (!s->plan) {
    mf->set_error(MF_EINVAL, "FFTW could not plan a transform of %d points", n_fft);
    spectral_free(s);
    return NULL;
  }
  return s;
nomem:
  mf->set_error(MF_ENOMEM, "out of memory building the mel filterbank (n_fft %d, n_mels %d)",
                cfg->n_fft, cfg->n_mels);
  spectral_free(s);
  return NULL;
}

void spectral_free(spectral *s) {
  if (!s) return;
  if (s->plan) {
    pthread_mutex_lock(&plan_lock);
    fftwf_destroy_plan(s->plan);
    pthread_mutex_unlock(&plan_lock);
  }
  free(s->window);
  free(s->hcos);
  free(s->hsin);
  free(s->first);
  free(s->nchunk);
  free(s->offset);
  free(s->weights);
  free(s);
}

const spectral_cfg *spectral_config(const spectral *s) { return &s->cfg; }
int spectral_n_bins(const spectral *s) { return s->n_bins; }

int64_t spectral_frames(const spectral *s, int64_t n) {
  const int64_t padded = n + 2 * (int64_t)(s->cfg.n_fft / 2);
  if (n < 0 || padded < s->cfg.n_fft) return 0;
  return 1 + (padded - s->cfg.n_fft) / s->cfg.hop_length;
}

/* ---- STFT ----------------------------------------------------------------------------------- */

/* buf[j] = x[j] w[j] for j in [lo, hi). */
HOT static void window_mul(const float *x, const float *w, int lo, int hi, float *buf) {
  for (int j = lo; j < hi; j++) buf[j] = x[j] * w[j];
}

/* Windowed frame t of the zero-padded signal (librosa center=True, pad_mode 'constant').
 * Only the window's support is written; the rest of buf stays zero from allocation. */
static void load_frame(const spectral *s, const float *audio, int64_t n, int64_t t, float *buf) {
  const int64_t start = t * s->cfg.hop_length - s->cfg.n_fft / 2;
  const float *w = s->window;
  const int lo = s->win_lo, hi = s->win_hi;
  if (start + lo >= 0 && start + hi <= n) {
    window_mul(audio + start, w, lo, hi, buf);
  } else {
    for (int j = lo; j < hi; j++) {
      const int64_t i = start + j;
      buf[j] = i >= 0 && i < n ? audio[i] * w[j] : 0.0f;
    }
  }
}

/* |X_k|^2, k <= h = n_fft / 2, from Z = FFT_h(x_even + i x_odd) (interleaved in z):
 *   E_k = (Z_k + conj Z_{h-k}) / 2,  O_k = (Z_k - conj Z_{h-k}) / 2i,
 *   X_k = E_k + e^{-2 pi i k / n_fft} O_k.
 * Bins k and h - k share Z_k, Z_{h-k} and, as the twiddle of h - k is (-cos, sin) of k's,
 * the products: with A = Re E_k, C = Im E_k, B + iD = W^k O_k,
 *   |X_k|^2 = (A + B)^2 + (C + D)^2,  |X_{h-k}|^2 = (A - B)^2 + (D - C)^2,
 * so each pass computes both. hc, hs = cos, sin of 2 pi k / n_fft halved, k <= h / 2. */
HOT static void split_power(int h, const float *z, const float *hc, const float *hs, float *p) {
  p[0] = (z[0] + z[1]) * (z[0] + z[1]);
  p[h] = (z[0] - z[1]) * (z[0] - z[1]);
  const int mid = (h + 1) / 2; /* pairs k < mid; for an even h, k = h / 2 is its own mirror */
  int k = 1;
  for (; k + VW <= mid; k += VW) {
    const float *zb = z + 2 * (h - k - VW + 1); /* Z_{h-k-7} .. Z_{h-k} */
    const v8sf a0 = LOAD8(z + 2 * k), a1 = LOAD8(z + 2 * k + VW);
    const v8sf b0 = LOAD8(zb), b1 = LOAD8(zb + VW);
    const v8sf ar = __builtin_shufflevector(a0, a1, 0, 2, 4, 6, 8, 10, 12, 14);
    const v8sf ai = __builtin_shufflevector(a0, a1, 1, 3, 5, 7, 9, 11, 13, 15);
    const v8sf br = __builtin_shufflevector(b0, b1, 14, 12, 10, 8, 6, 4, 2, 0); /* Z_{h-k-i} */
    const v8sf bi = __builtin_shufflevector(b0, b1, 15, 13, 11, 9, 7, 5, 3, 1);
    const v8sf c = LOAD8(hc + k), sn = LOAD8(hs + k);
    const v8sf sr = ar + br, di = ai - bi, si = ai + bi, dr = br - ar;
    const v8sf A = 0.5f * sr, C = 0.5f * di, B = c * si + sn * dr, D = c * dr - sn * si;
    const v8sf xr = A + B, xi = C + D, yr = A - B, yi = D - C;
    const v8sf pk = xr * xr + xi * xi, pm = yr * yr + yi * yi;
    STORE8(p + k, pk);
    STORE8(p + h - k - VW + 1, __builtin_shufflevector(pm, pm, 7, 6, 5, 4, 3, 2, 1, 0));
  }
  for (; k <= h / 2; k++) { /* includes the self-mirrored k = h / 2 */
    const float ar = z[2 * k], ai = z[2 * k + 1], br = z[2 * (h - k)], bi = z[2 * (h - k) + 1];
    const float sr = ar + br, di = ai - bi, si = ai + bi, dr = br - ar;
    const float A = 0.5f * sr, C = 0.5f * di, B = hc[k] * si + hs[k] * dr,
                D = hc[k] * dr - hs[k] * si;
    p[k] = (A + B) * (A + B) + (C + D) * (C + D);
    p[h - k] = (A - B) * (A - B) + (D - C) * (D - C);
  }
}

/* |X_k|^2 of windowed frame `frame` into p[0, n_bins). */
static void frame_power(const spectral *s, float *frame, float *spec, float *p) {
  if (s->half) {
    fftwf_execute_dft(s->plan, (fftwf_complex *)frame, (fftwf_complex *)spec);
    split_power(s->half, spec, s->hcos, s->hsin, p);
  } else {
    fftwf_execute_dft_r2c(s->plan, frame, (fftwf_complex *)spec);
    for (int k = 0; k < s->n_bins; k++)
      p[k] = spec[2 * k] * spec[2 * k] + spec[2 * k + 1] * spec[2 * k + 1];
  }
}

/* One call's buffers, zeroed once (the window's zero margins and the power padding are never
 * written): a frame and its spectrum, reused frame after frame so they stay in L1, and the
 * power spectra of GROUP frames. */
typedef struct work {
  float *block, *frame, *spec, *power[GROUP];
} work;

static mf_status work_new(const spectral *s, work *w) {
  w->block =
      aligned_calloc((size_t)(s->frame_len + s->spec_len + GROUP * s->power_len) * sizeof(float));
  if (!w->block)
    return s->mf->set_error(MF_ENOMEM, "out of memory for STFT buffers (n_fft %d)", s->cfg.n_fft);
  w->frame = w->block;
  w->spec = w->frame + s->frame_len;
  for (int g = 0; g < GROUP; g++) w->power[g] = w->spec + s->spec_len + g * s->power_len;
  return MF_OK;
}

mf_status spectral_stft_power(const spectral *s, const float *audio, int64_t n, float *out) {
  const int64_t frames = spectral_frames(s, n);
  if (frames <= 0)
    return s->mf->set_error(MF_EINVAL, "%lld samples give no STFT frame (n_fft %d)", (long long)n,
                            s->cfg.n_fft);
  work w = {0};
  if (work_new(s, &w)) return MF_ENOMEM;
  for (int64_t t = 0; t < frames; t++) {
    load_frame(s, audio, n, t, w.frame);
    frame_power(s, w.frame, w.spec, w.power[0]);
    memcpy(out + t * s->n_bins, w.power[0], (size_t)s->n_bins * sizeof(float));
  }
  free(w.block);
  return MF_OK;
}

static void apply_power(const spectral *s, float *p) {
  const double e = s->cfg.power;
  const int nb = s->n_bins;
  if (e == 2.0) return;
  if (e == 1.0) {
    for (int k = 0; k < nb; k++) p[k] = sqrtf(p[k]);
  } else {
    const float half = (float)(e / 2);
    for (int k = 0; k < nb; k++) p[k] = powf(p[k], half);
  }
}

/* Mel bands of GROUP power spectra, out[m * stride + g] for g < nvalid: one pass over each
 * band's weights feeds four independent accumulators. */
HOT static void filter_group(int n_mels, const int *first, const int *nchunk, const int *offset,
                             const float *weights, float *const p[GROUP], float *out,
                             int64_t stride, int nvalid) {
  for (int m = 0; m < n_mels; m++) {
    const float *w = weights + offset[m];
    const int f = first[m], nc = nchunk[m];
    const float *p0 = p[0] + f, *p1 = p[1] + f, *p2 = p[2] + f, *p3 = p[3] + f;
    v8sf a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (int c = 0; c < VW * nc; c += VW) {
      const v8sf wv = LOAD8(w + c);
      a0 += wv * LOAD8(p0 + c);
      a1 += wv * LOAD8(p1 + c);
      a2 += wv * LOAD8(p2 + c);
      a3 += wv * LOAD8(p3 + c);
    }
    /* the four lane sums at once, each ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7)) */
    const v8sf t0 = __builtin_shufflevector(a0, a1, 0, 2, 8, 10, 4, 6, 12, 14) +
                    __builtin_shufflevector(a0, a1, 1, 3, 9, 11, 5, 7, 13, 15);
    const v8sf t1 = __builtin_shufflevector(a2, a3, 0, 2, 8, 10, 4, 6, 12, 14) +
                    __builtin_shufflevector(a2, a3, 1, 3, 9, 11, 5, 7, 13, 15);
    const v8sf t2 = __builtin_shufflevector(t0, t1, 0, 2, 8, 10, 4, 6, 12, 14) +
                    __builtin_shufflevector(t0, t1, 1, 3, 9, 11, 5, 7, 13, 15);
    const v4sf r =
        __builtin_shufflevector(t2, t2, 0, 1, 2, 3) + __builtin_shufflevector(t2, t2, 4, 5, 6, 7);
    float *o = out + m * stride;
    if (nvalid == GROUP)
      STORE4(o, r);
    else
      for (int g = 0; g < nvalid; g++) o[g] = r[g];
  }
}

mf_status spectral_mel(const spectral *s, const float *audio, int64_t n, float *out) {
  const int64_t frames = spectral_frames(s, n);
  if (frames <= 0)
    return s->mf->set_error(MF_EINVAL, "%lld samples give no STFT frame (n_fft %d)", (long long)n,
                            s->cfg.n_fft);
  work w = {0};
  if (work_new(s, &w)) return MF_ENOMEM;
  for (int64_t t0 = 0; t0 < frames; t0 += GROUP) {
    const int nvalid = frames - t0 < GROUP ? (int)(frames - t0) : GROUP;
    float *p[GROUP];
    for (int g = 0; g < GROUP; g++) {
      /* a short last group filters its first frame again and drops the copies */
      p[g] = w.power[g < nvalid ? g : 0];
      if (g >= nvalid) continue;
      load_frame(s, audio, n, t0 + g, w.frame);
      frame_power(s, w.frame, w.spec, w.power[g]);
      apply_power(s, w.power[g]);
    }
    filter_group(s->cfg.n_mels, s->first, s->nchunk, s->offset, s->weights, p, out + t0, frames,
                 nvalid);
  }
  free(w.block);
  if (s->cfg.db) spectral_power_to_db(&s->cfg, out, (int64_t)s->cfg.n_mels * frames);
  return MF_OK;
}

/* ---- power_to_db ---------------------------------------------------------------------------- */

/* 10 log10(x) for a positive normal float, within 2 ulp (or 1e-6 dB) of the exact value.
 * x = 2^e m with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(s), s = (m - 1) / (m + 1),
 * |s| <= 0.172, by its odd series to s^11 (next term < 3e-10). 10 log10(2) is split so e * hi
 * is exact. Plain arithmetic on the bits, so the loop calling it vectorises (log10f does not). */
static inline float db10(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  int32_t e = (int32_t)(u >> 23) - 127;
  u = (u & 0x007fffffu) | 0x3f800000u; /* m in [1, 2) */
  float m;
  memcpy(&m, &u, sizeof m);
  const int big = m > 1.41421356f;
  m = big ? 0.5f * m : m;
  e += big;
  const float sv = (m - 1.0f) / (m + 1.0f), s2 = sv * sv;
  const float series =
      1.0f +
      s2 * (1.0f / 3 + s2 * (1.0f / 5 + s2 * (1.0f / 7 + s2 * (1.0f / 9 + s2 * (1.0f / 11)))));
  const float ln_m = 2.0f * sv * series;
  const float hi = 3.01025390625f;       /* 10 log10(2), 12 significant bits */
  const float lo = 4.6050389811952e-05f; /* 10 log10(2) - hi */
  const float k10 = 4.3429448190325182f; /* 10 / ln(10) */
  const float fe = (float)e;
  return fe * hi + (fe * lo + k10 * ln_m);
}

/* x = db10(max(amin, x)) - ref_db over [0, n); returns the maximum of the result. */
HOT static float to_db(float *x, int64_t n, float amin, float ref_db) {
  for (int64_t i = 0; i < n; i++) {
    const float v = x[i] > amin ? x[i] : amin; /* also replaces a NaN by amin */
    x[i] = db10(v) - ref_db;
  }
  /* max over vector lanes: the compiler does not vectorise a float max reduction itself */
  const float ninf = -INFINITY;
  v8sf vm = {ninf, ninf, ninf, ninf, ninf, ninf, ninf, ninf};
  int64_t i = 0;
  for (; i + VW <= n; i += VW) {
    const v8sf v = LOAD8(x + i);
    const v8si gt = v > vm;
    vm = (v8sf)(((v8si)v & gt) | ((v8si)vm & ~gt));
  }
  float mx = ninf;
  for (int l = 0; l < VW; l++) mx = vm[l] > mx ? vm[l] : mx;
  for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
  return mx;
}

HOT static void clip_below(float *x, int64_t n, float floor_db) {
  for (int64_t i = 0; i < n; i++) x[i] = x[i] < floor_db ? floor_db : x[i];
}

void spectral_power_to_db(const spectral_cfg *c, float *x, int64_t n) {
  double ref = c->ref;
  if (!(ref > 0)) { /* ref = max(S) */
    float mx = 0.0f;
    for (int64_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    ref = mx;
  }
  const float ref_db = (float)(10.0 * log10(fmax(c->amin, ref)));
  const float mx = to_db(x, n, (float)c->amin, ref_db);
  if (c->top_db > 0 && n > 0) clip_below(x, n, (float)((double)mx - c->top_db));
}

/* ---- deltas --------------------------------------------------------------------------------- */

/* Weights w_j (j = -h..h) such that sum_j w_j x_j is the order-th derivative at position p of
 * the least-squares polynomial of degree `order` through (j, x_j): w = A (A^T A)^-1 g with
 * A_jl = j^l and g_l = d^order/dp^order p^l. */
static void savgol_weights(int width, int order, double p, double *w) {
  const int h = width / 2, nc = order + 1;
  double g[3][4] = {{0}}; /* augmented normal equations, at most 3 unknowns */
  for (int r = 0; r < nc; r++) {
    for (int l = 0; l < nc; l++)
      for (int j = -h; j <= h; j++) g[r][l] += pow(j, r + l);
    double d = 0; /* d^order / dp^order of p^r */
    if (r >= order) {
      d = 1;
      for (int q = 0; q < order; q++) d *= r - q;
      d *= pow(p, r - order);
    }
    g[r][nc] = d;
  }
  for (int col = 0; col < nc; col++) { /* Gauss-Jordan; A^T A is positive definite */
    for (int r = 0; r < nc; r++) {
      if (r == col) continue;
      const double f = g[r][col] / g[col][col];
      for (int l = col; l <= nc; l++) g[r][l] -= f * g[col][l];
    }
  }
  for (int j = -h; j <= h; j++) {
    double acc = 0;
    for (int l = 0; l < nc; l++) acc += g[l][nc] / g[l][l] * pow(j, l);
    w[j + h] = acc;
  }
}

mf_status delta_filter_init(const mf_api *mf, int width, int order, delta_filter *f) {
  memset(f, 0, sizeof *f);
  if (width < 3 || width % 2 == 0 || order < 1 || order > 2 || order >= width)
    return mf->set_error(MF_EINVAL, "delta width %d / order %d: the width must be odd and >= 3",
                         width, order);
  const int h = width / 2;
  f->width = width;
  f->order = order;
  f->interior = malloc((size_t)width * sizeof(double));
  f->edge = malloc((size_t)(2 * h * width) * sizeof(double));
  if (!f->interior || !f->edge) {
    delta_filter_release(f);
    return mf->set_error(MF_ENOMEM, "out of memory for delta weights");
  }
  savgol_weights(width, order, 0.0, f->interior);
  for (int i = 0; i < h; i++) {
    savgol_weights(width, order, i - h, f->edge + (size_t)i * width);       /* first frames */
    savgol_weights(width, order, i + 1, f->edge + (size_t)(h + i) * width); /* last frames */
  }
  return MF_OK;
}

void delta_filter_release(delta_filter *f) {
  free(f->interior);
  free(f->edge);
  f->interior = f->edge = NULL;
}

static void weighted_rows(const double *w, int width, const float *x, int64_t xs, int n, float *y,
                          double *acc) {
  for (int c = 0; c < n; c++) acc[c] = 0;
  for (int j = 0; j < width; j++) {
    const double wj = w[j];
    const float *row = x + j * xs;
    for (int c = 0; c < n; c++) acc[c] += wj * row[c];
  }
  for (int c = 0; c < n; c++) y[c] = (float)acc[c];
}

void delta_filter_apply(const delta_filter *f, const float *x, int64_t xs, int64_t frames, int n,
                        float *y, int64_t ys, double *tmp) {
  const int w = f->width, h = w / 2;
  for (int i = 0; i < h; i++) {
    weighted_rows(f->edge + (size_t)i * w, w, x, xs, n, y + i * ys, tmp);
    weighted_rows(f->edge + (size_t)(h + i) * w, w, x + (frames - w) * xs, xs, n,
                  y + (frames - h + i) * ys, tmp);
  }
  for (int64_t t = h; t < frames - h; t++)
    weighted_rows(f->interior, w, x + (t - h) * xs, xs, n, y + t * ys, tmp);
}
