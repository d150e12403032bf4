/* crnn.c — the `crnn` model plugin: conv blocks -> sequence over time -> bidirectional LSTM
 * (or GRU) -> additive attention pooling -> dense -> classes.
 *
 * Defaults are the CNN-BiLSTM-attention model (PyTorch peer model d): three blocks of
 * [conv3x3 -> batchnorm -> ReLU] + 2x2 max-pool (32/64/128 filters), the feature map
 * [C, F, T] read as T steps of C*F values, one bidirectional LSTM layer of 128 units per
 * direction, Bahdanau attention pooling (attention size 128), dense 64 with dropout 0.3.
 * Names follow PyTorch: "lstm.weight_ih_l0", "lstm.weight_ih_l0_reverse", "att.w.weight",
 * "att.v.weight", "head.0.weight", ...
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"

#define MAX_RNN_LAYERS 4

static const mf_api *mf;

typedef struct rnn_dir {
  mf_tensor *w_ih, *w_hh, *b_ih, *b_hh;
} rnn_dir;

typedef struct crnn {
  conv_stack cs;
  int gru, layers, bidir;
  rnn_dir rnn[MAX_RNN_LAYERS][2];
  int pooling; /* 0 attention, 1 mean, 2 last */
  mf_tensor *att_w, *att_b, *att_v;
  dense_head head;
} crnn;

static const mf_param_spec params[] = {
    CONV_STACK_PARAMS("{32, 64, 128}", "1", "{2, 2}"),
    {"conv_dropout", MF_PT_FLOAT, "0", 0, 0.95, NULL, "dropout after each conv block (0: none)"},
    {"rnn", MF_PT_STRING, "lstm", 0, -1, "lstm|gru", "recurrent layer type"},
    {"hidden", MF_PT_INT, "128", 1, 8192, NULL, "recurrent units per direction"},
    {"layers", MF_PT_INT, "1", 1, MAX_RNN_LAYERS, NULL, "stacked recurrent layers"},
    {"bidirectional", MF_PT_BOOL, "true", 0, -1, NULL, "run a second recurrent layer backwards in time"},
    {"pooling", MF_PT_STRING, "attention", 0, -1, "attention|mean|last",
     "how the sequence becomes one vector: additive attention, mean over time, last step"},
    {"attention_dim", MF_PT_INT, "128", 1, 8192, NULL, "size of the additive attention layer"},
    {"dense", MF_PT_INT_LIST, "{64}", 1, 1 << 20, NULL, "units of the hidden dense layers"},
    {"head_dropout", MF_PT_FLOAT, "0.3", 0, 0.95, NULL, "dropout after each dense layer"},
    {0}};

static int rnn_create(crnn *m, mf_params *store, int64_t in, int64_t hidden, mf_rng *rng) {
  const char *base = m->gru ? "gru" : "lstm";
  int64_t g = (m->gru ? 3 : 4) * hidden;
  float bound = (float)(1.0 / sqrt((double)hidden)); /* PyTorch: every weight U(-1/sqrt(H), .) */
  char n[96];
  for (int l = 0; l < m->layers; l++) {
    for (int d = 0; d < (m->bidir ? 2 : 1); d++) {
      const char *sfx = d ? "_reverse" : "";
      rnn_dir *r = &m->rnn[l][d];
      snprintf(n, sizeof n, "%s.weight_ih_l%d%s", base, l, sfx);
      r->w_ih = mf->param(store, n, MF_SHAPE(g, in));
      snprintf(n, sizeof n, "%s.weight_hh_l%d%s", base, l, sfx);
      r->w_hh = mf->param(store, n, MF_SHAPE(g, hidden));
      snprintf(n, sizeof n, "%s.bias_ih_l%d%s", base, l, sfx);
      r->b_ih = mf->param(store, n, MF_SHAPE(g));
      snprintf(n, sizeof n, "%s.bias_hh_l%d%s", base, l, sfx);
      r->b_hh = mf->param(store, n, MF_SHAPE(g));
      if (!r->w_ih || !r->w_hh || !r->b_ih || !r->b_hh) return 0;
      mf_tensor *all[4] = {r->w_ih, r->w_hh, r->b_ih, r->b_hh};
      for (int k = 0; k < 4; k++) mf->init_uniform(all[k], rng, -bound, bound);
    }
    in = hidden * (m->bidir ? 2 : 1);
  }
  return 1;
}

static void *create(const mf_values *v, const mf_model_io *io, mf_params *store, mf_rng *rng) {
  crnn *m = calloc(1, sizeof *m);
  int64_t c, h, w;
  if (!image_dims(mf, io, &c, &h, &w) || !conv_stack_cfg_read(mf, v, "conv_dropout", &m->cs.cfg) ||
      !conv_stack_create(mf, &m->cs, "features", store, c, h, w, rng))
    goto fail;
  m->gru = !strcmp(mf->value_string(v, "rnn"), "gru");
  m->layers = (int)mf->value_int(v, "layers");
  m->bidir = mf->value_bool(v, "bidirectional");
  int64_t hidden = mf->value_int(v, "hidden");
  /* Each time step of the feature map [C, F, T] is one vector of C * F values. */
  if (!rnn_create(m, store, m->cs.out_c * m->cs.out_h, hidden, rng)) goto fail;
  int64_t d = hidden * (m->bidir ? 2 : 1);
  const char *pool = mf->value_string(v, "pooling");
  m->pooling = !strcmp(pool, "mean") ? 1 : !strcmp(pool, "last") ? 2 : 0;
  if (m->pooling == 0) {
    int64_t a = mf->value_int(v, "attention_dim");
    mf_tensor *unused = NULL;
    if (!linear_create(mf, store, "att.w", d, a, 1, rng, &m->att_w, &m->att_b) ||
        !linear_create(mf, store, "att.v", a, 1, 0, rng, &m->att_v, &unused))
      goto fail;
  }
  const int64_t *dense;
  int nd = mf->value_ints(v, "dense", &dense);
  if (!dense_head_create(mf, &m->head, store, "head", 0, d, dense, nd, io->n_classes, 0,
                         (float)mf->value_float(v, "head_dropout"), rng))
    goto fail;
  return m;
fail:
  free(m);
  return NULL;
}

static mf_tensor *forward(void *state, mf_ctx *ctx, mf_tensor *x, int training) {
  crnn *m = state;
  x = conv_stack_forward(mf, &m->cs, ctx, as_image(mf, ctx, x), training);
  int64_t n = x->shape[0], c = x->shape[1], f = x->shape[2], t = x->shape[3];
  static const int to_time_major[4] = {0, 3, 1, 2}; /* [N, C, F, T] -> [N, T, C, F] */
  x = mf->reshape(ctx, mf->permute(ctx, x, to_time_major), MF_SHAPE(n, t, c * f));
  for (int l = 0; l < m->layers; l++) {
    mf_tensor *(*cell)(mf_ctx *, mf_tensor *, mf_tensor *, mf_tensor *, mf_tensor *, mf_tensor *,
                       int) = m->gru ? mf->gru : mf->lstm;
    const rnn_dir *r = m->rnn[l];
    mf_tensor *fwd = cell(ctx, x, r[0].w_ih, r[0].w_hh, r[0].b_ih, r[0].b_hh, 0);
    if (m->bidir) {
      mf_tensor *both[2] = {fwd, cell(ctx, x, r[1].w_ih, r[1].w_hh, r[1].b_ih, r[1].b_hh, 1)};
      x = mf->concat(ctx, both, 2, 2);
    } else {
      x = fwd;
    }
  }
  if (m->pooling == 0) {
    x = mf->additive_attention_pool(ctx, x, m->att_w, m->att_b, m->att_v);
  } else if (m->pooling == 1) {
    static const int time_axis[1] = {1};
    x = mf->mean(ctx, x, time_axis, 1, 0);
  } else {
    x = mf->reshape(ctx, mf->slice(ctx, x, 1, t - 1, t), MF_SHAPE(n, x->shape[2]));
  }
  return dense_head_forward(mf, &m->head, ctx, x, training);
}

static void destroy(void *state) { free(state); }

static const mf_model_vtable vtable = {create, forward, destroy};

static mf_status init(const mf_registrar *reg) {
  mf = reg->api;
  return reg->add_model(
      reg,
      &(mf_component_desc){"crnn", "conv blocks + bidirectional LSTM/GRU + attention pooling",
                           params},
      &vtable);
}

MF_PLUGIN_ENTRY(init)
