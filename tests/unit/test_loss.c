/* Losses: cross-entropy against class indices and against soft targets. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "expect_abort.h"
#include "gradcheck.h"
#include "melforge/melforge.h"
#include "mftest.h"

/* Reference: mean_n sum_c -t_nc log_softmax(x)_nc with t = (1 - eps) target + eps / C, in
 * double; target rows come from `soft` or, when NULL, from one-hot `labels`. */
static double ce_ref(const float *x, int N, int C, const int32_t *labels, const float *soft,
                     double eps) {
  double total = 0;
  for (int n = 0; n < N; n++) {
    const float *r = x + n * C;
    double m = -INFINITY, s = 0;
    for (int c = 0; c < C; c++) m = fmax(m, r[c]);
    for (int c = 0; c < C; c++) s += exp(r[c] - m);
    for (int c = 0; c < C; c++) {
      double tgt = soft ? soft[n * C + c] : (labels[n] == c);
      double t = (1 - eps) * tgt + eps / C;
      total -= t * (r[c] - m - log(s));
    }
  }
  return total / N;
}

TEST(test_cross_entropy_of_uniform_logits_is_log_c) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_ctx_zeros(ctx, MF_SHAPE(3, 10));
  mf_tensor_fill(x, 0.7f);
  const int32_t labels[3] = {0, 9, 4};
  mf_tensor *l = mf_cross_entropy(ctx, x, labels, 0.0f);
  EXPECT_EQ_INT(l->ndim, 1);
  EXPECT_EQ_INT(l->numel, 1);
  EXPECT_NEAR(l->data[0], log(10.0), 1e-6);
  /* Smoothing does not change it: every class has the same log-probability. */
  EXPECT_NEAR(mf_cross_entropy(ctx, x, labels, 0.3f)->data[0], log(10.0), 1e-6);
  mf_ctx_free(ctx);
}

TEST(test_cross_entropy_matches_hand_computed_values) {
  /* Row 0: x = (1, 2, 3), label 2: -log softmax_2 = log(e + e^2 + e^3) - 3 = 0.40760596.
   * Row 1: x = (0, 0, ln 3), label 0: p_0 = 1 / 5, loss ln 5. The mean is 1.00851834. */
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_ctx_tensor_from(ctx, MF_SHAPE(2, 3), (float[]){1, 2, 3, 0, 0, logf(3)});
  const int32_t labels[2] = {2, 0};
  double want = (0.4076059644443806 + log(5.0)) / 2;
  EXPECT_NEAR(mf_cross_entropy(ctx, x, labels, 0.0f)->data[0], want, 2e-7);
  mf_ctx_free(ctx);
}

TEST(test_cross_entropy_label_smoothing_follows_the_pytorch_formula) {
  /* loss = (1 - eps) * nll + eps / C * sum_c (-log p_c) for x = (1, 2, 3), label 0, eps 0.1:
   * -log p = (2.40760596, 1.40760596, 0.40760596), so 0.9 * 2.40760596 + 0.1 / 3 * 4.22281789. */
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_ctx_tensor_from(ctx, MF_SHAPE(1, 3), (float[]){1, 2, 3});
  const int32_t label = 0;
  double want = 0.9 * 2.4076059644443806 +
                0.1 / 3 * (2.4076059644443806 + 1.4076059644443806 + 0.4076059644443806);
  EXPECT_NEAR(mf_cross_entropy(ctx, x, &label, 0.1f)->data[0], want, 2e-7);
  mf_ctx_free(ctx);
}

TEST(test_cross_entropy_of_a_batch_matches_a_double_reference) {
  mf_ctx *ctx = mf_ctx_new();
  const int N = 37, C = 11;
  mf_tensor *x = mf_ctx_tensor(ctx, MF_SHAPE(N, C));
  fill_uniform(x, 3, -8, 8);
  int32_t labels[37];
  for (int n = 0; n < N; n++) labels[n] = (n * 7) % C;
  for (int k = 0; k < 3; k++) {
    float eps = 0.15f * k;
    double want = ce_ref(x->data, N, C, labels, NULL, eps);
    EXPECT_NEAR(mf_cross_entropy(ctx, x, labels, eps)->data[0], want, 1e-6 * want);
  }
  mf_ctx_free(ctx);
}

TEST(test_cross_entropy_of_large_logits_stays_finite_and_exact) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x =
      mf_ctx_tensor_from(ctx, MF_SHAPE(2, 3), (float[]){1000, 1001, 1002, -1e4f, 0, 1e4f});
  const int32_t labels[2] = {0, 2};
  /* row 0: 2.40760596; row 1: log(1 + e^-1e4 + e^-2e4) = 0 */
  EXPECT_NEAR(mf_cross_entropy(ctx, x, labels, 0.0f)->data[0], 2.4076059644443806 / 2, 1e-7);
  mf_ctx_free(ctx);
}

TEST(test_cross_entropy_soft_with_one_hot_rows_equals_the_index_version) {
  mf_ctx *ctx = mf_ctx_new();
  const int N = 5, C = 4;
  mf_tensor *x = mf_ctx_tensor(ctx, MF_SHAPE(N, C));
  fill_uniform(x, 4, -3, 3);
  const int32_t labels[5] = {3, 0, 1, 1, 2};
  mf_tensor *t = mf_ctx_zeros(ctx, MF_SHAPE(N, C));
  for (int n = 0; n < N; n++) t->data[n * C + labels[n]] = 1;
  for (int k = 0; k < 2; k++) {
    float eps = 0.2f * k;
    float a = mf_cross_entropy(ctx, x, labels, eps)->data[0];
    float b = mf_cross_entropy_soft(ctx, x, t, eps)->data[0];
    EXPECT_NEAR(b, a, 2e-7 * fabs(a));
  }
  mf_ctx_free(ctx);
}

TEST(test_cross_entropy_soft_matches_a_double_reference_for_mixed_targets) {
  /* mixup: each row a blend of two one-hots */
  mf_ctx *ctx = mf_ctx_new();
  const int N = 6, C = 5;
  mf_tensor *x = mf_ctx_tensor(ctx, MF_SHAPE(N, C));
  fill_uniform(x, 5, -4, 4);
  mf_tensor *t = mf_ctx_zeros(ctx, MF_SHAPE(N, C));
  for (int n = 0; n < N; n++) {
    float lam = 0.1f + 0.15f * n;
    t->data[n * C + n % C] += lam;
    t->data[n * C + (n + 2) % C] += 1 - lam;
  }
  double want = ce_ref(x->data, N, C, NULL, t->data, 0.1);
  EXPECT_NEAR(mf_cross_entropy_soft(ctx, x, t, 0.1f)->data[0], want, 1e-6 * want);
  mf_ctx_free(ctx);
}

typedef struct ce_case {
  const int32_t *labels;
  float eps;
} ce_case;

static mf_tensor *f_ce(mf_ctx *ctx, mf_tensor **in, void *user) {
  const ce_case *c = user;
  return mf_cross_entropy(ctx, in[0], c->labels, c->eps);
}

TEST(test_cross_entropy_backward_matches_finite_differences) {
  const int32_t labels[4] = {1, 4, 0, 4};
  for (int k = 0; k < 2; k++) {
    mf_tensor *x = mf_tensor_new(MF_SHAPE(4, 5));
    fill_uniform(x, 6 + k, -2, 2);
    mf_tensor_set_requires_grad(x, 1);
    ce_case c = {labels, k ? 0.25f : 0.0f};
    gradcheck(k ? "cross_entropy, eps 0.25" : "cross_entropy", f_ce, 1, &x, &c, NULL);
    mf_tensor_free(x);
  }
}

TEST(test_cross_entropy_gradient_is_softmax_minus_target_over_n) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_tensor_from_data(MF_SHAPE(2, 3), (float[]){1, 2, 3, 0, 0, 0});
  mf_tensor_set_requires_grad(x, 1);
  const int32_t labels[2] = {2, 1};
  EXPECT(mf_backward(ctx, mf_cross_entropy(ctx, x, labels, 0.0f)) == MF_OK, "%s", mf_error());
  double p[3] = {0.09003057317038046, 0.24472847105479764, 0.6652409557748219};
  double want[6] = {p[0] / 2, p[1] / 2, (p[2] - 1) / 2, 1.0 / 6, (1.0 / 3 - 1) / 2, 1.0 / 6};
  for (int i = 0; i < 6; i++) EXPECT_NEAR(x->grad[i], want[i], 1e-7);
  mf_tensor_free(x);
  mf_ctx_free(ctx);
}

static mf_tensor *f_ce_soft(mf_ctx *ctx, mf_tensor **in, void *user) {
  return mf_cross_entropy_soft(ctx, in[0], in[1], *(const float *)user);
}

TEST(test_cross_entropy_soft_backward_matches_finite_differences_for_both_inputs) {
  for (int k = 0; k < 2; k++) {
    mf_tensor *x = mf_tensor_new(MF_SHAPE(3, 6)), *t = mf_tensor_new(MF_SHAPE(3, 6));
    fill_uniform(x, 8 + k, -2, 2);
    fill_uniform(t, 10 + k, 0, 1);
    for (int n = 0; n < 3; n++) { /* rows that sum to 1, as targets do */
      float s = 0;
      for (int c = 0; c < 6; c++) s += t->data[n * 6 + c];
      for (int c = 0; c < 6; c++) t->data[n * 6 + c] /= s;
    }
    mf_tensor_set_requires_grad(x, 1);
    mf_tensor_set_requires_grad(t, 1);
    mf_tensor *in[2] = {x, t};
    float eps = k ? 0.1f : 0.0f;
    gradcheck(k ? "cross_entropy_soft, eps 0.1" : "cross_entropy_soft", f_ce_soft, 2, in, &eps,
              NULL);
    mf_tensor_free(x);
    mf_tensor_free(t);
  }
}

TEST(test_cross_entropy_soft_without_target_grad_leaves_targets_alone) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_tensor_new(MF_SHAPE(2, 3));
  fill_uniform(x, 12, -1, 1);
  mf_tensor_set_requires_grad(x, 1);
  mf_tensor *t = mf_ctx_zeros(ctx, MF_SHAPE(2, 3));
  t->data[0] = t->data[5] = 1;
  EXPECT(mf_backward(ctx, mf_cross_entropy_soft(ctx, x, t, 0.0f)) == MF_OK, "%s", mf_error());
  EXPECT(t->grad == NULL, "a gradient buffer was made for targets that need none");
  EXPECT(x->grad_state == 1, "logits received no gradient");
  mf_tensor_free(x);
  mf_ctx_free(ctx);
}

static mf_tensor *f_ce_twice(mf_ctx *ctx, mf_tensor **in, void *user) {
  static const int32_t labels[3] = {2, 0, 1};
  return mf_add(ctx, mf_cross_entropy(ctx, in[0], labels, 0.1f),
                mf_cross_entropy_soft(ctx, in[0], in[1], 0.0f));
}

TEST(test_cross_entropy_gradients_accumulate_into_shared_logits) {
  mf_tensor *x = mf_tensor_new(MF_SHAPE(3, 4)), *t = mf_tensor_new(MF_SHAPE(3, 4));
  fill_uniform(x, 13, -2, 2);
  fill_uniform(t, 14, 0, 0.5f);
  mf_tensor_set_requires_grad(x, 1);
  mf_tensor *in[2] = {x, t};
  gradcheck("cross_entropy + cross_entropy_soft", f_ce_twice, 2, in, NULL, NULL);
  mf_tensor_free(x);
  mf_tensor_free(t);
}

TEST(test_cross_entropy_copies_the_labels) {
  /* The caller's label buffer may be reused for the next batch before backward runs. */
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_tensor_from_data(MF_SHAPE(1, 2), (float[]){0, 0});
  mf_tensor_set_requires_grad(x, 1);
  int32_t label = 1;
  mf_tensor *l = mf_cross_entropy(ctx, x, &label, 0.0f);
  label = 0;
  EXPECT(mf_backward(ctx, l) == MF_OK, "%s", mf_error());
  EXPECT_NEAR(x->grad[0], 0.5, 1e-7);
  EXPECT_NEAR(x->grad[1], -0.5, 1e-7);
  mf_tensor_free(x);
  mf_ctx_free(ctx);
}

/* Loss and gradient of a [4096, 10] batch (big enough for the threaded loops). */
static float large_batch_ce(const mf_tensor *x0, const int32_t *labels, float *grad) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_tensor_from_data(mf_tensor_shape(x0), x0->data);
  mf_tensor_set_requires_grad(x, 1);
  mf_tensor *l = mf_cross_entropy(ctx, x, labels, 0.1f);
  float v = l->data[0];
  EXPECT(mf_backward(ctx, l) == MF_OK, "%s", mf_error());
  mf_tensor_read_grad(x, grad);
  mf_tensor_free(x);
  mf_ctx_free(ctx);
  return v;
}

TEST(test_cross_entropy_of_a_large_batch_matches_the_reference_with_any_thread_count) {
  const int N = 4096, C = 10;
  mf_tensor *x = mf_tensor_new(MF_SHAPE(N, C));
  fill_uniform(x, 15, -5, 5);
  int32_t *labels = malloc(N * sizeof(int32_t));
  for (int n = 0; n < N; n++) labels[n] = n % C;
  float *g2 = malloc(sizeof(float) * N * C), *g1 = malloc(sizeof(float) * N * C);
  int threads = mf_num_threads();
  mf_set_num_threads(2);
  float l2 = large_batch_ce(x, labels, g2);
  mf_set_num_threads(1);
  float l1 = large_batch_ce(x, labels, g1);
  mf_set_num_threads(threads);
  EXPECT(l1 == l2, "loss %.9g with 1 thread, %.9g with 2", l1, l2);
  EXPECT(memcmp(g1, g2, sizeof(float) * N * C) == 0, "gradients differ between thread counts");
  double want = ce_ref(x->data, N, C, labels, NULL, 0.1);
  EXPECT_NEAR(l2, want, 1e-6 * want);
  double worst = 0;
  for (int n = 0; n < N; n++) {
    const float *r = x->data + n * C;
    double m = -INFINITY, s = 0;
    for (int c = 0; c < C; c++) m = fmax(m, r[c]);
    for (int c = 0; c < C; c++) s += exp(r[c] - m);
    for (int c = 0; c < C; c++) {
      double g = (exp(r[c] - m) / s - (0.9 * (labels[n] == c) + 0.01)) / N;
      worst = fmax(worst, fabs(g2[n * C + c] - g));
    }
  }
  /* gradients are ~1 / N = 2.4e-4; float keeps ~1e-7 of that */
  EXPECT(worst < 1e-10, "gradient off by %.3g", worst);
  free(g1);
  free(g2);
  free(labels);
  mf_tensor_free(x);
}

static void child_label_out_of_range(void) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_ctx_zeros(ctx, MF_SHAPE(3, 4));
  const int32_t labels[3] = {0, 3, 4};
  mf_cross_entropy(ctx, x, labels, 0.0f);
}

static void child_negative_label(void) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_ctx_zeros(ctx, MF_SHAPE(2, 4));
  const int32_t labels[2] = {-1, 0};
  mf_cross_entropy(ctx, x, labels, 0.0f);
}

TEST(test_cross_entropy_label_out_of_range_aborts_naming_index_and_value) {
  EXPECT(mftest_aborts_with(child_label_out_of_range, "labels[2] = 4"),
         "label 4 of 4 classes accepted");
  EXPECT(mftest_aborts_with(child_negative_label, "labels[0] = -1"), "label -1 accepted");
}

static void child_soft_shape_mismatch(void) {
  mf_ctx *ctx = mf_ctx_new();
  mf_cross_entropy_soft(ctx, mf_ctx_zeros(ctx, MF_SHAPE(2, 4)), mf_ctx_zeros(ctx, MF_SHAPE(2, 5)),
                        0.0f);
}

static void child_smoothing_out_of_range(void) {
  mf_ctx *ctx = mf_ctx_new();
  const int32_t label = 0;
  mf_cross_entropy(ctx, mf_ctx_zeros(ctx, MF_SHAPE(1, 4)), &label, 1.5f);
}

TEST(test_cross_entropy_rejects_bad_shapes_and_smoothing) {
  EXPECT(mftest_aborts_with(child_soft_shape_mismatch, "[2, 4] vs [2, 5]"),
         "target shape not checked");
  EXPECT(mftest_aborts_with(child_smoothing_out_of_range, "label_smoothing 1.5"),
         "label smoothing 1.5 accepted");
}
