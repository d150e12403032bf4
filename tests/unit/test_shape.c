/* Shape ops: reshape, flatten, permute, transpose, concat, slice. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "expect_abort.h"
#include "gradcheck.h"
#include "melforge/melforge.h"
#include "mftest.h"

static int same_shape(const mf_tensor *t, mf_shape s) {
  return mf_shape_equal(mf_tensor_shape(t), s);
}

static void fill_iota(mf_tensor *t) {
  for (int64_t i = 0; i < t->numel; i++) t->data[i] = (float)i;
}

/* ---- reshape, flatten ---------------------------------------------------------------------- */

TEST(test_reshape_infers_minus_one_and_shares_the_data) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_ctx_tensor(ctx, MF_SHAPE(2, 3, 4));
  fill_iota(x);
  mf_tensor *y = mf_reshape(ctx, x, MF_SHAPE(4, -1));
  EXPECT(same_shape(y, MF_SHAPE(4, 6)), "shape [%lld, %lld]", (long long)y->shape[0],
         (long long)y->shape[1]);
  EXPECT(y->data == x->data, "reshape copied the data");
  EXPECT(y->version == x->version, "the view should share the version counter");
  EXPECT_NEAR(y->data[7], 7, 0);
  mf_tensor *z = mf_reshape(ctx, x, MF_SHAPE(-1));
  EXPECT(same_shape(z, MF_SHAPE(24)), "flat reshape has %d dims", z->ndim);
  mf_tensor *e = mf_reshape(ctx, mf_ctx_tensor(ctx, MF_SHAPE(0, 5)), MF_SHAPE(-1, 5));
  EXPECT(same_shape(e, MF_SHAPE(0, 5)), "empty reshape: dim 0 = %lld", (long long)e->shape[0]);
  mf_ctx_free(ctx);
}

static void child_reshape_wrong_count(void) {
  mf_ctx *ctx = mf_ctx_new();
  mf_reshape(ctx, mf_ctx_tensor(ctx, MF_SHAPE(2, 3, 4)), MF_SHAPE(5, 5));
}

static void child_reshape_indivisible(void) {
  mf_ctx *ctx = mf_ctx_new();
  mf_reshape(ctx, mf_ctx_tensor(ctx, MF_SHAPE(2, 3, 4)), MF_SHAPE(5, -1));
}

static void child_reshape_two_unknowns(void) {
  mf_ctx *ctx = mf_ctx_new();
  mf_reshape(ctx, mf_ctx_tensor(ctx, MF_SHAPE(2, 3, 4)), MF_SHAPE(-1, 2, -1));
}

TEST(test_reshape_to_a_different_element_count_aborts_with_both_shapes) {
  EXPECT(mftest_aborts_with(child_reshape_wrong_count, "[2, 3, 4] (24 elements) as [5, 5]"),
         "reshape 24 -> 25 elements accepted");
  EXPECT(mftest_aborts_with(child_reshape_indivisible, "[2, 3, 4] (24 elements) as [5, -1]"),
         "reshape 24 -> [5, -1] accepted");
  EXPECT(mftest_aborts_with(child_reshape_two_unknowns, "more than one -1"), "two -1 accepted");
}

static mf_tensor *f_reshape(mf_ctx *ctx, mf_tensor **in, void *user) {
  /* x [2, 3, 4] -> [-1, 6] -> scaled (so the grad buffer is not the seed's) -> [4, 3, 2] */
  mf_tensor *y = mf_scale(ctx, mf_reshape(ctx, in[0], MF_SHAPE(-1, 6)), 2.0f);
  return mf_reshape(ctx, y, MF_SHAPE(4, 3, -1));
}

TEST(test_reshape_backward_matches_finite_differences) {
  mf_tensor *x = mf_tensor_new(MF_SHAPE(2, 3, 4));
  fill_uniform(x, 1, -1, 1);
  mf_tensor_set_requires_grad(x, 1);
  gradcheck("reshape", f_reshape, 1, &x, NULL, NULL);
  mf_tensor_free(x);
}

static mf_tensor *f_reshape_twice(mf_ctx *ctx, mf_tensor **in, void *user) {
  mf_tensor *a = mf_reshape(ctx, in[0], MF_SHAPE(6, -1));
  mf_tensor *b = mf_reshape(ctx, in[0], MF_SHAPE(-1, 4));
  return mf_mul(ctx, mf_add(ctx, a, b), in[1]);
}

TEST(test_reshape_gradients_accumulate_over_two_views) {
  mf_tensor *x = mf_tensor_new(MF_SHAPE(2, 3, 4)), *w = mf_tensor_new(MF_SHAPE(6, 4));
  fill_uniform(x, 2, -1, 1);
  fill_uniform(w, 3, -1, 1);
  mf_tensor_set_requires_grad(x, 1);
  mf_tensor *in[2] = {x, w};
  gradcheck("two reshapes of one tensor", f_reshape_twice, 2, in, NULL, NULL);
  mf_tensor_free(x);
  mf_tensor_free(w);
}

TEST(test_flatten_keeps_the_batch_dimension) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_ctx_tensor(ctx, MF_SHAPE(2, 3, 4, 5));
  fill_iota(x);
  mf_tensor *y = mf_flatten(ctx, x);
  EXPECT(same_shape(y, MF_SHAPE(2, 60)), "flatten gave %d dims", y->ndim);
  EXPECT(y->data == x->data, "flatten copied the data");
  mf_tensor *z = mf_flatten(ctx, mf_ctx_tensor(ctx, MF_SHAPE(7, 3)));
  EXPECT(same_shape(z, MF_SHAPE(7, 3)), "flatten of a 2-D tensor changed it");
  mf_ctx_free(ctx);
}

/* ---- permute, transpose ------------------------------------------------------------------- */

/* out = x permuted, by walking every output index (the obvious, slow way). */
static void permute_ref(const mf_tensor *x, const int *perm, float *out) {
  int nd = x->ndim;
  int64_t stride[6], idx[6] = {0};
  int64_t s = 1;
  for (int k = nd - 1; k >= 0; k--) stride[k] = s, s *= x->shape[k];
  for (int64_t o = 0; o < x->numel; o++) {
    int64_t rem = o, off = 0;
    for (int k = nd - 1; k >= 0; k--) {
      int64_t n = x->shape[perm[k]];
      idx[k] = rem % n;
      rem /= n;
      off += idx[k] * stride[perm[k]];
    }
    out[o] = x->data[off];
  }
}

/* Checks mf_permute against the reference; returns 1 when equal. */
static int permute_matches(mf_ctx *ctx, mf_shape shape, const int *perm) {
  mf_tensor *x = mf_ctx_tensor(ctx, shape);
  fill_iota(x);
  mf_tensor *y = mf_permute(ctx, x, perm);
  float *want = malloc((size_t)x->numel * sizeof(float));
  permute_ref(x, perm, want);
  int ok = y->ndim == shape.ndim;
  for (int k = 0; ok && k < shape.ndim; k++) ok = y->shape[k] == shape.d[perm[k]];
  for (int64_t i = 0; ok && i < x->numel; i++) ok = y->data[i] == want[i];
  free(want);
  return ok;
}

TEST(test_transpose_of_a_matrix_matches_hand_values) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_ctx_tensor_from(ctx, MF_SHAPE(2, 3), (float[]){1, 2, 3, 4, 5, 6});
  mf_tensor *y = mf_transpose(ctx, x, 0, -1);
  float want[6] = {1, 4, 2, 5, 3, 6};
  EXPECT(same_shape(y, MF_SHAPE(3, 2)), "transpose shape");
  for (int i = 0; i < 6; i++) EXPECT_NEAR(y->data[i], want[i], 0);
  mf_ctx_free(ctx);
}

TEST(test_permute_matches_reference_for_every_permutation_of_4_dims) {
  mf_ctx *ctx = mf_ctx_new();
  int perms = 0;
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 4; b++)
      for (int c = 0; c < 4; c++) {
        int d = 6 - a - b - c;
        if (a == b || a == c || b == c || d == a || d == b || d == c) continue;
        int perm[4] = {a, b, c, d};
        EXPECT(permute_matches(ctx, MF_SHAPE(3, 4, 5, 6), perm), "perm (%d %d %d %d)", a, b, c, d);
        /* size-1 dims are dropped from the plan; check they still land in place */
        EXPECT(permute_matches(ctx, MF_SHAPE(3, 1, 5, 1), perm), "perm (%d %d %d %d) with 1s", a, b,
               c, d);
        perms++;
      }
  EXPECT_EQ_INT(perms, 24);
  mf_ctx_free(ctx);
}

TEST(test_permute_handles_tile_edges_and_large_tensors) {
  /* Odd sizes straddle the 32 x 32 tiles; the big ones run the threaded loops. */
  mf_ctx *ctx = mf_ctx_new();
  const int crnn[4] = {0, 3, 1, 2}, swap[4] = {0, 1, 3, 2}, rev[4] = {3, 2, 1, 0};
  const int mixed[6] = {5, 0, 3, 1, 4, 2}, last2[3] = {0, 2, 1};
  EXPECT(permute_matches(ctx, MF_SHAPE(2, 3, 37, 45), crnn), "[B,C,F,T] -> [B,T,C,F]");
  EXPECT(permute_matches(ctx, MF_SHAPE(4, 16, 40, 70), crnn), "large [B,C,F,T] -> [B,T,C,F]");
  EXPECT(permute_matches(ctx, MF_SHAPE(3, 2, 33, 65), swap), "swap the last two dims");
  EXPECT(permute_matches(ctx, MF_SHAPE(8, 3, 100, 130), swap), "large swap of the last two");
  EXPECT(permute_matches(ctx, MF_SHAPE(9, 11, 13, 35), rev), "reversed dims");
  EXPECT(permute_matches(ctx, MF_SHAPE(2, 3, 4, 5, 6, 7), mixed), "6-d permutation");
  EXPECT(permute_matches(ctx, MF_SHAPE(70, 300, 3), last2), "short contiguous runs");
  mf_ctx_free(ctx);
}

static mf_tensor *f_permute(mf_ctx *ctx, mf_tensor **in, void *user) {
  return mf_permute(ctx, in[0], (const int *)user);
}

TEST(test_permute_backward_matches_finite_differences) {
  int perms[3][4] = {{2, 0, 3, 1}, {0, 3, 1, 2}, {0, 1, 3, 2}};
  for (int k = 0; k < 3; k++) {
    mf_tensor *x = mf_tensor_new(MF_SHAPE(2, 3, 4, 5));
    fill_uniform(x, 10 + k, -1, 1);
    mf_tensor_set_requires_grad(x, 1);
    gradcheck("permute", f_permute, 1, &x, perms[k], NULL);
    mf_tensor_free(x);
  }
}

static mf_tensor *f_permute_negative_axes_twice(mf_ctx *ctx, mf_tensor **in, void *user) {
  const int perm[4] = {-1, 0, -3, 2}; /* = {3, 0, 1, 2} */
  mf_tensor *a = mf_permute(ctx, in[0], perm);
  mf_tensor *b = mf_permute(ctx, in[0], (const int[]){3, 0, 1, 2});
  return mf_mul(ctx, a, mf_add_scalar(ctx, b, 0.5f));
}

TEST(test_permute_accepts_negative_axes_and_accumulates_gradients) {
  mf_tensor *x = mf_tensor_new(MF_SHAPE(2, 3, 4, 5));
  fill_uniform(x, 13, -1, 1);
  mf_tensor_set_requires_grad(x, 1);
  gradcheck("permute twice", f_permute_negative_axes_twice, 1, &x, NULL, NULL);
  mf_tensor_free(x);
}

TEST(test_permute_backward_writes_then_accumulates_on_the_tiled_path) {
  /* y = permute(x) + permute(x): the first backward overwrites x's gradient, the second adds;
   * odd sizes leave ragged tile edges. x's gradient must be 2 * inverse-permute(g). */
  mf_ctx *ctx = mf_ctx_new();
  const int perm[4] = {0, 3, 1, 2}, inv[4] = {0, 2, 3, 1};
  mf_tensor *x = mf_tensor_new(MF_SHAPE(2, 5, 37, 45));
  mf_tensor_set_requires_grad(x, 1);
  mf_tensor *y = mf_add(ctx, mf_permute(ctx, x, perm), mf_permute(ctx, x, perm));
  mf_tensor *g = mf_ctx_tensor(ctx, mf_tensor_shape(y));
  fill_uniform(g, 15, -1, 1);
  EXPECT(mf_backward_with_grad(ctx, y, g->data) == MF_OK, "%s", mf_error());
  float *want = malloc((size_t)x->numel * sizeof(float));
  permute_ref(g, inv, want);
  int bad = 0;
  for (int64_t i = 0; i < x->numel; i++) bad += x->grad[i] != 2 * want[i];
  EXPECT(bad == 0, "%d gradient elements differ", bad);
  free(want);
  mf_tensor_free(x);
  mf_ctx_free(ctx);
}

static mf_tensor *f_transpose(mf_ctx *ctx, mf_tensor **in, void *user) {
  return mf_transpose(ctx, in[0], 1, -1);
}

TEST(test_transpose_backward_matches_finite_differences) {
  mf_tensor *x = mf_tensor_new(MF_SHAPE(3, 4, 5));
  fill_uniform(x, 14, -1, 1);
  mf_tensor_set_requires_grad(x, 1);
  gradcheck("transpose", f_transpose, 1, &x, NULL, NULL);
  mf_tensor_free(x);
}

static void child_permute_repeated_axis(void) {
  mf_ctx *ctx = mf_ctx_new();
  mf_permute(ctx, mf_ctx_tensor(ctx, MF_SHAPE(2, 3, 4)), (const int[]){0, 2, 0});
}

TEST(test_permute_with_a_repeated_axis_aborts) {
  EXPECT(mftest_aborts_with(child_permute_repeated_axis, "appears twice"), "perm (0 2 0) accepted");
}

/* ---- concat ------------------------------------------------------------------------------ */

/* Three inputs of shape base with dim `axis` set to 1, 2 and 3. */
static void concat_inputs(mf_tensor **xs, int axis, int heap) {
  for (int i = 0; i < 3; i++) {
    mf_shape s = MF_SHAPE(2, 3, 4);
    s.d[axis] = i + 1;
    xs[i] = mf_tensor_new(s);
    fill_uniform(xs[i], 20 + i + 3 * axis, -1, 1);
    if (heap) mf_tensor_set_requires_grad(xs[i], 1);
  }
}

TEST(test_concat_along_each_axis_places_inputs_side_by_side) {
  mf_ctx *ctx = mf_ctx_new();
  for (int axis = 0; axis < 3; axis++) {
    mf_tensor *xs[3];
    concat_inputs(xs, axis, 0);
    mf_tensor *y = mf_concat(ctx, xs, 3, axis - 3); /* negative axis */
    mf_shape want = MF_SHAPE(2, 3, 4);
    want.d[axis] = 6;
    EXPECT(same_shape(y, want), "axis %d: shape", axis);
    /* every output element against its source, by index */
    int ok = 1;
    for (int64_t i = 0; i < 2 && ok; i++)
      for (int64_t j = 0; j < want.d[1] && ok; j++)
        for (int64_t k = 0; k < want.d[2] && ok; k++) {
          int64_t idx[3] = {i, j, k};
          int src = 0;
          int64_t pos = idx[axis];
          while (pos >= src + 1) pos -= src + 1, src++; /* sizes 1, 2, 3 */
          idx[axis] = pos;
          const mf_tensor *x = xs[src];
          float v = x->data[(idx[0] * x->shape[1] + idx[1]) * x->shape[2] + idx[2]];
          ok = y->data[(i * want.d[1] + j) * want.d[2] + k] == v;
        }
    EXPECT(ok, "axis %d: values", axis);
    for (int i = 0; i < 3; i++) mf_tensor_free(xs[i]);
  }
  mf_ctx_free(ctx);
}

static mf_tensor *f_concat(mf_ctx *ctx, mf_tensor **in, void *user) {
  return mf_concat(ctx, in, 3, *(const int *)user);
}

TEST(test_concat_backward_matches_finite_differences_along_each_axis) {
  for (int axis = 0; axis < 3; axis++) {
    mf_tensor *xs[3];
    concat_inputs(xs, axis, 1);
    char label[32];
    snprintf(label, sizeof label, "concat axis %d", axis);
    gradcheck(label, f_concat, 3, xs, &axis, NULL);
    for (int i = 0; i < 3; i++) mf_tensor_free(xs[i]);
  }
}

static mf_tensor *f_concat_same_twice(mf_ctx *ctx, mf_tensor **in, void *user) {
  mf_tensor *xs[3] = {in[0], in[1], in[0]};
  return mf_concat(ctx, xs, 3, 1);
}

TEST(test_concat_of_one_tensor_twice_accumulates_its_gradient) {
  mf_tensor *a = mf_tensor_new(MF_SHAPE(3, 2)), *b = mf_tensor_new(MF_SHAPE(3, 5));
  fill_uniform(a, 30, -1, 1);
  fill_uniform(b, 31, -1, 1);
  mf_tensor_set_requires_grad(a, 1); /* b needs no gradient: it must be skipped */
  mf_tensor *in[2] = {a, b};
  gradcheck("concat (a, b, a)", f_concat_same_twice, 2, in, NULL, NULL);
  mf_tensor_free(a);
  mf_tensor_free(b);
}

TEST(test_concat_of_large_tensors_matches_a_copy) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *a = mf_ctx_tensor(ctx, MF_SHAPE(40000)), *b = mf_ctx_tensor(ctx, MF_SHAPE(50001));
  fill_uniform(a, 32, -1, 1);
  fill_uniform(b, 33, -1, 1);
  mf_tensor *y = mf_concat(ctx, (mf_tensor *[]){a, b}, 2, 0);
  EXPECT(memcmp(y->data, a->data, 40000 * sizeof(float)) == 0, "first part differs");
  EXPECT(memcmp(y->data + 40000, b->data, 50001 * sizeof(float)) == 0, "second part differs");
  mf_ctx_free(ctx);
}

static void child_concat_mismatch(void) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *xs[2] = {mf_ctx_tensor(ctx, MF_SHAPE(2, 3)), mf_ctx_tensor(ctx, MF_SHAPE(4, 4))};
  mf_concat(ctx, xs, 2, 1);
}

TEST(test_concat_of_mismatched_shapes_aborts_with_both_shapes) {
  EXPECT(mftest_aborts_with(child_concat_mismatch, "[2, 3] vs [4, 4]"), "mismatch accepted");
}

/* ---- slice ------------------------------------------------------------------------------- */

TEST(test_slice_with_negative_bounds_counts_from_the_end) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_ctx_tensor(ctx, MF_SHAPE(2, 5, 3));
  fill_iota(x);
  mf_tensor *y = mf_slice(ctx, x, 1, -4, -1); /* rows 1, 2, 3 */
  EXPECT(same_shape(y, MF_SHAPE(2, 3, 3)), "slice shape");
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++)
      for (int k = 0; k < 3; k++)
        EXPECT_NEAR(y->data[(i * 3 + j) * 3 + k], (i * 5 + j + 1) * 3 + k, 0);
  mf_tensor *last = mf_slice(ctx, x, -1, 2, 3);
  EXPECT(same_shape(last, MF_SHAPE(2, 5, 1)), "last column shape");
  EXPECT_NEAR(last->data[4], 14, 0);
  mf_tensor *empty = mf_slice(ctx, x, 0, 1, 1);
  EXPECT(same_shape(empty, MF_SHAPE(0, 5, 3)), "empty slice shape");
  mf_tensor *whole = mf_slice(ctx, x, 0, 0, 2);
  EXPECT(memcmp(whole->data, x->data, 30 * sizeof(float)) == 0, "whole slice differs");
  mf_ctx_free(ctx);
}

static void child_slice_past_the_end(void) {
  mf_ctx *ctx = mf_ctx_new();
  mf_slice(ctx, mf_ctx_tensor(ctx, MF_SHAPE(2, 5)), 1, 2, 6);
}

static void child_slice_before_the_start(void) {
  mf_ctx *ctx = mf_ctx_new();
  mf_slice(ctx, mf_ctx_tensor(ctx, MF_SHAPE(2, 5)), 1, -6, 2);
}

static void child_slice_reversed(void) {
  mf_ctx *ctx = mf_ctx_new();
  mf_slice(ctx, mf_ctx_tensor(ctx, MF_SHAPE(2, 5)), 1, 3, 1);
}

TEST(test_slice_out_of_range_aborts_instead_of_clamping) {
  EXPECT(mftest_aborts_with(child_slice_past_the_end, "[2, 6) along axis 1 is outside [0, 5]"),
         "end 6 of 5 accepted");
  EXPECT(mftest_aborts_with(child_slice_before_the_start, "[-6, 2)"), "start -6 of 5 accepted");
  EXPECT(mftest_aborts_with(child_slice_reversed, "[3, 1)"), "start after end accepted");
}

static mf_tensor *f_slice(mf_ctx *ctx, mf_tensor **in, void *user) {
  const int axis = *(const int *)user;
  return mf_slice(ctx, in[0], axis, -3, -1);
}

TEST(test_slice_backward_matches_finite_differences_on_each_axis) {
  for (int axis = 0; axis < 3; axis++) {
    mf_tensor *x = mf_tensor_new(MF_SHAPE(4, 5, 6));
    fill_uniform(x, 40 + axis, -1, 1);
    mf_tensor_set_requires_grad(x, 1);
    gradcheck("slice", f_slice, 1, &x, &axis, NULL);
    mf_tensor_free(x);
  }
}

static mf_tensor *f_overlapping_slices(mf_ctx *ctx, mf_tensor **in, void *user) {
  mf_tensor *a = mf_slice(ctx, in[0], 1, 0, 4), *b = mf_slice(ctx, in[0], 1, -4, 5);
  return mf_mul(ctx, a, b);
}

TEST(test_overlapping_slices_accumulate_gradients) {
  mf_tensor *x = mf_tensor_new(MF_SHAPE(3, 5, 2));
  fill_uniform(x, 50, -1, 1);
  mf_tensor_set_requires_grad(x, 1);
  gradcheck("overlapping slices", f_overlapping_slices, 1, &x, NULL, NULL);
  mf_tensor_free(x);
}

TEST(test_slice_backward_zeroes_the_rest_of_a_fresh_gradient) {
  /* The input's gradient buffer may hold garbage from the arena; only the slice is non-zero. */
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_tensor_new(MF_SHAPE(2, 4));
  mf_tensor_set_requires_grad(x, 1);
  for (int i = 0; i < 8; i++) x->grad[i] = NAN;
  mf_tensor *y = mf_slice(ctx, x, 1, 1, 3);
  EXPECT(mf_backward_with_grad(ctx, y, (float[]){1, 2, 3, 4}) == MF_OK, "%s", mf_error());
  float want[8] = {0, 1, 2, 0, 0, 3, 4, 0};
  for (int i = 0; i < 8; i++) EXPECT_NEAR(x->grad[i], want[i], 0);
  mf_tensor_free(x);
  mf_ctx_free(ctx);
}
