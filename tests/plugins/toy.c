/* A well-formed test plugin: model "toy_linear" (a linear layer) with one parameter of
 * every type, for the schema-validation tests. */
#include <stdlib.h>
#include "melforge/plugin.h"

static const mf_api *mf;
typedef struct toy { mf_tensor *w, *b; } toy;

static const mf_param_spec params[] = {
    {"units", MF_PT_INT, "8", 1, 4096, 0, "hidden units (unused by the linear toy)"},
    {"dropout", MF_PT_FLOAT, "0.25", 0, 0.95, 0, "dropout rate"},
    {"use_bias", MF_PT_BOOL, "true", 0, -1, 0, "add a bias"},
    {"activation", MF_PT_STRING, "relu", 0, -1, "relu|gelu|tanh", "activation"},
    {"filters", MF_PT_INT_LIST, "{32, 64}", 1, 512, 0, "filters per block"},
    {"rates", MF_PT_FLOAT_LIST, "{0.1, 0.2}", 0, 1, 0, "rates"},
    {0}};

static void *create(const mf_values *v, const mf_model_io *io, mf_params *store, mf_rng *rng) {
  toy *t = calloc(1, sizeof *t);
  int64_t in = 1;
  for (int i = 0; i < io->input.ndim; i++) in *= io->input.d[i];
  t->w = mf->param(store, "fc.weight", MF_SHAPE(io->n_classes, in));
  t->b = mf->value_bool(v, "use_bias") ? mf->param(store, "fc.bias", MF_SHAPE(io->n_classes)) : NULL;
  mf->init_linear_default(t->w, t->b, rng);
  return t;
}
static mf_tensor *forward(void *st, mf_ctx *ctx, mf_tensor *x, int training) {
  toy *t = st;
  (void)training;
  return mf->linear(ctx, mf->flatten(ctx, x), t->w, t->b);
}
static void destroy(void *st) { free(st); }
static const mf_model_vtable vt = {create, forward, destroy};
static mf_status init(const mf_registrar *reg) {
  mf = reg->api;
  return reg->add_model(reg, &(mf_component_desc){"toy_linear", "a linear layer for tests", params}, &vt);
}
MF_PLUGIN_ENTRY(init)
