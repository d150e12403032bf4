/* bench_features.c — throughput of the melspec and mfcc feature plugins on 30 s tracks.
 *
 * The counterpart of ../shared/peers/torch/bench_features.py: sr 22050, n_fft 2048, hop 512,
 * 128 Slaney mel bands, power_to_db with top_db 80, MFCC = the first 13 DCT-II coefficients.
 * The track is that script's make_track (six partials with a 0.5 Hz tremolo over noise,
 * peak-normalised), with the noise drawn from melforge's RNG instead of numpy's. Each plugin
 * is loaded from the build tree and called through mf_feature_compute, as extraction does.
 * With 2 threads, two tracks are computed concurrently on one instance (the way extraction
 * parallelises over tracks). tracks/s = median of 3 repeats, each at least `seconds` long.
 *
 *   ./bench/bench_features [seconds]
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "melforge/component.h"
#include "melforge/melforge.h"

#define SR 22050
#define DUR 30

static double clock_s(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
static double now(void) { return clock_s(CLOCK_MONOTONIC); }

static void make_track(float *y, int64_t n, uint64_t seed) {
  mf_rng r = mf_rng_stream(seed, MF_RNG_USER);
  double *x = malloc((size_t)n * sizeof *x), peak = 0;
  const double f[] = {110.0, 220.0, 440.0, 880.0, 1760.0, 3520.0};
  for (int64_t i = 0; i < n; i++) {
    const double t = (double)i / SR;
    x[i] = 0.1 * mf_rng_normal(&r);
    for (int k = 0; k < 6; k++)
      x[i] += 0.2 * sin(2 * M_PI * f[k] * t) * (1 + sin(2 * M_PI * 0.5 * t));
    peak = fmax(peak, fabs(x[i]));
  }
  for (int64_t i = 0; i < n; i++) y[i] = (float)(x[i] / peak);
  free(x);
}

typedef struct worker {
  const mf_feature *f;
  const float *y;
  int64_t n;
  float *out;
  int iters;
  pthread_barrier_t *start;
} worker;

static void *work(void *arg) {
  worker *w = arg;
  pthread_barrier_wait(w->start);
  for (int i = 0; i < w->iters; i++)
    if (mf_feature_compute(w->f, w->y, w->n, w->out)) {
      fprintf(stderr, "bench_features: compute failed: %s\n", mf_error());
      exit(1);
    }
  return NULL;
}

/* Tracks per second of `threads` threads each computing `iters` tracks; *cpu gets the CPU
 * seconds used per track (wall time per track x threads when nothing else runs). */
static double timed(worker *ws, int threads, int iters, double *cpu) {
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
  pthread_t th[2];
  for (int i = 0; i < threads; i++) {
    ws[i].iters = iters;
    ws[i].start = &start;
    pthread_create(&th[i], NULL, work, &ws[i]);
  }
  /* The clocks start before the workers are released: were this thread descheduled after
   * the barrier, they would otherwise miss part of the work. */
  const double t0 = now(), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
  pthread_barrier_wait(&start);
  for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
  const double dt = now() - t0;
  if (cpu) *cpu = (clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0) / (threads * iters);
  pthread_barrier_destroy(&start);
  return threads * iters / dt;
}

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  const double seconds = argc > 1 ? atof(argv[1]) : 1.5;
  if (mf_plugins_load_file(BUILD_PLUGIN_DIR "/melspec.so") ||
      mf_plugins_load_file(BUILD_PLUGIN_DIR "/mfcc.so")) {
    fprintf(stderr, "bench_features: %s (build the melspec and mfcc plugins first)\n", mf_error());
    return 1;
  }
  const int64_t n = (int64_t)SR * DUR;
  float *y[2];
  for (int i = 0; i < 2; i++) {
    y[i] = malloc((size_t)n * sizeof(float));
    make_track(y[i], n, (uint64_t)i);
  }
  const char *names[] = {"melspec", "mfcc"}, *labels[] = {"logmel", "mfcc13"};
  mf_feature *fs[2];
  int64_t frames = 0;
  for (int k = 0; k < 2; k++) {
    const double t0 = now();
    if (mf_feature_new(mf_component_find(MF_KIND_FEATURE, names[k]), NULL, SR, &fs[k])) {
      fprintf(stderr, "bench_features: %s\n", mf_error());
      return 1;
    }
    mf_feature_layout l;
    mf_feature_layout_of(fs[k], n, &l);
    frames = l.shape.d[l.time_axis];
    printf("%s: create %.1f ms, output [%lld, %lld]\n", names[k], 1e3 * (now() - t0),
           (long long)l.shape.d[0], (long long)l.shape.d[1]);
  }
  printf("%-40s %-7s %3s %10s %8s %8s\n", "impl", "feature", "thr", "tracks/s", "ms/track",
         "cpu ms");
  printf("--------------------------------------------------------------------------------\n");
  for (int threads = 1; threads <= 2; threads++) {
    for (int k = 0; k < 2; k++) {
      mf_feature_layout l;
      mf_feature_layout_of(fs[k], n, &l);
      worker ws[2];
      for (int i = 0; i < threads; i++)
        ws[i] = (worker){fs[k], y[i], n, malloc((size_t)mf_shape_numel(l.shape) * sizeof(float)),
                         0,     NULL};
      timed(ws, threads, 2, NULL); /* warm up: page in the buffers */
      const double one = 1.0 / timed(ws, threads, 1, NULL) * threads;
      int iters = (int)(seconds / one);
      if (iters < 3) iters = 3;
      double rates[3], cpus[3];
      for (int r = 0; r < 3; r++) rates[r] = timed(ws, threads, iters, &cpus[r]);
      qsort(rates, 3, sizeof rates[0], cmp_double);
      qsort(cpus, 3, sizeof cpus[0], cmp_double);
      char impl[64];
      snprintf(impl, sizeof impl, "melforge %s plugin (FFTW3f)", names[k]);
      printf("%-40s %-7s %3d %10.1f %8.2f %8.2f\n", impl, labels[k], threads, rates[1],
             1e3 / rates[1], 1e3 * cpus[1]);
      for (int i = 0; i < threads; i++) free(ws[i].out);
    }
  }
  printf(
      "30 s track = %lld samples -> %lld frames; 2 threads = two tracks at once on one "
      "instance.\ncpu ms = CPU time per track; below ms/track x threads, other processes held "
      "the cores.\n",
      (long long)n, (long long)frames);
  for (int k = 0; k < 2; k++) mf_feature_free(fs[k]);
  for (int i = 0; i < 2; i++) free(y[i]);
  return 0;
}
