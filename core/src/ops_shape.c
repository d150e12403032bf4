/* ops_shape.c — reshape / flatten (views), permute / transpose, concat, slice (copies).
 *
 * Reshape shares the data: the result is an alias with the same version counter, so an
 * in-place op through either name is seen by every backward that reads the data. The other
 * ops copy into a new contiguous tensor, and their backward copies (or adds) the gradient
 * back through the inverse mapping.
 *
 * Permute first simplifies the mapping: size-1 dimensions are dropped and neighbouring
 * output dimensions that are also neighbours, in order, in the input are merged. What is
 * left is either a plain copy, a gather of contiguous runs, or a (batched) 2-D transpose
 * between the output's last dimension and the one that is contiguous in the input — swapping
 * the last two dims, or [B, C, F, T] -> [B, T, C, F] as a CRNN does, become [B, T, C*F] from
 * [B, C*F, T]. The transpose goes tile by tile so both sides stay in cache.
 */
#include <string.h>

#include "internal.h"
#include "melforge/ops.h"

/* dst[r * dstride + i] (=|+=) src[r * sstride + i] for r < rows, i < len. Long rows are cut
 * into pieces so a single big copy (concat along axis 0) still uses every thread. */
#define PIECE 16384
static void copy_rows(float *dst, int64_t dstride, const float *src, int64_t sstride, int64_t rows,
                      int64_t len, int add) {
  if (rows == 0 || len == 0) return;
  const int64_t pieces = (len + PIECE - 1) / PIECE, tasks = rows * pieces;
#pragma omp parallel for schedule(static) if (rows * len > MF_PAR_MIN && tasks > 1)
  for (int64_t t = 0; t < tasks; t++) {
    const int64_t r = t / pieces, i0 = (t % pieces) * PIECE;
    const int64_t m = len - i0 < PIECE ? len - i0 : PIECE;
    float *d = dst + r * dstride + i0;
    const float *s = src + r * sstride + i0;
    if (add)
      for (int64_t i = 0; i < m; i++) d[i] += s[i];
    else
      memcpy(d, s, (size_t)m * sizeof(float));
  }
}

static void zero_rows(float *dst, int64_t dstride, int64_t rows, int64_t len) {
  if (rows == 0 || len == 0) return;
#pragma omp parallel for schedule(static) if (rows * len > MF_PAR_MIN && rows > 1)
  for (int64_t r = 0; r < rows; r++) memset(dst + r * dstride, 0, (size_t)len * sizeof(float));
}

/* ---- reshape, flatten ------------------------------------------------------------------- */

static void reshape_backward(mf_ctx *ctx, mf_node *n) {
  const float *go = n->out->grad;
  int acc;
  float *gx = mf__gin_inplace(ctx, n, n->in[0], &acc);
  if (!gx || gx == go) return; /* took the output gradient over as it is */
  copy_rows(gx, 0, go, 0, 1, n->out->numel, acc);
}

mf_tensor *mf_reshape(mf_ctx *ctx, mf_tensor *x, mf_shape shape) {
  char want[96], have[96];
  mf_shape s = shape;
  int infer = -1;
  int64_t known = 1;
  MF_CHECK(s.ndim >= 0 && s.ndim <= MF_MAX_DIMS, "reshape: %d dimensions (at most %d)", s.ndim,
           MF_MAX_DIMS);
  for (int k = 0; k < s.ndim; k++) {
    if (s.d[k] == -1) {
      MF_CHECK(infer < 0, "reshape: more than one -1 in %s", mf_shape_str(shape, want, 96));
      infer = k;
    } else {
      MF_CHECK(s.d[k] >= 0, "reshape: negative dimension in %s", mf_shape_str(shape, want, 96));
      known *= s.d[k];
    }
  }
  if (infer >= 0) {
    MF_CHECK(known != 0 && x->numel % known == 0,
             "reshape: cannot view a tensor of shape %s (%lld elements) as %s",
             mf_tensor_shape_str(x, have, 96), (long long)x->numel, mf_shape_str(shape, want, 96));
    s.d[infer] = x->numel / known;
  }
  MF_CHECK(mf_shape_numel(s) == x->numel,
           "reshape: cannot view a tensor of shape %s (%lld elements) as %s (%lld elements)",
           mf_tensor_shape_str(x, have, 96), (long long)x->numel, mf_shape_str(shape, want, 96),
           (long long)mf_shape_numel(s));
  mf_tensor *out = mf__alias(ctx, x, s);
  mf__record(ctx, "reshape", reshape_backward, out, 1, &x, 0, 0);
  return out;
}

mf_tensor *mf_flatten(mf_ctx *ctx, mf_tensor *x) {
  if (x->ndim < 2)
    mf__shape_panic("flatten", "input must be [N, ...] with at least 2 dims", x, NULL);
  return mf_reshape(ctx, x, MF_SHAPE(x->shape[0], -1));
}

/* ---- permute, transpose -------------------------------------------------------------------- */

#define TILE 32

/* 4 x 4 transposes in SSE registers through the compiler's vector extensions (portable to
 * any target GCC or Clang vectorises for): a third of the time of element-by-element
 * copying on a [32, 1024, 130] -> [32, 130, 1024] permute. */
typedef float v4f __attribute__((vector_size(16)));
typedef int v4i __attribute__((vector_size(16)));
#if defined(__clang__)
#define SHUF(a, b, i0, i1, i2, i3) __builtin_shufflevector(a, b, i0, i1, i2, i3)
#else
#define SHUF(a, b, i0, i1, i2, i3) __builtin_shuffle(a, b, (v4i){i0, i1, i2, i3})
#endif

static inline v4f load4(const float *p) {
  v4f v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline void store4(float *p, v4f v, int add) {
  if (add) v += load4(p);
  memcpy(p, &v, sizeof v);
}

/* d[i * ds + q] (=|+=) s[i + q * ls] for i < iw, q < qw. */
static void transpose_tile(const float *s, int64_t ls, float *d, int64_t ds, int64_t iw, int64_t qw,
                           int add) {
  const int64_t iw4 = iw & ~(int64_t)3, qw4 = qw & ~(int64_t)3;
  for (int64_t q = 0; q < qw4; q += 4)
    for (int64_t i = 0; i < iw4; i += 4) {
      const float *p = s + q * ls + i;
      const v4f r0 = load4(p), r1 = load4(p + ls), r2 = load4(p + 2 * ls), r3 = load4(p + 3 * ls);
      const v4f t0 = SHUF(r0, r1, 0, 4, 1, 5), t1 = SHUF(r0, r1, 2, 6, 3, 7);
      const v4f t2 = SHUF(r2, r3, 0, 4, 1, 5), t3 = SHUF(r2, r3, 2, 6, 3, 7);
      float *o = d + i * ds + q;
      store4(o, SHUF(t0, t2, 0, 1, 4, 5), add);
      store4(o + ds, SHUF(t0, t2, 2, 3, 6, 7), add);
      store4(o + 2 * ds, SHUF(t1, t3, 0, 1, 4, 5), add);
      store4(o + 3 * ds, SHUF(t1, t3, 2, 3, 6, 7), add);
    }
  /* the ragged right and bottom edges */
  for (int64_t i = 0; i < iw; i++)
    for (int64_t q = i < iw4 ? qw4 : 0; q < qw; q++)
      d[i * ds + q] = (add ? d[i * ds + q] : 0.0f) + s[i + q * ls];
}

typedef struct perm_plan {
  int nd;                 /* dimensions left after simplification (>= 1) */
  int64_t n[MF_MAX_DIMS]; /* their sizes, in output order */
  int64_t s[MF_MAX_DIMS]; /* the input stride of each */
  int64_t numel;
} perm_plan;

/* The mapping out[i0, .., i_{d-1}] = x[i_perm...] for x of shape `shape`. */
static perm_plan make_plan(const int64_t *shape, int ndim, const int *perm) {
  int64_t stride[MF_MAX_DIMS];
  int64_t acc = 1;
  for (int k = ndim - 1; k >= 0; k--) stride[k] = acc, acc *= shape[k];
  perm_plan p = {0};
  p.numel = acc;
  for (int k = 0; k < ndim; k++) {
    const int64_t nk = shape[perm[k]], sk = stride[perm[k]];
    if (nk == 1) continue;
    if (p.nd > 0 && p.s[p.nd - 1] == sk * nk) { /* continues the previous dim: merge */
      p.n[p.nd - 1] *= nk;
      p.s[p.nd - 1] = sk;
      continue;
    }
    p.n[p.nd] = nk, p.s[p.nd] = sk, p.nd++;
  }
  if (p.nd == 0) p.n[0] = 1, p.s[0] = 1, p.nd = 1;
  return p;
}

/* Input offset of output row `row` over dims 0..last (row-major in those dims). */
static int64_t row_offset(const perm_plan *p, int64_t row, int last) {
  int64_t off = 0;
  for (int k = last; k >= 0; k--) {
    off += (row % p->n[k]) * p->s[k];
    row /= p->n[k];
  }
  return off;
}

/* dst (contiguous, output order) =|+= src permuted per the plan. */
static void permute_copy(const perm_plan *p, const float *src, float *dst, int add) {
  const int nd = p->nd;
  const int64_t len = p->n[nd - 1], ls = p->s[nd - 1];
  if (p->numel == 0) return;
  if (nd == 1 && ls == 1) {
    copy_rows(dst, 0, src, 0, 1, len, add);
    return;
  }
  if (ls == 1) { /* contiguous runs */
    const int64_t rows = p->numel / len;
#pragma omp parallel for schedule(static) if (p->numel > MF_PAR_MIN && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
      const float *s = src + row_offset(p, r, nd - 2);
      float *d = dst + r * len;
      if (add)
        for (int64_t i = 0; i < len; i++) d[i] += s[i];
      else
        memcpy(d, s, (size_t)len * sizeof(float));
    }
    return;
  }
  /* The input's innermost dim longer than 1 has stride 1, and merging keeps the inner
   * stride, so some output dim j < nd - 1 has unit input stride. Transpose tiles of
   * (dim j) x (last dim); the other dims are a batch. */
  int j = 0;
  while (j < nd - 1 && p->s[j] != 1) j++;
  MF_CHECK(j < nd - 1, "permute: no unit-stride dimension in the plan (internal error)");
  int64_t dstride_j = 1;
  for (int k = j + 1; k < nd; k++) dstride_j *= p->n[k];
  const int64_t nj = p->n[j];
  const int64_t batch = p->numel / (nj * len);
  const int64_t jt = (nj + TILE - 1) / TILE, tasks = batch * jt;
  /* Output offset of a batch index: the output is contiguous, so walk the output strides of
   * the batch dims (all but j and the last). */
  int64_t dstr[MF_MAX_DIMS];
  {
    int64_t a = 1;
    for (int k = nd - 1; k >= 0; k--) dstr[k] = a, a *= p->n[k];
  }
#pragma omp parallel for schedule(static) if (p->numel > MF_PAR_MIN && tasks > 1)
  for (int64_t t = 0; t < tasks; t++) {
    const int64_t b = t / jt, i0 = (t % jt) * TILE;
    const int64_t iw = nj - i0 < TILE ? nj - i0 : TILE;
    int64_t soff = 0, doff = 0, rem = b;
    for (int k = nd - 2; k >= 0; k--) {
      if (k == j) continue;
      const int64_t ik = rem % p->n[k];
      rem /= p->n[k];
      soff += ik * p->s[k];
      doff += ik * dstr[k];
    }
    const float *s = src + soff + i0;
    float *d = dst + doff + i0 * dstride_j;
    for (int64_t q0 = 0; q0 < len; q0 += TILE) {
      const int64_t qw = len - q0 < TILE ? len - q0 : TILE;
      transpose_tile(s + q0 * ls, ls, d + q0, dstride_j, iw, qw, add);
    }
  }
}

typedef struct permute_saved {
  int inv[MF_MAX_DIMS];
} permute_saved;

static void permute_backward(mf_ctx *ctx, mf_node *n) {
  const permute_saved *ps = n->saved;
  int acc;
  float *gx = mf__gin(ctx, n->in[0], &acc);
  if (!gx) return;
  const mf_tensor *o = n->out;
  perm_plan p = make_plan(o->shape, o->ndim, ps->inv);
  permute_copy(&p, o->grad, gx, acc);
}

mf_tensor *mf_permute(mf_ctx *ctx, mf_tensor *x, const int *perm) {
  int seen[MF_MAX_DIMS] = {0}, pn[MF_MAX_DIMS];
  mf_shape s;
  s.ndim = x->ndim;
  for (int k = 0; k < MF_MAX_DIMS; k++) s.d[k] = 1;
  for (int k = 0; k < x->ndim; k++) {
    pn[k] = mf__axis("permute", x, perm[k]);
    MF_CHECK(!seen[pn[k]], "permute: axis %d appears twice in the permutation", perm[k]);
    seen[pn[k]] = 1;
    s.d[k] = x->shape[pn[k]];
  }
  mf_tensor *out = mf_ctx_tensor(ctx, s);
  perm_plan p = make_plan(x->shape, x->ndim, pn);
  permute_copy(&p, x->data, out->data, 0);
  mf_node *n = mf__record(ctx, "permute", permute_backward, out, 1, &x, 0, sizeof(permute_saved));
  if (n) {
    permute_saved *ps = n->saved;
    for (int k = 0; k < x->ndim; k++) ps->inv[pn[k]] = k;
  }
  return out;
}

mf_tensor *mf_transpose(mf_ctx *ctx, mf_tensor *x, int axis0, int axis1) {
  const int a = mf__axis("transpose", x, axis0), b = mf__axis("transpose", x, axis1);
  int perm[MF_MAX_DIMS];
  for (int k = 0; k < x->ndim; k++) perm[k] = k;
  perm[a] = b;
  perm[b] = a;
  return mf_permute(ctx, x, perm);
}

/* ---- concat ------------------------------------------------------------------------------ */

/* Each input i is, per outer index, one contiguous run of len_i = shape_i[axis] * inner
 * floats; in the output the runs sit side by side, input i's at offset off_i. */
typedef struct concat_saved {
  int64_t outer, total; /* total = sum of len_i */
  int64_t *off;         /* [n + 1] */
} concat_saved;

static void concat_backward(mf_ctx *ctx, mf_node *n) {
  const concat_saved *s = n->saved;
  const float *go = n->out->grad;
  for (int i = 0; i < n->n_in; i++) {
    int acc;
    float *gx = mf__gin(ctx, n->in[i], &acc);
    if (!gx) continue;
    const int64_t len = s->off[i + 1] - s->off[i];
    copy_rows(gx, len, go + s->off[i], s->total, s->outer, len, acc);
  }
}

mf_tensor *mf_concat(mf_ctx *ctx, mf_tensor *const *xs, int n, int axis) {
  MF_CHECK(n >= 1, "concat: needs at least one tensor, got %d", n);
  const mf_tensor *x0 = xs[0];
  const int a = mf__axis("concat", x0, axis);
  mf_shape s = mf_tensor_shape(x0);
  int64_t outer = 1, inner = 1;
  for (int k = 0; k < a; k++) outer *= x0->shape[k];
  for (int k = a + 1; k < x0->ndim; k++) inner *= x0->shape[k];
  s.d[a] = 0;
  for (int i = 0; i < n; i++) {
    const mf_tensor *xi = xs[i];
    int ok = xi->ndim == x0->ndim;
    for (int k = 0; ok && k < x0->ndim; k++) ok = k == a || xi->shape[k] == x0->shape[k];
    MF_SHAPE_CHECK(ok, "concat", "shapes differ outside the concatenation axis", x0, xi);
    s.d[a] += xi->shape[a];
  }
  mf_tensor *out = mf_ctx_tensor(ctx, s);
  const int64_t total = s.d[a] * inner;
  int64_t off = 0;
  for (int i = 0; i < n; i++) {
    const int64_t len = xs[i]->shape[a] * inner;
    copy_rows(out->data + off, total, xs[i]->data, len, outer, len, 0);
    off += len;
  }
  mf_node *nd = mf__record(ctx, "concat", concat_backward, out, n, xs, 0, sizeof(concat_saved));
  if (nd) {
    concat_saved *cs = nd->saved;
    cs->outer = outer;
    cs->total = total;
    cs->off = mf_ctx_alloc(ctx, (size_t)(n + 1) * sizeof(int64_t));
    cs->off[0] = 0;
    for (int i = 0; i < n; i++) cs->off[i + 1] = cs->off[i] + xs[i]->shape[a] * inner;
  }
  return out;
}

/* ---- slice ------------------------------------------------------------------------------- */

typedef struct slice_saved {
  int64_t outer, dim, start, len, inner; /* x viewed as [outer, dim, inner] */
} slice_saved;

static void slice_backward(mf_ctx *ctx, mf_node *n) {
  const slice_saved *s = n->saved;
  int acc;
  float *gx = mf__gin(ctx, n->in[0], &acc);
  if (!gx) return;
  const int64_t row = s->dim * s->inner, run = s->len * s->inner;
  const int64_t head = s->start * s->inner, tail = row - head - run;
  if (!acc) { /* outside the slice the gradient is zero; written once, not zeroed then added */
    zero_rows(gx, row, s->outer, head);
    zero_rows(gx + head + run, row, s->outer, tail);
  }
  copy_rows(gx + head, row, n->out->grad, run, s->outer, run, acc);
}

mf_tensor *mf_slice(mf_ctx *ctx, mf_tensor *x, int axis, int64_t start, int64_t end) {
  const int a = mf__axis("slice", x, axis);
  const int64_t dim = x->shape[a];
  const int64_t b = start < 0 ? start + dim : start, e = end < 0 ? end + dim : end;
  if (!(0 <= b && b <= e && e <= dim)) {
    char sh[96];
    mf_panic(__FILE__, __LINE__,
             "slice: [%lld, %lld) along axis %d is outside [0, %lld] for a tensor of shape %s "
             "(negative bounds count from the end; start must not pass end)",
             (long long)start, (long long)end, axis, (long long)dim,
             mf_tensor_shape_str(x, sh, sizeof sh));
  }
  slice_saved s = {1, dim, b, e - b, 1};
  for (int k = 0; k < a; k++) s.outer *= x->shape[k];
  for (int k = a + 1; k < x->ndim; k++) s.inner *= x->shape[k];
  mf_shape os = mf_tensor_shape(x);
  os.d[a] = e - b;
  mf_tensor *out = mf_ctx_tensor(ctx, os);
  const int64_t run = s.len * s.inner;
  copy_rows(out->data, run, x->data + b * s.inner, dim * s.inner, s.outer, run, 0);
  mf_node *n = mf__record(ctx, "slice", slice_backward, out, 1, &x, 0, sizeof s);
  if (n) *(slice_saved *)n->saved = s;
  return out;
}
