/* bench_conv.c — conv2d throughput on the layer shapes of the benchmark CNN (model c).
 *
 * Model c: batch 32, input 1x128x130, 3x3 'same' convs without bias (each followed by
 * batchnorm and 2x2 pooling in the model, not timed here). For each layer this prints the
 * time and GFLOP/s of the forward (no grad), of the backward alone (dW, and dx for every
 * layer but the first, whose input is data), and of both together, then the totals.
 * FLOPs count 2*O*K*OH*OW per sample for each of forward, dW and dx.
 *
 *   MELFORGE_THREADS=2 ./bench/bench_conv [reps] [batch]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"
#include "melforge/melforge.h"

typedef struct layer {
  int c, o, h, w;
} layer;

static const layer LAYERS[] = {{1, 32, 128, 130}, {32, 32, 128, 130}, {32, 64, 64, 65},
                               {64, 64, 64, 65},  {64, 128, 32, 32},  {128, 128, 32, 32}};

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
  const int reps = argc > 1 ? atoi(argv[1]) : 5;
  const int batch = argc > 2 ? atoi(argv[2]) : 32;
  mf_runtime_init();
  printf("conv2d 3x3 'same', batch %d, %d threads, BLAS %s, best of %d\n", batch, mf_num_threads(),
         mf_blas_corename(), reps);
  printf("%-22s %9s %9s %9s %9s %9s %9s\n", "layer", "fwd ms", "GFLOP/s", "bwd ms", "GFLOP/s",
         "f+b ms", "GFLOP/s");
  mf_ctx *ctx = mf_ctx_new();
  const mf_conv2d_opts same = {{1, 1}, {0, 0}, {1, 1}, 1};
  double tot_f = 0, tot_b = 0, fl_f = 0, fl_b = 0;
  for (size_t l = 0; l < sizeof LAYERS / sizeof LAYERS[0]; l++) {
    const layer L = LAYERS[l];
    mf_tensor *x = mf_tensor_new(MF_SHAPE(batch, L.c, L.h, L.w));
    mf_tensor *w = mf_tensor_new(MF_SHAPE(L.o, L.c, 3, 3));
    mf_rng r = mf_rng_stream(1, MF_RNG_USER);
    mf_rng_fill_uniform(&r, x->data, x->numel, -1, 1);
    mf_rng_fill_uniform(&r, w->data, w->numel, -0.1f, 0.1f);
    mf_tensor_set_requires_grad(w, 1); /* heap tensors get their grad buffer here */
    const int first = l == 0;          /* the first layer's input is data: no dx */
    if (!first) mf_tensor_set_requires_grad(x, 1);
    const int64_t out_numel = (int64_t)batch * L.o * L.h * L.w;
    float *dy = malloc((size_t)out_numel * sizeof(float));
    mf_rng_fill_uniform(&r, dy, out_numel, -1, 1);
    const double fl = 2.0 * batch * L.o * (double)L.c * 9 * L.h * L.w;

    double best_f = 1e30, best_b = 1e30;
    for (int k = 0; k < reps + 2; k++) { /* two rounds to grow the arena to its steady size */
      mf_ctx_reset(ctx);
      mf_ctx_set_grad_enabled(ctx, 0);
      double t0 = now();
      mf_conv2d(ctx, x, w, NULL, &same);
      double tf = now() - t0;
      mf_ctx_reset(ctx);
      mf_ctx_set_grad_enabled(ctx, 1);
      mf_tensor *y = mf_conv2d(ctx, x, w, NULL, &same);
      /* Call the node's backward directly: seeding through mf_backward_with_grad would add
       * a serial copy of the output gradient to the timing. */
      y->grad = dy;
      y->grad_state = 1;
      w->grad_state = 0;
      x->grad_state = 0;
      t0 = now();
      y->node->backward(ctx, y->node);
      double tb = now() - t0;
      y->grad = NULL;
      if (k > 1) {
        best_f = tf < best_f ? tf : best_f;
        best_b = tb < best_b ? tb : best_b;
      }
    }
    const double flb = first ? fl : 2 * fl;
    char name[64];
    snprintf(name, sizeof name, "%3d->%-3d %3dx%-3d%s", L.c, L.o, L.h, L.w,
             first ? " (no dx)" : "");
    printf("%-22s %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f\n", name, 1e3 * best_f, fl / best_f / 1e9,
           1e3 * best_b, flb / best_b / 1e9, 1e3 * (best_f + best_b),
           (fl + flb) / (best_f + best_b) / 1e9);
    tot_f += best_f, tot_b += best_b, fl_f += fl, fl_b += flb;
    free(dy);
    mf_tensor_free(x);
    mf_tensor_free(w);
  }
  printf("%-22s %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f\n", "total", 1e3 * tot_f, fl_f / tot_f / 1e9,
         1e3 * tot_b, fl_b / tot_b / 1e9, 1e3 * (tot_f + tot_b),
         (fl_f + fl_b) / (tot_f + tot_b) / 1e9);
  mf_ctx_free(ctx);
  return 0;
}
