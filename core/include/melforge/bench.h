/* melforge/bench.h — the benchmark harness behind `melforge bench`: the reference
 * architectures, step timing that copes with a shared machine, peak memory per phase.
 *
 * The architectures (keys a-e) are those of the PyTorch baseline bench/torch/bench_models.py,
 * with the same layers, parameter counts and seeds, so the two compare one to one. Timing
 * follows that script's timed_repeats: warm-up steps, one timed step to size a repeat, then
 * repeats, each with the CPU that *other* processes used meanwhile ("foreign cores": busy
 * time from /proc/stat minus this process's own CPU time, per wall second). A repeat during
 * which others used more than a threshold is kept but not counted as clean; it is retried
 * after waiting for the machine to go quiet, and the median is over the clean repeats (over
 * all of them when none was clean).
 *
 * One model's benchmark, best run in a process of its own so its peak RSS is its own:
 *
 *   mf_plugins_load_search_path(NULL, NULL, NULL);
 *   mf_bench_config cfg = mf_bench_defaults();
 *   mf_bench_result r;
 *   if (mf_bench_model_run(mf_bench_arch_find("c"), &cfg, &r) == MF_OK)
 *     printf("%.1f samples/s\n", r.train.median);
 *
 * Linux only for memory: VmRSS / VmHWM from /proc/self/status, the high-water mark reset by
 * writing "5" to /proc/self/clear_refs.
 */
#ifndef MELFORGE_BENCH_H
#define MELFORGE_BENCH_H

#include <stdint.h>

#include "melforge/component.h"
#include "melforge/error.h"
#include "melforge/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the reference architectures ------------------------------------------------------- */

typedef struct mf_bench_arch {
  const char *key;         /* "a" .. "e" */
  const char *name;        /* as the PyTorch script names it */
  const char *model;       /* model plugin */
  mf_shape input;          /* one sample */
  const char *const *sets; /* "key=value" settings over the plugin's defaults, NULL-ended */
  uint64_t seed;           /* of the init stream (the script's torch.manual_seed) */
  float weight_decay;      /* Adam's coupled L2 */
  int64_t torch_params;    /* PyTorch's parameter count for the same model */
} mf_bench_arch;

int mf_bench_arch_count(void);
const mf_bench_arch *mf_bench_arch_at(int i);
/* NULL with an error listing the keys when there is no such architecture. */
const mf_bench_arch *mf_bench_arch_find(const char *key);

/* Builds the architecture (the model plugins must be loaded), initialised from the init
 * stream of its seed. */
mf_status mf_bench_model_new(const mf_bench_arch *a, int n_classes, mf_model **out);

/* Forward multiply-accumulates per sample, counted from the tape of one training-mode
 * forward of `batch` zero samples the way the PyTorch script's hooks count: conv2d
 * (output elements x in-channels / groups x kernel area), linear (output elements x
 * in-features), LSTM / GRU (steps x gates x hidden x (input + hidden) per direction),
 * self-attention (projections, QK^T, AV) and additive attention pooling (its two linear
 * maps). Element-wise ops, norms, pooling and bare matmuls are not counted. Like the script,
 * the forward runs in training mode: batchnorm running statistics move. -1 on failure. */
int64_t mf_bench_forward_macs(mf_model *m, int batch);

/* ---- load monitor ---------------------------------------------------------------------- */

typedef struct mf_loadmon {
  double t0, busy0, own0;
} mf_loadmon;

typedef struct mf_load {
  double wall;          /* seconds */
  double own_cores;     /* this process and its waited-for children */
  double foreign_cores; /* everything else, >= 0 */
} mf_load;

void mf_loadmon_start(mf_loadmon *m);
mf_load mf_loadmon_stop(const mf_loadmon *m);
/* Foreign cores over the next `seconds` (sleeps meanwhile). */
double mf_foreign_now(double seconds);

typedef void (*mf_bench_log_fn)(const char *message, void *user);
/* Waits up to max_wait_s until others use fewer than `threshold` cores, probing for probe_s
 * and sleeping 10 s between probes; returns the last probe. log (may be NULL) gets a line
 * per probe. */
double mf_wait_quiet(double max_wait_s, double threshold, double probe_s, mf_bench_log_fn log,
                     void *user);

/* ---- timing ---------------------------------------------------------------------------- */

#define MF_BENCH_MAX_REPEATS 64

typedef struct mf_bench_timing_opts {
  int warmup;          /* untimed steps first */
  int min_steps;       /* at least this many steps per repeat */
  double min_seconds;  /* and enough steps to last this long */
  int floor_steps;     /* size repeats with floor instead of ceil (bench_features.py's way) */
  int repeats;         /* clean repeats wanted */
  int max_extra;       /* retries of unclean repeats */
  double threshold;    /* foreign cores above which a repeat is unclean */
  double retry_wait_s; /* wait for quiet before each retry, at most this long */
} mf_bench_timing_opts;

typedef struct mf_bench_timing {
  int steps_per_repeat;
  int n;                                /* repeats run */
  double rate[MF_BENCH_MAX_REPEATS];    /* items per second of each repeat */
  double foreign[MF_BENCH_MAX_REPEATS]; /* foreign cores during each repeat */
  double own[MF_BENCH_MAX_REPEATS];     /* cores this process used during each repeat */
  int clean;                            /* repeats with foreign <= threshold */
  double median;                        /* over the clean repeats, or all when none */
} mf_bench_timing;

typedef void (*mf_bench_step_fn)(void *user);

/* Times step (items_per_step items each, e.g. the batch size). MF_EINVAL for impossible
 * options (repeats + max_extra above MF_BENCH_MAX_REPEATS, ...). */
mf_status mf_bench_time(mf_bench_step_fn step, void *user, double items_per_step,
                        const mf_bench_timing_opts *o, mf_bench_timing *out);

/* ---- memory ---------------------------------------------------------------------------- */

/* Resets the peak RSS (VmHWM) to the current RSS; 0 when the kernel refused. */
int mf_bench_reset_peak_rss(void);
/* Current and peak RSS in MiB (either pointer may be NULL); MF_EIO when unreadable. */
mf_status mf_bench_rss(double *rss_mib, double *peak_mib);

/* ---- feature extraction ---------------------------------------------------------------- */

/* Computes the features of k tracks of n samples at once, track i on thread i, the way
 * extraction shares tracks among its threads (out[i] holds the layout of n samples). */
mf_status mf_bench_feature_tracks(const mf_feature *f, const float *const *tracks, int64_t n,
                                  float *const *out, int k);

/* ---- one architecture, inference then training ----------------------------------------- */

typedef struct mf_bench_config {
  int n_classes;       /* 10 */
  int train_batch;     /* 32 */
  int infer_batch;     /* 64 */
  int warmup;          /* 3 */
  int min_steps;       /* 20 training steps per repeat at least */
  int infer_min_steps; /* 10 inference batches per repeat at least */
  double min_seconds;  /* 1.0 */
  int repeats;         /* 3 */
  int max_extra;       /* 4 */
  double threshold;    /* 0.25 cores */
  double retry_wait_s; /* 30 */
  uint64_t data_seed;  /* 1234: inputs and labels */
} mf_bench_config;

mf_bench_config mf_bench_defaults(void);

typedef struct mf_bench_result {
  const mf_bench_arch *arch;
  int64_t params;   /* trainable scalars */
  int64_t fwd_macs; /* per sample (mf_bench_forward_macs) */
  mf_bench_timing infer, train;
  double rss_base_mib;       /* after model and inputs are built */
  double rss_peak_infer_mib; /* peak during inference; -1 when the peak could not be reset */
  double rss_peak_train_mib; /* peak during training (optimizer state included); -1 likewise */
  double rss_peak_process_mib;
  double cpu_time_s; /* user + system of this process so far */
  int threads;
} mf_bench_result;

/* Builds `a`, counts its MACs, then times inference (eval mode, no grad, infer_batch) and
 * training (forward, cross-entropy, backward, Adam lr 1e-3 with the architecture's weight
 * decay; train mode, train_batch), each phase with its own peak RSS. Inputs are standard
 * normal and labels uniform over the classes, both from stream MF_RNG_USER of data_seed;
 * dropout draws from the architecture seed's dropout stream. */
mf_status mf_bench_model_run(const mf_bench_arch *a, const mf_bench_config *cfg,
                             mf_bench_result *out);

#ifdef __cplusplus
}
#endif
#endif
