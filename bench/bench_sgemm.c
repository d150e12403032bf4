/* bench_sgemm.c — what OpenBLAS's cblas_sgemm reaches on this machine, alone.
 *
 * The ceiling for models that are one GEMM chain (model a, the MLP): the big square
 * shapes show the kernel's peak, the others are model a's layers at the inference batch
 * (64). Prints GFLOP/s (2*M*N*K per call) of the best of 5 timed repeats, each at least
 * 0.5 s, and the OpenBLAS kernel in use. Threads: OPENBLAS_NUM_THREADS / OMP_NUM_THREADS.
 *
 *   OMP_NUM_THREADS=2 build/bench/bench_sgemm [M N K]...
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double time_calls(int m, int n, int k, const float *a, const float *b, float *c, int calls) {
  const double t0 = now();
  for (int r = 0; r < calls; r++)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
  return now() - t0;
}

static void run(int m, int n, int k) {
  float *a = malloc(sizeof(float) * (size_t)m * (size_t)k);
  float *b = malloc(sizeof(float) * (size_t)k * (size_t)n);
  float *c = malloc(sizeof(float) * (size_t)m * (size_t)n);
  if (!a || !b || !c) {
    fprintf(stderr, "bench_sgemm: out of memory for %dx%dx%d\n", m, n, k);
    exit(1);
  }
  for (size_t i = 0; i < (size_t)m * (size_t)k; i++) a[i] = (float)(i % 7) * 0.1f;
  for (size_t i = 0; i < (size_t)k * (size_t)n; i++) b[i] = (float)(i % 5) * 0.1f;
  int calls = 1;
  while (time_calls(m, n, k, a, b, c, calls) < 0.5) calls *= 2;
  double best = 1e30;
  for (int r = 0; r < 5; r++) {
    const double t = time_calls(m, n, k, a, b, c, calls);
    if (t < best) best = t;
  }
  printf("  %5d x %5d x %5d   %8.1f GFLOP/s\n", m, n, k,
         2.0 * m * n * (double)k * calls / best / 1e9);
  free(a), free(b), free(c);
}

int main(int argc, char **argv) {
  printf("%s; kernel %s, %d threads\n", openblas_get_config(), openblas_get_corename(),
         openblas_get_num_threads());
  printf("      M       N       K\n");
  if (argc > 1) {
    if ((argc - 1) % 3) {
      fprintf(stderr, "usage: bench_sgemm [M N K]...  (shapes in threes)\n");
      return 2;
    }
    for (int i = 1; i + 2 < argc; i += 3) run(atoi(argv[i]), atoi(argv[i + 1]), atoi(argv[i + 2]));
    return 0;
  }
  static const int shapes[][3] = {{1024, 1024, 1024}, {2048, 2048, 2048}, {64, 512, 1690},
                                  {64, 256, 512},     {64, 64, 256},      {64, 10, 64}};
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
    run(shapes[i][0], shapes[i][1], shapes[i][2]);
  return 0;
}
