/* gradcheck.c — see gradcheck.h. */
#include "gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mftest.h"

void fill_uniform(mf_tensor *t, uint64_t seed, float lo, float hi) {
  mf_rng r = mf_rng_stream(seed, MF_RNG_USER + 7);
  mf_rng_fill_uniform(&r, t->data, t->numel, lo, hi);
}

static double project(const mf_tensor *out, const float *r) {
  double s = 0;
  for (int64_t i = 0; i < out->numel; i++) s += (double)out->data[i] * r[i];
  return s;
}

static double eval_loss(mf_ctx *ctx, gradcheck_fn f, mf_tensor **in, void *user, const float *r) {
  mf_ctx_reset(ctx);
  mf_rng drop = mf_rng_stream(99, MF_RNG_DROPOUT);
  mf_ctx_set_dropout_rng(ctx, &drop);
  int prev = mf_ctx_set_grad_enabled(ctx, 0);
  mf_tensor *out = f(ctx, in, user);
  mf_ctx_set_grad_enabled(ctx, prev);
  return project(out, r);
}

int gradcheck(const char *label, gradcheck_fn f, int n_in, mf_tensor **in, void *user,
              const gradcheck_opts *opts) {
  double eps = opts && opts->eps > 0 ? opts->eps : 1e-3;
  double atol = opts && opts->atol > 0 ? opts->atol : 2e-3;
  double rtol = opts && opts->rtol > 0 ? opts->rtol : 1e-2;
  mf_ctx *ctx = mf_ctx_new();

  /* Analytic pass. */
  mf_rng drop = mf_rng_stream(99, MF_RNG_DROPOUT);
  mf_ctx_set_dropout_rng(ctx, &drop);
  for (int i = 0; i < n_in; i++) in[i]->grad_state = 0;
  mf_tensor *out = f(ctx, in, user);
  float *r = malloc((size_t)out->numel * sizeof(float));
  fill_uniform(&(mf_tensor){.data = r, .numel = out->numel}, 4242, -1.0f, 1.0f);
  if (mf_backward_with_grad(ctx, out, r) != MF_OK) {
    mftest_fail(__FILE__, __LINE__, "%s: backward failed: %s", label, mf_error());
    free(r);
    mf_ctx_free(ctx);
    return 0;
  }
  float **analytic = calloc((size_t)n_in, sizeof(float *));
  for (int i = 0; i < n_in; i++) {
    if (!(in[i]->flags & MF_REQUIRES_GRAD)) continue;
    analytic[i] = malloc((size_t)in[i]->numel * sizeof(float));
    mf_tensor_read_grad(in[i], analytic[i]);
  }

  int ok = 1;
  for (int i = 0; i < n_in; i++) {
    if (!analytic[i]) continue;
    double worst = 0, worst_a = 0, worst_n = 0;
    int64_t worst_j = -1;
    for (int64_t j = 0; j < in[i]->numel; j++) {
      float x0 = in[i]->data[j];
      in[i]->data[j] = (float)(x0 + eps);
      double lp = eval_loss(ctx, f, in, user, r);
      in[i]->data[j] = (float)(x0 - eps);
      double lm = eval_loss(ctx, f, in, user, r);
      in[i]->data[j] = x0;
      /* The perturbation actually applied, after rounding to float. */
      double h = (double)(float)(x0 + eps) - (double)(float)(x0 - eps);
      double num = (lp - lm) / h;
      double a = analytic[i][j];
      double excess = fabs(a - num) - (atol + rtol * fabs(num));
      if (excess > 0 && (worst_j < 0 || excess > worst)) {
        worst = excess, worst_j = j, worst_a = a, worst_n = num;
      }
    }
    if (worst_j >= 0) {
      ok = 0;
      mftest_fail(__FILE__, __LINE__,
                  "%s: input %d element %lld: analytic %.6g vs numeric %.6g (atol %g, rtol %g)",
                  label, i, (long long)worst_j, worst_a, worst_n, atol, rtol);
    }
    free(analytic[i]);
  }
  free(analytic);
  free(r);
  mf_ctx_free(ctx);
  return ok;
}
