/* ops_norm.c — batch norm (BatchNorm1d/2d) and layer norm, PyTorch semantics.
 *
 * Batch norm sees x [N, C, S...] as N * C planes of S contiguous values (S = 1 for [N, C]).
 * Forward reads x twice: per-plane sums (shifted by the channel's first value so the one-pass
 * variance does not cancel), then y = x * scale[c] + shift[c]. Backward reads x and dy once
 * for the per-channel sums and once more for dx; it never reads y, which a later in-place
 * ReLU may have overwritten. Per-plane partial sums go to a buffer and are added per channel
 * in plane order, so the result is the same for any thread count.
 *
 * Layer norm normalises each row of the last dimension; the gamma/beta gradients sum over
 * rows in fixed blocks combined in order, for the same reason.
 */
#include <math.h>
#include <string.h>

#include "internal.h"
#include "melforge/ops.h"

/* Float accumulation (vectorised) for this many values, then double. */
#define SEG 512

/* Without dy: s1 += sum (x - r), s2 += sum (x - r)^2. With dy: s1 += sum dy,
 * s2 += sum dy (x - r). Over len contiguous values. */
static void seg_sums(const float *x, const float *dy, float r, int64_t len, double *s1,
                     double *s2) {
  for (int64_t i0 = 0; i0 < len; i0 += SEG) {
    const int64_t e = len - i0 < SEG ? len - i0 : SEG;
    const float *px = x + i0;
    float a = 0.0f, b = 0.0f;
    if (dy) {
      const float *pd = dy + i0;
#pragma omp simd reduction(+ : a, b)
      for (int64_t i = 0; i < e; i++) {
        a += pd[i];
        b += pd[i] * (px[i] - r);
      }
    } else {
#pragma omp simd reduction(+ : a, b)
      for (int64_t i = 0; i < e; i++) {
        const float d = px[i] - r;
        a += d;
        b += d * d;
      }
    }
    *s1 += a;
    *s2 += b;
  }
}

/* Per-channel sums over x [N, C, S] as in seg_sums, with r = ref[c]; s1, s2 are [C]. */
static void channel_sums(mf_ctx *ctx, const float *x, const float *dy, const float *ref, int64_t N,
                         int64_t C, int64_t S, double *s1, double *s2) {
  const int64_t P = N * C;
  if (S == 1) {
    /* [N, C]: walk rows, channels contiguous; blocks of channels in parallel. */
    enum { CB = 128 };
    const int64_t nblk = (C + CB - 1) / CB;
#pragma omp parallel for schedule(static) if (P > MF_PAR_MIN && nblk > 1)
    for (int64_t blk = 0; blk < nblk; blk++) {
      const int64_t c0 = blk * CB, cn = C - c0 < CB ? C - c0 : CB;
      double a[CB], b[CB];
      for (int64_t j = 0; j < cn; j++) a[j] = b[j] = 0.0;
      for (int64_t i = 0; i < N; i++) {
        const float *px = x + i * C + c0, *pr = ref + c0;
        if (dy) {
          const float *pd = dy + i * C + c0;
          for (int64_t j = 0; j < cn; j++) {
            a[j] += pd[j];
            b[j] += (double)pd[j] * (px[j] - pr[j]);
          }
        } else {
          for (int64_t j = 0; j < cn; j++) {
            const double d = px[j] - pr[j];
            a[j] += d;
            b[j] += d * d;
          }
        }
      }
      memcpy(s1 + c0, a, (size_t)cn * sizeof(double));
      memcpy(s2 + c0, b, (size_t)cn * sizeof(double));
    }
    return;
  }
  /* Planes in parallel (memory order, and busy threads even when C is 1), then each
   * channel adds its N plane sums in order. */
  const size_t bytes = (size_t)(2 * P) * sizeof(double);
  double *part = mf__scratch(ctx, bytes);
#pragma omp parallel for schedule(static) if (P * S > MF_PAR_MIN && P > 1)
  for (int64_t p = 0; p < P; p++) {
    double a = 0.0, b = 0.0;
    seg_sums(x + p * S, dy ? dy + p * S : NULL, ref[p % C], S, &a, &b);
    part[2 * p] = a;
    part[2 * p + 1] = b;
  }
  for (int64_t c = 0; c < C; c++) {
    double a = 0.0, b = 0.0;
    for (int64_t i = 0; i < N; i++) {
      a += part[2 * (i * C + c)];
      b += part[2 * (i * C + c) + 1];
    }
    s1[c] = a;
    s2[c] = b;
  }
  mf__release(ctx, part, bytes);
}

typedef struct bn_saved {
  int64_t N, C, S;
  int batch_stats; /* normalised with the batch's own statistics: they carry gradient */
  float *mean;     /* [C] in the arena: the statistics actually used */
  float *invstd;
} bn_saved;

static void batchnorm_backward(mf_ctx *ctx, mf_node *n) {
  const bn_saved *s = n->saved;
  mf_tensor *x = n->in[0], *gamma = n->in[1], *beta = n->in[2];
  const int64_t N = s->N, C = s->C, S = s->S, M = N * S;
  const float *go = n->out->grad, *xd = x->data;
  const float *g = gamma ? gamma->data : NULL;
  const int need_x = (x->flags & MF_REQUIRES_GRAD) != 0;
  const int need_gamma = gamma && (gamma->flags & MF_REQUIRES_GRAD);
  const int need_beta = beta && (beta->flags & MF_REQUIRES_GRAD);

  const size_t sbytes = (size_t)(2 * C) * sizeof(double);
  double *sdy = NULL, *sdyx = NULL;
  if ((need_x && s->batch_stats) || need_gamma || need_beta) {
    sdy = mf__scratch(ctx, sbytes);
    sdyx = sdy + C;
    channel_sums(ctx, xd, go, s->mean, N, C, S, sdy, sdyx);
  }
  int acc;
  float *gg = need_gamma ? mf__gin(ctx, gamma, &acc) : NULL;
  if (gg)
    for (int64_t c = 0; c < C; c++) gg[c] = (acc ? gg[c] : 0.0f) + (float)(sdyx[c] * s->invstd[c]);
  float *gb = need_beta ? mf__gin(ctx, beta, &acc) : NULL;
  if (gb)
    for (int64_t c = 0; c < C; c++) gb[c] = (acc ? gb[c] : 0.0f) + (float)sdy[c];

  if (need_x) {
    /* dx = a dy + b (x - mean) + k per channel, the fused form of
     * gamma invstd / M (M dy - sum dy - xhat sum(dy xhat)); with running statistics only
     * the first term remains. */
    const size_t cbytes = (size_t)(3 * C) * sizeof(float);
    float *ca = mf__scratch(ctx, cbytes), *cb = ca + C, *ck = ca + 2 * C;
    for (int64_t c = 0; c < C; c++) {
      const double is = s->invstd[c], a = (g ? g[c] : 1.0) * is;
      ca[c] = (float)a;
      cb[c] = s->batch_stats ? (float)(-a * is * is * sdyx[c] / (double)M) : 0.0f;
      ck[c] = s->batch_stats ? (float)(-a * sdy[c] / (double)M) : 0.0f;
    }
    /* Element i of dx needs dy[i] and channel constants computed above, so the output's
     * gradient buffer can be taken over. */
    float *gx = mf__gin_inplace(ctx, n, x, &acc);
    const float *mean = s->mean;
    if (S == 1) {
#pragma omp parallel for schedule(static) if (N * C > MF_PAR_MIN)
      for (int64_t i = 0; i < N; i++) {
        const float *pd = go + i * C, *px = xd + i * C;
        float *pg = gx + i * C;
        if (acc)
          for (int64_t c = 0; c < C; c++)
            pg[c] += ca[c] * pd[c] + cb[c] * (px[c] - mean[c]) + ck[c];
        else
          for (int64_t c = 0; c < C; c++) pg[c] = ca[c] * pd[c] + cb[c] * (px[c] - mean[c]) + ck[c];
      }
    } else {
#pragma omp parallel for schedule(static) if (N * C * S > MF_PAR_MIN)
      for (int64_t p = 0; p < N * C; p++) {
        const int64_t c = p % C;
        const float a = ca[c], b = cb[c], k = ck[c], m = mean[c];
        const float *pd = go + p * S, *px = xd + p * S;
        float *pg = gx + p * S;
        if (acc)
          for (int64_t i = 0; i < S; i++) pg[i] += a * pd[i] + b * (px[i] - m) + k;
        else
          for (int64_t i = 0; i < S; i++) pg[i] = a * pd[i] + b * (px[i] - m) + k;
      }
    }
    mf__release(ctx, ca, cbytes);
  }
  if (sdy) mf__release(ctx, sdy, sbytes);
}

static void check_channel_vector(const char *what, const mf_tensor *v, const mf_tensor *x) {
  if (v) MF_SHAPE_CHECK(v->ndim == 1 && v->shape[0] == x->shape[1], "batchnorm", what, v, x);
}

mf_tensor *mf_batchnorm(mf_ctx *ctx, mf_tensor *x, mf_tensor *gamma, mf_tensor *beta,
                        mf_tensor *running_mean, mf_tensor *running_var, int training,
                        float momentum, float eps) {
  MF_SHAPE_CHECK(x->ndim >= 2, "batchnorm", "input must be [N, C, ...]", x, NULL);
  check_channel_vector("gamma must be [C]", gamma, x);
  check_channel_vector("beta must be [C]", beta, x);
  check_channel_vector("running_mean must be [C]", running_mean, x);
  check_channel_vector("running_var must be [C]", running_var, x);
  MF_CHECK((running_mean == NULL) == (running_var == NULL),
           "batchnorm: running_mean and running_var must both be given or both be NULL");
  const int64_t N = x->shape[0], C = x->shape[1];
  int64_t S = 1;
  for (int d = 2; d < x->ndim; d++) S *= x->shape[d];
  const int64_t M = N * S;
  const int batch_stats = training || !running_mean;
  mf_tensor *out = mf_ctx_tensor(ctx, mf_tensor_shape(x));
  if (x->numel == 0) return out;

  /* The statistics outlive this call when the op is recorded: arena, not scratch. */
  float *mean = mf_ctx_alloc(ctx, (size_t)(2 * C) * sizeof(float)), *invstd = mean + C;
  if (batch_stats) {
    char sh[96];
    MF_CHECK(M > 1,
             "batchnorm: batch statistics need more than one value per channel, got input %s "
             "(a final batch of one sample? drop incomplete batches)",
             mf_tensor_shape_str(x, sh, sizeof sh));
    const size_t sbytes = (size_t)(2 * C) * sizeof(double);
    double *s1 = mf__scratch(ctx, sbytes), *s2 = s1 + C;
    float *ref = invstd; /* shift: the channel's first value, overwritten below */
    for (int64_t c = 0; c < C; c++) ref[c] = x->data[c * S];
    channel_sums(ctx, x->data, NULL, ref, N, C, S, s1, s2);
    const int update = training && running_mean;
    for (int64_t c = 0; c < C; c++) {
      const double dm = s1[c] / (double)M;
      double var = s2[c] / (double)M - dm * dm;
      if (var < 0.0) var = 0.0;
      const double mu = (double)ref[c] + dm;
      mean[c] = (float)mu;
      invstd[c] = (float)(1.0 / sqrt(var + (double)eps));
      if (update) {
        float *rm = running_mean->data, *rv = running_var->data;
        rm[c] = (1.0f - momentum) * rm[c] + momentum * (float)mu;
        rv[c] = (1.0f - momentum) * rv[c] + momentum * (float)(var * (double)M / (double)(M - 1));
      }
    }
    if (update) {
      (*running_mean->version)++;
      (*running_var->version)++;
    }
    mf__release(ctx, s1, sbytes);
  } else {
    for (int64_t c = 0; c < C; c++) {
      mean[c] = running_mean->data[c];
      invstd[c] = (float)(1.0 / sqrt((double)running_var->data[c] + (double)eps));
    }
  }

  /* y = x scale + shift with scale = gamma invstd, shift = beta - mean scale. */
  const size_t abytes = (size_t)(2 * C) * sizeof(float);
  float *scale = mf__scratch(ctx, abytes), *shift = scale + C;
  for (int64_t c = 0; c < C; c++) {
    const float sc = (gamma ? gamma->data[c] : 1.0f) * invstd[c];
    scale[c] = sc;
    shift[c] = (beta ? beta->data[c] : 0.0f) - mean[c] * sc;
  }
  const float *xd = x->data;
  float *y = out->data;
  if (S == 1) {
#pragma omp parallel for schedule(static) if (N * C > MF_PAR_MIN)
    for (int64_t i = 0; i < N; i++)
      for (int64_t c = 0; c < C; c++) y[i * C + c] = xd[i * C + c] * scale[c] + shift[c];
  } else {
#pragma omp parallel for schedule(static) if (x->numel > MF_PAR_MIN)
    for (int64_t p = 0; p < N * C; p++) {
      const float sc = scale[p % C], sh = shift[p % C];
      const float *px = xd + p * S;
      float *py = y + p * S;
      for (int64_t i = 0; i < S; i++) py[i] = px[i] * sc + sh;
    }
  }
  mf__release(ctx, scale, abytes);

  mf_tensor *in[3] = {x, gamma, beta};
  mf_node *n = mf__record(ctx, "batchnorm", batchnorm_backward, out, 3, in, MF_READS_IN(0),
                          sizeof(bn_saved));
  if (n) {
    bn_saved *s = n->saved;
    s->N = N, s->C = C, s->S = S;
    s->batch_stats = batch_stats;
    s->mean = mean;
    s->invstd = invstd;
  }
  return out;
}

/* ---- layer norm ---------------------------------------------------------------------- */

/* Row blocks whose gamma/beta partial sums are combined in order. */
#define LN_BLOCKS 64

typedef struct ln_saved {
  int64_t R, D;
  float *mean, *rstd; /* [R] in the arena */
} ln_saved;

static void layernorm_backward(mf_ctx *ctx, mf_node *n) {
  const ln_saved *s = n->saved;
  mf_tensor *x = n->in[0], *gamma = n->in[1], *beta = n->in[2];
  const int64_t R = s->R, D = s->D;
  const float *go = n->out->grad, *xd = x->data;
  const float *g = gamma ? gamma->data : NULL;
  const int need_gamma = gamma && (gamma->flags & MF_REQUIRES_GRAD);
  const int need_beta = beta && (beta->flags & MF_REQUIRES_GRAD);
  const int need_params = need_gamma || need_beta;
  const int64_t nblk = R < LN_BLOCKS ? R : LN_BLOCKS;
  const int64_t per = nblk ? (R + nblk - 1) / nblk : 0;

  const size_t pbytes = (size_t)(2 * nblk * D) * sizeof(float);
  float *part = need_params ? mf__scratch(ctx, pbytes) : NULL; /* [nblk][2][D] */
  int acc = 0;
  /* Row r of dx needs the whole row r of dy, read before it is written: the output's
   * gradient buffer can be taken over. */
  float *gx = mf__gin_inplace(ctx, n, x, &acc);
  const float *mean = s->mean, *rstd = s->rstd;

#pragma omp parallel for schedule(static) if (R * D > MF_PAR_MIN && nblk > 1)
  for (int64_t blk = 0; blk < nblk; blk++) {
    float *pg = part ? part + 2 * blk * D : NULL, *pb = pg ? pg + D : NULL;
    if (pg)
      for (int64_t d = 0; d < 2 * D; d++) pg[d] = 0.0f;
    const int64_t r1 = (blk + 1) * per < R ? (blk + 1) * per : R;
    for (int64_t r = blk * per; r < r1; r++) {
      const float *px = xd + r * D, *pd = go + r * D;
      const float m = mean[r], is = rstd[r];
      if (pg)
        for (int64_t d = 0; d < D; d++) {
          pg[d] += pd[d] * (px[d] - m) * is;
          pb[d] += pd[d];
        }
      if (!gx) continue;
      float sg = 0.0f, sgx = 0.0f; /* sums of gamma dy and gamma dy xhat */
#pragma omp simd reduction(+ : sg, sgx)
      for (int64_t d = 0; d < D; d++) {
        const float gd = g ? g[d] * pd[d] : pd[d];
        sg += gd;
        sgx += gd * (px[d] - m) * is;
      }
      const float mg = sg / (float)D, mgx = sgx / (float)D;
      float *pgx = gx + r * D;
      for (int64_t d = 0; d < D; d++) {
        const float gd = g ? g[d] * pd[d] : pd[d];
        const float v = is * (gd - mg - (px[d] - m) * is * mgx);
        pgx[d] = acc ? pgx[d] + v : v;
      }
    }
  }

  if (need_params) {
    int ga_acc, gb_acc;
    float *gg = need_gamma ? mf__gin(ctx, gamma, &ga_acc) : NULL;
    float *gb = need_beta ? mf__gin(ctx, beta, &gb_acc) : NULL;
    for (int64_t d = 0; d < D; d++) {
      float a = 0.0f, b = 0.0f;
      for (int64_t blk = 0; blk < nblk; blk++) {
        a += part[2 * blk * D + d];
        b += part[2 * blk * D + D + d];
      }
      if (gg) gg[d] = ga_acc ? gg[d] + a : a;
      if (gb) gb[d] = gb_acc ? gb[d] + b : b;
    }
    mf__release(ctx, part, pbytes);
  }
}

mf_tensor *mf_layernorm(mf_ctx *ctx, mf_tensor *x, mf_tensor *gamma, mf_tensor *beta, float eps) {
  MF_SHAPE_CHECK(x->ndim >= 1, "layernorm", "input needs at least one dimension", x, NULL);
  const int64_t D = x->shape[x->ndim - 1], R = D ? x->numel / D : 0;
  if (gamma)
    MF_SHAPE_CHECK(gamma->ndim == 1 && gamma->shape[0] == D, "layernorm",
                   "gamma must be [D], D the last dimension", gamma, x);
  if (beta)
    MF_SHAPE_CHECK(beta->ndim == 1 && beta->shape[0] == D, "layernorm",
                   "beta must be [D], D the last dimension", beta, x);
  mf_tensor *out = mf_ctx_tensor(ctx, mf_tensor_shape(x));
  if (D == 0) return out;
  float *mean = mf_ctx_alloc(ctx, (size_t)(2 * R) * sizeof(float)), *rstd = mean + R;
  const float *xd = x->data, *g = gamma ? gamma->data : NULL, *b = beta ? beta->data : NULL;
  float *y = out->data;
#pragma omp parallel for schedule(static) if (x->numel > MF_PAR_MIN && R > 1)
  for (int64_t r = 0; r < R; r++) {
    const float *px = xd + r * D;
    float *py = y + r * D;
    /* Two passes over the row (it is in cache): no cancellation in the variance. */
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t d = 0; d < D; d++) sum += px[d];
    const float m = sum / (float)D;
    float sq = 0.0f;
#pragma omp simd reduction(+ : sq)
    for (int64_t d = 0; d < D; d++) sq += (px[d] - m) * (px[d] - m);
    const float is = 1.0f / sqrtf(sq / (float)D + eps);
    mean[r] = m;
    rstd[r] = is;
    if (g && b)
      for (int64_t d = 0; d < D; d++) py[d] = (px[d] - m) * is * g[d] + b[d];
    else if (g)
      for (int64_t d = 0; d < D; d++) py[d] = (px[d] - m) * is * g[d];
    else if (b)
      for (int64_t d = 0; d < D; d++) py[d] = (px[d] - m) * is + b[d];
    else
      for (int64_t d = 0; d < D; d++) py[d] = (px[d] - m) * is;
  }
  mf_tensor *in[3] = {x, gamma, beta};
  mf_node *n = mf__record(ctx, "layernorm", layernorm_backward, out, 3, in, MF_READS_IN(0),
                          sizeof(ln_saved));
  if (n) {
    ln_saved *s = n->saved;
    s->R = R, s->D = D;
    s->mean = mean;
    s->rstd = rstd;
  }
  return out;
}
