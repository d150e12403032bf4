/* ops_rnn.c — one direction of one LSTM or GRU layer (nn.LSTM / nn.GRU, batch_first).
 *
 * The input projection does not depend on the recurrence, so it runs for all N*T rows at
 * once as one GEMM ([N*T, I] x [I, G]^T, G = 4H or 3H) into a gate buffer laid out like x
 * ([N, T, G]). Each time step then adds h_{t-1} · W_hh^T with one small GEMM whose operands
 * are strided views of that buffer and of the output (lda = T*H, ldc = T*G); the biases are
 * added, the gate rows go in place through fastmath.c's sigmoid and tanh array kernels, and
 * short element-wise loops write c_t and h_t. Those kernels are the ones mf_sigmoid and
 * mf_tanh run (the same per-CPU clone), so every gate is bit for bit mf_sigmoid / mf_tanh of
 * its pre-activation. The gate activations (and c_t, or the GRU's W_hn h + b_hn) stay in the
 * arena for backward, which therefore evaluates no exp at all except tanh(c_t).
 *
 * Backward through time keeps only what is truly sequential inside the loop: the element-wise
 * gate gradients of a step and dh_{t-1} = dgates · W_hh. The weight gradients are sums over
 * all steps and run after the loop as single GEMMs over the N*T rows (dW_hh against a copy
 * of h shifted by one step), as do dx and the bias gradients (column sums in a fixed order).
 *
 * The per-step kernels are short (N*H elements; 4096 in the CNN-BiLSTM model), so they run
 * on one thread unless a step is large: waking a team costs more than the work.
 */
#include <math.h>
#include <string.h>

#include "fastmath.h"
#include "internal.h"
#include "melforge/ops.h"

/* A step's element-wise work (N*H cells, several exp each) is worth threads from here on. */
#define PAR_MIN_CELLS (MF_PAR_MIN / 4)

/* ---- shared plumbing ---------------------------------------------------------------------- */

/* GEMMs go through mf__sgemm; the per-step operands are strided views of [N, T, *]
 * buffers, addressed with explicit leading dimensions. */
#define gemm(ta, tb, M, N, K, ...) mf__sgemm(ta, tb, M, N, K, 1.0f, __VA_ARGS__)

/* sgemm's beta for a gradient destination: add to it or overwrite it. */
static inline float acc_beta(int accumulate) { return accumulate ? 1.0f : 0.0f; }

/* Column sums of a [rows, cols] into d1 and d2 (either may be NULL), each overwritten or
 * added to per its accumulate flag. Threads split the columns; every column is summed in
 * row order in double, so the result does not depend on the thread count. */
static void col_sums(const float *a, int64_t rows, int64_t cols, float *d1, int acc1, float *d2,
                     int acc2) {
  enum { CB = 64 };
  const int64_t nblk = (cols + CB - 1) / CB;
#pragma omp parallel for schedule(static) if (rows * cols > MF_PAR_MIN && nblk > 1)
  for (int64_t blk = 0; blk < nblk; blk++) {
    const int64_t j0 = blk * CB, nj = cols - j0 < CB ? cols - j0 : CB;
    double s[CB] = {0};
    for (int64_t r = 0; r < rows; r++) {
      const float *row = a + r * cols + j0;
      for (int64_t j = 0; j < nj; j++) s[j] += row[j];
    }
    for (int64_t j = 0; j < nj; j++) {
      if (d1) d1[j0 + j] = (acc1 ? d1[j0 + j] : 0.0f) + (float)s[j];
      if (d2) d2[j0 + j] = (acc2 ? d2[j0 + j] : 0.0f) + (float)s[j];
    }
  }
}

typedef struct rnn_dims {
  int64_t N, T, In, H, G; /* In: input size (I is complex.h's); G = gates * H */
  int reverse;
} rnn_dims;

static rnn_dims check_shapes(const char *op, int gates, const mf_tensor *x, const mf_tensor *w_ih,
                             const mf_tensor *w_hh, const mf_tensor *b_ih, const mf_tensor *b_hh,
                             int reverse) {
  const int four = gates == 4;
  MF_SHAPE_CHECK(x->ndim == 3, op, "x must be [N, T, I] (batch_first)", x, NULL);
  MF_SHAPE_CHECK(w_hh->ndim == 2 && w_hh->shape[0] == gates * w_hh->shape[1], op,
                 four ? "w_hh must be [4H, H]" : "w_hh must be [3H, H]", w_hh, NULL);
  rnn_dims d = {x->shape[0],    x->shape[1],    x->shape[2],
                w_hh->shape[1], w_hh->shape[0], reverse != 0};
  MF_SHAPE_CHECK(
      w_ih->ndim == 2 && w_ih->shape[0] == d.G, op,
      four ? "w_ih must be [4H, I] with w_hh [4H, H]" : "w_ih must be [3H, I] with w_hh [3H, H]",
      w_ih, w_hh);
  MF_SHAPE_CHECK(w_ih->shape[1] == d.In, op, "w_ih must be [G, I] for x [N, T, I]", w_ih, x);
  if (b_ih)
    MF_SHAPE_CHECK(b_ih->ndim == 1 && b_ih->shape[0] == d.G, op,
                   "b_ih must have w_hh's first dimension", b_ih, w_hh);
  if (b_hh)
    MF_SHAPE_CHECK(b_hh->ndim == 1 && b_hh->shape[0] == d.G, op,
                   "b_hh must have w_hh's first dimension", b_hh, w_hh);
  return d;
}

/* Time index processed at step s, and the one before it (whose h feeds step s). */
static inline int64_t time_of(const rnn_dims *d, int64_t s) {
  return d->reverse ? d->T - 1 - s : s;
}
static inline int64_t prev_time(const rnn_dims *d, int64_t t) { return d->reverse ? t + 1 : t - 1; }

/* Arena memory that outlives the op when backward needs it, scratch otherwise. */
static float *buffer(mf_ctx *ctx, int keep, int64_t count) {
  size_t bytes = (size_t)count * sizeof(float);
  return keep ? mf_ctx_alloc(ctx, bytes) : mf__scratch(ctx, bytes);
}

/* h_prev[n, t] = h[n, t - 1] (t + 1 when reversed), zero for the first step: the left
 * operand of dW_hh = sum_t dgates_t^T h_{t-1} as one GEMM over all rows. */
static float *shifted_h(mf_ctx *ctx, const rnn_dims *d, const float *h) {
  const int64_t N = d->N, T = d->T, H = d->H;
  float *hp = mf__scratch(ctx, (size_t)(N * T * H) * sizeof(float));
  for (int64_t n = 0; n < N && T > 0; n++) {
    float *dst = hp + n * T * H;
    const float *src = h + n * T * H;
    if (d->reverse) {
      memcpy(dst, src + H, (size_t)((T - 1) * H) * sizeof(float));
      memset(dst + (T - 1) * H, 0, (size_t)H * sizeof(float));
    } else {
      memset(dst, 0, (size_t)H * sizeof(float));
      memcpy(dst + H, src, (size_t)((T - 1) * H) * sizeof(float));
    }
  }
  return hp;
}

/* The gradients every recurrent layer ends with, from the per-row gate gradients:
 * dgx [N*T, G] (the input-side pre-activations) and dgh (the hidden-side ones; the same
 * buffer for the LSTM, where both sides enter the gates as one sum). */
static void finish_backward(mf_ctx *ctx, mf_node *nd, const rnn_dims *d, const float *dgx,
                            const float *dgh) {
  mf_tensor *x = nd->in[0], *w_ih = nd->in[1], *w_hh = nd->in[2];
  mf_tensor *b_ih = nd->in[3], *b_hh = nd->in[4];
  const int64_t R = d->N * d->T, G = d->G, In = d->In, H = d->H;
  int acc;
  float *g;
  if ((g = mf__gin(ctx, w_ih, &acc)))
    gemm(1, 0, G, In, R, dgx, G, x->data, In, acc_beta(acc), g, In);
  if ((g = mf__gin(ctx, x, &acc)))
    gemm(0, 0, R, In, G, dgx, G, w_ih->data, In, acc_beta(acc), g, In);
  if ((g = mf__gin(ctx, w_hh, &acc))) {
    float *hp = shifted_h(ctx, d, nd->out->data);
    gemm(1, 0, G, H, R, dgh, G, hp, H, acc_beta(acc), g, H);
    mf__release(ctx, hp, (size_t)(R * H) * sizeof(float));
  }
  int acc_i = 0, acc_h = 0;
  float *gbi = mf__gin(ctx, b_ih, &acc_i);
  float *gbh = mf__gin(ctx, b_hh, &acc_h);
  if (dgx == dgh) {
    col_sums(dgx, R, G, gbi, acc_i, gbh, acc_h);
  } else {
    if (gbi) col_sums(dgx, R, G, gbi, acc_i, NULL, 0);
    if (gbh) col_sums(dgh, R, G, gbh, acc_h, NULL, 0);
  }
}

/* ---- LSTM --------------------------------------------------------------------------------- */

typedef struct lstm_saved {
  rnn_dims d;
  float *act;  /* [N, T, 4H] gate activations i, f, g, o */
  float *cell; /* [N, T, H] c_t */
} lstm_saved;

static void lstm_backward(mf_ctx *ctx, mf_node *nd) {
  const lstm_saved *sv = nd->saved;
  const rnn_dims *d = &sv->d;
  const int64_t N = d->N, T = d->T, H = d->H, G = d->G;
  const float *go = nd->out->grad, *w_hh = nd->in[2]->data;
  float *dg = mf__scratch(ctx, (size_t)(N * T * G) * sizeof(float));
  /* dh: gradient reaching h_t from step t+1; dc the same for c_t; zeros: c_{-1};
   * tc: tanh(c_t) of a step, one row per sample. */
  const size_t work = (size_t)(4 * N * H) * sizeof(float);
  float *dh = mf__scratch(ctx, work);
  float *dc = dh + N * H, *zeros = dc + N * H, *tc = zeros + N * H;
  memset(dh, 0, (size_t)(3 * N * H) * sizeof(float));

  for (int64_t s = T - 1; s >= 0; s--) {
    const int64_t t = time_of(d, s), tp = prev_time(d, t);
#pragma omp parallel for schedule(static) if (N * H > PAR_MIN_CELLS && N > 1)
    for (int64_t n = 0; n < N; n++) {
      const int64_t row = n * T + t;
      const float *a = sv->act + row * G, *c = sv->cell + row * H, *gh = go + row * H;
      const float *cp = s > 0 ? sv->cell + (n * T + tp) * H : zeros;
      float *dgr = dg + row * G, *dhn = dh + n * H, *dcn = dc + n * H, *tcn = tc + n * H;
      mf__vtanh(c, tcn, H); /* the forward's tanh(c_t), recomputed by the same kernel */
#pragma omp simd
      for (int64_t j = 0; j < H; j++) {
        const float i = a[j], f = a[H + j], gg = a[2 * H + j], o = a[3 * H + j];
        const float tcv = tcn[j];
        const float dhv = gh[j] + dhn[j];
        const float dcv = dcn[j] + dhv * o * (1.0f - tcv * tcv);
        dgr[j] = dcv * gg * i * (1.0f - i);
        dgr[H + j] = dcv * cp[j] * f * (1.0f - f);
        dgr[2 * H + j] = dcv * i * (1.0f - gg * gg);
        dgr[3 * H + j] = dhv * tcv * o * (1.0f - o);
        dcn[j] = dcv * f;
      }
    }
    /* dh_{t-1} = dgates_t · W_hh (the first step's h_{-1} is the constant zero state). */
    if (s > 0) gemm(0, 0, N, H, G, dg + t * G, T * G, w_hh, H, 0.0f, dh, H);
  }
  mf__release(ctx, dh, work);
  finish_backward(ctx, nd, d, dg, dg);
  mf__release(ctx, dg, (size_t)(N * T * G) * sizeof(float));
}

mf_tensor *mf_lstm(mf_ctx *ctx, mf_tensor *x, mf_tensor *w_ih, mf_tensor *w_hh, mf_tensor *b_ih,
                   mf_tensor *b_hh, int reverse) {
  const rnn_dims d = check_shapes("lstm", 4, x, w_ih, w_hh, b_ih, b_hh, reverse);
  const int64_t N = d.N, T = d.T, In = d.In, H = d.H, G = d.G;
  mf_tensor *out = mf_ctx_tensor(ctx, MF_SHAPE(N, T, H));
  mf_tensor *in[5] = {x, w_ih, w_hh, b_ih, b_hh};
  const int keep = mf__will_record(ctx, 5, in);
  float *act = buffer(ctx, keep, N * T * G), *cell = buffer(ctx, keep, N * T * H);
  /* Both biases enter every gate as a plain sum: fold them once. zeros: c_{-1}. */
  float *bias = mf__scratch(ctx, (size_t)(G + H) * sizeof(float)), *zeros = bias + G;
  for (int64_t j = 0; j < G; j++)
    bias[j] = (b_ih ? b_ih->data[j] : 0.0f) + (b_hh ? b_hh->data[j] : 0.0f);
  memset(zeros, 0, (size_t)H * sizeof(float));
  float *h = out->data;

  gemm(0, 1, N * T, G, In, x->data, In, w_ih->data, In, 0.0f, act, G);
  for (int64_t s = 0; s < T; s++) {
    const int64_t t = time_of(&d, s), tp = prev_time(&d, t);
    if (s > 0) gemm(0, 1, N, G, H, h + tp * H, T * H, w_hh->data, H, 1.0f, act + t * G, T * G);
#pragma omp parallel for schedule(static) if (N * H > PAR_MIN_CELLS && N > 1)
    for (int64_t n = 0; n < N; n++) {
      const int64_t row = n * T + t;
      float *a = act + row * G, *c = cell + row * H, *hr = h + row * H;
      const float *cp = s > 0 ? cell + (n * T + tp) * H : zeros;
      for (int64_t j = 0; j < G; j++) a[j] += bias[j];
      mf__vsigmoid(a, a, 2 * H); /* i, f */
      mf__vtanh(a + 2 * H, a + 2 * H, H);
      mf__vsigmoid(a + 3 * H, a + 3 * H, H);
      const float *i = a, *f = a + H, *gg = a + 2 * H, *o = a + 3 * H;
      for (int64_t j = 0; j < H; j++) c[j] = f[j] * cp[j] + i[j] * gg[j]; /* PyTorch's order */
      mf__vtanh(c, hr, H);
      for (int64_t j = 0; j < H; j++) hr[j] = o[j] * hr[j];
    }
  }
  mf__release(ctx, bias, (size_t)(G + H) * sizeof(float));

  mf_node *nd = mf__record(ctx, "lstm", lstm_backward, out, 5, in,
                           MF_READS_IN(0) | MF_READS_IN(1) | MF_READS_IN(2) | MF_READS_OUT,
                           sizeof(lstm_saved));
  if (nd) {
    lstm_saved *sv = nd->saved;
    sv->d = d, sv->act = act, sv->cell = cell;
  } else {
    mf__release(ctx, cell, (size_t)(N * T * H) * sizeof(float));
    mf__release(ctx, act, (size_t)(N * T * G) * sizeof(float));
  }
  return out;
}

/* ---- GRU ---------------------------------------------------------------------------------- */

typedef struct gru_saved {
  rnn_dims d;
  float *act; /* [N, T, 3H] gate activations r, z, n */
  float *hn;  /* [N, T, H] W_hn h_{t-1} + b_hn, the term r scales */
} gru_saved;

static void gru_backward(mf_ctx *ctx, mf_node *nd) {
  const gru_saved *sv = nd->saved;
  const rnn_dims *d = &sv->d;
  const int64_t N = d->N, T = d->T, H = d->H, G = d->G;
  const float *go = nd->out->grad, *h = nd->out->data, *w_hh = nd->in[2]->data;
  /* The input and hidden sides differ in the n gate only (r scales W_hn h + b_hn). */
  float *dgx = mf__scratch(ctx, (size_t)(2 * N * T * G) * sizeof(float)), *dgh = dgx + N * T * G;
  float *dh = mf__scratch(ctx, (size_t)(2 * N * H) * sizeof(float)), *zeros = dh + N * H;
  memset(dh, 0, (size_t)(2 * N * H) * sizeof(float));

  for (int64_t s = T - 1; s >= 0; s--) {
    const int64_t t = time_of(d, s), tp = prev_time(d, t);
#pragma omp parallel for schedule(static) if (N * H > PAR_MIN_CELLS && N > 1)
    for (int64_t n = 0; n < N; n++) {
      const int64_t row = n * T + t;
      const float *a = sv->act + row * G, *hn = sv->hn + row * H, *gh = go + row * H;
      const float *hp = s > 0 ? h + (n * T + tp) * H : zeros;
      float *dx = dgx + row * G, *dhh = dgh + row * G, *dhn = dh + n * H;
#pragma omp simd
      for (int64_t j = 0; j < H; j++) {
        const float r = a[j], z = a[H + j], nv = a[2 * H + j];
        const float dhv = gh[j] + dhn[j];
        const float dpn = dhv * (1.0f - z) * (1.0f - nv * nv);
        const float dpr = dpn * hn[j] * r * (1.0f - r);
        const float dpz = dhv * (hp[j] - nv) * z * (1.0f - z);
        dx[j] = dpr;
        dx[H + j] = dpz;
        dx[2 * H + j] = dpn;
        dhh[j] = dpr;
        dhh[H + j] = dpz;
        dhh[2 * H + j] = dpn * r;
        dhn[j] = dhv * z; /* the direct path h' = ... + z h */
      }
    }
    if (s > 0) gemm(0, 0, N, H, G, dgh + t * G, T * G, w_hh, H, 1.0f, dh, H);
  }
  mf__release(ctx, dh, (size_t)(2 * N * H) * sizeof(float));
  finish_backward(ctx, nd, d, dgx, dgh);
  mf__release(ctx, dgx, (size_t)(2 * N * T * G) * sizeof(float));
}

mf_tensor *mf_gru(mf_ctx *ctx, mf_tensor *x, mf_tensor *w_ih, mf_tensor *w_hh, mf_tensor *b_ih,
                  mf_tensor *b_hh, int reverse) {
  const rnn_dims d = check_shapes("gru", 3, x, w_ih, w_hh, b_ih, b_hh, reverse);
  const int64_t N = d.N, T = d.T, In = d.In, H = d.H, G = d.G;
  mf_tensor *out = mf_ctx_tensor(ctx, MF_SHAPE(N, T, H));
  mf_tensor *in[5] = {x, w_ih, w_hh, b_ih, b_hh};
  const int keep = mf__will_record(ctx, 5, in);
  float *act = buffer(ctx, keep, N * T * G), *hn = buffer(ctx, keep, N * T * H);
  /* r and z take both biases as a plain sum; n takes b_in outside and b_hn inside r * (.):
   * bias = [b_ir + b_hr, b_iz + b_hz, b_in], bhn = b_hn. gh: one step's h_{t-1} · W_hh^T. */
  const size_t scratch = (size_t)(G + 2 * H + N * G) * sizeof(float);
  float *bias = mf__scratch(ctx, scratch), *bhn = bias + G, *zeros = bhn + H, *gh = zeros + H;
  for (int64_t j = 0; j < G; j++) {
    const float bh = b_hh && j < 2 * H ? b_hh->data[j] : 0.0f;
    bias[j] = (b_ih ? b_ih->data[j] : 0.0f) + bh;
  }
  for (int64_t j = 0; j < H; j++) bhn[j] = b_hh ? b_hh->data[2 * H + j] : 0.0f;
  memset(zeros, 0, (size_t)H * sizeof(float));
  float *h = out->data;

  gemm(0, 1, N * T, G, In, x->data, In, w_ih->data, In, 0.0f, act, G);
  for (int64_t s = 0; s < T; s++) {
    const int64_t t = time_of(&d, s), tp = prev_time(&d, t);
    if (s > 0)
      gemm(0, 1, N, G, H, h + tp * H, T * H, w_hh->data, H, 0.0f, gh, G);
    else
      memset(gh, 0, (size_t)(N * G) * sizeof(float)); /* h_{-1} = 0 */
#pragma omp parallel for schedule(static) if (N * H > PAR_MIN_CELLS && N > 1)
    for (int64_t n = 0; n < N; n++) {
      const int64_t row = n * T + t;
      float *a = act + row * G, *hnr = hn + row * H, *hr = h + row * H;
      const float *g = gh + n * G;
      const float *hp = s > 0 ? h + (n * T + tp) * H : zeros;
      for (int64_t j = 0; j < 2 * H; j++) a[j] = a[j] + bias[j] + g[j];
      mf__vsigmoid(a, a, 2 * H); /* r, z */
      const float *r = a, *z = a + H;
      float *nv = a + 2 * H;
      for (int64_t j = 0; j < H; j++) {
        const float hnv = g[2 * H + j] + bhn[j];
        hnr[j] = hnv;
        nv[j] = nv[j] + bias[2 * H + j] + r[j] * hnv;
      }
      mf__vtanh(nv, nv, H);
      for (int64_t j = 0; j < H; j++) hr[j] = (hp[j] - nv[j]) * z[j] + nv[j]; /* PyTorch's form */
    }
  }
  mf__release(ctx, bias, scratch);

  mf_node *nd = mf__record(ctx, "gru", gru_backward, out, 5, in,
                           MF_READS_IN(0) | MF_READS_IN(1) | MF_READS_IN(2) | MF_READS_OUT,
                           sizeof(gru_saved));
  if (nd) {
    gru_saved *sv = nd->saved;
    sv->d = d, sv->act = act, sv->hn = hn;
  } else {
    mf__release(ctx, hn, (size_t)(N * T * H) * sizeof(float));
    mf__release(ctx, act, (size_t)(N * T * G) * sizeof(float));
  }
  return out;
}
