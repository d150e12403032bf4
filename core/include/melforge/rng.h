/* melforge/rng.h — counter-based random numbers with one independent stream per purpose.
 *
 * Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11):
 * a stream is a 64-bit key and a 64-bit counter; the n-th block of four 32-bit words is
 * philox(key, n). Any element can be computed directly from (key, position), so parallel
 * loops draw identical numbers whatever the thread count, and a dropout mask can be
 * regenerated in backward instead of stored.
 *
 * An experiment seed gives one stream per purpose (split, init, shuffle, dropout, augment):
 * changing how many numbers the augmentation draws never moves the split or the weights.
 * A stream's whole state is (key, counter): checkpoints store it to resume exactly.
 */
#ifndef MELFORGE_RNG_H
#define MELFORGE_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mf_rng_purpose {
  MF_RNG_SPLIT = 1,
  MF_RNG_INIT = 2,
  MF_RNG_SHUFFLE = 3,
  MF_RNG_DROPOUT = 4,
  MF_RNG_AUGMENT = 5,
  MF_RNG_USER = 16 /* MF_RNG_USER + k: further streams for other purposes */
} mf_rng_purpose;

typedef struct mf_rng {
  uint32_t key[2];
  uint64_t counter; /* index of the next 4-word block */
  uint32_t buf[4];  /* words of the current block not yet handed out */
  int nbuf;
} mf_rng;

/* The stream for `purpose` of experiment seed `seed`. */
mf_rng mf_rng_stream(uint64_t seed, int purpose);
/* A sub-stream (e.g. one per epoch or per worker), independent of its parent's draws. */
mf_rng mf_rng_substream(const mf_rng *parent, uint64_t index);

/* One Philox4x32-10 block. */
void mf_philox4x32(const uint32_t key[2], uint64_t counter, uint32_t out[4]);

uint32_t mf_rng_u32(mf_rng *r);
uint64_t mf_rng_u64(mf_rng *r);
/* Uniform in [0, 1) with 24 random bits. */
float mf_rng_uniform(mf_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double mf_rng_uniform_double(mf_rng *r);
/* Standard normal (Box-Muller on 53-bit uniforms). */
double mf_rng_normal(mf_rng *r);
/* Uniform integer in [0, n), unbiased (rejection). n > 0. */
uint32_t mf_rng_below(mf_rng *r, uint32_t n);
/* Fisher-Yates shuffle of idx[0..n). */
void mf_rng_shuffle_i32(mf_rng *r, int32_t *idx, int64_t n);

/* Bulk fills, element i taken from block (start + i/4): the result does not depend on the
 * thread count. Each call advances the stream past the blocks it used. */
void mf_rng_fill_uniform(mf_rng *r, float *out, int64_t n, float lo, float hi);
void mf_rng_fill_normal(mf_rng *r, float *out, int64_t n, float mean, float std);

/* Converts a 32-bit word to a float in [0, 1). */
static inline float mf_u32_to_unit(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }

#ifdef __cplusplus
}
#endif
#endif
