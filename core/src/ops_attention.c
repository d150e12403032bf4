/* ops_attention.c — multi-head self-attention, sinusoidal positional encoding and additive
 * attention pooling, each a fused kernel.
 *
 * Self-attention follows nn.MultiheadAttention(batch_first=True) with query = key = value:
 * one GEMM projects every (n, t) row to [q | k | v]; then each (sample, head) pair is an
 * independent problem S = Q Kᵀ / sqrt(d), P = softmax(S), O = dropout(P) V, solved with
 * single-threaded sgemm calls spread over the threads (OpenBLAS's OpenMP build runs serially
 * inside a parallel region; 130x130x32 products are too small to thread well anyway); one
 * more GEMM applies the output projection. Backward mirrors it: the projections' gradients
 * are big GEMMs, the per-pair part runs in the same parallel loop. Every output element is
 * written by exactly one thread and bias gradients sum rows in a fixed order, so results do
 * not depend on scheduling.
 *
 * The attention-dropout mask follows ops_dropout.c: element i of the [N, H, T, T] weights
 * uses word i % 4 of Philox block base + i / 4 of the context's dropout stream, so it does
 * not depend on the thread count. Drawing it costs about as much as the softmax, so the
 * forward keeps it as one byte per weight for backward instead of drawing it twice.
 *
 * Softmax rows, tanh and the Philox words come from fastmath.c's per-CPU kernels, the ones
 * mf_softmax, mf_tanh and mf_dropout run: attention weights are bit for bit mf_softmax of
 * the scores, the pooling's z bit for bit mf_tanh of its projection.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "fastmath.h"
#include "internal.h"
#include "melforge/ops.h"

/* ---- shared kernels -------------------------------------------------------------------- */

/* GEMMs go through mf__sgemm with explicit leading dimensions, so a head's columns inside
 * the packed [q | k | v] rows are addressed without copying. */
#define gemm mf__sgemm

/* y [rows, out] = x [rows, in] · wᵀ + b: the bias is written first so the GEMM adds onto it. */
static void project(const float *x, const float *w, const float *b, int64_t rows, int64_t in,
                    int64_t out, float *y) {
  if (b) {
#pragma omp parallel for schedule(static) if (rows * out > MF_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) memcpy(y + r * out, b, (size_t)out * sizeof(float));
  }
  gemm(0, 1, rows, out, in, 1.0f, x, in, w, in, b ? 1.0f : 0.0f, y, out);
}

#define COLBLK 32

/* out[c] (+)= sum_r wt[r] a[r * ld + c] (wt NULL: weight 1), summed in double in row order.
 * Column blocks go to threads, so each output is one thread's fixed-order sum. */
static void colsum(const float *a, int64_t rows, int64_t cols, int64_t ld, const float *wt,
                   float *out, int acc) {
  const int64_t nblk = (cols + COLBLK - 1) / COLBLK;
#pragma omp parallel for schedule(static) if (rows * cols > MF_PAR_MIN && nblk > 1)
  for (int64_t blk = 0; blk < nblk; blk++) {
    const int64_t c0 = blk * COLBLK, nc = cols - c0 < COLBLK ? cols - c0 : COLBLK;
    double s[COLBLK] = {0};
    for (int64_t r = 0; r < rows; r++) {
      const float *pr = a + r * ld + c0;
      const double w = wt ? (double)wt[r] : 1.0;
      for (int64_t c = 0; c < nc; c++) s[c] += w * pr[c];
    }
    for (int64_t c = 0; c < nc; c++) out[c0 + c] = (acc ? out[c0 + c] : 0.0f) + (float)s[c];
  }
}

/* ---- attention dropout mask ------------------------------------------------------------ */

typedef struct drop_plan {
  int on;
  uint32_t key[2];
  uint64_t base; /* first Philox block of this op's mask */
  int32_t thr;   /* philox_keep_threshold(p) */
  float scale;   /* 1 / (1 - p) */
} drop_plan;

/* Takes the blocks for n mask elements from the dropout stream. */
static drop_plan drop_draw(mf_ctx *ctx, int64_t n, float p) {
  mf_rng *r = mf__dropout_rng(ctx);
  drop_plan d = {1,
                 {r->key[0], r->key[1]},
                 r->counter,
                 philox_keep_threshold(p),
                 p < 1.0f ? 1.0f / (1.0f - p) : 0.0f};
  r->counter += (uint64_t)((n + 3) / 4);
  r->nbuf = 0; /* words buffered before this op belong to blocks it has passed */
  return d;
}

/* Philox blocks drawn per call when building a mask: 4 KiB of words on the stack. */
#define MASK_BLOCKS 256

/* keep[j] = 1 if element i0 + j of the op's [N, H, T, T] weights survives, for j < len. */
static void drop_mask(const drop_plan *d, int64_t i0, int64_t len, uint8_t *keep) {
  uint32_t w[4 * MASK_BLOCKS];
  /* Runs of whole Philox blocks; j is the position in keep of the run's first word
   * (negative when i0 starts inside a block). */
  for (int64_t j = -(i0 % 4), blk = i0 / 4; j < len; j += 4 * MASK_BLOCKS, blk += MASK_BLOCKS) {
    const int64_t nb = (len - j + 3) / 4 < MASK_BLOCKS ? (len - j + 3) / 4 : MASK_BLOCKS;
    mf__philox_fill(d->key, d->base + (uint64_t)blk, nb, w);
    const int64_t e0 = j < 0 ? -j : 0, e1 = len - j < 4 * nb ? len - j : 4 * nb;
    for (int64_t e = e0; e < e1; e++) keep[j + e] = (uint8_t)philox_keeps(w[e], d->thr);
  }
}

/* ---- multi-head self-attention --------------------------------------------------------- */

typedef struct mha_saved {
  int64_t N, T, E, H;
  float *qkv;    /* [N * T, 3E]: q | k | v of every row */
  float *p;      /* [N, H, T, T]: attention weights before dropout */
  float *ao;     /* [N * T, E]: heads' outputs, concatenated (input of the out projection) */
  uint8_t *keep; /* [N, H, T, T] dropout keep flags, NULL without dropout */
  drop_plan drop;
} mha_saved;

/* Pair i = (sample i / H, head i % H). p receives its softmax (T x T); with dropout, keep its
 * T x T keep flags and pd T x T scratch for the dropped weights. Writes the head's columns
 * of ao. */
static void mha_pair_forward(const mha_saved *s, int64_t i, float *p, uint8_t *keep, float *pd) {
  const int64_t T = s->T, E = s->E, d = E / s->H, ld = 3 * E, TT = T * T;
  const int64_t n = i / s->H, h = i % s->H;
  const float *q = s->qkv + n * T * ld + h * d, *k = q + E, *v = q + 2 * E;
  gemm(0, 1, T, T, d, 1.0f / sqrtf((float)d), q, ld, k, ld, 0.0f, p, T);
  for (int64_t t = 0; t < T; t++) mf__softmax_row(p + t * T, p + t * T, T, 0);
  const float *pv = p;
  if (keep) {
    drop_mask(&s->drop, i * TT, TT, keep);
    const float sc = s->drop.scale;
    for (int64_t j = 0; j < TT; j++) pd[j] = sel(keep[j], p[j] * sc, 0.0f);
    pv = pd;
  }
  gemm(0, 0, T, d, T, 1.0f, pv, T, v, ld, 0.0f, s->ao + n * T * E + h * d, E);
}

/* Backward of pair i: dao holds d loss / d ao; writes the pair's columns of dqkv (all of its
 * rows, so dqkv needs no zeroing). a, b: T x T scratch. */
static void mha_pair_backward(const mha_saved *s, int64_t i, const float *dao, float *dqkv,
                              float *a, float *b) {
  const int64_t T = s->T, E = s->E, d = E / s->H, ld = 3 * E, TT = T * T;
  const int64_t n = i / s->H, h = i % s->H;
  const int64_t row = n * T * ld + h * d;
  const float *q = s->qkv + row, *k = q + E, *v = q + 2 * E;
  const float *p = s->p + i * TT;
  const float *go = dao + n * T * E + h * d;
  const float alpha = 1.0f / sqrtf((float)d);
  /* b = d loss / d (dropped weights) = dO Vᵀ. */
  gemm(0, 1, T, T, d, 1.0f, go, E, v, ld, 0.0f, b, T);
  const float *pv = p;
  if (s->keep) {
    const uint8_t *keep = s->keep + i * TT;
    const float sc = s->drop.scale;
    for (int64_t j = 0; j < TT; j++) {
      b[j] = sel(keep[j], b[j] * sc, 0.0f); /* through the mask: d loss / d P */
      a[j] = sel(keep[j], p[j] * sc, 0.0f); /* the dropped weights the forward used */
    }
    pv = a;
  }
  gemm(1, 0, T, d, T, 1.0f, pv, T, go, E, 0.0f, dqkv + row + 2 * E, ld); /* dV = P'ᵀ dO */
  /* Softmax backward: dS = P ∘ (dP - rowsum(dP ∘ P)). */
  for (int64_t t = 0; t < T; t++) {
    float *br = b + t * T;
    const float *pr = p + t * T;
    const float r = dot_lanes(br, pr, T);
    for (int64_t j = 0; j < T; j++) br[j] = pr[j] * (br[j] - r);
  }
  gemm(0, 0, T, d, T, alpha, b, T, k, ld, 0.0f, dqkv + row, ld);     /* dQ = dS K / sqrt d */
  gemm(1, 0, T, d, T, alpha, b, T, q, ld, 0.0f, dqkv + row + E, ld); /* dK = dSᵀ Q / sqrt d */
}

/* The (sample, head) pairs go to threads, one single-threaded sgemm each, whenever there is
 * more than one: a pair's products (130 x 130 x 32 in the CNN-Transformer) are too small for
 * OpenBLAS to thread well. A single pair is left to OpenBLAS's own threading. */
static int pairs_in_parallel(int64_t pairs) { return pairs > 1 && omp_get_max_threads() > 1; }

static void mha_backward(mf_ctx *ctx, mf_node *n) {
  const mha_saved *s = n->saved;
  mf_tensor *x = n->in[0], *in_w = n->in[1], *in_b = n->in[2], *out_w = n->in[3];
  mf_tensor *out_b = n->in[4];
  const int64_t N = s->N, T = s->T, E = s->E, H = s->H, NT = N * T;
  const float *go = n->out->grad;
  int acc;

  float *g = mf__gin(ctx, out_w, &acc);
  if (g) gemm(1, 0, E, E, NT, 1.0f, go, E, s->ao, E, acc ? 1.0f : 0.0f, g, E);
  g = mf__gin(ctx, out_b, &acc);
  if (g) colsum(go, NT, E, E, NULL, g, acc);

  const int need_x = x->flags & MF_REQUIRES_GRAD, need_w = in_w->flags & MF_REQUIRES_GRAD,
            need_b = in_b && (in_b->flags & MF_REQUIRES_GRAD);
  if (!need_x && !need_w && !need_b) return;

  const size_t dao_bytes = (size_t)(NT * E) * sizeof(float);
  const size_t dqkv_bytes = (size_t)(NT * 3 * E) * sizeof(float);
  const size_t per = 2 * (size_t)(T * T);
  const size_t tmp_bytes = (size_t)omp_get_max_threads() * per * sizeof(float);
  float *dao = mf__scratch(ctx, dao_bytes);
  float *dqkv = mf__scratch(ctx, dqkv_bytes);
  float *tmp = mf__scratch(ctx, tmp_bytes);
  gemm(0, 0, NT, E, E, 1.0f, go, E, out_w->data, E, 0.0f, dao, E);

  const int64_t pairs = N * H;
#pragma omp parallel for schedule(static) if (pairs_in_parallel(pairs))
  for (int64_t i = 0; i < pairs; i++) {
    float *a = tmp + (size_t)omp_get_thread_num() * per;
    mha_pair_backward(s, i, dao, dqkv, a, a + T * T);
  }

  g = mf__gin(ctx, x, &acc);
  if (g) gemm(0, 0, NT, E, 3 * E, 1.0f, dqkv, 3 * E, in_w->data, E, acc ? 1.0f : 0.0f, g, E);
  g = mf__gin(ctx, in_w, &acc);
  if (g) gemm(1, 0, 3 * E, E, NT, 1.0f, dqkv, 3 * E, x->data, E, acc ? 1.0f : 0.0f, g, E);
  g = mf__gin(ctx, in_b, &acc);
  if (g) colsum(dqkv, NT, 3 * E, 3 * E, NULL, g, acc);

  mf__release(ctx, tmp, tmp_bytes);
  mf__release(ctx, dqkv, dqkv_bytes);
  mf__release(ctx, dao, dao_bytes);
}

mf_tensor *mf_self_attention(mf_ctx *ctx, mf_tensor *x, mf_tensor *in_w, mf_tensor *in_b,
                             mf_tensor *out_w, mf_tensor *out_b, int heads, float dropout,
                             int training) {
  static const char op[] = "self_attention";
  MF_SHAPE_CHECK(x->ndim == 3, op, "x must be [N, T, E]", x, NULL);
  const int64_t N = x->shape[0], T = x->shape[1], E = x->shape[2];
  if (heads < 1 || E < 1 || E % heads != 0) {
    char sx[96];
    mf_panic(__FILE__, __LINE__, "%s: heads = %d must divide the embedding size of x %s", op, heads,
             mf_tensor_shape_str(x, sx, sizeof sx));
  }
  MF_SHAPE_CHECK(in_w->ndim == 2 && in_w->shape[0] == 3 * E && in_w->shape[1] == E, op,
                 "in_w must be [3E, E] for x [N, T, E]", in_w, x);
  MF_SHAPE_CHECK(!in_b || (in_b->ndim == 1 && in_b->shape[0] == 3 * E), op,
                 "in_b must be [3E] for x [N, T, E]", in_b ? in_b : x, x);
  MF_SHAPE_CHECK(out_w->ndim == 2 && out_w->shape[0] == E && out_w->shape[1] == E, op,
                 "out_w must be [E, E] for x [N, T, E]", out_w, x);
  MF_SHAPE_CHECK(!out_b || (out_b->ndim == 1 && out_b->shape[0] == E), op,
                 "out_b must be [E] for x [N, T, E]", out_b ? out_b : x, x);
  MF_CHECK(dropout >= 0.0f && dropout <= 1.0f, "%s: dropout must be in [0, 1], got %g", op,
           (double)dropout);

  mf_tensor *in[5] = {x, in_w, in_b, out_w, out_b};
  const int rec = mf__will_record(ctx, 5, in);
  const int64_t H = heads, NT = N * T, TT = T * T, pairs = N * H;
  const int drop = training && dropout > 0.0f;
  mha_saved s = {N, T, E, H, NULL, NULL, NULL, NULL, {0}};
  if (drop) s.drop = drop_draw(ctx, pairs * TT, dropout);

  /* Recorded: Q, K, V, P, the keep flags and the heads' outputs live until backward.
   * Otherwise P and the flags are per-thread scratch and nothing outlives the call. */
  const size_t qkv_bytes = (size_t)(NT * 3 * E) * sizeof(float);
  const size_t ao_bytes = (size_t)(NT * E) * sizeof(float);
  s.qkv = rec ? mf_ctx_alloc(ctx, qkv_bytes) : mf__scratch(ctx, qkv_bytes);
  s.ao = rec ? mf_ctx_alloc(ctx, ao_bytes) : mf__scratch(ctx, ao_bytes);
  if (rec) {
    s.p = mf_ctx_alloc(ctx, (size_t)(pairs * TT) * sizeof(float));
    if (drop) s.keep = mf_ctx_alloc(ctx, (size_t)(pairs * TT));
  }
  /* Per thread, in floats: [P when not kept] [dropped weights] [keep flags when not kept]. */
  const int64_t per = (rec ? 0 : TT) + (drop ? TT : 0) + (drop && !rec ? (TT + 3) / 4 : 0);
  const size_t tmp_bytes = (size_t)omp_get_max_threads() * (size_t)per * sizeof(float);
  float *tmp = per ? mf__scratch(ctx, tmp_bytes) : NULL;

  project(x->data, in_w->data, in_b ? in_b->data : NULL, NT, E, 3 * E, s.qkv);
#pragma omp parallel for schedule(static) if (pairs_in_parallel(pairs))
  for (int64_t i = 0; i < pairs; i++) {
    float *mine = tmp ? tmp + (size_t)omp_get_thread_num() * (size_t)per : NULL;
    float *p = rec ? s.p + i * TT : mine;
    float *pd = drop ? mine + (rec ? 0 : TT) : NULL;
    uint8_t *keep = !drop ? NULL : rec ? s.keep + i * TT : (uint8_t *)(pd + TT);
    mha_pair_forward(&s, i, p, keep, pd);
  }
  mf_tensor *out = mf_ctx_tensor(ctx, MF_SHAPE(N, T, E));
  project(s.ao, out_w->data, out_b ? out_b->data : NULL, NT, E, E, out->data);

  if (tmp) mf__release(ctx, tmp, tmp_bytes);
  mf_node *n = mf__record(ctx, op, mha_backward, out, 5, in,
                          MF_READS_IN(0) | MF_READS_IN(1) | MF_READS_IN(3), sizeof s);
  if (n) {
    memcpy(n->saved, &s, sizeof s);
  } else {
    mf__release(ctx, s.ao, ao_bytes);
    mf__release(ctx, s.qkv, qkv_bytes);
  }
  return out;
}

/* ---- sinusoidal positional encoding ---------------------------------------------------- */

/* pe [T, D] in PyTorch's float order (the transformer tutorial's buffer):
 * div = exp(arange(0, D, 2) * (-ln 10000 / D)) and angle = t * div, each rounded to float,
 * then sin / cos of the float angle. */
static void pe_table(float *pe, float *div, int64_t T, int64_t D) {
  const float c = (float)(-log(10000.0) / (double)D);
  for (int64_t i = 0; i < D / 2; i++) div[i] = (float)exp((double)((float)(2 * i) * c));
#pragma omp parallel for schedule(static) if (T * D > MF_PAR_MIN / 4)
  for (int64_t t = 0; t < T; t++) {
    float *row = pe + t * D;
    for (int64_t i = 0; i < D / 2; i++) {
      const float ang = (float)t * div[i];
      row[2 * i] = sinf(ang);
      row[2 * i + 1] = cosf(ang);
    }
  }
}

static void pe_backward(mf_ctx *ctx, mf_node *n) {
  const float *go = n->out->grad;
  int acc;
  float *gx = mf__gin_inplace(ctx, n, n->in[0], &acc);
  if (!gx || gx == go) return; /* took over the output gradient unchanged */
  const int64_t len = n->out->numel;
#pragma omp parallel for schedule(static) if (len > MF_PAR_MIN)
  for (int64_t i = 0; i < len; i++) gx[i] = (acc ? gx[i] : 0.0f) + go[i];
}

mf_tensor *mf_positional_encoding(mf_ctx *ctx, mf_tensor *x) {
  static const char op[] = "positional_encoding";
  MF_SHAPE_CHECK(x->ndim == 3, op, "x must be [N, T, D]", x, NULL);
  const int64_t N = x->shape[0], T = x->shape[1], D = x->shape[2];
  MF_SHAPE_CHECK(D % 2 == 0, op, "the model dimension D of x [N, T, D] must be even", x, NULL);
  const size_t bytes = (size_t)(T * D + D / 2) * sizeof(float);
  float *pe = mf__scratch(ctx, bytes);
  pe_table(pe, pe + T * D, T, D);
  mf_tensor *out = mf_ctx_tensor(ctx, mf_tensor_shape(x));
  const float *xd = x->data;
  float *od = out->data;
  const int64_t rows = N * T;
#pragma omp parallel for schedule(static) if (rows * D > MF_PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    const float *px = xd + r * D, *pp = pe + (r % T) * D;
    float *po = od + r * D;
    for (int64_t j = 0; j < D; j++) po[j] = px[j] + pp[j];
  }
  mf__release(ctx, pe, bytes);
  mf__record(ctx, op, pe_backward, out, 1, &x, 0, 0);
  return out;
}

/* ---- additive attention pooling -------------------------------------------------------- */

typedef struct pool_saved {
  int64_t N, T, D, A;
  float *z; /* [N * T, A]: tanh(W h_t + b) */
  float *a; /* [N, T]: attention weights */
} pool_saved;

static void pool_backward(mf_ctx *ctx, mf_node *n) {
  const pool_saved *s = n->saved;
  mf_tensor *h = n->in[0], *w = n->in[1], *b = n->in[2], *v = n->in[3];
  const int64_t N = s->N, T = s->T, D = s->D, A = s->A, NT = N * T;
  const float *go = n->out->grad, *hd = h->data, *vd = v->data, *z = s->z, *a = s->a;
  const int need_u = (h->flags & MF_REQUIRES_GRAD) || (w->flags & MF_REQUIRES_GRAD) ||
                     (b && (b->flags & MF_REQUIRES_GRAD));
  const size_t de_bytes = (size_t)NT * sizeof(float);
  const size_t du_bytes = need_u ? (size_t)(NT * A) * sizeof(float) : 0;
  float *de = mf__scratch(ctx, de_bytes);
  float *du = need_u ? mf__scratch(ctx, du_bytes) : NULL;

  /* de = a ∘ (da - sum_t a da), da_t = g · h_t; du = de v ∘ (1 - z²). */
#pragma omp parallel for schedule(static) if (NT * (D + A) > MF_PAR_MIN)
  for (int64_t i = 0; i < N; i++) {
    const float *ai = a + i * T, *gi = go + i * D;
    float *dei = de + i * T;
    float r = 0.0f;
    for (int64_t t = 0; t < T; t++) {
      dei[t] = dot_lanes(gi, hd + (i * T + t) * D, D);
      r += ai[t] * dei[t];
    }
    for (int64_t t = 0; t < T; t++) dei[t] = ai[t] * (dei[t] - r);
    if (du)
      for (int64_t t = 0; t < T; t++) {
        const float *zr = z + (i * T + t) * A;
        float *ur = du + (i * T + t) * A;
        for (int64_t k = 0; k < A; k++) ur[k] = dei[t] * vd[k] * (1.0f - zr[k] * zr[k]);
      }
  }

  int acc;
  float *g = mf__gin(ctx, v, &acc);
  if (g) colsum(z, NT, A, A, de, g, acc);
  g = mf__gin(ctx, b, &acc);
  if (g) colsum(du, NT, A, A, NULL, g, acc);
  g = mf__gin(ctx, w, &acc);
  if (g) gemm(1, 0, A, D, NT, 1.0f, du, A, hd, D, acc ? 1.0f : 0.0f, g, D);
  g = mf__gin(ctx, h, &acc);
  if (g) {
    /* The direct path a_t g first, then the path through the scores adds onto it. */
#pragma omp parallel for schedule(static) if (NT * D > MF_PAR_MIN)
    for (int64_t r = 0; r < NT; r++) {
      const float ar = a[r], *gi = go + (r / T) * D;
      float *gr = g + r * D;
      if (acc)
        for (int64_t j = 0; j < D; j++) gr[j] += ar * gi[j];
      else
        for (int64_t j = 0; j < D; j++) gr[j] = ar * gi[j];
    }
    gemm(0, 0, NT, D, A, 1.0f, du, A, w->data, D, 1.0f, g, D);
  }
  if (du) mf__release(ctx, du, du_bytes);
  mf__release(ctx, de, de_bytes);
}

mf_tensor *mf_additive_attention_pool(mf_ctx *ctx, mf_tensor *h, mf_tensor *w, mf_tensor *b,
                                      mf_tensor *v) {
  static const char op[] = "additive_attention_pool";
  MF_SHAPE_CHECK(h->ndim == 3, op, "h must be [N, T, D]", h, NULL);
  const int64_t N = h->shape[0], T = h->shape[1], D = h->shape[2];
  MF_SHAPE_CHECK(w->ndim == 2 && w->shape[1] == D, op, "w must be [A, D] for h [N, T, D]", w, h);
  const int64_t A = w->shape[0];
  MF_SHAPE_CHECK(!b || (b->ndim == 1 && b->shape[0] == A), op, "b must be [A] for w [A, D]",
                 b ? b : w, w);
  MF_SHAPE_CHECK(
      (v->ndim == 2 && v->shape[0] == 1 && v->shape[1] == A) || (v->ndim == 1 && v->shape[0] == A),
      op, "v must be [1, A] for w [A, D]", v, w);

  mf_tensor *in[4] = {h, w, b, v};
  const int rec = mf__will_record(ctx, 4, in);
  const int64_t NT = N * T;
  const size_t z_bytes = (size_t)(NT * A) * sizeof(float), a_bytes = (size_t)NT * sizeof(float);
  pool_saved s = {N, T, D, A, NULL, NULL};
  s.z = rec ? mf_ctx_alloc(ctx, z_bytes) : mf__scratch(ctx, z_bytes);
  s.a = rec ? mf_ctx_alloc(ctx, a_bytes) : mf__scratch(ctx, a_bytes);

  project(h->data, w->data, b ? b->data : NULL, NT, D, A, s.z);
  mf_tensor *out = mf_ctx_tensor(ctx, MF_SHAPE(N, D));
  const float *hd = h->data, *vd = v->data;
  float *od = out->data;
#pragma omp parallel for schedule(static) if (NT * (A + D) > MF_PAR_MIN)
  for (int64_t i = 0; i < N; i++) {
    float *ai = s.a + i * T;
    for (int64_t t = 0; t < T; t++) {
      float *zr = s.z + (i * T + t) * A;
      mf__vtanh(zr, zr, A);
      ai[t] = dot_lanes(zr, vd, A);
    }
    mf__softmax_row(ai, ai, T, 0);
    float *oi = od + i * D;
    memset(oi, 0, (size_t)D * sizeof(float));
    for (int64_t t = 0; t < T; t++) {
      const float at = ai[t], *hr = hd + (i * T + t) * D;
      for (int64_t j = 0; j < D; j++) oi[j] += at * hr[j];
    }
  }

  mf_node *n = mf__record(ctx, op, pool_backward, out, 4, in,
                          MF_READS_IN(0) | MF_READS_IN(1) | MF_READS_IN(3), sizeof s);
  if (n) {
    memcpy(n->saved, &s, sizeof s);
  } else {
    mf__release(ctx, s.a, a_bytes);
    mf__release(ctx, s.z, z_bytes);
  }
  return out;
}
