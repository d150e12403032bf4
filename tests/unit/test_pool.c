/* max / average / global average pooling: hand-computed cases with PyTorch's output-size and
 * divisor rules, gradient routing on ties, finite-difference checks, and the parallel path
 * against a naive reference. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "melforge/melforge.h"
#include "mftest.h"

static mf_tensor *plane(mf_ctx *ctx, int H, int W, const float *d) {
  return mf_ctx_tensor_from(ctx, MF_SHAPE(1, 1, H, W), d);
}

/* 1x1xHxW with x[i][j] = W*i + j + 1 */
static mf_tensor *ramp(mf_ctx *ctx, int H, int W) {
  mf_tensor *t = mf_ctx_tensor(ctx, MF_SHAPE(1, 1, H, W));
  for (int i = 0; i < H * W; i++) t->data[i] = (float)(i + 1);
  return t;
}

static void expect_values(const mf_tensor *t, int oh, int ow, const float *want, double tol) {
  EXPECT(t->ndim == 4 && t->shape[2] == oh && t->shape[3] == ow, "output %lldx%lld, want %dx%d",
         (long long)t->shape[2], (long long)t->shape[3], oh, ow);
  if (t->numel != oh * ow) return;
  for (int i = 0; i < oh * ow; i++)
    EXPECT(fabs(t->data[i] - want[i]) <= tol, "element %d: got %.9g, want %.9g", i, t->data[i],
           want[i]);
}

static mf_pool2d_opts pool(int kh, int kw, int sh, int sw, int ph, int pw, int ceil_mode) {
  return (mf_pool2d_opts){{kh, kw}, {sh, sw}, {ph, pw}, ceil_mode};
}

/* ---- max pool forward ---------------------------------------------------------------------- */

TEST(test_max_pool2d_2x2_matches_hand_computed) {
  mf_ctx *ctx = mf_ctx_new();
  const float x[16] = {1, 5, 2, 0, 3, 4, 8, 7, -1, -2, 6, 6, -3, -9, 6, 9};
  const mf_pool2d_opts o = pool(2, 2, 0, 0, 0, 0, 0);
  expect_values(mf_max_pool2d(ctx, plane(ctx, 4, 4, x), &o), 2, 2, (const float[]){5, 8, -1, 9}, 0);
  mf_ctx_free(ctx);
}

TEST(test_max_pool2d_3x3_stride_2_matches_hand_computed) {
  /* 5x5 ramp: each window's maximum is its bottom-right element. */
  mf_ctx *ctx = mf_ctx_new();
  const mf_pool2d_opts o = pool(3, 3, 2, 2, 0, 0, 0);
  expect_values(mf_max_pool2d(ctx, ramp(ctx, 5, 5), &o), 2, 2, (const float[]){13, 15, 23, 25}, 0);
  mf_ctx_free(ctx);
}

TEST(test_max_pool2d_kernel_2x1_pools_rows_only) {
  /* (2, 1) kernel, default stride (2, 1): pairs of rows, every column kept. */
  mf_ctx *ctx = mf_ctx_new();
  const float x[12] = {1, 9, 3, 4, 2, 6, 0, -1, -5, 7, 8, 2};
  const mf_pool2d_opts o = pool(2, 1, 0, 0, 0, 0, 0);
  expect_values(mf_max_pool2d(ctx, plane(ctx, 4, 3, x), &o), 2, 3,
                (const float[]){4, 9, 6, 7, 8, 2}, 0);
  mf_ctx_free(ctx);
}

TEST(test_max_pool2d_padding_is_minus_infinity) {
  /* All-negative input: a zero-padded maximum would be 0. */
  mf_ctx *ctx = mf_ctx_new();
  const float x[9] = {-1, -2, -3, -4, -5, -6, -7, -8, -9};
  const mf_pool2d_opts o = pool(2, 2, 2, 2, 1, 1, 0);
  /* windows start at -1 and 1: rows {-1, 0} and {1, 2} */
  expect_values(mf_max_pool2d(ctx, plane(ctx, 3, 3, x), &o), 2, 2, (const float[]){-1, -2, -4, -5},
                0);
  mf_ctx_free(ctx);
}

TEST(test_max_pool2d_ceil_mode_keeps_partial_windows) {
  /* 5x5, 2x2 stride 2: floor gives 2x2, ceil 3x3 with windows of 1 row / column at the end. */
  mf_ctx *ctx = mf_ctx_new();
  const mf_pool2d_opts fl = pool(2, 2, 0, 0, 0, 0, 0), ce = pool(2, 2, 0, 0, 0, 0, 1);
  expect_values(mf_max_pool2d(ctx, ramp(ctx, 5, 5), &fl), 2, 2, (const float[]){7, 9, 17, 19}, 0);
  expect_values(mf_max_pool2d(ctx, ramp(ctx, 5, 5), &ce), 3, 3,
                (const float[]){7, 9, 10, 17, 19, 20, 22, 24, 25}, 0);
  mf_ctx_free(ctx);
}

TEST(test_pool2d_ceil_mode_drops_window_starting_in_right_padding) {
  /* H = 5, k 2, s 2, padding 1: ceil((5 + 2 - 2) / 2) + 1 = 4, but the 4th window would start
   * at 6 - 1 = 5, past the input, so PyTorch keeps 3. Without padding ceil really adds one. */
  mf_ctx *ctx = mf_ctx_new();
  const mf_pool2d_opts padded = pool(2, 2, 2, 2, 1, 1, 1), plain = pool(2, 2, 2, 2, 0, 0, 1);
  mf_tensor *a = mf_max_pool2d(ctx, ramp(ctx, 5, 5), &padded);
  mf_tensor *b = mf_avg_pool2d(ctx, ramp(ctx, 5, 5), &padded);
  mf_tensor *c = mf_max_pool2d(ctx, ramp(ctx, 5, 5), &plain);
  EXPECT(a->shape[2] == 3 && a->shape[3] == 3, "max: %lldx%lld", (long long)a->shape[2],
         (long long)a->shape[3]);
  EXPECT(b->shape[2] == 3 && b->shape[3] == 3, "avg: %lldx%lld", (long long)b->shape[2],
         (long long)b->shape[3]);
  EXPECT(c->shape[2] == 3 && c->shape[3] == 3, "unpadded: %lldx%lld", (long long)c->shape[2],
         (long long)c->shape[3]);
  /* padded max: windows rows {-1,0}, {1,2}, {3,4} */
  EXPECT_NEAR(a->data[0], 1, 0);
  EXPECT_NEAR(a->data[4], 13, 0);
  EXPECT_NEAR(a->data[8], 25, 0);
  mf_ctx_free(ctx);
}

TEST(test_max_pool2d_propagates_nan) {
  mf_ctx *ctx = mf_ctx_new();
  const float x[16] = {1, NAN, 2, 0, 3, 4, 8, 7, -1, -2, 6, 6, -3, -9, 6, NAN};
  const mf_pool2d_opts fast = pool(2, 2, 0, 0, 0, 0, 0), general = pool(2, 2, 2, 2, 1, 1, 0);
  mf_tensor *a = mf_max_pool2d(ctx, plane(ctx, 4, 4, x), &fast);
  EXPECT(isnan(a->data[0]) && a->data[1] == 8 && a->data[2] == -1 && isnan(a->data[3]),
         "got %g %g %g %g", a->data[0], a->data[1], a->data[2], a->data[3]);
  mf_tensor *b = mf_max_pool2d(ctx, plane(ctx, 4, 4, x), &general);
  /* windows rows/cols {-1,0}, {1,2}, {3,4}: (0,1) covers x[0][1..2] */
  EXPECT(isnan(b->data[1]) && isnan(b->data[8]) && b->data[0] == 1, "got %g %g %g", b->data[0],
         b->data[1], b->data[8]);
  mf_ctx_free(ctx);
}

/* ---- max pool backward ------------------------------------------------------------------------
 */

/* Gradient of sum(w_out * pool(x)) with respect to x. */
static void pool_grad(mf_tensor *(*op)(mf_ctx *, mf_tensor *, const mf_pool2d_opts *), int H, int W,
                      const float *x, const mf_pool2d_opts *o, const float *gout, float *gx) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *t = mf_tensor_from_data(MF_SHAPE(1, 1, H, W), x);
  mf_tensor_set_requires_grad(t, 1);
  mf_tensor *y = op(ctx, t, o);
  EXPECT(mf_backward_with_grad(ctx, y, gout) == MF_OK, "%s", mf_error());
  mf_tensor_read_grad(t, gx);
  mf_tensor_free(t);
  mf_ctx_free(ctx);
}

TEST(test_max_pool2d_backward_routes_ties_to_first_maximum) {
  /* Each 2x2 window holds four equal values: PyTorch takes the first in row-major order. */
  const float x[16] = {5, 5, 2, 2, 5, 5, 2, 2, 7, 7, 1, 3, 7, 7, 3, 3};
  const mf_pool2d_opts o = pool(2, 2, 0, 0, 0, 0, 0);
  float gx[16];
  pool_grad(mf_max_pool2d, 4, 4, x, &o, (const float[]){1, 2, 3, 4}, gx);
  const float want[16] = {1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 0, 4, 0, 0, 0, 0};
  for (int i = 0; i < 16; i++) EXPECT(gx[i] == want[i], "gx[%d] = %g, want %g", i, gx[i], want[i]);
}

TEST(test_max_pool2d_backward_adds_over_overlapping_windows) {
  /* 3x3 stride 1 on a 4x4 plane with one large element: all four windows contain it, and
   * all four route their gradient there. */
  const float x[16] = {0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  const mf_pool2d_opts o = pool(3, 3, 1, 1, 0, 0, 0);
  float gx[16];
  pool_grad(mf_max_pool2d, 4, 4, x, &o, (const float[]){1, 2, 3, 4}, gx);
  EXPECT_NEAR(gx[5], 1 + 2 + 3 + 4, 0);
  float rest = 0;
  for (int i = 0; i < 16; i++)
    if (i != 5) rest += fabsf(gx[i]);
  EXPECT_NEAR(rest, 0, 0);
}

TEST(test_max_pool2d_backward_general_path_routes_ties_to_first_maximum) {
  /* 3x3 stride 2 with padding 1 on a constant plane: each window's first in-input element. */
  float x[25];
  for (int i = 0; i < 25; i++) x[i] = 2;
  const mf_pool2d_opts o = pool(3, 3, 2, 2, 1, 1, 0);
  float gx[25];
  pool_grad(mf_max_pool2d, 5, 5, x, &o, (const float[]){1, 2, 3, 4, 5, 6, 7, 8, 9}, gx);
  /* windows start at rows/cols -1, 1, 3: first in-input element at 0, 1, 3 */
  float want[25] = {0};
  const int pos[3] = {0, 1, 3};
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 3; c++) want[pos[r] * 5 + pos[c]] = (float)(r * 3 + c + 1);
  for (int i = 0; i < 25; i++) EXPECT(gx[i] == want[i], "gx[%d] = %g, want %g", i, gx[i], want[i]);
}

/* ---- average pool ------------------------------------------------------------------------------
 */

TEST(test_avg_pool2d_matches_hand_computed) {
  mf_ctx *ctx = mf_ctx_new();
  const mf_pool2d_opts o = pool(2, 2, 0, 0, 0, 0, 0);
  /* 4x4 ramp: mean of {1,2,5,6} = 3.5, ... */
  expect_values(mf_avg_pool2d(ctx, ramp(ctx, 4, 4), &o), 2, 2,
                (const float[]){3.5f, 5.5f, 11.5f, 13.5f}, 1e-6);
  const mf_pool2d_opts rows = pool(2, 1, 0, 0, 0, 0, 0);
  expect_values(mf_avg_pool2d(ctx, ramp(ctx, 4, 3), &rows), 2, 3,
                (const float[]){2.5f, 3.5f, 4.5f, 8.5f, 9.5f, 10.5f}, 1e-6);
  mf_ctx_free(ctx);
}

TEST(test_avg_pool2d_padding_counts_in_divisor) {
  /* count_include_pad=True: a 3x3 window at the corner of a ones plane, padding 1, holds 4
   * ones and 5 zeros of padding: 4/9. */
  mf_ctx *ctx = mf_ctx_new();
  float ones[16];
  for (int i = 0; i < 16; i++) ones[i] = 1;
  const mf_pool2d_opts o = pool(3, 3, 1, 1, 1, 1, 0);
  mf_tensor *y = mf_avg_pool2d(ctx, plane(ctx, 4, 4, ones), &o);
  EXPECT_NEAR(y->data[0], 4.0 / 9, 1e-6); /* corner */
  EXPECT_NEAR(y->data[1], 6.0 / 9, 1e-6); /* edge */
  EXPECT_NEAR(y->data[5], 1.0, 1e-6);     /* interior */
  mf_ctx_free(ctx);
}

TEST(test_avg_pool2d_ceil_mode_divides_by_window_clipped_to_padded_input) {
  /* PyTorch: the part of a ceil_mode window past the padded input is not counted, the
   * padding is. A ones plane therefore stays ones without padding ... */
  mf_ctx *ctx = mf_ctx_new();
  float ones[25];
  for (int i = 0; i < 25; i++) ones[i] = 1;
  const mf_pool2d_opts o = pool(2, 2, 0, 0, 0, 0, 1);
  mf_tensor *y = mf_avg_pool2d(ctx, plane(ctx, 5, 5, ones), &o);
  float all_ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  expect_values(y, 3, 3, all_ones, 1e-6);
  /* ... and on the 5x5 ramp the last column averages {5, 10}, the corner is 25 alone. */
  mf_tensor *r = mf_avg_pool2d(ctx, ramp(ctx, 5, 5), &o);
  EXPECT_NEAR(r->data[2], 7.5, 1e-6);
  EXPECT_NEAR(r->data[8], 25, 1e-6);
  EXPECT_NEAR(r->data[6], (21 + 22) / 2.0, 1e-6);
  /* With padding 1, k 3, s 2 on a 4x4 ones plane: 3 outputs per axis. The last window
   * covers rows 3 (input) and 4 (padding) only: divisor 2 per axis, one input element. */
  const mf_pool2d_opts p = pool(3, 3, 2, 2, 1, 1, 1);
  mf_tensor *z = mf_avg_pool2d(ctx, plane(ctx, 4, 4, ones), &p);
  EXPECT(z->shape[2] == 3 && z->shape[3] == 3, "%lldx%lld", (long long)z->shape[2],
         (long long)z->shape[3]);
  EXPECT_NEAR(z->data[0], 4.0 / 9, 1e-6);
  EXPECT_NEAR(z->data[1], 6.0 / 9, 1e-6);
  EXPECT_NEAR(z->data[2], 2.0 / 6, 1e-6); /* rows -1..1 (3), cols 3..4 (2): 2 ones / 6 */
  EXPECT_NEAR(z->data[8], 1.0 / 4, 1e-6);
  mf_ctx_free(ctx);
}

TEST(test_avg_pool2d_backward_spreads_gradient_with_divisor) {
  /* 2x2 ceil_mode on 3x3: windows of 4, 2, 2 and 1 elements. */
  const float x[9] = {0};
  const mf_pool2d_opts o = pool(2, 2, 0, 0, 0, 0, 1);
  float gx[9];
  pool_grad(mf_avg_pool2d, 3, 3, x, &o, (const float[]){4, 2, 6, 5}, gx);
  const float want[9] = {1, 1, 1, 1, 1, 1, 3, 3, 5};
  for (int i = 0; i < 9; i++) EXPECT_NEAR(gx[i], want[i], 1e-6);
}

/* ---- global average pool ----------------------------------------------------------------------
 */

TEST(test_global_avg_pool2d_averages_each_plane) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_ctx_tensor(ctx, MF_SHAPE(2, 3, 2, 5));
  for (int i = 0; i < 60; i++) x->data[i] = (float)i;
  mf_tensor *y = mf_global_avg_pool2d(ctx, x);
  EXPECT_EQ_INT(y->ndim, 2);
  EXPECT_EQ_INT(y->shape[0], 2);
  EXPECT_EQ_INT(y->shape[1], 3);
  for (int p = 0; p < 6; p++) EXPECT_NEAR(y->data[p], 10 * p + 4.5, 1e-6);
  mf_ctx_free(ctx);
}

/* ---- finite differences --------------------------------------------------------------------- */

typedef struct pool_case {
  int n, c, h, w;
  mf_pool2d_opts o;
  int is_max;
} pool_case;

static mf_tensor *f_pool(mf_ctx *ctx, mf_tensor **in, void *user) {
  const pool_case *pc = user;
  return pc->is_max ? mf_max_pool2d(ctx, in[0], &pc->o) : mf_avg_pool2d(ctx, in[0], &pc->o);
}

static const pool_case POOL_CASES[] = {
    {2, 3, 4, 6, {{2, 2}, {0, 0}, {0, 0}, 0}, 1}, /* 2x2 fast path */
    {2, 3, 5, 7, {{2, 2}, {0, 0}, {0, 0}, 1}, 1}, /* ceil mode */
    {2, 3, 5, 6, {{3, 3}, {2, 1}, {1, 1}, 0}, 1}, /* padded, overlapping */
    {2, 3, 6, 5, {{2, 1}, {0, 0}, {0, 0}, 0}, 1}, /* (2, 1) */
    {2, 3, 5, 7, {{3, 2}, {2, 2}, {1, 1}, 1}, 1}, /* everything */
    {2, 3, 4, 6, {{2, 2}, {0, 0}, {0, 0}, 0}, 0}, {2, 3, 5, 7, {{2, 2}, {0, 0}, {0, 0}, 1}, 0},
    {2, 3, 5, 6, {{3, 3}, {2, 1}, {1, 1}, 0}, 0}, {2, 3, 6, 5, {{2, 1}, {0, 0}, {0, 0}, 0}, 0},
    {2, 3, 5, 7, {{3, 2}, {2, 2}, {1, 1}, 1}, 0},
};

/* Distinct values 0.05 apart, shuffled: no two window entries are within the finite
 * difference step (1e-3), so the argmax of every window is stable under the perturbation. */
static void fill_distinct(mf_tensor *t, uint64_t seed) {
  mf_rng r = mf_rng_stream(seed, MF_RNG_USER + 3);
  for (int64_t i = 0; i < t->numel; i++) t->data[i] = 0.05f * (float)i - 2.0f;
  for (int64_t i = t->numel - 1; i > 0; i--) {
    int64_t j = mf_rng_below(&r, (uint32_t)(i + 1));
    float tmp = t->data[i];
    t->data[i] = t->data[j], t->data[j] = tmp;
  }
}

TEST(test_pool2d_backward_matches_finite_differences) {
  for (size_t k = 0; k < sizeof POOL_CASES / sizeof POOL_CASES[0]; k++) {
    const pool_case *pc = &POOL_CASES[k];
    mf_tensor *x = mf_tensor_new(MF_SHAPE(pc->n, pc->c, pc->h, pc->w));
    fill_distinct(x, 40 + k);
    mf_tensor_set_requires_grad(x, 1);
    char label[64];
    snprintf(label, sizeof label, "%s pool case %zu", pc->is_max ? "max" : "avg", k);
    gradcheck(label, f_pool, 1, &x, (void *)pc, NULL);
    mf_tensor_free(x);
  }
}

static mf_tensor *f_gap(mf_ctx *ctx, mf_tensor **in, void *user) {
  return mf_global_avg_pool2d(ctx, in[0]);
}

TEST(test_global_avg_pool2d_backward_matches_finite_differences) {
  mf_tensor *x = mf_tensor_new(MF_SHAPE(2, 3, 4, 5));
  fill_uniform(x, 5, -1, 1);
  mf_tensor_set_requires_grad(x, 1);
  gradcheck("global avg pool", f_gap, 1, &x, NULL, NULL);
  mf_tensor_free(x);
}

/* x feeds two pools. The tape runs backward in reverse, so the pool made last writes x's
 * gradient and the one made first adds into it: order 0 makes max then avg, 1 avg then max,
 * 2 two global pools. */
static mf_tensor *f_two_pools(mf_ctx *ctx, mf_tensor **in, void *user) {
  const int order = *(const int *)user;
  const mf_pool2d_opts o = pool(3, 3, 2, 2, 1, 1, 1);
  if (order == 2) {
    mf_tensor *g = mf_global_avg_pool2d(ctx, in[0]);
    return mf_add(ctx, g, mf_scale(ctx, mf_global_avg_pool2d(ctx, in[0]), 2));
  }
  if (order == 0) {
    mf_tensor *m = mf_max_pool2d(ctx, in[0], &o);
    return mf_add(ctx, m, mf_avg_pool2d(ctx, in[0], &o));
  }
  mf_tensor *a = mf_avg_pool2d(ctx, in[0], &o);
  return mf_add(ctx, a, mf_max_pool2d(ctx, in[0], &o));
}

TEST(test_pool2d_backward_accumulates_into_shared_input) {
  for (int order = 0; order < 3; order++) {
    mf_tensor *x = mf_tensor_new(MF_SHAPE(2, 3, 5, 6));
    fill_distinct(x, 77 + order);
    mf_tensor_set_requires_grad(x, 1);
    char label[64];
    snprintf(label, sizeof label, "shared input, order %d", order);
    gradcheck(label, f_two_pools, 1, &x, &order, NULL);
    mf_tensor_free(x);
  }
}

/* ---- the parallel path against a naive reference ------------------------------------------ */

static int64_t out_size(int64_t L, int k, int s, int p, int ceil_mode) {
  double v = (double)(L + 2 * p - k) / s;
  int64_t o = (int64_t)(ceil_mode ? ceil(v) : floor(v)) + 1;
  if (ceil_mode && (o - 1) * s >= L + p) o--;
  return o;
}

/* Naive pooling of one plane following PyTorch's CPU kernel line by line. */
static void reference_pool(const float *x, int H, int W, const mf_pool2d_opts *o, int is_max,
                           float *y) {
  int kh = o->kernel[0], kw = o->kernel[1];
  int sh = o->stride[0] ? o->stride[0] : kh, sw = o->stride[1] ? o->stride[1] : kw;
  int ph = o->padding[0], pw = o->padding[1];
  int64_t OH = out_size(H, kh, sh, ph, o->ceil_mode), OW = out_size(W, kw, sw, pw, o->ceil_mode);
  for (int r = 0; r < OH; r++)
    for (int c = 0; c < OW; c++) {
      int hs = r * sh - ph, ws = c * sw - pw;
      int he = hs + kh < H + ph ? hs + kh : H + ph, we = ws + kw < W + pw ? ws + kw : W + pw;
      int size = (he - hs) * (we - ws);
      if (hs < 0) hs = 0;
      if (ws < 0) ws = 0;
      if (he > H) he = H;
      if (we > W) we = W;
      double s = 0;
      float m = -INFINITY;
      for (int i = hs; i < he; i++)
        for (int j = ws; j < we; j++) {
          s += x[i * W + j];
          if (x[i * W + j] > m) m = x[i * W + j];
        }
      y[r * OW + c] = is_max ? m : (float)(s / size);
    }
}

TEST(test_pool2d_large_input_matches_reference) {
  /* 4 x 8 planes of 33 x 34: above the parallel threshold, odd sizes. */
  const mf_pool2d_opts opts[] = {pool(2, 2, 0, 0, 0, 0, 0), pool(2, 2, 0, 0, 0, 0, 1),
                                 pool(3, 3, 2, 2, 1, 1, 1), pool(2, 1, 0, 0, 0, 0, 0)};
  mf_set_num_threads(2);
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_ctx_tensor(ctx, MF_SHAPE(4, 8, 33, 34));
  fill_uniform(x, 9, -1, 1);
  for (int k = 0; k < 4; k++)
    for (int is_max = 0; is_max <= 1; is_max++) {
      mf_tensor *y = is_max ? mf_max_pool2d(ctx, x, &opts[k]) : mf_avg_pool2d(ctx, x, &opts[k]);
      const int64_t OP = y->shape[2] * y->shape[3];
      float *want = malloc((size_t)OP * sizeof(float));
      double worst = 0;
      for (int p = 0; p < 32; p++) {
        reference_pool(x->data + p * 33 * 34, 33, 34, &opts[k], is_max, want);
        for (int64_t i = 0; i < OP; i++) worst = fmax(worst, fabs(y->data[p * OP + i] - want[i]));
      }
      EXPECT(worst < 1e-6, "case %d %s: max deviation %g", k, is_max ? "max" : "avg", worst);
      free(want);
    }
  mf_tensor *g = mf_global_avg_pool2d(ctx, x);
  for (int p = 0; p < 32; p++) {
    double s = 0;
    for (int i = 0; i < 33 * 34; i++) s += x->data[p * 33 * 34 + i];
    EXPECT_NEAR(g->data[p], s / (33 * 34), 1e-6);
  }
  mf_ctx_free(ctx);
}

/* ---- max pool and ReLU commute ----------------------------------------------------------------
 * The conv model plugins compute ReLU -> max-pool as max-pool -> ReLU (a quarter of the ReLU
 * work). Both are monotone, so outputs must be the same bits, and the gradients too: a window
 * whose maximum is <= 0 passes nothing either way, otherwise the same first maximum wins. */
static void relu_pool_run(int pool_first, const float *x, const mf_pool2d_opts *o,
                          const float *gout, float *y, float *gx) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *t = mf_tensor_from_data(MF_SHAPE(2, 3, 9, 13), x);
  mf_tensor_set_requires_grad(t, 1);
  mf_tensor *out =
      pool_first ? mf_relu_(ctx, mf_max_pool2d(ctx, t, o)) : mf_max_pool2d(ctx, mf_relu(ctx, t), o);
  memcpy(y, out->data, sizeof(float) * (size_t)out->numel);
  EXPECT(mf_backward_with_grad(ctx, out, gout) == MF_OK, "%s", mf_error());
  mf_tensor_read_grad(t, gx);
  mf_tensor_free(t);
  mf_ctx_free(ctx);
}

TEST(test_max_pool2d_then_relu_equals_relu_then_max_pool2d_bitwise) {
  enum { N = 2 * 3 * 9 * 13, OUT = 2 * 3 * 4 * 6 };
  float *x = malloc(sizeof(float) * N), g[OUT], y0[OUT], y1[OUT];
  float *g0 = malloc(sizeof(float) * N), *g1 = malloc(sizeof(float) * N);
  mf_rng r = mf_rng_stream(3, MF_RNG_USER);
  /* Values on a coarse grid around 0: ties, zeros and all-negative windows are common. */
  for (int i = 0; i < N; i++) x[i] = (float)((int)(mf_rng_uniform(&r) * 7) - 4) * 0.5f;
  for (int i = 0; i < OUT; i++) g[i] = mf_rng_uniform(&r) - 0.5f;
  const mf_pool2d_opts o = pool(2, 2, 0, 0, 0, 0, 0);
  relu_pool_run(0, x, &o, g, y0, g0);
  relu_pool_run(1, x, &o, g, y1, g1);
  EXPECT(memcmp(y0, y1, sizeof y0) == 0, "outputs differ");
  EXPECT(memcmp(g0, g1, sizeof(float) * N) == 0, "input gradients differ");
  int nonzero = 0;
  for (int i = 0; i < N; i++) nonzero += g0[i] != 0;
  EXPECT(nonzero > 10 && nonzero < OUT, "%d inputs got a gradient (want some, not all windows)",
         nonzero);
  free(x), free(g0), free(g1);
}
