/* melforge/optim.h — optimizers as plain functions over (parameters, gradients, state).
 *
 * SGD (momentum, dampening, Nesterov), Adam and AdamW with PyTorch's exact update rules:
 * weight_decay in SGD and Adam is coupled L2 (added to the gradient), in AdamW it is
 * decoupled (p *= 1 - lr * wd before the Adam step). The state (step count, moment
 * buffers) lives in an mf_params store so checkpoints save and restore it by name
 * ("exp_avg.<param>", "exp_avg_sq.<param>", "momentum_buffer.<param>").
 *
 * Life cycle: mf_optim_new(params, &cfg) ... per step: mf_params_zero_grad, forward,
 * backward, optional mf_clip_grad_norm, mf_optim_step ... mf_optim_free.
 */
#ifndef MELFORGE_OPTIM_H
#define MELFORGE_OPTIM_H

#include <stdint.h>

#include "melforge/params.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mf_optim_kind { MF_OPTIM_SGD = 0, MF_OPTIM_ADAM = 1, MF_OPTIM_ADAMW = 2 } mf_optim_kind;

typedef struct mf_optim_config {
  mf_optim_kind kind;
  float lr;
  float weight_decay;
  /* SGD */
  float momentum;
  float dampening;
  int nesterov;
  /* Adam / AdamW */
  float beta1, beta2, eps;
  int amsgrad;
} mf_optim_config;

/* PyTorch's defaults for each kind: Adam / AdamW lr 1e-3, betas (0.9, 0.999), eps 1e-8,
 * AdamW weight_decay 1e-2, others 0. SGD has no default rate in PyTorch; melforge uses 0.01. */
mf_optim_config mf_optim_defaults(mf_optim_kind kind);

typedef struct mf_optim mf_optim;

/* NULL with mf_error() set for invalid settings (negative lr, beta outside [0, 1), Nesterov
 * without momentum, ...). The optimizer keeps a pointer to params. */
mf_optim *mf_optim_new(mf_params *params, const mf_optim_config *cfg);
void mf_optim_free(mf_optim *opt);

/* One update of every trainable parameter that has a gradient. */
void mf_optim_step(mf_optim *opt);

void mf_optim_set_lr(mf_optim *opt, float lr);
float mf_optim_lr(const mf_optim *opt);
const mf_optim_config *mf_optim_get_config(const mf_optim *opt);
/* Steps taken so far (Adam's bias correction uses it). */
int64_t mf_optim_steps(const mf_optim *opt);
void mf_optim_set_steps(mf_optim *opt, int64_t steps);
/* The state buffers, by name, for checkpoints. */
mf_params *mf_optim_state(mf_optim *opt);

/* Scales all gradients so their global L2 norm is at most max_norm (PyTorch's
 * clip_grad_norm_: factor max_norm / (norm + 1e-6) when norm > max_norm). Returns the norm
 * before clipping (NaN or Inf when a gradient is not finite; nothing is scaled then). */
double mf_clip_grad_norm(mf_params *params, double max_norm);

#ifdef __cplusplus
}
#endif
#endif
