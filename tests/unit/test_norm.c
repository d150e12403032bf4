/* Batch norm and layer norm: normalised statistics, PyTorch's running-statistics update,
 * eval mode, the affine=False / track_running_stats=False variants, gradients by finite
 * differences for every input and layout, independence from the output's data, and
 * independence from the thread count. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "melforge/melforge.h"
#include "mftest.h"

/* Mean and biased variance of channel c of x [N, C, S] (S = product of the trailing dims). */
static void channel_moments(const mf_tensor *x, int64_t c, double *mean, double *var) {
  const int64_t N = x->shape[0], C = x->shape[1], S = x->numel / (N * C);
  double s = 0, s2 = 0;
  for (int64_t n = 0; n < N; n++)
    for (int64_t i = 0; i < S; i++) s += x->data[(n * C + c) * S + i];
  *mean = s / (double)(N * S);
  for (int64_t n = 0; n < N; n++)
    for (int64_t i = 0; i < S; i++) {
      double d = x->data[(n * C + c) * S + i] - *mean;
      s2 += d * d;
    }
  *var = s2 / (double)(N * S);
}

TEST(test_batchnorm_training_output_has_zero_mean_unit_variance_per_channel) {
  /* Inputs with channel c offset by 10 c and scaled by (c + 1), in the three layouts and a
   * size that takes the parallel paths. eps = 1e-5 shrinks the variance by a factor
   * var / (var + eps): at most 3e-5 here, hence the 1e-4 tolerance. */
  const mf_shape shapes[] = {MF_SHAPE(16, 3), MF_SHAPE(4, 3, 7), MF_SHAPE(2, 3, 5, 4),
                             MF_SHAPE(8, 5, 32, 40), MF_SHAPE(256, 300)};
  for (int k = 0; k < 5; k++) {
    mf_ctx *ctx = mf_ctx_new();
    mf_tensor *x = mf_ctx_tensor(ctx, shapes[k]);
    fill_uniform(x, 10 + k, -1, 1);
    const int64_t N = x->shape[0], C = x->shape[1], S = x->numel / (N * C);
    for (int64_t i = 0; i < x->numel; i++) {
      int64_t c = (i / S) % C;
      x->data[i] = x->data[i] * (float)(c + 1) + 10.0f * (float)c;
    }
    mf_tensor *y = mf_batchnorm(ctx, x, NULL, NULL, NULL, NULL, 1, 0.1f, 1e-5f);
    for (int64_t c = 0; c < C; c++) {
      double m, v;
      channel_moments(y, c, &m, &v);
      EXPECT_NEAR(m, 0, 1e-4);
      EXPECT_NEAR(v, 1, 1e-4);
    }
    mf_ctx_free(ctx);
  }
}

TEST(test_batchnorm_training_applies_gamma_and_beta) {
  /* y = xhat * gamma + beta: per channel mean beta[c], standard deviation gamma[c]. */
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_ctx_tensor(ctx, MF_SHAPE(4, 2, 3, 3));
  fill_uniform(x, 3, -2, 2);
  mf_tensor *g = mf_ctx_tensor_from(ctx, MF_SHAPE(2), (float[]){2.0f, 0.5f});
  mf_tensor *b = mf_ctx_tensor_from(ctx, MF_SHAPE(2), (float[]){-1.0f, 3.0f});
  mf_tensor *y = mf_batchnorm(ctx, x, g, b, NULL, NULL, 1, 0.1f, 1e-5f);
  for (int c = 0; c < 2; c++) {
    double m, v;
    channel_moments(y, c, &m, &v);
    EXPECT_NEAR(m, b->data[c], 1e-5);
    EXPECT_NEAR(sqrt(v), g->data[c], 1e-4);
  }
  mf_ctx_free(ctx);
}

TEST(test_batchnorm_running_stats_follow_pytorch_after_two_steps) {
  /* running = (1 - momentum) running + momentum batch_stat, the variance unbiased
   * (n / (n - 1)), starting from PyTorch's initial mean 0, variance 1. Two batches of
   * [3, 2, 2]: n = 6 per channel. Reference in double; tolerance 1e-6 (float storage). */
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *rm = mf_tensor_new(MF_SHAPE(2)), *rv = mf_tensor_new(MF_SHAPE(2));
  mf_tensor_fill(rv, 1.0f);
  const float mom = 0.1f;
  double want_m[2] = {0, 0}, want_v[2] = {1, 1};
  for (int step = 0; step < 2; step++) {
    mf_ctx_reset(ctx);
    mf_tensor *x = mf_ctx_tensor(ctx, MF_SHAPE(3, 2, 2));
    fill_uniform(x, 100 + step, -1, 3);
    for (int c = 0; c < 2; c++) {
      double m, v;
      channel_moments(x, c, &m, &v);
      want_m[c] = (1 - mom) * want_m[c] + mom * m;
      want_v[c] = (1 - mom) * want_v[c] + mom * v * 6.0 / 5.0;
    }
    uint32_t version = *rm->version;
    mf_batchnorm(ctx, x, NULL, NULL, rm, rv, 1, mom, 1e-5f);
    EXPECT(*rm->version != version, "an in-place update of running_mean must bump its version");
  }
  for (int c = 0; c < 2; c++) {
    EXPECT_NEAR(rm->data[c], want_m[c], 1e-6);
    EXPECT_NEAR(rv->data[c], want_v[c], 1e-6);
  }
  mf_tensor_free(rm);
  mf_tensor_free(rv);
  mf_ctx_free(ctx);
}

TEST(test_batchnorm_eval_uses_running_stats_and_leaves_them_alone) {
  /* [2, 2]: y = (x - rm) / sqrt(rv + eps) * gamma + beta with rm (1, -2), rv (4, 0.25). */
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *rm = mf_tensor_from_data(MF_SHAPE(2), (float[]){1, -2});
  mf_tensor *rv = mf_tensor_from_data(MF_SHAPE(2), (float[]){4, 0.25f});
  mf_tensor *g = mf_ctx_tensor_from(ctx, MF_SHAPE(2), (float[]){3, 1});
  mf_tensor *b = mf_ctx_tensor_from(ctx, MF_SHAPE(2), (float[]){0.5f, 0});
  mf_tensor *x = mf_ctx_tensor_from(ctx, MF_SHAPE(2, 2), (float[]){5, -2, 1, 0});
  const float eps = 1e-5f;
  mf_tensor *y = mf_batchnorm(ctx, x, g, b, rm, rv, 0, 0.1f, eps);
  const double want[4] = {4 / sqrt(4 + eps) * 3 + 0.5, 0, 0.5, 2 / sqrt(0.25 + eps)};
  for (int i = 0; i < 4; i++) EXPECT_NEAR(y->data[i], want[i], 1e-6);
  EXPECT(rm->data[0] == 1 && rm->data[1] == -2 && rv->data[0] == 4 && rv->data[1] == 0.25f,
         "eval mode changed the running statistics");
  mf_tensor_free(rm);
  mf_tensor_free(rv);
  mf_ctx_free(ctx);
}

TEST(test_batchnorm_without_running_stats_uses_batch_stats_in_eval) {
  /* track_running_stats=False: eval mode normalises with the batch's statistics too. */
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_ctx_tensor(ctx, MF_SHAPE(6, 2, 3));
  fill_uniform(x, 8, 0, 5);
  mf_tensor *yt = mf_batchnorm(ctx, x, NULL, NULL, NULL, NULL, 1, 0.1f, 1e-5f);
  mf_tensor *ye = mf_batchnorm(ctx, x, NULL, NULL, NULL, NULL, 0, 0.1f, 1e-5f);
  EXPECT(memcmp(yt->data, ye->data, sizeof(float) * x->numel) == 0,
         "eval without running stats should equal training mode");
  mf_ctx_free(ctx);
}

/* ---- batch norm gradients ------------------------------------------------------------- */

typedef struct bn_case {
  int training, affine, running;
  mf_tensor *rm, *rv;
} bn_case;

static mf_tensor *f_batchnorm(mf_ctx *ctx, mf_tensor **in, void *user) {
  bn_case *c = user;
  if (c->running) {
    /* Fixed running statistics for every evaluation: training updates them in place. */
    mf_tensor_fill(c->rm, 0.3f);
    mf_tensor_fill(c->rv, 1.7f);
  }
  return mf_batchnorm(ctx, in[0], c->affine ? in[1] : NULL, c->affine ? in[2] : NULL,
                      c->running ? c->rm : NULL, c->running ? c->rv : NULL, c->training, 0.1f,
                      1e-5f);
}

static void check_batchnorm_grads(int training, int affine, int running) {
  const mf_shape shapes[] = {MF_SHAPE(5, 3), MF_SHAPE(3, 2, 5), MF_SHAPE(2, 3, 3, 4)};
  for (int k = 0; k < 3; k++) {
    const int64_t C = shapes[k].d[1];
    mf_tensor *x = mf_tensor_new(shapes[k]);
    mf_tensor *g = mf_tensor_new(MF_SHAPE(C)), *b = mf_tensor_new(MF_SHAPE(C));
    bn_case c = {training, affine, running, mf_tensor_new(MF_SHAPE(C)), mf_tensor_new(MF_SHAPE(C))};
    fill_uniform(x, 20 + k, -2, 2);
    fill_uniform(g, 30, 0.5f, 1.5f);
    fill_uniform(b, 31, -1, 1);
    mf_tensor_set_requires_grad(x, 1);
    mf_tensor_set_requires_grad(g, affine);
    mf_tensor_set_requires_grad(b, affine);
    mf_tensor *in[3] = {x, g, b};
    char label[96];
    snprintf(label, sizeof label, "batchnorm shape %d training %d affine %d running %d", k,
             training, affine, running);
    gradcheck(label, f_batchnorm, 3, in, &c, NULL);
    mf_tensor_free(x);
    mf_tensor_free(g);
    mf_tensor_free(b);
    mf_tensor_free(c.rm);
    mf_tensor_free(c.rv);
  }
}

TEST(test_batchnorm_training_backward_matches_finite_differences) {
  check_batchnorm_grads(1, 1, 1);
}

TEST(test_batchnorm_training_without_affine_backward_matches_finite_differences) {
  check_batchnorm_grads(1, 0, 0);
}

TEST(test_batchnorm_eval_backward_matches_finite_differences) { check_batchnorm_grads(0, 1, 1); }

/* Gradients of sum(r * batchnorm(x)) for x [8, 6, 30, 30] (large enough for the parallel
 * paths); scribble: overwrite the output and
 * bump its version before backward, as an in-place ReLU would. */
static void batchnorm_grads(int scribble, float *gx, float *gg, float *gb) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_tensor_new(MF_SHAPE(8, 6, 30, 30));
  mf_tensor *g = mf_tensor_new(MF_SHAPE(6)), *b = mf_tensor_new(MF_SHAPE(6));
  fill_uniform(x, 1, -1, 2);
  fill_uniform(g, 2, 0.5f, 1.5f);
  fill_uniform(b, 3, -1, 1);
  mf_tensor_set_requires_grad(x, 1);
  mf_tensor_set_requires_grad(g, 1);
  mf_tensor_set_requires_grad(b, 1);
  mf_tensor *y = mf_batchnorm(ctx, x, g, b, NULL, NULL, 1, 0.1f, 1e-5f);
  float *r = malloc(sizeof(float) * y->numel);
  fill_uniform(&(mf_tensor){.data = r, .numel = y->numel}, 4, -1, 1);
  if (scribble) {
    mf_tensor_fill(y, 123.0f);
    (*y->version)++;
  }
  EXPECT(mf_backward_with_grad(ctx, y, r) == MF_OK, "%s", mf_error());
  mf_tensor_read_grad(x, gx);
  mf_tensor_read_grad(g, gg);
  mf_tensor_read_grad(b, gb);
  free(r);
  mf_tensor_free(x);
  mf_tensor_free(g);
  mf_tensor_free(b);
  mf_ctx_free(ctx);
}

TEST(test_batchnorm_backward_does_not_read_its_output) {
  /* A later in-place op (ReLU) may overwrite the output: backward must neither complain nor
   * change its result. */
  const int64_t n = 8 * 6 * 30 * 30;
  float *gx1 = malloc(sizeof(float) * n), *gx2 = malloc(sizeof(float) * n);
  float gg1[6], gg2[6], gb1[6], gb2[6];
  batchnorm_grads(0, gx1, gg1, gb1);
  batchnorm_grads(1, gx2, gg2, gb2);
  EXPECT(memcmp(gx1, gx2, sizeof(float) * n) == 0, "dx changed when the output was overwritten");
  EXPECT(memcmp(gg1, gg2, sizeof gg1) == 0 && memcmp(gb1, gb2, sizeof gb1) == 0,
         "dgamma / dbeta changed when the output was overwritten");
  free(gx1);
  free(gx2);
}

TEST(test_batchnorm_results_do_not_depend_on_thread_count) {
  const int64_t n = 8 * 6 * 30 * 30;
  float *gx1 = malloc(sizeof(float) * n), *gx2 = malloc(sizeof(float) * n);
  float gg1[6], gg2[6], gb1[6], gb2[6];
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  batchnorm_grads(0, gx1, gg1, gb1);
  omp_set_num_threads(2);
  batchnorm_grads(0, gx2, gg2, gb2);
  omp_set_num_threads(saved);
  EXPECT(memcmp(gx1, gx2, sizeof(float) * n) == 0, "dx differs between 1 and 2 threads");
  EXPECT(memcmp(gg1, gg2, sizeof gg1) == 0 && memcmp(gb1, gb2, sizeof gb1) == 0,
         "dgamma / dbeta differ between 1 and 2 threads");
  free(gx1);
  free(gx2);
}

/* ---- layer norm -------------------------------------------------------------------------- */

TEST(test_layernorm_matches_hand_computation) {
  /* Row (1, 2, 3, 4): mean 2.5, biased variance 1.25. */
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_ctx_tensor_from(ctx, MF_SHAPE(1, 4), (float[]){1, 2, 3, 4});
  const float eps = 1e-5f;
  mf_tensor *y = mf_layernorm(ctx, x, NULL, NULL, eps);
  for (int i = 0; i < 4; i++) EXPECT_NEAR(y->data[i], (i + 1 - 2.5) / sqrt(1.25 + eps), 1e-6);
  mf_ctx_free(ctx);
}

TEST(test_layernorm_rows_have_zero_mean_unit_variance_times_gamma_plus_beta) {
  /* [3, 4, 50] with a different offset and scale per row: (y - beta) / gamma has mean 0 and
   * (biased) variance 1 per row, up to eps / var <= 1e-4 and float rounding. */
  mf_ctx *ctx = mf_ctx_new();
  const int D = 50, R = 12;
  mf_tensor *x = mf_ctx_tensor(ctx, MF_SHAPE(3, 4, 50));
  fill_uniform(x, 5, -1, 1);
  for (int r = 0; r < R; r++)
    for (int d = 0; d < D; d++) x->data[r * D + d] = x->data[r * D + d] * (r + 1) + 7 * r;
  mf_tensor *g = mf_ctx_tensor(ctx, MF_SHAPE(50)), *b = mf_ctx_tensor(ctx, MF_SHAPE(50));
  fill_uniform(g, 6, 0.5f, 2);
  fill_uniform(b, 7, -1, 1);
  mf_tensor *y = mf_layernorm(ctx, x, g, b, 1e-5f);
  EXPECT(y->ndim == 3 && y->shape[2] == 50, "wrong output shape");
  for (int r = 0; r < R; r++) {
    double s = 0, s2 = 0;
    for (int d = 0; d < D; d++) {
      double z = (y->data[r * D + d] - b->data[d]) / g->data[d];
      s += z;
      s2 += z * z;
    }
    EXPECT_NEAR(s / D, 0, 1e-5);
    EXPECT_NEAR(s2 / D, 1, 2e-4);
  }
  mf_ctx_free(ctx);
}

static mf_tensor *f_layernorm(mf_ctx *ctx, mf_tensor **in, void *user) {
  const int *v = user; /* gamma given, beta given */
  return mf_layernorm(ctx, in[0], v[0] ? in[1] : NULL, v[1] ? in[2] : NULL, 1e-5f);
}

TEST(test_layernorm_backward_matches_finite_differences) {
  const mf_shape shapes[] = {MF_SHAPE(7), MF_SHAPE(4, 7), MF_SHAPE(2, 3, 7)};
  for (int k = 0; k < 3; k++)
    for (int variant = 0; variant < 4; variant++) {
      int v[2] = {variant & 1, variant >> 1};
      mf_tensor *x = mf_tensor_new(shapes[k]);
      mf_tensor *g = mf_tensor_new(MF_SHAPE(7)), *b = mf_tensor_new(MF_SHAPE(7));
      fill_uniform(x, 40 + k, -2, 2);
      fill_uniform(g, 41, 0.5f, 1.5f);
      fill_uniform(b, 42, -1, 1);
      mf_tensor_set_requires_grad(x, 1);
      mf_tensor_set_requires_grad(g, v[0]);
      mf_tensor_set_requires_grad(b, v[1]);
      mf_tensor *in[3] = {x, g, b};
      char label[64];
      snprintf(label, sizeof label, "layernorm shape %d gamma %d beta %d", k, v[0], v[1]);
      gradcheck(label, f_layernorm, 3, in, v, NULL);
      mf_tensor_free(x);
      mf_tensor_free(g);
      mf_tensor_free(b);
    }
}

static void layernorm_grads(float *gx, float *gg, float *gb) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_tensor_new(MF_SHAPE(300, 130));
  mf_tensor *g = mf_tensor_new(MF_SHAPE(130)), *b = mf_tensor_new(MF_SHAPE(130));
  fill_uniform(x, 1, -1, 2);
  fill_uniform(g, 2, 0.5f, 1.5f);
  fill_uniform(b, 3, -1, 1);
  mf_tensor_set_requires_grad(x, 1);
  mf_tensor_set_requires_grad(g, 1);
  mf_tensor_set_requires_grad(b, 1);
  mf_tensor *y = mf_layernorm(ctx, x, g, b, 1e-5f);
  float *r = malloc(sizeof(float) * y->numel);
  fill_uniform(&(mf_tensor){.data = r, .numel = y->numel}, 4, -1, 1);
  EXPECT(mf_backward_with_grad(ctx, y, r) == MF_OK, "%s", mf_error());
  mf_tensor_read_grad(x, gx);
  mf_tensor_read_grad(g, gg);
  mf_tensor_read_grad(b, gb);
  free(r);
  mf_tensor_free(x);
  mf_tensor_free(g);
  mf_tensor_free(b);
  mf_ctx_free(ctx);
}

TEST(test_layernorm_gradients_do_not_depend_on_thread_count) {
  /* 300 rows sum into dgamma / dbeta in fixed row blocks. */
  const int64_t n = 300 * 130;
  float *gx1 = malloc(sizeof(float) * n), *gx2 = malloc(sizeof(float) * n);
  float gg1[130], gg2[130], gb1[130], gb2[130];
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  layernorm_grads(gx1, gg1, gb1);
  omp_set_num_threads(2);
  layernorm_grads(gx2, gg2, gb2);
  omp_set_num_threads(saved);
  EXPECT(memcmp(gx1, gx2, sizeof(float) * n) == 0, "dx differs between 1 and 2 threads");
  EXPECT(memcmp(gg1, gg2, sizeof gg1) == 0 && memcmp(gb1, gb2, sizeof gb1) == 0,
         "dgamma / dbeta differ between 1 and 2 threads");
  free(gx1);
  free(gx2);
}
