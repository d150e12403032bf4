/* optim.c — SGD, Adam, AdamW and gradient clipping by global norm.
 *
 * The update formulas, their order and their float rounding follow PyTorch 1.13's
 * single-tensor code paths (torch/optim/sgd.py and adam.py / adamw.py): every tensor
 * operation there is one float rounding here, scalars derived from the hyper-parameters are
 * computed in double and rounded to float once, as PyTorch does with Python floats.
 *
 * State: one mf_params store holding "momentum_buffer.<p>" (SGD with momentum) or
 * "exp_avg.<p>", "exp_avg_sq.<p>" and, with amsgrad, "max_exp_avg_sq.<p>" for each
 * trainable parameter, registered eagerly (so a checkpoint can be loaded into a fresh
 * optimizer by name) and resolved once into per-parameter pointers. Parameters added to the
 * store after mf_optim_new get their state at the next step.
 *
 * PyTorch keeps a step count per parameter; melforge keeps one for the optimizer
 * (mf_optim_steps), so that the whole state is the store plus one integer and a resumed run
 * is bit-identical to an uninterrupted one. The two agree whenever every parameter receives
 * a gradient at every step. For a parameter that misses steps, bias correction (Adam) and
 * the "first step copies the gradient into the momentum buffer" rule (SGD) go by the
 * optimizer's count.
 */
#include "melforge/optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "melforge/error.h"

typedef struct slot {
  mf_tensor *p;    /* NULL for buffers (not trained) */
  mf_tensor *s[3]; /* SGD: momentum_buffer; Adam: exp_avg, exp_avg_sq, max_exp_avg_sq */
} slot;

struct mf_optim {
  mf_params *params;
  mf_params *state;
  mf_optim_config cfg;
  int64_t steps;
  slot *slots; /* one per entry of params, in registration order */
  int nslots, cap;
};

static const char *kind_name(mf_optim_kind k) {
  switch (k) {
    case MF_OPTIM_SGD:
      return "sgd";
    case MF_OPTIM_ADAM:
      return "adam";
    case MF_OPTIM_ADAMW:
      return "adamw";
  }
  return "optimizer";
}

mf_optim_config mf_optim_defaults(mf_optim_kind kind) {
  mf_optim_config c;
  memset(&c, 0, sizeof c);
  c.kind = kind;
  if (kind == MF_OPTIM_SGD) {
    c.lr = 0.01f;
  } else {
    c.lr = 1e-3f;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.eps = 1e-8f;
    if (kind == MF_OPTIM_ADAMW) c.weight_decay = 1e-2f;
  }
  return c;
}

/* NaN fails every comparison, so each test is written to reject it. */
static mf_status validate(const mf_optim_config *c) {
  if (c->kind != MF_OPTIM_SGD && c->kind != MF_OPTIM_ADAM && c->kind != MF_OPTIM_ADAMW)
    return mf_set_error(MF_EINVAL,
                        "unknown optimizer kind %d; use MF_OPTIM_SGD, MF_OPTIM_ADAM "
                        "or MF_OPTIM_ADAMW",
                        (int)c->kind);
  const char *k = kind_name(c->kind);
  if (!(c->lr >= 0 && isfinite(c->lr)))
    return mf_set_error(MF_EINVAL,
                        "%s: lr = %g is invalid; the learning rate must be a finite "
                        "number >= 0",
                        k, (double)c->lr);
  if (!(c->weight_decay >= 0 && isfinite(c->weight_decay)))
    return mf_set_error(MF_EINVAL,
                        "%s: weight_decay = %g is invalid; it must be a finite "
                        "number >= 0 (0 disables it)",
                        k, (double)c->weight_decay);
  if (c->kind == MF_OPTIM_SGD) {
    if (!(c->momentum >= 0 && isfinite(c->momentum)))
      return mf_set_error(MF_EINVAL,
                          "sgd: momentum = %g is invalid; it must be a finite number "
                          ">= 0 (0 disables it, 0.9 is usual)",
                          (double)c->momentum);
    if (!(c->dampening >= 0 && c->dampening <= 1))
      return mf_set_error(MF_EINVAL, "sgd: dampening = %g is outside [0, 1]", (double)c->dampening);
    if (c->nesterov && (c->momentum <= 0 || c->dampening != 0))
      return mf_set_error(MF_EINVAL,
                          "sgd: nesterov needs momentum > 0 and dampening = 0 (got "
                          "momentum = %g, dampening = %g)",
                          (double)c->momentum, (double)c->dampening);
  } else {
    if (!(c->beta1 >= 0 && c->beta1 < 1))
      return mf_set_error(MF_EINVAL, "%s: beta1 = %g is outside [0, 1) (0.9 is usual)", k,
                          (double)c->beta1);
    if (!(c->beta2 >= 0 && c->beta2 < 1))
      return mf_set_error(MF_EINVAL, "%s: beta2 = %g is outside [0, 1) (0.999 is usual)", k,
                          (double)c->beta2);
    if (!(c->eps >= 0 && isfinite(c->eps)))
      return mf_set_error(MF_EINVAL,
                          "%s: eps = %g is invalid; it must be a finite number >= 0 "
                          "(1e-8 is usual)",
                          k, (double)c->eps);
  }
  return MF_OK;
}

/* The state tensor "<prefix>.<param name>", found (a checkpoint loader may have made it) or
 * registered zero-filled. */
static mf_status state_tensor(mf_params *state, const char *prefix, const mf_tensor *p,
                              mf_tensor **out) {
  size_t len = strlen(prefix) + 1 + strlen(p->name) + 1;
  char *name = malloc(len);
  if (!name)
    return mf_set_error(MF_ENOMEM, "out of memory naming the optimizer state of '%s'", p->name);
  snprintf(name, len, "%s.%s", prefix, p->name);
  mf_status st = MF_OK;
  mf_tensor *t = mf_params_find(state, name);
  if (t && !mf_shape_equal(mf_tensor_shape(t), mf_tensor_shape(p))) {
    char a[96], b[96];
    st = mf_set_error(MF_EINVAL, "optimizer state '%s' has shape %s but parameter '%s' has %s",
                      name, mf_tensor_shape_str(t, a, sizeof a), p->name,
                      mf_tensor_shape_str(p, b, sizeof b));
    t = NULL;
  } else if (!t && !(t = mf_params_add_buffer(state, name, mf_tensor_shape(p)))) {
    st = MF_ENOMEM;
  }
  free(name);
  *out = t;
  return st;
}

/* Gives every parameter registered since the last call its slot and state. */
static mf_status sync_slots(mf_optim *opt) {
  int n = mf_params_size(opt->params);
  if (n > opt->cap) {
    int nc = opt->cap ? opt->cap : 16;
    while (nc < n) nc *= 2;
    slot *s = realloc(opt->slots, (size_t)nc * sizeof *s);
    if (!s) return mf_set_error(MF_ENOMEM, "out of memory for optimizer state");
    opt->slots = s;
    opt->cap = nc;
  }
  static const char *const SGD_NAMES[] = {"momentum_buffer"};
  static const char *const ADAM_NAMES[] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  const mf_optim_config *c = &opt->cfg;
  int nstate = c->kind == MF_OPTIM_SGD ? (c->momentum != 0) : (c->amsgrad ? 3 : 2);
  const char *const *names = c->kind == MF_OPTIM_SGD ? SGD_NAMES : ADAM_NAMES;
  for (; opt->nslots < n; opt->nslots++) {
    slot *s = &opt->slots[opt->nslots];
    memset(s, 0, sizeof *s);
    if (!mf_params_is_trainable(opt->params, opt->nslots)) continue;
    mf_tensor *p = mf_params_at(opt->params, opt->nslots);
    for (int k = 0; k < nstate; k++) {
      mf_status st = state_tensor(opt->state, names[k], p, &s->s[k]);
      if (st != MF_OK) return st;
    }
    s->p = p;
  }
  return MF_OK;
}

mf_optim *mf_optim_new(mf_params *params, const mf_optim_config *cfg) {
  if (!params || !cfg) {
    mf_set_error(MF_EINVAL, "mf_optim_new needs a parameter store and a config");
    return NULL;
  }
  if (validate(cfg) != MF_OK) return NULL;
  mf_optim *opt = calloc(1, sizeof *opt);
  if (!opt || !(opt->state = mf_params_new())) {
    free(opt);
    mf_set_error(MF_ENOMEM, "out of memory creating the optimizer");
    return NULL;
  }
  opt->params = params;
  opt->cfg = *cfg;
  mf_status st = sync_slots(opt);
  if (st != MF_OK) {
    mf_wrap_error(st, "creating the %s optimizer", kind_name(cfg->kind));
    mf_optim_free(opt);
    return NULL;
  }
  return opt;
}

void mf_optim_free(mf_optim *opt) {
  if (!opt) return;
  mf_params_free(opt->state);
  free(opt->slots);
  free(opt);
}

/* Below, each line of PyTorch's update is one statement, in its order. The option flags are
 * compile-time constants in each specialisation (always_inline + a switch over them), so the
 * inner loops are branch-free and vectorise; chunks of PAR_CHUNK elements go to the threads. */
#define PAR_CHUNK 4096
#define ALWAYS_INLINE static inline __attribute__((always_inline))

typedef struct sgd_consts {
  float neg_lr, wd, momentum, keep; /* keep = 1 - dampening */
} sgd_consts;

ALWAYS_INLINE void sgd_range(float *restrict p, const float *restrict g, float *restrict buf,
                             int64_t lo, int64_t hi, sgd_consts k, const int wd, const int momentum,
                             const int first, const int nesterov) {
  for (int64_t i = lo; i < hi; i++) {
    float d = g[i];
    if (wd) d = d + k.wd * p[i];
    if (momentum) {
      float b;
      if (first) {
        b = d; /* PyTorch: buf = clone(d_p) */
      } else {
        b = buf[i] * k.momentum;
        b = b + k.keep * d;
      }
      buf[i] = b;
      d = nesterov ? d + k.momentum * b : b;
    }
    p[i] = p[i] + k.neg_lr * d;
  }
}

#define SGD_CASE(W, M, F, N)                     \
  case (W) | (M) << 1 | (F) << 2 | (N) << 3:     \
    sgd_range(p, g, buf, lo, hi, k, W, M, F, N); \
    break;

static void sgd_update(float *p, const float *g, float *buf, int64_t n, sgd_consts k, int wd,
                       int first, int nesterov) {
  const int momentum = buf != NULL;
  const int variant = wd | momentum << 1 | (momentum && first) << 2 | (momentum && nesterov) << 3;
  const int64_t nchunks = (n + PAR_CHUNK - 1) / PAR_CHUNK;
#pragma omp parallel for schedule(static) if (n > MF_PAR_MIN)
  for (int64_t c = 0; c < nchunks; c++) {
    const int64_t lo = c * PAR_CHUNK, hi = lo + PAR_CHUNK < n ? lo + PAR_CHUNK : n;
    switch (variant) {
      SGD_CASE(0, 0, 0, 0)
      SGD_CASE(1, 0, 0, 0)
      SGD_CASE(0, 1, 0, 0)
      SGD_CASE(1, 1, 0, 0)
      SGD_CASE(0, 1, 1, 0)
      SGD_CASE(1, 1, 1, 0)
      SGD_CASE(0, 1, 0, 1)
      SGD_CASE(1, 1, 0, 1)
      SGD_CASE(0, 1, 1, 1)
      SGD_CASE(1, 1, 1, 1)
    }
  }
}

typedef struct adam_consts {
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float wd;            /* coupled (Adam); 0 for AdamW */
  float decay;         /* AdamW's 1 - lr * wd (x * 1 is exact, so Adam uses 1) */
  float neg_step_size; /* -lr / (1 - beta1^t) */
  float bc2_sqrt;      /* sqrt(1 - beta2^t) */
  float eps;
} adam_consts;

ALWAYS_INLINE void adam_range(float *restrict p, const float *restrict g, float *restrict m,
                              float *restrict v, float *restrict vmax, int64_t lo, int64_t hi,
                              adam_consts k, const int wd, const int amsgrad) {
  for (int64_t i = lo; i < hi; i++) {
    const float pi = p[i] * k.decay;
    float gi = g[i];
    if (wd) gi = gi + k.wd * pi;
    float mi = m[i] * k.beta1;
    mi = mi + k.one_minus_beta1 * gi;
    float vi = v[i] * k.beta2;
    vi = vi + k.one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    if (amsgrad) {
      /* torch.maximum propagates NaN: keep vi unless it is <= the running max. */
      const float vm = vmax[i];
      vi = !(vi <= vm) ? vi : vm;
      vmax[i] = vi;
    }
    const float denom = sqrtf(vi) / k.bc2_sqrt + k.eps;
    p[i] = pi + k.neg_step_size * mi / denom;
  }
}

static void adam_update(float *p, const float *g, float *m, float *v, float *vmax, int64_t n,
                        adam_consts k) {
  const int variant = (k.wd != 0) | (vmax != NULL) << 1;
  const int64_t nchunks = (n + PAR_CHUNK - 1) / PAR_CHUNK;
#pragma omp parallel for schedule(static) if (n > MF_PAR_MIN)
  for (int64_t c = 0; c < nchunks; c++) {
    const int64_t lo = c * PAR_CHUNK, hi = lo + PAR_CHUNK < n ? lo + PAR_CHUNK : n;
    switch (variant) {
      case 0:
        adam_range(p, g, m, v, vmax, lo, hi, k, 0, 0);
        break;
      case 1:
        adam_range(p, g, m, v, vmax, lo, hi, k, 1, 0);
        break;
      case 2:
        adam_range(p, g, m, v, vmax, lo, hi, k, 0, 1);
        break;
      default:
        adam_range(p, g, m, v, vmax, lo, hi, k, 1, 1);
        break;
    }
  }
}

static void bump_version(mf_tensor *t) {
  if (t->version) (*t->version)++;
}

void mf_optim_step(mf_optim *opt) {
  if (sync_slots(opt) != MF_OK) mf_panic(__FILE__, __LINE__, "mf_optim_step: %s", mf_error());
  const mf_optim_config *c = &opt->cfg;
  const int64_t t = opt->steps + 1;
  const sgd_consts ks = {-c->lr, c->weight_decay, c->momentum, (float)(1.0 - (double)c->dampening)};
  adam_consts k = {0};
  if (c->kind != MF_OPTIM_SGD) {
    const double lr = c->lr, b1 = c->beta1, b2 = c->beta2;
    k.beta1 = c->beta1;
    k.one_minus_beta1 = (float)(1.0 - b1);
    k.beta2 = c->beta2;
    k.one_minus_beta2 = (float)(1.0 - b2);
    k.wd = c->kind == MF_OPTIM_ADAM ? c->weight_decay : 0.0f;
    k.decay = c->kind == MF_OPTIM_ADAMW ? (float)(1.0 - lr * (double)c->weight_decay) : 1.0f;
    k.neg_step_size = (float)(-(lr / (1.0 - pow(b1, (double)t))));
    k.bc2_sqrt = (float)sqrt(1.0 - pow(b2, (double)t));
    k.eps = c->eps;
  }
  for (int i = 0; i < opt->nslots; i++) {
    slot *s = &opt->slots[i];
    mf_tensor *p = s->p;
    if (!p || !p->grad || !p->grad_state) continue; /* PyTorch: p.grad is None */
    if (c->kind == MF_OPTIM_SGD)
      sgd_update(p->data, p->grad, s->s[0] ? s->s[0]->data : NULL, p->numel, ks,
                 c->weight_decay != 0, opt->steps == 0, c->nesterov != 0);
    else
      adam_update(p->data, p->grad, s->s[0]->data, s->s[1]->data, s->s[2] ? s->s[2]->data : NULL,
                  p->numel, k);
    bump_version(p);
  }
  opt->steps = t;
}

void mf_optim_set_lr(mf_optim *opt, float lr) {
  MF_CHECK(lr >= 0 && isfinite(lr), "mf_optim_set_lr: lr = %g (must be finite and >= 0)",
           (double)lr);
  opt->cfg.lr = lr;
}

float mf_optim_lr(const mf_optim *opt) { return opt->cfg.lr; }
const mf_optim_config *mf_optim_get_config(const mf_optim *opt) { return &opt->cfg; }
int64_t mf_optim_steps(const mf_optim *opt) { return opt->steps; }

void mf_optim_set_steps(mf_optim *opt, int64_t steps) {
  MF_CHECK(steps >= 0, "mf_optim_set_steps: steps = %lld (must be >= 0)", (long long)steps);
  opt->steps = steps;
}

mf_params *mf_optim_state(mf_optim *opt) { return opt->state; }

/* ---------------------------------------------------------------------------------------- */
/* Gradient clipping */

/* Sum of squares in double. Fixed blocks, each summed by one thread and combined in block
 * order, so the result does not depend on the thread count; batches of blocks keep the
 * partial sums on the stack. */
#define SS_BLOCK 8192
#define SS_BATCH 128

static double sum_squares(const float *x, int64_t n) {
  double total = 0;
  for (int64_t base = 0; base < n; base += (int64_t)SS_BLOCK * SS_BATCH) {
    const int64_t rest = n - base;
    const int64_t nb =
        rest >= (int64_t)SS_BLOCK * SS_BATCH ? SS_BATCH : (rest + SS_BLOCK - 1) / SS_BLOCK;
    double part[SS_BATCH];
#pragma omp parallel for schedule(static) if (rest > MF_PAR_MIN)
    for (int64_t b = 0; b < nb; b++) {
      const int64_t lo = base + b * SS_BLOCK;
      const int64_t hi = lo + SS_BLOCK < n ? lo + SS_BLOCK : n;
      double s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t i = lo; i < hi; i++) s += (double)x[i] * (double)x[i];
      part[b] = s;
    }
    for (int64_t b = 0; b < nb; b++) total += part[b];
  }
  return total;
}

static int has_grad(const mf_params *ps, int i) {
  const mf_tensor *p = mf_params_at(ps, i);
  return mf_params_is_trainable(ps, i) && p->grad && p->grad_state;
}

double mf_clip_grad_norm(mf_params *params, double max_norm) {
  const int n = mf_params_size(params);
  double ss = 0;
  for (int i = 0; i < n; i++)
    if (has_grad(params, i)) {
      const mf_tensor *p = mf_params_at(params, i);
      ss += sum_squares(p->grad, p->numel);
    }
  const double norm = sqrt(ss);
  if (!isfinite(norm) || !(norm > max_norm)) return norm;
  const float coef = (float)(max_norm / (norm + 1e-6));
  for (int i = 0; i < n; i++)
    if (has_grad(params, i)) {
      mf_tensor *p = mf_params_at(params, i);
      float *restrict g = p->grad;
      const int64_t m = p->numel;
#pragma omp parallel for schedule(static) if (m > MF_PAR_MIN)
      for (int64_t j = 0; j < m; j++) g[j] *= coef;
    }
  return norm;
}
