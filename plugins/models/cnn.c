/* cnn.c — the `cnn` model plugin: conv blocks -> global average pooling (or flatten) ->
 * dense head -> classes.
 *
 * Defaults are the mel-spectrogram CNN (PyTorch peer model c): three blocks of two
 * [conv3x3 'same' -> batchnorm -> ReLU], 2x2 max-pool and dropout 0.25 each, filters
 * 32/64/128, global average pooling, dense 128 with dropout 0.5. The small MFCC CNN of the
 * Keras notebooks (peer model b) is the same plugin with
 *   filters={32, 48}, convs_per_block=1, order="conv-relu-pool-bn", conv_bias=true,
 *   dropout=0.35, spatial_dropout=true, head="flatten", dense={64}, dense_batchnorm=true,
 *   head_dropout=0.7
 * and a 4-block spectrogram CNN is filters={16, 32, 64, 128}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"

#define MAX_DENSE 8

static const mf_api *mf;

typedef struct cnn {
  conv_stack cs;
  int flatten_head;
  int ndense;
  mf_tensor *w[MAX_DENSE + 1], *b[MAX_DENSE + 1];
  mf_tensor *bn_g[MAX_DENSE], *bn_b[MAX_DENSE], *bn_m[MAX_DENSE], *bn_v[MAX_DENSE];
  float head_dropout;
} cnn;

static const mf_param_spec params[] = {
    CONV_STACK_PARAMS("{32, 64, 128}", "2", "{2, 2}"),
    {"dropout", MF_PT_FLOAT, "0.25", 0, 0.95, NULL, "dropout after each conv block (0: none)"},
    {"head", MF_PT_STRING, "gap", 0, -1, "gap|flatten",
     "global average pooling over the feature map, or flatten it"},
    {"dense", MF_PT_INT_LIST, "{128}", 1, 1 << 20, NULL, "units of the hidden dense layers ({} for none)"},
    {"dense_batchnorm", MF_PT_BOOL, "false", 0, -1, NULL, "batchnorm after each dense ReLU"},
    {"head_dropout", MF_PT_FLOAT, "0.5", 0, 0.95, NULL, "dropout after each dense layer"},
    {0}};

static void *create(const mf_values *v, const mf_model_io *io, mf_params *store, mf_rng *rng) {
  cnn *m = calloc(1, sizeof *m);
  int64_t c, h, w;
  if (!image_dims(mf, io, &c, &h, &w) || !conv_stack_cfg_read(mf, v, "dropout", &m->cs.cfg) ||
      !conv_stack_create(mf, &m->cs, "features", store, c, h, w, rng))
    goto fail;
  m->flatten_head = !strcmp(mf->value_string(v, "head"), "flatten");
  const int64_t *d;
  m->ndense = mf->value_ints(v, "dense", &d);
  if (m->ndense > MAX_DENSE) {
    mf->set_error(MF_EINVAL, "parameter 'dense' has %d layers, at most %d", m->ndense, MAX_DENSE);
    goto fail;
  }
  int bn = mf->value_bool(v, "dense_batchnorm");
  m->head_dropout = (float)mf->value_float(v, "head_dropout");
  int64_t in = m->flatten_head ? m->cs.out_c * m->cs.out_h * m->cs.out_w : m->cs.out_c;
  int idx = m->flatten_head ? 1 : 2; /* head.0 Flatten, or head.0 pool + head.1 Flatten */
  char name[64];
  for (int i = 0; i <= m->ndense; i++) {
    int64_t out = i < m->ndense ? d[i] : io->n_classes;
    snprintf(name, sizeof name, "head.%d", idx);
    if (!linear_create(mf, store, name, in, out, 1, rng, &m->w[i], &m->b[i])) goto fail;
    idx += 2; /* linear, relu */
    if (i < m->ndense && bn) {
      snprintf(name, sizeof name, "head.%d", idx);
      if (!batchnorm_create(mf, store, name, out, &m->bn_g[i], &m->bn_b[i], &m->bn_m[i], &m->bn_v[i]))
        goto fail;
      idx++;
    }
    if (m->head_dropout > 0) idx++;
    in = out;
  }
  return m;
fail:
  free(m);
  return NULL;
}

static mf_tensor *forward(void *state, mf_ctx *ctx, mf_tensor *x, int training) {
  cnn *m = state;
  x = conv_stack_forward(mf, &m->cs, ctx, as_image(mf, ctx, x), training);
  x = m->flatten_head ? mf->flatten(ctx, x) : mf->global_avg_pool2d(ctx, x);
  for (int i = 0; i < m->ndense; i++) {
    x = mf->relu_(ctx, mf->linear(ctx, x, m->w[i], m->b[i]));
    if (m->bn_g[i])
      x = mf->batchnorm(ctx, x, m->bn_g[i], m->bn_b[i], m->bn_m[i], m->bn_v[i], training,
                        BN_MOMENTUM, BN_EPS);
    x = mf->dropout(ctx, x, m->head_dropout, training);
  }
  return mf->linear(ctx, x, m->w[m->ndense], m->b[m->ndense]);
}

static void destroy(void *state) { free(state); }

static const mf_model_vtable vtable = {create, forward, destroy};

static mf_status init(const mf_registrar *reg) {
  mf = reg->api;
  return reg->add_model(
      reg,
      &(mf_component_desc){"cnn", "convolutional blocks + dense head (mel spectrograms, MFCC)",
                           params},
      &vtable);
}

MF_PLUGIN_ENTRY(init)
