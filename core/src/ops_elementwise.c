/* ops_elementwise.c — add, sub, mul, div with NumPy broadcasting; scale; add_scalar.
 *
 * Broadcasting aligns shapes at the right; a dimension of 1 stretches. The loops walk the
 * output once with per-operand strides (0 along stretched dimensions); adjacent dimensions
 * that are laid out alike are merged first, so a bias add [N, C] + [C] runs as two nested
 * contiguous loops. Backward reduces the output gradient over the stretched dimensions.
 */
#include <string.h>

#include "internal.h"
#include "melforge/ops.h"

typedef enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV } binop;
static const char *const OP_NAME[] = {"add", "sub", "mul", "div"};

/* Output shape and merged strides of a broadcast pair. */
typedef struct bcast {
  int nd;             /* merged dimensions */
  int64_t n[MF_MAX_DIMS];
  int64_t sa[MF_MAX_DIMS], sb[MF_MAX_DIMS];
  mf_shape out;
} bcast;

static bcast broadcast(const char *op, const mf_tensor *a, const mf_tensor *b) {
  bcast r;
  int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
  int64_t n[MF_MAX_DIMS], sa[MF_MAX_DIMS], sb[MF_MAX_DIMS];
  int64_t stra = 1, strb = 1;
  r.out.ndim = nd;
  for (int k = nd - 1; k >= 0; k--) {
    int ia = k - (nd - a->ndim), ib = k - (nd - b->ndim);
    int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
    if (da != db && da != 1 && db != 1) mf__shape_panic(op, "shapes do not broadcast", a, b);
    n[k] = da > db ? da : db;
    if (da == 0 || db == 0) n[k] = 0;
    sa[k] = da == 1 ? 0 : stra;
    sb[k] = db == 1 ? 0 : strb;
    stra *= da;
    strb *= db;
    r.out.d[k] = n[k];
  }
  for (int k = nd; k < MF_MAX_DIMS; k++) r.out.d[k] = 1;
  /* Merge dimension k into k+1 when both operands step through them contiguously alike. */
  int m = 0;
  for (int k = 0; k < nd; k++) {
    if (n[k] == 1) continue;
    if (m > 0) {
      int j = m - 1;
      int a_ok = (sa[k] == 0 && r.sa[j] == 0) || (sa[k] != 0 && r.sa[j] == sa[k] * n[k]);
      int b_ok = (sb[k] == 0 && r.sb[j] == 0) || (sb[k] != 0 && r.sb[j] == sb[k] * n[k]);
      /* r.sa[j] is the stride of the previous (outer) merged dim: merging the inner dim k
       * into it requires outer stride == inner stride * inner size. */
      if (a_ok && b_ok) {
        r.n[j] *= n[k];
        r.sa[j] = sa[k];
        r.sb[j] = sb[k];
        continue;
      }
    }
    r.n[m] = n[k], r.sa[m] = sa[k], r.sb[m] = sb[k];
    m++;
  }
  if (m == 0) r.n[0] = 1, r.sa[0] = 0, r.sb[0] = 0, m = 1;
  r.nd = m;
  return r;
}

/* Calls body(out_index, a_offset, b_offset, inner_len, a_step, b_step) per inner run. */
#define BCAST_FOR(bc, ...)                                                                  \
  do {                                                                                             \
    const int nd_ = (bc).nd;                                                                       \
    const int64_t inner_ = (bc).n[nd_ - 1], as_ = (bc).sa[nd_ - 1], bs_ = (bc).sb[nd_ - 1];        \
    int64_t outer_ = 1;                                                                            \
    for (int k_ = 0; k_ < nd_ - 1; k_++) outer_ *= (bc).n[k_];                                     \
    _Pragma("omp parallel for schedule(static) if (outer_ * inner_ > MF_PAR_MIN && outer_ > 1)")   \
    for (int64_t o_ = 0; o_ < outer_; o_++) {                                                      \
      int64_t rem_ = o_, ao_ = 0, bo_ = 0;                                                         \
      for (int k_ = nd_ - 2; k_ >= 0; k_--) {                                                      \
        int64_t i_ = rem_ % (bc).n[k_];                                                            \
        rem_ /= (bc).n[k_];                                                                        \
        ao_ += i_ * (bc).sa[k_];                                                                   \
        bo_ += i_ * (bc).sb[k_];                                                                   \
      }                                                                                            \
      const int64_t oo_ = o_ * inner_;                                                             \
      __VA_ARGS__ \
    }                                                                                              \
  } while (0)

static void forward_kernel(binop op, const bcast *bc, const float *a, const float *b, float *o) {
  BCAST_FOR(*bc, {
    const float *pa = a + ao_, *pb = b + bo_;
    float *po = o + oo_;
    switch (op) {
      case OP_ADD:
        for (int64_t i = 0; i < inner_; i++) po[i] = pa[i * as_] + pb[i * bs_];
        break;
      case OP_SUB:
        for (int64_t i = 0; i < inner_; i++) po[i] = pa[i * as_] - pb[i * bs_];
        break;
      case OP_MUL:
        for (int64_t i = 0; i < inner_; i++) po[i] = pa[i * as_] * pb[i * bs_];
        break;
      case OP_DIV:
        for (int64_t i = 0; i < inner_; i++) po[i] = pa[i * as_] / pb[i * bs_];
        break;
    }
  });
}

typedef struct binop_saved {
  binop op;
  bcast bc;
} binop_saved;

/* g_x += reduce_over_broadcast(gout * factor), where factor depends on the op and operand.
 * which = 0 for a, 1 for b. Runs serially when x is broadcast (several outputs add into one
 * element), in parallel otherwise. */
static void backward_operand(mf_ctx *ctx, mf_node *n, int which) {
  binop_saved *s = n->saved;
  mf_tensor *x = n->in[which];
  const mf_tensor *a = n->in[0], *b = n->in[1];
  const float *go = n->out->grad;
  const bcast *bc = &s->bc;
  int broadcast_x = x->numel != n->out->numel;
  int acc;
  float *gx;
  if (broadcast_x) {
    gx = mf__gin_zeroed(ctx, x);
    acc = 1;
  } else {
    gx = mf__gin(ctx, x, &acc);
  }
  if (!gx) return;
  const int nd = bc->nd;
  const int64_t inner = bc->n[nd - 1];
  const int64_t xs = which == 0 ? bc->sa[nd - 1] : bc->sb[nd - 1];
  const int64_t ys = which == 0 ? bc->sb[nd - 1] : bc->sa[nd - 1];
  const float *y = which == 0 ? b->data : a->data; /* the other operand */
  const float *xd = x->data;
  const float *od = n->out->data;
  int64_t outer = 1;
  for (int k = 0; k < nd - 1; k++) outer *= bc->n[k];
  const float sign = (s->op == OP_SUB && which == 1) ? -1.0f : 1.0f;

#pragma omp parallel for schedule(static) if (!broadcast_x && outer * inner > MF_PAR_MIN && outer > 1)
  for (int64_t o = 0; o < outer; o++) {
    int64_t rem = o, xo = 0, yo = 0;
    for (int k = nd - 2; k >= 0; k--) {
      int64_t i = rem % bc->n[k];
      rem /= bc->n[k];
      xo += i * (which == 0 ? bc->sa[k] : bc->sb[k]);
      yo += i * (which == 0 ? bc->sb[k] : bc->sa[k]);
    }
    const float *g = go + o * inner;
    float *px = gx + xo;
    const float *py = y + yo;
    for (int64_t i = 0; i < inner; i++) {
      float v;
      switch (s->op) {
        case OP_ADD:
        case OP_SUB:
          v = sign * g[i];
          break;
        case OP_MUL:
          v = g[i] * py[i * ys];
          break;
        default: /* div: d(a/b)/da = 1/b, d(a/b)/db = -out/b */
          if (which == 0)
            v = g[i] / py[i * ys];
          else
            v = -g[i] * od[o * inner + i] / xd[xo + i * xs];
          break;
      }
      if (acc)
        px[i * xs] += v;
      else
        px[i * xs] = v;
    }
  }
}

static void binop_backward(mf_ctx *ctx, mf_node *n) {
  backward_operand(ctx, n, 0);
  backward_operand(ctx, n, 1);
}

static mf_tensor *binary(mf_ctx *ctx, binop op, mf_tensor *a, mf_tensor *b) {
  bcast bc = broadcast(OP_NAME[op], a, b);
  mf_tensor *out = mf_ctx_tensor(ctx, bc.out);
  if (out->numel) forward_kernel(op, &bc, a->data, b->data, out->data);
  mf_tensor *in[2] = {a, b};
  uint32_t reads = op == OP_MUL ? MF_READS_IN(0) | MF_READS_IN(1)
                   : op == OP_DIV ? MF_READS_IN(1) | MF_READS_OUT
                                  : 0;
  mf_node *n = mf__record(ctx, OP_NAME[op], binop_backward, out, 2, in, reads, sizeof(binop_saved));
  if (n) {
    binop_saved *s = n->saved;
    s->op = op;
    s->bc = bc;
  }
  return out;
}

mf_tensor *mf_add(mf_ctx *ctx, mf_tensor *a, mf_tensor *b) { return binary(ctx, OP_ADD, a, b); }
mf_tensor *mf_sub(mf_ctx *ctx, mf_tensor *a, mf_tensor *b) { return binary(ctx, OP_SUB, a, b); }
mf_tensor *mf_mul(mf_ctx *ctx, mf_tensor *a, mf_tensor *b) { return binary(ctx, OP_MUL, a, b); }
mf_tensor *mf_div(mf_ctx *ctx, mf_tensor *a, mf_tensor *b) { return binary(ctx, OP_DIV, a, b); }

/* ---- scalar ops ----------------------------------------------------------------------- */

typedef struct scalar_saved {
  float s;
} scalar_saved;

static void scale_backward(mf_ctx *ctx, mf_node *n) {
  const float s = ((scalar_saved *)n->saved)->s;
  const float *go = n->out->grad;
  int acc;
  float *gx = mf__gin_inplace(ctx, n, n->in[0], &acc);
  if (!gx) return;
  const int64_t N = n->out->numel;
#pragma omp parallel for schedule(static) if (N > MF_PAR_MIN)
  for (int64_t i = 0; i < N; i++) gx[i] = (acc ? gx[i] : 0.0f) + s * go[i];
}

static void shift_backward(mf_ctx *ctx, mf_node *n) {
  const float *go = n->out->grad;
  int acc;
  float *gx = mf__gin_inplace(ctx, n, n->in[0], &acc);
  if (!gx || gx == go) return; /* took over the output gradient unchanged */
  const int64_t N = n->out->numel;
#pragma omp parallel for schedule(static) if (N > MF_PAR_MIN)
  for (int64_t i = 0; i < N; i++) gx[i] = (acc ? gx[i] : 0.0f) + go[i];
}

static mf_tensor *scalar_op(mf_ctx *ctx, mf_tensor *a, float s, int is_scale) {
  mf_tensor *out = mf_ctx_tensor(ctx, mf_tensor_shape(a));
  const int64_t N = a->numel;
  const float *x = a->data;
  float *y = out->data;
  if (is_scale) {
#pragma omp parallel for schedule(static) if (N > MF_PAR_MIN)
    for (int64_t i = 0; i < N; i++) y[i] = x[i] * s;
  } else {
#pragma omp parallel for schedule(static) if (N > MF_PAR_MIN)
    for (int64_t i = 0; i < N; i++) y[i] = x[i] + s;
  }
  mf_node *n = mf__record(ctx, is_scale ? "scale" : "add_scalar",
                          is_scale ? scale_backward : shift_backward, out, 1, &a, 0,
                          sizeof(scalar_saved));
  if (n) ((scalar_saved *)n->saved)->s = s;
  return out;
}

mf_tensor *mf_scale(mf_ctx *ctx, mf_tensor *a, float s) { return scalar_op(ctx, a, s, 1); }
mf_tensor *mf_add_scalar(mf_ctx *ctx, mf_tensor *a, float s) { return scalar_op(ctx, a, s, 0); }
