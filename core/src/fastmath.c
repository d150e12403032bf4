/* fastmath.c — the cloned array kernels of fastmath.h: one compiled copy per CPU level of each
 * element-wise activation, the softmax row and the Philox generator, shared by every op that
 * needs them (see fastmath.h for why they are shared rather than inlined per op). */
#include "fastmath.h"

MF_CLONES void mf__vgelu(const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = fgelu(x[i]);
}

MF_CLONES void mf__vtanh(const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = ftanh(x[i]);
}

MF_CLONES void mf__vsigmoid(const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = fsigmoid(x[i]);
}

MF_CLONES void mf__vgelu_backward(const float *x, const float *go, float *gx, int64_t n, int acc) {
  if (acc)
    for (int64_t i = 0; i < n; i++) gx[i] += go[i] * fgelu_grad(x[i]);
  else
    for (int64_t i = 0; i < n; i++) gx[i] = go[i] * fgelu_grad(x[i]);
}

MF_CLONES void mf__softmax_row(const float *x, float *y, int64_t n, int lg) {
  const float m = row_max(x, n);
  for (int64_t i = 0; i < n; i++) y[i] = fexp(x[i] - m);
  const float sum = sum_lanes(y, n);
  if (lg) {
    /* (x - m) is exact; m + log(sum) in float would round away log(sum)'s low bits when
     * the logits are large */
    const float ls = logf(sum);
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) - ls;
  } else {
    const float inv = 1.0f / sum;
    for (int64_t i = 0; i < n; i++) y[i] *= inv;
  }
}

/* ---- Philox4x32-10 ---------------------------------------------------------------------------
 *
 * mf_philox4x32's arithmetic with the blocks in vector lanes (the loop over blocks is the
 * vectorised one; the ten rounds unroll inside it). Two layouts of the state, because the
 * best one depends on the 64-bit multiply: AVX-512 has it (vpmullq), so state kept in 64-bit
 * lanes needs no widening shuffles and runs twice as fast as in 32-bit lanes; without it the
 * 64-bit products are emulated and the 32-bit layout is up to 2x faster. */

MF_CLONES static void philox_fill_narrow(const uint32_t key[2], uint64_t ctr, int64_t nblocks,
                                         uint32_t *restrict out) {
  const uint32_t key0 = key[0], key1 = key[1];
#pragma omp simd
  for (int64_t b = 0; b < nblocks; b++) {
    const uint64_t v = ctr + (uint64_t)b;
    uint32_t c0 = (uint32_t)v, c1 = (uint32_t)(v >> 32), c2 = 0, c3 = 0, k0 = key0, k1 = key1;
    for (int r = 0; r < 10; r++) {
      const uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
      c0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, c1 = (uint32_t)p1;
      c2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1, c3 = (uint32_t)p0;
      k0 += 0x9E3779B9u, k1 += 0xBB67AE85u;
    }
    out[4 * b] = c0, out[4 * b + 1] = c1, out[4 * b + 2] = c2, out[4 * b + 3] = c3;
  }
}

#if MF_HAVE_CLONES
/* The same words with every 32-bit value zero-extended in a 64-bit lane. */
#define WIDE_TARGET __attribute__((target("arch=x86-64-v4")))

WIDE_TARGET static void philox_fill_wide(const uint32_t key[2], uint64_t ctr, int64_t nblocks,
                                         uint32_t *restrict out) {
  const uint64_t lo = 0xFFFFFFFFu, key0 = key[0], key1 = key[1];
#pragma omp simd
  for (int64_t b = 0; b < nblocks; b++) {
    const uint64_t v = ctr + (uint64_t)b;
    uint64_t c0 = v & lo, c1 = v >> 32, c2 = 0, c3 = 0, k0 = key0, k1 = key1;
    for (int r = 0; r < 10; r++) {
      const uint64_t p0 = 0xD2511F53u * c0, p1 = 0xCD9E8D57u * c2; /* < 2^64: exact */
      c0 = (p1 >> 32) ^ c1 ^ k0, c1 = p1 & lo;
      c2 = (p0 >> 32) ^ c3 ^ k1, c3 = p0 & lo;
      k0 = (k0 + 0x9E3779B9u) & lo, k1 = (k1 + 0xBB67AE85u) & lo;
    }
    out[4 * b] = (uint32_t)c0, out[4 * b + 1] = (uint32_t)c1;
    out[4 * b + 2] = (uint32_t)c2, out[4 * b + 3] = (uint32_t)c3;
  }
}
#endif

void mf__philox_fill(const uint32_t key[2], uint64_t ctr, int64_t nblocks, uint32_t *out) {
#if MF_HAVE_CLONES
  if (__builtin_cpu_supports("x86-64-v4")) {
    philox_fill_wide(key, ctr, nblocks, out);
    return;
  }
#endif
  philox_fill_narrow(key, ctr, nblocks, out);
}
