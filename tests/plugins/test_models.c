/* The model plugins: parameter counts equal PyTorch's for the benchmark architectures, each
 * model trains on a small synthetic problem, and parameters are validated. */
#define _GNU_SOURCE /* dladdr */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "melforge/bench.h"
#include "melforge/component.h"
#include "melforge/melforge.h"
#include "mftest.h"

/* Counts every heap allocation of the process (glibc's entry points wrapped) so the
 * steady-state training step of each model can be shown to allocate nothing: core, plugins,
 * OpenMP. OpenBLAS is the one exception we cannot change: its small-matrix sgemm kernels
 * (used when M*N*K is small) malloc a scratch buffer per call. Those calls are counted
 * apart, by the caller's shared object, and reported. Sanitizer builds replace malloc. */
#if !defined(__SANITIZE_ADDRESS__)
#define COUNT_MALLOCS 1
#include <cblas.h>
#include <dlfcn.h>
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
static volatile long g_allocs, g_blas_allocs;
static void *g_blas_base;
static void count(void *caller) {
  Dl_info info;
  if (g_blas_base && dladdr(caller, &info) && info.dli_fbase == g_blas_base)
    __atomic_add_fetch(&g_blas_allocs, 1, __ATOMIC_RELAXED);
  else
    __atomic_add_fetch(&g_allocs, 1, __ATOMIC_RELAXED);
}
void *malloc(size_t n) {
  count(__builtin_return_address(0));
  return __libc_malloc(n);
}
void *calloc(size_t n, size_t s) {
  count(__builtin_return_address(0));
  return __libc_calloc(n, s);
}
void *realloc(void *p, size_t n) {
  count(__builtin_return_address(0));
  return __libc_realloc(p, n);
}
int posix_memalign(void **p, size_t a, size_t n) {
  count(__builtin_return_address(0));
  *p = __libc_memalign(a, n);
  return *p ? 0 : 12;
}
#endif

static long g_allocs_now(void) {
#ifdef COUNT_MALLOCS
  return g_allocs;
#else
  return 0;
#endif
}

static long g_blas_now(void) {
#ifdef COUNT_MALLOCS
  return g_blas_allocs;
#else
  return 0;
#endif
}

static const mf_component *model(const char *name) {
  if (mf_component_count() == 0) mf_plugins_load_path(BUILD_PLUGIN_DIR, NULL, NULL);
  const mf_component *c = mf_component_find(MF_KIND_MODEL, name);
  MF_CHECK(c, "%s", mf_error());
  return c;
}

/* Builds `name` with "k=v" overrides; NULL (error set) when creation fails. */
static mf_model *build(const char *name, mf_shape input, int classes, const char *const *sets) {
  const mf_component *c = model(name);
  mf_values *v;
  MF_CHECK(mf_component_values(c, &v) == MF_OK, "%s", mf_error());
  for (; sets && *sets; sets++)
    MF_CHECK(mf_values_set_assignment(v, *sets) == MF_OK, "%s", mf_error());
  mf_model_io io = {input, classes};
  mf_rng init = mf_rng_stream(0, MF_RNG_INIT);
  mf_model *m = NULL;
  mf_model_new(c, v, &io, &init, &m);
  mf_values_free(v);
  return m;
}

TEST(test_parameter_counts_equal_pytorch_benchmark_models) {
  /* The five architectures of bench/torch/bench_models.py, as `melforge bench` builds them
   * (one table: core/src/bench.c): 1,014,218 / 310,106 / 304,682 / 2,373,290 / 621,418. */
  model("mlp");
  EXPECT_EQ_INT(mf_bench_arch_count(), 5);
  for (int i = 0; i < mf_bench_arch_count(); i++) {
    const mf_bench_arch *a = mf_bench_arch_at(i);
    mf_model *m = NULL;
    EXPECT(mf_bench_model_new(a, 10, &m) == MF_OK, "model %s: %s", a->key, mf_error());
    if (!m) continue;
    EXPECT(mf_params_count_trainable(mf_model_params(m)) == a->torch_params,
           "model %s (%s): %lld parameters, PyTorch has %lld", a->key, a->model,
           (long long)mf_params_count_trainable(mf_model_params(m)), (long long)a->torch_params);
    mf_model_free(m);
  }
  static const int64_t pytorch[5] = {1014218, 310106, 304682, 2373290, 621418};
  for (int i = 0; i < 5 && i < mf_bench_arch_count(); i++)
    EXPECT_EQ_INT(mf_bench_arch_at(i)->torch_params, pytorch[i]);
}

TEST(test_parameter_names_follow_pytorch) {
  mf_model *m = build("crnn", MF_SHAPE(1, 128, 130), 10, NULL);
  mf_params *ps = mf_model_params(m);
  static const char *const names[] = {
      "features.0.weight", "features.1.running_var", "lstm.weight_ih_l0", "lstm.bias_hh_l0_reverse",
      "att.w.weight",      "att.v.weight",           "head.0.weight",     "head.3.bias"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    EXPECT(mf_params_find(ps, names[i]) != NULL, "crnn has no parameter %s", names[i]);
  mf_model_free(m);
  m = build("cnn_transformer", MF_SHAPE(1, 128, 130), 10, NULL);
  EXPECT(mf_params_find(mf_model_params(m), "encoder.layers.1.self_attn.in_proj_weight") != NULL,
         "cnn_transformer lacks encoder.layers.1.self_attn.in_proj_weight");
  mf_model_free(m);
}

/* Two-class synthetic images: class 0 has energy in the upper half of the frequency axis,
 * class 1 in the lower half, plus noise. */
static void make_batch(float *x, int32_t *y, int n, int h, int w, uint64_t seed) {
  mf_rng r = mf_rng_stream(seed, MF_RNG_USER);
  for (int i = 0; i < n; i++) {
    y[i] = i % 2;
    for (int f = 0; f < h; f++)
      for (int t = 0; t < w; t++) {
        int hot = (y[i] == 0) == (f < h / 2);
        x[(i * h + f) * w + t] =
            (float)((hot ? 1.0 : 0.0) * (0.5 + 0.5 * sin(0.7 * t + f)) + 0.3 * mf_rng_normal(&r));
      }
  }
}

static void check_trains(const char *name, mf_shape input, const char *const *sets) {
  const int n = 16, h = (int)input.d[input.ndim - 2], w = (int)input.d[input.ndim - 1];
  mf_model *m = build(name, input, 2, sets);
  EXPECT(m != NULL, "%s: %s", name, mf_error());
  if (!m) return;
  float *x = malloc(sizeof(float) * (size_t)(n * h * w));
  int32_t y[16];
  make_batch(x, y, n, h, w, 3);
  mf_shape bs = input;
  for (int k = bs.ndim; k > 0; k--) bs.d[k] = bs.d[k - 1];
  bs.d[0] = n;
  bs.ndim++;
  mf_ctx *ctx = mf_ctx_new();
  mf_optim_config cfg = mf_optim_defaults(MF_OPTIM_ADAM);
  cfg.lr = 3e-3f;
  mf_optim *opt = mf_optim_new(mf_model_params(m), &cfg);
  double first = 0, last = 0;
  for (int step = 0; step < 60; step++) {
    mf_ctx_reset(ctx);
    mf_params_zero_grad(mf_model_params(m));
    mf_tensor *logits = mf_model_forward(m, ctx, mf_ctx_tensor_from(ctx, bs, x), 1);
    EXPECT(logits->ndim == 2 && logits->shape[0] == n && logits->shape[1] == 2,
           "%s: logits are not [16, 2]", name);
    mf_tensor *loss = mf_cross_entropy(ctx, logits, y, 0);
    if (step == 0) first = loss->data[0];
    last = loss->data[0];
    mf_backward(ctx, loss);
    mf_optim_step(opt);
  }
  printf("  %s: training loss %.4f -> %.4f\n", name, first, last);
  EXPECT(last < 0.5 * first, "%s: loss %.4f -> %.4f did not fall well below its start", name, first,
         last);
  /* Eval mode is deterministic: no dropout, running statistics. */
  float a[2], b[2];
  for (int k = 0; k < 2; k++) {
    mf_ctx_reset(ctx);
    mf_ctx_set_grad_enabled(ctx, 0);
    mf_tensor *logits = mf_model_forward(m, ctx, mf_ctx_tensor_from(ctx, bs, x), 0);
    (k ? b : a)[0] = logits->data[0], (k ? b : a)[1] = logits->data[1];
    mf_ctx_set_grad_enabled(ctx, 1);
  }
  EXPECT(a[0] == b[0] && a[1] == b[1], "%s: two eval passes differ", name);
  mf_optim_free(opt);
  mf_ctx_free(ctx);
  mf_model_free(m);
  free(x);
}

TEST(test_mlp_trains_on_a_small_batch) {
  static const char *const s[] = {"hidden={32, 16}", "dropout={0.1}", NULL};
  check_trains("mlp", MF_SHAPE(16, 8), s);
}

TEST(test_cnn_trains_on_a_small_batch) {
  static const char *const s[] = {"filters={4, 8}", "dense={16}", NULL};
  check_trains("cnn", MF_SHAPE(1, 16, 16), s);
}

TEST(test_small_mfcc_cnn_layout_trains_on_a_small_batch) {
  static const char *const s[] = {"filters={4, 8}",
                                  "convs_per_block=1",
                                  "order=conv-relu-pool-bn",
                                  "conv_bias=true",
                                  "dropout=0.2",
                                  "spatial_dropout=true",
                                  "head=flatten",
                                  "dense={16}",
                                  "dense_batchnorm=true",
                                  "head_dropout=0.3",
                                  NULL};
  check_trains("cnn", MF_SHAPE(16, 12), s);
}

TEST(test_crnn_trains_on_a_small_batch) {
  static const char *const s[] = {"filters={4, 8}", "hidden=8", "attention_dim=8", "dense={8}",
                                  NULL};
  check_trains("crnn", MF_SHAPE(1, 16, 16), s);
}

TEST(test_crnn_with_gru_and_mean_pooling_trains) {
  static const char *const s[] = {"filters={4}", "rnn=gru",   "hidden=8", "pooling=mean",
                                  "layers=2",    "dense={8}", NULL};
  check_trains("crnn", MF_SHAPE(1, 16, 16), s);
}

TEST(test_cnn_transformer_trains_on_a_small_batch) {
  static const char *const s[] = {"filters={4, 8}", "d_model=16", "heads=2",
                                  "ff=32",          "layers=1",   NULL};
  check_trains("cnn_transformer", MF_SHAPE(1, 16, 16), s);
}

TEST(test_cnn_transformer_with_class_token_trains) {
  static const char *const s[] = {"filters={4}", "d_model=8",   "heads=2", "ff=16",
                                  "layers=1",    "pooling=cls", NULL};
  check_trains("cnn_transformer", MF_SHAPE(1, 16, 16), s);
}

TEST(test_model_parameters_are_validated) {
  const mf_component *c = model("cnn");
  mf_values *v;
  mf_component_values(c, &v);
  EXPECT(mf_values_set_assignment(v, "filtres={8}") == MF_EINVAL, "accepted a misspelt name");
  EXPECT(strstr(mf_error(), "did you mean 'filters'"), "%s", mf_error());
  EXPECT(mf_values_set_assignment(v, "dropout=2") == MF_EINVAL, "accepted dropout 2");
  EXPECT(strstr(mf_error(), "model 'cnn'") && strstr(mf_error(), "dropout"), "%s", mf_error());
  mf_values_free(v);
  /* Too many pools for a small input: creation fails with a message, nothing leaks. */
  static const char *const s[] = {"filters={4, 4, 4, 4, 4}", NULL};
  mf_model *m = build("cnn", MF_SHAPE(1, 8, 8), 2, s);
  EXPECT(m == NULL, "a 5-block CNN was built on an 8x8 input");
  EXPECT(strstr(mf_error(), "pools"), "%s", mf_error());
}

TEST(test_steady_state_training_steps_of_every_model_do_not_allocate) {
  /* Small versions of the four model plugins, dropout and batchnorm on: after a few steps
   * the arena holds a whole step and nothing (core, plugin, BLAS, OpenMP) calls malloc. */
  static const char *const cnn_s[] = {"filters={4, 8}", "dense={16}", NULL};
  static const char *const crnn_s[] = {"filters={4, 8}", "hidden=8", "attention_dim=8", "dense={8}",
                                       NULL};
  static const char *const tf_s[] = {"filters={4, 8}", "d_model=16", "heads=2",
                                     "ff=32",          "layers=1",   NULL};
  static const char *const mlp_s[] = {"hidden={32, 16}", NULL};
  struct {
    const char *name;
    const char *const *sets;
  } cases[] = {{"mlp", mlp_s}, {"cnn", cnn_s}, {"crnn", crnn_s}, {"cnn_transformer", tf_s}};
#ifdef COUNT_MALLOCS
  Dl_info info;
  if (dladdr((void *)cblas_sgemm, &info)) g_blas_base = info.dli_fbase;
#endif
  const int n = 8;
  float *x = malloc(sizeof(float) * 16 * 16 * n);
  int32_t y[8];
  make_batch(x, y, n, 16, 16, 5);
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    mf_model *m = build(cases[k].name, MF_SHAPE(1, 16, 16), 2, cases[k].sets);
    EXPECT(m != NULL, "%s: %s", cases[k].name, mf_error());
    if (!m) continue;
    mf_ctx *ctx = mf_ctx_new();
    mf_optim_config cfg = mf_optim_defaults(MF_OPTIM_ADAM);
    mf_optim *opt = mf_optim_new(mf_model_params(m), &cfg);
    long before = 0, blas_before = 0;
    for (int step = 0; step < 8; step++) {
      if (step == 3) before = g_allocs_now(), blas_before = g_blas_now();
      mf_ctx_reset(ctx);
      mf_params_zero_grad(mf_model_params(m));
      mf_tensor *logits =
          mf_model_forward(m, ctx, mf_ctx_tensor_from(ctx, MF_SHAPE(n, 1, 16, 16), x), 1);
      mf_backward(ctx, mf_cross_entropy(ctx, logits, y, 0));
      mf_optim_step(opt);
    }
#ifdef COUNT_MALLOCS
    EXPECT(g_allocs_now() == before, "%s: %ld heap allocations in 5 steady-state steps",
           cases[k].name, g_allocs_now() - before);
    printf("  %s: 0 allocations by melforge per step; %.0f by OpenBLAS small-matrix kernels\n",
           cases[k].name, (g_blas_now() - blas_before) / 5.0);
#else
    (void)before, (void)blas_before;
#endif
    mf_optim_free(opt);
    mf_ctx_free(ctx);
    mf_model_free(m);
  }
  free(x);
}
