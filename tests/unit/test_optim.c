/* Optimizers and gradient clipping: SGD / Adam / AdamW against PyTorch 1.13's update rules
 * evaluated in double, state bookkeeping, config validation, clip_grad_norm.
 *
 * Tolerance of the closed-form comparisons: the optimizer works in float32 (relative
 * rounding 6e-8 per operation, ~10 operations per element and step) on parameters of
 * magnitude ~1, so after a few steps it sits within a few 1e-7 of the double reference.
 * REL_TOL = 1e-6 (relative to max(1, |reference|)) leaves that margin and still catches any
 * wrong term, which shows at the 1e-4..1e-1 level with these hyper-parameters.
 */
#include <stdlib.h>
#include <string.h>

#include "melforge/melforge.h"
#include "mftest.h"

#define REL_TOL 1e-6
#define N 5
#define STEPS 4

static const float P0[N] = {0.5f, -1.25f, 2.0f, 0.0f, -0.3f};

/* The gradient fed at step t: varies with t so momentum and moments are exercised. */
static float grad_at(int t, int i) { return (float)(sin(1.3 * i + 0.7 * t) + 0.1 * (i - 2)); }

static mf_params *make_store(mf_tensor **w) {
  mf_params *ps = mf_params_new();
  *w = mf_params_add(ps, "w", MF_SHAPE(N));
  memcpy((*w)->data, P0, sizeof P0);
  return ps;
}

static void set_grad(mf_tensor *p, int t) {
  for (int i = 0; i < p->numel; i++) p->grad[i] = grad_at(t, (int)i);
  p->grad_state = 1;
}

static void expect_close(const char *what, const float *got, const double *want, int n) {
  for (int i = 0; i < n; i++) {
    double tol = REL_TOL * fmax(1.0, fabs(want[i]));
    EXPECT(fabs(got[i] - want[i]) <= tol, "%s[%d] = %.9g, reference %.9g (tolerance %g)", what, i,
           (double)got[i], want[i], tol);
  }
}

/* ---- SGD ------------------------------------------------------------------------------- */

/* torch/optim/sgd.py _single_tensor_sgd, in double. */
static void sgd_reference(const mf_optim_config *c, double *p, double *buf) {
  const double lr = c->lr, wd = c->weight_decay, mom = c->momentum, damp = c->dampening;
  for (int t = 0; t < STEPS; t++)
    for (int i = 0; i < N; i++) {
      double d = grad_at(t, i) + wd * p[i];
      if (mom != 0) {
        buf[i] = t == 0 ? d : mom * buf[i] + (1 - damp) * d;
        d = c->nesterov ? d + mom * buf[i] : buf[i];
      }
      p[i] -= lr * d;
    }
}

static void check_sgd(const char *label, mf_optim_config c) {
  mf_tensor *w;
  mf_params *ps = make_store(&w);
  mf_optim *opt = mf_optim_new(ps, &c);
  EXPECT(opt != NULL, "%s: %s", label, mf_error());
  if (!opt) return;
  for (int t = 0; t < STEPS; t++) {
    set_grad(w, t);
    mf_optim_step(opt);
  }
  double p[N], buf[N] = {0};
  for (int i = 0; i < N; i++) p[i] = P0[i];
  sgd_reference(&c, p, buf);
  expect_close(label, w->data, p, N);
  if (c.momentum != 0) {
    mf_tensor *b = mf_params_find(mf_optim_state(opt), "momentum_buffer.w");
    EXPECT(b != NULL, "%s: no momentum_buffer.w", label);
    if (b) expect_close("momentum_buffer.w", b->data, buf, N);
  }
  EXPECT_EQ_INT(mf_optim_steps(opt), STEPS);
  mf_optim_free(opt);
  mf_params_free(ps);
}

static mf_optim_config sgd(float lr, float momentum, float dampening, int nesterov, float wd) {
  mf_optim_config c = mf_optim_defaults(MF_OPTIM_SGD);
  c.lr = lr;
  c.momentum = momentum;
  c.dampening = dampening;
  c.nesterov = nesterov;
  c.weight_decay = wd;
  return c;
}

TEST(test_sgd_plain_matches_closed_form) { check_sgd("sgd", sgd(0.1f, 0, 0, 0, 0)); }

TEST(test_sgd_momentum_first_step_copies_gradient_then_matches_closed_form) {
  check_sgd("sgd momentum", sgd(0.1f, 0.9f, 0, 0, 0));
}

TEST(test_sgd_dampening_matches_closed_form) {
  /* Dampening 0.3 also proves the first step is not dampened (buf = grad there). */
  check_sgd("sgd dampening", sgd(0.1f, 0.9f, 0.3f, 0, 0));
}

TEST(test_sgd_nesterov_matches_closed_form) {
  check_sgd("sgd nesterov", sgd(0.05f, 0.8f, 0, 1, 0));
}

TEST(test_sgd_weight_decay_is_added_to_the_gradient) {
  check_sgd("sgd weight decay", sgd(0.1f, 0, 0, 0, 0.05f));
  check_sgd("sgd weight decay + nesterov", sgd(0.1f, 0.9f, 0, 1, 0.05f));
}

/* ---- Adam / AdamW ---------------------------------------------------------------------- */

/* torch/optim/adam.py and adamw.py (_single_tensor_*), in double. */
static void adam_reference(const mf_optim_config *c, const float *grads, int steps, double *p,
                           double *m, double *v, double *vmax) {
  const double lr = c->lr, wd = c->weight_decay, b1 = c->beta1, b2 = c->beta2, eps = c->eps;
  for (int t = 1; t <= steps; t++)
    for (int i = 0; i < N; i++) {
      double g = grads ? grads[(t - 1) * N + i] : grad_at(t - 1, i);
      if (c->kind == MF_OPTIM_ADAMW) p[i] *= 1 - lr * wd;
      if (c->kind == MF_OPTIM_ADAM) g += wd * p[i];
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      double vv = v[i];
      if (c->amsgrad) vv = vmax[i] = fmax(vmax[i], v[i]);
      double denom = sqrt(vv) / sqrt(1 - pow(b2, t)) + eps;
      p[i] -= lr / (1 - pow(b1, t)) * m[i] / denom;
    }
}

static void check_adam(const char *label, mf_optim_config c, const float *grads, int steps) {
  mf_tensor *w;
  mf_params *ps = make_store(&w);
  mf_optim *opt = mf_optim_new(ps, &c);
  EXPECT(opt != NULL, "%s: %s", label, mf_error());
  if (!opt) return;
  for (int t = 0; t < steps; t++) {
    if (grads) {
      memcpy(w->grad, grads + t * N, N * sizeof(float));
      w->grad_state = 1;
    } else {
      set_grad(w, t);
    }
    mf_optim_step(opt);
  }
  double p[N], m[N] = {0}, v[N] = {0}, vmax[N] = {0};
  for (int i = 0; i < N; i++) p[i] = P0[i];
  adam_reference(&c, grads, steps, p, m, v, vmax);
  expect_close(label, w->data, p, N);
  mf_params *st = mf_optim_state(opt);
  mf_tensor *em = mf_params_find(st, "exp_avg.w"), *ev = mf_params_find(st, "exp_avg_sq.w");
  EXPECT(em && ev, "%s: state exp_avg.w / exp_avg_sq.w missing", label);
  if (em) expect_close("exp_avg.w", em->data, m, N);
  if (ev) expect_close("exp_avg_sq.w", ev->data, v, N);
  if (c.amsgrad) {
    mf_tensor *emax = mf_params_find(st, "max_exp_avg_sq.w");
    EXPECT(emax != NULL, "%s: state max_exp_avg_sq.w missing", label);
    if (emax) expect_close("max_exp_avg_sq.w", emax->data, vmax, N);
  }
  mf_optim_free(opt);
  mf_params_free(ps);
}

static mf_optim_config adam(mf_optim_kind kind, float lr, float wd, int amsgrad) {
  mf_optim_config c = mf_optim_defaults(kind);
  c.lr = lr;
  c.weight_decay = wd;
  c.amsgrad = amsgrad;
  return c;
}

TEST(test_adam_matches_closed_form) {
  check_adam("adam", adam(MF_OPTIM_ADAM, 0.01f, 0, 0), NULL, STEPS);
  /* Large eps and other betas: every term of the denominator matters. */
  mf_optim_config c = adam(MF_OPTIM_ADAM, 0.05f, 0, 0);
  c.beta1 = 0.5f;
  c.beta2 = 0.7f;
  c.eps = 0.1f;
  check_adam("adam betas/eps", c, NULL, STEPS);
}

TEST(test_adam_weight_decay_is_coupled_into_the_gradient) {
  check_adam("adam weight decay", adam(MF_OPTIM_ADAM, 0.01f, 0.1f, 0), NULL, STEPS);
}

TEST(test_adam_amsgrad_keeps_the_largest_second_moment) {
  /* Large gradients first, then small ones: exp_avg_sq falls below its running max, so the
   * amsgrad denominator differs from plain Adam's. */
  float g[6 * N];
  for (int t = 0; t < 6; t++)
    for (int i = 0; i < N; i++) g[t * N + i] = (t < 2 ? 3.0f : 0.05f) * (i % 2 ? -1.0f : 1.0f);
  mf_optim_config c = adam(MF_OPTIM_ADAM, 0.01f, 0, 1);
  c.beta2 = 0.9f; /* a short memory, so the second moment drops within six steps */
  check_adam("adam amsgrad", c, g, 6);
  /* The same run without amsgrad ends elsewhere: the test above can tell them apart. */
  double p1[N], p2[N], m[N] = {0}, v[N] = {0}, vmax[N] = {0};
  for (int i = 0; i < N; i++) p1[i] = p2[i] = P0[i];
  adam_reference(&c, g, 6, p1, m, v, vmax);
  c.amsgrad = 0;
  memset(m, 0, sizeof m), memset(v, 0, sizeof v);
  adam_reference(&c, g, 6, p2, m, v, vmax);
  EXPECT(fabs(p1[0] - p2[0]) > 1e-3, "amsgrad made no difference: %g vs %g", p1[0], p2[0]);
}

TEST(test_adamw_decays_weights_before_the_adam_step) {
  check_adam("adamw", adam(MF_OPTIM_ADAMW, 0.01f, 0.1f, 0), NULL, STEPS);
  check_adam("adamw amsgrad", adam(MF_OPTIM_ADAMW, 0.01f, 0.1f, 1), NULL, STEPS);
}

TEST(test_adam_converges_on_a_quadratic) {
  /* loss = sum_i c_i (w_i - t_i)^2 through the autograd tape, the full training cycle. */
  const float target[N] = {1.0f, -2.0f, 0.5f, 3.0f, -0.75f};
  const float curv[N] = {1.0f, 10.0f, 0.1f, 2.0f, 5.0f}; /* badly conditioned on purpose */
  mf_tensor *w;
  mf_params *ps = make_store(&w);
  mf_optim *opt = mf_optim_new(
      ps, &(mf_optim_config){
              .kind = MF_OPTIM_ADAM, .lr = 0.05f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f});
  mf_ctx *ctx = mf_ctx_new();
  double first = 0, last = 0;
  for (int step = 0; step < 1500; step++) {
    if (step == 1000) mf_optim_set_lr(opt, 0.002f); /* anneal to settle the oscillation */
    mf_ctx_reset(ctx);
    mf_params_zero_grad(ps);
    mf_tensor *d = mf_sub(ctx, w, mf_ctx_tensor_from(ctx, MF_SHAPE(N), target));
    mf_tensor *loss =
        mf_sum(ctx, mf_mul(ctx, mf_mul(ctx, d, d), mf_ctx_tensor_from(ctx, MF_SHAPE(N), curv)),
               NULL, 0, 0);
    if (step == 0) first = loss->data[0];
    last = loss->data[0];
    EXPECT(mf_backward(ctx, loss) == MF_OK, "%s", mf_error());
    mf_optim_step(opt);
  }
  EXPECT(last < 1e-6 * first, "loss went from %g to %g only", first, last);
  for (int i = 0; i < N; i++) EXPECT_NEAR(w->data[i], target[i], 1e-3);
  mf_ctx_free(ctx);
  mf_optim_free(opt);
  mf_params_free(ps);
}

/* ---- Bookkeeping ----------------------------------------------------------------------- */

TEST(test_parameter_without_gradient_is_not_touched) {
  /* AdamW would decay "frozen" even with a zero gradient; with no gradient it must not. */
  mf_params *ps = mf_params_new();
  mf_tensor *a = mf_params_add(ps, "a", MF_SHAPE(N));
  mf_tensor *frozen = mf_params_add(ps, "frozen", MF_SHAPE(N));
  memcpy(a->data, P0, sizeof P0);
  memcpy(frozen->data, P0, sizeof P0);
  mf_optim_config c = adam(MF_OPTIM_ADAMW, 0.1f, 0.5f, 0);
  mf_optim *opt = mf_optim_new(ps, &c);
  for (int t = 0; t < 3; t++) {
    mf_params_zero_grad(ps);
    set_grad(a, t);
    for (int i = 0; i < N; i++) frozen->grad[i] = 123.0f; /* stale: grad_state says empty */
    mf_optim_step(opt);
  }
  EXPECT(memcmp(frozen->data, P0, sizeof P0) == 0, "a parameter without gradient changed");
  mf_tensor *m = mf_params_find(mf_optim_state(opt), "exp_avg.frozen");
  EXPECT(m != NULL, "state of frozen missing");
  for (int i = 0; m && i < N; i++) EXPECT_NEAR(m->data[i], 0, 0);
  EXPECT(a->data[0] != P0[0], "the parameter with a gradient did not move");
  mf_optim_free(opt);
  mf_params_free(ps);
}

static int has_state(mf_optim *opt, const char *name) {
  return mf_params_find(mf_optim_state(opt), name) != NULL;
}

TEST(test_state_names_follow_pytorch) {
  mf_params *ps = mf_params_new();
  mf_params_add(ps, "conv.weight", MF_SHAPE(2, 3));
  mf_params_add_buffer(ps, "bn.running_mean", MF_SHAPE(2));
  mf_optim *o = mf_optim_new(ps, &(mf_optim_config){.kind = MF_OPTIM_SGD, .lr = 0.1f});
  EXPECT_EQ_INT(mf_params_size(mf_optim_state(o)), 0); /* plain SGD keeps no state */
  mf_optim_free(o);

  o = mf_optim_new(ps, &(mf_optim_config){.kind = MF_OPTIM_SGD, .lr = 0.1f, .momentum = 0.9f});
  EXPECT(has_state(o, "momentum_buffer.conv.weight"), "momentum_buffer.conv.weight missing");
  EXPECT_EQ_INT(mf_params_size(mf_optim_state(o)), 1); /* nothing for the buffer */
  mf_optim_free(o);

  mf_optim_config c = mf_optim_defaults(MF_OPTIM_ADAM);
  o = mf_optim_new(ps, &c);
  EXPECT(has_state(o, "exp_avg.conv.weight") && has_state(o, "exp_avg_sq.conv.weight"),
         "exp_avg / exp_avg_sq of conv.weight missing");
  EXPECT_EQ_INT(mf_params_size(mf_optim_state(o)), 2);
  mf_tensor *m = mf_params_find(mf_optim_state(o), "exp_avg.conv.weight");
  EXPECT(m && m->ndim == 2 && m->shape[0] == 2 && m->shape[1] == 3, "state shape differs");
  mf_optim_free(o);

  c.amsgrad = 1;
  o = mf_optim_new(ps, &c);
  EXPECT(has_state(o, "max_exp_avg_sq.conv.weight"), "max_exp_avg_sq.conv.weight missing");
  EXPECT_EQ_INT(mf_params_size(mf_optim_state(o)), 3);
  /* A parameter registered later gets its state at the next step. */
  mf_tensor *late = mf_params_add(ps, "head.bias", MF_SHAPE(4));
  late->grad_state = 0;
  mf_optim_step(o);
  EXPECT(has_state(o, "exp_avg.head.bias"), "late parameter got no state");
  mf_optim_free(o);
  mf_params_free(ps);
}

TEST(test_defaults_follow_pytorch) {
  mf_optim_config a = mf_optim_defaults(MF_OPTIM_ADAM), w = mf_optim_defaults(MF_OPTIM_ADAMW);
  mf_optim_config s = mf_optim_defaults(MF_OPTIM_SGD);
  EXPECT(a.lr == 1e-3f && a.beta1 == 0.9f && a.beta2 == 0.999f && a.eps == 1e-8f &&
             a.weight_decay == 0 && !a.amsgrad,
         "adam defaults");
  EXPECT(w.lr == 1e-3f && w.weight_decay == 1e-2f && w.kind == MF_OPTIM_ADAMW, "adamw defaults");
  EXPECT(s.lr == 0.01f && s.momentum == 0 && s.dampening == 0 && !s.nesterov, "sgd defaults");
}

TEST(test_resuming_from_saved_state_and_steps_is_bit_identical) {
  /* What a checkpoint does: copy the state store by name and the step count. */
  mf_optim_config c = adam(MF_OPTIM_ADAMW, 0.01f, 0.1f, 1);
  mf_tensor *w1, *w2;
  mf_params *ps1 = make_store(&w1), *ps2 = make_store(&w2);
  mf_optim *o1 = mf_optim_new(ps1, &c);
  for (int t = 0; t < 3; t++) set_grad(w1, t), mf_optim_step(o1);
  memcpy(w2->data, w1->data, N * sizeof(float));
  mf_optim *o2 = mf_optim_new(ps2, &c);
  EXPECT(mf_params_copy_data(mf_optim_state(o2), mf_optim_state(o1)) == MF_OK, "%s", mf_error());
  mf_optim_set_steps(o2, mf_optim_steps(o1));
  for (int t = 3; t < 6; t++) {
    set_grad(w1, t), mf_optim_step(o1);
    set_grad(w2, t), mf_optim_step(o2);
  }
  EXPECT(memcmp(w1->data, w2->data, N * sizeof(float)) == 0, "resumed run diverged");
  mf_optim_free(o1);
  mf_optim_free(o2);
  mf_params_free(ps1);
  mf_params_free(ps2);
}

TEST(test_set_lr_changes_the_next_update) {
  mf_tensor *w;
  mf_params *ps = make_store(&w);
  mf_optim *o = mf_optim_new(ps, &(mf_optim_config){.kind = MF_OPTIM_SGD, .lr = 0.1f});
  mf_optim_set_lr(o, 0.5f);
  EXPECT(mf_optim_lr(o) == 0.5f && mf_optim_get_config(o)->lr == 0.5f, "lr not stored");
  set_grad(w, 0);
  mf_optim_step(o);
  for (int i = 0; i < N; i++) EXPECT_NEAR(w->data[i], P0[i] - 0.5 * grad_at(0, i), 1e-6);
  mf_optim_free(o);
  mf_params_free(ps);
}

TEST(test_large_parameter_update_is_thread_count_independent_and_correct) {
  /* Above the parallel threshold, with a length that is not a multiple of the chunk. */
  const int64_t n = 100003;
  mf_optim_config c = adam(MF_OPTIM_ADAM, 0.01f, 0.01f, 1);
  float *res[2];
  const int threads = mf_num_threads();
  for (int run = 0; run < 2; run++) {
    mf_set_num_threads(run + 1);
    mf_params *ps = mf_params_new();
    mf_tensor *w = mf_params_add(ps, "w", MF_SHAPE(n));
    for (int64_t i = 0; i < n; i++) w->data[i] = (float)sin(0.001 * i);
    mf_optim *o = mf_optim_new(ps, &c);
    for (int t = 0; t < 3; t++) {
      for (int64_t i = 0; i < n; i++) w->grad[i] = (float)cos(0.01 * i + t);
      w->grad_state = 1;
      mf_optim_step(o);
    }
    res[run] = malloc((size_t)n * sizeof(float));
    memcpy(res[run], w->data, (size_t)n * sizeof(float));
    mf_optim_free(o);
    mf_params_free(ps);
  }
  mf_set_num_threads(threads);
  EXPECT(memcmp(res[0], res[1], (size_t)n * sizeof(float)) == 0, "1 and 2 threads differ");
  /* Spot-check elements against the double reference (element-wise independent). */
  int bad = 0;
  for (int64_t i = 0; i < n; i += 997) {
    double p = (float)sin(0.001 * i), m = 0, v = 0, vmax = 0;
    for (int t = 1; t <= 3; t++) {
      double g = (float)cos(0.01 * i + (t - 1)) + (double)c.weight_decay * p;
      m = c.beta1 * m + (1 - (double)c.beta1) * g;
      v = c.beta2 * v + (1 - (double)c.beta2) * g * g;
      vmax = fmax(vmax, v);
      p -= c.lr / (1 - pow(c.beta1, t)) * m / (sqrt(vmax) / sqrt(1 - pow(c.beta2, t)) + c.eps);
    }
    if (fabs(res[0][i] - p) > REL_TOL * fmax(1, fabs(p))) bad++;
  }
  EXPECT_EQ_INT(bad, 0);
  free(res[0]);
  free(res[1]);
}

/* ---- Validation ------------------------------------------------------------------------ */

TEST(test_invalid_configs_are_rejected_naming_the_field) {
  struct {
    mf_optim_config c;
    const char *field;
  } cases[] = {
      {{.kind = MF_OPTIM_SGD, .lr = -0.1f}, "lr"},
      {{.kind = MF_OPTIM_SGD, .lr = NAN}, "lr"},
      {{.kind = MF_OPTIM_SGD, .lr = 0.1f, .weight_decay = -1e-4f}, "weight_decay"},
      {{.kind = MF_OPTIM_SGD, .lr = 0.1f, .momentum = -0.5f}, "momentum"},
      {{.kind = MF_OPTIM_SGD, .lr = 0.1f, .momentum = 0.9f, .dampening = 1.5f}, "dampening"},
      {{.kind = MF_OPTIM_SGD, .lr = 0.1f, .nesterov = 1}, "nesterov"},
      {{.kind = MF_OPTIM_SGD, .lr = 0.1f, .momentum = 0.9f, .dampening = 0.1f, .nesterov = 1},
       "nesterov"},
      {{.kind = MF_OPTIM_ADAM, .lr = 1e-3f, .beta1 = 1.0f, .beta2 = 0.999f}, "beta1"},
      {{.kind = MF_OPTIM_ADAM, .lr = 1e-3f, .beta1 = -0.1f, .beta2 = 0.999f}, "beta1"},
      {{.kind = MF_OPTIM_ADAMW, .lr = 1e-3f, .beta1 = 0.9f, .beta2 = 1.0f}, "beta2"},
      {{.kind = MF_OPTIM_ADAM, .lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = -1e-8f}, "eps"},
      {{.kind = MF_OPTIM_ADAMW, .lr = -1e-3f, .beta1 = 0.9f, .beta2 = 0.999f}, "lr"},
      {{.kind = MF_OPTIM_ADAMW,
        .lr = 1e-3f,
        .beta1 = 0.9f,
        .beta2 = 0.999f,
        .weight_decay = -0.01f},
       "weight_decay"},
      {{.kind = (mf_optim_kind)7, .lr = 1e-3f}, "kind"},
  };
  mf_params *ps = mf_params_new();
  mf_params_add(ps, "w", MF_SHAPE(3));
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    mf_clear_error();
    mf_optim *o = mf_optim_new(ps, &cases[k].c);
    EXPECT(o == NULL, "case %zu (%s) was accepted", k, cases[k].field);
    EXPECT(strstr(mf_error(), cases[k].field) != NULL, "case %zu: message '%s' does not name %s", k,
           mf_error(), cases[k].field);
    mf_optim_free(o);
  }
  /* The boundaries themselves are valid. */
  mf_optim *o = mf_optim_new(ps, &(mf_optim_config){.kind = MF_OPTIM_ADAM, .lr = 0});
  EXPECT(o != NULL, "lr 0, betas 0, eps 0 rejected: %s", mf_error());
  mf_optim_free(o);
  mf_params_free(ps);
}

/* ---- Gradient clipping ------------------------------------------------------------------ */

static mf_params *grad_store(mf_tensor **a, mf_tensor **b, float scale) {
  mf_params *ps = mf_params_new();
  *a = mf_params_add(ps, "a", MF_SHAPE(2, 2));
  *b = mf_params_add(ps, "b", MF_SHAPE(3));
  const float ga[4] = {1, -2, 3, -4}, gb[3] = {0.5f, 2.5f, -1};
  for (int i = 0; i < 4; i++) (*a)->grad[i] = ga[i] * scale;
  for (int i = 0; i < 3; i++) (*b)->grad[i] = gb[i] * scale;
  (*a)->grad_state = (*b)->grad_state = 1;
  return ps;
}

TEST(test_clip_grad_norm_returns_the_norm_and_scales_to_max_norm) {
  mf_tensor *a, *b;
  mf_params *ps = grad_store(&a, &b, 1.0f);
  const double norm = sqrt(1 + 4 + 9 + 16 + 0.25 + 6.25 + 1); /* 6.1237... */
  const double got = mf_clip_grad_norm(ps, 2.0);
  EXPECT_NEAR(got, norm, 1e-12);
  const double coef = 2.0 / (norm + 1e-6);
  double ss = 0;
  const float ga[4] = {1, -2, 3, -4}, gb[3] = {0.5f, 2.5f, -1};
  for (int i = 0; i < 4; i++) {
    EXPECT_NEAR(a->grad[i], ga[i] * coef, 1e-6);
    ss += a->grad[i] * a->grad[i];
  }
  for (int i = 0; i < 3; i++) {
    EXPECT_NEAR(b->grad[i], gb[i] * coef, 1e-6);
    ss += b->grad[i] * b->grad[i];
  }
  EXPECT_NEAR(sqrt(ss), 2.0, 1e-5); /* float rounding of 7 products */
  mf_params_free(ps);
}

TEST(test_clip_grad_norm_leaves_small_gradients_alone) {
  mf_tensor *a, *b;
  mf_params *ps = grad_store(&a, &b, 0.1f);
  float before[7];
  memcpy(before, a->grad, 4 * sizeof(float));
  memcpy(before + 4, b->grad, 3 * sizeof(float));
  double norm = mf_clip_grad_norm(ps, 1.0);
  EXPECT_NEAR(norm, 0.61237, 1e-5);
  EXPECT(memcmp(before, a->grad, 4 * sizeof(float)) == 0 &&
             memcmp(before + 4, b->grad, 3 * sizeof(float)) == 0,
         "gradients below max_norm were changed");
  mf_params_free(ps);
}

TEST(test_clip_grad_norm_skips_parameters_without_gradient) {
  mf_tensor *a, *b;
  mf_params *ps = grad_store(&a, &b, 1.0f);
  b->grad_state = 0; /* stale contents must neither count nor be scaled */
  mf_params_add_buffer(ps, "running_mean", MF_SHAPE(3));
  EXPECT_NEAR(mf_clip_grad_norm(ps, 1.0), sqrt(30.0), 1e-12);
  EXPECT_NEAR(b->grad[1], 2.5f, 0);
  mf_params_free(ps);
}

TEST(test_clip_grad_norm_reports_non_finite_norm_without_scaling) {
  mf_tensor *a, *b;
  mf_params *ps = grad_store(&a, &b, 1.0f);
  b->grad[2] = INFINITY;
  EXPECT(isinf(mf_clip_grad_norm(ps, 1.0)), "an infinite gradient should give an infinite norm");
  EXPECT_NEAR(a->grad[3], -4.0f, 0);
  b->grad[2] = NAN;
  EXPECT(isnan(mf_clip_grad_norm(ps, 1.0)), "a NaN gradient should give a NaN norm");
  EXPECT_NEAR(a->grad[3], -4.0f, 0);
  mf_params_free(ps);
}

TEST(test_clip_grad_norm_of_large_gradients_is_thread_count_independent) {
  const int64_t n = 3 * 8192 * 128 + 12345; /* several batches of blocks, ragged end */
  double norms[2];
  float last[2];
  const int threads = mf_num_threads();
  for (int run = 0; run < 2; run++) {
    mf_set_num_threads(run + 1);
    mf_params *ps = mf_params_new();
    mf_tensor *w = mf_params_add(ps, "w", MF_SHAPE(n));
    for (int64_t i = 0; i < n; i++) w->grad[i] = (float)sin(0.37 * i);
    w->grad_state = 1;
    norms[run] = mf_clip_grad_norm(ps, 1.0);
    last[run] = w->grad[n - 1];
    mf_params_free(ps);
  }
  mf_set_num_threads(threads);
  double ref = 0;
  for (int64_t i = 0; i < n; i++) {
    double g = (float)sin(0.37 * i);
    ref += g * g;
  }
  EXPECT(norms[0] == norms[1] && last[0] == last[1], "1 and 2 threads differ: %.17g vs %.17g",
         norms[0], norms[1]);
  EXPECT_NEAR(norms[0], sqrt(ref), 1e-9 * sqrt(ref)); /* double sums in different orders */
  EXPECT_NEAR(last[0], (float)sin(0.37 * (n - 1)) / (sqrt(ref) + 1e-6), 1e-7);
}
