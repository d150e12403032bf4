/* ops_loss.c — cross-entropy against class indices or soft targets, with label smoothing.
 *
 * Both losses fuse a stable log-softmax: per row, lse = max + log sum exp(x - max), and
 *   loss_n = sum_c t_nc (lse_n - x_nc),   t = (1 - eps) target + eps / C   (PyTorch's),
 * averaged over the batch. Row losses are formed and summed in double, in row order, so the
 * value does not depend on the thread count. The forward saves each row's max and log-sum
 * apart (x - max is exact for logits of any size, where x - lse in float would lose the low
 * bits of a large lse); the backward recomputes softmax from the logits:
 *   d loss / d x_nc = g / N * (S_n softmax_nc - t_nc),   S_n = sum_c t_nc,
 * which is (softmax - t) g / N for targets that sum to 1; for soft targets
 *   d loss / d target_nc = g / N * (1 - eps) (lse_n - x_nc).
 */
#include <math.h>
#include <string.h>

#include "internal.h"
#include "melforge/ops.h"

typedef struct ce_saved {
  int64_t N, C;
  float eps;
  const int32_t *labels; /* hard labels, copied into the arena; NULL for soft targets */
  float *stat;           /* [N][2]: row max, log sum exp(x - max) */
} ce_saved;

static void check_logits(const char *op, const mf_tensor *logits, float eps) {
  if (logits->ndim != 2) mf__shape_panic(op, "logits must be [N, C]", logits, NULL);
  MF_CHECK(eps >= 0.0f && eps <= 1.0f, "%s: label_smoothing %g is outside [0, 1]", op, (double)eps);
}

/* A row's max m and log sum exp(x - m), summed in double: st = {m, (float)log-sum}; returns
 * the log-sum unrounded for the forward loss. */
static double row_stat(const float *x, int64_t C, float *st) {
  float m = -INFINITY;
  for (int64_t c = 0; c < C; c++) m = x[c] > m ? x[c] : m;
  double s = 0.0;
  for (int64_t c = 0; c < C; c++) s += expf(x[c] - m);
  const double ls = log(s);
  st[0] = m;
  st[1] = (float)ls;
  return ls;
}

static double sum_in_order(const double *v, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; i++) s += v[i];
  return s;
}

/* ---- class indices ------------------------------------------------------------------------ */

static void ce_backward(mf_ctx *ctx, mf_node *n) {
  const ce_saved *s = n->saved;
  mf_tensor *logits = n->in[0];
  int acc;
  float *gx = mf__gin(ctx, logits, &acc);
  if (!gx) return;
  const int64_t N = s->N, C = s->C;
  const float g = n->out->grad[0] / (float)N;
  const float off = s->eps / (float)C, on = 1.0f - s->eps + off;
  const float *x = logits->data;
#pragma omp parallel for schedule(static) if (N * C > MF_PAR_MIN / 8 && N > 1)
  for (int64_t r = 0; r < N; r++) {
    const float *xr = x + r * C;
    float *gr = gx + r * C;
    const float m = s->stat[2 * r], ls = s->stat[2 * r + 1];
    const int32_t y = s->labels[r];
    for (int64_t c = 0; c < C; c++) {
      const float v = g * (expf((xr[c] - m) - ls) - (c == y ? on : off));
      gr[c] = (acc ? gr[c] : 0.0f) + v;
    }
  }
}

mf_tensor *mf_cross_entropy(mf_ctx *ctx, mf_tensor *logits, const int32_t *labels,
                            float label_smoothing) {
  static const char op[] = "cross_entropy";
  check_logits(op, logits, label_smoothing);
  const int64_t N = logits->shape[0], C = logits->shape[1];
  for (int64_t r = 0; r < N; r++)
    MF_CHECK(labels[r] >= 0 && labels[r] < C,
             "%s: labels[%lld] = %d is not a class index in [0, %lld)", op, (long long)r,
             (int)labels[r], (long long)C);
  mf_tensor *in[1] = {logits};
  const int rec = mf__will_record(ctx, 1, in);
  const size_t stat_bytes = (size_t)N * 2 * sizeof(float);
  float *stat = rec ? mf_ctx_alloc(ctx, stat_bytes) : mf__scratch(ctx, stat_bytes);
  double *row = mf__scratch(ctx, (size_t)N * sizeof(double));
  const double eps = label_smoothing, off = eps / (double)C;
  const float *x = logits->data;
#pragma omp parallel for schedule(static) if (N * C > MF_PAR_MIN / 8 && N > 1)
  for (int64_t r = 0; r < N; r++) {
    const float *xr = x + r * C;
    const double ls = row_stat(xr, C, stat + 2 * r);
    const double m = stat[2 * r];
    /* sum_c t_c (m + ls - x_c) with sum_c t_c = 1 */
    double sx = 0.0;
    if (eps != 0.0)
      for (int64_t c = 0; c < C; c++) sx += m - xr[c];
    row[r] = ls + (1.0 - eps) * (m - xr[labels[r]]) + off * sx;
  }
  mf_tensor *out = mf_ctx_tensor(ctx, MF_SHAPE(1));
  out->data[0] = (float)(sum_in_order(row, N) / (double)N);
  mf__release(ctx, row, (size_t)N * sizeof(double));
  mf_node *n = mf__record(ctx, op, ce_backward, out, 1, in, MF_READS_IN(0), sizeof(ce_saved));
  if (!n) {
    mf__release(ctx, stat, stat_bytes);
    return out;
  }
  int32_t *copy = mf_ctx_alloc(ctx, (size_t)N * sizeof(int32_t));
  if (N) memcpy(copy, labels, (size_t)N * sizeof(int32_t));
  *(ce_saved *)n->saved = (ce_saved){N, C, label_smoothing, copy, stat};
  return out;
}

/* ---- soft targets ------------------------------------------------------------------------- */

static void ce_soft_backward(mf_ctx *ctx, mf_node *n) {
  const ce_saved *s = n->saved;
  mf_tensor *logits = n->in[0], *targets = n->in[1];
  int acc_x = 0, acc_t = 0;
  float *gx = mf__gin(ctx, logits, &acc_x);
  float *gt = mf__gin(ctx, targets, &acc_t);
  const int64_t N = s->N, C = s->C;
  const float g = n->out->grad[0] / (float)N;
  const float keep = 1.0f - s->eps, off = s->eps / (float)C;
  const float *x = logits->data, *t = targets->data;
#pragma omp parallel for schedule(static) if (N * C > MF_PAR_MIN / 8 && N > 1)
  for (int64_t r = 0; r < N; r++) {
    const float *xr = x + r * C, *tr = t + r * C;
    const float m = s->stat[2 * r], ls = s->stat[2 * r + 1];
    if (gx) {
      float *gr = gx + r * C;
      double st = 0.0;
      for (int64_t c = 0; c < C; c++) st += keep * tr[c] + off;
      const float S = (float)st;
      for (int64_t c = 0; c < C; c++) {
        const float v = g * (S * expf((xr[c] - m) - ls) - (keep * tr[c] + off));
        gr[c] = (acc_x ? gr[c] : 0.0f) + v;
      }
    }
    if (gt) {
      float *gr = gt + r * C;
      for (int64_t c = 0; c < C; c++)
        gr[c] = (acc_t ? gr[c] : 0.0f) + g * keep * ((m - xr[c]) + ls);
    }
  }
}

mf_tensor *mf_cross_entropy_soft(mf_ctx *ctx, mf_tensor *logits, mf_tensor *targets,
                                 float label_smoothing) {
  static const char op[] = "cross_entropy_soft";
  check_logits(op, logits, label_smoothing);
  MF_SHAPE_CHECK(mf_shape_equal(mf_tensor_shape(logits), mf_tensor_shape(targets)), op,
                 "targets must have the shape of the logits", logits, targets);
  const int64_t N = logits->shape[0], C = logits->shape[1];
  mf_tensor *in[2] = {logits, targets};
  const int rec = mf__will_record(ctx, 2, in);
  const size_t stat_bytes = (size_t)N * 2 * sizeof(float);
  float *stat = rec ? mf_ctx_alloc(ctx, stat_bytes) : mf__scratch(ctx, stat_bytes);
  double *row = mf__scratch(ctx, (size_t)N * sizeof(double));
  const double keep = 1.0 - label_smoothing, off = label_smoothing / (double)C;
  const float *x = logits->data, *t = targets->data;
#pragma omp parallel for schedule(static) if (N * C > MF_PAR_MIN / 8 && N > 1)
  for (int64_t r = 0; r < N; r++) {
    const float *xr = x + r * C, *tr = t + r * C;
    const double ls = row_stat(xr, C, stat + 2 * r);
    const double m = stat[2 * r];
    double acc = 0.0;
    for (int64_t c = 0; c < C; c++) acc += (keep * tr[c] + off) * ((m - xr[c]) + ls);
    row[r] = acc;
  }
  mf_tensor *out = mf_ctx_tensor(ctx, MF_SHAPE(1));
  out->data[0] = (float)(sum_in_order(row, N) / (double)N);
  mf__release(ctx, row, (size_t)N * sizeof(double));
  mf_node *n = mf__record(ctx, op, ce_soft_backward, out, 2, in, MF_READS_IN(0) | MF_READS_IN(1),
                          sizeof(ce_saved));
  if (!n) {
    mf__release(ctx, stat, stat_bytes);
    return out;
  }
  *(ce_saved *)n->saved = (ce_saved){N, C, label_smoothing, NULL, stat};
  return out;
}
