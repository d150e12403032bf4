/* Registers a component, then fails: the registration must be rolled back. */
#include "melforge/plugin.h"
static void *create(const mf_values *v, const mf_model_io *io, mf_params *s, mf_rng *r) {
  (void)v, (void)io, (void)s, (void)r;
  return 0;
}
static mf_tensor *forward(void *st, mf_ctx *ctx, mf_tensor *x, int t) {
  (void)st, (void)ctx, (void)t;
  return x;
}
static void destroy(void *st) { (void)st; }
static const mf_model_vtable vt = {create, forward, destroy};
static mf_status init(const mf_registrar *reg) {
  reg->add_model(reg, &(mf_component_desc){"half_registered", "registered before failing", 0}, &vt);
  return reg->api->set_error(MF_EIO, "init_fails: cannot open its lookup table /nonexistent/table.bin");
}
MF_PLUGIN_ENTRY(init)
