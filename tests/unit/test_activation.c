/* Activations: relu (and in place), gelu, tanh, sigmoid, softmax, log-softmax. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "expect_abort.h"
#include "gradcheck.h"
#include "melforge/melforge.h"
#include "mftest.h"

/* Uniform in [-r, r] but at least `gap` away from 0 (for the relu kink). */
static void fill_away_from_zero(mf_tensor *t, uint64_t seed, float r, float gap) {
  fill_uniform(t, seed, -r, r);
  for (int64_t i = 0; i < t->numel; i++)
    if (fabsf(t->data[i]) < gap) t->data[i] += t->data[i] < 0 ? -gap : gap;
}

static void backward_ones(mf_ctx *ctx, mf_tensor *y) {
  float *ones = malloc((size_t)y->numel * sizeof(float));
  for (int64_t i = 0; i < y->numel; i++) ones[i] = 1.0f;
  EXPECT(mf_backward_with_grad(ctx, y, ones) == MF_OK, "%s", mf_error());
  free(ones);
}

/* ---- relu ------------------------------------------------------------------------------- */

TEST(test_relu_forward_zeroes_negatives_and_keeps_positives) {
  mf_ctx *ctx = mf_ctx_new();
  float x[6] = {-2, -0.5f, 0, 0.25f, 3, -1e-30f};
  float want[6] = {0, 0, 0, 0.25f, 3, 0};
  mf_tensor *y = mf_relu(ctx, mf_ctx_tensor_from(ctx, MF_SHAPE(2, 3), x));
  EXPECT_EQ_INT(y->ndim, 2);
  for (int i = 0; i < 6; i++) EXPECT_NEAR(y->data[i], want[i], 0);
  mf_ctx_free(ctx);
}

TEST(test_relu_gradient_at_zero_is_zero) {
  /* PyTorch's convention: the subgradient at the kink is 0. */
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_tensor_from_data(MF_SHAPE(3), (float[]){-1, 0, 2});
  mf_tensor_set_requires_grad(x, 1);
  backward_ones(ctx, mf_relu(ctx, x));
  EXPECT_NEAR(x->grad[0], 0, 0);
  EXPECT_NEAR(x->grad[1], 0, 0);
  EXPECT_NEAR(x->grad[2], 1, 0);
  mf_tensor_free(x);
  mf_ctx_free(ctx);
}

static mf_tensor *f_relu(mf_ctx *ctx, mf_tensor **in, void *user) { return mf_relu(ctx, in[0]); }

TEST(test_relu_backward_matches_finite_differences) {
  mf_tensor *x = mf_tensor_new(MF_SHAPE(3, 7));
  fill_away_from_zero(x, 1, 2, 0.05f);
  mf_tensor_set_requires_grad(x, 1);
  gradcheck("relu", f_relu, 1, &x, NULL, NULL);
  mf_tensor_free(x);
}

/* ---- relu_ ------------------------------------------------------------------------------ */

TEST(test_relu_inplace_writes_into_its_input_and_bumps_the_version) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *h = mf_ctx_tensor_from(ctx, MF_SHAPE(4), (float[]){-1, 2, -3, 4});
  uint32_t v0 = *h->version;
  mf_tensor *y = mf_relu_(ctx, h);
  EXPECT(y != h, "relu_ should return a new tensor struct");
  EXPECT(y->data == h->data, "relu_ should alias its input's data");
  EXPECT(y->version == h->version, "the alias should share the version counter");
  EXPECT_EQ_INT(*h->version, v0 + 1);
  float want[4] = {0, 2, 0, 4};
  for (int i = 0; i < 4; i++) EXPECT_NEAR(h->data[i], want[i], 0);
  mf_ctx_free(ctx);
}

/* Gradient of sum(w * relu(2 x)) w.r.t. x through mf_relu or mf_relu_. */
static void relu_grad_via(int inplace, const mf_tensor *x0, const mf_tensor *w, float *grad) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_tensor_from_data(mf_tensor_shape(x0), x0->data);
  mf_tensor_set_requires_grad(x, 1);
  mf_tensor *h = mf_scale(ctx, x, 2.0f); /* scale's backward does not read h */
  mf_tensor *r = inplace ? mf_relu_(ctx, h) : mf_relu(ctx, h);
  mf_tensor *loss = mf_sum(ctx, mf_mul(ctx, r, (mf_tensor *)w), NULL, 0, 0);
  EXPECT(mf_backward(ctx, loss) == MF_OK, "%s", mf_error());
  mf_tensor_read_grad(x, grad);
  mf_tensor_free(x);
  mf_ctx_free(ctx);
}

TEST(test_relu_inplace_gives_the_same_gradient_as_relu) {
  mf_tensor *x = mf_tensor_new(MF_SHAPE(5, 9)), *w = mf_tensor_new(MF_SHAPE(5, 9));
  fill_uniform(x, 3, -1, 1);
  x->data[4] = 0.0f; /* the kink too */
  fill_uniform(w, 4, -2, 2);
  float a[45], b[45];
  relu_grad_via(0, x, w, a);
  relu_grad_via(1, x, w, b);
  for (int i = 0; i < 45; i++) EXPECT_NEAR(b[i], a[i], 0);
  mf_tensor_free(x);
  mf_tensor_free(w);
}

static mf_tensor *f_relu_inplace(mf_ctx *ctx, mf_tensor **in, void *user) {
  return mf_relu_(ctx, mf_scale(ctx, in[0], 1.5f));
}

TEST(test_relu_inplace_backward_matches_finite_differences) {
  mf_tensor *x = mf_tensor_new(MF_SHAPE(2, 3, 4));
  fill_away_from_zero(x, 5, 2, 0.05f);
  mf_tensor_set_requires_grad(x, 1);
  gradcheck("relu_", f_relu_inplace, 1, &x, NULL, NULL);
  mf_tensor_free(x);
}

/* After h = relu_(h), a later op that uses h (not the returned alias) sees the relu'd values;
 * its gradient must flow back through the relu like the alias's. */
static mf_tensor *f_relu_inplace_then_use_input(mf_ctx *ctx, mf_tensor **in, void *user) {
  mf_tensor *h = mf_scale(ctx, in[0], 1.0f);
  mf_tensor *r = mf_relu_(ctx, h);
  return mf_add(ctx, mf_mul(ctx, h, in[1]), mf_scale(ctx, r, 3.0f));
}

TEST(test_relu_inplace_input_used_afterwards_backpropagates_through_the_mask) {
  mf_tensor *x = mf_tensor_new(MF_SHAPE(4, 6)), *w = mf_tensor_new(MF_SHAPE(4, 6));
  fill_away_from_zero(x, 6, 1, 0.05f);
  fill_uniform(w, 7, -1, 1);
  mf_tensor_set_requires_grad(x, 1);
  mf_tensor_set_requires_grad(w, 1);
  mf_tensor *in[2] = {x, w};
  gradcheck("relu_ then use of its input", f_relu_inplace_then_use_input, 2, in, NULL, NULL);
  mf_tensor_free(x);
  mf_tensor_free(w);
}

static void child_relu_inplace_after_sigmoid(void) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_tensor_from_data(MF_SHAPE(3), (float[]){-1, 0.5f, 2});
  mf_tensor_set_requires_grad(x, 1);
  mf_tensor *s = mf_sigmoid(ctx, x); /* its backward reads s */
  mf_tensor *r = mf_relu_(ctx, s);
  mf_backward(ctx, mf_sum(ctx, r, NULL, 0, 0));
}

TEST(test_relu_inplace_on_an_output_its_producer_reads_aborts_in_backward) {
  EXPECT(mftest_aborts_with(child_relu_inplace_after_sigmoid, "backward of sigmoid"),
         "modifying sigmoid's output in place was not caught");
}

static void child_relu_inplace_after_mul(void) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_tensor_from_data(MF_SHAPE(3), (float[]){-1, 0.5f, 2});
  mf_tensor_set_requires_grad(x, 1);
  mf_tensor *h = mf_scale(ctx, x, 1.0f);
  mf_tensor *sq = mf_mul(ctx, h, h); /* its backward reads h */
  mf_relu_(ctx, h);
  mf_backward(ctx, mf_sum(ctx, sq, NULL, 0, 0));
}

TEST(test_relu_inplace_on_an_input_a_later_backward_reads_aborts) {
  EXPECT(
      mftest_aborts_with(child_relu_inplace_after_mul, "backward of mul: its input 0 was modified"),
      "modifying mul's input in place was not caught");
}

static void child_relu_inplace_on_leaf(void) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_tensor_from_data(MF_SHAPE(2), (float[]){-1, 1});
  mf_tensor_set_requires_grad(x, 1);
  mf_relu_(ctx, x);
}

TEST(test_relu_inplace_on_a_leaf_that_requires_grad_aborts) {
  EXPECT(mftest_aborts_with(child_relu_inplace_on_leaf, "leaf that requires grad"),
         "relu_ on a parameter-like leaf was not refused");
}

TEST(test_relu_inplace_in_no_grad_mode_records_nothing) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_tensor_from_data(MF_SHAPE(2), (float[]){-1, 1});
  mf_tensor_set_requires_grad(x, 1);
  mf_ctx_set_grad_enabled(ctx, 0);
  mf_tensor *y = mf_relu_(ctx, x); /* evaluation may clamp anything in place */
  EXPECT(y->node == NULL, "a node was recorded in no-grad mode");
  EXPECT_NEAR(x->data[0], 0, 0);
  mf_tensor_free(x);
  mf_ctx_free(ctx);
}

/* ---- gelu, tanh, sigmoid ------------------------------------------------------------------ */

TEST(test_gelu_forward_matches_known_values) {
  /* x * Phi(x) from the erf form (PyTorch's default, approximate='none'). */
  mf_ctx *ctx = mf_ctx_new();
  float x[6] = {1, -1, 0, 2, -3, 0.5f};
  double want[6] = {0.8413447460685429, -0.15865525393145707, 0,
                    1.9544997361036416, -0.0040496940948903,  0.3457312306467790};
  mf_tensor *y = mf_gelu(ctx, mf_ctx_tensor_from(ctx, MF_SHAPE(6), x));
  for (int i = 0; i < 6; i++) EXPECT_NEAR(y->data[i], want[i], 2e-7 * fabs(want[i]) + 1e-9);
  mf_ctx_free(ctx);
}

/* Max relative error of f over a grid of [lo, hi] against a double reference. Returns the
 * worst relative error and where it was. */
typedef mf_tensor *(*unary_op)(mf_ctx *, mf_tensor *);
static double worst_rel_error(unary_op op, double (*ref)(double), double lo, double hi, int n,
                              double floor_abs, double *where) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_ctx_tensor(ctx, MF_SHAPE(n));
  for (int i = 0; i < n; i++) x->data[i] = (float)(lo + (hi - lo) * i / (n - 1));
  mf_tensor *y = op(ctx, x);
  double worst = 0;
  *where = 0;
  for (int i = 0; i < n; i++) {
    double r = ref(x->data[i]);
    double e = fabs(y->data[i] - r) / (fabs(r) > floor_abs ? fabs(r) : floor_abs);
    if (e > worst) worst = e, *where = x->data[i];
  }
  mf_ctx_free(ctx);
  return worst;
}

static double gelu_ref(double x) { return 0.5 * x * erfc(-x / sqrt(2.0)); }
static double sigmoid_ref(double x) { return 1.0 / (1.0 + exp(-x)); }

TEST(test_gelu_is_accurate_in_relative_terms_including_the_left_tail) {
  /* Float rounding is 6e-8 relative, the erfc fit adds 1.1e-7 and its polynomial, evaluated
   * in float with cancelling terms, about 3e-7: measured 4.8e-7 at worst on a 2M-point grid.
   * That holds deep in the left tail too (gelu(-12) ~ 2e-32), where PyTorch's
   * 0.5 x (1 + erf(x / sqrt 2)) has lost every digit by x = -6. */
  double where, e = worst_rel_error(mf_gelu, gelu_ref, -12, 12, 48001, 1e-38, &where);
  EXPECT(e < 6e-7, "gelu relative error %.3g at x = %.6g", e, where);
}

TEST(test_tanh_matches_libm_to_a_few_ulp) {
  /* Measured 1.5e-7 at worst, near the switch from the polynomial to the exp form at 0.625. */
  double where, e = worst_rel_error(mf_tanh, tanh, -12, 12, 48001, 1e-38, &where);
  EXPECT(e < 2.4e-7, "tanh relative error %.3g at x = %.6g", e, where);
  e = worst_rel_error(mf_tanh, tanh, -1e-3, 1e-3, 20001, 1e-38, &where);
  EXPECT(e < 1.2e-7, "tanh relative error %.3g at x = %.6g near 0", e, where);
}

TEST(test_sigmoid_matches_reference_to_a_few_ulp) {
  /* Measured 1.9e-7 at worst; the left tail down to 1e-35 keeps its relative accuracy. */
  double where, e = worst_rel_error(mf_sigmoid, sigmoid_ref, -80, 30, 44001, 1e-38, &where);
  EXPECT(e < 3e-7, "sigmoid relative error %.3g at x = %.6g", e, where);
}

TEST(test_tanh_and_sigmoid_saturate_and_pass_nan) {
  mf_ctx *ctx = mf_ctx_new();
  float x[4] = {-1000, 1000, NAN, 0};
  mf_tensor *t = mf_ctx_tensor_from(ctx, MF_SHAPE(4), x);
  mf_tensor *a = mf_tanh(ctx, t), *s = mf_sigmoid(ctx, t), *g = mf_gelu(ctx, t);
  EXPECT_NEAR(a->data[0], -1, 0);
  EXPECT_NEAR(a->data[1], 1, 0);
  EXPECT(isnan(a->data[2]), "tanh(nan) = %g", a->data[2]);
  EXPECT_NEAR(a->data[3], 0, 0);
  EXPECT_NEAR(s->data[0], 0, 0);
  EXPECT_NEAR(s->data[1], 1, 0);
  EXPECT(isnan(s->data[2]), "sigmoid(nan) = %g", s->data[2]);
  EXPECT_NEAR(s->data[3], 0.5, 0);
  EXPECT_NEAR(g->data[0], 0, 0);
  EXPECT_NEAR(g->data[1], 1000, 0);
  EXPECT(isnan(g->data[2]), "gelu(nan) = %g", g->data[2]);
  mf_ctx_free(ctx);
}

static mf_tensor *f_unary(mf_ctx *ctx, mf_tensor **in, void *user) {
  return (*(unary_op *)user)(ctx, in[0]);
}

static void check_unary(const char *label, unary_op op, float range) {
  mf_tensor *x = mf_tensor_new(MF_SHAPE(3, 5, 4));
  fill_uniform(x, 11, -range, range);
  mf_tensor_set_requires_grad(x, 1);
  gradcheck(label, f_unary, 1, &x, &op, NULL);
  mf_tensor_free(x);
}

TEST(test_gelu_backward_matches_finite_differences) { check_unary("gelu", mf_gelu, 4); }
TEST(test_tanh_backward_matches_finite_differences) { check_unary("tanh", mf_tanh, 3); }
TEST(test_sigmoid_backward_matches_finite_differences) { check_unary("sigmoid", mf_sigmoid, 5); }

/* gelu(h) + tanh(h) + sigmoid(h) + relu(h) for h = 1 * x, recorded in a chosen order (not
 * left to argument evaluation). h is not a heap tensor, so the backward that reaches it first
 * takes over its output's gradient buffer and the others add into it. */
static mf_tensor *f_sum_of_activations(mf_ctx *ctx, mf_tensor **in, void *user) {
  mf_tensor *h = mf_scale(ctx, in[0], 1.0f);
  mf_tensor *y[4];
  const unary_op ops[4] = {mf_gelu, mf_tanh, mf_sigmoid, mf_relu};
  const int reverse = *(const int *)user;
  for (int k = 0; k < 4; k++) y[reverse ? 3 - k : k] = ops[reverse ? 3 - k : k](ctx, h);
  return mf_add(ctx, mf_add(ctx, y[0], y[1]), mf_add(ctx, y[2], y[3]));
}

TEST(test_activation_gradients_accumulate_when_the_input_is_shared) {
  for (int reverse = 0; reverse < 2; reverse++) {
    mf_tensor *x = mf_tensor_new(MF_SHAPE(6, 5));
    fill_away_from_zero(x, 12, 3, 0.05f);
    mf_tensor_set_requires_grad(x, 1);
    gradcheck("gelu + tanh + sigmoid + relu", f_sum_of_activations, 1, &x, &reverse, NULL);
    mf_tensor_free(x);
  }
}

TEST(test_activation_backward_of_a_large_tensor_matches_the_derivative) {
  /* Big enough for the threaded loops: checks the gradient element by element. */
  mf_ctx *ctx = mf_ctx_new();
  const int n = 200003;
  mf_tensor *x = mf_tensor_new(MF_SHAPE(n));
  fill_uniform(x, 13, -4, 4);
  mf_tensor_set_requires_grad(x, 1);
  unary_op ops[3] = {mf_gelu, mf_tanh, mf_sigmoid};
  for (int k = 0; k < 3; k++) {
    mf_ctx_reset(ctx);
    x->grad_state = 0;
    backward_ones(ctx, ops[k](ctx, x));
    double worst = 0;
    for (int i = 0; i < n; i++) {
      double v = x->data[i], d;
      if (k == 0)
        d = 0.5 * erfc(-v / sqrt(2.0)) + v * exp(-0.5 * v * v) / sqrt(2 * M_PI);
      else if (k == 1)
        d = 1 - tanh(v) * tanh(v);
      else
        d = sigmoid_ref(v) * (1 - sigmoid_ref(v));
      double e = fabs(x->grad[i] - d);
      if (e > worst) worst = e;
    }
    EXPECT(worst < 1e-6, "op %d: gradient off by %.3g", k, worst);
  }
  mf_tensor_free(x);
  mf_ctx_free(ctx);
}

/* ---- softmax, log-softmax ----------------------------------------------------------------- */

TEST(test_softmax_forward_matches_hand_computed_values) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_ctx_tensor_from(ctx, MF_SHAPE(2, 3), (float[]){1, 2, 3, 0, 0, 0});
  mf_tensor *y = mf_softmax(ctx, x, -1);
  double want[6] = {
      0.09003057317038046, 0.24472847105479764, 0.6652409557748219, 1.0 / 3, 1.0 / 3, 1.0 / 3};
  for (int i = 0; i < 6; i++) EXPECT_NEAR(y->data[i], want[i], 1e-7);
  mf_tensor *l = mf_log_softmax(ctx, x, 1);
  for (int i = 0; i < 6; i++) EXPECT_NEAR(l->data[i], log(want[i]), 2e-7);
  mf_ctx_free(ctx);
}

TEST(test_softmax_rows_sum_to_one_and_ignore_a_constant_shift) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_ctx_tensor(ctx, MF_SHAPE(7, 37));
  fill_uniform(x, 21, -5, 5);
  mf_tensor *shifted = mf_add_scalar(ctx, x, 100.0f);
  mf_tensor *a = mf_softmax(ctx, x, -1), *b = mf_softmax(ctx, shifted, -1);
  for (int r = 0; r < 7; r++) {
    double s = 0;
    for (int c = 0; c < 37; c++) s += a->data[r * 37 + c];
    EXPECT_NEAR(s, 1.0, 1e-6);
  }
  /* x + 100 is rounded to float (ulp 7.6e-6 at 100), so the inputs differ by that much. */
  for (int i = 0; i < 7 * 37; i++) EXPECT_NEAR(b->data[i], a->data[i], 1e-5 * a->data[i] + 1e-9);
  mf_ctx_free(ctx);
}

TEST(test_log_softmax_of_large_logits_stays_finite) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x =
      mf_ctx_tensor_from(ctx, MF_SHAPE(2, 3), (float[]){1000, 1001, 1002, -1000, 0, 1000});
  mf_tensor *l = mf_log_softmax(ctx, x, -1), *s = mf_softmax(ctx, x, -1);
  double want[3] = {-2.4076059644443806, -1.4076059644443806, -0.4076059644443806};
  for (int i = 0; i < 3; i++) EXPECT_NEAR(l->data[i], want[i], 1e-6);
  EXPECT_NEAR(l->data[3], -2000, 0);
  EXPECT_NEAR(l->data[4], -1000, 0);
  EXPECT_NEAR(l->data[5], 0, 0);
  EXPECT_NEAR(s->data[3], 0, 0);
  EXPECT_NEAR(s->data[5], 1, 0);
  for (int i = 0; i < 6; i++) EXPECT(isfinite(l->data[i]) && isfinite(s->data[i]), "element %d", i);
  mf_ctx_free(ctx);
}

/* Reference softmax / log-softmax over `axis` of a contiguous tensor, in double. */
static void softmax_ref(const mf_tensor *x, int axis, int lg, double *out) {
  int64_t outer = 1, inner = 1, n = x->shape[axis];
  for (int k = 0; k < axis; k++) outer *= x->shape[k];
  for (int k = axis + 1; k < x->ndim; k++) inner *= x->shape[k];
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < inner; j++) {
      const float *p = x->data + o * n * inner + j;
      double m = -INFINITY, s = 0;
      for (int64_t k = 0; k < n; k++) m = fmax(m, p[k * inner]);
      for (int64_t k = 0; k < n; k++) s += exp(p[k * inner] - m);
      for (int64_t k = 0; k < n; k++) {
        double v = p[k * inner] - m - log(s);
        out[o * n * inner + k * inner + j] = lg ? v : exp(v);
      }
    }
}

static void check_softmax_against_reference(mf_shape shape, int axis, uint64_t seed) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_ctx_tensor(ctx, shape);
  fill_uniform(x, seed, -6, 6);
  double *ref = malloc((size_t)x->numel * sizeof(double));
  int a = axis < 0 ? axis + shape.ndim : axis;
  for (int lg = 0; lg < 2; lg++) {
    mf_tensor *y = lg ? mf_log_softmax(ctx, x, axis) : mf_softmax(ctx, x, axis);
    softmax_ref(x, a, lg, ref);
    double worst = 0;
    for (int64_t i = 0; i < x->numel; i++) {
      double e = fabs(y->data[i] - ref[i]) / (lg ? 1.0 : fmax(ref[i], 1e-30));
      if (e > worst) worst = e;
    }
    /* softmax: a few ulp relative; log-softmax: absolute, values up to ~20 */
    EXPECT(worst < (lg ? 4e-6 : 1e-6), "%s axis %d of a %d-d tensor: error %.3g",
           lg ? "log_softmax" : "softmax", axis, shape.ndim, worst);
  }
  free(ref);
  mf_ctx_free(ctx);
}

TEST(test_softmax_along_every_axis_matches_a_double_reference) {
  /* inner sizes 1, 70 and 5 * 70: the strided path with partial and several column blocks */
  for (int axis = -1; axis < 3; axis++)
    check_softmax_against_reference(MF_SHAPE(4, 5, 70), axis, 30);
  check_softmax_against_reference(MF_SHAPE(9), 0, 31);
}

TEST(test_softmax_of_large_tensors_uses_threads_and_stays_correct) {
  check_softmax_against_reference(MF_SHAPE(300, 1000), -1, 32);
  check_softmax_against_reference(MF_SHAPE(8, 50, 200), 1, 33);
  check_softmax_against_reference(MF_SHAPE(60, 3, 300), 0, 34);
}

static mf_tensor *f_softmax(mf_ctx *ctx, mf_tensor **in, void *user) {
  const int *p = user; /* {axis, log} */
  return p[1] ? mf_log_softmax(ctx, in[0], p[0]) : mf_softmax(ctx, in[0], p[0]);
}

TEST(test_softmax_and_log_softmax_backward_match_finite_differences_on_each_axis) {
  const int axes[4] = {0, 1, 2, -1};
  for (int lg = 0; lg < 2; lg++)
    for (int k = 0; k < 4; k++) {
      mf_tensor *x = mf_tensor_new(MF_SHAPE(3, 4, 5));
      fill_uniform(x, 40 + k, -2, 2);
      mf_tensor_set_requires_grad(x, 1);
      int p[2] = {axes[k], lg};
      char label[64];
      snprintf(label, sizeof label, "%s axis %d", lg ? "log_softmax" : "softmax", axes[k]);
      gradcheck(label, f_softmax, 1, &x, p, NULL);
      mf_tensor_free(x);
    }
}

/* softmax(x) + log_softmax(x); the op recorded first runs its backward last, adding into
 * the gradient the other one wrote, so both orders are checked. */
static mf_tensor *f_softmax_twice(mf_ctx *ctx, mf_tensor **in, void *user) {
  const int *p = user; /* {axis, softmax first} */
  /* h is not a heap tensor: the first backward computes in the output gradient's buffer */
  mf_tensor *h = mf_scale(ctx, in[0], 1.0f), *a, *b;
  if (p[1]) {
    a = mf_softmax(ctx, h, p[0]);
    b = mf_log_softmax(ctx, h, p[0]);
  } else {
    b = mf_log_softmax(ctx, h, p[0]);
    a = mf_softmax(ctx, h, p[0]);
  }
  return mf_add(ctx, a, b);
}

TEST(test_softmax_gradients_accumulate_when_the_input_is_shared) {
  for (int axis = 0; axis < 3; axis += 2) /* the column-block path and the row path */
    for (int first = 0; first < 2; first++) {
      mf_tensor *x = mf_tensor_new(MF_SHAPE(3, 4, 5));
      fill_uniform(x, 50 + axis, -2, 2);
      mf_tensor_set_requires_grad(x, 1);
      int p[2] = {axis, first};
      gradcheck("softmax + log_softmax", f_softmax_twice, 1, &x, p, NULL);
      mf_tensor_free(x);
    }
}

TEST(test_softmax_backward_of_a_large_tensor_matches_the_formula) {
  /* g = one-hot at column 0 of each row: d softmax_0 / d x_j = y_0 (delta_0j - y_j). */
  mf_ctx *ctx = mf_ctx_new();
  const int R = 200, C = 300;
  mf_tensor *x = mf_tensor_new(MF_SHAPE(R, C));
  fill_uniform(x, 60, -3, 3);
  mf_tensor_set_requires_grad(x, 1);
  mf_tensor *y = mf_softmax(ctx, x, 1);
  float *g = calloc((size_t)R * C, sizeof(float));
  for (int r = 0; r < R; r++) g[r * C] = 1;
  EXPECT(mf_backward_with_grad(ctx, y, g) == MF_OK, "%s", mf_error());
  double worst = 0;
  for (int r = 0; r < R; r++)
    for (int j = 0; j < C; j++) {
      double y0 = y->data[r * C], yj = y->data[r * C + j];
      double want = y0 * ((j == 0) - yj);
      worst = fmax(worst, fabs(x->grad[r * C + j] - want));
    }
  EXPECT(worst < 1e-7, "gradient off by %.3g", worst);
  free(g);
  mf_tensor_free(x);
  mf_ctx_free(ctx);
}
