/* melforge/runtime.h — process-wide settings: threads, version, what BLAS is doing.
 *
 * One thread count drives both OpenBLAS and melforge's own parallel loops (OpenMP), so the
 * two never oversubscribe the cores. It comes from mf_set_num_threads(), else the
 * MELFORGE_THREADS environment variable, else the number of online CPUs.
 */
#ifndef MELFORGE_RUNTIME_H
#define MELFORGE_RUNTIME_H

#ifdef __cplusplus
extern "C" {
#endif

const char *mf_version(void);

/* Applies MELFORGE_THREADS (once; later calls are cheap). */
void mf_runtime_init(void);
void mf_set_num_threads(int n);
int mf_num_threads(void);

/* OpenBLAS's kernel family ("Cooperlake", "Haswell", ...) and its build configuration. */
const char *mf_blas_corename(void);
const char *mf_blas_config(void);

#ifdef __cplusplus
}
#endif
#endif
