/* Core behaviour: tensors, the arena, the tape, backward bookkeeping. */
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "melforge/melforge.h"
#include "mftest.h"

TEST(test_shape_macro_builds_dims) {
  mf_shape s = MF_SHAPE(2, 3, 4);
  EXPECT_EQ_INT(s.ndim, 3);
  EXPECT_EQ_INT(mf_shape_numel(s), 24);
  char b[64];
  EXPECT(strcmp(mf_shape_str(s, b, sizeof b), "[2, 3, 4]") == 0, "got %s", b);
}

TEST(test_add_broadcasts_row_vector) {
  mf_ctx *ctx = mf_ctx_new();
  float a[6] = {1, 2, 3, 4, 5, 6}, b[3] = {10, 20, 30};
  mf_tensor *ta = mf_ctx_tensor_from(ctx, MF_SHAPE(2, 3), a);
  mf_tensor *tb = mf_ctx_tensor_from(ctx, MF_SHAPE(3), b);
  mf_tensor *o = mf_add(ctx, ta, tb);
  float want[6] = {11, 22, 33, 14, 25, 36};
  EXPECT_EQ_INT(o->ndim, 2);
  for (int i = 0; i < 6; i++) EXPECT_NEAR(o->data[i], want[i], 0);
  mf_ctx_free(ctx);
}

TEST(test_mul_broadcasts_column_against_row) {
  mf_ctx *ctx = mf_ctx_new();
  float a[2] = {2, 3}, b[3] = {1, 10, 100};
  mf_tensor *o = mf_mul(ctx, mf_ctx_tensor_from(ctx, MF_SHAPE(2, 1), a),
                        mf_ctx_tensor_from(ctx, MF_SHAPE(1, 3), b));
  float want[6] = {2, 20, 200, 3, 30, 300};
  EXPECT_EQ_INT(o->numel, 6);
  for (int i = 0; i < 6; i++) EXPECT_NEAR(o->data[i], want[i], 0);
  mf_ctx_free(ctx);
}

static mf_tensor *f_binops(mf_ctx *ctx, mf_tensor **in, void *user) {
  int which = *(int *)user;
  switch (which) {
    case 0: return mf_add(ctx, in[0], in[1]);
    case 1: return mf_sub(ctx, in[0], in[1]);
    case 2: return mf_mul(ctx, in[0], in[1]);
    case 3: return mf_div(ctx, in[0], in[1]);
    case 4: return mf_scale(ctx, in[0], -2.5f);
    default: return mf_add_scalar(ctx, mf_mul(ctx, in[0], in[0]), 3.0f);
  }
}

TEST(test_elementwise_backward_matches_finite_differences) {
  /* a [2, 3, 4] against b in several broadcast shapes, including b broadcast on both sides. */
  const mf_shape bshapes[] = {MF_SHAPE(2, 3, 4), MF_SHAPE(4), MF_SHAPE(3, 1), MF_SHAPE(2, 1, 4),
                              MF_SHAPE(1)};
  for (int which = 0; which < 6; which++)
    for (int k = 0; k < 5; k++) {
      mf_tensor *a = mf_tensor_new(MF_SHAPE(2, 3, 4)), *b = mf_tensor_new(bshapes[k]);
      fill_uniform(a, 1, -1, 1);
      fill_uniform(b, 2, 0.5f, 1.5f); /* away from 0 for div */
      mf_tensor_set_requires_grad(a, 1);
      mf_tensor_set_requires_grad(b, 1);
      mf_tensor *in[2] = {a, b};
      char label[64];
      snprintf(label, sizeof label, "binop %d, b shape %d", which, k);
      gradcheck(label, f_binops, 2, in, &which, NULL);
      mf_tensor_free(a);
      mf_tensor_free(b);
    }
}

TEST(test_gradient_accumulates_over_two_uses) {
  /* y = x * x + x: dy/dx = 2x + 1, the two paths into x add up. */
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_tensor_from_data(MF_SHAPE(3), (float[]){1, -2, 0.5f});
  mf_tensor_set_requires_grad(x, 1);
  mf_tensor *y = mf_add(ctx, mf_mul(ctx, x, x), x);
  float ones[3] = {1, 1, 1};
  EXPECT(mf_backward_with_grad(ctx, y, ones) == MF_OK, "%s", mf_error());
  EXPECT_NEAR(x->grad[0], 3, 1e-6);
  EXPECT_NEAR(x->grad[1], -3, 1e-6);
  EXPECT_NEAR(x->grad[2], 2, 1e-6);
  mf_tensor_free(x);
  mf_ctx_free(ctx);
}

TEST(test_no_grad_mode_records_nothing) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_tensor_new(MF_SHAPE(4));
  mf_tensor_set_requires_grad(x, 1);
  mf_ctx_set_grad_enabled(ctx, 0);
  mf_tensor *y = mf_scale(ctx, x, 2);
  EXPECT(y->node == NULL, "a node was recorded in no-grad mode");
  EXPECT(!(y->flags & MF_REQUIRES_GRAD), "output requires grad in no-grad mode");
  EXPECT_EQ_INT(mf_ctx_stats_get(ctx).tape_nodes, 0);
  EXPECT(mf_backward_with_grad(ctx, y, (float[]){1, 1, 1, 1}) != MF_OK,
         "backward through a no-grad result should fail with a message");
  mf_tensor_free(x);
  mf_ctx_free(ctx);
}

TEST(test_backward_of_non_scalar_loss_is_an_error) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_tensor_new(MF_SHAPE(2));
  mf_tensor_set_requires_grad(x, 1);
  mf_tensor *y = mf_scale(ctx, x, 2);
  EXPECT(mf_backward(ctx, y) == MF_EINVAL, "expected MF_EINVAL");
  EXPECT(strstr(mf_error(), "[2]") != NULL, "message should name the shape: %s", mf_error());
  mf_tensor_free(x);
  mf_ctx_free(ctx);
}

TEST(test_arena_steady_state_does_not_allocate) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_tensor_new(MF_SHAPE(256, 256));
  mf_tensor_set_requires_grad(x, 1);
  size_t allocs_after_warmup = 0;
  for (int step = 0; step < 6; step++) {
    mf_ctx_reset(ctx);
    mf_tensor *y = x;
    for (int k = 0; k < 50; k++) y = mf_add_scalar(ctx, mf_scale(ctx, y, 0.5f), 1.0f);
    mf_tensor *l = mf_sum(ctx, y, NULL, 0, 0);
    mf_backward(ctx, l);
    if (step == 2) allocs_after_warmup = mf_ctx_stats_get(ctx).system_allocs;
  }
  EXPECT_EQ_INT(mf_ctx_stats_get(ctx).system_allocs, allocs_after_warmup);
  mf_tensor_free(x);
  mf_ctx_free(ctx);
}

TEST(test_rng_streams_are_independent_and_reproducible) {
  mf_rng a = mf_rng_stream(42, MF_RNG_SPLIT), b = mf_rng_stream(42, MF_RNG_SPLIT);
  mf_rng c = mf_rng_stream(42, MF_RNG_INIT), d = mf_rng_stream(43, MF_RNG_SPLIT);
  int same_ab = 1, same_ac = 1, same_ad = 1;
  for (int i = 0; i < 100; i++) {
    uint32_t x = mf_rng_u32(&a), y = mf_rng_u32(&b), z = mf_rng_u32(&c), w = mf_rng_u32(&d);
    same_ab &= x == y;
    same_ac &= x == z;
    same_ad &= x == w;
  }
  EXPECT(same_ab, "the same seed and purpose gave different numbers");
  EXPECT(!same_ac, "two purposes gave the same stream");
  EXPECT(!same_ad, "two seeds gave the same stream");
}

TEST(test_philox_matches_published_known_answer) {
  /* Random123 kat_vectors: philox4x32-10, counter 0, key 0. */
  uint32_t out[4];
  mf_philox4x32((uint32_t[]){0, 0}, 0, out);
  EXPECT(out[0] == 0x6627e8d5u && out[1] == 0xe169c58du && out[2] == 0xbc57ac4cu &&
             out[3] == 0x9b00dbd8u,
         "got %08x %08x %08x %08x", out[0], out[1], out[2], out[3]);
}

TEST(test_rng_uniform_and_normal_moments) {
  /* 200k draws: the mean of U[0,1) is 0.5 +- 0.0007 (sd 0.289/sqrt(n)) and of N(0,1) 0 +-
   * 0.0022; tolerances are 5 standard errors. */
  mf_rng r = mf_rng_stream(7, MF_RNG_USER);
  int n = 200000;
  float *u = malloc(sizeof(float) * n), *g = malloc(sizeof(float) * n);
  mf_rng_fill_uniform(&r, u, n, 0, 1);
  mf_rng_fill_normal(&r, g, n, 0, 1);
  double su = 0, sg = 0, sg2 = 0;
  for (int i = 0; i < n; i++) su += u[i], sg += g[i], sg2 += (double)g[i] * g[i];
  EXPECT_NEAR(su / n, 0.5, 5 * 0.289 / sqrt(n));
  EXPECT_NEAR(sg / n, 0.0, 5 / sqrt(n));
  EXPECT_NEAR(sg2 / n, 1.0, 5 * sqrt(2.0 / n));
  free(u);
  free(g);
}

TEST(test_rng_below_is_in_range_and_covers_it) {
  mf_rng r = mf_rng_stream(1, MF_RNG_SHUFFLE);
  int seen[7] = {0};
  for (int i = 0; i < 7000; i++) {
    uint32_t v = mf_rng_below(&r, 7);
    EXPECT(v < 7, "value %u out of range", v);
    if (v < 7) seen[v]++;
  }
  for (int k = 0; k < 7; k++) EXPECT(seen[k] > 800 && seen[k] < 1200, "bucket %d: %d", k, seen[k]);
}
