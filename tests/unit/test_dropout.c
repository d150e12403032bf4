/* Dropout and Dropout2d: the kept fraction and the survivors' scale, the documented mapping
 * from the dropout stream to the mask, reproducibility from the stream state and across
 * thread counts, backward using the forward's mask, whole-channel zeroing, and the
 * identity cases. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "melforge/melforge.h"
#include "mftest.h"

/* A context whose dropout stream is stream `seed` of MF_RNG_DROPOUT. */
static mf_ctx *ctx_with_stream(uint64_t seed) {
  mf_ctx *ctx = mf_ctx_new();
  mf_rng r = mf_rng_stream(seed, MF_RNG_DROPOUT);
  mf_ctx_set_dropout_rng(ctx, &r);
  return ctx;
}

/* x filled with values in [1, 2): never zero, so a zero in the output means dropped. */
static mf_tensor *positive_input(mf_ctx *ctx, mf_shape s) {
  mf_tensor *x = mf_ctx_tensor(ctx, s);
  fill_uniform(x, 77, 1, 2);
  return x;
}

TEST(test_dropout_keeps_about_one_minus_p_and_scales_survivors) {
  /* n = 200000 Bernoulli(0.7) draws: the kept fraction has standard deviation
   * sqrt(0.7 * 0.3 / n) = 0.00102; the tolerance is 5 of them (0.0051). Survivors are
   * x * (1 / (1 - p)) exactly: the same float product. */
  const float p = 0.3f, scale = 1.0f / (1.0f - p);
  const int64_t n = 200000;
  mf_ctx *ctx = ctx_with_stream(1);
  mf_tensor *x = positive_input(ctx, MF_SHAPE(n));
  mf_tensor *y = mf_dropout(ctx, x, p, 1);
  EXPECT(y != x, "training dropout must make a new tensor");
  int64_t kept = 0, bad = 0;
  for (int64_t i = 0; i < n; i++) {
    if (y->data[i] != 0.0f) {
      kept++;
      bad += y->data[i] != x->data[i] * scale;
    }
  }
  EXPECT_NEAR((double)kept / n, 1 - p, 5 * sqrt(0.7 * 0.3 / n));
  EXPECT_EQ_INT(bad, 0);
  mf_ctx_free(ctx);
}

TEST(test_dropout_mask_follows_the_stream_layout) {
  /* Element i is kept iff unit(word i % 4 of Philox block base + i / 4) >= p, base being the
   * stream's counter; the stream then moves past ceil(n / 4) blocks and drops its buffered
   * words. 1001 elements: a partial last block. */
  const float p = 0.5f;
  const int64_t n = 1001;
  mf_ctx *ctx = ctx_with_stream(2);
  mf_rng before = mf_ctx_dropout_rng(ctx);
  (void)mf_rng_u32(&before); /* leave buffered words behind: the op must skip them */
  mf_ctx_set_dropout_rng(ctx, &before);
  mf_tensor *x = positive_input(ctx, MF_SHAPE(7, 11, 13));
  mf_tensor *y = mf_dropout(ctx, x, p, 1);
  int64_t mismatches = 0;
  for (int64_t i = 0; i < n; i++) {
    uint32_t w[4];
    mf_philox4x32(before.key, before.counter + (uint64_t)(i / 4), w);
    int keep = mf_u32_to_unit(w[i % 4]) >= p;
    mismatches += keep != (y->data[i] != 0.0f);
  }
  EXPECT_EQ_INT(mismatches, 0);
  mf_rng after = mf_ctx_dropout_rng(ctx);
  EXPECT_EQ_INT(after.counter, before.counter + (n + 3) / 4);
  EXPECT_EQ_INT(after.nbuf, 0);
  mf_ctx_free(ctx);
}

TEST(test_dropout_same_stream_state_gives_the_same_mask) {
  mf_ctx *a = ctx_with_stream(3), *b = ctx_with_stream(3);
  mf_tensor *xa = positive_input(a, MF_SHAPE(50, 40)), *xb = positive_input(b, MF_SHAPE(50, 40));
  mf_tensor *ya = mf_dropout(a, xa, 0.4f, 1), *yb = mf_dropout(b, xb, 0.4f, 1);
  EXPECT(memcmp(ya->data, yb->data, sizeof(float) * 2000) == 0, "same state, different masks");
  /* The stream has moved on: the next call draws a different mask. */
  mf_tensor *ya2 = mf_dropout(a, xa, 0.4f, 1);
  EXPECT(memcmp(ya->data, ya2->data, sizeof(float) * 2000) != 0,
         "two consecutive dropout calls drew the same mask");
  mf_ctx_free(a);
  mf_ctx_free(b);
}

TEST(test_dropout_mask_does_not_depend_on_thread_count) {
  /* Large enough for the parallel loop. */
  const int64_t n = 300000;
  const int saved = omp_get_max_threads();
  float *m1 = malloc(sizeof(float) * n);
  for (int threads = 1; threads <= 2; threads++) {
    omp_set_num_threads(threads);
    mf_ctx *ctx = ctx_with_stream(4);
    mf_tensor *y = mf_dropout(ctx, positive_input(ctx, MF_SHAPE(n)), 0.25f, 1);
    if (threads == 1)
      memcpy(m1, y->data, sizeof(float) * n);
    else
      EXPECT(memcmp(m1, y->data, sizeof(float) * n) == 0, "1 and 2 threads drew different masks");
    mf_ctx_free(ctx);
  }
  omp_set_num_threads(saved);
  free(m1);
}

TEST(test_dropout_backward_uses_the_forward_mask) {
  /* dy = 1: dx is 1 / (1 - p) where the forward kept the element and 0 where it dropped it. */
  const float p = 0.6f;
  mf_ctx *ctx = ctx_with_stream(5);
  mf_tensor *x = mf_tensor_new(MF_SHAPE(40, 30));
  fill_uniform(x, 9, 1, 2);
  mf_tensor_set_requires_grad(x, 1);
  mf_tensor *y = mf_dropout(ctx, x, p, 1);
  /* Draws made between forward and backward must not disturb the regenerated mask. */
  mf_dropout(ctx, x, p, 1);
  float *ones = malloc(sizeof(float) * 1200);
  for (int i = 0; i < 1200; i++) ones[i] = 1.0f;
  EXPECT(mf_backward_with_grad(ctx, y, ones) == MF_OK, "%s", mf_error());
  int64_t bad = 0;
  for (int i = 0; i < 1200; i++) {
    float want = y->data[i] != 0.0f ? 1.0f / (1.0f - p) : 0.0f;
    bad += x->grad[i] != want;
  }
  EXPECT_EQ_INT(bad, 0);
  free(ones);
  mf_tensor_free(x);
  mf_ctx_free(ctx);
}

static mf_tensor *f_dropout(mf_ctx *ctx, mf_tensor **in, void *user) {
  /* Scaled first so the input's gradient is not simply handed the output's buffer. */
  mf_tensor *h = mf_scale(ctx, in[0], 1.5f);
  return *(int *)user ? mf_dropout2d(ctx, h, 0.3f, 1) : mf_dropout(ctx, h, 0.3f, 1);
}

TEST(test_dropout_backward_matches_finite_differences) {
  for (int two_d = 0; two_d < 2; two_d++) {
    mf_tensor *x = mf_tensor_new(MF_SHAPE(3, 4, 5));
    fill_uniform(x, 10, -1, 1);
    mf_tensor_set_requires_grad(x, 1);
    gradcheck(two_d ? "dropout2d" : "dropout", f_dropout, 1, &x, &two_d, NULL);
    mf_tensor_free(x);
  }
}

TEST(test_dropout2d_zeroes_whole_channels) {
  /* [16, 32, 5, 7]: each of the 512 planes is all zeros or all x / (1 - p). The kept
   * fraction of planes (Binomial(512, 0.5), sd 0.022) is within 5 sd of 0.5. */
  const float p = 0.5f;
  mf_ctx *ctx = ctx_with_stream(6);
  mf_tensor *x = positive_input(ctx, MF_SHAPE(16, 32, 5, 7));
  mf_tensor *y = mf_dropout2d(ctx, x, p, 1);
  int mixed = 0, kept = 0, bad_scale = 0;
  for (int j = 0; j < 512; j++) {
    int zeros = 0;
    for (int i = 0; i < 35; i++) {
      float v = y->data[j * 35 + i];
      zeros += v == 0.0f;
      if (v != 0.0f) bad_scale += v != x->data[j * 35 + i] * (1.0f / (1.0f - p));
    }
    mixed += zeros != 0 && zeros != 35;
    kept += zeros == 0;
  }
  EXPECT_EQ_INT(mixed, 0);
  EXPECT_EQ_INT(bad_scale, 0);
  EXPECT_NEAR(kept / 512.0, 0.5, 5 * sqrt(0.25 / 512));
  EXPECT_EQ_INT(mf_ctx_dropout_rng(ctx).counter, mf_rng_stream(6, MF_RNG_DROPOUT).counter + 128);
  mf_ctx_free(ctx);
}

TEST(test_dropout_eval_and_zero_p_return_the_input_unchanged) {
  mf_ctx *ctx = ctx_with_stream(7);
  mf_tensor *x = positive_input(ctx, MF_SHAPE(4, 3, 2));
  const uint64_t counter = mf_ctx_dropout_rng(ctx).counter;
  EXPECT(mf_dropout(ctx, x, 0.5f, 0) == x, "eval dropout must return its input");
  EXPECT(mf_dropout(ctx, x, 0.0f, 1) == x, "p = 0 dropout must return its input");
  EXPECT(mf_dropout2d(ctx, x, 0.5f, 0) == x, "eval dropout2d must return its input");
  EXPECT(mf_dropout2d(ctx, x, 0.0f, 1) == x, "p = 0 dropout2d must return its input");
  EXPECT_EQ_INT(mf_ctx_dropout_rng(ctx).counter, counter);
  mf_ctx_free(ctx);
}

TEST(test_dropout_with_p_one_gives_zeros_and_zero_gradient) {
  mf_ctx *ctx = ctx_with_stream(8);
  mf_tensor *x = mf_tensor_new(MF_SHAPE(6, 5));
  fill_uniform(x, 1, 1, 2);
  mf_tensor_set_requires_grad(x, 1);
  mf_tensor *y = mf_dropout(ctx, x, 1.0f, 1);
  mf_tensor *y2 = mf_dropout2d(ctx, x, 1.0f, 1);
  int nonzero = 0;
  for (int i = 0; i < 30; i++) nonzero += y->data[i] != 0.0f || y2->data[i] != 0.0f;
  EXPECT_EQ_INT(nonzero, 0);
  mf_tensor *l = mf_add(ctx, mf_sum(ctx, y, NULL, 0, 0), mf_sum(ctx, y2, NULL, 0, 0));
  EXPECT(mf_backward(ctx, l) == MF_OK, "%s", mf_error());
  for (int i = 0; i < 30; i++) nonzero += x->grad[i] != 0.0f;
  EXPECT_EQ_INT(nonzero, 0);
  mf_tensor_free(x);
  mf_ctx_free(ctx);
}
