/* ops_pool.c — 2-D max / average pooling and global average pooling over NCHW.
 *
 * Output sizes follow PyTorch: out = floor((L + 2 pad - k) / s) + 1, or with ceil_mode the
 * ceiling, minus one when the last window would start at or past the end of the input plus
 * its right padding (PyTorch's rule: every window starts inside the input or the left
 * padding). Padding is at most half the kernel, as in PyTorch.
 *
 * Max pool: padding counts as -inf; the output is the first maximum of the window in
 * row-major order (NaN wins, like PyTorch), and backward routes each output gradient to
 * that element. The indices are kept (int32 per output, in the arena) only when the op is
 * recorded on the tape.
 * Average pool (count_include_pad=True, PyTorch's default): the sum over the in-input part
 * of the window divided by the window size clipped to the padded input. So zero padding
 * counts in the divisor, but the part of a ceil_mode window hanging past the right/bottom
 * padding does not: a 2x2 ceil_mode window on the last row/column of an odd-sized unpadded
 * input divides by 2 or 1, not 4, exactly as PyTorch does.
 *
 * Every loop runs over the N*C planes, each plane owned by one thread, so overlapping
 * windows add into an input gradient in a fixed order.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fastmath.h"
#include "internal.h"
#include "melforge/ops.h"

typedef struct pool_geom {
  int64_t planes, H, W, OH, OW;
  int64_t kh, kw, sh, sw, ph, pw;
  /* max pool, when recorded: per output the plane-local index ih*W + iw of the maximum
   * (int32), or for 2x2 windows its position 0..3 in the window (uint8) */
  void *argmax;
} pool_geom;

static int64_t pool_out_size(int64_t L, int64_t k, int64_t s, int64_t p, int ceil_mode) {
  const int64_t span = L + 2 * p - k;
  int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
  if (ceil_mode && (out - 1) * s >= L + p) out--;
  return out;
}

static pool_geom make_pool_geom(const char *op, const mf_tensor *x, const mf_pool2d_opts *o) {
  MF_SHAPE_CHECK(x->ndim == 4, op, "x must be [N, C, H, W]", x, NULL);
  MF_CHECK(o != NULL, "%s: options are required (kernel size)", op);
  pool_geom g = {0};
  g.planes = x->shape[0] * x->shape[1];
  g.H = x->shape[2], g.W = x->shape[3];
  g.kh = o->kernel[0], g.kw = o->kernel[1];
  MF_CHECK(g.kh > 0 && g.kw > 0, "%s: kernel (%d, %d) must be positive", op, o->kernel[0],
           o->kernel[1]);
  MF_CHECK(o->stride[0] >= 0 && o->stride[1] >= 0, "%s: stride (%d, %d) must not be negative", op,
           o->stride[0], o->stride[1]);
  g.sh = o->stride[0] ? o->stride[0] : g.kh;
  g.sw = o->stride[1] ? o->stride[1] : g.kw;
  g.ph = o->padding[0], g.pw = o->padding[1];
  MF_CHECK(g.ph >= 0 && g.pw >= 0 && 2 * g.ph <= g.kh && 2 * g.pw <= g.kw,
           "%s: padding (%d, %d) must be between 0 and half the kernel (%d, %d)", op, o->padding[0],
           o->padding[1], o->kernel[0], o->kernel[1]);
  if (g.H + 2 * g.ph < g.kh || g.W + 2 * g.pw < g.kw) {
    char s[96];
    mf_panic(__FILE__, __LINE__,
             "%s: input %s padded by (%lld, %lld) is smaller than the kernel (%lld, %lld)", op,
             mf_tensor_shape_str(x, s, sizeof s), (long long)g.ph, (long long)g.pw, (long long)g.kh,
             (long long)g.kw);
  }
  g.OH = pool_out_size(g.H, g.kh, g.sh, g.ph, o->ceil_mode);
  g.OW = pool_out_size(g.W, g.kw, g.sw, g.pw, o->ceil_mode);
  MF_CHECK(g.H * g.W <= INT32_MAX, "%s: a plane of %lld x %lld is too large for int32 indices", op,
           (long long)g.H, (long long)g.W);
  return g;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Window o along one axis: its in-input part [lo, hi) and the size the average divides by
 * (the window clipped to the padded input). Tabulated once per call for rows and columns. */
typedef struct span {
  int32_t lo, hi, count;
} span;

static span *make_spans(mf_ctx *ctx, const pool_geom *g) {
  span *t = mf__scratch(ctx, (size_t)(g->OH + g->OW) * sizeof(span));
  for (int a = 0; a < 2; a++) {
    const int64_t n = a ? g->OW : g->OH, L = a ? g->W : g->H, k = a ? g->kw : g->kh;
    const int64_t s = a ? g->sw : g->sh, p = a ? g->pw : g->ph;
    span *o = a ? t + g->OH : t;
    for (int64_t i = 0; i < n; i++) {
      const int64_t st = i * s - p, en = min64(st + k, L + p);
      o[i] = (span){(int32_t)max64(st, 0), (int32_t)min64(en, L), (int32_t)(en - st)};
    }
  }
  return t;
}

static void release_spans(mf_ctx *ctx, const pool_geom *g, span *t) {
  mf__release(ctx, t, (size_t)(g->OH + g->OW) * sizeof(span));
}

/* 2x2 windows, stride 2, no padding, none hanging over the edge: the model CNNs' pooling. */
static int is_2x2(const pool_geom *g) {
  return g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 && g->pw == 0 &&
         2 * g->OH <= g->H && 2 * g->OW <= g->W;
}

/* ---- max pool ----------------------------------------------------------------------------- */

/* Selects rather than branches throughout: on real activations which element wins is random
 * and a mispredicted branch per element cost 10x (measured). `v > m || v != v` is PyTorch's
 * update rule: the first maximum, except that a NaN always takes over. */
static void max_pool_plane(const pool_geom *g, const span *rows, const span *cols,
                           const float *restrict x, float *restrict y, int32_t *restrict idx) {
  const int32_t W = (int32_t)g->W;
  for (int64_t oh = 0; oh < g->OH; oh++) {
    const span r = rows[oh];
    for (int64_t ow = 0; ow < g->OW; ow++) {
      const span c = cols[ow];
      int32_t best = r.lo * W + c.lo;
      float m = -INFINITY;
      for (int32_t ih = r.lo; ih < r.hi; ih++)
        for (int32_t iw = c.lo; iw < c.hi; iw++) {
          const float v = x[ih * W + iw];
          const int t = v > m || v != v;
          m = t ? v : m;
          best = t ? ih * W + iw : best;
        }
      y[oh * g->OW + ow] = m;
      if (idx) idx[oh * g->OW + ow] = best;
    }
  }
}

/* 2x2 windows record which of their four elements won as a code 0..3 (row-major), a byte
 * per output instead of an int32 index. */

/* The rule above, element by element: for planes holding a NaN. */
static void max_pool_plane_2x2_nan(const pool_geom *g, const float *restrict x, float *restrict y,
                                   uint8_t *restrict code) {
  const int64_t W = g->W, OW = g->OW;
  for (int64_t oh = 0; oh < g->OH; oh++)
    for (int64_t ow = 0; ow < OW; ow++) {
      const float *restrict r0 = x + 2 * oh * W + 2 * ow;
      const float v[4] = {r0[0], r0[1], r0[W], r0[W + 1]};
      float m = v[0];
      int k = 0;
      for (int e = 1; e < 4; e++)
        if (v[e] > m || v[e] != v[e]) m = v[e], k = e;
      y[oh * OW + ow] = m;
      if (code) code[oh * OW + ow] = (uint8_t)k;
    }
}

/* Without NaNs the first maximum needs plain compares only, which compile to max and
 * compare instructions without branches (the NaN rule's `|| v != v` made GCC branch, and
 * a branch on which element wins mispredicts half the time). The pairs are compared as a
 * tree, (a, b), (c, d), then the two winners, which picks the same element as the sequential
 * rule. Rows of a small plane are too short to vectorise (6 outputs for MFCC inputs), so the
 * loop is written for the scalar case; long rows vectorise as they are. */
static inline int pool_2x2_rows(const pool_geom *g, const float *restrict x, float *restrict y,
                                uint8_t *restrict code) {
  const int64_t W = g->W, OW = g->OW;
  float probe = 0.0f; /* a NaN in any window makes the sum NaN (so may inf - inf: harmless) */
  for (int64_t oh = 0; oh < g->OH; oh++) {
    const float *restrict r0 = x + 2 * oh * W, *restrict r1 = r0 + W;
    float *restrict yr = y + oh * OW;
    uint8_t *restrict cr = code ? code + oh * OW : NULL;
    for (int64_t ow = 0; ow < OW; ow++) {
      const float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
      const int t0 = b > a, t1 = d > c;
      const float m0 = t0 ? b : a, m1 = t1 ? d : c;
      const int t = m1 > m0;
      yr[ow] = t ? m1 : m0;
      if (cr) cr[ow] = (uint8_t)((t << 1) | (t & t1) | ((t ^ 1) & t0));
      probe += (a - a) + (b - b) + (c - c) + (d - d); /* 0, or NaN for a NaN or an infinity */
    }
  }
  return probe != probe;
}

/* The compare-only pass first; a plane whose windows hold a NaN (or an infinity, which the
 * probe cannot tell apart) is redone by the element-wise rule, which gives the same result
 * for infinities and the NaN rule for NaNs. Elements outside every window never matter. */
MF_CLONES static void max_pool_plane_2x2(const pool_geom *g, const float *restrict x,
                                         float *restrict y, uint8_t *restrict code) {
  const int special = code ? pool_2x2_rows(g, x, y, code) : pool_2x2_rows(g, x, y, NULL);
  if (special) max_pool_plane_2x2_nan(g, x, y, code);
}

/* Each input element is in at most one 2x2 window: its gradient is the window's when it won
 * the window, else zero. */
static void max_pool_plane_2x2_backward(const pool_geom *g, const uint8_t *restrict code,
                                        const float *restrict go, float *restrict gx, int acc) {
  const int64_t W = g->W, OW = g->OW;
  if (!acc) memset(gx, 0, (size_t)(g->H * W) * sizeof(float));
  for (int64_t oh = 0; oh < g->OH; oh++) {
    float *restrict r0 = gx + 2 * oh * W;
    const float *restrict gr = go + oh * OW;
    const uint8_t *restrict cr = code + oh * OW;
    for (int64_t ow = 0; ow < OW; ow++) r0[(cr[ow] >> 1) * W + 2 * ow + (cr[ow] & 1)] += gr[ow];
  }
}

static void max_pool_backward(mf_ctx *ctx, mf_node *n) {
  const pool_geom *g = n->saved;
  int acc;
  float *gx = mf__gin(ctx, n->in[0], &acc);
  if (!gx) return;
  const float *go = n->out->grad;
  const int64_t HW = g->H * g->W, OP = g->OH * g->OW;
  const int fast = is_2x2(g);
#pragma omp parallel for schedule(static) if (g->planes * HW > MF_PAR_MIN)
  for (int64_t p = 0; p < g->planes; p++) {
    float *restrict gp = gx + p * HW;
    const float *restrict gop = go + p * OP;
    if (fast) {
      max_pool_plane_2x2_backward(g, (const uint8_t *)g->argmax + p * OP, gop, gp, acc);
      continue;
    }
    const int32_t *restrict ip = (const int32_t *)g->argmax + p * OP;
    if (!acc) memset(gp, 0, (size_t)HW * sizeof(float));
    for (int64_t o = 0; o < OP; o++) gp[ip[o]] += gop[o];
  }
}

mf_tensor *mf_max_pool2d(mf_ctx *ctx, mf_tensor *x, const mf_pool2d_opts *opts) {
  pool_geom g = make_pool_geom("max_pool2d", x, opts);
  mf_tensor *out = mf_ctx_tensor(ctx, MF_SHAPE(x->shape[0], x->shape[1], g.OH, g.OW));
  const int64_t HW = g.H * g.W, OP = g.OH * g.OW;
  const int fast = is_2x2(&g);
  void *idx = NULL;
  if (mf__will_record(ctx, 1, &x))
    idx = mf_ctx_alloc(ctx, (size_t)(g.planes * OP) * (fast ? sizeof(uint8_t) : sizeof(int32_t)));
  span *sp = fast ? NULL : make_spans(ctx, &g);
  const float *xd = x->data;
  float *yd = out->data;
#pragma omp parallel for schedule(static) if (g.planes * HW > MF_PAR_MIN)
  for (int64_t p = 0; p < g.planes; p++) {
    if (fast)
      max_pool_plane_2x2(&g, xd + p * HW, yd + p * OP, idx ? (uint8_t *)idx + p * OP : NULL);
    else
      max_pool_plane(&g, sp, sp + g.OH, xd + p * HW, yd + p * OP,
                     idx ? (int32_t *)idx + p * OP : NULL);
  }
  if (sp) release_spans(ctx, &g, sp);
  mf_node *n = mf__record(ctx, "max_pool2d", max_pool_backward, out, 1, &x, 0, sizeof g);
  if (n) {
    g.argmax = idx;
    memcpy(n->saved, &g, sizeof g);
  }
  return out;
}

/* ---- average pool ------------------------------------------------------------------------- */

/* Sums in window order and divides by the count, as PyTorch's CPU kernel does. */
static void avg_pool_plane(const pool_geom *g, const span *rows, const span *cols,
                           const float *restrict x, float *restrict y) {
  const int64_t W = g->W;
  for (int64_t oh = 0; oh < g->OH; oh++) {
    const span r = rows[oh];
    for (int64_t ow = 0; ow < g->OW; ow++) {
      const span c = cols[ow];
      float s = 0.0f;
      for (int64_t ih = r.lo; ih < r.hi; ih++)
        for (int64_t iw = c.lo; iw < c.hi; iw++) s += x[ih * W + iw];
      y[oh * g->OW + ow] = s / (float)(r.count * c.count);
    }
  }
}

static void avg_pool_plane_2x2(const pool_geom *g, const float *restrict x, float *restrict y) {
  const int64_t W = g->W, OW = g->OW;
  for (int64_t oh = 0; oh < g->OH; oh++) {
    const float *restrict r0 = x + 2 * oh * W, *restrict r1 = r0 + W;
    float *restrict yr = y + oh * OW;
    for (int64_t ow = 0; ow < OW; ow++)
      yr[ow] = (r0[2 * ow] + r0[2 * ow + 1] + r1[2 * ow] + r1[2 * ow + 1]) / 4.0f;
  }
}

static void avg_pool_backward(mf_ctx *ctx, mf_node *n) {
  const pool_geom *g = n->saved;
  int acc;
  float *gx = mf__gin(ctx, n->in[0], &acc);
  if (!gx) return;
  const float *go = n->out->grad;
  const int64_t HW = g->H * g->W, OP = g->OH * g->OW, W = g->W;
  const int fast = is_2x2(g);
  span *sp = fast ? NULL : make_spans(ctx, g);
  const span *rows = sp, *cols = fast ? NULL : sp + g->OH;
#pragma omp parallel for schedule(static) if (g->planes * HW > MF_PAR_MIN)
  for (int64_t p = 0; p < g->planes; p++) {
    float *restrict gp = gx + p * HW;
    const float *restrict gop = go + p * OP;
    if (!acc) memset(gp, 0, (size_t)HW * sizeof(float));
    if (fast) {
      for (int64_t oh = 0; oh < g->OH; oh++) {
        float *restrict r0 = gp + 2 * oh * W, *restrict r1 = r0 + W;
        const float *restrict gr = gop + oh * g->OW;
        for (int64_t ow = 0; ow < g->OW; ow++) {
          const float v = gr[ow] / 4.0f;
          r0[2 * ow] += v, r0[2 * ow + 1] += v, r1[2 * ow] += v, r1[2 * ow + 1] += v;
        }
      }
      continue;
    }
    for (int64_t oh = 0; oh < g->OH; oh++) {
      const span r = rows[oh];
      for (int64_t ow = 0; ow < g->OW; ow++) {
        const span c = cols[ow];
        const float v = gop[oh * g->OW + ow] / (float)(r.count * c.count);
        for (int64_t ih = r.lo; ih < r.hi; ih++)
          for (int64_t iw = c.lo; iw < c.hi; iw++) gp[ih * W + iw] += v;
      }
    }
  }
  if (sp) release_spans(ctx, g, sp);
}

mf_tensor *mf_avg_pool2d(mf_ctx *ctx, mf_tensor *x, const mf_pool2d_opts *opts) {
  pool_geom g = make_pool_geom("avg_pool2d", x, opts);
  mf_tensor *out = mf_ctx_tensor(ctx, MF_SHAPE(x->shape[0], x->shape[1], g.OH, g.OW));
  const int64_t HW = g.H * g.W, OP = g.OH * g.OW;
  const int fast = is_2x2(&g);
  span *sp = fast ? NULL : make_spans(ctx, &g);
  const float *xd = x->data;
  float *yd = out->data;
#pragma omp parallel for schedule(static) if (g.planes * HW > MF_PAR_MIN)
  for (int64_t p = 0; p < g.planes; p++) {
    if (fast)
      avg_pool_plane_2x2(&g, xd + p * HW, yd + p * OP);
    else
      avg_pool_plane(&g, sp, sp + g.OH, xd + p * HW, yd + p * OP);
  }
  if (sp) release_spans(ctx, &g, sp);
  mf_node *n = mf__record(ctx, "avg_pool2d", avg_pool_backward, out, 1, &x, 0, sizeof g);
  if (n) memcpy(n->saved, &g, sizeof g);
  return out;
}

/* ---- global average pool ------------------------------------------------------------------ */

static void global_avg_pool_backward(mf_ctx *ctx, mf_node *n) {
  mf_tensor *x = n->in[0];
  int acc;
  float *gx = mf__gin(ctx, x, &acc);
  if (!gx) return;
  const float *go = n->out->grad;
  const int64_t planes = x->shape[0] * x->shape[1], HW = x->shape[2] * x->shape[3];
  const float inv = HW ? 1.0f / (float)HW : 0.0f;
#pragma omp parallel for schedule(static) if (x->numel > MF_PAR_MIN)
  for (int64_t p = 0; p < planes; p++) {
    float *restrict gp = gx + p * HW;
    const float v = go[p] * inv;
    if (acc)
      for (int64_t i = 0; i < HW; i++) gp[i] += v;
    else
      for (int64_t i = 0; i < HW; i++) gp[i] = v;
  }
}

mf_tensor *mf_global_avg_pool2d(mf_ctx *ctx, mf_tensor *x) {
  MF_SHAPE_CHECK(x->ndim == 4, "global_avg_pool2d", "x must be [N, C, H, W]", x, NULL);
  MF_SHAPE_CHECK(x->shape[2] * x->shape[3] > 0, "global_avg_pool2d", "empty planes", x, NULL);
  mf_tensor *out = mf_ctx_tensor(ctx, MF_SHAPE(x->shape[0], x->shape[1]));
  const int64_t planes = out->numel, HW = x->shape[2] * x->shape[3];
  const float *xd = x->data;
  float *yd = out->data;
  /* Summed in double in a fixed order (the mean of a large plane keeps full float precision
   * and does not depend on the thread count), over 8 independent chains: one chain is bound
   * by the latency of the add, 5x slower (measured). */
#pragma omp parallel for schedule(static) if (x->numel > MF_PAR_MIN)
  for (int64_t p = 0; p < planes; p++) {
    const float *restrict xp = xd + p * HW;
    double acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= HW; i += 8)
      for (int k = 0; k < 8; k++) acc[k] += xp[i + k];
    for (; i < HW; i++) acc[0] += xp[i];
    const double s =
        ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    yd[p] = (float)(s / (double)HW);
  }
  mf__record(ctx, "global_avg_pool2d", global_avg_pool_backward, out, 1, &x, 0, 0);
  return out;
}
