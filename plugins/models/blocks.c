/* blocks.c — see blocks.h. */
#include "blocks.h"

#include <stdio.h>
#include <string.h>

int image_dims(const mf_api *mf, const mf_model_io *io, int64_t *c, int64_t *h, int64_t *w) {
  if (io->input.ndim == 2) {
    *c = 1, *h = io->input.d[0], *w = io->input.d[1];
    return 1;
  }
  if (io->input.ndim == 3) {
    *c = io->input.d[0], *h = io->input.d[1], *w = io->input.d[2];
    return 1;
  }
  mf->set_error(MF_EINVAL,
                "expects 2-d samples [frequency, time] or 3-d [channels, height, width], got %d-d",
                io->input.ndim);
  return 0;
}

mf_tensor *as_image(const mf_api *mf, mf_ctx *ctx, mf_tensor *x) {
  if (x->ndim == 3) return mf->reshape(ctx, x, MF_SHAPE(x->shape[0], 1, x->shape[1], x->shape[2]));
  return x;
}

int linear_create(const mf_api *mf, mf_params *store, const char *name, int64_t in, int64_t out,
                  int bias, mf_rng *rng, mf_tensor **w, mf_tensor **b) {
  char n[160];
  snprintf(n, sizeof n, "%s.weight", name);
  *w = mf->param(store, n, MF_SHAPE(out, in));
  *b = NULL;
  if (bias) {
    snprintf(n, sizeof n, "%s.bias", name);
    *b = mf->param(store, n, MF_SHAPE(out));
  }
  if (!*w || (bias && !*b)) return 0;
  mf->init_linear_default(*w, *b, rng);
  return 1;
}

int batchnorm_create(const mf_api *mf, mf_params *store, const char *name, int64_t c, mf_tensor **g,
                     mf_tensor **b, mf_tensor **m, mf_tensor **v) {
  char n[160];
  snprintf(n, sizeof n, "%s.weight", name);
  *g = mf->param(store, n, MF_SHAPE(c));
  snprintf(n, sizeof n, "%s.bias", name);
  *b = mf->param(store, n, MF_SHAPE(c));
  snprintf(n, sizeof n, "%s.running_mean", name);
  *m = mf->buffer(store, n, MF_SHAPE(c));
  snprintf(n, sizeof n, "%s.running_var", name);
  *v = mf->buffer(store, n, MF_SHAPE(c));
  if (!*g || !*b || !*m || !*v) return 0;
  mf->init_constant(*g, 1.0f);
  mf->init_constant(*v, 1.0f);
  return 1;
}

int conv_stack_cfg_read(const mf_api *mf, const mf_values *v, const char *dropout_param,
                        conv_stack_cfg *cfg) {
  memset(cfg, 0, sizeof *cfg);
  const int64_t *f, *p;
  int nf = mf->value_ints(v, "filters", &f);
  if (nf < 1 || nf > MAX_BLOCKS) {
    mf->set_error(MF_EINVAL, "parameter 'filters' needs 1 to %d blocks, got %d", MAX_BLOCKS, nf);
    return 0;
  }
  cfg->nblocks = nf;
  for (int i = 0; i < nf; i++) cfg->filters[i] = f[i];
  cfg->convs_per_block = (int)mf->value_int(v, "convs_per_block");
  cfg->kernel = (int)mf->value_int(v, "kernel");
  int np = mf->value_ints(v, "pool", &p);
  if (np == 2) {
    for (int i = 0; i < nf; i++) cfg->pool[i][0] = (int)p[0], cfg->pool[i][1] = (int)p[1];
  } else if (np == 2 * nf) {
    for (int i = 0; i < nf; i++)
      cfg->pool[i][0] = (int)p[2 * i], cfg->pool[i][1] = (int)p[2 * i + 1];
  } else {
    mf->set_error(MF_EINVAL,
                  "parameter 'pool' needs 2 values (h, w) for every block or 2 per block (%d), "
                  "got %d",
                  2 * nf, np);
    return 0;
  }
  cfg->order = strcmp(mf->value_string(v, "order"), "conv-relu-pool-bn") == 0
                   ? ORDER_CONV_RELU_POOL_BN
                   : ORDER_CONV_BN_RELU;
  cfg->conv_bias = mf->value_bool(v, "conv_bias");
  cfg->dropout = (float)mf->value_float(v, dropout_param);
  cfg->spatial_dropout = mf->value_bool(v, "spatial_dropout");
  return 1;
}

int conv_stack_create(const mf_api *mf, conv_stack *cs, const char *prefix, mf_params *store,
                      int64_t c, int64_t h, int64_t w, mf_rng *rng) {
  const conv_stack_cfg *cfg = &cs->cfg;
  int idx = 0, L = 0;
  char name[160];
  for (int b = 0; b < cfg->nblocks; b++) {
    for (int k = 0; k < cfg->convs_per_block; k++) {
      if (L == MAX_LAYERS) {
        mf->set_error(MF_EINVAL, "too many convolutions (at most %d)", MAX_LAYERS);
        return 0;
      }
      conv_layer *l = &cs->layer[L];
      memset(l, 0, sizeof *l);
      l->pool_after = -1;
      int64_t o = cfg->filters[b];
      snprintf(name, sizeof name, "%s.%d.weight", prefix, idx);
      l->w = mf->param(store, name, MF_SHAPE(o, c, cfg->kernel, cfg->kernel));
      if (cfg->conv_bias) {
        snprintf(name, sizeof name, "%s.%d.bias", prefix, idx);
        l->b = mf->param(store, name, MF_SHAPE(o));
      }
      if (!l->w || (cfg->conv_bias && !l->b)) return 0;
      mf->init_conv_default(l->w, l->b, rng);
      idx++;
      if (cfg->order == ORDER_CONV_BN_RELU) {
        snprintf(name, sizeof name, "%s.%d", prefix, idx);
        if (!batchnorm_create(mf, store, name, o, &l->bn_g, &l->bn_b, &l->bn_m, &l->bn_v)) return 0;
        idx += 2; /* bn, relu */
      } else {
        idx += 1; /* relu */
      }
      c = o;
      L++;
    }
    conv_layer *last = &cs->layer[L - 1];
    last->pool_after = b;
    int ph = cfg->pool[b][0], pw = cfg->pool[b][1];
    if (ph > 1 || pw > 1) {
      if (h / ph < 1 || w / pw < 1) {
        mf->set_error(MF_EINVAL,
                      "block %d pools (%d, %d) but the feature map is only %lld x %lld; use fewer "
                      "blocks or smaller pools for this input",
                      b + 1, ph, pw, (long long)h, (long long)w);
        return 0;
      }
      h /= ph, w /= pw;
      idx++;
    }
    if (cfg->order == ORDER_CONV_RELU_POOL_BN) {
      /* The block's batchnorm sits after the pool; keep it on the block's last conv. */
      snprintf(name, sizeof name, "%s.%d", prefix, idx);
      if (!batchnorm_create(mf, store, name, c, &last->bn_g, &last->bn_b, &last->bn_m, &last->bn_v))
        return 0;
      idx++;
    }
    if (cfg->dropout > 0) idx++;
  }
  cs->nlayers = L;
  cs->next_index = idx;
  cs->out_c = c, cs->out_h = h, cs->out_w = w;
  return 1;
}

mf_tensor *chain_step(const mf_api *mf, mf_ctx *ctx, mf_tensor *x, mf_tensor *y, int *owned) {
  if (y != x && y->data != x->data && *owned) mf->release(ctx, x);
  *owned = 1;
  return y;
}

mf_tensor *conv_stack_forward(const mf_api *mf, const conv_stack *cs, mf_ctx *ctx, mf_tensor *x,
                              int training) {
  const conv_stack_cfg *cfg = &cs->cfg;
  mf_conv2d_opts co = {.same = 1};
  int owned = 0; /* the input is the caller's: never released */
  for (int i = 0; i < cs->nlayers; i++) {
    const conv_layer *l = &cs->layer[i];
    x = chain_step(mf, ctx, x, mf->conv2d(ctx, x, l->w, l->b, &co), &owned);
    if (cfg->order == ORDER_CONV_BN_RELU)
      x = chain_step(
          mf, ctx, x,
          mf->batchnorm(ctx, x, l->bn_g, l->bn_b, l->bn_m, l->bn_v, training, BN_MOMENTUM, BN_EPS),
          &owned);
    const int b = l->pool_after;
    if (b < 0 || (cfg->pool[b][0] <= 1 && cfg->pool[b][1] <= 1)) {
      x = mf->relu_(ctx, x); /* neither conv nor batchnorm reads its output in backward */
      if (b < 0) continue;
    } else {
      /* ReLU then max-pool, computed as max-pool then ReLU on a quarter of the values: both
       * are monotone, so the outputs are the same bits, and so are the gradients (a window
       * whose maximum is <= 0 passes none either way; otherwise the same first maximum wins). */
      mf_pool2d_opts po = {.kernel = {cfg->pool[b][0], cfg->pool[b][1]}};
      x = chain_step(mf, ctx, x, mf->max_pool2d(ctx, x, &po), &owned);
      x = mf->relu_(ctx, x); /* max-pool's backward reads its argmax, not its output */
    }
    if (cfg->order == ORDER_CONV_RELU_POOL_BN)
      x = chain_step(
          mf, ctx, x,
          mf->batchnorm(ctx, x, l->bn_g, l->bn_b, l->bn_m, l->bn_v, training, BN_MOMENTUM, BN_EPS),
          &owned);
    if (cfg->dropout > 0)
      x = chain_step(mf, ctx, x,
                     cfg->spatial_dropout ? mf->dropout2d(ctx, x, cfg->dropout, training)
                                          : mf->dropout(ctx, x, cfg->dropout, training),
                     &owned);
  }
  return x;
}

int dense_head_create(const mf_api *mf, dense_head *h, mf_params *store, const char *prefix,
                      int first_index, int64_t in, const int64_t *units, int n, int n_classes,
                      int batchnorm, float dropout, mf_rng *rng) {
  if (n > MAX_DENSE) {
    mf->set_error(MF_EINVAL, "parameter 'dense' has %d layers, at most %d", n, MAX_DENSE);
    return 0;
  }
  memset(h, 0, sizeof *h);
  h->n = n;
  h->dropout = dropout;
  int idx = first_index;
  char name[64];
  for (int i = 0; i <= n; i++) {
    int64_t out = i < n ? units[i] : n_classes;
    snprintf(name, sizeof name, "%s.%d", prefix, idx);
    if (!linear_create(mf, store, name, in, out, 1, rng, &h->w[i], &h->b[i])) return 0;
    idx += 2; /* linear, relu */
    if (i < n && batchnorm) {
      snprintf(name, sizeof name, "%s.%d", prefix, idx);
      if (!batchnorm_create(mf, store, name, out, &h->bn_g[i], &h->bn_b[i], &h->bn_m[i],
                            &h->bn_v[i]))
        return 0;
      idx++;
    }
    if (dropout > 0) idx++;
    in = out;
  }
  return 1;
}

mf_tensor *dense_head_forward(const mf_api *mf, const dense_head *h, mf_ctx *ctx, mf_tensor *x,
                              int training) {
  for (int i = 0; i < h->n; i++) {
    x = mf->relu_(ctx, mf->linear(ctx, x, h->w[i], h->b[i]));
    if (h->bn_g[i])
      x = mf->batchnorm(ctx, x, h->bn_g[i], h->bn_b[i], h->bn_m[i], h->bn_v[i], training,
                        BN_MOMENTUM, BN_EPS);
    x = mf->dropout(ctx, x, h->dropout, training);
  }
  return mf->linear(ctx, x, h->w[h->n], h->b[h->n]);
}
