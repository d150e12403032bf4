/* gemm.c — every matrix product of the core goes through mf__sgemm.
 *
 * Outside a parallel region, a product big enough to share is cut into one stripe of
 * columns (or rows) per thread and each thread runs single-threaded OpenBLAS on its stripe
 * (the OpenMP build of OpenBLAS runs single-threaded inside a parallel region). Letting
 * OpenBLAS thread the call itself would be as fast, but its threaded driver allocates a job
 * table on every call, and the steady-state training step must not allocate. Each output
 * element is still computed by one thread over the whole K, so the stripes do not change
 * the result's summation order. Inside a parallel region (the conv op's per-sample loops)
 * the call simply runs on the calling thread.
 */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "internal.h"

/* Below this many multiply-adds a second thread costs more than it saves. */
#define SPLIT_MIN_MACS (1 << 18)
/* Stripes are multiples of this many rows or columns (the kernels' register blocking). */
#define STRIPE_ALIGN 16

static void blas(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *a,
                 int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              (blasint)M, (blasint)N, (blasint)K, alpha, a, (blasint)lda, b, (blasint)ldb, beta, c,
              (blasint)ldc);
}

void mf__sgemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *a,
               int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    /* BLAS implementations disagree on K == 0; the sum is empty, so C = beta C. */
    for (int64_t i = 0; i < M; i++) {
      float *row = c + i * ldc;
      if (beta == 0.0f)
        memset(row, 0, (size_t)N * sizeof(float));
      else if (beta != 1.0f)
        for (int64_t j = 0; j < N; j++) row[j] *= beta;
    }
    return;
  }
  int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  int split_cols = N >= M;
  int64_t along = split_cols ? N : M;
  if (threads > 1 && M * N * K >= SPLIT_MIN_MACS && along >= 2 * STRIPE_ALIGN) {
    int64_t stripes = along / STRIPE_ALIGN < threads ? along / STRIPE_ALIGN : threads;
#pragma omp parallel num_threads((int)stripes)
    {
      int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
      /* Aligned, nearly equal stripes; the last one takes the remainder. */
      int64_t per = (along / nt + STRIPE_ALIGN - 1) / STRIPE_ALIGN * STRIPE_ALIGN;
      int64_t s0 = t * per, s1 = t == nt - 1 ? along : (t + 1) * per;
      if (s1 > along) s1 = along;
      if (s0 < s1) {
        if (split_cols) /* C[:, s0:s1] = op(A) op(B)[:, s0:s1] */
          blas(ta, tb, M, s1 - s0, K, alpha, a, lda, tb ? b + s0 * ldb : b + s0, ldb, beta, c + s0,
               ldc);
        else /* C[s0:s1, :] = op(A)[s0:s1, :] op(B) */
          blas(ta, tb, s1 - s0, N, K, alpha, ta ? a + s0 : a + s0 * lda, lda, b, ldb, beta,
               c + s0 * ldc, ldc);
      }
    }
    return;
  }
  blas(ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
}
