/* ops_dropout.c — inverted dropout and channel dropout (Dropout2d).
 *
 * The mask comes from the context's dropout stream: the op takes the stream's counter as its
 * base, element i uses word i % 4 of Philox block base + i / 4, and the stream moves past the
 * blocks used. Any element's draw is a function of (key, base, i) alone, so the mask does
 * not depend on the thread count, and backward regenerates it instead of storing it.
 */
#include <math.h>
#include <string.h>

#include "fastmath.h"
#include "internal.h"
#include "melforge/ops.h"

/* Elements handled per Philox call: the words of 256 blocks, 4 KiB on the stack. The words
 * come from fastmath.c's mf__philox_fill, cloned per CPU level (32x32->64 multiplies are
 * slow in baseline x86-64); integer arithmetic, so every clone gives the same mask. */
#define GROUP 1024

typedef struct drop_saved {
  uint32_t key[2];
  uint64_t base; /* first Philox block of this op's mask */
  float p, scale;
} drop_saved;

/* Takes the op's blocks from the dropout stream. */
static drop_saved draw(mf_ctx *ctx, int64_t n, float p) {
  mf_rng *r = mf__dropout_rng(ctx);
  drop_saved s = {{r->key[0], r->key[1]}, r->counter, p, p < 1.0f ? 1.0f / (1.0f - p) : 0.0f};
  r->counter += (uint64_t)((n + 3) / 4);
  r->nbuf = 0; /* words buffered before this op belong to blocks it has passed */
  return s;
}

/* v where the word keeps the element, else +0 (also for inf / nan v): a select instead of
 * a branch, so the loops below vectorise. */
static inline float keep_or_zero(float v, uint32_t word, int32_t thr) {
  return sel(philox_keeps(word, thr), v, 0.0f);
}

/* y[i] (+)= keep(i) ? x[i] * scale : 0, for the mask of s over n elements. */
static void masked_scale(const drop_saved *s, const float *x, float *y, int64_t n, int acc) {
  const int64_t ngrp = (n + GROUP - 1) / GROUP;
  const int32_t thr = philox_keep_threshold(s->p);
  const float scale = s->scale;
#pragma omp parallel for schedule(static) if (n > MF_PAR_MIN)
  for (int64_t gi = 0; gi < ngrp; gi++) {
    uint32_t w[GROUP];
    const int64_t i0 = gi * GROUP, e = n - i0 < GROUP ? n - i0 : GROUP;
    mf__philox_fill(s->key, s->base + (uint64_t)(i0 / 4), (e + 3) / 4, w);
    const float *px = x + i0;
    float *py = y + i0;
    if (acc)
      for (int64_t j = 0; j < e; j++) py[j] += keep_or_zero(px[j] * scale, w[j], thr);
    else
      for (int64_t j = 0; j < e; j++) py[j] = keep_or_zero(px[j] * scale, w[j], thr);
  }
}

static void dropout_backward(mf_ctx *ctx, mf_node *n) {
  const float *go = n->out->grad; /* read first: the in-place handover clears it */
  int acc;
  float *gx = mf__gin_inplace(ctx, n, n->in[0], &acc);
  if (gx) masked_scale(n->saved, go, gx, n->in[0]->numel, acc);
}

static void check_p(const char *op, float p) {
  MF_CHECK(p >= 0.0f && p <= 1.0f, "%s: p must be in [0, 1], got %g", op, (double)p);
}

mf_tensor *mf_dropout(mf_ctx *ctx, mf_tensor *x, float p, int training) {
  check_p("dropout", p);
  if (!training || p == 0.0f) return x;
  drop_saved s = draw(ctx, x->numel, p);
  mf_tensor *out = mf_ctx_tensor(ctx, mf_tensor_shape(x));
  masked_scale(&s, x->data, out->data, x->numel, 0);
  mf_node *n = mf__record(ctx, "dropout", dropout_backward, out, 1, &x, 0, sizeof s);
  if (n) memcpy(n->saved, &s, sizeof s);
  return out;
}

/* ---- dropout2d: one draw per (sample, channel) ------------------------------------------ */

/* m[j] = scale or 0 for the NC channel planes. */
static void channel_mask(const drop_saved *s, float *m, int64_t NC) {
  const int32_t thr = philox_keep_threshold(s->p);
  for (int64_t g0 = 0; g0 < NC; g0 += GROUP) {
    uint32_t w[GROUP];
    const int64_t e = NC - g0 < GROUP ? NC - g0 : GROUP;
    mf__philox_fill(s->key, s->base + (uint64_t)(g0 / 4), (e + 3) / 4, w);
    for (int64_t j = 0; j < e; j++) m[g0 + j] = keep_or_zero(s->scale, w[j], thr);
  }
}

/* y (+)= x * m[plane] over NC planes of S values. */
static void plane_scale(const float *m, const float *x, float *y, int64_t NC, int64_t S, int acc) {
#pragma omp parallel for schedule(static) if (NC * S > MF_PAR_MIN)
  for (int64_t j = 0; j < NC; j++) {
    const float f = m[j];
    const float *px = x + j * S;
    float *py = y + j * S;
    if (f == 0.0f) {
      /* Dropped: exact zeros (no 0 * inf), nothing to add. */
      if (!acc) memset(py, 0, (size_t)S * sizeof(float));
    } else if (acc) {
      for (int64_t i = 0; i < S; i++) py[i] += px[i] * f;
    } else {
      for (int64_t i = 0; i < S; i++) py[i] = px[i] * f;
    }
  }
}

static void dropout2d_backward(mf_ctx *ctx, mf_node *n) {
  const float *go = n->out->grad; /* read first: the in-place handover clears it */
  int acc;
  float *gx = mf__gin_inplace(ctx, n, n->in[0], &acc);
  if (!gx) return;
  const mf_tensor *x = n->in[0];
  const int64_t NC = x->shape[0] * x->shape[1], S = NC ? x->numel / NC : 0;
  const size_t bytes = (size_t)NC * sizeof(float);
  float *m = mf__scratch(ctx, bytes);
  channel_mask(n->saved, m, NC);
  plane_scale(m, go, gx, NC, S, acc);
  mf__release(ctx, m, bytes);
}

mf_tensor *mf_dropout2d(mf_ctx *ctx, mf_tensor *x, float p, int training) {
  check_p("dropout2d", p);
  MF_SHAPE_CHECK(x->ndim >= 2, "dropout2d", "input must be [N, C, ...]", x, NULL);
  if (!training || p == 0.0f) return x;
  const int64_t NC = x->shape[0] * x->shape[1], S = NC ? x->numel / NC : 0;
  drop_saved s = draw(ctx, NC, p);
  mf_tensor *out = mf_ctx_tensor(ctx, mf_tensor_shape(x));
  const size_t bytes = (size_t)NC * sizeof(float);
  float *m = mf__scratch(ctx, bytes);
  channel_mask(&s, m, NC);
  plane_scale(m, x->data, out->data, NC, S, 0);
  mf__release(ctx, m, bytes);
  mf_node *n = mf__record(ctx, "dropout2d", dropout2d_backward, out, 1, &x, 0, sizeof s);
  if (n) memcpy(n->saved, &s, sizeof s);
  return out;
}
