/* bench.c — the benchmark harness: reference architectures, MAC counting from the tape,
 * load-aware step timing, peak RSS per phase (see melforge/bench.h).
 *
 * Everything here mirrors ../../bench/torch/bench_models.py and loadmon.py so that their
 * numbers and ours mean the same thing: same architectures and seeds, same step sizing, same
 * definition of foreign load and of a clean repeat, same median. */
#include "melforge/bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "melforge/melforge.h"

/* ---- architectures ------------------------------------------------------------------------ */

/* bench_models.py's SmallCNN expressed in the cnn plugin's terms. */
// clang-format off
static const char *const SMALL_MFCC_CNN[] = {
    "filters={32, 48}", "convs_per_block=1", "order=conv-relu-pool-bn", "conv_bias=true",
    "dropout=0.35", "spatial_dropout=true", "head=flatten", "dense={64}",
    "dense_batchnorm=true", "head_dropout=0.7", NULL};

/* key, the script's name, plugin, input, settings, seed, weight decay, PyTorch's parameters */
static const mf_bench_arch ARCHS[] = {
    {"a", "MLP (MFCC-segment MLP), MFCC 130x13", "mlp",
     {2, {130, 13, 1, 1, 1, 1}}, NULL, 3, 0.0f, 1014218},
    {"b", "SmallCNN (small MFCC CNN), MFCC 1x130x13", "cnn",
     {3, {1, 130, 13, 1, 1, 1}}, SMALL_MFCC_CNN, 1, 0.0f, 310106},
    {"c", "CNN 3x[2conv] (mel CNN, GAP head), mel 1x128x130", "cnn",
     {3, {1, 128, 130, 1, 1, 1}}, NULL, 0, 1e-4f, 304682},
    {"d", "CNN-BiLSTM-attn (CNN + BiLSTM + attention), mel 1x128x130", "crnn",
     {3, {1, 128, 130, 1, 1, 1}}, NULL, 2, 0.0f, 2373290},
    {"e", "CNN-Transformer (CNN + Transformer encoder), mel 1x128x130", "cnn_transformer",
     {3, {1, 128, 130, 1, 1, 1}}, NULL, 4, 0.0f, 621418},
};
// clang-format on
#define N_ARCHS (int)(sizeof ARCHS / sizeof ARCHS[0])

int mf_bench_arch_count(void) { return N_ARCHS; }

const mf_bench_arch *mf_bench_arch_at(int i) { return i >= 0 && i < N_ARCHS ? &ARCHS[i] : NULL; }

const mf_bench_arch *mf_bench_arch_find(const char *key) {
  for (int i = 0; i < N_ARCHS; i++)
    if (!strcmp(key, ARCHS[i].key)) return &ARCHS[i];
  mf_set_error(MF_ENOTFOUND,
               "no benchmark architecture '%s'; the keys are a (mlp), b (small "
               "MFCC cnn), c (cnn), d (crnn), e (cnn_transformer)",
               key);
  return NULL;
}

mf_status mf_bench_model_new(const mf_bench_arch *a, int n_classes, mf_model **out) {
  *out = NULL;
  const mf_component *c = mf_component_find(MF_KIND_MODEL, a->model);
  if (!c)
    return mf_set_error(MF_ENOTFOUND, "benchmark %s needs the model plugin: %s", a->key,
                        mf_error());
  mf_values *v;
  mf_status st = mf_component_values(c, &v);
  if (st != MF_OK) return st;
  for (const char *const *s = a->sets; s && *s; s++)
    if ((st = mf_values_set_assignment(v, *s)) != MF_OK) {
      mf_values_free(v);
      return st;
    }
  mf_model_io io = {a->input, n_classes};
  mf_rng init = mf_rng_stream(a->seed, MF_RNG_INIT);
  st = mf_model_new(c, v, &io, &init, out);
  mf_values_free(v);
  return st;
}

static mf_shape batched(mf_shape s, int64_t n) {
  for (int k = s.ndim; k > 0; k--) s.d[k] = s.d[k - 1];
  s.d[0] = n;
  s.ndim++;
  return s;
}

/* The multiply-accumulates bench_models.py's forward hooks would attribute to this node. */
static int64_t node_macs(const mf_node *n) {
  const char *op = n->op;
  const mf_tensor *o = n->out;
  if (!strcmp(op, "conv2d")) {
    const mf_tensor *w = n->in[1]; /* [O, C / groups, KH, KW] */
    return o->numel * w->shape[1] * w->shape[2] * w->shape[3];
  }
  if (!strcmp(op, "linear")) return o->numel * n->in[1]->shape[1];
  if (!strcmp(op, "lstm") || !strcmp(op, "gru")) {
    const mf_tensor *x = n->in[0], *w_hh = n->in[2]; /* x [N, T, I], w_hh [gates * H, H] */
    return x->shape[0] * x->shape[1] * w_hh->shape[0] * (x->shape[2] + w_hh->shape[1]);
  }
  if (!strcmp(op, "self_attention")) {
    const mf_tensor *x = n->in[0]; /* [N, T, E] */
    const int64_t N = x->shape[0], T = x->shape[1], E = x->shape[2];
    return N * (4 * T * E * E + 2 * T * T * E);
  }
  if (!strcmp(op, "additive_attention_pool")) {
    const mf_tensor *h = n->in[0], *w = n->in[1]; /* h [N, T, D], w [A, D] */
    const int64_t NT = h->shape[0] * h->shape[1], A = w->shape[0];
    return NT * A * h->shape[2] + NT * A; /* W h_t, then v . tanh(...) */
  }
  return 0;
}

int64_t mf_bench_forward_macs(mf_model *m, int batch) {
  if (batch < 1) {
    mf_set_error(MF_EINVAL, "mf_bench_forward_macs: batch must be >= 1, got %d", batch);
    return -1;
  }
  mf_ctx *ctx = mf_ctx_new();
  if (!ctx) return -1;
  mf_ctx_set_grad_enabled(ctx, 1);
  mf_tensor *x = mf_ctx_zeros(ctx, batched(mf_model_get_io(m)->input, batch));
  mf_tensor *logits = mf_model_forward(m, ctx, x, 1);
  int64_t macs = -1;
  if (logits) {
    macs = 0;
    for (const mf_node *n = mf__tape_last(ctx); n; n = n->prev) macs += node_macs(n);
    macs /= batch;
  }
  mf_ctx_free(ctx);
  return macs;
}

/* ---- load monitor ------------------------------------------------------------------------- */

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void sleep_s(double s) {
  if (s <= 0) return;
  struct timespec t = {(time_t)s, (long)((s - floor(s)) * 1e9)};
  while (nanosleep(&t, &t) != 0) {
  }
}

/* CPU-seconds the whole machine was busy since boot: user nice system irq softirq (steal,
 * guest and idle/iowait left out, as loadmon.py). */
static double busy_s(void) {
  static double hz;
  if (!hz) hz = (double)sysconf(_SC_CLK_TCK);
  FILE *f = fopen("/proc/stat", "r");
  if (!f) return 0;
  unsigned long long v[7] = {0};
  int got = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
                   &v[5], &v[6]);
  fclose(f);
  if (got != 7) return 0;
  return (double)(v[0] + v[1] + v[2] + v[5] + v[6]) / hz;
}

static double tv(struct timeval t) { return (double)t.tv_sec + 1e-6 * (double)t.tv_usec; }

/* This process's CPU-seconds plus those of its waited-for children. */
static double own_s(void) {
  struct rusage a, b;
  getrusage(RUSAGE_SELF, &a);
  getrusage(RUSAGE_CHILDREN, &b);
  return tv(a.ru_utime) + tv(a.ru_stime) + tv(b.ru_utime) + tv(b.ru_stime);
}

void mf_loadmon_start(mf_loadmon *m) {
  m->t0 = now();
  m->busy0 = busy_s();
  m->own0 = own_s();
}

mf_load mf_loadmon_stop(const mf_loadmon *m) {
  mf_load l;
  l.wall = now() - m->t0;
  const double own = own_s() - m->own0, busy = busy_s() - m->busy0;
  l.own_cores = l.wall > 0 ? own / l.wall : 0;
  l.foreign_cores = l.wall > 0 ? fmax(0.0, (busy - own) / l.wall) : 0;
  return l;
}

double mf_foreign_now(double seconds) {
  mf_loadmon m;
  mf_loadmon_start(&m);
  sleep_s(seconds);
  return mf_loadmon_stop(&m).foreign_cores;
}

double mf_wait_quiet(double max_wait_s, double threshold, double probe_s, mf_bench_log_fn log,
                     void *user) {
  const double end = now() + max_wait_s;
  char msg[128];
  for (;;) {
    const double f = mf_foreign_now(probe_s);
    if (f < threshold || now() >= end) {
      if (log) {
        snprintf(msg, sizeof msg, "foreign load %.2f cores%s", f,
                 f < threshold ? "" : " (gave up waiting)");
        log(msg, user);
      }
      return f;
    }
    if (log) {
      snprintf(msg, sizeof msg, "foreign load %.2f cores, waiting...", f);
      log(msg, user);
    }
    sleep_s(10);
  }
}

/* ---- timing ------------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Python's statistics.median: the mean of the two middle values for an even count. */
static double median(const double *v, int n) {
  double s[MF_BENCH_MAX_REPEATS];
  memcpy(s, v, (size_t)n * sizeof *s);
  qsort(s, (size_t)n, sizeof *s, cmp_double);
  return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

mf_status mf_bench_time(mf_bench_step_fn step, void *user, double items_per_step,
                        const mf_bench_timing_opts *o, mf_bench_timing *out) {
  memset(out, 0, sizeof *out);
  if (o->repeats < 1 || o->max_extra < 0 || o->repeats + o->max_extra > MF_BENCH_MAX_REPEATS ||
      o->warmup < 0 || o->min_steps < 1 || !(o->min_seconds >= 0) || !(items_per_step > 0))
    return mf_set_error(MF_EINVAL,
                        "bench timing: need repeats >= 1, max_extra >= 0 with repeats + "
                        "max_extra <= %d, warmup >= 0, min_steps >= 1, min_seconds >= 0 "
                        "(got %d, %d, %d, %d, %g)",
                        MF_BENCH_MAX_REPEATS, o->repeats, o->max_extra, o->warmup, o->min_steps,
                        o->min_seconds);
  for (int i = 0; i < o->warmup; i++) step(user);
  /* Size one repeat from one timed step: at least min_steps, and at least min_seconds. */
  double t0 = now();
  step(user);
  const double want = o->min_seconds / fmax(now() - t0, 1e-6);
  const double sized = o->floor_steps ? floor(want) : ceil(want);
  out->steps_per_repeat =
      sized > o->min_steps ? (sized < 1e9 ? (int)sized : 1000000000) : o->min_steps;
  double clean[MF_BENCH_MAX_REPEATS];
  int attempts = 0;
  while (out->clean < o->repeats && attempts < o->repeats + o->max_extra) {
    if (attempts >= o->repeats) {
      mf_wait_quiet(o->retry_wait_s, o->threshold / 2, 1.0, NULL, NULL);
      step(user); /* re-warm after waiting */
    }
    attempts++;
    mf_loadmon lm;
    mf_loadmon_start(&lm);
    t0 = now();
    for (int i = 0; i < out->steps_per_repeat; i++) step(user);
    const double dt = now() - t0;
    const mf_load l = mf_loadmon_stop(&lm);
    const double r = out->steps_per_repeat * items_per_step / dt;
    out->rate[out->n] = r;
    out->foreign[out->n] = l.foreign_cores;
    out->own[out->n] = l.own_cores;
    out->n++;
    if (l.foreign_cores <= o->threshold) clean[out->clean++] = r;
  }
  out->median = out->clean ? median(clean, out->clean) : median(out->rate, out->n);
  return MF_OK;
}

/* ---- memory ------------------------------------------------------------------------------- */

int mf_bench_reset_peak_rss(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (!f) return 0;
  const int ok = fputs("5", f) >= 0;
  return fclose(f) == 0 && ok;
}

mf_status mf_bench_rss(double *rss_mib, double *peak_mib) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f)
    return mf_set_error(MF_EIO,
                        "cannot read /proc/self/status (memory is measured on "
                        "Linux only)");
  char line[256];
  int found = 0;
  while (fgets(line, sizeof line, f)) {
    long kb;
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) {
      if (rss_mib) *rss_mib = kb / 1024.0;
      found |= 1;
    } else if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) {
      if (peak_mib) *peak_mib = kb / 1024.0;
      found |= 2;
    }
  }
  fclose(f);
  return found == 3 ? MF_OK
                    : mf_set_error(MF_EFORMAT, "/proc/self/status has no VmRSS / VmHWM lines");
}

/* ---- feature extraction ------------------------------------------------------------------ */

mf_status mf_bench_feature_tracks(const mf_feature *f, const float *const *tracks, int64_t n,
                                  float *const *out, int k) {
  mf_status first = MF_OK;
  char msg[512] = "";
#pragma omp parallel for num_threads(k) schedule(static, 1)
  for (int t = 0; t < k; t++) {
    const mf_status st = mf_feature_compute(f, tracks[t], n, out[t]);
    if (st != MF_OK) {
#pragma omp critical(mf_bench_feature_error)
      if (first == MF_OK) {
        first = st;
        snprintf(msg, sizeof msg, "%s", mf_error()); /* messages are per thread */
      }
    }
  }
  return first == MF_OK ? MF_OK : mf_set_error(first, "%s", msg);
}

/* ---- one architecture --------------------------------------------------------------------- */

mf_bench_config mf_bench_defaults(void) {
  return (mf_bench_config){.n_classes = 10,
                           .train_batch = 32,
                           .infer_batch = 64,
                           .warmup = 3,
                           .min_steps = 20,
                           .infer_min_steps = 10,
                           .min_seconds = 1.0,
                           .repeats = 3,
                           .max_extra = 4,
                           .threshold = 0.25,
                           .retry_wait_s = 30,
                           .data_seed = 1234};
}

typedef struct step_state {
  mf_model *model;
  mf_ctx *ctx;
  mf_tensor *x;
  const int32_t *y;
  mf_optim *opt;
  mf_status failed; /* first failure; later steps do nothing */
  char error[512];
} step_state;

static void fail(step_state *s, mf_status st, const char *what) {
  s->failed = st ? st : MF_ESTATE;
  snprintf(s->error, sizeof s->error, "%s: %s", what, mf_error());
}

static void infer_step(void *user) {
  step_state *s = user;
  if (s->failed) return;
  mf_ctx_reset(s->ctx);
  if (!mf_model_forward(s->model, s->ctx, s->x, 0)) fail(s, MF_ESTATE, "inference forward");
}

static void train_step(void *user) {
  step_state *s = user;
  if (s->failed) return;
  mf_ctx_reset(s->ctx);
  mf_params_zero_grad(mf_model_params(s->model));
  mf_tensor *logits = mf_model_forward(s->model, s->ctx, s->x, 1);
  if (!logits) {
    fail(s, MF_ESTATE, "training forward");
    return;
  }
  mf_tensor *loss = mf_cross_entropy(s->ctx, logits, s->y, 0.0f);
  mf_status st = mf_backward(s->ctx, loss);
  if (st != MF_OK) {
    fail(s, st, "backward");
    return;
  }
  mf_optim_step(s->opt);
}

static mf_bench_timing_opts timing_opts(const mf_bench_config *c, int min_steps) {
  return (mf_bench_timing_opts){c->warmup,  min_steps,    c->min_seconds, 0,
                                c->repeats, c->max_extra, c->threshold,   c->retry_wait_s};
}

mf_status mf_bench_model_run(const mf_bench_arch *a, const mf_bench_config *cfg,
                             mf_bench_result *out) {
  memset(out, 0, sizeof *out);
  out->arch = a;
  out->threads = mf_num_threads();
  if (cfg->train_batch < 1 || cfg->infer_batch < 1 || cfg->n_classes < 2)
    return mf_set_error(MF_EINVAL, "bench: batches must be >= 1 and classes >= 2");
  mf_model *m = NULL;
  mf_ctx *ctx = NULL;
  mf_optim *opt = NULL;
  mf_tensor *xtr = NULL, *xin = NULL;
  int32_t *ytr = NULL;
  mf_status st = mf_bench_model_new(a, cfg->n_classes, &m);
  if (st != MF_OK) goto done;
  mf_params *ps = mf_model_params(m);
  out->params = mf_params_count_trainable(ps);
  out->fwd_macs = mf_bench_forward_macs(m, 2);
  if (out->fwd_macs < 0) {
    st = MF_ESTATE;
    goto done;
  }

  mf_rng data = mf_rng_stream(cfg->data_seed, MF_RNG_USER);
  xtr = mf_tensor_new(batched(a->input, cfg->train_batch));
  ytr = malloc(sizeof *ytr * (size_t)cfg->train_batch);
  xin = mf_tensor_new(batched(a->input, cfg->infer_batch));
  if (!xtr || !ytr || !xin) {
    st = mf_set_error(MF_ENOMEM, "bench %s: out of memory for the input batches", a->key);
    goto done;
  }
  mf_rng_fill_normal(&data, xtr->data, xtr->numel, 0.0f, 1.0f);
  for (int i = 0; i < cfg->train_batch; i++)
    ytr[i] = (int32_t)mf_rng_below(&data, (uint32_t)cfg->n_classes);
  mf_rng_fill_normal(&data, xin->data, xin->numel, 0.0f, 1.0f);
  if ((st = mf_bench_rss(&out->rss_base_mib, NULL)) != MF_OK) goto done;

  /* Inference first, with its own peak; its context is gone before training starts. */
  double peak;
  const int reset_ok = mf_bench_reset_peak_rss();
  if (!(ctx = mf_ctx_new())) {
    st = MF_ENOMEM;
    goto done;
  }
  mf_ctx_set_grad_enabled(ctx, 0);
  step_state s = {m, ctx, xin, NULL, NULL, MF_OK, ""};
  mf_bench_timing_opts o = timing_opts(cfg, cfg->infer_min_steps);
  if ((st = mf_bench_time(infer_step, &s, cfg->infer_batch, &o, &out->infer)) != MF_OK) goto done;
  if (s.failed) {
    st = mf_set_error(s.failed, "bench %s: %s", a->key, s.error);
    goto done;
  }
  if ((st = mf_bench_rss(NULL, &peak)) != MF_OK) goto done;
  out->rss_peak_infer_mib = reset_ok ? peak : -1;
  mf_ctx_free(ctx);

  /* Training. The optimizer is made here: PyTorch's Adam allocates its state at the first
   * step, so it counts in the training peak only, on both sides. */
  mf_bench_reset_peak_rss();
  if (!(ctx = mf_ctx_new())) {
    st = MF_ENOMEM;
    goto done;
  }
  mf_rng drop = mf_rng_stream(a->seed, MF_RNG_DROPOUT);
  mf_ctx_set_dropout_rng(ctx, &drop);
  mf_optim_config oc = mf_optim_defaults(MF_OPTIM_ADAM);
  oc.lr = 1e-3f;
  oc.weight_decay = a->weight_decay;
  if (!(opt = mf_optim_new(ps, &oc))) {
    st = MF_EINVAL;
    goto done;
  }
  s = (step_state){m, ctx, xtr, ytr, opt, MF_OK, ""};
  o = timing_opts(cfg, cfg->min_steps);
  if ((st = mf_bench_time(train_step, &s, cfg->train_batch, &o, &out->train)) != MF_OK) goto done;
  if (s.failed) {
    st = mf_set_error(s.failed, "bench %s: %s", a->key, s.error);
    goto done;
  }
  if ((st = mf_bench_rss(NULL, &peak)) != MF_OK) goto done;
  out->rss_peak_train_mib = reset_ok ? peak : -1;

  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  out->rss_peak_process_mib = (double)ru.ru_maxrss / 1024.0;
  out->cpu_time_s = tv(ru.ru_utime) + tv(ru.ru_stime);
done:
  mf_optim_free(opt);
  mf_ctx_free(ctx);
  mf_tensor_free(xtr);
  mf_tensor_free(xin);
  free(ytr);
  mf_model_free(m);
  return st;
}
