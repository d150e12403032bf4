/* Matrix products and nn.Linear: hand-computed values, transposes, batch broadcasting in
 * every direction (the single-GEMM fold, per-item loops serial and parallel), gradients by
 * finite differences for every input, and run-to-run reproducibility. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "melforge/melforge.h"
#include "mftest.h"

static const float A23[6] = {1, 2, 3, 4, 5, 6};     /* [[1, 2, 3], [4, 5, 6]] */
static const float B32[6] = {7, 8, 9, 10, 11, 12};  /* [[7, 8], [9, 10], [11, 12]] */
static const float AB[4] = {58, 64, 139, 154};      /* A23 · B32 */
static const float A23T[6] = {1, 4, 2, 5, 3, 6};    /* A23 stored transposed, [3, 2] */
static const float B32T[6] = {7, 9, 11, 8, 10, 12}; /* B32 stored transposed, [2, 3] */

/* Reference product of one item: op(a) [m, k] · op(b) [k, n] in double. */
static void ref_item(const float *a, const float *b, int ta, int tb, int m, int n, int k,
                     double *c) {
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double s = 0;
      for (int l = 0; l < k; l++) {
        double av = ta ? a[l * m + i] : a[i * k + l];
        double bv = tb ? b[j * k + l] : b[l * n + j];
        s += av * bv;
      }
      c[i * n + j] = s;
    }
}

TEST(test_matmul_2x3_by_3x2_matches_hand_computation) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *c = mf_matmul(ctx, mf_ctx_tensor_from(ctx, MF_SHAPE(2, 3), A23),
                           mf_ctx_tensor_from(ctx, MF_SHAPE(3, 2), B32));
  EXPECT_EQ_INT(c->ndim, 2);
  EXPECT_EQ_INT(c->shape[0], 2);
  EXPECT_EQ_INT(c->shape[1], 2);
  for (int i = 0; i < 4; i++) EXPECT_NEAR(c->data[i], AB[i], 0);
  mf_ctx_free(ctx);
}

TEST(test_matmul_transpose_flags_use_the_transposed_operands) {
  mf_ctx *ctx = mf_ctx_new();
  const float *as[2] = {A23, A23T}, *bs[2] = {B32, B32T};
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      mf_tensor *a = mf_ctx_tensor_from(ctx, ta ? MF_SHAPE(3, 2) : MF_SHAPE(2, 3), as[ta]);
      mf_tensor *b = mf_ctx_tensor_from(ctx, tb ? MF_SHAPE(2, 3) : MF_SHAPE(3, 2), bs[tb]);
      mf_tensor *c = mf_matmul_ex(ctx, a, b, ta, tb);
      EXPECT(c->shape[0] == 2 && c->shape[1] == 2, "ta %d tb %d: wrong shape", ta, tb);
      for (int i = 0; i < 4; i++) EXPECT_NEAR(c->data[i], AB[i], 0);
    }
  mf_ctx_free(ctx);
}

TEST(test_matmul_batched_left_operand_shares_the_right_one) {
  /* [2, 2, 3] x [3, 2]: item 0 is A23, item 1 is A23 * -1. */
  mf_ctx *ctx = mf_ctx_new();
  float a[12];
  for (int i = 0; i < 6; i++) a[i] = A23[i], a[6 + i] = -A23[i];
  mf_tensor *c = mf_matmul(ctx, mf_ctx_tensor_from(ctx, MF_SHAPE(2, 2, 3), a),
                           mf_ctx_tensor_from(ctx, MF_SHAPE(3, 2), B32));
  EXPECT_EQ_INT(c->ndim, 3);
  EXPECT_EQ_INT(c->shape[0], 2);
  for (int i = 0; i < 4; i++) {
    EXPECT_NEAR(c->data[i], AB[i], 0);
    EXPECT_NEAR(c->data[4 + i], -AB[i], 0);
  }
  mf_ctx_free(ctx);
}

TEST(test_matmul_shared_left_operand_against_batched_right_one) {
  /* [2, 3] x [2, 3, 2]: item 1 of b is B32 * 2. */
  mf_ctx *ctx = mf_ctx_new();
  float b[12];
  for (int i = 0; i < 6; i++) b[i] = B32[i], b[6 + i] = 2 * B32[i];
  mf_tensor *c = mf_matmul(ctx, mf_ctx_tensor_from(ctx, MF_SHAPE(2, 3), A23),
                           mf_ctx_tensor_from(ctx, MF_SHAPE(2, 3, 2), b));
  EXPECT_EQ_INT(c->ndim, 3);
  EXPECT_EQ_INT(c->shape[0], 2);
  for (int i = 0; i < 4; i++) {
    EXPECT_NEAR(c->data[i], AB[i], 0);
    EXPECT_NEAR(c->data[4 + i], 2 * AB[i], 0);
  }
  mf_ctx_free(ctx);
}

TEST(test_matmul_broadcasts_batch_dimensions_both_ways) {
  /* a [2, 1, 2, 3] x b [3, 3, 2] -> [2, 3, 2, 2]: item (i, j) = a[i, 0] · b[j]. Also with
   * transposes on both operands. Values are small integers: exact in float. */
  mf_ctx *ctx = mf_ctx_new();
  for (int t = 0; t < 2; t++) {
    mf_tensor *a = mf_ctx_tensor(ctx, t ? MF_SHAPE(2, 1, 3, 2) : MF_SHAPE(2, 1, 2, 3));
    mf_tensor *b = mf_ctx_tensor(ctx, t ? MF_SHAPE(3, 2, 3) : MF_SHAPE(3, 3, 2));
    for (int i = 0; i < 12; i++) a->data[i] = (float)((i * 7) % 5 - 2);
    for (int i = 0; i < 18; i++) b->data[i] = (float)((i * 3) % 7 - 3);
    mf_tensor *c = mf_matmul_ex(ctx, a, b, t, t);
    EXPECT_EQ_INT(c->ndim, 4);
    EXPECT(c->shape[0] == 2 && c->shape[1] == 3 && c->shape[2] == 2 && c->shape[3] == 2,
           "wrong output shape");
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 3; j++) {
        double want[4];
        ref_item(a->data + i * 6, b->data + j * 6, t, t, 2, 2, 3, want);
        for (int e = 0; e < 4; e++) EXPECT_NEAR(c->data[(i * 3 + j) * 4 + e], want[e], 0);
      }
  }
  mf_ctx_free(ctx);
}

TEST(test_matmul_many_batch_items_match_the_reference) {
  /* Enough items to take the per-item parallel path (and odd sizes), attention-shaped:
   * q [8, 5, 7] · k [8, 6, 7]^T. Tolerance: float GEMM vs double reference, O(1) values,
   * k = 7 terms. */
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *q = mf_ctx_tensor(ctx, MF_SHAPE(8, 5, 7)), *k = mf_ctx_tensor(ctx, MF_SHAPE(8, 6, 7));
  fill_uniform(q, 1, -1, 1);
  fill_uniform(k, 2, -1, 1);
  mf_tensor *s = mf_matmul_ex(ctx, q, k, 0, 1);
  EXPECT(s->shape[0] == 8 && s->shape[1] == 5 && s->shape[2] == 6, "wrong output shape");
  for (int b = 0; b < 8; b++) {
    double want[30];
    ref_item(q->data + b * 35, k->data + b * 42, 0, 1, 5, 6, 7, want);
    for (int e = 0; e < 30; e++) EXPECT_NEAR(s->data[b * 30 + e], want[e], 1e-5);
  }
  mf_ctx_free(ctx);
}

/* ---- gradients ------------------------------------------------------------------------ */

typedef struct mm_case {
  mf_shape a, b;
  int ta, tb;
} mm_case;

static mf_tensor *f_matmul(mf_ctx *ctx, mf_tensor **in, void *user) {
  const mm_case *c = user;
  return mf_matmul_ex(ctx, in[0], in[1], c->ta, c->tb);
}

static void check_matmul_grads(const char *what, mf_shape as, mf_shape bs) {
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      mm_case c = {as, bs, ta, tb};
      /* The shapes are given untransposed; swap the last two dims for a transposed operand. */
      if (ta) {
        int64_t t = c.a.d[c.a.ndim - 1];
        c.a.d[c.a.ndim - 1] = c.a.d[c.a.ndim - 2], c.a.d[c.a.ndim - 2] = t;
      }
      if (tb) {
        int64_t t = c.b.d[c.b.ndim - 1];
        c.b.d[c.b.ndim - 1] = c.b.d[c.b.ndim - 2], c.b.d[c.b.ndim - 2] = t;
      }
      mf_tensor *a = mf_tensor_new(c.a), *b = mf_tensor_new(c.b);
      fill_uniform(a, 11, -1, 1);
      fill_uniform(b, 12, -1, 1);
      mf_tensor_set_requires_grad(a, 1);
      mf_tensor_set_requires_grad(b, 1);
      mf_tensor *in[2] = {a, b};
      char label[96];
      snprintf(label, sizeof label, "matmul %s ta %d tb %d", what, ta, tb);
      gradcheck(label, f_matmul, 2, in, &c, NULL);
      mf_tensor_free(a);
      mf_tensor_free(b);
    }
}

TEST(test_matmul_2d_backward_matches_finite_differences) {
  check_matmul_grads("2-d", MF_SHAPE(3, 4), MF_SHAPE(4, 5));
}

TEST(test_matmul_batched_times_shared_backward_matches_finite_differences) {
  /* The fold into one GEMM (and its transposed variants, which do not fold). */
  check_matmul_grads("[2,3,3,4] x [4,5]", MF_SHAPE(2, 3, 3, 4), MF_SHAPE(4, 5));
}

TEST(test_matmul_shared_times_batched_backward_matches_finite_differences) {
  check_matmul_grads("[3,4] x [3,4,2]", MF_SHAPE(3, 4), MF_SHAPE(3, 4, 2));
}

TEST(test_matmul_fully_batched_backward_matches_finite_differences) {
  /* 4 items: the per-item parallel path with two threads. */
  check_matmul_grads("[4,3,5] x [4,5,2]", MF_SHAPE(4, 3, 5), MF_SHAPE(4, 5, 2));
}

TEST(test_matmul_cross_broadcast_backward_matches_finite_differences) {
  /* Each operand is broadcast along a different batch dimension: both gradients sum. */
  check_matmul_grads("[2,1,3,4] x [3,4,2]", MF_SHAPE(2, 1, 3, 4), MF_SHAPE(3, 4, 2));
}

static mf_tensor *f_gram(mf_ctx *ctx, mf_tensor **in, void *user) {
  return mf_matmul_ex(ctx, in[0], in[0], 0, 1);
}

TEST(test_matmul_of_a_tensor_with_itself_accumulates_both_gradients) {
  /* x · x^T: dx gets contributions as the left and as the right operand. */
  mf_tensor *x = mf_tensor_new(MF_SHAPE(2, 3, 4));
  fill_uniform(x, 5, -1, 1);
  mf_tensor_set_requires_grad(x, 1);
  gradcheck("x x^T", f_gram, 1, &x, NULL, NULL);
  mf_tensor_free(x);
}

static void matmul_grads_once(const mf_tensor *a0, const mf_tensor *b0, float *ga, float *gb) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *a = mf_tensor_from_data(mf_tensor_shape(a0), a0->data);
  mf_tensor *b = mf_tensor_from_data(mf_tensor_shape(b0), b0->data);
  mf_tensor_set_requires_grad(a, 1);
  mf_tensor_set_requires_grad(b, 1);
  mf_tensor *c = mf_matmul(ctx, a, b);
  mf_tensor *loss = mf_sum(ctx, mf_mul(ctx, c, c), NULL, 0, 0);
  EXPECT(mf_backward(ctx, loss) == MF_OK, "%s", mf_error());
  mf_tensor_read_grad(a, ga);
  mf_tensor_read_grad(b, gb);
  mf_tensor_free(a);
  mf_tensor_free(b);
  mf_ctx_free(ctx);
}

TEST(test_matmul_shared_operand_gradient_is_bit_reproducible) {
  /* The shared b sums 16 per-item products; the order is fixed, so two runs agree exactly. */
  mf_tensor *a = mf_tensor_new(MF_SHAPE(16, 1, 9, 33)), *b = mf_tensor_new(MF_SHAPE(2, 33, 17));
  fill_uniform(a, 1, -1, 1);
  fill_uniform(b, 2, -1, 1);
  float *ga1 = malloc(sizeof(float) * a->numel), *ga2 = malloc(sizeof(float) * a->numel);
  float *gb1 = malloc(sizeof(float) * b->numel), *gb2 = malloc(sizeof(float) * b->numel);
  matmul_grads_once(a, b, ga1, gb1);
  matmul_grads_once(a, b, ga2, gb2);
  EXPECT(memcmp(ga1, ga2, sizeof(float) * a->numel) == 0, "dA differs between runs");
  EXPECT(memcmp(gb1, gb2, sizeof(float) * b->numel) == 0, "dB differs between runs");
  free(ga1), free(ga2), free(gb1), free(gb2);
  mf_tensor_free(a);
  mf_tensor_free(b);
}

/* ---- linear ---------------------------------------------------------------------------- */

TEST(test_linear_with_bias_matches_hand_computation) {
  /* x [2, 3] · w[2, 3]^T + b: rows (1,2,3), (4,5,6); w rows (1,0,-1), (2,1,0); b (10, 20). */
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_ctx_tensor_from(ctx, MF_SHAPE(2, 3), A23);
  mf_tensor *w = mf_ctx_tensor_from(ctx, MF_SHAPE(2, 3), (float[]){1, 0, -1, 2, 1, 0});
  mf_tensor *b = mf_ctx_tensor_from(ctx, MF_SHAPE(2), (float[]){10, 20});
  mf_tensor *y = mf_linear(ctx, x, w, b);
  const float want[4] = {1 - 3 + 10, 2 + 2 + 20, 4 - 6 + 10, 8 + 5 + 20};
  EXPECT(y->ndim == 2 && y->shape[0] == 2 && y->shape[1] == 2, "wrong output shape");
  for (int i = 0; i < 4; i++) EXPECT_NEAR(y->data[i], want[i], 0);
  mf_ctx_free(ctx);
}

TEST(test_linear_without_bias_matches_hand_computation) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_ctx_tensor_from(ctx, MF_SHAPE(2, 3), A23);
  mf_tensor *w = mf_ctx_tensor_from(ctx, MF_SHAPE(2, 3), (float[]){1, 0, -1, 2, 1, 0});
  mf_tensor *y = mf_linear(ctx, x, w, NULL);
  const float want[4] = {-2, 4, -2, 13};
  for (int i = 0; i < 4; i++) EXPECT_NEAR(y->data[i], want[i], 0);
  mf_ctx_free(ctx);
}

TEST(test_linear_applies_to_every_leading_index_and_to_vectors) {
  /* [2, 2, 3] -> [2, 2, 2]: each row as in the 2-D case; a 1-D [3] input gives [2]. */
  mf_ctx *ctx = mf_ctx_new();
  float x[12];
  for (int i = 0; i < 6; i++) x[i] = A23[i], x[6 + i] = A23[5 - i];
  mf_tensor *w = mf_ctx_tensor_from(ctx, MF_SHAPE(2, 3), (float[]){1, 0, -1, 2, 1, 0});
  mf_tensor *b = mf_ctx_tensor_from(ctx, MF_SHAPE(2), (float[]){10, 20});
  mf_tensor *y = mf_linear(ctx, mf_ctx_tensor_from(ctx, MF_SHAPE(2, 2, 3), x), w, b);
  EXPECT(y->ndim == 3 && y->shape[0] == 2 && y->shape[1] == 2 && y->shape[2] == 2,
         "wrong output shape");
  for (int r = 0; r < 4; r++) {
    const float *xr = x + 3 * r;
    EXPECT_NEAR(y->data[2 * r], xr[0] - xr[2] + 10, 0);
    EXPECT_NEAR(y->data[2 * r + 1], 2 * xr[0] + xr[1] + 20, 0);
  }
  mf_tensor *v = mf_linear(ctx, mf_ctx_tensor_from(ctx, MF_SHAPE(3), A23), w, b);
  EXPECT(v->ndim == 1 && v->shape[0] == 2, "a vector input should give a vector");
  EXPECT_NEAR(v->data[0], 8, 0);
  EXPECT_NEAR(v->data[1], 24, 0);
  mf_ctx_free(ctx);
}

static mf_tensor *f_linear(mf_ctx *ctx, mf_tensor **in, void *user) {
  return mf_linear(ctx, in[0], in[1], *(int *)user ? in[2] : NULL);
}

TEST(test_linear_backward_matches_finite_differences) {
  const mf_shape xs[] = {MF_SHAPE(4, 5), MF_SHAPE(2, 3, 5), MF_SHAPE(5)};
  for (int k = 0; k < 3; k++)
    for (int bias = 0; bias < 2; bias++) {
      mf_tensor *x = mf_tensor_new(xs[k]), *w = mf_tensor_new(MF_SHAPE(3, 5));
      mf_tensor *b = mf_tensor_new(MF_SHAPE(3));
      fill_uniform(x, 1, -1, 1);
      fill_uniform(w, 2, -1, 1);
      fill_uniform(b, 3, -1, 1);
      mf_tensor_set_requires_grad(x, 1);
      mf_tensor_set_requires_grad(w, 1);
      mf_tensor_set_requires_grad(b, bias);
      mf_tensor *in[3] = {x, w, b};
      char label[64];
      snprintf(label, sizeof label, "linear x shape %d bias %d", k, bias);
      gradcheck(label, f_linear, 3, in, &bias, NULL);
      mf_tensor_free(x);
      mf_tensor_free(w);
      mf_tensor_free(b);
    }
}

TEST(test_linear_bias_gradient_sums_many_rows_exactly) {
  /* 300 rows (several fixed row blocks) of an all-ones output gradient: db = 300 exactly,
   * the same with one thread and two. */
  const int saved_threads = omp_get_max_threads();
  for (int threads = 1; threads <= 2; threads++) {
    omp_set_num_threads(threads);
    mf_ctx *ctx = mf_ctx_new();
    mf_tensor *x = mf_ctx_zeros(ctx, MF_SHAPE(300, 4));
    mf_tensor *w = mf_tensor_new(MF_SHAPE(130, 4)), *b = mf_tensor_new(MF_SHAPE(130));
    mf_tensor_set_requires_grad(b, 1);
    mf_tensor *y = mf_linear(ctx, x, w, b);
    float *ones = malloc(sizeof(float) * y->numel);
    for (int64_t i = 0; i < y->numel; i++) ones[i] = 1.0f;
    EXPECT(mf_backward_with_grad(ctx, y, ones) == MF_OK, "%s", mf_error());
    for (int j = 0; j < 130; j++) EXPECT_NEAR(b->grad[j], 300, 0);
    free(ones);
    mf_tensor_free(w);
    mf_tensor_free(b);
    mf_ctx_free(ctx);
  }
  omp_set_num_threads(saved_threads);
}
