/* melforge/ops.h — differentiable tensor operations.
 *
 * Every op takes the step context first, computes its result at once (eager) into a new
 * context tensor, and — when grad mode is on and an input requires gradients — records a
 * tape node whose backward accumulates into the inputs' gradients. Forward and backward of
 * each op sit side by side in one source file (core/src/ops_*.c) so they can be read
 * against each other; each has a finite-difference test in tests/unit.
 *
 * Shapes are checked when the op is called: a mismatch aborts with both shapes printed
 * (it is a bug in the model, not a runtime condition). Axes may be negative.
 */
#ifndef MELFORGE_OPS_H
#define MELFORGE_OPS_H

#include "melforge/context.h"
#include "melforge/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- element-wise, NumPy broadcasting (ops_elementwise.c) ------------------------------ */
mf_tensor *mf_add(mf_ctx *ctx, mf_tensor *a, mf_tensor *b);
mf_tensor *mf_sub(mf_ctx *ctx, mf_tensor *a, mf_tensor *b);
mf_tensor *mf_mul(mf_ctx *ctx, mf_tensor *a, mf_tensor *b);
mf_tensor *mf_div(mf_ctx *ctx, mf_tensor *a, mf_tensor *b);
mf_tensor *mf_scale(mf_ctx *ctx, mf_tensor *a, float s);      /* a * s */
mf_tensor *mf_add_scalar(mf_ctx *ctx, mf_tensor *a, float s); /* a + s */

/* ---- activations (ops_activation.c) ------------------------------------------------------ */
mf_tensor *mf_relu(mf_ctx *ctx, mf_tensor *x);
/* In place, like nn.ReLU(inplace=True): x must not be needed by the backward of the op that
 * made it (batchnorm and conv do not need their outputs; checked at backward time). */
mf_tensor *mf_relu_(mf_ctx *ctx, mf_tensor *x);
mf_tensor *mf_gelu(mf_ctx *ctx, mf_tensor *x); /* exact erf form, PyTorch's default */
mf_tensor *mf_tanh(mf_ctx *ctx, mf_tensor *x);
mf_tensor *mf_sigmoid(mf_ctx *ctx, mf_tensor *x);
mf_tensor *mf_softmax(mf_ctx *ctx, mf_tensor *x, int axis);
mf_tensor *mf_log_softmax(mf_ctx *ctx, mf_tensor *x, int axis);

/* ---- linear algebra (ops_matmul.c), cblas_sgemm ---------------------------------------- */
/* [..., m, k] x [..., k, n] -> [..., m, n]; leading (batch) dims broadcast; a 2-D operand is
 * shared across the batch. trans_a / trans_b use the transpose of the last two dims. */
mf_tensor *mf_matmul_ex(mf_ctx *ctx, mf_tensor *a, mf_tensor *b, int trans_a, int trans_b);
mf_tensor *mf_matmul(mf_ctx *ctx, mf_tensor *a, mf_tensor *b);
/* x [..., in] · w[out, in]^T + b[out] -> [..., out]; b may be NULL (nn.Linear). */
mf_tensor *mf_linear(mf_ctx *ctx, mf_tensor *x, mf_tensor *w, mf_tensor *b);

/* ---- convolution and pooling (ops_conv.c, ops_pool.c) ---------------------------------- */
typedef struct mf_conv2d_opts {
  int stride[2];   /* (h, w); 0 means 1 */
  int padding[2];  /* zero padding per side (h, w); ignored when same != 0 */
  int dilation[2]; /* 0 means 1 */
  int same;        /* 1: padding 'same' (stride must be 1); odd total padding puts the extra
                      row/column at the bottom/right, as PyTorch and TensorFlow do */
} mf_conv2d_opts;
/* x [N, C, H, W], w [O, C, kh, kw], b [O] or NULL -> [N, O, OH, OW]. opts NULL: stride 1,
 * no padding. */
mf_tensor *mf_conv2d(mf_ctx *ctx, mf_tensor *x, mf_tensor *w, mf_tensor *b,
                     const mf_conv2d_opts *opts);

typedef struct mf_pool2d_opts {
  int kernel[2];  /* (kh, kw) */
  int stride[2];  /* 0 means the kernel size (PyTorch's default) */
  int padding[2]; /* implicit -inf (max) or zero (avg, counted: count_include_pad=True) */
  int ceil_mode;  /* 1: round the output size up, windows may hang over the edge */
} mf_pool2d_opts;
mf_tensor *mf_max_pool2d(mf_ctx *ctx, mf_tensor *x, const mf_pool2d_opts *opts);
mf_tensor *mf_avg_pool2d(mf_ctx *ctx, mf_tensor *x, const mf_pool2d_opts *opts);
/* [N, C, H, W] -> [N, C] (AdaptiveAvgPool2d(1) + Flatten). */
mf_tensor *mf_global_avg_pool2d(mf_ctx *ctx, mf_tensor *x);

/* ---- normalisation (ops_norm.c) --------------------------------------------------------- */
/* Batch norm over x [N, C], [N, C, L] or [N, C, H, W] (BatchNorm1d/2d). training: normalise
 * with the batch statistics and update running_mean / running_var in place
 * (running = (1 - momentum) * running + momentum * batch, unbiased variance), like PyTorch.
 * Otherwise normalise with the running statistics. gamma / beta may be NULL (affine=False);
 * running stats may be NULL in training (track_running_stats=False). */
mf_tensor *mf_batchnorm(mf_ctx *ctx, mf_tensor *x, mf_tensor *gamma, mf_tensor *beta,
                        mf_tensor *running_mean, mf_tensor *running_var, int training,
                        float momentum, float eps);
/* Layer norm over the last dimension; gamma / beta [D] or NULL. */
mf_tensor *mf_layernorm(mf_ctx *ctx, mf_tensor *x, mf_tensor *gamma, mf_tensor *beta, float eps);

/* ---- dropout (ops_dropout.c), drawing from the context's dropout stream ----------------- */
/* Inverted dropout: zero with probability p, scale survivors by 1/(1-p). Identity (the same
 * tensor is returned) when !training or p == 0. */
mf_tensor *mf_dropout(mf_ctx *ctx, mf_tensor *x, float p, int training);
/* Dropout2d: zeroes whole channels of x [N, C, ...]. */
mf_tensor *mf_dropout2d(mf_ctx *ctx, mf_tensor *x, float p, int training);

/* ---- losses (ops_loss.c) ---------------------------------------------------------------- */
/* Mean cross-entropy of logits [N, C] against class indices labels[N] (copied), with label
 * smoothing eps (PyTorch's: target = (1 - eps) one-hot + eps / C). Returns a scalar [1]. */
mf_tensor *mf_cross_entropy(mf_ctx *ctx, mf_tensor *logits, const int32_t *labels,
                            float label_smoothing);
/* Same against soft targets [N, C] (each row a distribution; mixup). */
mf_tensor *mf_cross_entropy_soft(mf_ctx *ctx, mf_tensor *logits, mf_tensor *targets,
                                 float label_smoothing);

/* ---- shape (ops_shape.c) ---------------------------------------------------------------- */
/* A view with a new shape (one dimension may be -1). Shares the data. */
mf_tensor *mf_reshape(mf_ctx *ctx, mf_tensor *x, mf_shape shape);
/* [N, ...] -> [N, prod(...)]: nn.Flatten. */
mf_tensor *mf_flatten(mf_ctx *ctx, mf_tensor *x);
mf_tensor *mf_permute(mf_ctx *ctx, mf_tensor *x, const int *perm);
mf_tensor *mf_transpose(mf_ctx *ctx, mf_tensor *x, int axis0, int axis1);
mf_tensor *mf_concat(mf_ctx *ctx, mf_tensor *const *xs, int n, int axis);
/* Elements [start, end) along axis (negative start/end count from the end). */
mf_tensor *mf_slice(mf_ctx *ctx, mf_tensor *x, int axis, int64_t start, int64_t end);

/* ---- reductions (ops_reduce.c) ---------------------------------------------------------- */
/* Sum / mean over the listed axes (naxes 0: all axes). keepdim keeps them as size 1. */
mf_tensor *mf_sum(mf_ctx *ctx, mf_tensor *x, const int *axes, int naxes, int keepdim);
mf_tensor *mf_mean(mf_ctx *ctx, mf_tensor *x, const int *axes, int naxes, int keepdim);

#ifdef __cplusplus
}
#endif
#endif
