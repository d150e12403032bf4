/* ops_matmul.c — batched matrix products and nn.Linear on sgemm (mf__sgemm).
 *
 * A product [..., m, k] x [..., k, n] broadcasts the leading (batch) dimensions NumPy-style.
 * Two layouts matter for speed:
 *  - a batched left operand against a shared right one ([B, T, k] x [k, n], the projections
 *    of a transformer) is one [B*T, k] x [k, n] GEMM, and so are both of its gradients;
 *  - true batched products ([B*H, T, d] x [B*H, d, T], attention) run one GEMM per item,
 *    spread over threads with a single-threaded sgemm each when there are enough items
 *    (OpenBLAS's OpenMP build does not thread inside a parallel region), otherwise one
 *    after the other, each shared among the threads by mf__sgemm.
 * Gradients of a broadcast operand sum the per-item products in item order with beta = 1,
 * so the result does not depend on scheduling.
 */
#include <omp.h>
#include <string.h>

#include "internal.h"
#include "melforge/ops.h"

/* C (M x N) = op1 (M x K) · op2 (K x N) + beta C, all row-major and dense. */
static void gemm(int t1, int t2, int64_t M, int64_t N, int64_t K, const float *x, const float *y,
                 float beta, float *c) {
  mf__sgemm(t1, t2, M, N, K, 1.0f, x, t1 ? M : K, y, t2 ? K : N, beta, c, N);
}

/* Whether to spread `items` independent GEMMs over the threads (single-threaded sgemm each)
 * rather than run them in turn, each split among the threads. Small products split badly;
 * large ones only lose when the items do not divide evenly and are few. */
static int items_in_parallel(int64_t items, int64_t M, int64_t N, int64_t K) {
  const int nt = omp_get_max_threads();
  if (nt < 2 || items < nt) return 0;
  return items % nt == 0 || items >= 4 * (int64_t)nt || (double)M * N * K < 262144.0;
}

/* ---- matmul --------------------------------------------------------------------------- */

enum { OPND_A, OPND_B, OPND_OUT };

typedef struct mm_plan {
  int ta, tb;
  int64_t m, n, k;
  int64_t batch;              /* output batch items */
  int64_t count[2];           /* batch items of a, b */
  int nbd;                    /* output batch dimensions */
  int64_t bd[MF_MAX_DIMS];    /* their sizes */
  int64_t bs[2][MF_MAX_DIMS]; /* a's and b's stride along each, in matrices (0: broadcast) */
} mm_plan;

/* Matrix index inside operand `which` of output batch item o. */
static int64_t item_of(const mm_plan *p, int which, int64_t o) {
  if (which == OPND_OUT) return o;
  const int64_t cnt = p->count[which];
  if (cnt == p->batch) return o; /* not broadcast anywhere: the same layout as the output */
  if (cnt == 1) return 0;
  int64_t idx = 0;
  for (int d = p->nbd - 1; d >= 0; d--) {
    idx += (o % p->bd[d]) * p->bs[which][d];
    o /= p->bd[d];
  }
  return idx;
}

/* A set of GEMMs: target matrix t of c receives the sum, over the output batch items o that
 * map to t (in increasing o), of op1(x[item]) · op2(y[item]). */
typedef struct gemm_set {
  int t1, t2;
  int64_t M, N, K;
  const float *x;
  int wx;
  const float *y;
  int wy;
  float *c;
  int wc;
  int acc; /* c holds a gradient to add to */
} gemm_set;

static void run_set(const mm_plan *p, const gemm_set *g) {
  const int64_t sx = g->M * g->K, sy = g->K * g->N, sc = g->M * g->N;
  const int64_t targets = g->wc == OPND_OUT ? p->batch : p->count[g->wc];
  const int one_each = targets == p->batch; /* item o is target o */
  const int par = items_in_parallel(targets, g->M, g->N, g->K);
#pragma omp parallel for schedule(static) if (par)
  for (int64_t t = 0; t < targets; t++) {
    float *c = g->c + t * sc;
    int first = 1;
    const int64_t o0 = one_each ? t : 0, o1 = one_each ? t + 1 : p->batch;
    for (int64_t o = o0; o < o1; o++) {
      if (!one_each && targets > 1 && item_of(p, g->wc, o) != t) continue;
      gemm(g->t1, g->t2, g->M, g->N, g->K, g->x + item_of(p, g->wx, o) * sx,
           g->y + item_of(p, g->wy, o) * sy, first && !g->acc ? 0.0f : 1.0f, c);
      first = 0;
    }
    if (first && !g->acc) memset(c, 0, (size_t)sc * sizeof(float)); /* empty batch */
  }
}

/* The left operand's batch is the whole output batch and the right one is shared: the batch
 * folds into the rows of a single GEMM. */
static int folds(const mm_plan *p) { return p->count[OPND_B] == 1 && !p->ta; }

static mm_plan plan_matmul(const mf_tensor *a, const mf_tensor *b, int ta, int tb, mf_shape *out) {
  static const char *op = "matmul";
  MF_SHAPE_CHECK(a->ndim >= 2 && b->ndim >= 2, op, "operands need at least 2 dimensions", a, b);
  mm_plan p = {0};
  p.ta = ta != 0, p.tb = tb != 0;
  const int64_t ar = a->shape[a->ndim - 2], ac = a->shape[a->ndim - 1];
  const int64_t br = b->shape[b->ndim - 2], bc = b->shape[b->ndim - 1];
  p.m = p.ta ? ac : ar;
  p.k = p.ta ? ar : ac;
  p.n = p.tb ? br : bc;
  MF_SHAPE_CHECK((p.tb ? bc : br) == p.k, op, "inner dimensions differ", a, b);

  const int na = a->ndim - 2, nb = b->ndim - 2;
  const int nd = na > nb ? na : nb;
  int64_t sa = 1, sb = 1;
  p.nbd = nd;
  p.batch = 1;
  p.count[0] = p.count[1] = 1;
  for (int d = nd - 1; d >= 0; d--) {
    const int ia = d - (nd - na), ib = d - (nd - nb);
    const int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
    MF_SHAPE_CHECK(da == db || da == 1 || db == 1, op, "batch dimensions do not broadcast", a, b);
    p.bd[d] = da == 1 ? db : da;
    p.bs[0][d] = da == 1 ? 0 : sa;
    p.bs[1][d] = db == 1 ? 0 : sb;
    sa *= da;
    sb *= db;
    p.batch *= p.bd[d];
  }
  p.count[0] = sa, p.count[1] = sb;
  out->ndim = nd + 2;
  for (int d = 0; d < MF_MAX_DIMS; d++) out->d[d] = d < nd ? p.bd[d] : 1;
  out->d[nd] = p.m;
  out->d[nd + 1] = p.n;
  return p;
}

static void matmul_backward(mf_ctx *ctx, mf_node *n) {
  const mm_plan *p = n->saved;
  const mf_tensor *a = n->in[0], *b = n->in[1];
  const float *go = n->out->grad;
  int acc;
  float *ga = mf__gin(ctx, n->in[0], &acc);
  if (ga) {
    if (folds(p)) {
      /* dA = dC · op(B)^T over all rows at once. */
      gemm(0, !p->tb, p->batch * p->m, p->k, p->n, go, b->data, acc ? 1.0f : 0.0f, ga);
    } else if (!p->ta) { /* dA [m, k] = dC · op(B)^T */
      run_set(p, &(gemm_set){0, !p->tb, p->m, p->k, p->n, go, OPND_OUT, b->data, OPND_B, ga, OPND_A,
                             acc});
    } else { /* A stored [k, m]: dA = op(B) · dC^T */
      run_set(p, &(gemm_set){p->tb, 1, p->k, p->m, p->n, b->data, OPND_B, go, OPND_OUT, ga, OPND_A,
                             acc});
    }
  }
  float *gb = mf__gin(ctx, n->in[1], &acc);
  if (gb) {
    if (folds(p)) {
      /* The shared B's gradient sums over the batch: one GEMM with the batch in K. */
      if (!p->tb)
        gemm(1, 0, p->k, p->n, p->batch * p->m, a->data, go, acc ? 1.0f : 0.0f, gb);
      else
        gemm(1, 0, p->n, p->k, p->batch * p->m, go, a->data, acc ? 1.0f : 0.0f, gb);
    } else if (!p->tb) { /* dB [k, n] = op(A)^T · dC */
      run_set(p, &(gemm_set){!p->ta, 0, p->k, p->n, p->m, a->data, OPND_A, go, OPND_OUT, gb, OPND_B,
                             acc});
    } else { /* B stored [n, k]: dB = dC^T · op(A) */
      run_set(p, &(gemm_set){1, p->ta, p->n, p->k, p->m, go, OPND_OUT, a->data, OPND_A, gb, OPND_B,
                             acc});
    }
  }
}

mf_tensor *mf_matmul_ex(mf_ctx *ctx, mf_tensor *a, mf_tensor *b, int trans_a, int trans_b) {
  mf_shape os;
  mm_plan p = plan_matmul(a, b, trans_a, trans_b, &os);
  mf_tensor *out = mf_ctx_tensor(ctx, os);
  if (folds(&p))
    gemm(0, p.tb, p.batch * p.m, p.n, p.k, a->data, b->data, 0.0f, out->data);
  else
    run_set(&p, &(gemm_set){p.ta, p.tb, p.m, p.n, p.k, a->data, OPND_A, b->data, OPND_B, out->data,
                            OPND_OUT, 0});
  mf_tensor *in[2] = {a, b};
  mf_node *n = mf__record(ctx, "matmul", matmul_backward, out, 2, in,
                          MF_READS_IN(0) | MF_READS_IN(1), sizeof(mm_plan));
  if (n) memcpy(n->saved, &p, sizeof p);
  return out;
}

mf_tensor *mf_matmul(mf_ctx *ctx, mf_tensor *a, mf_tensor *b) {
  return mf_matmul_ex(ctx, a, b, 0, 0);
}

/* ---- linear ----------------------------------------------------------------------------- */

/* Rows summed per fixed block, blocks combined in order: the same bits for any thread count. */
#define COLSUM_ROWS 64

/* Rows of x [..., in] seen as a matrix: the product of the leading dimensions. */
static int64_t lead_rows(const mf_tensor *x) {
  int64_t r = 1;
  for (int d = 0; d < x->ndim - 1; d++) r *= x->shape[d];
  return r;
}

/* out[j] (+)= sum_i g[i * N + j] for a row-major [M, N] g. */
static void column_sums(mf_ctx *ctx, const float *g, int64_t M, int64_t N, float *out, int acc) {
  const int64_t nblk = (M + COLSUM_ROWS - 1) / COLSUM_ROWS;
  const size_t bytes = (size_t)(nblk * N) * sizeof(float);
  float *part = mf__scratch(ctx, bytes);
#pragma omp parallel for schedule(static) if (M * N > MF_PAR_MIN && nblk > 1)
  for (int64_t blk = 0; blk < nblk; blk++) {
    float *ps = part + blk * N;
    const int64_t i1 = (blk + 1) * COLSUM_ROWS < M ? (blk + 1) * COLSUM_ROWS : M;
    memcpy(ps, g + blk * COLSUM_ROWS * N, (size_t)N * sizeof(float));
    for (int64_t i = blk * COLSUM_ROWS + 1; i < i1; i++) {
      const float *row = g + i * N;
      for (int64_t j = 0; j < N; j++) ps[j] += row[j];
    }
  }
#pragma omp parallel for schedule(static) if (nblk * N > MF_PAR_MIN)
  for (int64_t j = 0; j < N; j++) {
    float s = acc ? out[j] : 0.0f;
    for (int64_t blk = 0; blk < nblk; blk++) s += part[blk * N + j];
    out[j] = s;
  }
  mf__release(ctx, part, bytes);
}

static void linear_backward(mf_ctx *ctx, mf_node *n) {
  const mf_tensor *x = n->in[0], *w = n->in[1];
  const int64_t out_f = w->shape[0], in_f = w->shape[1];
  const int64_t M = lead_rows(x);
  const float *go = n->out->grad;
  int acc;
  float *gx = mf__gin(ctx, n->in[0], &acc);
  if (gx) gemm(0, 0, M, in_f, out_f, go, w->data, acc ? 1.0f : 0.0f, gx); /* dC · W */
  float *gw = mf__gin(ctx, n->in[1], &acc);
  if (gw) gemm(1, 0, out_f, in_f, M, go, x->data, acc ? 1.0f : 0.0f, gw); /* dC^T · X */
  float *gbias = mf__gin(ctx, n->in[2], &acc);
  if (gbias) {
    if (M > 0)
      column_sums(ctx, go, M, out_f, gbias, acc);
    else if (!acc)
      memset(gbias, 0, (size_t)out_f * sizeof(float));
  }
}

mf_tensor *mf_linear(mf_ctx *ctx, mf_tensor *x, mf_tensor *w, mf_tensor *b) {
  static const char *op = "linear";
  MF_SHAPE_CHECK(w->ndim == 2, op, "weight must be [out, in]", w, NULL);
  MF_SHAPE_CHECK(x->ndim >= 1 && x->shape[x->ndim - 1] == w->shape[1], op,
                 "input's last dimension differs from the weight's in-features", x, w);
  const int64_t out_f = w->shape[0], in_f = w->shape[1];
  if (b) MF_SHAPE_CHECK(b->ndim == 1 && b->shape[0] == out_f, op, "bias must be [out]", b, w);
  mf_shape os = mf_tensor_shape(x);
  os.d[os.ndim - 1] = out_f;
  mf_tensor *out = mf_ctx_tensor(ctx, os);
  const int64_t M = lead_rows(x);
  float *y = out->data;
  if (b) {
    /* Start from the bias and let the GEMM add onto it (beta = 1): no second pass over y. */
    const float *bd = b->data;
#pragma omp parallel for schedule(static) if (M * out_f > MF_PAR_MIN)
    for (int64_t i = 0; i < M; i++) memcpy(y + i * out_f, bd, (size_t)out_f * sizeof(float));
  }
  gemm(0, 1, M, out_f, in_f, x->data, w->data, b ? 1.0f : 0.0f, y);
  mf_tensor *in[3] = {x, w, b};
  mf__record(ctx, op, linear_backward, out, 3, in, MF_READS_IN(0) | MF_READS_IN(1), 0);
  return out;
}
