/* init.c — weight initialisers (torch.nn.init) drawing from an rng stream.
 *
 * Every fill goes through mf_rng_fill_uniform / mf_rng_fill_normal, whose element i comes
 * from a fixed counter block: the weights do not depend on the thread count, and one stream
 * initialising the parameters in registration order gives the same model for the same seed.
 * Scales are computed in double and rounded to float once.
 */
#include "melforge/init.h"

#include <math.h>

#include "internal.h"
#include "melforge/error.h"

static void touched(mf_tensor *t) {
  /* A saved activation of this tensor is stale now; backward must notice. */
  if (t->version) (*t->version)++;
}

void mf_fans(const mf_tensor *w, double *fan_in, double *fan_out) {
  if (w->ndim < 2) {
    char s[96];
    mf_panic(__FILE__, __LINE__,
             "fan in and fan out need a weight with at least 2 dimensions ([out, in, k...]), "
             "got %s",
             mf_tensor_shape_str(w, s, sizeof s));
  }
  double receptive = 1;
  for (int d = 2; d < w->ndim; d++) receptive *= (double)w->shape[d];
  if (fan_in) *fan_in = (double)w->shape[1] * receptive;
  if (fan_out) *fan_out = (double)w->shape[0] * receptive;
}

double mf_init_gain(mf_nonlinearity nl, double a) {
  switch (nl) {
    case MF_NL_LINEAR:
      return 1.0;
    case MF_NL_RELU:
      return sqrt(2.0);
    case MF_NL_LEAKY_RELU:
      return sqrt(2.0 / (1.0 + a * a));
    case MF_NL_TANH:
      return 5.0 / 3.0;
  }
  mf_panic(__FILE__, __LINE__, "mf_init_gain: unknown nonlinearity %d", (int)nl);
}

void mf_init_constant(mf_tensor *t, float v) {
  float *restrict x = t->data;
  const int64_t n = t->numel;
#pragma omp parallel for schedule(static) if (n > MF_PAR_MIN)
  for (int64_t i = 0; i < n; i++) x[i] = v;
  touched(t);
}

void mf_init_uniform(mf_tensor *t, mf_rng *rng, float lo, float hi) {
  MF_CHECK(isfinite(lo) && isfinite(hi) && lo <= hi,
           "mf_init_uniform: the range [%g, %g) is not a finite interval with lo <= hi", (double)lo,
           (double)hi);
  mf_rng_fill_uniform(rng, t->data, t->numel, lo, hi);
  touched(t);
}

void mf_init_normal(mf_tensor *t, mf_rng *rng, float mean, float std) {
  MF_CHECK(isfinite(mean) && std >= 0 && isfinite(std),
           "mf_init_normal: mean = %g, std = %g (need finite values and std >= 0)", (double)mean,
           (double)std);
  mf_rng_fill_normal(rng, t->data, t->numel, mean, std);
  touched(t);
}

/* gain / sqrt(fan) for the chosen fan. */
static double kaiming_std(const mf_tensor *t, double a, mf_fan_mode mode, mf_nonlinearity nl) {
  MF_CHECK(mode == MF_FAN_IN || mode == MF_FAN_OUT, "kaiming init: unknown fan mode %d", (int)mode);
  double fan_in, fan_out;
  mf_fans(t, &fan_in, &fan_out);
  return mf_init_gain(nl, a) / sqrt(mode == MF_FAN_IN ? fan_in : fan_out);
}

void mf_init_kaiming_uniform(mf_tensor *t, mf_rng *rng, double a, mf_fan_mode mode,
                             mf_nonlinearity nl) {
  if (t->numel == 0) return; /* PyTorch: a no-op on zero-element tensors */
  const float bound = (float)(sqrt(3.0) * kaiming_std(t, a, mode, nl));
  mf_init_uniform(t, rng, -bound, bound);
}

void mf_init_kaiming_normal(mf_tensor *t, mf_rng *rng, double a, mf_fan_mode mode,
                            mf_nonlinearity nl) {
  if (t->numel == 0) return;
  mf_init_normal(t, rng, 0.0f, (float)kaiming_std(t, a, mode, nl));
}

void mf_init_xavier_uniform(mf_tensor *t, mf_rng *rng, double gain) {
  if (t->numel == 0) return;
  double fan_in, fan_out;
  mf_fans(t, &fan_in, &fan_out);
  const float bound = (float)(gain * sqrt(6.0 / (fan_in + fan_out)));
  mf_init_uniform(t, rng, -bound, bound);
}

void mf_init_xavier_normal(mf_tensor *t, mf_rng *rng, double gain) {
  if (t->numel == 0) return;
  double fan_in, fan_out;
  mf_fans(t, &fan_in, &fan_out);
  mf_init_normal(t, rng, 0.0f, (float)(gain * sqrt(2.0 / (fan_in + fan_out))));
}

/* nn.Linear / nn.Conv2d reset_parameters(): weight first, then bias, from one stream. */
static void layer_default(const char *what, mf_tensor *w, mf_tensor *b, mf_rng *rng) {
  if (b) {
    char sw[96], sb[96];
    if (b->numel != w->shape[0])
      mf_panic(__FILE__, __LINE__, "%s: bias %s does not match weight %s (one per output)", what,
               mf_tensor_shape_str(b, sb, sizeof sb), mf_tensor_shape_str(w, sw, sizeof sw));
  }
  mf_init_kaiming_uniform(w, rng, sqrt(5.0), MF_FAN_IN, MF_NL_LEAKY_RELU);
  if (b) {
    double fan_in;
    mf_fans(w, &fan_in, NULL);
    const float bound = fan_in > 0 ? (float)(1.0 / sqrt(fan_in)) : 0.0f;
    mf_init_uniform(b, rng, -bound, bound);
  }
}

void mf_init_linear_default(mf_tensor *w, mf_tensor *b, mf_rng *rng) {
  if (w->ndim != 2) {
    char s[96];
    mf_panic(__FILE__, __LINE__, "mf_init_linear_default: weight %s is not [out, in]",
             mf_tensor_shape_str(w, s, sizeof s));
  }
  layer_default("mf_init_linear_default", w, b, rng);
}

void mf_init_conv_default(mf_tensor *w, mf_tensor *b, mf_rng *rng) {
  if (w->ndim < 3) {
    char s[96];
    mf_panic(__FILE__, __LINE__, "mf_init_conv_default: weight %s is not [out, in, k...]",
             mf_tensor_shape_str(w, s, sizeof s));
  }
  layer_default("mf_init_conv_default", w, b, rng);
}
