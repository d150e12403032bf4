/* runtime.c — thread count shared by OpenMP loops and OpenBLAS; version; BLAS info. */
#include "melforge/runtime.h"

#include <omp.h>
#include <stdlib.h>
#include <unistd.h>

#include "mf_config.h"

/* OpenBLAS extensions (declared in its cblas.h; repeated here to keep the header private). */
void openblas_set_num_threads(int n);
char *openblas_get_corename(void);
char *openblas_get_config(void);

static int g_threads;

const char *mf_version(void) { return MF_VERSION_STRING; }

void mf_set_num_threads(int n) {
  if (n < 1) n = 1;
  g_threads = n;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

void mf_runtime_init(void) {
  if (g_threads) return;
  int n = 0;
  const char *e = getenv("MELFORGE_THREADS");
  if (e && *e) n = atoi(e);
  if (n < 1) {
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    n = c > 0 ? (int)c : 1;
  }
  mf_set_num_threads(n);
}

int mf_num_threads(void) {
  mf_runtime_init();
  return g_threads;
}

const char *mf_blas_corename(void) { return openblas_get_corename(); }
const char *mf_blas_config(void) { return openblas_get_config(); }
