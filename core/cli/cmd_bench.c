/* cmd_bench.c — `melforge bench [MODEL...]` and `melforge bench features`: throughput and
 * peak memory of the reference architectures, and feature extraction speed, measured the way
 * the PyTorch baselines in bench/torch/ measure them so the two compare one to one.
 *
 * Each model runs in a child process of its own (this binary re-executed with the hidden
 * option --child KEY), so its peak RSS is not mixed with the others'; the child prints one
 * "JSON {...}" line, the parent adds the wall time and collects the rows. */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "melforge/bench.h"
#include "melforge/component.h"
#include "melforge/melforge.h"
#include "progress.h"

#define CMD "bench"
#define DEFAULT_THREADS 2
#define FEATURE_RATE 22050
#define FEATURE_SECONDS 30
#define JSON_FLAGS (JSON_REAL_PRECISION(12))

static void usage(FILE *f) {
  fprintf(
      f,
      "usage: melforge bench [MODEL...] [--threads N] [--min-seconds S] [--repeats N]\n"
      "                      [--wait-quiet S] [--json FILE] [--quick]\n"
      "       melforge bench features [--threads N] [--seconds S] [--json FILE] [--quick]\n"
      "\n"
      "Training and inference throughput and peak memory of the reference architectures,\n"
      "measured as bench/torch/bench_models.py measures PyTorch (bench/README.md):\n"
      "  a  mlp on MFCC [130, 13]             b  small MFCC cnn on [1, 130, 13]\n"
      "  c  cnn on log-mel [1, 128, 130]      d  crnn (CNN + BiLSTM + attention), [1, 128, 130]\n"
      "  e  cnn_transformer on [1, 128, 130]  (10 classes; MODEL is a key or a list a,b,...;\n"
      "                                        default: all)\n"
      "Training = forward + cross-entropy + backward + Adam step, batch 32, train mode;\n"
      "inference = forward, batch 64, eval mode, no grad. Each model runs in its own process.\n"
      "A repeat during which other processes used more than 0.25 cores is retried (after\n"
      "waiting up to 30 s for quiet) and left out of the median.\n"
      "\n"
      "`bench features`: log-mel (melspec) and MFCC-13 (mfcc) of 30 s tracks at 22050 Hz,\n"
      "tracks per second with 1 and N threads (N tracks at once, as extraction runs).\n"
      "\n"
      "  --threads N          threads (default %d, like the PyTorch script; MELFORGE_THREADS\n"
      "                       is not used here)\n"
      "  --min-seconds S      each repeat lasts at least S seconds (default 1)\n"
      "  --repeats N          clean repeats wanted (default 3)\n"
      "  --max-extra N        retries of disturbed repeats (default 4)\n"
      "  --wait-quiet S       first wait up to S seconds for other processes to go idle\n"
      "                       (default 0)\n"
      "  --json FILE          also write the results as JSON (the PyTorch script's schema)\n"
      "  --quick              one short repeat, no retries: checks that it runs, nothing more\n"
      "  --seconds S          features: each repeat lasts at least S seconds (default 1.5)\n"
      "advanced (defaults as the PyTorch script): --warmup N (3), --min-steps N (20 training\n"
      "steps per repeat at least), --infer-min-steps N (10), --train-batch N (32),\n"
      "--infer-batch N (64), --retry-wait S (30)\n",
      DEFAULT_THREADS);
}

/* ---- options --------------------------------------------------------------------------- */

typedef struct options {
  int warmup, min_steps, infer_min_steps, repeats, max_extra, train_batch, infer_batch;
  double min_seconds, retry_wait, wait_quiet, seconds;
  const char *json, *child;
  int quick;
} options;

typedef struct option_spec {
  const char *name;
  int is_int; /* else real */
  double lo, hi;
  size_t offset;
} option_spec;

static const option_spec OPTIONS[] = {
    {"--warmup", 1, 0, 1000, offsetof(options, warmup)},
    {"--min-steps", 1, 1, 1e6, offsetof(options, min_steps)},
    {"--infer-min-steps", 1, 1, 1e6, offsetof(options, infer_min_steps)},
    {"--repeats", 1, 1, 16, offsetof(options, repeats)},
    {"--max-extra", 1, 0, 32, offsetof(options, max_extra)},
    {"--train-batch", 1, 1, 4096, offsetof(options, train_batch)},
    {"--infer-batch", 1, 1, 4096, offsetof(options, infer_batch)},
    {"--min-seconds", 0, 0, 3600, offsetof(options, min_seconds)},
    {"--retry-wait", 0, 0, 3600, offsetof(options, retry_wait)},
    {"--wait-quiet", 0, 0, 86400, offsetof(options, wait_quiet)},
    {"--seconds", 0, 0, 3600, offsetof(options, seconds)},
};
#define N_OPTIONS (int)(sizeof OPTIONS / sizeof OPTIONS[0])

static int parse_number(const option_spec *o, const char *v, options *out) {
  char *end;
  errno = 0;
  const double x = o->is_int ? (double)strtol(v, &end, 10) : strtod(v, &end);
  if (!*v || *end || errno || !isfinite(x) || x < o->lo || x > o->hi) {
    cli_error(CMD, "%s expects %s from %g to %g, got '%s'", o->name,
              o->is_int ? "a whole number" : "a number", o->lo, o->hi, v);
    return MF_EXIT_USAGE;
  }
  char *p = (char *)out + o->offset;
  if (o->is_int)
    *(int *)p = (int)x;
  else
    *(double *)p = x;
  return 0;
}

/* Unset options are -1; --quick fills those it concerns, the PyTorch defaults the rest. */
static void fill_defaults(options *o) {
  const mf_bench_config d = mf_bench_defaults();
#define DEF(field, quick_value, normal_value) \
  if (o->field < 0) o->field = o->quick ? (quick_value) : (normal_value)
  DEF(warmup, 1, d.warmup);
  DEF(min_steps, 2, d.min_steps);
  DEF(infer_min_steps, 2, d.infer_min_steps);
  DEF(repeats, 1, d.repeats);
  DEF(max_extra, 0, d.max_extra);
  DEF(train_batch, d.train_batch, d.train_batch);
  DEF(infer_batch, d.infer_batch, d.infer_batch);
  DEF(min_seconds, 0.0, d.min_seconds);
  DEF(retry_wait, 0.0, d.retry_wait_s);
  DEF(wait_quiet, 0.0, 0.0);
  DEF(seconds, 0.0, 1.5);
#undef DEF
}

static mf_bench_config config_of(const options *o) {
  mf_bench_config c = mf_bench_defaults();
  c.warmup = o->warmup;
  c.min_steps = o->min_steps;
  c.infer_min_steps = o->infer_min_steps;
  c.repeats = o->repeats;
  c.max_extra = o->max_extra;
  c.train_batch = o->train_batch;
  c.infer_batch = o->infer_batch;
  c.min_seconds = o->min_seconds;
  c.retry_wait_s = o->retry_wait;
  return c;
}

/* ---- JSON helpers ------------------------------------------------------------------------ */

static json_t *rounded(double x, int digits) {
  const double s = pow(10.0, digits);
  return json_real(round(x * s) / s);
}

static json_t *rounded_list(const double *v, int n, int digits) {
  json_t *a = json_array();
  for (int i = 0; i < n; i++) json_array_append_new(a, rounded(v[i], digits));
  return a;
}

static json_t *env_or_null(const char *name) {
  const char *v = getenv(name);
  return v ? json_string(v) : json_null();
}

static json_t *loadavg(void) {
  json_t *a = json_array();
  FILE *f = fopen("/proc/loadavg", "r");
  char w[3][32];
  if (f && fscanf(f, "%31s %31s %31s", w[0], w[1], w[2]) == 3)
    for (int i = 0; i < 3; i++) json_array_append_new(a, json_string(w[i]));
  if (f) fclose(f);
  return a;
}

static json_t *cpu_model(void) {
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return json_null();
  char line[512];
  json_t *r = json_null();
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10)) continue;
    char *v = strchr(line, ':');
    if (!v) continue;
    v += 1 + (v[1] == ' ');
    v[strcspn(v, "\n")] = 0;
    r = json_string(v);
    break;
  }
  fclose(f);
  return r;
}

/* What every JSON file of this command records about the machine and the build. */
static json_t *meta_common(void) {
  json_t *env = json_object();
  static const char *const VARS[] = {"OPENBLAS_CORETYPE",    "OPENBLAS_L2_SIZE",
                                     "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                     "OMP_WAIT_POLICY",      "MELFORGE_THREADS"};
  for (size_t i = 0; i < sizeof VARS / sizeof VARS[0]; i++)
    json_object_set_new(env, VARS[i], env_or_null(VARS[i]));
  return json_pack("{s:s, s:i, s:s, s:s, s:o, s:o, s:o}", "melforge", mf_version(), "threads",
                   mf_num_threads(), "blas_corename", mf_blas_corename(), "blas_config",
                   mf_blas_config(), "cpu_model", cpu_model(), "env", env, "loadavg_start",
                   loadavg());
}

static int write_json(json_t *root, const char *path) {
  if (json_dump_file(root, path, JSON_INDENT(1) | JSON_FLAGS) != 0) {
    cli_error(CMD, "cannot write %s: %s (check that its folder exists and is writable)", path,
              strerror(errno));
    return MF_EXIT_FAIL;
  }
  return 0;
}

static const char *env_text(const char *name) {
  const char *v = getenv(name);
  return v ? v : "(unset)";
}

static void log_stderr(const char *msg, void *user) {
  (void)user;
  fprintf(stderr, "  %s\n", msg);
}

/* ---- one model, in the child ------------------------------------------------------------- */

static json_t *timing_fields(json_t *row, const char *phase, const mf_bench_timing *t, int batch,
                             double gflops) {
  char k[64];
#define KEY(suffix) (snprintf(k, sizeof k, "%s_%s", phase, suffix), k)
  json_object_set_new(row, KEY("batch"), json_integer(batch));
  json_object_set_new(row, KEY("steps_per_repeat"), json_integer(t->steps_per_repeat));
  json_object_set_new(row, KEY("samples_per_s"), rounded(t->median, 1));
  json_object_set_new(row, KEY("samples_per_s_repeats"), rounded_list(t->rate, t->n, 1));
  json_object_set_new(row, KEY("gflops_est"), rounded(gflops, 1));
  json_object_set_new(row, KEY("foreign_cores"), rounded_list(t->foreign, t->n, 2));
  json_object_set_new(row, KEY("clean_repeats"), json_integer(t->clean));
  json_object_set_new(row, KEY("own_cores"), rounded_list(t->own, t->n, 2));
#undef KEY
  return row;
}

static json_t *mib_or_null(double x) { return x < 0 ? json_null() : rounded(x, 1); }

static json_t *result_json(const mf_bench_result *r, const mf_bench_config *c) {
  const mf_bench_arch *a = r->arch;
  json_t *shape = json_array();
  for (int i = 0; i < a->input.ndim; i++) json_array_append_new(shape, json_integer(a->input.d[i]));
  json_t *row = json_pack(
      "{s:s, s:s, s:s, s:I, s:o, s:I, s:I, s:o, s:s}", "key", a->key, "name", a->name, "model",
      a->model, "seed", (json_int_t)a->seed, "input_shape", shape, "params", (json_int_t)r->params,
      "params_pytorch", (json_int_t)a->torch_params, "fwd_mmacs_per_sample",
      rounded((double)r->fwd_macs / 1e6, 2), "fwd_macs_source", "counted from the forward tape");
  json_object_set_new(row, "fwd_macs_per_sample", json_integer((json_int_t)r->fwd_macs));
  const double macs = (double)r->fwd_macs;
  timing_fields(row, "train", &r->train, c->train_batch, 3 * 2 * macs * r->train.median / 1e9);
  timing_fields(row, "infer", &r->infer, c->infer_batch, 2 * macs * r->infer.median / 1e9);
  json_object_set_new(row, "rss_base_mib", rounded(r->rss_base_mib, 1));
  json_object_set_new(row, "rss_peak_infer_mib", mib_or_null(r->rss_peak_infer_mib));
  json_object_set_new(row, "rss_peak_train_mib", mib_or_null(r->rss_peak_train_mib));
  json_object_set_new(row, "rss_peak_process_mib", rounded(r->rss_peak_process_mib, 1));
  json_object_set_new(row, "threads", json_integer(r->threads));
  json_object_set_new(row, "cpu_time_s", rounded(r->cpu_time_s, 1));
  return row;
}

static int run_child(const char *key, const options *o) {
  const mf_bench_arch *a = mf_bench_arch_find(key);
  if (!a) {
    cli_error(CMD, "%s", mf_error());
    return MF_EXIT_USAGE;
  }
  const mf_bench_config c = config_of(o);
  mf_bench_result r;
  if (mf_bench_model_run(a, &c, &r) != MF_OK) {
    cli_error(CMD, "model %s (%s): %s", a->key, a->model, mf_error());
    return MF_EXIT_FAIL;
  }
  json_t *row = result_json(&r, &c);
  char *s = json_dumps(row, JSON_COMPACT | JSON_FLAGS);
  printf("JSON %s\n", s);
  free(s);
  json_decref(row);
  return fflush(stdout) == 0 ? MF_EXIT_OK : MF_EXIT_FAIL;
}

/* ---- the parent: one child per model ------------------------------------------------------- */

/* Runs this binary as `bench --child KEY ...`; returns its row (NULL after a message). */
static json_t *spawn_child(const char *key, const options *o, const cli_common *common) {
  char buf[11][32];
  int nb = 0;
#define NUM(fmt, x) (snprintf(buf[nb], sizeof buf[nb], fmt, x), buf[nb++])
  const char *args[40];
  int na = 0;
  args[na++] = "melforge";
  args[na++] = CMD;
  args[na++] = "--child";
  args[na++] = key;
  args[na++] = "--threads";
  args[na++] = NUM("%d", mf_num_threads());
  args[na++] = "--warmup";
  args[na++] = NUM("%d", o->warmup);
  args[na++] = "--min-steps";
  args[na++] = NUM("%d", o->min_steps);
  args[na++] = "--infer-min-steps";
  args[na++] = NUM("%d", o->infer_min_steps);
  args[na++] = "--repeats";
  args[na++] = NUM("%d", o->repeats);
  args[na++] = "--max-extra";
  args[na++] = NUM("%d", o->max_extra);
  args[na++] = "--train-batch";
  args[na++] = NUM("%d", o->train_batch);
  args[na++] = "--infer-batch";
  args[na++] = NUM("%d", o->infer_batch);
  args[na++] = "--min-seconds";
  args[na++] = NUM("%.17g", o->min_seconds);
  args[na++] = "--retry-wait";
  args[na++] = NUM("%.17g", o->retry_wait);
  if (common->plugin_path) {
    args[na++] = "--plugin-path";
    args[na++] = common->plugin_path;
  }
  args[na] = NULL;
#undef NUM
  int fd[2];
  if (pipe(fd) != 0) {
    cli_error(CMD, "cannot make a pipe for the child process: %s", strerror(errno));
    return NULL;
  }
  fflush(stdout);
  fflush(stderr);
  const pid_t pid = fork();
  if (pid < 0) {
    cli_error(CMD, "cannot start a child process: %s", strerror(errno));
    close(fd[0]);
    close(fd[1]);
    return NULL;
  }
  if (pid == 0) {
    dup2(fd[1], STDOUT_FILENO);
    close(fd[0]);
    close(fd[1]);
    execv("/proc/self/exe", (char *const *)args);
    fprintf(stderr, "melforge bench: cannot re-execute /proc/self/exe: %s\n", strerror(errno));
    _exit(MF_EXIT_FAIL);
  }
  close(fd[1]);
  FILE *in = fdopen(fd[0], "r");
  char *line = NULL, *row_text = NULL;
  size_t cap = 0;
  while (in && getline(&line, &cap, in) >= 0)
    if (!strncmp(line, "JSON ", 5)) {
      free(row_text);
      row_text = strdup(line + 5);
    } else {
      fputs(line, stdout); /* anything else the child printed */
    }
  free(line);
  if (in)
    fclose(in);
  else
    close(fd[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  json_t *row = NULL;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !row_text) {
    if (WIFSIGNALED(status))
      cli_error(CMD, "model %s: the child process died of signal %d", key, WTERMSIG(status));
    else
      cli_error(CMD, "model %s: the child process failed (exit %d; its message is above)", key,
                WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  } else {
    json_error_t err;
    row = json_loads(row_text, 0, &err);
    if (!row) cli_error(CMD, "model %s: unreadable result from the child: %s", key, err.text);
  }
  free(row_text);
  return row;
}

static double num(json_t *row, const char *k) {
  json_t *v = json_object_get(row, k);
  return json_is_number(v) ? json_number_value(v) : 0;
}

/* The two foreign-load figures of a phase: their median, "0.12". */
static double median_of(json_t *arr) {
  double v[MF_BENCH_MAX_REPEATS];
  int n = 0;
  size_t i;
  json_t *x;
  json_array_foreach(arr, i, x) if (n < MF_BENCH_MAX_REPEATS) v[n++] = json_number_value(x);
  for (int a = 1; a < n; a++)
    for (int b = a; b > 0 && v[b - 1] > v[b]; b--) {
      const double t = v[b];
      v[b] = v[b - 1];
      v[b - 1] = t;
    }
  return n == 0 ? 0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void print_table(json_t *rows, int threads, int repeats) {
  printf("melforge %s, threads=%d, BLAS %s, env OPENBLAS_CORETYPE=%s\n", mf_version(), threads,
         mf_blas_corename(), env_text("OPENBLAS_CORETYPE"));
  char hdr[256];
  snprintf(hdr, sizeof hdr, "%-3s %-44s %10s %9s %10s %8s %10s %8s %8s %8s %8s %6s %9s", "",
           "model", "params", "fwdMMAC", "train/s", "trGF/s", "infer/s", "inGF/s", "RSSbase",
           "RSSinf", "RSStrn", "clean", "foreign");
  printf("%s\n", hdr);
  for (size_t i = 0; i < strlen(hdr); i++) putchar('-');
  putchar('\n');
  size_t i;
  json_t *r;
  json_array_foreach(rows, i, r) {
    char clean[32], foreign[32];
    snprintf(clean, sizeof clean, "%d/%d", (int)num(r, "train_clean_repeats"),
             (int)num(r, "infer_clean_repeats"));
    snprintf(foreign, sizeof foreign, "%.2f/%.2f",
             median_of(json_object_get(r, "train_foreign_cores")),
             median_of(json_object_get(r, "infer_foreign_cores")));
    printf("%-3s %-44s %10.0f %9.1f %10.1f %8.1f %10.1f %8.1f %8.0f %8.0f %8.0f %6s %9s\n",
           json_string_value(json_object_get(r, "key")),
           json_string_value(json_object_get(r, "name")), num(r, "params"),
           num(r, "fwd_mmacs_per_sample"), num(r, "train_samples_per_s"),
           num(r, "train_gflops_est"), num(r, "infer_samples_per_s"), num(r, "infer_gflops_est"),
           num(r, "rss_base_mib"), num(r, "rss_peak_infer_mib"), num(r, "rss_peak_train_mib"),
           clean, foreign);
  }
  printf(
      "train/infer = median samples/s of %d repeat%s; GF/s estimated as (3x|1x) * 2 * fwd MACs "
      "* rate; RSS in MiB;\nclean = train/infer repeats (of %d wanted) during which other "
      "processes used <= 0.25 cores; the median is over clean repeats only (over all if none "
      "was clean);\nforeign = median cores other processes used during the train/infer "
      "repeats\n",
      repeats, repeats == 1 ? "" : "s", repeats);
}

static int run_models(const char *const *keys, int n_keys, const options *o,
                      const cli_common *common) {
  /* As the PyTorch script: one 2 s probe of the load at least (shorter for --quick). */
  const double f0 = mf_wait_quiet(o->wait_quiet, 0.15, o->quick ? 0.2 : 2.0, log_stderr, NULL);
  json_t *meta = meta_common();
  json_object_set_new(meta, "foreign_cores_at_start", rounded(f0, 2));
  json_object_set_new(
      meta, "settings",
      json_pack("{s:i, s:i, s:i, s:i, s:i, s:f, s:i, s:i, s:f, s:f, s:i}", "train_batch",
                o->train_batch, "infer_batch", o->infer_batch, "warmup", o->warmup, "min_steps",
                o->min_steps, "infer_min_steps", o->infer_min_steps, "min_seconds", o->min_seconds,
                "repeats", o->repeats, "max_extra", o->max_extra, "retry_wait_s", o->retry_wait,
                "threshold_cores", 0.25, "quick", o->quick));
  json_t *rows = json_array();
  const double t_all = cli_now();
  int rc = MF_EXIT_OK;
  for (int i = 0; i < n_keys; i++) {
    const mf_bench_arch *a = mf_bench_arch_find(keys[i]);
    fprintf(stderr, "  [%s] %s ...\n", a->key, a->name);
    const double t0 = cli_now();
    json_t *row = spawn_child(a->key, o, common);
    if (!row) {
      rc = MF_EXIT_FAIL;
      break;
    }
    json_object_set_new(row, "wall_s", rounded(cli_now() - t0, 1));
    json_t *la = loadavg();
    fprintf(stderr, "  [%s] done in %.0f s (load %s %s %s)\n", a->key, cli_now() - t0,
            json_string_value(json_array_get(la, 0)), json_string_value(json_array_get(la, 1)),
            json_string_value(json_array_get(la, 2)));
    json_object_set_new(row, "loadavg_after", la);
    json_array_append_new(rows, row);
  }
  json_object_set_new(meta, "total_wall_s", rounded(cli_now() - t_all, 1));
  if (json_array_size(rows)) print_table(rows, mf_num_threads(), o->repeats);
  if (o->json && json_array_size(rows)) {
    json_t *root = json_pack("{s:o, s:o}", "meta", meta, "rows", rows);
    if (write_json(root, o->json)) rc = MF_EXIT_FAIL;
    json_decref(root);
  } else {
    json_decref(meta);
    json_decref(rows);
  }
  return rc;
}

/* ---- features ------------------------------------------------------------------------------ */

/* bench_features.py's make_track: six partials with a 0.5 Hz tremolo over noise, peak 1. The
 * noise comes from melforge's RNG instead of numpy's (the spectrum's cost does not care). */
static void make_track(float *y, int64_t n, uint64_t seed) {
  mf_rng r = mf_rng_stream(seed, MF_RNG_USER);
  double *x = malloc((size_t)n * sizeof *x), peak = 0;
  static const double F[] = {110.0, 220.0, 440.0, 880.0, 1760.0, 3520.0};
  for (int64_t i = 0; i < n; i++) {
    const double t = (double)i / FEATURE_RATE;
    x[i] = 0.1 * mf_rng_normal(&r);
    for (int k = 0; k < 6; k++)
      x[i] += 0.2 * sin(2 * M_PI * F[k] * t) * (1 + sin(2 * M_PI * 0.5 * t));
    peak = fmax(peak, fabs(x[i]));
  }
  for (int64_t i = 0; i < n; i++) y[i] = (float)(x[i] / peak);
  free(x);
}

typedef struct feature_job {
  const mf_feature *f;
  float **tracks, **out;
  int64_t n;
  int threads;
  int failed;
} feature_job;

static void feature_step(void *user) {
  feature_job *j = user;
  if (!j->failed)
    j->failed = mf_bench_feature_tracks(j->f, (const float *const *)j->tracks, j->n, j->out,
                                        j->threads) != MF_OK;
}

static int run_features(const options *o, const cli_common *common, int max_threads) {
  cli_load_plugins(common);
  static const char *const PLUGINS[] = {"melspec", "mfcc"}, *const LABELS[] = {"logmel", "mfcc13"};
  mf_feature *fs[2] = {NULL, NULL};
  int rc = MF_EXIT_OK;
  const int64_t n = (int64_t)FEATURE_RATE * FEATURE_SECONDS;
  float *tracks[64] = {0}, *outs[64] = {0};
  json_t *rows = json_array(), *meta = meta_common(), *params = json_object();
  for (int k = 0; k < 2; k++) {
    const mf_component *c = mf_component_find(MF_KIND_FEATURE, PLUGINS[k]);
    if (!c || mf_feature_new(c, NULL, FEATURE_RATE, &fs[k]) != MF_OK) {
      cli_error(CMD, "feature %s: %s (see melforge plugins)", PLUGINS[k], mf_error());
      rc = MF_EXIT_FAIL;
      goto done;
    }
    char *js = mf_values_to_json(mf_feature_values(fs[k]));
    json_object_set_new(params, PLUGINS[k], json_loads(js, 0, NULL));
    free(js);
  }
  for (int t = 0; t < max_threads; t++) {
    tracks[t] = malloc((size_t)n * sizeof(float));
    if (!tracks[t]) {
      cli_error(CMD, "out of memory for the test tracks");
      rc = MF_EXIT_FAIL;
      goto done;
    }
    make_track(tracks[t], n, (uint64_t)t);
  }
  int64_t frames = 0;
  const mf_bench_timing_opts to = {
      o->quick ? 1 : 2, o->quick ? 1 : 3, o->seconds, 1,
      o->repeats,       o->max_extra,     0.25,       o->quick ? 0 : 20};
  const int thread_counts[2] = {1, max_threads};
  for (int ti = 0; ti < (max_threads > 1 ? 2 : 1); ti++) {
    const int threads = thread_counts[ti];
    mf_set_num_threads(threads);
    for (int k = 0; k < 2; k++) {
      mf_feature_layout l;
      mf_feature_layout_of(fs[k], n, &l);
      frames = l.time_axis >= 0 ? l.shape.d[l.time_axis] : 0;
      for (int t = 0; t < threads; t++) {
        outs[t] = malloc((size_t)mf_shape_numel(l.shape) * sizeof(float));
        if (!outs[t]) {
          cli_error(CMD, "out of memory for the features");
          rc = MF_EXIT_FAIL;
          goto done;
        }
      }
      feature_job j = {fs[k], tracks, outs, n, threads, 0};
      mf_bench_timing tm;
      if (mf_bench_time(feature_step, &j, threads, &to, &tm) != MF_OK || j.failed) {
        cli_error(CMD, "feature %s: %s", PLUGINS[k], mf_error());
        rc = MF_EXIT_FAIL;
        goto done;
      }
      for (int t = 0; t < threads; t++) free(outs[t]), outs[t] = NULL;
      char impl[96];
      snprintf(impl, sizeof impl, "melforge %s plugin (FFTW3f)%s", PLUGINS[k],
               threads > 1 ? ", tracks in parallel" : "");
      /* CPU time per track: below ms/track x threads when our threads did not all run. */
      double cpu_ms[MF_BENCH_MAX_REPEATS];
      for (int r = 0; r < tm.n; r++) cpu_ms[r] = 1000.0 * tm.own[r] / tm.rate[r];
      json_t *cpu = rounded_list(cpu_ms, tm.n, 2);
      json_array_append_new(
          rows, json_pack("{s:s, s:s, s:i, s:o, s:o, s:i, s:o, s:f, s:o}", "impl", impl, "feature",
                          LABELS[k], "threads", threads, "tracks_per_s", rounded(tm.median, 1),
                          "foreign_cores", rounded_list(tm.foreign, tm.n, 2), "clean_repeats",
                          tm.clean, "repeats", rounded_list(tm.rate, tm.n, 1), "cpu_ms_per_track",
                          round(100 * median_of(cpu)) / 100, "cpu_ms_per_track_repeats", cpu));
      fprintf(stderr, "  %s, %d thread%s: %.1f tracks/s\n", LABELS[k], threads,
              threads == 1 ? "" : "s", tm.median);
    }
  }
  char hdr[128];
  snprintf(hdr, sizeof hdr, "%-58s %-7s %3s %10s %8s %8s %6s %9s", "impl", "feature", "thr",
           "tracks/s", "ms/track", "cpu ms", "clean", "foreign");
  printf("melforge %s, BLAS %s\n%s\n", mf_version(), mf_blas_corename(), hdr);
  for (size_t i = 0; i < strlen(hdr); i++) putchar('-');
  putchar('\n');
  size_t i;
  json_t *r;
  json_array_foreach(rows, i, r) {
    char clean[16];
    snprintf(clean, sizeof clean, "%d/%d", (int)num(r, "clean_repeats"), o->repeats);
    const double rate = num(r, "tracks_per_s");
    printf("%-58s %-7s %3d %10.1f %8.2f %8.2f %6s %9.2f\n",
           json_string_value(json_object_get(r, "impl")),
           json_string_value(json_object_get(r, "feature")), (int)num(r, "threads"), rate,
           1000.0 / rate, num(r, "cpu_ms_per_track"), clean,
           median_of(json_object_get(r, "foreign_cores")));
  }
  printf(
      "30 s track = %lld samples -> %lld frames; with N threads, N tracks are computed at once "
      "on one instance\n(as extraction shares tracks among threads); tracks/s = median of the "
      "clean repeats (other\nprocesses <= 0.25 cores; foreign = their median load); cpu ms = "
      "CPU time per track (below\nms/track x threads when our threads did not all run)\n",
      (long long)n, (long long)frames);
  if (o->json) {
    json_object_set_new(meta, "threads", json_pack("[i, i]", 1, max_threads));
    json_object_set_new(meta, "params", params);
    params = NULL;
    json_object_set_new(meta, "frames", json_integer(frames));
    json_t *root = json_pack("{s:o, s:O}", "meta", meta, "rows", rows);
    meta = NULL;
    if (write_json(root, o->json)) rc = MF_EXIT_FAIL;
    json_decref(root);
  }
done:
  json_decref(params);
  json_decref(meta);
  json_decref(rows);
  for (int t = 0; t < 64; t++) free(tracks[t]), free(outs[t]);
  for (int k = 0; k < 2; k++) mf_feature_free(fs[k]);
  return rc;
}

/* ---- entry --------------------------------------------------------------------------------- */

int cmd_bench(int argc, char **argv) {
  cli_common common;
  int rc = cli_common_options(&argc, argv, &common);
  if (rc) return rc;
  const int threads = common.threads ? common.threads : DEFAULT_THREADS;
  mf_set_num_threads(threads);
  options o = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, NULL, NULL, 0};
  const char *keys[64];
  int n_keys = 0, features = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return MF_EXIT_OK;
    }
    if (!strcmp(a, "--quick")) {
      o.quick = 1;
      continue;
    }
    const int is_json = !strncmp(a, "--json", 6) && (a[6] == 0 || a[6] == '='),
              is_child = !strncmp(a, "--child", 7) && (a[7] == 0 || a[7] == '=');
    const option_spec *spec = NULL;
    for (int k = 0; k < N_OPTIONS; k++) {
      const size_t len = strlen(OPTIONS[k].name);
      if (!strncmp(a, OPTIONS[k].name, len) && (a[len] == 0 || a[len] == '=')) spec = &OPTIONS[k];
    }
    if (is_json || is_child || spec) {
      const char *v = strchr(a, '=');
      if (v)
        v++;
      else if (i + 1 < argc)
        v = argv[++i];
      else {
        cli_error(CMD, "%s needs a value (melforge bench --help)", a);
        return MF_EXIT_USAGE;
      }
      if (is_json)
        o.json = v;
      else if (is_child)
        o.child = v;
      else if ((rc = parse_number(spec, v, &o)))
        return rc;
      continue;
    }
    if (a[0] == '-') {
      const char *names[N_OPTIONS + 2];
      for (int k = 0; k < N_OPTIONS; k++) names[k] = OPTIONS[k].name;
      names[N_OPTIONS] = "--json";
      names[N_OPTIONS + 1] = "--quick";
      const char *hint = mf_closest_name(a, names, N_OPTIONS + 2);
      cli_error(CMD, "unknown option '%s'%s%s%s (melforge bench --help lists them)", a,
                hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
      return MF_EXIT_USAGE;
    }
    if (!strcmp(a, "features")) {
      features = 1;
      continue;
    }
    /* MODEL: a key, "all", or a comma list of keys. */
    char *list = argv[i], *save = NULL;
    for (char *k = strtok_r(list, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
      if (!strcmp(k, "all")) {
        for (int m = 0; m < mf_bench_arch_count() && n_keys < 64; m++)
          keys[n_keys++] = mf_bench_arch_at(m)->key;
        continue;
      }
      if (!mf_bench_arch_find(k)) {
        cli_error(CMD, "%s", mf_error());
        return MF_EXIT_USAGE;
      }
      if (n_keys == 64) {
        cli_error(CMD, "too many models (at most 64)");
        return MF_EXIT_USAGE;
      }
      keys[n_keys++] = k;
    }
  }
  fill_defaults(&o);
  if (o.json && !o.child) {
    /* Fail now rather than after minutes of measuring. */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", o.json);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
      dir[1] = 0;
    else if (slash)
      *slash = 0;
    else
      snprintf(dir, sizeof dir, ".");
    if (access(dir, W_OK) != 0) {
      cli_error(CMD, "--json %s: cannot write into %s: %s", o.json, dir, strerror(errno));
      return MF_EXIT_FAIL;
    }
  }
  if (features && n_keys) {
    cli_error(CMD, "'features' and models are separate runs: bench features, then bench %s",
              keys[0]);
    return MF_EXIT_USAGE;
  }
  if (o.child) {
    cli_load_plugins(&common);
    return run_child(o.child, &o);
  }
  if (features) {
    if (threads > 64) {
      cli_error(CMD, "features: at most 64 threads, got %d", threads);
      return MF_EXIT_USAGE;
    }
    return run_features(&o, &common, threads);
  }
  if (n_keys == 0)
    for (int m = 0; m < mf_bench_arch_count(); m++) keys[n_keys++] = mf_bench_arch_at(m)->key;
  return run_models(keys, n_keys, &o, &common);
}
