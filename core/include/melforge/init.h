/* melforge/init.h — weight initialisers, drawing from the init stream.
 *
 * Fan-in and fan-out follow PyTorch: for a weight [out, in, k...] fan_in = in * prod(k),
 * fan_out = out * prod(k). The *_default functions give exactly what nn.Linear and
 * nn.Conv2d do on construction: weight kaiming_uniform(a = sqrt(5)), i.e.
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
 */
#ifndef MELFORGE_INIT_H
#define MELFORGE_INIT_H

#include "melforge/rng.h"
#include "melforge/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mf_fan_mode { MF_FAN_IN = 0, MF_FAN_OUT = 1 } mf_fan_mode;
typedef enum mf_nonlinearity {
  MF_NL_LINEAR = 0, /* also conv, sigmoid: gain 1 */
  MF_NL_RELU = 1,   /* gain sqrt(2) */
  MF_NL_LEAKY_RELU = 2, /* gain sqrt(2 / (1 + a^2)) */
  MF_NL_TANH = 3    /* gain 5/3 */
} mf_nonlinearity;

void mf_fans(const mf_tensor *w, double *fan_in, double *fan_out);
double mf_init_gain(mf_nonlinearity nl, double a);

void mf_init_constant(mf_tensor *t, float v);
void mf_init_uniform(mf_tensor *t, mf_rng *rng, float lo, float hi);
void mf_init_normal(mf_tensor *t, mf_rng *rng, float mean, float std);
/* He et al.: bound = gain * sqrt(3 / fan). */
void mf_init_kaiming_uniform(mf_tensor *t, mf_rng *rng, double a, mf_fan_mode mode,
                             mf_nonlinearity nl);
/* std = gain / sqrt(fan). */
void mf_init_kaiming_normal(mf_tensor *t, mf_rng *rng, double a, mf_fan_mode mode,
                            mf_nonlinearity nl);
/* Glorot & Bengio: bound = gain * sqrt(6 / (fan_in + fan_out)). */
void mf_init_xavier_uniform(mf_tensor *t, mf_rng *rng, double gain);
/* std = gain * sqrt(2 / (fan_in + fan_out)). */
void mf_init_xavier_normal(mf_tensor *t, mf_rng *rng, double gain);

/* PyTorch's construction-time init of nn.Linear / nn.Conv2d (bias may be NULL). */
void mf_init_linear_default(mf_tensor *w, mf_tensor *b, mf_rng *rng);
void mf_init_conv_default(mf_tensor *w, mf_tensor *b, mf_rng *rng);

#ifdef __cplusplus
}
#endif
#endif
