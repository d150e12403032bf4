/* fastmath.h — the numeric kernels ops share: branch-free exp / tanh / sigmoid / GELU, the
 * per-CPU clone attribute, fixed-order row reductions and the vectorised Philox generator.
 *
 * Not installed. The scalar helpers below are static inline so they inline into each
 * caller's loops (and into each clone of a cloned caller). The array kernels and the Philox
 * generator live in fastmath.c, compiled once per CPU level: every op that evaluates, say,
 * a sigmoid calls the same machine code, so an LSTM gate is bit for bit mf_sigmoid of its
 * pre-activation, and attention weights are bit for bit mf_softmax of the scores.
 *
 * Why not libm: expf / erff / tanhf are scalar calls without -ffast-math and would dominate
 * a GELU, an LSTM gate or a softmax. exp uses Cody-Waite reduction and the Cephes polynomial
 * (about 1 ulp); erfc the Numerical Recipes Chebyshev fit (relative error 1.1e-7 for all
 * arguments, so GELU's left tail keeps its relative accuracy where PyTorch's 1 + erf(x)
 * cancels), with the exponent -x^2 / 2 carried in two floats; tanh a fitted odd polynomial
 * below 0.625 (where 1 - 2 / (e^2x + 1) would cancel) and the exp form above.
 */
#ifndef MF_FASTMATH_H
#define MF_FASTMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* ---- per-CPU clones -------------------------------------------------------------------------
 *
 * The library is built for generic x86-64 unless MELFORGE_NATIVE is on, where SSE2 alone is
 * 4-5x slower on exp-heavy loops and has no fast 32x32->64 multiply for Philox. A function
 * marked MF_CLONES is compiled for AVX-512 (x86-64-v4), AVX2+FMA (x86-64-v3) and the
 * baseline, and the loader picks one version per process through an ifunc (as PyTorch picks
 * its CPU kernels): a machine always runs the same version, so results are reproducible on
 * it. The v3 / v4 versions contract a * b + c into FMA, so they may differ from the baseline
 * in the last bit; that is why ops that must agree call the same cloned kernel rather than
 * their own inlined copy.
 *
 * ifuncs need glibc's loader, and GCC 12 is the first to know the x86-64-vN names both in
 * target_clones and in __builtin_cpu_supports; elsewhere MF_CLONES is empty, MF_HAVE_CLONES
 * is 0 and everything runs the one version the compiler targets.
 */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__) && \
    __GNUC__ >= 12 && defined(__has_attribute)
#if __has_attribute(target_clones)
#define MF_HAVE_CLONES 1
#define MF_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
#endif
#ifndef MF_CLONES
#define MF_HAVE_CLONES 0
#define MF_CLONES
#endif

/* ---- branch-free scalar math ---------------------------------------------------------------- */

static inline float bits_float(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static inline uint32_t float_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

/* cond ? a : b through the bits, both arms already computed. Under -ftrapping-math (GCC's
 * default; the build turns it off, but this header does not rely on build flags) GCC will not
 * speculate a floating-point operation, so a ?: whose arm does arithmetic becomes a branch
 * and the loop around it does not vectorise. */
static inline float sel(int cond, float a, float b) {
  const uint32_t m = 0u - (uint32_t)(cond != 0);
  return bits_float((float_bits(a) & m) | (float_bits(b) & ~m));
}

/* e^(hi + lo), where lo carries bits of the argument below hi's precision: the reduction
 * hi - n ln2 is exact (Sterbenz) for large |hi| and lo joins the small remainder, so the
 * result keeps its relative accuracy even when hi is large, where rounding hi + lo first
 * would cost |hi| * 2^-24 relative. For hi + lo <= 88 (callers pass arguments <= 0);
 * exactly 0 below -87.3 where the float result would be subnormal; NaN stays NaN. */
static inline float fexp_hl(float hi, float lo) {
  const float lim_lo = -87.33654f, lim_hi = 88.0f;
  const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
  const float x = hi + lo;
  float xc = sel(x < lim_lo, lim_lo, x);
  xc = sel(xc > lim_hi, lim_hi, xc);
  float t = xc * 1.44269504088896341f + magic;
  float n = t - magic;
  /* The integer n sits in the low mantissa bits of t; reading it from there avoids a
   * float-to-int conversion (undefined for NaN). Unsigned arithmetic wraps as intended. */
  uint32_t scale = (float_bits(t) - float_bits(magic) + 127u) << 23;
  float r = (hi - n * 0.693359375f) + lo; /* ln 2 in two parts; n times the first is exact */
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f; /* Cephes expf */
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  float y = p * bits_float(scale);
  return sel((x < lim_lo) | (hi < lim_lo), 0.0f, y);
}

/* e^x for x <= 88, about 1 ulp; 0 below -87.3. */
static inline float fexp(float x) { return fexp_hl(x, 0.0f); }

static inline float ftanh(float x) {
  float a = fabsf(x);
  float e = fexp(-2.0f * a);
  float big = (1.0f - e) / (1.0f + e);
  /* tanh(a) / a as a degree-5 polynomial in a^2 on [0, 0.625]: relative error 8e-9. */
  float u = a * a;
  float p = -5.657135043e-03f;
  p = p * u + 2.058819123e-02f;
  p = p * u - 5.372010916e-02f;
  p = p * u + 1.333111376e-01f;
  p = p * u - 3.333325982e-01f;
  p = p * u + 1.0f;
  float r = sel(a < 0.625f, a * p, big);
  return copysignf(r, x);
}

static inline float fsigmoid(float x) {
  /* exp of -|x| only: never overflows, and e / (1 + e) keeps the left tail accurate. */
  float e = fexp(-fabsf(x));
  float r = 1.0f / (1.0f + e);
  return sel(x >= 0.0f, r, e * r);
}

/* -x^2 / 2 as hi + lo with hi exact: x split into its top 12 significant bits and the rest
 * (masking, not Dekker's 4097 x, which FMA contraction could break); every partial product
 * of two 12-bit halves is exact in float. */
static inline void neg_half_square(float x, float *hi, float *lo) {
  const float xh = bits_float(float_bits(x) & 0xFFFFF000u), xl = x - xh;
  *hi = -0.5f * (xh * xh);
  *lo = -(xh * xl + 0.5f * (xl * xl));
}

/* The standard normal CDF Phi(x) = erfc(|x| / sqrt 2) / 2 or 1 minus that, from the tail
 * that does not cancel; erfc by Numerical Recipes' erfcc, t e^(-z^2 + q(t)), with
 * -z^2 = -x^2 / 2 passed as hi + lo. */
static inline float normal_cdf_hl(float x, float hi, float lo) {
  const float z = fabsf(x) * 0.70710678118654752f;
  const float t = 1.0f / (1.0f + 0.5f * z);
  float q = 0.17087277f;
  q = q * t - 0.82215223f;
  q = q * t + 1.48851587f;
  q = q * t - 1.13520398f;
  q = q * t + 0.27886807f;
  q = q * t - 0.18628806f;
  q = q * t + 0.09678418f;
  q = q * t + 0.37409196f;
  q = q * t + 1.00002368f;
  q = q * t - 1.26551223f;
  const float h = 0.5f * t * fexp_hl(hi, lo + q);
  return sel(x < 0.0f, h, 1.0f - h);
}

/* GELU, exact erf form: x Phi(x). */
static inline float fgelu(float x) {
  float hi, lo;
  neg_half_square(x, &hi, &lo);
  return x * normal_cdf_hl(x, hi, lo);
}

/* d/dx x Phi(x) = Phi(x) + x phi(x), phi(x) = e^(-x^2 / 2) / sqrt(2 pi). */
static inline float fgelu_grad(float x) {
  float hi, lo;
  neg_half_square(x, &hi, &lo);
  return normal_cdf_hl(x, hi, lo) + x * 0.3989422804014327f * fexp_hl(hi, lo);
}

/* ---- fixed-order row reductions ---------------------------------------------------------------
 *
 * FLANES independent partial sums combined in a fixed order, then the tail: the loops
 * vectorise without -ffast-math (which would let GCC reassociate) and the result depends
 * on neither the data's alignment nor the CPU's vector width. */

#define FLANES 16

static inline float combine_lanes(const float *acc) {
  float s = 0.0f;
  for (int j = 0; j < FLANES; j++) s += acc[j];
  return s;
}

static inline float sum_lanes(const float *a, int64_t n) {
  float acc[FLANES] = {0};
  int64_t i = 0;
  for (; i + FLANES <= n; i += FLANES)
    for (int j = 0; j < FLANES; j++) acc[j] += a[i + j];
  float s = combine_lanes(acc);
  for (; i < n; i++) s += a[i];
  return s;
}

static inline float dot_lanes(const float *a, const float *b, int64_t n) {
  float acc[FLANES] = {0};
  int64_t i = 0;
  for (; i + FLANES <= n; i += FLANES)
    for (int j = 0; j < FLANES; j++) acc[j] += a[i + j] * b[i + j];
  float s = combine_lanes(acc);
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

/* Maximum of a[0..n), -inf for n = 0; NaNs are skipped (the exp of a NaN input makes its
 * softmax row NaN anyway). The order of a max does not change its value. */
static inline float row_max(const float *a, int64_t n) {
  float m = -INFINITY;
#pragma omp simd reduction(max : m)
  for (int64_t i = 0; i < n; i++) m = a[i] > m ? a[i] : m;
  return m;
}

/* ---- cloned array kernels (fastmath.c) ---------------------------------------------------------
 *
 * y may be x itself. Single-threaded: callers split big arrays into chunks across threads. */

void mf__vgelu(const float *x, float *y, int64_t n);
void mf__vtanh(const float *x, float *y, int64_t n);
void mf__vsigmoid(const float *x, float *y, int64_t n);
/* gx = (acc ? gx : 0) + go * gelu'(x); gx may be go itself. */
void mf__vgelu_backward(const float *x, const float *go, float *gx, int64_t n, int acc);
/* Softmax (lg = 0) or log-softmax (lg = 1) of one contiguous row: y = exp(x - max) / sum, or
 * (x - max) - log(sum). y may be x itself for the softmax, not for the log-softmax. */
void mf__softmax_row(const float *x, float *y, int64_t n, int lg);

/* ---- Philox4x32-10 in vector lanes (fastmath.c) --------------------------------------------- */

/* Words of Philox blocks ctr .. ctr + nblocks - 1 of key: out[4 b + k] = word k of block
 * ctr + b, exactly mf_philox4x32's words, computed many blocks at a time so the 32x32->64
 * products vectorise (integer arithmetic: every clone gives the same words). */
void mf__philox_fill(const uint32_t key[2], uint64_t ctr, int64_t nblocks, uint32_t *out);

/* Dropout keeps an element when mf_u32_to_unit(word) >= p. unit(w) is (w >> 8) / 2^24
 * exactly, so the test is (w >> 8) >= ceil(p 2^24), in integers; both sides are below 2^31,
 * so the signed compare that baseline SIMD has is exact. p = 1 gives 2^24: nothing kept. */
static inline int32_t philox_keep_threshold(float p) {
  return (int32_t)ceil((double)p * 16777216.0);
}

static inline int philox_keeps(uint32_t word, int32_t thr) { return (int32_t)(word >> 8) >= thr; }

#endif
