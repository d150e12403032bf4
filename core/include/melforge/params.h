/* melforge/params.h — named, long-lived tensors: a model's parameters and buffers.
 *
 * A model registers each weight under a PyTorch-style name ("features.0.weight") and shape;
 * the store owns the memory, initialisation is done by the caller (init.h), optimizers walk
 * the trainable entries, checkpoints save and restore every entry by name. Buffers
 * (batchnorm running statistics, ...) are saved but not trained.
 *
 * Trainable parameters carry a persistent gradient buffer. mf_params_zero_grad() marks all
 * gradients empty without touching memory (PyTorch's zero_grad(set_to_none=True)); the
 * next backward overwrites instead of accumulating. Without it, gradients accumulate over
 * several backward passes (gradient accumulation).
 */
#ifndef MELFORGE_PARAMS_H
#define MELFORGE_PARAMS_H

#include "melforge/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mf_params mf_params;

mf_params *mf_params_new(void);
void mf_params_free(mf_params *ps);

/* A zero-filled trainable parameter. NULL with mf_error() set if the name is taken. */
mf_tensor *mf_params_add(mf_params *ps, const char *name, mf_shape shape);
/* A zero-filled buffer (saved in checkpoints, not trained). */
mf_tensor *mf_params_add_buffer(mf_params *ps, const char *name, mf_shape shape);

mf_tensor *mf_params_find(const mf_params *ps, const char *name);
/* Entries in registration order (parameters and buffers interleaved). */
int mf_params_size(const mf_params *ps);
mf_tensor *mf_params_at(const mf_params *ps, int i);
int mf_params_is_trainable(const mf_params *ps, int i);
/* Number of trainable scalars (what PyTorch's sum(p.numel()) reports). */
int64_t mf_params_count_trainable(const mf_params *ps);

void mf_params_zero_grad(mf_params *ps);
/* Copies every entry's data from src (same names and shapes). */
int mf_params_copy_data(mf_params *dst, const mf_params *src);

#ifdef __cplusplus
}
#endif
#endif
