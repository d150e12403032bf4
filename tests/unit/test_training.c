/* End-to-end behaviour of the core: a small MLP written against the C API trains on two
 * interleaved spirals, training is bit-reproducible, gradient accumulation matches a full
 * batch, and the steady-state training step allocates nothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "melforge/melforge.h"
#include "mftest.h"

/* Counts every heap allocation of the process (glibc's entry points wrapped by interposition)
 * so a test can assert that the steady-state step allocates nothing anywhere: core,
 * OpenBLAS, OpenMP. Sanitizer builds replace malloc themselves, so the count is off there. */
#if !defined(__SANITIZE_ADDRESS__)
#define COUNT_MALLOCS 1
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
static volatile long g_allocs;
void *malloc(size_t n) {
  __atomic_add_fetch(&g_allocs, 1, __ATOMIC_RELAXED);
  return __libc_malloc(n);
}
void *calloc(size_t n, size_t s) {
  __atomic_add_fetch(&g_allocs, 1, __ATOMIC_RELAXED);
  return __libc_calloc(n, s);
}
void *realloc(void *p, size_t n) {
  __atomic_add_fetch(&g_allocs, 1, __ATOMIC_RELAXED);
  return __libc_realloc(p, n);
}
int posix_memalign(void **p, size_t a, size_t n) {
  __atomic_add_fetch(&g_allocs, 1, __ATOMIC_RELAXED);
  *p = __libc_memalign(a, n);
  return *p ? 0 : 12;
}
#endif

#define N_PER_CLASS 200
#define N_POINTS (2 * N_PER_CLASS)

/* Two spirals of 1.75 turns, n points each (2n in all), with a little Gaussian jitter. */
static void make_spirals_n(float *x, int32_t *y, int n, uint64_t seed) {
  mf_rng r = mf_rng_stream(seed, MF_RNG_USER);
  for (int i = 0; i < n; i++) {
    double t = 0.25 + 1.75 * 2 * M_PI * i / n;
    double rad = t / (1.75 * 2 * M_PI) * 2.0;
    for (int c = 0; c < 2; c++) {
      double s = c ? -1 : 1;
      int k = 2 * i + c;
      x[2 * k] = (float)(s * rad * cos(t) + 0.03 * mf_rng_normal(&r));
      x[2 * k + 1] = (float)(s * rad * sin(t) + 0.03 * mf_rng_normal(&r));
      y[k] = c;
    }
  }
}

static void make_spirals(float *x, int32_t *y, uint64_t seed) {
  make_spirals_n(x, y, N_PER_CLASS, seed);
}

typedef struct mlp {
  mf_params *ps;
  mf_tensor *w1, *b1, *w2, *b2, *w3, *b3;
  mf_tensor *bn_g, *bn_b, *bn_m, *bn_v;
  int use_bn_dropout;
} mlp;

static mlp mlp_new(int hidden, uint64_t seed, int use_bn_dropout) {
  mlp m = {0};
  m.ps = mf_params_new();
  m.w1 = mf_params_add(m.ps, "fc1.weight", MF_SHAPE(hidden, 2));
  m.b1 = mf_params_add(m.ps, "fc1.bias", MF_SHAPE(hidden));
  m.w2 = mf_params_add(m.ps, "fc2.weight", MF_SHAPE(hidden, hidden));
  m.b2 = mf_params_add(m.ps, "fc2.bias", MF_SHAPE(hidden));
  m.w3 = mf_params_add(m.ps, "fc3.weight", MF_SHAPE(2, hidden));
  m.b3 = mf_params_add(m.ps, "fc3.bias", MF_SHAPE(2));
  m.use_bn_dropout = use_bn_dropout;
  if (use_bn_dropout) {
    m.bn_g = mf_params_add(m.ps, "bn.weight", MF_SHAPE(hidden));
    m.bn_b = mf_params_add(m.ps, "bn.bias", MF_SHAPE(hidden));
    m.bn_m = mf_params_add_buffer(m.ps, "bn.running_mean", MF_SHAPE(hidden));
    m.bn_v = mf_params_add_buffer(m.ps, "bn.running_var", MF_SHAPE(hidden));
    mf_init_constant(m.bn_g, 1);
    mf_init_constant(m.bn_v, 1);
  }
  mf_rng init = mf_rng_stream(seed, MF_RNG_INIT);
  mf_init_linear_default(m.w1, m.b1, &init);
  mf_init_linear_default(m.w2, m.b2, &init);
  mf_init_linear_default(m.w3, m.b3, &init);
  return m;
}

static mf_tensor *mlp_forward(mf_ctx *ctx, mlp *m, mf_tensor *x, int training) {
  mf_tensor *h = mf_tanh(ctx, mf_linear(ctx, x, m->w1, m->b1));
  h = mf_linear(ctx, h, m->w2, m->b2);
  if (m->use_bn_dropout) {
    h = mf_batchnorm(ctx, h, m->bn_g, m->bn_b, m->bn_m, m->bn_v, training, 0.1f, 1e-5f);
    h = mf_relu_(ctx, h);
    h = mf_dropout(ctx, h, 0.1f, training);
  } else {
    h = mf_tanh(ctx, h);
  }
  return mf_linear(ctx, h, m->w3, m->b3);
}

static double accuracy(mf_ctx *ctx, mlp *m, const float *x, const int32_t *y, int n) {
  mf_ctx_reset(ctx);
  int prev = mf_ctx_set_grad_enabled(ctx, 0);
  mf_tensor *logits = mlp_forward(ctx, m, mf_ctx_tensor_from(ctx, MF_SHAPE(n, 2), x), 0);
  mf_ctx_set_grad_enabled(ctx, prev);
  int ok = 0;
  for (int i = 0; i < n; i++) ok += (logits->data[2 * i + 1] > logits->data[2 * i]) == (y[i] == 1);
  return (double)ok / n;
}

/* Minibatch training with Adam; returns the final training accuracy. */
static double train(mlp *m, const float *x, const int32_t *y, int epochs, int batch,
                    uint64_t seed) {
  mf_ctx *ctx = mf_ctx_new();
  mf_optim_config cfg = mf_optim_defaults(MF_OPTIM_ADAM);
  cfg.lr = 0.01f;
  mf_optim *opt = mf_optim_new(m->ps, &cfg);
  mf_rng shuffle = mf_rng_stream(seed, MF_RNG_SHUFFLE);
  mf_rng drop = mf_rng_stream(seed, MF_RNG_DROPOUT);
  mf_ctx_set_dropout_rng(ctx, &drop);
  int32_t idx[N_POINTS];
  float bx[2 * N_POINTS];
  int32_t by[N_POINTS];
  for (int i = 0; i < N_POINTS; i++) idx[i] = i;
  for (int e = 0; e < epochs; e++) {
    mf_rng_shuffle_i32(&shuffle, idx, N_POINTS);
    for (int s = 0; s + batch <= N_POINTS; s += batch) {
      for (int i = 0; i < batch; i++) {
        bx[2 * i] = x[2 * idx[s + i]];
        bx[2 * i + 1] = x[2 * idx[s + i] + 1];
        by[i] = y[idx[s + i]];
      }
      mf_ctx_reset(ctx);
      mf_params_zero_grad(m->ps);
      mf_tensor *logits = mlp_forward(ctx, m, mf_ctx_tensor_from(ctx, MF_SHAPE(batch, 2), bx), 1);
      mf_tensor *loss = mf_cross_entropy(ctx, logits, by, 0.0f);
      mf_backward(ctx, loss);
      mf_optim_step(opt);
    }
  }
  double acc = accuracy(ctx, m, x, y, N_POINTS);
  mf_optim_free(opt);
  mf_ctx_free(ctx);
  return acc;
}

TEST(test_mlp_learns_two_spirals_with_adam) {
  float x[2 * N_POINTS];
  int32_t y[N_POINTS];
  make_spirals(x, y, 1);
  mlp m = mlp_new(64, 1, 0);
  double acc = train(&m, x, y, 300, 40, 1);
  printf("  two spirals: training accuracy %.3f after 300 epochs\n", acc);
  EXPECT(acc > 0.95, "accuracy %.3f, expected > 0.95", acc);
  mf_params_free(m.ps);
}

TEST(test_training_is_bit_reproducible) {
  /* Batchnorm, in-place ReLU and dropout included: every source of randomness is a seeded
   * stream and every reduction has a fixed order, so two runs agree to the bit. */
  float x[2 * N_POINTS];
  int32_t y[N_POINTS];
  make_spirals(x, y, 3);
  mlp a = mlp_new(32, 5, 1), b = mlp_new(32, 5, 1);
  train(&a, x, y, 5, 32, 9);
  train(&b, x, y, 5, 32, 9);
  for (int i = 0; i < mf_params_size(a.ps); i++) {
    mf_tensor *ta = mf_params_at(a.ps, i), *tb = mf_params_at(b.ps, i);
    EXPECT(memcmp(ta->data, tb->data, (size_t)ta->numel * sizeof(float)) == 0,
           "parameter %s differs between two identical runs", ta->name);
  }
  mf_params_free(a.ps);
  mf_params_free(b.ps);
}

TEST(test_gradient_accumulation_matches_full_batch) {
  /* Two backward passes over half batches, each loss scaled by 1/2, accumulate the same
   * gradient as one pass over the full batch (no batchnorm: it couples the samples).
   * Tolerance 1e-6: the two sums differ only in float rounding order. */
  float x[2 * 64];
  int32_t y[64];
  make_spirals_n(x, y, 32, 4);
  mlp m = mlp_new(16, 2, 0);
  mf_ctx *ctx = mf_ctx_new();
  mf_params_zero_grad(m.ps);
  mf_tensor *loss =
      mf_cross_entropy(ctx, mlp_forward(ctx, &m, mf_ctx_tensor_from(ctx, MF_SHAPE(64, 2), x), 1),
                       y, 0.0f);
  mf_backward(ctx, loss);
  float full[16 * 16];
  mf_tensor_read_grad(m.w2, full);
  mf_params_zero_grad(m.ps);
  for (int h = 0; h < 2; h++) {
    mf_ctx_reset(ctx);
    mf_tensor *xb = mf_ctx_tensor_from(ctx, MF_SHAPE(32, 2), x + 64 * h);
    mf_tensor *l = mf_cross_entropy(ctx, mlp_forward(ctx, &m, xb, 1), y + 32 * h, 0.0f);
    mf_backward(ctx, mf_scale(ctx, l, 0.5f));
  }
  for (int i = 0; i < 16 * 16; i++) EXPECT_NEAR(m.w2->grad[i], full[i], 1e-6);
  mf_ctx_free(ctx);
  mf_params_free(m.ps);
}

TEST(test_steady_state_training_step_does_not_allocate) {
  float x[2 * N_POINTS];
  int32_t y[N_POINTS];
  make_spirals(x, y, 5);
  mlp m = mlp_new(64, 3, 1);
  mf_ctx *ctx = mf_ctx_new();
  mf_optim_config cfg = mf_optim_defaults(MF_OPTIM_ADAM);
  mf_optim *opt = mf_optim_new(m.ps, &cfg);
  size_t after_warmup = 0;
  long heap_after_warmup = 0;
  for (int step = 0; step < 10; step++) {
    mf_ctx_reset(ctx);
    mf_params_zero_grad(m.ps);
    mf_tensor *loss = mf_cross_entropy(
        ctx, mlp_forward(ctx, &m, mf_ctx_tensor_from(ctx, MF_SHAPE(N_POINTS, 2), x), 1), y, 0.0f);
    mf_backward(ctx, loss);
    mf_optim_step(opt);
    if (step == 2) {
      after_warmup = mf_ctx_stats_get(ctx).system_allocs;
#ifdef COUNT_MALLOCS
      heap_after_warmup = g_allocs;
#endif
    }
  }
  EXPECT_EQ_INT(mf_ctx_stats_get(ctx).system_allocs, after_warmup);
#ifdef COUNT_MALLOCS
  EXPECT(g_allocs == heap_after_warmup, "%ld heap allocations in 7 steady-state steps",
         g_allocs - heap_after_warmup);
#else
  (void)heap_after_warmup;
#endif
  mf_optim_free(opt);
  mf_ctx_free(ctx);
  mf_params_free(m.ps);
}
