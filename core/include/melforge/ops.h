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
#include "melforge/op_types.h"
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
/* x [N, C, H, W], w [O, C, kh, kw], b [O] or NULL -> [N, O, OH, OW]. opts NULL: stride 1,
 * no padding. */
mf_tensor *mf_conv2d(mf_ctx *ctx, mf_tensor *x, mf_tensor *w, mf_tensor *b,
                     const mf_conv2d_opts *opts);

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

/* ---- recurrent layers (ops_rnn.c) -------------------------------------------------------- */
/* One direction of one nn.LSTM layer over x [N, T, I] (batch_first), PyTorch's gate layout
 * (i, f, g, o): w_ih [4H, I], w_hh [4H, H], b_ih / b_hh [4H] or NULL; zero initial states.
 * reverse: run from the last step to the first (the second direction of a bidirectional
 * layer; outputs stay aligned with their time steps). Returns every hidden state [N, T, H]. */
mf_tensor *mf_lstm(mf_ctx *ctx, mf_tensor *x, mf_tensor *w_ih, mf_tensor *w_hh, mf_tensor *b_ih,
                   mf_tensor *b_hh, int reverse);
/* The same for nn.GRU: gates (r, z, n), w_ih [3H, I], w_hh [3H, H], b_ih / b_hh [3H]. */
mf_tensor *mf_gru(mf_ctx *ctx, mf_tensor *x, mf_tensor *w_ih, mf_tensor *w_hh, mf_tensor *b_ih,
                  mf_tensor *b_hh, int reverse);

/* ---- attention (ops_attention.c) --------------------------------------------------------- */
/* Self-attention of nn.MultiheadAttention(E, heads, dropout, batch_first=True) with
 * query = key = value = x [N, T, E]: in_w [3E, E] (q, k, v stacked), in_b [3E] or NULL,
 * out_w [E, E], out_b [E] or NULL; dropout on the attention weights when training.
 * Returns [N, T, E]. */
mf_tensor *mf_self_attention(mf_ctx *ctx, mf_tensor *x, mf_tensor *in_w, mf_tensor *in_b,
                             mf_tensor *out_w, mf_tensor *out_b, int heads, float dropout,
                             int training);
/* x [N, T, D] plus the sinusoidal encoding PE[t, 2i] = sin(t w_i), PE[t, 2i + 1] = cos(t w_i),
 * w_i = 10000^(-2i / D) (Vaswani et al. 2017; D even). */
mf_tensor *mf_positional_encoding(mf_ctx *ctx, mf_tensor *x);
/* Additive (Bahdanau) attention pooling over time: e_t = v . tanh(W h_t + b),
 * a = softmax_t(e), out = sum_t a_t h_t. h [N, T, D], w [A, D], b [A] or NULL, v [1, A]
 * (the weight of a Linear(A, 1, bias=False)). Returns [N, D]. */
mf_tensor *mf_additive_attention_pool(mf_ctx *ctx, mf_tensor *h, mf_tensor *w, mf_tensor *b,
                                      mf_tensor *v);

#ifdef __cplusplus
}
#endif
#endif
