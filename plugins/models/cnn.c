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

static const mf_api *mf;

typedef struct cnn {
  conv_stack cs;
  int flatten_head;
  dense_head head;
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
  int nd = mf->value_ints(v, "dense", &d);
  int64_t in = m->flatten_head ? m->cs.out_c * m->cs.out_h * m->cs.out_w : m->cs.out_c;
  /* head.0 Flatten, or head.0 AdaptiveAvgPool2d + head.1 Flatten */
  if (!dense_head_create(mf, &m->head, store, "head", m->flatten_head ? 1 : 2, in, d, nd,
                         io->n_classes, mf->value_bool(v, "dense_batchnorm"),
                         (float)mf->value_float(v, "head_dropout"), rng))
    goto fail;
  return m;
fail:
  free(m);
  return NULL;
}

static mf_tensor *forward(void *state, mf_ctx *ctx, mf_tensor *x, int training) {
  cnn *m = state;
  x = conv_stack_forward(mf, &m->cs, ctx, as_image(mf, ctx, x), training);
  x = m->flatten_head ? mf->flatten(ctx, x) : mf->global_avg_pool2d(ctx, x);
  return dense_head_forward(mf, &m->head, ctx, x, training);
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
