/* ops_reduce.c — sum and mean over a set of axes.
 *
 * Each output element is the sum over the reduced sub-space, accumulated in double in a
 * fixed order (the result does not depend on the thread count). Backward broadcasts the
 * output gradient back over the reduced axes (times 1/count for mean).
 */
#include <string.h>

#include "internal.h"
#include "melforge/ops.h"

typedef struct reduce_plan {
  int nkeep, nred;
  int64_t keep_n[MF_MAX_DIMS], keep_s[MF_MAX_DIMS]; /* kept dims: size, input stride */
  int64_t red_n[MF_MAX_DIMS], red_s[MF_MAX_DIMS];   /* reduced dims */
  int64_t n_out, n_red;
  float scale;
} reduce_plan;

static reduce_plan plan(const char *op, const mf_tensor *x, const int *axes, int naxes,
                        int keepdim, int mean, mf_shape *out_shape) {
  int red[MF_MAX_DIMS] = {0};
  if (naxes == 0)
    for (int k = 0; k < x->ndim; k++) red[k] = 1;
  for (int i = 0; i < naxes; i++) {
    int a = mf__axis(op, x, axes[i]);
    MF_CHECK(!red[a], "%s: axis %d listed twice", op, axes[i]);
    red[a] = 1;
  }
  int64_t stride[MF_MAX_DIMS];
  int64_t s = 1;
  for (int k = x->ndim - 1; k >= 0; k--) stride[k] = s, s *= x->shape[k];
  reduce_plan p = {0};
  p.n_out = 1;
  p.n_red = 1;
  out_shape->ndim = 0;
  for (int k = 0; k < x->ndim; k++) {
    if (red[k]) {
      p.red_n[p.nred] = x->shape[k], p.red_s[p.nred] = stride[k], p.nred++;
      p.n_red *= x->shape[k];
      if (keepdim) out_shape->d[out_shape->ndim++] = 1;
    } else {
      p.keep_n[p.nkeep] = x->shape[k], p.keep_s[p.nkeep] = stride[k], p.nkeep++;
      p.n_out *= x->shape[k];
      out_shape->d[out_shape->ndim++] = x->shape[k];
    }
  }
  if (out_shape->ndim == 0) out_shape->ndim = 1, out_shape->d[0] = 1; /* a scalar is [1] */
  for (int k = out_shape->ndim; k < MF_MAX_DIMS; k++) out_shape->d[k] = 1;
  p.scale = mean ? (p.n_red ? 1.0f / (float)p.n_red : 0.0f) : 1.0f;
  return p;
}

static int64_t keep_offset(const reduce_plan *p, int64_t o) {
  int64_t off = 0;
  for (int k = p->nkeep - 1; k >= 0; k--) {
    off += (o % p->keep_n[k]) * p->keep_s[k];
    o /= p->keep_n[k];
  }
  return off;
}

static int64_t red_offset(const reduce_plan *p, int64_t r) {
  int64_t off = 0;
  for (int k = p->nred - 1; k >= 0; k--) {
    off += (r % p->red_n[k]) * p->red_s[k];
    r /= p->red_n[k];
  }
  return off;
}

static void reduce_backward(mf_ctx *ctx, mf_node *n) {
  const reduce_plan *p = n->saved;
  mf_tensor *x = n->in[0];
  int acc;
  float *gx = mf__gin(ctx, x, &acc);
  if (!gx) return;
  const float *go = n->out->grad;
  const int64_t inner_red = p->nred ? p->red_n[p->nred - 1] : 1;
  const int64_t inner_s = p->nred ? p->red_s[p->nred - 1] : 0;
#pragma omp parallel for schedule(static) if (x->numel > MF_PAR_MIN)
  for (int64_t o = 0; o < p->n_out; o++) {
    const int64_t base = keep_offset(p, o);
    const float g = go[o] * p->scale;
    for (int64_t r = 0; r < p->n_red; r += inner_red) {
      float *px = gx + base + red_offset(p, r);
      if (acc)
        for (int64_t i = 0; i < inner_red; i++) px[i * inner_s] += g;
      else
        for (int64_t i = 0; i < inner_red; i++) px[i * inner_s] = g;
    }
  }
}

static mf_tensor *reduce(mf_ctx *ctx, const char *op, mf_tensor *x, const int *axes, int naxes,
                         int keepdim, int mean) {
  mf_shape os;
  reduce_plan p = plan(op, x, axes, naxes, keepdim, mean, &os);
  mf_tensor *out = mf_ctx_tensor(ctx, os);
  const float *xd = x->data;
  float *od = out->data;
  const int64_t inner_red = p.nred ? p.red_n[p.nred - 1] : 1;
  const int64_t inner_s = p.nred ? p.red_s[p.nred - 1] : 0;
#pragma omp parallel for schedule(static) if (x->numel > MF_PAR_MIN && p.n_out > 1)
  for (int64_t o = 0; o < p.n_out; o++) {
    const int64_t base = keep_offset(&p, o);
    double s = 0;
    for (int64_t r = 0; r < p.n_red; r += inner_red) {
      const float *px = xd + base + red_offset(&p, r);
      for (int64_t i = 0; i < inner_red; i++) s += px[i * inner_s];
    }
    od[o] = (float)(s * p.scale);
  }
  mf_node *n = mf__record(ctx, op, reduce_backward, out, 1, &x, 0, sizeof(reduce_plan));
  if (n) memcpy(n->saved, &p, sizeof p);
  return out;
}

mf_tensor *mf_sum(mf_ctx *ctx, mf_tensor *x, const int *axes, int naxes, int keepdim) {
  return reduce(ctx, "sum", x, axes, naxes, keepdim, 0);
}

mf_tensor *mf_mean(mf_ctx *ctx, mf_tensor *x, const int *axes, int naxes, int keepdim) {
  return reduce(ctx, "mean", x, axes, naxes, keepdim, 1);
}
