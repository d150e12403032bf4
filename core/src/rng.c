/* rng.c — Philox4x32-10 streams. */
#include "melforge/rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void mf_philox4x32(const uint32_t key[2], uint64_t counter, uint32_t out[4]) {
  uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
    uint32_t n1 = (uint32_t)p1;
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    uint32_t n3 = (uint32_t)p0;
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

/* SplitMix64 finaliser: spreads (seed, purpose) over the key space. */
static uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static mf_rng from_key(uint64_t k) {
  mf_rng r = {{(uint32_t)k, (uint32_t)(k >> 32)}, 0, {0, 0, 0, 0}, 0};
  return r;
}

mf_rng mf_rng_stream(uint64_t seed, int purpose) {
  return from_key(mix64(mix64(seed) ^ (uint64_t)(uint32_t)purpose * 0xA24BAED4963EE407ull));
}

mf_rng mf_rng_substream(const mf_rng *parent, uint64_t index) {
  uint64_t k = ((uint64_t)parent->key[1] << 32) | parent->key[0];
  return from_key(mix64(k ^ mix64(index + 0x632BE59BD9B4E019ull)));
}

uint32_t mf_rng_u32(mf_rng *r) {
  if (r->nbuf == 0) {
    uint32_t b[4];
    mf_philox4x32(r->key, r->counter++, b);
    r->buf[0] = b[3], r->buf[1] = b[2], r->buf[2] = b[1], r->buf[3] = b[0];
    r->nbuf = 4;
  }
  return r->buf[--r->nbuf];
}

uint64_t mf_rng_u64(mf_rng *r) {
  uint64_t hi = mf_rng_u32(r);
  return (hi << 32) | mf_rng_u32(r);
}

float mf_rng_uniform(mf_rng *r) { return mf_u32_to_unit(mf_rng_u32(r)); }

double mf_rng_uniform_double(mf_rng *r) {
  return (double)(mf_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

double mf_rng_normal(mf_rng *r) {
  double u1 = 1.0 - mf_rng_uniform_double(r); /* (0, 1]: log is finite */
  double u2 = mf_rng_uniform_double(r);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint32_t mf_rng_below(mf_rng *r, uint32_t n) {
  /* Lemire's multiply-shift with rejection of the biased low range. */
  uint64_t m = (uint64_t)mf_rng_u32(r) * n;
  uint32_t lo = (uint32_t)m;
  if (lo < n) {
    uint32_t t = (uint32_t)(-n) % n;
    while (lo < t) {
      m = (uint64_t)mf_rng_u32(r) * n;
      lo = (uint32_t)m;
    }
  }
  return (uint32_t)(m >> 32);
}

void mf_rng_shuffle_i32(mf_rng *r, int32_t *idx, int64_t n) {
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = mf_rng_below(r, (uint32_t)(i + 1));
    int32_t t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  }
}

void mf_rng_fill_uniform(mf_rng *r, float *out, int64_t n, float lo, float hi) {
  const uint64_t start = r->counter;
  const float span = hi - lo;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t b = 0; b < (n + 3) / 4; b++) {
    uint32_t w[4];
    mf_philox4x32(r->key, start + (uint64_t)b, w);
    for (int k = 0; k < 4 && b * 4 + k < n; k++) out[b * 4 + k] = lo + span * mf_u32_to_unit(w[k]);
  }
  r->counter = start + (uint64_t)((n + 3) / 4);
  r->nbuf = 0;
}

void mf_rng_fill_normal(mf_rng *r, float *out, int64_t n, float mean, float std) {
  const uint64_t start = r->counter;
  /* Each block gives two 32-bit-pair uniforms -> two normals (Box-Muller, both branches). */
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t b = 0; b < (n + 1) / 2; b++) {
    uint32_t w[4];
    mf_philox4x32(r->key, start + (uint64_t)b, w);
    double u1 = 1.0 - (double)((((uint64_t)w[0] << 32) | w[1]) >> 11) * (1.0 / 9007199254740992.0);
    double u2 = (double)((((uint64_t)w[2] << 32) | w[3]) >> 11) * (1.0 / 9007199254740992.0);
    double rad = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
    out[2 * b] = mean + std * (float)(rad * cos(th));
    if (2 * b + 1 < n) out[2 * b + 1] = mean + std * (float)(rad * sin(th));
  }
  r->counter = start + (uint64_t)((n + 1) / 2);
  r->nbuf = 0;
}
