/* A model named DUP_NAME, shared by the duplicate-name plugins. */
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
