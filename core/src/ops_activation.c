/* ops_activation.c — relu (also in place), gelu, tanh, sigmoid, softmax and log-softmax.
 *
 * exp, erfc and tanh come from fastmath.h (branch-free float code that vectorises, where
 * libm's scalar calls would dominate); gelu, tanh, sigmoid and the contiguous softmax row run
 * the per-CPU cloned array kernels of fastmath.c that the RNN and attention ops call too.
 *
 * As in PyTorch, the backward of relu, tanh and sigmoid reads the output, gelu's the input,
 * softmax's and log-softmax's the output.
 */
#include <math.h>
#include <string.h>

#include "fastmath.h"
#include "internal.h"
#include "melforge/ops.h"

/* Transcendental loops cost several times a plain copy per element, so threads pay off on
 * shorter arrays than MF_PAR_MIN. */
#define PAR_MIN_TRANS (MF_PAR_MIN / 4)

/* Element-wise work is cut into chunks of this many floats, each handed to a kernel. */
#define CHUNK 8192

/* The fastmath.c array kernels, cloned per CPU level: one call per chunk. */
typedef void (*act_kernel)(const float *x, float *y, int64_t n);

static mf_tensor *act_forward(mf_ctx *ctx, act_kernel k, mf_tensor *x) {
  mf_tensor *out = mf_ctx_tensor(ctx, mf_tensor_shape(x));
  const float *xd = x->data;
  float *yd = out->data;
  const int64_t N = x->numel, chunks = (N + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (N > PAR_MIN_TRANS && chunks > 1)
  for (int64_t c = 0; c < chunks; c++) {
    const int64_t i0 = c * CHUNK;
    k(xd + i0, yd + i0, N - i0 < CHUNK ? N - i0 : CHUNK);
  }
  return out;
}

/* ---- element-wise activations ------------------------------------------------------------ */

/* Backward of an element-wise op: gx = gx (when accumulating) + go * D, D an expression of
 * y (the output's data) at index i. The output gradient buffer is reused for gx when x has
 * none yet. These loops are memory-bound: no vector clones needed. (clang-format is off
 * around it: it would join the _Pragma and the loop into one line.) */
// clang-format off
#define UNARY_BACKWARD_FROM_OUTPUT(ctx, n, D)                                                      \
  do {                                                                                             \
    const float *go = (n)->out->grad, *yd = (n)->out->data;                                        \
    int acc;                                                                                       \
    float *gx = mf__gin_inplace((ctx), (n), (n)->in[0], &acc);                                     \
    if (!gx) return;                                                                               \
    const int64_t N = (n)->out->numel;                                                             \
    _Pragma("omp parallel for schedule(static) if (N > MF_PAR_MIN)")                               \
    for (int64_t i = 0; i < N; i++) {                                                              \
      const float y = yd[i];                                                                       \
      gx[i] = (acc ? gx[i] : 0.0f) + go[i] * (D);                                                  \
    }                                                                                              \
  } while (0)
// clang-format on

static void relu_backward(mf_ctx *ctx, mf_node *n) {
  /* y > 0 is the mask: the gradient at 0 is 0, as in PyTorch. */
  UNARY_BACKWARD_FROM_OUTPUT(ctx, n, sel(y > 0.0f, 1.0f, 0.0f));
}

mf_tensor *mf_relu(mf_ctx *ctx, mf_tensor *x) {
  mf_tensor *out = mf_ctx_tensor(ctx, mf_tensor_shape(x));
  const float *xd = x->data;
  float *yd = out->data;
  const int64_t N = x->numel;
#pragma omp parallel for schedule(static) if (N > MF_PAR_MIN)
  for (int64_t i = 0; i < N; i++) yd[i] = xd[i] < 0.0f ? 0.0f : xd[i]; /* NaN passes through */
  mf__record(ctx, "relu", relu_backward, out, 1, &x, MF_READS_OUT, 0);
  return out;
}

/* After mf_relu_, x and the returned tensor are the same values, and an op recorded later
 * may have used either. The gradient that x holds when this runs can only come from such
 * later ops (ops that used x before the relu run their backward after this one), so it is
 * a gradient with respect to the relu's output: it joins the output gradient and goes
 * through the mask, and what is left in x's buffer is the gradient of the input. */
static void relu_inplace_backward(mf_ctx *ctx, mf_node *n) {
  const float *go = n->out->grad;
  const float *yd = n->out->data;
  int acc;
  float *gx = mf__gin_inplace(ctx, n, n->in[0], &acc);
  if (!gx) return;
  const int64_t N = n->out->numel;
#pragma omp parallel for schedule(static) if (N > MF_PAR_MIN)
  for (int64_t i = 0; i < N; i++) gx[i] = sel(yd[i] > 0.0f, (acc ? gx[i] : 0.0f) + go[i], 0.0f);
}

mf_tensor *mf_relu_(mf_ctx *ctx, mf_tensor *x) {
  if (mf__will_record(ctx, 1, &x))
    MF_CHECK(x->node != NULL, "relu_: in place on a leaf that requires grad (%s); use mf_relu",
             x->name ? x->name : "unnamed");
  float *d = x->data;
  const int64_t N = x->numel;
#pragma omp parallel for schedule(static) if (N > MF_PAR_MIN)
  for (int64_t i = 0; i < N; i++) d[i] = d[i] < 0.0f ? 0.0f : d[i];
  (*x->version)++;
  mf_tensor *out = mf__alias(ctx, x, mf_tensor_shape(x));
  /* Recorded after the bump, so the saved output version is the modified one. */
  mf__record(ctx, "relu_", relu_inplace_backward, out, 1, &x, MF_READS_OUT, 0);
  return out;
}

static void gelu_backward(mf_ctx *ctx, mf_node *n) {
  const float *go = n->out->grad, *xd = n->in[0]->data;
  int acc;
  float *gx = mf__gin_inplace(ctx, n, n->in[0], &acc);
  if (!gx) return;
  const int64_t N = n->out->numel, chunks = (N + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (N > PAR_MIN_TRANS && chunks > 1)
  for (int64_t c = 0; c < chunks; c++) {
    const int64_t i0 = c * CHUNK;
    mf__vgelu_backward(xd + i0, go + i0, gx + i0, N - i0 < CHUNK ? N - i0 : CHUNK, acc);
  }
}

mf_tensor *mf_gelu(mf_ctx *ctx, mf_tensor *x) {
  mf_tensor *out = act_forward(ctx, mf__vgelu, x);
  mf__record(ctx, "gelu", gelu_backward, out, 1, &x, MF_READS_IN(0), 0);
  return out;
}

static void tanh_backward(mf_ctx *ctx, mf_node *n) {
  UNARY_BACKWARD_FROM_OUTPUT(ctx, n, 1.0f - y * y);
}

mf_tensor *mf_tanh(mf_ctx *ctx, mf_tensor *x) {
  mf_tensor *out = act_forward(ctx, mf__vtanh, x);
  mf__record(ctx, "tanh", tanh_backward, out, 1, &x, MF_READS_OUT, 0);
  return out;
}

static void sigmoid_backward(mf_ctx *ctx, mf_node *n) {
  UNARY_BACKWARD_FROM_OUTPUT(ctx, n, y * (1.0f - y));
}

mf_tensor *mf_sigmoid(mf_ctx *ctx, mf_tensor *x) {
  mf_tensor *out = act_forward(ctx, mf__vsigmoid, x);
  mf__record(ctx, "sigmoid", sigmoid_backward, out, 1, &x, MF_READS_OUT, 0);
  return out;
}

/* ---- softmax and log-softmax --------------------------------------------------------------
 *
 * The tensor is viewed as [outer, n, inner] with the softmax over n. inner == 1 (the last
 * axis) runs row by row over contiguous memory; otherwise a task takes one outer index and
 * a block of up to COLS inner positions and sweeps the n rows with unit stride inside the
 * block, keeping per-column running values on the stack.
 *
 * Row sums and dots are fastmath.h's fixed-order lane sums. A contiguous row is
 * fastmath.c's mf__softmax_row, the kernel attention's weights come from as well.
 */

#define COLS 64

/* w <= COLS columns of n rows, `stride` floats apart. */
MF_CLONES static void softmax_block(const float *x, float *y, int64_t n, int64_t stride, int64_t w,
                                    int lg) {
  float m[COLS], sum[COLS];
  for (int64_t j = 0; j < w; j++) m[j] = -INFINITY, sum[j] = 0.0f;
  for (int64_t k = 0; k < n; k++)
    for (int64_t j = 0; j < w; j++) m[j] = x[k * stride + j] > m[j] ? x[k * stride + j] : m[j];
  for (int64_t k = 0; k < n; k++)
    for (int64_t j = 0; j < w; j++) {
      const float e = fexp(x[k * stride + j] - m[j]);
      y[k * stride + j] = e;
      sum[j] += e;
    }
  if (lg) {
    for (int64_t j = 0; j < w; j++) sum[j] = logf(sum[j]);
    for (int64_t k = 0; k < n; k++)
      for (int64_t j = 0; j < w; j++) y[k * stride + j] = (x[k * stride + j] - m[j]) - sum[j];
  } else {
    for (int64_t j = 0; j < w; j++) sum[j] = 1.0f / sum[j];
    for (int64_t k = 0; k < n; k++)
      for (int64_t j = 0; j < w; j++) y[k * stride + j] *= sum[j];
  }
}

/* softmax:     gx = y * (g - sum_k g_k y_k)
 * log-softmax: gx = g - exp(y) * sum_k g_k
 * A row reads all of its g before writing any gx, so gx may be g's own buffer. */
MF_CLONES static void softmax_row_backward(const float *g, const float *y, float *gx, int64_t n,
                                           int lg, int acc) {
  if (lg) {
    const float sg = sum_lanes(g, n);
    for (int64_t i = 0; i < n; i++) gx[i] = (acc ? gx[i] : 0.0f) + g[i] - fexp(y[i]) * sg;
  } else {
    const float d = dot_lanes(g, y, n);
    for (int64_t i = 0; i < n; i++) gx[i] = (acc ? gx[i] : 0.0f) + y[i] * (g[i] - d);
  }
}

MF_CLONES static void softmax_block_backward(const float *g, const float *y, float *gx, int64_t n,
                                             int64_t stride, int64_t w, int lg, int acc) {
  float d[COLS];
  for (int64_t j = 0; j < w; j++) d[j] = 0.0f;
  if (lg) {
    for (int64_t k = 0; k < n; k++)
      for (int64_t j = 0; j < w; j++) d[j] += g[k * stride + j];
    for (int64_t k = 0; k < n; k++)
      for (int64_t j = 0; j < w; j++) {
        const int64_t i = k * stride + j;
        gx[i] = (acc ? gx[i] : 0.0f) + g[i] - fexp(y[i]) * d[j];
      }
  } else {
    for (int64_t k = 0; k < n; k++)
      for (int64_t j = 0; j < w; j++) d[j] += g[k * stride + j] * y[k * stride + j];
    for (int64_t k = 0; k < n; k++)
      for (int64_t j = 0; j < w; j++) {
        const int64_t i = k * stride + j;
        gx[i] = (acc ? gx[i] : 0.0f) + y[i] * (g[i] - d[j]);
      }
  }
}

typedef struct softmax_saved {
  int64_t outer, n, inner;
  int log;
} softmax_saved;

/* Calls ROW(offset) per contiguous row (inner == 1) or BLOCK(offset, width) per column
 * block, in parallel when the tensor is big. */
// clang-format off
#define SOFTMAX_FOR(s, ROW, BLOCK)                                                                 \
  do {                                                                                             \
    const int64_t n_ = (s)->n, inner_ = (s)->inner;                                                \
    const int64_t blocks_ = (inner_ + COLS - 1) / COLS, tasks_ = (s)->outer * blocks_;             \
    const int64_t total_ = (s)->outer * n_ * inner_;                                               \
    _Pragma("omp parallel for schedule(static) if (total_ > PAR_MIN_TRANS && tasks_ > 1)")         \
    for (int64_t t_ = 0; t_ < tasks_; t_++) {                                                      \
      if (inner_ == 1) {                                                                           \
        const int64_t off = t_ * n_;                                                               \
        ROW;                                                                                       \
      } else {                                                                                     \
        const int64_t c0_ = (t_ % blocks_) * COLS;                                                 \
        const int64_t off = (t_ / blocks_) * n_ * inner_ + c0_;                                    \
        const int64_t w = inner_ - c0_ < COLS ? inner_ - c0_ : COLS;                               \
        BLOCK;                                                                                     \
      }                                                                                            \
    }                                                                                              \
  } while (0)
// clang-format on

static void softmax_backward(mf_ctx *ctx, mf_node *n) {
  const softmax_saved *s = n->saved;
  const float *go = n->out->grad, *y = n->out->data;
  int acc;
  /* Not element-wise, but each row or column block reads its g before writing gx and
   * touches nothing else, so taking over the output gradient buffer is safe. */
  float *gx = mf__gin_inplace(ctx, n, n->in[0], &acc);
  if (!gx) return;
  const int lg = s->log;
  SOFTMAX_FOR(s, softmax_row_backward(go + off, y + off, gx + off, n_, lg, acc),
              softmax_block_backward(go + off, y + off, gx + off, n_, inner_, w, lg, acc));
}

static mf_tensor *softmax_op(mf_ctx *ctx, const char *op, mf_tensor *x, int axis, int lg) {
  const int a = mf__axis(op, x, axis);
  softmax_saved s = {1, x->shape[a], 1, lg};
  for (int k = 0; k < a; k++) s.outer *= x->shape[k];
  for (int k = a + 1; k < x->ndim; k++) s.inner *= x->shape[k];
  mf_tensor *out = mf_ctx_tensor(ctx, mf_tensor_shape(x));
  const float *xd = x->data;
  float *yd = out->data;
  if (out->numel)
    SOFTMAX_FOR(&s, mf__softmax_row(xd + off, yd + off, n_, lg),
                softmax_block(xd + off, yd + off, n_, inner_, w, lg));
  mf_node *n = mf__record(ctx, op, softmax_backward, out, 1, &x, MF_READS_OUT, sizeof s);
  if (n) *(softmax_saved *)n->saved = s;
  return out;
}

mf_tensor *mf_softmax(mf_ctx *ctx, mf_tensor *x, int axis) {
  return softmax_op(ctx, "softmax", x, axis, 0);
}

mf_tensor *mf_log_softmax(mf_ctx *ctx, mf_tensor *x, int axis) {
  return softmax_op(ctx, "log_softmax", x, axis, 1);
}
