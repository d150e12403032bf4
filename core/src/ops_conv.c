/* ops_conv.c — 2-D convolution (x NCHW, weights OIHW) by im2col + sgemm (mf__sgemm).
 *
 * Per sample, the output [O, OH*OW] is W [O, K] times the column matrix [K, OH*OW] with
 * K = C*kh*kw. The column matrix of a large layer is ~19 MB per sample, so it is never
 * materialised whole: the output pixels are cut into blocks of `nb` columns sized so one
 * column block stays in L2 between im2col writing it and sgemm packing it (on the model-c
 * shapes an L2-resident block runs sgemm at ~90 GFLOP/s per core, a whole-sample matrix
 * streamed from memory at ~45). Backward does the same per block: dW += dY·colᵀ with the
 * column block rebuilt from x, dcol = Wᵀ·dY then col2im into dx; dx is skipped when x needs
 * no gradient (a first layer), dW when w needs none. A 1x1 kernel with stride 1 and no
 * padding skips im2col/col2im: x itself is the column matrix.
 *
 * Threads. Every sgemm runs single-threaded inside an OpenMP region (OpenBLAS's OpenMP
 * build does that by itself), one per thread, on its own scratch.
 *  - Forward: the (sample, block) pairs are independent; each thread takes a static range.
 *  - Backward with at least as many samples as threads: each thread takes a contiguous
 *    range of samples and owns their dx; dW and db go into per-thread partial buffers that
 *    are added in thread order at the end.
 *  - Backward with fewer samples than threads (batch 1): the threads share each sample's
 *    blocks; since neighbouring blocks' col2im overlap, each adds into a private dx that is
 *    summed in thread order.
 * So a run is bit-reproducible for a given thread count. Across thread counts the forward
 * output is computed by the same sgemm calls and comes out bit-identical; dW, db (and dx
 * in the batch-1 case) are summed in another order and agree to rounding only.
 */
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"
#include "melforge/ops.h"

/* Column-block budget: 3/4 of a 1 MB L2 (Zen 4), the rest for sgemm's packed panels;
 * 512 KB to 1 MB measured alike within noise, larger blocks help dW (its sgemm's inner
 * dimension is the block). Blocks of 1024+ columns lose a third of sgemm's speed even when
 * K is small (the first layer's K = 9). */
#ifndef COL_BLOCK_BYTES /* overridable at build time for tuning on another machine */
#define COL_BLOCK_BYTES (768 * 1024)
#endif
#ifndef COL_BLOCK_MAX
#define COL_BLOCK_MAX 1024
#endif
#define COL_BLOCK_MIN 64

typedef struct conv_geom {
  int64_t N, C, H, W, O, kh, kw;
  int64_t sh, sw, dh, dw;
  int64_t pt, pl, pb, pr; /* zero padding: top, left, bottom, right */
  int64_t OH, OW;
  int64_t K, P; /* rows of the column matrix (C*kh*kw), output pixels per plane */
  int64_t nb;   /* columns per block */
  int direct;   /* 1x1, stride 1, unpadded: x itself is the column matrix */
  int shifted;  /* stride 1 and OW == W: a column row is the input plane shifted */
} conv_geom;

static int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Floats per thread-private buffer, rounded so each starts on a cache line. */
static size_t pad_floats(size_t n) { return (n + 15) & ~(size_t)15; }

/* The derived sizes, once the shapes, strides, dilations and paddings are set. */
static void finish_geom(conv_geom *g) {
  g->K = g->C * g->kh * g->kw;
  g->P = g->OH * g->OW;
  g->direct = g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pt + g->pb == 0 &&
              g->pl + g->pr == 0;
  g->shifted = g->sh == 1 && g->sw == 1 && g->OW == g->W;
  int64_t nb = COL_BLOCK_BYTES / (int64_t)sizeof(float) / g->K;
  nb = nb / 16 * 16; /* whole sgemm micro-tiles */
  nb = min64(max64(nb, COL_BLOCK_MIN), COL_BLOCK_MAX);
  g->nb = min64(nb, g->P);
}

static conv_geom make_geom(const mf_tensor *x, const mf_tensor *w, const mf_tensor *b,
                           const mf_conv2d_opts *opts) {
  MF_SHAPE_CHECK(x->ndim == 4, "conv2d", "x must be [N, C, H, W]", x, NULL);
  MF_SHAPE_CHECK(w->ndim == 4, "conv2d", "w must be [O, C, kh, kw]", w, NULL);
  MF_SHAPE_CHECK(w->shape[1] == x->shape[1], "conv2d", "input channels of x and w differ", x, w);
  if (b)
    MF_SHAPE_CHECK(b->ndim == 1 && b->shape[0] == w->shape[0], "conv2d",
                   "bias must be [O] for w [O, C, kh, kw]", b, w);
  conv_geom g = {0};
  g.N = x->shape[0], g.C = x->shape[1], g.H = x->shape[2], g.W = x->shape[3];
  g.O = w->shape[0], g.kh = w->shape[2], g.kw = w->shape[3];
  MF_SHAPE_CHECK(g.C > 0 && g.O > 0 && g.kh > 0 && g.kw > 0, "conv2d", "empty weight", w, NULL);
  mf_conv2d_opts o = opts ? *opts : (mf_conv2d_opts){{1, 1}, {0, 0}, {1, 1}, 0};
  for (int a = 0; a < 2; a++) {
    MF_CHECK(o.stride[a] >= 0 && o.dilation[a] >= 0 && o.padding[a] >= 0,
             "conv2d: stride (%d, %d), padding (%d, %d) and dilation (%d, %d) must not be "
             "negative",
             o.stride[0], o.stride[1], o.padding[0], o.padding[1], o.dilation[0], o.dilation[1]);
  }
  g.sh = o.stride[0] ? o.stride[0] : 1, g.sw = o.stride[1] ? o.stride[1] : 1;
  g.dh = o.dilation[0] ? o.dilation[0] : 1, g.dw = o.dilation[1] ? o.dilation[1] : 1;
  int64_t tot_h, tot_w; /* total padding per axis */
  if (o.same) {
    MF_CHECK(g.sh == 1 && g.sw == 1,
             "conv2d: padding 'same' needs stride 1, got stride (%lld, %lld); pad explicitly "
             "for strided convolutions",
             (long long)g.sh, (long long)g.sw);
    tot_h = g.dh * (g.kh - 1), tot_w = g.dw * (g.kw - 1);
    g.pt = tot_h / 2, g.pl = tot_w / 2; /* the odd one out goes to the bottom / right */
  } else {
    g.pt = o.padding[0], g.pl = o.padding[1];
    tot_h = 2 * g.pt, tot_w = 2 * g.pl;
  }
  const int64_t ext_h = g.dh * (g.kh - 1) + 1, ext_w = g.dw * (g.kw - 1) + 1;
  if (g.H + tot_h < ext_h || g.W + tot_w < ext_w) {
    char bx[96], bw[96];
    mf_panic(__FILE__, __LINE__,
             "conv2d: input %s padded by (%lld, %lld) is smaller than the dilated kernel of w "
             "%s (%lld x %lld)",
             mf_tensor_shape_str(x, bx, sizeof bx), (long long)tot_h, (long long)tot_w,
             mf_tensor_shape_str(w, bw, sizeof bw), (long long)ext_h, (long long)ext_w);
  }
  g.pb = tot_h - g.pt, g.pr = tot_w - g.pl;
  g.OH = (g.H + tot_h - ext_h) / g.sh + 1;
  g.OW = (g.W + tot_w - ext_w) / g.sw + 1;
  finish_geom(&g);
  return g;
}

/* ---- im2col / col2im over one block of output pixels ------------------------------------ */

/* Row r = (c, i, j) of the column matrix, for output pixels [p0, p1): the input pixel each
 * one reads through kernel tap (i, j), or 0 in the padding. A row of the block is a run of
 * whole or partial output rows; in each the taps that fall inside the input are one
 * contiguous (stride 1) or strided run, bracketed by zeros. */
static void im2col_row(const conv_geom *g, const float *restrict xc, int64_t i, int64_t j,
                       int64_t p0, int64_t p1, float *restrict dst) {
  const int64_t H = g->H, W = g->W, OW = g->OW, sw = g->sw;
  const int64_t ioff = i * g->dh - g->pt, joff = j * g->dw - g->pl;
  /* ow whose input column ow*sw + joff lies in [0, W) */
  const int64_t lo_all = min64(OW, max64(0, ceil_div(-joff, sw)));
  const int64_t hi_all = max64(lo_all, min64(OW, ceil_div(W - joff, sw)));
  int64_t oh = p0 / OW, ow = p0 % OW, p = p0;
  while (p < p1) {
    const int64_t e = min64(OW, ow + (p1 - p));
    const int64_t off = p - p0 - ow; /* dst[off + q] holds output column q */
    const int64_t ih = oh * g->sh + ioff;
    if (ih < 0 || ih >= H) {
      for (int64_t q = ow; q < e; q++) dst[off + q] = 0.0f;
    } else {
      const float *restrict xr = xc + ih * W;
      const int64_t lo = max64(ow, min64(e, lo_all)), hi = max64(lo, min64(e, hi_all));
      for (int64_t q = ow; q < lo; q++) dst[off + q] = 0.0f;
      if (sw == 1) {
        const float *restrict s = xr + (joff + lo);
        float *restrict d = dst + (off + lo);
        for (int64_t q = 0; q < hi - lo; q++) d[q] = s[q];
      } else {
        for (int64_t q = lo; q < hi; q++) dst[off + q] = xr[q * sw + joff];
      }
      for (int64_t q = hi; q < e; q++) dst[off + q] = 0.0f;
    }
    p += e - ow;
    ow = 0;
    oh++;
  }
}

/* im2col_row for a shifted geometry (stride 1, OW == W): output pixel p reads input pixel
 * p + off through the tap, so the row is one copy of the plane shifted by off; then the
 * output rows whose input row lies outside the plane, and the output columns whose input
 * column does, are zeroed. Per output row the generic loop above pays more than the copy
 * on narrow planes (13 or 6 columns: MFCC inputs). */
static void im2col_row_shifted(const conv_geom *g, const float *restrict xc, int64_t i, int64_t j,
                               int64_t p0, int64_t p1, float *restrict dst) {
  const int64_t W = g->W, HW = g->H * g->W;
  const int64_t ioff = i * g->dh - g->pt, joff = j * g->dw - g->pl, off = ioff * W + joff;
  /* [a, b): pixels of an output row with an input row, whose source lies in the plane */
  int64_t a = max64(max64(p0, max64(0, -ioff) * W), -off);
  int64_t b = min64(min64(p1, min64(g->OH, g->H - ioff) * W), HW - off);
  a = min64(a, p1), b = max64(b, a);
  memset(dst, 0, (size_t)(a - p0) * sizeof(float));
  if (b > a) memcpy(dst + (a - p0), xc + (a + off), (size_t)(b - a) * sizeof(float));
  memset(dst + (b - p0), 0, (size_t)(p1 - b) * sizeof(float));
  /* output columns [c0, c1) read left of / right of the input */
  const int64_t c0 = joff < 0 ? 0 : max64(0, W - joff), c1 = joff < 0 ? min64(W, -joff) : W;
  if (joff == 0) return;
  for (int64_t ow = c0; ow < c1; ow++)
    for (int64_t p = a + ((ow - a % W) + W) % W; p < b; p += W) dst[p - p0] = 0.0f;
}

static void im2col(const conv_geom *g, const float *x, int64_t p0, int64_t p1, float *col) {
  const int64_t nb = p1 - p0, khw = g->kh * g->kw, HW = g->H * g->W;
  for (int64_t r = 0; r < g->K; r++) {
    const int64_t c = r / khw, i = (r / g->kw) % g->kh, j = r % g->kw;
    if (g->shifted)
      im2col_row_shifted(g, x + c * HW, i, j, p0, p1, col + r * nb);
    else
      im2col_row(g, x + c * HW, i, j, p0, p1, col + r * nb);
  }
}

/* The adjoint of im2col_row: adds each column entry back onto the input pixel it came from;
 * entries that came from the padding are dropped. */
static void col2im_row(const conv_geom *g, const float *restrict src, int64_t i, int64_t j,
                       int64_t p0, int64_t p1, float *restrict xc) {
  const int64_t H = g->H, W = g->W, OW = g->OW, sw = g->sw;
  const int64_t ioff = i * g->dh - g->pt, joff = j * g->dw - g->pl;
  const int64_t lo_all = min64(OW, max64(0, ceil_div(-joff, sw)));
  const int64_t hi_all = max64(lo_all, min64(OW, ceil_div(W - joff, sw)));
  int64_t oh = p0 / OW, ow = p0 % OW, p = p0;
  while (p < p1) {
    const int64_t e = min64(OW, ow + (p1 - p));
    const int64_t off = p - p0 - ow;
    const int64_t ih = oh * g->sh + ioff;
    if (ih >= 0 && ih < H) {
      float *restrict xr = xc + ih * W;
      const int64_t lo = max64(ow, min64(e, lo_all)), hi = max64(lo, min64(e, hi_all));
      if (sw == 1) {
        float *restrict d = xr + (joff + lo);
        const float *restrict s = src + (off + lo);
        for (int64_t q = 0; q < hi - lo; q++) d[q] += s[q];
      } else {
        for (int64_t q = lo; q < hi; q++) xr[q * sw + joff] += src[off + q];
      }
    }
    p += e - ow;
    ow = 0;
    oh++;
  }
}

static void col2im_add(const conv_geom *g, const float *dcol, int64_t p0, int64_t p1, float *dx) {
  const int64_t nb = p1 - p0, khw = g->kh * g->kw, HW = g->H * g->W;
  for (int64_t c = 0; c < g->C; c++)
    for (int64_t i = 0; i < g->kh; i++)
      for (int64_t j = 0; j < g->kw; j++)
        col2im_row(g, dcol + ((c * khw) + i * g->kw + j) * nb, i, j, p0, p1, dx + c * HW);
}

/* ---- forward ------------------------------------------------------------------------------ */

static void add_bias_block(const conv_geom *g, const float *b, float *yn, int64_t p0, int64_t p1) {
  for (int64_t o = 0; o < g->O; o++) {
    float *restrict row = yn + o * g->P;
    const float bo = b[o];
    for (int64_t p = p0; p < p1; p++) row[p] += bo;
  }
}

static void conv_forward(mf_ctx *ctx, const conv_geom *g, const float *x, const float *w,
                         const float *b, float *y) {
  const int64_t nblk = (g->P + g->nb - 1) / g->nb, items = g->N * nblk;
  const int T = omp_get_max_threads();
  const size_t per = g->direct ? 0 : pad_floats((size_t)(g->K * g->nb));
  float *scratch = per ? mf__scratch(ctx, (size_t)T * per * sizeof(float)) : NULL;
  const int64_t CHW = g->C * g->H * g->W, OP = g->O * g->P;
#pragma omp parallel num_threads(T) if (T > 1 && items > 1)
  {
    float *col = scratch ? scratch + (size_t)omp_get_thread_num() * per : NULL;
#pragma omp for schedule(static)
    for (int64_t it = 0; it < items; it++) {
      const int64_t n = it / nblk, p0 = (it % nblk) * g->nb, p1 = min64(g->P, p0 + g->nb);
      const float *xn = x + n * CHW;
      float *yn = y + n * OP;
      const float *src = xn + p0;
      int64_t ld = g->P;
      if (!g->direct) {
        im2col(g, xn, p0, p1, col);
        src = col, ld = p1 - p0;
      }
      mf__sgemm(0, 0, g->O, p1 - p0, g->K, 1.0f, w, g->K, src, ld, 0.0f, yn + p0, g->P);
      if (b) add_bias_block(g, b, yn, p0, p1);
    }
  }
  if (scratch) mf__release(ctx, scratch, (size_t)T * per * sizeof(float));
}

/* ---- backward ----------------------------------------------------------------------------- */

typedef struct worker {
  float *col, *dcol; /* column blocks (NULL when unused) */
  float *dw;         /* this worker's dW partial [O, K], accumulated with beta 1 */
  double *db;        /* this worker's db partial [O] */
  float *dx_priv;    /* splitting blocks: this worker's share of one sample's dx */
} worker;

/* db += the row sums of dY over pixels [p0, p1), in 8 chains: one chain is bound by the
 * latency of the add (the rows of a small layer are short, so this is not negligible). */
static void add_db(const conv_geom *g, const float *dyn, int64_t p0, int64_t p1, double *db) {
  for (int64_t o = 0; o < g->O; o++) {
    const float *restrict row = dyn + o * g->P;
    double acc[8] = {0};
    int64_t p = p0;
    for (; p + 8 <= p1; p += 8)
      for (int k = 0; k < 8; k++) acc[k] += row[p + k];
    for (; p < p1; p++) acc[p % 8] += row[p];
    db[o] += ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  }
}

/* Block blk of one sample: dW += dY·colᵀ (into the worker's partial), db += row sums. */
static void dw_block(const conv_geom *g, const float *xn, const float *dyn, int64_t blk,
                     const worker *wk) {
  const int64_t p0 = blk * g->nb, p1 = min64(g->P, p0 + g->nb);
  if (wk->dw) {
    const float *src = xn + p0;
    int64_t ld = g->P;
    if (!g->direct) {
      im2col(g, xn, p0, p1, wk->col);
      src = wk->col, ld = p1 - p0;
    }
    mf__sgemm(0, 1, g->O, g->K, p1 - p0, 1.0f, dyn + p0, g->P, src, ld, 1.0f, wk->dw, g->K);
  }
  if (wk->db) add_db(g, dyn, p0, p1, wk->db);
}

/* Blocks [b0, b1) of one sample: dW and db as dw_block, and dx gets Wᵀ·dY through col2im
 * added into dxn (which the caller has zeroed or holds earlier gradients). */
static void scatter_blocks(const conv_geom *g, const float *xn, const float *w, const float *dyn,
                           float *dxn, int64_t b0, int64_t b1, const worker *wk) {
  for (int64_t blk = b0; blk < b1; blk++) {
    dw_block(g, xn, dyn, blk, wk);
    const int64_t p0 = blk * g->nb, p1 = min64(g->P, p0 + g->nb), len = p1 - p0;
    mf__sgemm(1, 0, g->K, len, g->O, 1.0f, w, g->K, dyn + p0, g->P, 0.0f, wk->dcol, len);
    col2im_add(g, wk->dcol, p0, p1, dxn);
  }
}

/* For stride 1, dx is the correlation of dY with the kernel flipped and its in / out channels
 * swapped, padded by (dilated extent - 1 - padding): a convolution whose output is x's
 * shape. Computing it as such (dx = Wf·im2col(dY), K = O*kh*kw) writes each dx pixel once
 * from one GEMM, where Wᵀ·dY (K = O) followed by a col2im scatter would add kh*kw column
 * rows into it; on small planes the scatter's per-row overhead cost more than the GEMM. Also
 * no private dx when threads share a sample's blocks: their dx columns are disjoint. Needs
 * padding below the extent (else the flipped padding would be negative). */
static int flipped_geom(const conv_geom *g, conv_geom *t) {
  const int64_t ext_h = g->dh * (g->kh - 1) + 1, ext_w = g->dw * (g->kw - 1) + 1;
  if (g->sh != 1 || g->sw != 1 || g->direct || g->pt >= ext_h || g->pb >= ext_h || g->pl >= ext_w ||
      g->pr >= ext_w)
    return 0;
  *t = *g;
  t->C = g->O, t->H = g->OH, t->W = g->OW, t->O = g->C;
  t->pt = ext_h - 1 - g->pt, t->pb = ext_h - 1 - g->pb;
  t->pl = ext_w - 1 - g->pl, t->pr = ext_w - 1 - g->pr;
  t->OH = g->H, t->OW = g->W;
  finish_geom(t);
  return 1;
}

/* wf[c, o, i, j] = w[o, c, kh-1-i, kw-1-j] */
static void flip_weights(const conv_geom *g, const float *w, float *wf) {
  const int64_t kh = g->kh, kw = g->kw, khw = kh * kw;
  for (int64_t c = 0; c < g->C; c++)
    for (int64_t o = 0; o < g->O; o++)
      for (int64_t i = 0; i < kh; i++)
        for (int64_t j = 0; j < kw; j++)
          wf[(c * g->O + o) * khw + i * kw + j] =
              w[(o * g->C + c) * khw + (kh - 1 - i) * kw + (kw - 1 - j)];
}

static void conv_backward(mf_ctx *ctx, mf_node *nd) {
  const conv_geom *g = nd->saved;
  const mf_tensor *x = nd->in[0], *w = nd->in[1];
  int acc_x = 0, acc_w = 0, acc_b = 0;
  float *dx = mf__gin(ctx, nd->in[0], &acc_x);
  float *dw = mf__gin(ctx, nd->in[1], &acc_w);
  float *db = mf__gin(ctx, nd->in[2], &acc_b);
  if ((!dx && !dw && !db) || g->N == 0) {
    if (dw && !acc_w) memset(dw, 0, (size_t)(g->O * g->K) * sizeof(float));
    if (db && !acc_b) memset(db, 0, (size_t)g->O * sizeof(float));
    return;
  }
  const float *dy = nd->out->grad;
  const int64_t nblk = (g->P + g->nb - 1) / g->nb;
  const int64_t CHW = g->C * g->H * g->W, OP = g->O * g->P;
  conv_geom t;
  const int flip = dx && flipped_geom(g, &t);
  /* dx by col2im: strided convolutions (and padding as large as the kernel). */
  const int scatter = dx && !g->direct && !flip;
  /* dx's items: blocks of x's pixels (flipped) or of dY's pixels (1x1), per sample */
  const int64_t nblk_x = !dx || scatter ? 0 : flip ? (t.P + t.nb - 1) / t.nb : nblk;
  int64_t items = g->N * (nblk_x > nblk ? nblk_x : nblk);
  int workers = omp_get_max_threads();
  if (workers > items) workers = (int)items;
  /* Scattering with fewer samples than workers: the workers share each sample's blocks, and
   * since neighbouring blocks' col2im overlap, each scatters into a private dx that is added
   * up afterwards. */
  const int split_blocks = scatter && g->N < workers;
  size_t n_col = dw && !g->direct ? (size_t)(g->K * g->nb) : 0;
  if (flip && (size_t)(t.K * t.nb) > n_col) n_col = (size_t)(t.K * t.nb);
  n_col = pad_floats(n_col);
  const size_t n_dcol = scatter ? pad_floats((size_t)(g->K * g->nb)) : 0;
  const size_t n_dw = dw ? pad_floats((size_t)(g->O * g->K)) : 0;
  const size_t n_db = db ? pad_floats((size_t)g->O * 2) : 0; /* doubles, in floats */
  const size_t n_priv = split_blocks ? pad_floats((size_t)CHW) : 0;
  const size_t n_wf = flip ? pad_floats((size_t)(g->C * t.K)) : 0;
  const size_t per = n_col + n_dcol + n_dw + n_db + n_priv;
  const size_t bytes = ((size_t)workers * per + n_wf + 1) * sizeof(float);
  float *scratch = mf__scratch(ctx, bytes);
  worker *wks = mf__scratch(ctx, (size_t)workers * sizeof(worker));
  for (int u = 0; u < workers; u++) {
    float *base = scratch + (size_t)u * per;
    wks[u] = (worker){n_col ? base : NULL, n_dcol ? base + n_col : NULL,
                      dw ? base + n_col + n_dcol : NULL,
                      db ? (double *)(base + n_col + n_dcol + n_dw) : NULL,
                      n_priv ? base + n_col + n_dcol + n_dw + n_db : NULL};
    if (wks[u].dw) memset(wks[u].dw, 0, (size_t)(g->O * g->K) * sizeof(float));
    if (wks[u].db) memset(wks[u].db, 0, (size_t)g->O * sizeof(double));
  }
  float *wf = flip ? scratch + (size_t)workers * per : NULL;
  if (wf) flip_weights(g, w->data, wf);

#pragma omp parallel num_threads(workers) if (workers > 1)
  {
    /* A team smaller than asked for: the missing workers' partials stay zero. */
    const int u = omp_get_thread_num(), nt = omp_get_num_threads();
    const worker *wk = &wks[u];
    if (!scatter) {
      /* dW / db and dx are independent: each over (sample, block) items in a static
       * schedule, so the partials a worker adds up depend on the thread count only. */
      if (dw || db) {
#pragma omp for schedule(static) nowait
        for (int64_t it = 0; it < g->N * nblk; it++) {
          const int64_t n = it / nblk;
          dw_block(g, x->data + n * CHW, dy + n * OP, it % nblk, wk);
        }
      }
      if (dx) {
        const float beta = acc_x ? 1.0f : 0.0f;
#pragma omp for schedule(static)
        for (int64_t it = 0; it < g->N * nblk_x; it++) {
          const int64_t n = it / nblk_x, blk = it % nblk_x;
          float *dxn = dx + n * CHW;
          const float *dyn = dy + n * OP;
          if (g->direct) { /* dx[:, p0:p1] = Wᵀ·dY[:, p0:p1] */
            const int64_t p0 = blk * g->nb, p1 = min64(g->P, p0 + g->nb);
            mf__sgemm(1, 0, g->K, p1 - p0, g->O, 1.0f, w->data, g->K, dyn + p0, g->P, beta,
                      dxn + p0, g->P);
          } else { /* dx[:, q0:q1] = Wf·im2col(dY)[:, q0:q1] */
            const int64_t q0 = blk * t.nb, q1 = min64(t.P, q0 + t.nb);
            im2col(&t, dyn, q0, q1, wk->col);
            mf__sgemm(0, 0, t.O, q1 - q0, t.K, 1.0f, wf, t.K, wk->col, q1 - q0, beta, dxn + q0,
                      t.P);
          }
        }
      }
    } else if (!split_blocks) {
      for (int64_t n = g->N * u / nt; n < g->N * (u + 1) / nt; n++) {
        float *dxn = dx + n * CHW;
        if (!acc_x) memset(dxn, 0, (size_t)CHW * sizeof(float));
        scatter_blocks(g, x->data + n * CHW, w->data, dy + n * OP, dxn, 0, nblk, wk);
      }
    } else {
      for (int64_t n = 0; n < g->N; n++) {
        memset(wk->dx_priv, 0, (size_t)CHW * sizeof(float));
        scatter_blocks(g, x->data + n * CHW, w->data, dy + n * OP, wk->dx_priv, nblk * u / nt,
                       nblk * (u + 1) / nt, wk);
#pragma omp barrier
        float *out = dx + n * CHW;
#pragma omp for schedule(static)
        for (int64_t i = 0; i < CHW; i++) {
          float s = acc_x ? out[i] + wks[0].dx_priv[i] : wks[0].dx_priv[i];
          for (int v = 1; v < nt; v++) s += wks[v].dx_priv[i];
          out[i] = s;
        }
      }
    }
  }

  if (dw) {
    const int64_t n = g->O * g->K;
#pragma omp parallel for schedule(static) if (n * workers > MF_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
      float s = acc_w ? dw[i] + wks[0].dw[i] : wks[0].dw[i];
      for (int u = 1; u < workers; u++) s += wks[u].dw[i];
      dw[i] = s;
    }
  }
  if (db)
    for (int64_t o = 0; o < g->O; o++) {
      double s = 0;
      for (int u = 0; u < workers; u++) s += wks[u].db[o];
      db[o] = acc_b ? db[o] + (float)s : (float)s;
    }
  mf__release(ctx, wks, (size_t)workers * sizeof(worker));
  mf__release(ctx, scratch, bytes);
}

mf_tensor *mf_conv2d(mf_ctx *ctx, mf_tensor *x, mf_tensor *w, mf_tensor *b,
                     const mf_conv2d_opts *opts) {
  const conv_geom g = make_geom(x, w, b, opts);
  mf_tensor *out = mf_ctx_tensor(ctx, MF_SHAPE(g.N, g.O, g.OH, g.OW));
  if (out->numel) conv_forward(ctx, &g, x->data, w->data, b ? b->data : NULL, out->data);
  mf_tensor *in[3] = {x, w, b};
  /* dW needs x, dx needs w; db needs neither. */
  uint32_t reads = 0;
  if (w->flags & MF_REQUIRES_GRAD) reads |= MF_READS_IN(0);
  if (x->flags & MF_REQUIRES_GRAD) reads |= MF_READS_IN(1);
  mf_node *n = mf__record(ctx, "conv2d", conv_backward, out, 3, in, reads, sizeof(conv_geom));
  if (n) memcpy(n->saved, &g, sizeof g);
  return out;
}
