/* residual_mlp.c — an out-of-tree model plugin, built against an installed melforge SDK:
 *
 *     cc -O2 -fPIC -shared $(pkg-config --cflags melforge) -Wl,--no-undefined \
 *        -o residual_mlp.so residual_mlp.c -lm
 *     melforge plugins --plugin-path ./residual_mlp.so show residual_mlp
 *
 * The model: flatten -> dense (width) -> `blocks` x [x + dense(relu(layernorm(x)))] ->
 * classes. It shows the whole contract: a parameter schema the core validates, parameters
 * registered with the core (which owns init, optimizer state and checkpoints), a forward
 * pass built from core ops reached through the mf_api table, and train/eval mode.
 */
#include <stdio.h>
#include <stdlib.h>

#include <melforge/plugin.h>

#define MAX_BLOCKS 16

static const mf_api *mf;

typedef struct block {
  mf_tensor *ln_g, *ln_b, *w, *b;
} block;

typedef struct residual_mlp {
  mf_tensor *in_w, *in_b, *out_w, *out_b;
  block blk[MAX_BLOCKS];
  int nblocks;
  float dropout;
} residual_mlp;

static const mf_param_spec params[] = {
    {"width", MF_PT_INT, "128", 1, 65536, NULL, "units of every dense layer"},
    {"blocks", MF_PT_INT, "2", 0, MAX_BLOCKS, NULL, "residual blocks"},
    {"dropout", MF_PT_FLOAT, "0.1", 0, 0.9, NULL, "dropout inside each block"},
    {0}};

static mf_tensor *linear_param(mf_params *store, const char *name, int64_t in, int64_t out,
                               mf_tensor **bias, mf_rng *rng) {
  char n[64];
  snprintf(n, sizeof n, "%s.weight", name);
  mf_tensor *w = mf->param(store, n, MF_SHAPE(out, in));
  snprintf(n, sizeof n, "%s.bias", name);
  *bias = mf->param(store, n, MF_SHAPE(out));
  if (w && *bias) mf->init_linear_default(w, *bias, rng);
  return w && *bias ? w : NULL;
}

static void *create(const mf_values *v, const mf_model_io *io, mf_params *store, mf_rng *rng) {
  residual_mlp *m = calloc(1, sizeof *m);
  int64_t in = 1, width = mf->value_int(v, "width");
  for (int i = 0; i < io->input.ndim; i++) in *= io->input.d[i];
  m->nblocks = (int)mf->value_int(v, "blocks");
  m->dropout = (float)mf->value_float(v, "dropout");
  if (!(m->in_w = linear_param(store, "input", in, width, &m->in_b, rng))) goto fail;
  for (int i = 0; i < m->nblocks; i++) {
    char n[64];
    block *b = &m->blk[i];
    snprintf(n, sizeof n, "blocks.%d.norm.weight", i);
    b->ln_g = mf->param(store, n, MF_SHAPE(width));
    snprintf(n, sizeof n, "blocks.%d.norm.bias", i);
    b->ln_b = mf->param(store, n, MF_SHAPE(width));
    if (!b->ln_g || !b->ln_b) goto fail;
    mf->init_constant(b->ln_g, 1.0f);
    snprintf(n, sizeof n, "blocks.%d.dense", i);
    if (!(b->w = linear_param(store, n, width, width, &b->b, rng))) goto fail;
  }
  if (!(m->out_w = linear_param(store, "output", width, io->n_classes, &m->out_b, rng))) goto fail;
  return m;
fail:
  free(m);
  return NULL;
}

static mf_tensor *forward(void *state, mf_ctx *ctx, mf_tensor *x, int training) {
  residual_mlp *m = state;
  x = mf->linear(ctx, mf->flatten(ctx, x), m->in_w, m->in_b);
  for (int i = 0; i < m->nblocks; i++) {
    const block *b = &m->blk[i];
    mf_tensor *h = mf->relu(ctx, mf->layernorm(ctx, x, b->ln_g, b->ln_b, 1e-5f));
    h = mf->dropout(ctx, mf->linear(ctx, h, b->w, b->b), m->dropout, training);
    x = mf->add(ctx, x, h);
  }
  return mf->linear(ctx, x, m->out_w, m->out_b);
}

static void destroy(void *state) { free(state); }

static const mf_model_vtable vtable = {create, forward, destroy};

static mf_status init(const mf_registrar *reg) {
  mf = reg->api;
  return reg->add_model(
      reg, &(mf_component_desc){"residual_mlp", "example: MLP with pre-norm residual blocks", params},
      &vtable);
}

MF_PLUGIN_ENTRY(init)
