/* train_step.c — the C API from a plain C program: load plugins, build a model by name,
 * train it a few steps with Adam on random data, print the loss.
 *
 *     cc -O2 train_step.c $(pkg-config --cflags --libs melforge) -o train_step
 *     ./train_step residual_mlp --plugin-path ./plugin/residual_mlp.so --set width=64
 *
 * usage: train_step MODEL [--plugin-path P] [--set key=value ...] [--steps N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <melforge/component.h>
#include <melforge/melforge.h>

static void report(const char *file, const char *message, void *user) {
  (void)file, (void)user;
  fprintf(stderr, "warning: %s\n", message);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL [--plugin-path P] [--set key=value ...] [--steps N]\n", argv[0]);
    return 2;
  }
  const char *plugin_path = NULL;
  int steps = 1;
  for (int i = 2; i + 1 < argc; i++)
    if (!strcmp(argv[i], "--plugin-path")) plugin_path = argv[++i];
    else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[++i]);
  mf_runtime_init();
  mf_plugins_load_search_path(plugin_path, report, NULL);
  const mf_component *c = mf_component_find(MF_KIND_MODEL, argv[1]);
  if (!c) {
    fprintf(stderr, "error: %s\n", mf_error());
    return 1;
  }
  mf_values *v;
  mf_component_values(c, &v);
  for (int i = 2; i + 1 < argc; i++)
    if (!strcmp(argv[i], "--set") && mf_values_set_assignment(v, argv[++i]) != MF_OK) {
      fprintf(stderr, "error: %s\n", mf_error());
      return 2;
    }

  enum { N = 8, T = 20, F = 13, CLASSES = 4 };
  mf_model_io io = {MF_SHAPE(T, F), CLASSES};
  mf_rng init = mf_rng_stream(1, MF_RNG_INIT), data = mf_rng_stream(1, MF_RNG_USER);
  mf_model *m;
  if (mf_model_new(c, v, &io, &init, &m) != MF_OK) {
    fprintf(stderr, "error: %s\n", mf_error());
    return 1;
  }
  float x[N * T * F];
  int32_t y[N];
  mf_rng_fill_normal(&data, x, N * T * F, 0, 1);
  for (int i = 0; i < N; i++) y[i] = i % CLASSES;

  mf_ctx *ctx = mf_ctx_new();
  mf_optim_config cfg = mf_optim_defaults(MF_OPTIM_ADAM);
  mf_optim *opt = mf_optim_new(mf_model_params(m), &cfg);
  printf("%s: %lld parameters\n", argv[1], (long long)mf_params_count_trainable(mf_model_params(m)));
  for (int s = 0; s < steps; s++) {
    mf_ctx_reset(ctx);
    mf_params_zero_grad(mf_model_params(m));
    mf_tensor *xb = mf_ctx_tensor_from(ctx, MF_SHAPE(N, T, F), x);
    mf_tensor *loss = mf_cross_entropy(ctx, mf_model_forward(m, ctx, xb, 1), y, 0.0f);
    if (mf_backward(ctx, loss) != MF_OK) {
      fprintf(stderr, "error: %s\n", mf_error());
      return 1;
    }
    mf_optim_step(opt);
    printf("step %d: loss %.6f\n", s + 1, loss->data[0]);
  }
  mf_optim_free(opt);
  mf_ctx_free(ctx);
  mf_model_free(m);
  mf_values_free(v);
  mf_plugins_unload_all();
  return 0;
}
