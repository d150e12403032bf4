/* melforge/context.h — the per-step context: arena, autograd tape, grad mode.
 *
 * One training or evaluation step runs inside a context:
 *
 *     mf_ctx_reset(ctx);                         // forget the previous step
 *     mf_tensor *logits = model_forward(ctx, x);  // ops allocate in the arena, record the tape
 *     mf_tensor *loss = mf_cross_entropy(ctx, logits, labels, 0.0f);
 *     mf_backward(ctx, loss);                     // walk the tape, accumulate parameter grads
 *     mf_optim_step(opt);
 *
 * Activations, gradients of activations, tape nodes and op scratch space come from the
 * arena. After the first steps it has grown to the step's high-water mark and the steady
 * state performs no malloc at all (mf_ctx_stats() counts the system allocations). Dead
 * gradient buffers are recycled during backward, so the peak stays near the forward size.
 *
 * Autograd is define-by-run: every op whose inputs require gradients appends a node to the
 * tape. In no-grad mode (evaluation) nothing is recorded. A context is used by one thread
 * at a time; ops parallelise internally.
 */
#ifndef MELFORGE_CONTEXT_H
#define MELFORGE_CONTEXT_H

#include "melforge/error.h"
#include "melforge/rng.h"
#include "melforge/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mf_ctx mf_ctx;

mf_ctx *mf_ctx_new(void);
void mf_ctx_free(mf_ctx *ctx);

/* Ends the step: every context tensor and tape node becomes invalid. */
void mf_ctx_reset(mf_ctx *ctx);

/* Grad mode. Returns the previous setting, so callers can restore it. */
int mf_ctx_set_grad_enabled(mf_ctx *ctx, int enabled);
int mf_ctx_grad_enabled(const mf_ctx *ctx);

/* The random stream dropout draws from (a copy is kept; the context advances its copy).
 * Until set, dropout uses stream MF_RNG_DROPOUT of seed 0. */
void mf_ctx_set_dropout_rng(mf_ctx *ctx, const mf_rng *rng);
mf_rng mf_ctx_dropout_rng(const mf_ctx *ctx);

/* A context tensor with uninitialised / zero-filled data. */
mf_tensor *mf_ctx_tensor(mf_ctx *ctx, mf_shape shape);
mf_tensor *mf_ctx_zeros(mf_ctx *ctx, mf_shape shape);
/* A context tensor holding a copy of `data` (numel floats). */
mf_tensor *mf_ctx_tensor_from(mf_ctx *ctx, mf_shape shape, const float *data);
/* Hint that t will not be read again in this step: in no-grad mode (evaluation) its memory
 * goes back to the arena for the ops that follow, so inference of a deep network needs
 * about two activations' worth of memory instead of all of them. Ignored in grad mode (the
 * tape may need t). The caller must not touch t, nor any view of its data, afterwards; only
 * tensors made by ops may be released (not the caller's input). */
void mf_ctx_release(mf_ctx *ctx, mf_tensor *t);

/* Raw arena memory (64-byte aligned), valid until the next reset. */
void *mf_ctx_alloc(mf_ctx *ctx, size_t bytes);

/* Back-propagates from a scalar (numel 1) tensor: d loss / d loss = 1. */
mf_status mf_backward(mf_ctx *ctx, mf_tensor *loss);
/* Back-propagates from any tensor with a given output gradient (numel floats). */
mf_status mf_backward_with_grad(mf_ctx *ctx, mf_tensor *out, const float *grad);

/* Reads a tensor's gradient into dst (numel floats); zeros if none was accumulated. */
void mf_tensor_read_grad(const mf_tensor *t, float *dst);

typedef struct mf_ctx_stats {
  size_t arena_capacity;   /* bytes reserved by the arena */
  size_t step_high_water;  /* most bytes a step has used so far */
  size_t system_allocs;    /* arena chunk allocations since the context was made */
  size_t tape_nodes;       /* nodes recorded in the current step */
} mf_ctx_stats;
mf_ctx_stats mf_ctx_stats_get(const mf_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif
