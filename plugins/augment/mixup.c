/* mixup.c — the `mixup` augment plugin (Zhang et al., "mixup: Beyond Empirical Risk
 * Minimization", 2018): each sample is blended with another sample of the batch, features and
 * labels alike,
 *
 *     x[i] = lam x[i] + (1 - lam) x[perm[i]],   t[i] = lam t[i] + (1 - lam) t[perm[i]],
 *
 * with perm a random permutation of the batch and lam ~ Beta(alpha, alpha). As in the paper's
 * reference implementation (facebookresearch/mixup-cifar10), one lam is drawn per batch; with
 * per_sample = true each sample draws its own. The engine hands in one-hot targets and trains
 * on them with soft-target cross-entropy, so mixed rows still sum to 1.
 *
 * Draws per batch: the permutation (Fisher-Yates, last index first), then the p coin (only
 * when 0 < p < 1) and lam — once, or per sample in sample order with per_sample.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"

static const mf_api *mf;

typedef struct mixup {
  double alpha, p;
  int per_sample;
  scratch copy; /* x and targets before mixing */
  scratch perm, lam;
} mixup;

static const mf_param_spec params[] = {
    {"alpha", MF_PT_FLOAT, "0.2", 1e-3, 1000, NULL,
     "lam ~ Beta(alpha, alpha): small alpha keeps lam near 0 or 1 (light mixing), 1 is "
     "uniform"},
    {"per_sample", MF_PT_BOOL, "false", 0, -1, NULL,
     "draw lam for each sample instead of once per batch as the paper's reference code does"},
    {"p", MF_PT_FLOAT, "1", 0, 1, NULL,
     "probability that the batch is mixed (per sample with per_sample = true)"},
    {0}};

static void *create(const mf_values *v) {
  mixup *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->alpha = mf->value_float(v, "alpha");
  m->per_sample = mf->value_bool(v, "per_sample");
  m->p = mf->value_float(v, "p");
  return m;
}

/* log of a Gamma(a, 1) variate. Marsaglia & Tsang, "A simple method for generating gamma
 * variables" (2000), for a >= 1; for a < 1 their boost Gamma(a) = Gamma(a + 1) U^(1/a), kept
 * in logs because U^(1/a) underflows for the small alphas mixup uses (0.2: U^5). */
static double log_gamma_variate(mf_rng *rng, double a) {
  double boost = 0;
  if (a < 1) {
    boost = log(1.0 - (double)mf->rng_uniform(rng)) / a; /* U in (0, 1] */
    a += 1;
  }
  const double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
  for (;;) {
    const double z = mf->rng_normal(rng);
    double v = 1 + c * z;
    if (v <= 0) continue;
    v = v * v * v;
    const double u = mf->rng_uniform(rng), z2 = z * z;
    if (u < 1 - 0.0331 * z2 * z2 || log(u) < 0.5 * z2 + d * (1 - v + log(v)))
      return log(d * v) + boost;
  }
}

/* Beta(a, a) = X / (X + Y) with X, Y ~ Gamma(a), from their logs: in [0, 1] even when both
 * gammas underflow. */
static float beta_variate(mf_rng *rng, double a) {
  const double lx = log_gamma_variate(rng, a), ly = log_gamma_variate(rng, a);
  return (float)(1.0 / (1.0 + exp(ly - lx)));
}

static mf_status apply(void *state, mf_tensor *x, mf_tensor *targets, mf_rng *rng) {
  mixup *m = state;
  const int64_t n = x->shape[0];
  if (!targets)
    return mf->set_error(MF_EINVAL,
                         "mixup mixes labels too and needs the targets [N, n_classes] (one-hot "
                         "rows); none were passed");
  if (targets->ndim != 2 || targets->shape[0] != n)
    return mf->set_error(MF_EINVAL,
                         "mixup: the targets must be [N, n_classes] with N = %lld, the batch's "
                         "samples; got %d axes of which the first is %lld",
                         (long long)n, targets->ndim, (long long)targets->shape[0]);
  if (n < 2) return MF_OK;
  const int64_t xs = x->numel / n, ts = targets->shape[1];
  int64_t *perm = scratch_get(mf, &m->perm, sizeof(int64_t) * (size_t)n, "mixup");
  float *lam = scratch_get(mf, &m->lam, sizeof(float) * (size_t)n, "mixup");
  float *copy =
      scratch_get(mf, &m->copy, sizeof(float) * (size_t)(x->numel + targets->numel), "mixup");
  if (!perm || !lam || !copy) return MF_ENOMEM;
  for (int64_t i = 0; i < n; i++) perm[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    const int64_t j = mf->rng_below(rng, (uint32_t)(i + 1)), t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  if (m->per_sample) {
    for (int64_t i = 0; i < n; i++)
      lam[i] = coin(mf, rng, m->p) ? beta_variate(rng, m->alpha) : 1.0f;
  } else {
    const float l = coin(mf, rng, m->p) ? beta_variate(rng, m->alpha) : 1.0f;
    for (int64_t i = 0; i < n; i++) lam[i] = l;
  }
  float *xc = copy, *tc = copy + x->numel;
  memcpy(xc, x->data, sizeof(float) * (size_t)x->numel);
  memcpy(tc, targets->data, sizeof(float) * (size_t)targets->numel);
  float *xd = x->data, *td = targets->data;
#pragma omp parallel for schedule(static) if (x->numel > AUG_PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    const float a = lam[i], b = 1.0f - lam[i];
    const float *xi = xc + i * xs, *xj = xc + perm[i] * xs;
    float *o = xd + i * xs;
    for (int64_t k = 0; k < xs; k++) o[k] = a * xi[k] + b * xj[k];
    const float *ti = tc + i * ts, *tj = tc + perm[i] * ts;
    float *ot = td + i * ts;
    for (int64_t k = 0; k < ts; k++) ot[k] = a * ti[k] + b * tj[k];
  }
  return MF_OK;
}

static void destroy(void *state) {
  mixup *m = state;
  scratch_free(&m->copy);
  scratch_free(&m->perm);
  scratch_free(&m->lam);
  free(m);
}

static const mf_augment_vtable vtable = {create, apply, destroy};

static mf_status init(const mf_registrar *reg) {
  mf = reg->api;
  return reg->add_augment(
      reg,
      &(mf_component_desc){"mixup",
                           "mixup: blends samples and their labels with other samples of the "
                           "batch",
                           params},
      &vtable);
}

MF_PLUGIN_ENTRY(init)
