/* conv2d: forward against hand-computed cases and a naive reference, backward against finite
 * differences, and the threading / determinism promises of ops_conv.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gradcheck.h"
#include "melforge/melforge.h"
#include "mftest.h"

static const mf_conv2d_opts SAME = {{1, 1}, {0, 0}, {1, 1}, 1};

static mf_tensor *ctx_from(mf_ctx *ctx, mf_shape s, const float *d) {
  return mf_ctx_tensor_from(ctx, s, d);
}

/* x[i][j] = W*i + j + 1 on a 1x1xHxW plane. */
static mf_tensor *ramp(mf_ctx *ctx, int H, int W) {
  mf_tensor *t = mf_ctx_tensor(ctx, MF_SHAPE(1, 1, H, W));
  for (int i = 0; i < H * W; i++) t->data[i] = (float)(i + 1);
  return t;
}

static void expect_values(const mf_tensor *t, const float *want, int n, double tol) {
  EXPECT_EQ_INT(t->numel, n);
  for (int i = 0; i < n && i < t->numel; i++)
    EXPECT(fabs(t->data[i] - want[i]) <= tol, "element %d: got %.9g, want %.9g", i, t->data[i],
           want[i]);
}

/* An asymmetric 3x3 kernel, so a flipped or transposed kernel gives other numbers. */
static const float K3[9] = {1, 2, 0, 0, 1, 0, 0, 0, 3};

TEST(test_conv2d_forward_matches_hand_computed_3x3) {
  /* out(r, c) = x[r][c] + 2 x[r][c+1] + x[r+1][c+1] + 3 x[r+2][c+2] (cross-correlation) */
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *y =
      mf_conv2d(ctx, ramp(ctx, 4, 4), ctx_from(ctx, MF_SHAPE(1, 1, 3, 3), K3), NULL, NULL);
  EXPECT_EQ_INT(y->ndim, 4);
  EXPECT_EQ_INT(y->shape[2], 2);
  EXPECT_EQ_INT(y->shape[3], 2);
  expect_values(y, (const float[]){44, 51, 72, 79}, 4, 0);
  mf_ctx_free(ctx);
}

TEST(test_conv2d_forward_adds_bias_per_output_channel) {
  mf_ctx *ctx = mf_ctx_new();
  float w[18];
  memcpy(w, K3, sizeof K3);
  for (int i = 0; i < 9; i++) w[9 + i] = -K3[i];
  mf_tensor *y = mf_conv2d(ctx, ramp(ctx, 4, 4), ctx_from(ctx, MF_SHAPE(2, 1, 3, 3), w),
                           ctx_from(ctx, MF_SHAPE(2), (const float[]){0.5f, 10}), NULL);
  expect_values(y, (const float[]){44.5f, 51.5f, 72.5f, 79.5f, -34, -41, -62, -69}, 8, 0);
  mf_ctx_free(ctx);
}

TEST(test_conv2d_forward_stride_2_padding_1_matches_hand_computed) {
  /* Windows start at (2 oh - 1, 2 ow - 1); taps in the padding read 0. */
  mf_ctx *ctx = mf_ctx_new();
  const mf_conv2d_opts o = {{2, 2}, {1, 1}, {1, 1}, 0};
  mf_tensor *y = mf_conv2d(ctx, ramp(ctx, 4, 4), ctx_from(ctx, MF_SHAPE(1, 1, 3, 3), K3), NULL, &o);
  expect_values(y, (const float[]){19, 27, 61, 79}, 4, 0);
  mf_ctx_free(ctx);
}

TEST(test_conv2d_forward_dilation_2_matches_hand_computed) {
  /* 5x5 ramp, 2x2 kernel [[1, 2], [3, 4]] dilated to span 3x3: 3x3 output,
   * out(r, c) = x[r][c] + 2 x[r][c+2] + 3 x[r+2][c] + 4 x[r+2][c+2] = 10 (5r + c + 1) + 82. */
  mf_ctx *ctx = mf_ctx_new();
  const mf_conv2d_opts o = {{1, 1}, {0, 0}, {2, 2}, 0};
  mf_tensor *y =
      mf_conv2d(ctx, ramp(ctx, 5, 5),
                ctx_from(ctx, MF_SHAPE(1, 1, 2, 2), (const float[]){1, 2, 3, 4}), NULL, &o);
  float want[9];
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 3; c++) want[r * 3 + c] = 10.0f * (5 * r + c + 1) + 82;
  expect_values(y, want, 9, 0);
  mf_ctx_free(ctx);
}

TEST(test_conv2d_same_even_kernel_pads_bottom_right) {
  /* 2x2 kernel: total padding 1, all of it after the input (PyTorch padding='same'). */
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *y =
      mf_conv2d(ctx, ramp(ctx, 3, 3),
                ctx_from(ctx, MF_SHAPE(1, 1, 2, 2), (const float[]){1, 2, 3, 4}), NULL, &SAME);
  expect_values(y, (const float[]){37, 47, 21, 67, 77, 33, 23, 26, 9}, 9, 0);
  mf_ctx_free(ctx);
}

TEST(test_conv2d_same_4x4_kernel_pads_one_before_two_after) {
  /* All-ones 4x4 kernel on the 4x4 ramp: out(r, c) sums rows r-1..r+2, cols c-1..c+2. */
  mf_ctx *ctx = mf_ctx_new();
  float ones[16];
  for (int i = 0; i < 16; i++) ones[i] = 1;
  mf_tensor *y =
      mf_conv2d(ctx, ramp(ctx, 4, 4), ctx_from(ctx, MF_SHAPE(1, 1, 4, 4), ones), NULL, &SAME);
  EXPECT_EQ_INT(y->shape[2], 4);
  EXPECT_EQ_INT(y->shape[3], 4);
  EXPECT_NEAR(y->data[0], 54, 0);  /* rows 0-2, cols 0-2 */
  EXPECT_NEAR(y->data[3], 45, 0);  /* rows 0-2, cols 2-3 */
  EXPECT_NEAR(y->data[12], 72, 0); /* rows 2-3, cols 0-2 */
  EXPECT_NEAR(y->data[15], 54, 0); /* rows 2-3, cols 2-3 */
  EXPECT_NEAR(y->data[5], 136, 0); /* rows 0-3, cols 0-3: everything */
  mf_ctx_free(ctx);
}

TEST(test_conv2d_same_with_dilation_keeps_size) {
  /* 3x3 dilated by 2 spans 5: padding 2 on each side. Centre tap only -> identity. */
  mf_ctx *ctx = mf_ctx_new();
  const mf_conv2d_opts o = {{1, 1}, {0, 0}, {2, 2}, 1};
  float k[9] = {0, 0, 0, 0, 1, 0, 0, 0, 0};
  mf_tensor *x = ramp(ctx, 5, 6);
  mf_tensor *y = mf_conv2d(ctx, x, ctx_from(ctx, MF_SHAPE(1, 1, 3, 3), k), NULL, &o);
  expect_values(y, x->data, 30, 0);
  mf_ctx_free(ctx);
}

/* ---- a naive reference, for configurations too many to work out by hand ------------------ */

typedef struct conv_case {
  int n, c, h, w, o, kh, kw;
  mf_conv2d_opts opts;
  int bias;
} conv_case;

/* Direct loops in double, padding worked out independently of ops_conv.c. */
static void reference_conv(const conv_case *cc, const float *x, const float *w, const float *b,
                           float *y, int *oh_out, int *ow_out) {
  int sh = cc->opts.stride[0] ? cc->opts.stride[0] : 1,
      sw = cc->opts.stride[1] ? cc->opts.stride[1] : 1;
  int dh = cc->opts.dilation[0] ? cc->opts.dilation[0] : 1;
  int dw = cc->opts.dilation[1] ? cc->opts.dilation[1] : 1;
  int pt, pb, pl, pr;
  if (cc->opts.same) {
    int th = dh * (cc->kh - 1), tw = dw * (cc->kw - 1);
    pt = th / 2, pb = th - pt, pl = tw / 2, pr = tw - pl;
  } else {
    pt = pb = cc->opts.padding[0], pl = pr = cc->opts.padding[1];
  }
  int OH = (cc->h + pt + pb - dh * (cc->kh - 1) - 1) / sh + 1;
  int OW = (cc->w + pl + pr - dw * (cc->kw - 1) - 1) / sw + 1;
  *oh_out = OH, *ow_out = OW;
  for (int n = 0; n < cc->n; n++)
    for (int o = 0; o < cc->o; o++)
      for (int r = 0; r < OH; r++)
        for (int q = 0; q < OW; q++) {
          double s = b ? b[o] : 0;
          for (int c = 0; c < cc->c; c++)
            for (int i = 0; i < cc->kh; i++)
              for (int j = 0; j < cc->kw; j++) {
                int ih = r * sh - pt + i * dh, iw = q * sw - pl + j * dw;
                if (ih < 0 || ih >= cc->h || iw < 0 || iw >= cc->w) continue;
                s += (double)x[((n * cc->c + c) * cc->h + ih) * cc->w + iw] *
                     w[((o * cc->c + c) * cc->kh + i) * cc->kw + j];
              }
          y[((n * cc->o + o) * OH + r) * OW + q] = (float)s;
        }
}

static const conv_case CASES[] = {
    {2, 3, 7, 8, 4, 3, 3, {{1, 1}, {0, 0}, {1, 1}, 0}, 1}, /* valid */
    {2, 3, 7, 8, 4, 3, 3, {{2, 2}, {1, 1}, {1, 1}, 0}, 1}, /* stride 2, padding 1 */
    {2, 3, 9, 8, 4, 3, 3, {{1, 2}, {2, 1}, {2, 1}, 0}, 0}, /* mixed stride / pad / dilation */
    {2, 3, 7, 8, 4, 3, 3, {{1, 1}, {0, 0}, {1, 1}, 1}, 0}, /* 'same' */
    {2, 3, 6, 7, 4, 2, 2, {{1, 1}, {0, 0}, {1, 1}, 1}, 1}, /* 'same', even kernel */
    {2, 3, 6, 7, 4, 4, 2, {{1, 1}, {0, 0}, {1, 2}, 1}, 0}, /* 'same', 4x2 dilated */
    {2, 3, 6, 7, 4, 1, 1, {{1, 1}, {0, 0}, {1, 1}, 0}, 1}, /* 1x1: the direct path */
    {2, 3, 6, 7, 4, 1, 1, {{2, 2}, {0, 0}, {1, 1}, 0}, 0}, /* 1x1 strided: im2col */
    {2, 3, 6, 7, 4, 1, 1, {{1, 1}, {1, 1}, {1, 1}, 0}, 0}, /* 1x1 padded: im2col */
    {2, 3, 8, 5, 4, 2, 1, {{2, 1}, {0, 0}, {1, 1}, 0}, 1}, /* (2, 1) kernel */
    {2, 1, 6, 6, 4, 3, 3, {{1, 1}, {0, 0}, {1, 1}, 1}, 0}, /* one input channel */
    {2, 3, 5, 5, 4, 5, 5, {{3, 3}, {2, 2}, {1, 1}, 0}, 1}, /* kernel as big as the input */
};
#define N_CASES ((int)(sizeof CASES / sizeof CASES[0]))

static void make_case(const conv_case *cc, mf_tensor **x, mf_tensor **w, mf_tensor **b,
                      uint64_t seed) {
  *x = mf_tensor_new(MF_SHAPE(cc->n, cc->c, cc->h, cc->w));
  *w = mf_tensor_new(MF_SHAPE(cc->o, cc->c, cc->kh, cc->kw));
  *b = cc->bias ? mf_tensor_new(MF_SHAPE(cc->o)) : NULL;
  fill_uniform(*x, seed, -1, 1);
  fill_uniform(*w, seed + 1, -1, 1);
  if (*b) fill_uniform(*b, seed + 2, -1, 1);
}

static void free_case(mf_tensor *x, mf_tensor *w, mf_tensor *b) {
  mf_tensor_free(x);
  mf_tensor_free(w);
  mf_tensor_free(b);
}

TEST(test_conv2d_forward_matches_naive_reference) {
  for (int k = 0; k < N_CASES; k++) {
    const conv_case *cc = &CASES[k];
    mf_tensor *x, *w, *b;
    make_case(cc, &x, &w, &b, 10 + k);
    mf_ctx *ctx = mf_ctx_new();
    mf_tensor *y = mf_conv2d(ctx, x, w, b, &cc->opts);
    int OH, OW;
    float *want = malloc((size_t)y->numel * sizeof(float) + 64);
    reference_conv(cc, x->data, w->data, b ? b->data : NULL, want, &OH, &OW);
    EXPECT(y->shape[2] == OH && y->shape[3] == OW, "case %d: output %lldx%lld, want %dx%d", k,
           (long long)y->shape[2], (long long)y->shape[3], OH, OW);
    /* float sums of at most 3*5*5 products of values in [-1, 1] */
    double worst = 0;
    for (int64_t i = 0; i < y->numel; i++) worst = fmax(worst, fabs(y->data[i] - want[i]));
    EXPECT(worst < 1e-5, "case %d: max deviation from the reference %g", k, worst);
    free(want);
    mf_ctx_free(ctx);
    free_case(x, w, b);
  }
}

/* ---- gradients ---------------------------------------------------------------------------- */

/* conv2d is linear in each of x, w and b, so a central difference has no truncation error
 * whatever the step: eps 1e-2 instead of 1e-3 divides the float rounding noise of the
 * difference by 10 while the default tolerances stay. */
static const gradcheck_opts LINEAR = {1e-2, 0, 0};

static mf_tensor *f_conv(mf_ctx *ctx, mf_tensor **in, void *user) {
  const conv_case *cc = user;
  return mf_conv2d(ctx, in[0], in[1], cc->bias ? in[2] : NULL, &cc->opts);
}

static void gradcheck_case(const char *what, const conv_case *cc, int k) {
  mf_tensor *x, *w, *b;
  make_case(cc, &x, &w, &b, 100 + k);
  mf_tensor_set_requires_grad(x, 1);
  mf_tensor_set_requires_grad(w, 1);
  if (b) mf_tensor_set_requires_grad(b, 1);
  mf_tensor *in[3] = {x, w, b};
  char label[96];
  snprintf(label, sizeof label, "%s case %d", what, k);
  gradcheck(label, f_conv, b ? 3 : 2, in, (void *)cc, &LINEAR);
  free_case(x, w, b);
}

TEST(test_conv2d_backward_matches_finite_differences) {
  /* Batch 2 with 2 threads: one sample per thread, the parallel-over-samples path. */
  mf_set_num_threads(2);
  for (int k = 0; k < N_CASES; k++) gradcheck_case("2 threads", &CASES[k], k);
}

TEST(test_conv2d_backward_single_thread_matches_finite_differences) {
  mf_set_num_threads(1);
  for (int k = 0; k < N_CASES; k += 3) gradcheck_case("1 thread", &CASES[k], k);
  mf_set_num_threads(2);
}

TEST(test_conv2d_backward_fewer_samples_than_threads_matches_finite_differences) {
  /* Batch 1 on 2 threads with a single column block: one worker, which leaves OpenBLAS free
   * to thread its sgemm calls. (Several blocks shared between threads: the multi-block test
   * below.) */
  mf_set_num_threads(2);
  for (int k = 0; k < N_CASES; k += 2) {
    conv_case cc = CASES[k];
    cc.n = 1;
    gradcheck_case("batch 1", &cc, k);
  }
}

TEST(test_conv2d_backward_several_samples_per_thread_matches_finite_differences) {
  /* Batch 5 on 2 threads: 2 and 3 samples per thread, partial dW / db buffers added up. */
  mf_set_num_threads(2);
  conv_case cc = {5, 2, 5, 6, 3, 3, 3, {{1, 1}, {1, 1}, {1, 1}, 0}, 1};
  gradcheck_case("batch 5", &cc, 0);
  conv_case c1 = {5, 3, 4, 5, 2, 1, 1, {{1, 1}, {0, 0}, {1, 1}, 0}, 1};
  gradcheck_case("batch 5, 1x1", &c1, 1);
}

/* Two convolutions sharing x, w and b: the second backward adds into gradients that the first
 * one has written. */
static mf_tensor *f_conv_twice(mf_ctx *ctx, mf_tensor **in, void *user) {
  const mf_conv2d_opts *o2 = user;
  const mf_conv2d_opts pad1 = {{1, 1}, {1, 1}, {1, 1}, 0};
  return mf_add(ctx, mf_conv2d(ctx, in[0], in[1], in[2], &pad1),
                mf_conv2d(ctx, in[0], in[1], in[2], o2));
}

TEST(test_conv2d_backward_accumulates_into_shared_inputs) {
  for (int threads = 1; threads <= 2; threads++) {
    mf_set_num_threads(threads);
    mf_tensor *x = mf_tensor_new(MF_SHAPE(2, 3, 5, 6)), *w = mf_tensor_new(MF_SHAPE(4, 3, 3, 3));
    mf_tensor *b = mf_tensor_new(MF_SHAPE(4));
    fill_uniform(x, 1, -1, 1);
    fill_uniform(w, 2, -1, 1);
    fill_uniform(b, 3, -1, 1);
    mf_tensor_set_requires_grad(x, 1);
    mf_tensor_set_requires_grad(w, 1);
    mf_tensor_set_requires_grad(b, 1);
    mf_tensor *in[3] = {x, w, b};
    gradcheck("shared inputs", f_conv_twice, 3, in, (void *)&SAME, &LINEAR);
    free_case(x, w, b);
  }
  mf_set_num_threads(2);
}

static mf_tensor *f_conv1x1_twice(mf_ctx *ctx, mf_tensor **in, void *user) {
  return mf_add(ctx, mf_conv2d(ctx, in[0], in[1], NULL, NULL),
                mf_conv2d(ctx, in[0], in[2], NULL, NULL));
}

TEST(test_conv2d_1x1_backward_accumulates_into_shared_input) {
  mf_tensor *x = mf_tensor_new(MF_SHAPE(3, 4, 3, 5)), *w1 = mf_tensor_new(MF_SHAPE(2, 4, 1, 1));
  mf_tensor *w2 = mf_tensor_new(MF_SHAPE(2, 4, 1, 1));
  fill_uniform(x, 4, -1, 1);
  fill_uniform(w1, 5, -1, 1);
  fill_uniform(w2, 6, -1, 1);
  mf_tensor_set_requires_grad(x, 1);
  mf_tensor_set_requires_grad(w1, 1);
  mf_tensor_set_requires_grad(w2, 1);
  mf_tensor *in[3] = {x, w1, w2};
  gradcheck("1x1 shared x", f_conv1x1_twice, 3, in, NULL, &LINEAR);
  free_case(x, w1, w2);
}

TEST(test_conv2d_input_without_grad_gets_no_gradient) {
  /* The first layer: x is data. Only w's gradient is computed, x keeps no buffer. */
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *w = mf_tensor_new(MF_SHAPE(2, 1, 3, 3));
  fill_uniform(w, 7, -1, 1);
  mf_tensor_set_requires_grad(w, 1);
  mf_tensor *x = mf_ctx_tensor(ctx, MF_SHAPE(2, 1, 6, 6));
  fill_uniform(x, 8, -1, 1);
  mf_tensor *y = mf_conv2d(ctx, x, w, NULL, &SAME);
  EXPECT(y->node != NULL, "conv with a trainable weight must be recorded");
  EXPECT(mf_backward(ctx, mf_sum(ctx, y, NULL, 0, 0)) == MF_OK, "%s", mf_error());
  EXPECT(x->grad == NULL, "x got a gradient buffer");
  /* d sum(y) / d w[o, 0, i, j] = sum of x over the positions tap (i, j) reads. The centre
   * tap reads every pixel. */
  double sx = 0;
  for (int i = 0; i < 72; i++) sx += x->data[i];
  EXPECT_NEAR(w->grad[4], sx, 1e-4);
  EXPECT_NEAR(w->grad[9 + 4], sx, 1e-4);
  mf_tensor_free(w);
  mf_ctx_free(ctx);
}

TEST(test_conv2d_without_grad_records_nothing) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_ctx_zeros(ctx, MF_SHAPE(1, 2, 4, 4));
  mf_tensor *w = mf_ctx_zeros(ctx, MF_SHAPE(3, 2, 3, 3));
  mf_tensor *y = mf_conv2d(ctx, x, w, NULL, &SAME);
  EXPECT(y->node == NULL, "recorded although nothing requires grad");
  EXPECT_EQ_INT(mf_ctx_stats_get(ctx).tape_nodes, 0);
  mf_ctx_free(ctx);
}

/* ---- threads and determinism ---------------------------------------------------------------- */

typedef struct run_result {
  float *y, *dx, *dw, *db;
  int64_t ny, nx, nw, nb;
} run_result;

/* Forward + backward of a layer big enough to use several column blocks per sample. */
static run_result run_layer(int threads, int n, const mf_conv2d_opts *o, int kh) {
  mf_set_num_threads(threads);
  mf_tensor *x = mf_tensor_new(MF_SHAPE(n, 16, 40, 37)),
            *w = mf_tensor_new(MF_SHAPE(24, 16, kh, kh));
  mf_tensor *b = mf_tensor_new(MF_SHAPE(24));
  fill_uniform(x, 21, -1, 1);
  fill_uniform(w, 22, -0.2f, 0.2f);
  fill_uniform(b, 23, -1, 1);
  mf_tensor_set_requires_grad(x, 1);
  mf_tensor_set_requires_grad(w, 1);
  mf_tensor_set_requires_grad(b, 1);
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *y = mf_conv2d(ctx, x, w, b, o);
  float *gy = malloc((size_t)y->numel * sizeof(float));
  fill_uniform(&(mf_tensor){.data = gy, .numel = y->numel}, 24, -1, 1);
  EXPECT(mf_backward_with_grad(ctx, y, gy) == MF_OK, "%s", mf_error());
  run_result r = {malloc((size_t)y->numel * 4),
                  malloc((size_t)x->numel * 4),
                  malloc((size_t)w->numel * 4),
                  malloc((size_t)b->numel * 4),
                  y->numel,
                  x->numel,
                  w->numel,
                  b->numel};
  memcpy(r.y, y->data, (size_t)y->numel * 4);
  mf_tensor_read_grad(x, r.dx);
  mf_tensor_read_grad(w, r.dw);
  mf_tensor_read_grad(b, r.db);
  free(gy);
  mf_ctx_free(ctx);
  free_case(x, w, b);
  mf_set_num_threads(2);
  return r;
}

static void free_result(run_result *r) {
  free(r->y);
  free(r->dx);
  free(r->dw);
  free(r->db);
}

static int same_bits(const float *a, const float *b, int64_t n) {
  return memcmp(a, b, (size_t)n * sizeof(float)) == 0;
}

/* Largest |a - b| relative to the largest |b|. */
static double rel_diff(const float *a, const float *b, int64_t n) {
  double d = 0, m = 0;
  for (int64_t i = 0; i < n; i++) d = fmax(d, fabs(a[i] - b[i])), m = fmax(m, fabs(b[i]));
  return m > 0 ? d / m : d;
}

TEST(test_conv2d_gives_identical_bits_when_run_twice) {
  const mf_conv2d_opts pad = {{1, 1}, {1, 1}, {1, 1}, 0};
  for (int n = 1; n <= 5; n += 4) {
    run_result a = run_layer(2, n, &pad, 3), b = run_layer(2, n, &pad, 3);
    EXPECT(same_bits(a.y, b.y, a.ny), "batch %d: forward differs between runs", n);
    EXPECT(same_bits(a.dx, b.dx, a.nx), "batch %d: dx differs between runs", n);
    EXPECT(same_bits(a.dw, b.dw, a.nw), "batch %d: dw differs between runs", n);
    EXPECT(same_bits(a.db, b.db, a.nb), "batch %d: db differs between runs", n);
    free_result(&a);
    free_result(&b);
  }
}

TEST(test_conv2d_one_and_two_threads_agree) {
  /* The forward output is computed by the same single-threaded sgemm calls whatever the
   * thread count, so it is bit-identical. dW / db are summed over samples in per-thread
   * partials, so another thread count rounds differently: they agree to float rounding of
   * sums over 4 samples x 1480 pixels (relative 1e-5). */
  const mf_conv2d_opts cases[] = {{{1, 1}, {0, 0}, {1, 1}, 1}, {{2, 2}, {1, 1}, {1, 1}, 0}};
  const int khs[] = {3, 1};
  for (int k = 0; k < 2; k++) {
    run_result a = run_layer(1, 4, &cases[k], khs[k]), b = run_layer(2, 4, &cases[k], khs[k]);
    EXPECT(same_bits(a.y, b.y, a.ny), "case %d: forward differs between 1 and 2 threads", k);
    EXPECT(rel_diff(a.dx, b.dx, a.nx) < 1e-5, "case %d: dx differs by %g", k,
           rel_diff(a.dx, b.dx, a.nx));
    EXPECT(rel_diff(a.dw, b.dw, a.nw) < 1e-5, "case %d: dw differs by %g", k,
           rel_diff(a.dw, b.dw, a.nw));
    EXPECT(rel_diff(a.db, b.db, a.nb) < 1e-5, "case %d: db differs by %g", k,
           rel_diff(a.db, b.db, a.nb));
    free_result(&a);
    free_result(&b);
  }
}

/* Gradients of sum(gy * conv(x, w, b)) by direct loops in double. */
static void reference_conv_backward(const conv_case *cc, const float *x, const float *w,
                                    const float *gy, int OH, int OW, double *dx, double *dw,
                                    double *db) {
  int sh = cc->opts.stride[0] ? cc->opts.stride[0] : 1,
      sw = cc->opts.stride[1] ? cc->opts.stride[1] : 1;
  int dh = cc->opts.dilation[0] ? cc->opts.dilation[0] : 1;
  int dwl = cc->opts.dilation[1] ? cc->opts.dilation[1] : 1;
  int pt = cc->opts.same ? dh * (cc->kh - 1) / 2 : cc->opts.padding[0];
  int pl = cc->opts.same ? dwl * (cc->kw - 1) / 2 : cc->opts.padding[1];
  memset(dx, 0, sizeof(double) * cc->n * cc->c * cc->h * cc->w);
  memset(dw, 0, sizeof(double) * cc->o * cc->c * cc->kh * cc->kw);
  memset(db, 0, sizeof(double) * cc->o);
  for (int n = 0; n < cc->n; n++)
    for (int o = 0; o < cc->o; o++)
      for (int r = 0; r < OH; r++)
        for (int q = 0; q < OW; q++) {
          const double g = gy[((n * cc->o + o) * OH + r) * OW + q];
          db[o] += g;
          for (int c = 0; c < cc->c; c++)
            for (int i = 0; i < cc->kh; i++)
              for (int j = 0; j < cc->kw; j++) {
                int ih = r * sh - pt + i * dh, iw = q * sw - pl + j * dwl;
                if (ih < 0 || ih >= cc->h || iw < 0 || iw >= cc->w) continue;
                const int xi = ((n * cc->c + c) * cc->h + ih) * cc->w + iw;
                const int wi = ((o * cc->c + c) * cc->kh + i) * cc->kw + j;
                dx[xi] += g * w[wi];
                dw[wi] += g * x[xi];
              }
        }
}

static double rel_diff_d(const float *a, const double *b, int64_t n) {
  double d = 0, m = 0;
  for (int64_t i = 0; i < n; i++) d = fmax(d, fabs(a[i] - b[i])), m = fmax(m, fabs(b[i]));
  return m > 0 ? d / m : d;
}

TEST(test_conv2d_multi_block_backward_matches_reference) {
  /* Layers of 1480 output pixels: more than one column block per sample, blocks ending inside
   * an output row. Batch 1 on 2 threads splits each sample's blocks between the threads
   * (private dx buffers added up); batch 3 gives whole samples to threads; 1 thread runs all.
   * Float sums of up to 3 x 1480 products against double: relative 1e-5. */
  const conv_case cases[] = {
      {1, 16, 40, 37, 24, 3, 3, {{1, 1}, {0, 0}, {1, 1}, 1}, 1},
      {3, 16, 40, 37, 24, 3, 3, {{1, 1}, {0, 0}, {1, 1}, 1}, 1},
      {1, 16, 79, 73, 8, 3, 3, {{2, 2}, {1, 1}, {1, 1}, 0}, 1},
      {1, 16, 40, 37, 24, 1, 1, {{1, 1}, {0, 0}, {1, 1}, 0}, 1},
      {3, 16, 40, 37, 24, 1, 1, {{1, 1}, {0, 0}, {1, 1}, 0}, 0},
  };
  for (int threads = 1; threads <= 2; threads++)
    for (int k = 0; k < (int)(sizeof cases / sizeof cases[0]); k++) {
      mf_set_num_threads(threads);
      const conv_case *cc = &cases[k];
      mf_tensor *x, *w, *b;
      make_case(cc, &x, &w, &b, 50 + k);
      mf_tensor_set_requires_grad(x, 1);
      mf_tensor_set_requires_grad(w, 1);
      if (b) mf_tensor_set_requires_grad(b, 1);
      mf_ctx *ctx = mf_ctx_new();
      mf_tensor *y = mf_conv2d(ctx, x, w, b, &cc->opts);
      float *gy = malloc((size_t)y->numel * sizeof(float));
      fill_uniform(&(mf_tensor){.data = gy, .numel = y->numel}, 60 + k, -1, 1);
      EXPECT(mf_backward_with_grad(ctx, y, gy) == MF_OK, "%s", mf_error());
      double *rx = malloc(sizeof(double) * x->numel), *rw = malloc(sizeof(double) * w->numel);
      double rb[64];
      reference_conv_backward(cc, x->data, w->data, gy, (int)y->shape[2], (int)y->shape[3], rx, rw,
                              rb);
      EXPECT(rel_diff_d(x->grad, rx, x->numel) < 1e-5, "%d threads, case %d: dx off by %g", threads,
             k, rel_diff_d(x->grad, rx, x->numel));
      EXPECT(rel_diff_d(w->grad, rw, w->numel) < 1e-5, "%d threads, case %d: dw off by %g", threads,
             k, rel_diff_d(w->grad, rw, w->numel));
      if (b)
        EXPECT(rel_diff_d(b->grad, rb, b->numel) < 1e-5, "%d threads, case %d: db off by %g",
               threads, k, rel_diff_d(b->grad, rb, b->numel));
      free(rx);
      free(rw);
      free(gy);
      mf_ctx_free(ctx);
      free_case(x, w, b);
    }
  mf_set_num_threads(2);
}

TEST(test_conv2d_large_layer_matches_reference) {
  /* Several column blocks per sample, partial rows at block edges, both threads busy. */
  conv_case cc = {3, 16, 40, 37, 24, 3, 3, {{1, 1}, {0, 0}, {1, 1}, 1}, 1};
  mf_tensor *x, *w, *b;
  make_case(&cc, &x, &w, &b, 31);
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *y = mf_conv2d(ctx, x, w, b, &cc.opts);
  float *want = malloc((size_t)y->numel * sizeof(float));
  int OH, OW;
  reference_conv(&cc, x->data, w->data, b->data, want, &OH, &OW);
  /* sums of 144 products of values in [-1, 1]: float rounding well under 1e-4 */
  EXPECT(rel_diff(y->data, want, y->numel) < 1e-5, "deviation %g",
         rel_diff(y->data, want, y->numel));
  free(want);
  mf_ctx_free(ctx);
  free_case(x, w, b);
}

/* ---- misuse aborts with a message (checked in a child process) ------------------------------ */

/* The children abort in the shape checks, before any OpenMP region (libgomp's thread pool
 * does not survive fork). */
static int aborts(void (*fn)(void)) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    freopen("/dev/null", "w", stderr);
    fn();
    _exit(0);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0);
}

static void conv_channel_mismatch(void) {
  mf_ctx *ctx = mf_ctx_new();
  mf_conv2d(ctx, mf_ctx_zeros(ctx, MF_SHAPE(1, 3, 5, 5)), mf_ctx_zeros(ctx, MF_SHAPE(2, 4, 3, 3)),
            NULL, NULL);
}

static void conv_same_strided(void) {
  mf_ctx *ctx = mf_ctx_new();
  const mf_conv2d_opts o = {{2, 2}, {0, 0}, {1, 1}, 1};
  mf_conv2d(ctx, mf_ctx_zeros(ctx, MF_SHAPE(1, 3, 5, 5)), mf_ctx_zeros(ctx, MF_SHAPE(2, 3, 3, 3)),
            NULL, &o);
}

static void conv_kernel_too_big(void) {
  mf_ctx *ctx = mf_ctx_new();
  mf_conv2d(ctx, mf_ctx_zeros(ctx, MF_SHAPE(1, 3, 2, 5)), mf_ctx_zeros(ctx, MF_SHAPE(2, 3, 3, 3)),
            NULL, NULL);
}

TEST(test_conv2d_rejects_mismatched_channels_strided_same_and_oversized_kernels) {
  EXPECT(aborts(conv_channel_mismatch), "channel mismatch did not abort");
  EXPECT(aborts(conv_same_strided), "'same' with stride 2 did not abort");
  EXPECT(aborts(conv_kernel_too_big), "a kernel taller than the input did not abort");
}
