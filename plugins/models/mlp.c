/* mlp.c — the `mlp` model plugin: flatten -> [dense -> activation -> dropout] x n -> classes.
 *
 * Defaults reproduce the GTZAN MFCC-segment MLP (Keras notebook; PyTorch peer model a):
 * Dense 512 ReLU Dropout 0.3 -> 256 -> 64 -> classes. Parameter names follow the equivalent
 * nn.Sequential(Flatten, Linear, ReLU, Dropout, ...): "net.1.weight", "net.4.weight", ...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"

#define MAX_HIDDEN 16

static const mf_api *mf;

typedef struct mlp {
  int nhidden;
  mf_tensor *w[MAX_HIDDEN + 1], *b[MAX_HIDDEN + 1];
  float dropout[MAX_HIDDEN];
  int act; /* 0 relu, 1 gelu, 2 tanh */
} mlp;

static const mf_param_spec params[] = {
    {"hidden", MF_PT_INT_LIST, "{512, 256, 64}", 1, 1 << 20, NULL, "units of each hidden layer"},
    {"dropout", MF_PT_FLOAT_LIST, "{0.3}", 0, 0.95, NULL,
     "dropout after each hidden layer: one value for all, or one per layer"},
    {"activation", MF_PT_STRING, "relu", 0, -1, "relu|gelu|tanh", "hidden activation"},
    {0}};

static void *create(const mf_values *v, const mf_model_io *io, mf_params *store, mf_rng *rng) {
  mlp *m = calloc(1, sizeof *m);
  const int64_t *h;
  const double *d;
  int nh = mf->value_ints(v, "hidden", &h);
  int nd = mf->value_floats(v, "dropout", &d);
  if (nh > MAX_HIDDEN) {
    mf->set_error(MF_EINVAL, "parameter 'hidden' has %d layers, at most %d", nh, MAX_HIDDEN);
    goto fail;
  }
  if (nd != 1 && nd != nh) {
    mf->set_error(MF_EINVAL,
                  "parameter 'dropout' needs one value or one per hidden layer (%d), got %d", nh,
                  nd);
    goto fail;
  }
  m->nhidden = nh;
  const char *act = mf->value_string(v, "activation");
  m->act = !strcmp(act, "gelu") ? 1 : !strcmp(act, "tanh") ? 2 : 0;
  int64_t in = 1;
  for (int i = 0; i < io->input.ndim; i++) in *= io->input.d[i];
  int idx = 1; /* net.0 is the Flatten */
  char name[64];
  for (int i = 0; i <= nh; i++) {
    int64_t out = i < nh ? h[i] : io->n_classes;
    snprintf(name, sizeof name, "net.%d", idx);
    if (!linear_create(mf, store, name, in, out, 1, rng, &m->w[i], &m->b[i])) goto fail;
    if (i < nh) {
      m->dropout[i] = (float)(nd == 1 ? d[0] : d[i]);
      idx += m->dropout[i] > 0 ? 3 : 2; /* linear, activation[, dropout] */
    }
    in = out;
  }
  return m;
fail:
  free(m);
  return NULL;
}

static mf_tensor *forward(void *state, mf_ctx *ctx, mf_tensor *x, int training) {
  mlp *m = state;
  x = mf->flatten(ctx, x);
  for (int i = 0; i < m->nhidden; i++) {
    x = mf->linear(ctx, x, m->w[i], m->b[i]);
    x = m->act == 1 ? mf->gelu(ctx, x) : m->act == 2 ? mf->tanh(ctx, x) : mf->relu_(ctx, x);
    x = mf->dropout(ctx, x, m->dropout[i], training);
  }
  return mf->linear(ctx, x, m->w[m->nhidden], m->b[m->nhidden]);
}

static void destroy(void *state) { free(state); }

static const mf_model_vtable vtable = {create, forward, destroy};

static mf_status init(const mf_registrar *reg) {
  mf = reg->api;
  return reg->add_model(
      reg,
      &(mf_component_desc){"mlp", "multilayer perceptron on flattened features (MFCC segments)",
                           params},
      &vtable);
}

MF_PLUGIN_ENTRY(init)
