/* cnn_transformer.c — the `cnn_transformer` model plugin: conv blocks pooling frequency only
 * -> linear projection to d_model -> sinusoidal positional encoding -> transformer encoder
 * layers (post-norm, like PyTorch's default) -> mean over time (or a class token) -> classes.
 *
 * Defaults are PyTorch peer model e: three [conv3x3 -> batchnorm -> ReLU] blocks with
 * (2, 1) max-pools (time resolution kept), 32/64/128 filters, d_model 128, 2 encoder layers
 * of 4 heads with feed-forward 256 and dropout 0.1. Names follow nn.TransformerEncoder:
 * "encoder.layers.0.self_attn.in_proj_weight", "encoder.layers.0.linear1.weight", ...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"

#define MAX_ENC_LAYERS 12

static const mf_api *mf;

typedef struct enc_layer {
  mf_tensor *in_w, *in_b, *out_w, *out_b;
  mf_tensor *l1_w, *l1_b, *l2_w, *l2_b;
  mf_tensor *n1_g, *n1_b, *n2_g, *n2_b;
} enc_layer;

typedef struct cnn_tf {
  conv_stack cs;
  mf_tensor *proj_w, *proj_b, *cls, *fc_w, *fc_b;
  int layers, heads, positional;
  float dropout;
  enc_layer enc[MAX_ENC_LAYERS];
} cnn_tf;

static const mf_param_spec params[] = {
    CONV_STACK_PARAMS("{32, 64, 128}", "1", "{2, 1}"),
    {"conv_dropout", MF_PT_FLOAT, "0", 0, 0.95, NULL, "dropout after each conv block (0: none)"},
    {"d_model", MF_PT_INT, "128", 2, 8192, NULL, "transformer width (even)"},
    {"heads", MF_PT_INT, "4", 1, 64, NULL, "attention heads (must divide d_model)"},
    {"layers", MF_PT_INT, "2", 1, MAX_ENC_LAYERS, NULL, "encoder layers"},
    {"ff", MF_PT_INT, "256", 1, 65536, NULL, "feed-forward width of each encoder layer"},
    {"dropout", MF_PT_FLOAT, "0.1", 0, 0.95, NULL, "dropout inside the encoder layers"},
    {"pooling", MF_PT_STRING, "mean", 0, -1, "mean|cls", "mean over time, or a learned class token"},
    {"positional", MF_PT_BOOL, "true", 0, -1, NULL, "add the sinusoidal positional encoding"},
    {0}};

static int enc_create(enc_layer *e, mf_params *store, int i, int64_t d, int64_t ff, mf_rng *rng) {
  char n[96];
#define P(field, suffix, shape)                                                   \
  snprintf(n, sizeof n, "encoder.layers.%d.%s", i, suffix);                       \
  if (!(e->field = mf->param(store, n, shape))) return 0;
  P(in_w, "self_attn.in_proj_weight", MF_SHAPE(3 * d, d));
  P(in_b, "self_attn.in_proj_bias", MF_SHAPE(3 * d));
  P(out_w, "self_attn.out_proj.weight", MF_SHAPE(d, d));
  P(out_b, "self_attn.out_proj.bias", MF_SHAPE(d));
  P(n1_g, "norm1.weight", MF_SHAPE(d));
  P(n1_b, "norm1.bias", MF_SHAPE(d));
  P(n2_g, "norm2.weight", MF_SHAPE(d));
  P(n2_b, "norm2.bias", MF_SHAPE(d));
#undef P
  /* nn.MultiheadAttention's own init: xavier in-projection, zero biases, the out-projection
   * keeps Linear's default weight init but a zero bias. */
  mf->init_xavier_uniform(e->in_w, rng, 1.0);
  mf->init_linear_default(e->out_w, NULL, rng);
  mf->init_constant(e->n1_g, 1.0f);
  mf->init_constant(e->n2_g, 1.0f);
  snprintf(n, sizeof n, "encoder.layers.%d.linear1", i);
  if (!linear_create(mf, store, n, d, ff, 1, rng, &e->l1_w, &e->l1_b)) return 0;
  snprintf(n, sizeof n, "encoder.layers.%d.linear2", i);
  if (!linear_create(mf, store, n, ff, d, 1, rng, &e->l2_w, &e->l2_b)) return 0;
  return 1;
}

static void *create(const mf_values *v, const mf_model_io *io, mf_params *store, mf_rng *rng) {
  cnn_tf *m = calloc(1, sizeof *m);
  int64_t c, h, w;
  if (!image_dims(mf, io, &c, &h, &w) || !conv_stack_cfg_read(mf, v, "conv_dropout", &m->cs.cfg) ||
      !conv_stack_create(mf, &m->cs, "features", store, c, h, w, rng))
    goto fail;
  int64_t d = mf->value_int(v, "d_model"), ff = mf->value_int(v, "ff");
  m->heads = (int)mf->value_int(v, "heads");
  m->layers = (int)mf->value_int(v, "layers");
  m->dropout = (float)mf->value_float(v, "dropout");
  m->positional = mf->value_bool(v, "positional");
  if (d % m->heads != 0 || d % 2 != 0) {
    mf->set_error(MF_EINVAL, "d_model (%lld) must be even and divisible by heads (%d)",
                  (long long)d, m->heads);
    goto fail;
  }
  if (!linear_create(mf, store, "proj", m->cs.out_c * m->cs.out_h, d, 1, rng, &m->proj_w, &m->proj_b))
    goto fail;
  if (!strcmp(mf->value_string(v, "pooling"), "cls")) {
    if (!(m->cls = mf->param(store, "cls_token", MF_SHAPE(1, 1, d)))) goto fail;
    mf->init_normal(m->cls, rng, 0.0f, 0.02f);
  }
  for (int i = 0; i < m->layers; i++)
    if (!enc_create(&m->enc[i], store, i, d, ff, rng)) goto fail;
  if (!linear_create(mf, store, "fc", d, io->n_classes, 1, rng, &m->fc_w, &m->fc_b)) goto fail;
  return m;
fail:
  free(m);
  return NULL;
}

static mf_tensor *encoder_layer(const cnn_tf *m, const enc_layer *e, mf_ctx *ctx, mf_tensor *x,
                                int training) {
  mf_tensor *a = mf->self_attention(ctx, x, e->in_w, e->in_b, e->out_w, e->out_b, m->heads,
                                    m->dropout, training);
  x = mf->layernorm(ctx, mf->add(ctx, x, mf->dropout(ctx, a, m->dropout, training)), e->n1_g,
                    e->n1_b, 1e-5f);
  mf_tensor *f = mf->relu_(ctx, mf->linear(ctx, x, e->l1_w, e->l1_b));
  f = mf->linear(ctx, mf->dropout(ctx, f, m->dropout, training), e->l2_w, e->l2_b);
  return mf->layernorm(ctx, mf->add(ctx, x, mf->dropout(ctx, f, m->dropout, training)), e->n2_g,
                       e->n2_b, 1e-5f);
}

static mf_tensor *forward(void *state, mf_ctx *ctx, mf_tensor *x, int training) {
  cnn_tf *m = state;
  x = conv_stack_forward(mf, &m->cs, ctx, as_image(mf, ctx, x), training);
  int64_t n = x->shape[0], c = x->shape[1], f = x->shape[2], t = x->shape[3];
  static const int to_time_major[4] = {0, 3, 1, 2}; /* [N, C, F, T] -> [N, T, C, F] */
  x = mf->reshape(ctx, mf->permute(ctx, x, to_time_major), MF_SHAPE(n, t, c * f));
  x = mf->linear(ctx, x, m->proj_w, m->proj_b);
  if (m->positional) x = mf->positional_encoding(ctx, x);
  if (m->cls) {
    int64_t d = m->cls->shape[2];
    mf_tensor *tok = mf->add(ctx, mf->zeros(ctx, MF_SHAPE(n, 1, d)), m->cls);
    mf_tensor *parts[2] = {tok, x};
    x = mf->concat(ctx, parts, 2, 1);
  }
  for (int i = 0; i < m->layers; i++) x = encoder_layer(m, &m->enc[i], ctx, x, training);
  if (m->cls) {
    x = mf->reshape(ctx, mf->slice(ctx, x, 1, 0, 1), MF_SHAPE(n, x->shape[2]));
  } else {
    static const int time_axis[1] = {1};
    x = mf->mean(ctx, x, time_axis, 1, 0);
  }
  return mf->linear(ctx, x, m->fc_w, m->fc_b);
}

static void destroy(void *state) { free(state); }

static const mf_model_vtable vtable = {create, forward, destroy};

static mf_status init(const mf_registrar *reg) {
  mf = reg->api;
  return reg->add_model(
      reg,
      &(mf_component_desc){"cnn_transformer",
                           "conv blocks + transformer encoder over time (mean or class token)",
                           params},
      &vtable);
}

MF_PLUGIN_ENTRY(init)
