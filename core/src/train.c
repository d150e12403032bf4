/* train.c — the epoch loop, evaluation, callbacks, run-folder outputs, resume. */
#define _GNU_SOURCE
#include "melforge/train.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "melforge/checkpoint.h"
#include "melforge/dataset.h"
#include "melforge/melforge.h"
#include "melforge/metrics.h"
#include "melforge/report.h"
#include "mf_config.h"
#include "fileio.h"
#include "report_html.h" /* mf__text, mf__json_num */
#include "train_internal.h"

/* Streams saved in checkpoints, by purpose. */
enum { RNG_DROPOUT, RNG_AUGMENT, N_RUN_RNG };
static const char *const RNG_NAMES[N_RUN_RNG] = {"dropout", "augment"};

static double now_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

void mf__say(const mf_train_hooks *h, const char *fmt, ...) {
  if (!h || !h->message) return;
  char buf[1024], *big = NULL;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n >= (int)sizeof buf) {
    va_start(ap, fmt);
    if (vasprintf(&big, fmt, ap) < 0) big = NULL; /* out of memory: the cut message */
    va_end(ap);
  }
  h->message(big ? big : buf, h->user);
  free(big);
}

static mf_status mkdir_p(const char *path) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
      return mf_set_error(MF_EIO, "cannot create folder %s: %s", buf, strerror(errno));
    *p = '/';
  }
  if (mkdir(buf, 0777) != 0 && errno != EEXIST)
    return mf_set_error(MF_EIO, "cannot create folder %s: %s", buf, strerror(errno));
  return MF_OK;
}

/* Writes text to path atomically. */
/* path NULL: mf__path_join ran out of memory (and said so). */
static mf_status write_text(const char *path, const char *text) {
  return path ? mf_write_file_atomic(path, text, strlen(text)) : MF_ENOMEM;
}

/* ---- the run's state --------------------------------------------------------------------- */

typedef struct run {
  const mf_train_config *cfg;
  const mf_train_hooks *hooks;
  mf_dataset *ds;
  mf_split split;
  mf_scaler scaler;
  mf_model *model;
  mf_optim *opt;
  mf_schedule sched;
  mf_augment *aug[MF_MAX_AUGMENT];
  mf_ctx *ctx;
  int n_classes;
  mf_shape sample_shape;
  int64_t row_size;
  /* callbacks */
  double best; /* checkpoint monitor */
  int best_epoch;
  double es_best; /* early-stopping monitor */
  int es_bad;
  /* progress */
  int epoch;       /* epochs completed */
  int step;        /* steps done into the current epoch (resume) */
  double loss_sum; /* current epoch so far */
  int64_t correct, seen;
  double train_seconds;
  json_t *history; /* array of epoch logs */
  mf_rng rng[N_RUN_RNG];
  char *best_path, *last_path;
  char *model_json, *feature_json;
  int stopped_early;
} run;

static double monitor_value(mf_monitor m, const mf_epoch_log *l) {
  switch (m) {
    case MF_MON_VAL_LOSS:
      return l->val_loss;
    case MF_MON_VAL_ACCURACY:
      return l->val_accuracy;
    case MF_MON_VAL_MACRO_F1:
      return l->val_macro_f1;
    case MF_MON_VAL_TRACK_ACCURACY:
      return l->val_track_accuracy;
    case MF_MON_TRAIN_LOSS:
      return l->train_loss;
  }
  return NAN;
}

static int better(mf_monitor m, double v, double ref, double min_delta) {
  if (isnan(v)) return 0;
  if (isnan(ref)) return 1;
  return mf_monitor_maximize(m) ? v > ref + min_delta : v < ref - min_delta;
}

/* ---- checkpoints --------------------------------------------------------------------------- */

static char *state_json(const run *r) {
  json_t *o = json_object();
  json_object_set_new(o, "best", json_real(r->best));
  json_object_set_new(o, "best_epoch", json_integer(r->best_epoch));
  json_object_set_new(o, "es_best", json_real(r->es_best));
  json_object_set_new(o, "es_bad", json_integer(r->es_bad));
  json_object_set_new(o, "loss_sum", json_real(r->loss_sum));
  json_object_set_new(o, "correct", json_integer(r->correct));
  json_object_set_new(o, "seen", json_integer(r->seen));
  json_object_set_new(o, "train_seconds", json_real(r->train_seconds));
  json_t *s = json_object();
  json_object_set_new(s, "epoch", json_integer(r->sched.epoch));
  json_object_set_new(s, "lr", json_real(r->sched.lr));
  json_object_set_new(s, "best", json_real(r->sched.best));
  json_object_set_new(s, "num_bad", json_integer(r->sched.num_bad));
  json_object_set_new(s, "cooldown_left", json_integer(r->sched.cooldown_left));
  json_object_set_new(o, "schedule", s);
  /* NaN is not JSON: jansson refuses it, so encode "no value yet" as null. */
  char *txt = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17) | JSON_PRESERVE_ORDER);
  json_decref(o);
  return txt;
}

static json_t *real_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static mf_status restore_state(run *r, const char *text) {
  json_error_t err;
  json_t *o = json_loads(text, 0, &err);
  if (!o) return mf_set_error(MF_EFORMAT, "checkpoint state is not JSON: %s", err.text);
  r->best = mf__json_num(o, "best");
  r->best_epoch = (int)json_integer_value(json_object_get(o, "best_epoch"));
  r->es_best = mf__json_num(o, "es_best");
  r->es_bad = (int)json_integer_value(json_object_get(o, "es_bad"));
  r->loss_sum = mf__json_num(o, "loss_sum");
  r->correct = json_integer_value(json_object_get(o, "correct"));
  r->seen = json_integer_value(json_object_get(o, "seen"));
  r->train_seconds = mf__json_num(o, "train_seconds");
  json_t *s = json_object_get(o, "schedule");
  r->sched.epoch = (int)json_integer_value(json_object_get(s, "epoch"));
  r->sched.lr = mf__json_num(s, "lr");
  r->sched.best = mf__json_num(s, "best");
  r->sched.num_bad = (int)json_integer_value(json_object_get(s, "num_bad"));
  r->sched.cooldown_left = (int)json_integer_value(json_object_get(s, "cooldown_left"));
  json_decref(o);
  if (isnan(r->loss_sum)) r->loss_sum = 0;
  if (isnan(r->train_seconds)) r->train_seconds = 0;
  return MF_OK;
}

static void fill_meta(const run *r, mf_checkpoint_meta *m, char **owned_history,
                      char **owned_state) {
  const mf_train_config *cfg = r->cfg;
  const mf_dataset_info *info = &r->ds->info;
  memset(m, 0, sizeof *m);
  m->model = (char *)mf_component_name(cfg->model.component);
  m->model_params = r->model_json;
  m->input_shape = r->sample_shape;
  m->n_classes = r->n_classes;
  m->classes = info->classes;
  m->feature = info->feature;
  m->feature_params = info->feature_params;
  m->segmenting = info->segmenting;
  m->sample_rate = info->sample_rate;
  m->experiment = cfg->name;
  m->source = cfg->source_text;
  m->config = NULL;
  m->dataset = cfg->data.path;
  m->seed = cfg->seed;
  m->epoch = r->epoch;
  m->step = r->step;
  *owned_history = json_dumps(r->history, JSON_COMPACT | JSON_REAL_PRECISION(17));
  *owned_state = state_json(r);
  m->history = *owned_history;
  m->state = *owned_state;
}

static mf_status save_checkpoint(run *r, const char *path, int with_optimizer) {
  mf_checkpoint_meta m;
  char *hist, *state;
  fill_meta(r, &m, &hist, &state);
  char *config = mf_train_config_to_json(r->cfg);
  m.config = config;
  mf_rng rngs[N_RUN_RNG] = {mf_ctx_dropout_rng(r->ctx), r->rng[RNG_AUGMENT]};
  mf_status s =
      mf_checkpoint_save(path, &m, mf_model_params(r->model), with_optimizer ? r->opt : NULL,
                         &r->scaler, with_optimizer ? N_RUN_RNG : 0, RNG_NAMES, rngs);
  free(hist);
  free(state);
  free(config);
  return s;
}

/* ---- data --------------------------------------------------------------------------------- */

static void gather(const run *r, const int64_t *idx, int64_t n, float *x, int32_t *y) {
  const int64_t rs = r->row_size;
  const float *src = r->ds->features;
#pragma omp parallel for schedule(static) if (n * rs > (1 << 16))
  for (int64_t i = 0; i < n; i++) memcpy(x + i * rs, src + idx[i] * rs, (size_t)rs * sizeof(float));
  for (int64_t i = 0; i < n; i++) y[i] = r->ds->labels[idx[i]];
}

static mf_shape batch_shape(const run *r, int64_t n) {
  mf_shape s;
  s.ndim = r->sample_shape.ndim + 1;
  s.d[0] = n;
  for (int i = 0; i < r->sample_shape.ndim; i++) s.d[i + 1] = r->sample_shape.d[i];
  for (int i = s.ndim; i < MF_MAX_DIMS; i++) s.d[i] = 1;
  return s;
}

/* Evaluates rows idx[0..n) in eval mode, no grad. *probs_out gets softmax rows (malloc'd),
 * *loss_out the mean loss. */
static mf_status evaluate(run *r, const int64_t *idx, int64_t n, float **probs_out,
                          int32_t **labels_out, int32_t **tracks_out, double *loss_out) {
  const int C = r->n_classes;
  const int64_t eb = r->cfg->eval_batch_size > 0 ? r->cfg->eval_batch_size : 128;
  float *probs = malloc(sizeof(float) * (size_t)(n * C + 1));
  int32_t *labels = malloc(sizeof(int32_t) * (size_t)(n + 1));
  int32_t *tracks = malloc(sizeof(int32_t) * (size_t)(n + 1));
  double loss = 0;
  for (int64_t s = 0; s < n; s += eb) {
    int64_t b = n - s < eb ? n - s : eb;
    mf_ctx_reset(r->ctx);
    int prev = mf_ctx_set_grad_enabled(r->ctx, 0);
    mf_tensor *x = mf_ctx_tensor(r->ctx, batch_shape(r, b));
    gather(r, idx + s, b, x->data, labels + s);
    mf_tensor *logits = mf_model_forward(r->model, r->ctx, x, 0);
    mf_tensor *l = mf_cross_entropy(r->ctx, logits, labels + s, (float)r->cfg->label_smoothing);
    mf_tensor *p = mf_softmax(r->ctx, logits, -1);
    mf_ctx_set_grad_enabled(r->ctx, prev);
    loss += (double)l->data[0] * (double)b;
    memcpy(probs + s * C, p->data, sizeof(float) * (size_t)(b * C));
    for (int64_t i = 0; i < b; i++) tracks[s + i] = r->ds->track[idx[s + i]];
  }
  *probs_out = probs;
  *labels_out = labels;
  *tracks_out = tracks;
  *loss_out = n ? loss / (double)n : NAN;
  return MF_OK;
}

static mf_status evaluate_metrics(run *r, const int64_t *idx, int64_t n, mf_metrics *m) {
  float *probs;
  int32_t *labels, *tracks;
  double loss;
  evaluate(r, idx, n, &probs, &labels, &tracks, &loss);
  mf_status s = mf_metrics_compute(probs, labels, tracks, n, r->n_classes,
                                   r->cfg->top_k > 0 ? r->cfg->top_k : 3, loss, m);
  free(probs);
  free(labels);
  free(tracks);
  return s;
}

/* test_predictions.csv: one row per test segment (row, track, label, predicted, class
 * probabilities) — what paired comparisons between runs (McNemar, bootstrap) read. */
static mf_status write_predictions(run *r, const int64_t *idx, int64_t n, const char *name) {
  float *probs;
  int32_t *labels, *tracks;
  double loss;
  evaluate(r, idx, n, &probs, &labels, &tracks, &loss);
  const int C = r->n_classes;
  mf__text t = {0};
  mf__text_add(&t, "row,track,label,predicted");
  for (int c = 0; c < C; c++) mf__text_addf(&t, ",p_%s", r->ds->info.classes[c]);
  mf__text_add(&t, "\n");
  for (int64_t i = 0; i < n; i++) {
    const float *p = probs + i * C;
    int arg = 0;
    for (int c = 1; c < C; c++)
      if (p[c] > p[arg]) arg = c;
    mf__text_addf(&t, "%lld,%d,%d,%d", (long long)idx[i], tracks[i], labels[i], arg);
    for (int c = 0; c < C; c++) mf__text_addf(&t, ",%.6g", p[c]);
    mf__text_add(&t, "\n");
  }
  char *path = mf__path_join(r->cfg->out_dir, name);
  mf_status s = path ? mf__write_text(path, &t) : MF_ENOMEM;
  free(path);
  free(t.p);
  free(probs);
  free(labels);
  free(tracks);
  return s;
}

/* ---- one epoch ----------------------------------------------------------------------------- */

/* Targets for augmentations that mix labels: one-hot rows the plugins may blend. */
static mf_tensor *one_hot(mf_ctx *ctx, const int32_t *y, int64_t n, int C) {
  mf_tensor *t = mf_ctx_zeros(ctx, MF_SHAPE(n, C));
  for (int64_t i = 0; i < n; i++) t->data[i * C + y[i]] = 1.0f;
  return t;
}

typedef enum { EPOCH_DONE, EPOCH_INTERRUPTED, EPOCH_DIVERGED, EPOCH_FAILED } epoch_end;

static epoch_end train_epoch(run *r, int64_t *order, char *why, size_t why_size) {
  const mf_train_config *cfg = r->cfg;
  const int64_t n = r->split.n_train, B = cfg->batch_size;
  /* A final batch of one sample is dropped: batch statistics of one value are undefined. */
  const int64_t steps = n / B + (n % B > 1);
  const int C = r->n_classes;
  int32_t *y = malloc(sizeof(int32_t) * (size_t)B);
  epoch_end end = EPOCH_DONE;
  const double t0 = now_seconds();
  for (int64_t step = r->step; step < steps; step++) {
    const int64_t s0 = step * B, b = n - s0 < B ? n - s0 : B;
    mf_ctx_reset(r->ctx);
    mf_params_zero_grad(mf_model_params(r->model));
    mf_tensor *x = mf_ctx_tensor(r->ctx, batch_shape(r, b));
    gather(r, order + s0, b, x->data, y);
    mf_tensor *targets = NULL;
    if (cfg->n_augment) {
      targets = one_hot(r->ctx, y, b, C);
      for (int a = 0; a < cfg->n_augment; a++)
        if (mf_augment_apply(r->aug[a], x, targets, &r->rng[RNG_AUGMENT]) != MF_OK) {
          snprintf(why, why_size, "augmentation %s failed at epoch %d step %lld: %s",
                   mf_component_name(cfg->augment[a].component), r->epoch + 1, (long long)step + 1,
                   mf_error());
          end = EPOCH_FAILED;
          goto out;
        }
    }
    mf_tensor *logits = mf_model_forward(r->model, r->ctx, x, 1);
    mf_tensor *loss =
        targets ? mf_cross_entropy_soft(r->ctx, logits, targets, (float)cfg->label_smoothing)
                : mf_cross_entropy(r->ctx, logits, y, (float)cfg->label_smoothing);
    const double lv = loss->data[0];
    if (!isfinite(lv)) {
      snprintf(why, why_size,
               "the training loss became %s at epoch %d, step %lld of %lld; stopped without "
               "applying that step (the last good checkpoint is kept). Lower the learning "
               "rate, clip gradients (clip_grad_norm) or check the data for extreme values",
               isnan(lv) ? "NaN" : "infinite", r->epoch + 1, (long long)step + 1, (long long)steps);
      end = EPOCH_DIVERGED;
      goto out;
    }
    if (mf_backward(r->ctx, loss) != MF_OK) {
      snprintf(why, why_size, "backward failed at epoch %d: %s", r->epoch + 1, mf_error());
      end = EPOCH_FAILED;
      goto out;
    }
    if (cfg->clip_grad_norm > 0) {
      double norm = mf_clip_grad_norm(mf_model_params(r->model), cfg->clip_grad_norm);
      if (!isfinite(norm)) {
        snprintf(why, why_size,
                 "the gradients became %s at epoch %d, step %lld; stopped without applying that "
                 "step (the last good checkpoint is kept)",
                 isnan(norm) ? "NaN" : "infinite", r->epoch + 1, (long long)step + 1);
        end = EPOCH_DIVERGED;
        goto out;
      }
    }
    mf_optim_step(r->opt);
    r->loss_sum += lv * (double)b;
    r->seen += b;
    for (int64_t i = 0; i < b; i++) {
      const float *row = logits->data + i * C;
      int arg = 0;
      for (int c = 1; c < C; c++)
        if (row[c] > row[arg]) arg = c;
      /* With mixed targets, accuracy counts the sample's own label. */
      r->correct += arg == y[i];
    }
    r->step = (int)step + 1;
    if (r->hooks && r->hooks->on_step)
      r->hooks->on_step(r->epoch + 1, (int)step + 1, (int)steps, lv, r->hooks->user);
    if (r->hooks && r->hooks->interrupt && *r->hooks->interrupt && step + 1 < steps) {
      end = EPOCH_INTERRUPTED;
      goto out;
    }
  }
out:
  r->train_seconds += now_seconds() - t0;
  free(y);
  return end;
}

/* ---- outputs ------------------------------------------------------------------------------ */

static mf_status write_metrics_csv(const run *r) {
  mf__text t = {0};
  mf__text_add(&t,
               "epoch,lr,train_loss,train_accuracy,val_loss,val_accuracy,val_macro_f1,"
               "val_track_accuracy,seconds,best\n");
  size_t i;
  json_t *e;
  json_array_foreach(r->history, i, e) {
    const char *keys[] = {"lr",           "train_loss",   "train_accuracy",     "val_loss",
                          "val_accuracy", "val_macro_f1", "val_track_accuracy", "seconds"};
    mf__text_addf(&t, "%lld", (long long)json_integer_value(json_object_get(e, "epoch")));
    for (size_t j = 0; j < sizeof keys / sizeof keys[0]; j++) {
      double v = mf__json_num(e, keys[j]);
      if (isfinite(v))
        mf__text_addf(&t, ",%.6g", v);
      else
        mf__text_add(&t, ",");
    }
    mf__text_addf(&t, ",%d\n", json_is_true(json_object_get(e, "best")));
  }
  char *path = mf__path_join(r->cfg->out_dir, "metrics.csv");
  mf_status s = path ? mf__write_text(path, &t) : MF_ENOMEM;
  free(path);
  free(t.p);
  return s;
}

static json_t *metrics_json(const mf_metrics *m, char *const *classes) {
  char *t = mf_metrics_to_json(m, classes);
  json_t *o = t ? json_loads(t, 0, NULL) : NULL;
  free(t);
  return o ? o : json_object();
}

static json_t *split_json(const run *r) {
  json_t *o = json_object();
  const int64_t *sets[3] = {r->split.train, r->split.val, r->split.test};
  const int64_t ns[3] = {r->split.n_train, r->split.n_val, r->split.n_test};
  const char *names[3] = {"train", "val", "test"};
  for (int k = 0; k < 3; k++) {
    /* Distinct tracks in the set (rows are ascending, tracks grouped). */
    int64_t tracks = 0;
    char *seen = calloc((size_t)r->ds->info.n_tracks + 1, 1);
    for (int64_t i = 0; i < ns[k]; i++) {
      int32_t t = r->ds->track[sets[k][i]];
      if (t >= 0 && t < r->ds->info.n_tracks && !seen[t]) seen[t] = 1, tracks++;
    }
    free(seen);
    json_t *s = json_object();
    json_object_set_new(s, "segments", json_integer(ns[k]));
    json_object_set_new(s, "tracks", json_integer(tracks));
    json_object_set_new(o, names[k], s);
  }
  json_object_set_new(o, "grouped_by_track",
                      json_boolean(r->cfg->split_files[0] || r->cfg->split.group_by_track));
  return o;
}

/* ---- the run ----------------------------------------------------------------------------- */

static void run_free(run *r) {
  mf_dataset_free(r->ds);
  mf_split_free(&r->split);
  mf_scaler_clear(&r->scaler);
  mf_optim_free(r->opt);
  mf_model_free(r->model);
  for (int i = 0; i < MF_MAX_AUGMENT; i++) mf_augment_free(r->aug[i]);
  mf_ctx_free(r->ctx);
  json_decref(r->history);
  free(r->best_path);
  free(r->last_path);
  free(r->model_json);
}

static mf_status setup(run *r, int resume) {
  const mf_train_config *cfg = r->cfg;
  const mf_train_hooks *h = r->hooks;
  mf_status s;
  if ((s = mf_train_prepare_data(&cfg->data, h)) != MF_OK) return s;
  if ((s = mf_dataset_load(cfg->data.path, &r->ds)) != MF_OK) return s;
  mf_dataset *ds = r->ds;
  r->n_classes = ds->info.n_classes;
  r->sample_shape = ds->info.sample_shape;
  r->row_size = ds->row_size;
  if (r->n_classes < 2)
    return mf_set_error(MF_EINVAL, "%s has %d class; a classifier needs at least 2", cfg->data.path,
                        r->n_classes);

  /* Split: depends only on the dataset and the seed's split stream. */
  if (cfg->split_files[0]) {
    s = mf_split_from_lists(ds->track, ds->n, ds->info.tracks, ds->info.n_tracks,
                            cfg->split_files[0], cfg->split_files[1], cfg->split_files[2],
                            &r->split);
  } else {
    mf_rng split_rng = mf_rng_stream(cfg->seed, MF_RNG_SPLIT);
    s = mf_split_make(ds->labels, ds->track, ds->n, r->n_classes, &cfg->split, &split_rng,
                      &r->split);
  }
  if (s != MF_OK) return mf_wrap_error(s, "splitting %s", cfg->data.path);
  if (r->split.n_train == 0) return mf_set_error(MF_EINVAL, "the training set is empty");
  if (r->split.n_val == 0 && cfg->early_stopping.enabled &&
      cfg->early_stopping.monitor != MF_MON_TRAIN_LOSS)
    return mf_set_error(MF_EINVAL,
                        "early stopping monitors %s but the split has no validation set; give "
                        "split.val a share or monitor train_loss",
                        mf_monitor_name(cfg->early_stopping.monitor));
  json_t *sj = split_json(r);
  json_t *tr = json_object_get(sj, "train"), *va = json_object_get(sj, "val"),
         *te = json_object_get(sj, "test");
  mf__say(h, "split: train %lld tracks (%lld segments), val %lld (%lld), test %lld (%lld); %s",
          (long long)json_integer_value(json_object_get(tr, "tracks")), (long long)r->split.n_train,
          (long long)json_integer_value(json_object_get(va, "tracks")), (long long)r->split.n_val,
          (long long)json_integer_value(json_object_get(te, "tracks")), (long long)r->split.n_test,
          cfg->split_files[0] ? "fixed lists"
          : cfg->split.group_by_track
              ? "grouped by track: no track's segments are in two sets"
              : "NOT grouped (group = \"none\"): segments of one track are spread over the sets, "
                "which inflates val/test accuracy (the notebooks' leaky split)");
  json_decref(sj);

  /* Scaler: fitted on training rows only, then applied to every row. */
  int band_axis = 0;
  if (ds->info.sample_shape.ndim >= 2 && ds->info.time_axis == 0) band_axis = 1;
  s = mf_scaler_fit(&r->scaler, cfg->scaler, cfg->scaler_per_band, band_axis, r->sample_shape,
                    ds->features, r->split.train, r->split.n_train);
  if (s != MF_OK) return s;
  mf_scaler_apply(&r->scaler, ds->features, ds->n);

  /* Model. */
  mf_model_io io = {r->sample_shape, r->n_classes};
  mf_rng init_rng = mf_rng_stream(cfg->seed, MF_RNG_INIT);
  if ((s = mf_model_new(cfg->model.component, cfg->model.values, &io, &init_rng, &r->model)) !=
      MF_OK)
    return s;
  r->model_json = mf_values_to_json(mf_model_values(r->model));
  if (!(r->opt = mf_optim_new(mf_model_params(r->model), &cfg->optim))) return MF_EINVAL;
  mf_schedule_config sc = cfg->schedule;
  sc.base_lr = cfg->optim.lr;
  if ((s = mf_schedule_init(&r->sched, &sc)) != MF_OK) return s;
  for (int a = 0; a < cfg->n_augment; a++)
    if ((s = mf_augment_new(cfg->augment[a].component, cfg->augment[a].values, &r->aug[a])) !=
        MF_OK)
      return s;
  if (!(r->ctx = mf_ctx_new())) return MF_ENOMEM;
  r->history = json_array();
  r->best = NAN;
  r->es_best = NAN;
  if ((s = mkdir_p(cfg->out_dir)) != MF_OK) return s;
  r->best_path = mf__path_join(cfg->out_dir, "best.h5");
  r->last_path = mf__path_join(cfg->out_dir, "last.h5");
  if (!r->best_path || !r->last_path) return MF_ENOMEM;
  mf__say(h, "model %s: %lld parameters; %s", mf_component_name(cfg->model.component),
          (long long)mf_params_count_trainable(mf_model_params(r->model)), r->model_json);

  if (!resume) return MF_OK;
  mf_checkpoint *ck;
  if ((s = mf_checkpoint_load(r->last_path, &ck)) != MF_OK)
    return mf_wrap_error(s, "--resume: cannot continue from %s", r->last_path);
  if (strcmp(ck->meta.model, mf_component_name(cfg->model.component)) != 0 ||
      !ck->meta.model_params || strcmp(ck->meta.model_params, r->model_json) != 0 ||
      ck->meta.seed != cfg->seed || ck->meta.n_classes != r->n_classes) {
    mf_checkpoint_free(ck);
    return mf_set_error(MF_EINVAL,
                        "--resume: %s was written by a different experiment (model, its "
                        "parameters, seed or classes differ); start a new run or use another "
                        "--out folder",
                        r->last_path);
  }
  if ((s = mf_checkpoint_restore_params(ck, mf_model_params(r->model))) != MF_OK ||
      !ck->optim_state ||
      (s = mf_params_copy_data(mf_optim_state(r->opt), ck->optim_state)) != MF_OK) {
    mf_checkpoint_free(ck);
    return mf_wrap_error(MF_EINVAL, "--resume from %s", r->last_path);
  }
  mf_optim_set_steps(r->opt, ck->optim_steps);
  r->epoch = ck->meta.epoch;
  r->step = ck->meta.step;
  json_decref(r->history);
  r->history = json_loads(ck->meta.history ? ck->meta.history : "[]", 0, NULL);
  if (!r->history) r->history = json_array();
  s = restore_state(r, ck->meta.state ? ck->meta.state : "{}");
  mf_rng d;
  if (s == MF_OK && mf_checkpoint_rng(ck, "dropout", &d) == MF_OK)
    mf_ctx_set_dropout_rng(r->ctx, &d);
  if (s == MF_OK) mf_checkpoint_rng(ck, "augment", &r->rng[RNG_AUGMENT]);
  mf_checkpoint_free(ck);
  mf__say(h, "resuming from %s: %d epochs done%s", r->last_path, r->epoch,
          r->step ? " and part of the next" : "");
  return s;
}

static mf_status finish(run *r, mf_run_result *out) {
  const mf_train_config *cfg = r->cfg;
  /* With restore_best (the default), the test set sees the best weights by the checkpoint
   * monitor (model selection on validation); otherwise, or without a best checkpoint, the
   * final ones (what model.evaluate after fit does in the notebooks). */
  const char *weights = "final";
  if (cfg->early_stopping.restore_best && r->best_epoch > 0) {
    mf_checkpoint *ck;
    if (mf_checkpoint_load(r->best_path, &ck) == MF_OK) {
      mf_status s = mf_checkpoint_restore_params(ck, mf_model_params(r->model));
      mf_checkpoint_free(ck);
      if (s != MF_OK) return s;
      weights = "best";
    }
  }
  json_t *sum = json_object();
  json_object_set_new(sum, "experiment", json_string(cfg->name));
  json_object_set_new(sum, "seed", json_integer((json_int_t)cfg->seed));
  json_object_set_new(sum, "model", json_string(mf_component_name(cfg->model.component)));
  json_object_set_new(sum, "model_params", json_loads(r->model_json, 0, NULL));
  json_object_set_new(sum, "params_count",
                      json_integer(mf_params_count_trainable(mf_model_params(r->model))));
  json_object_set_new(sum, "dataset", json_string(cfg->data.path));
  json_t *cls = json_array();
  for (int i = 0; i < r->n_classes; i++)
    json_array_append_new(cls, json_string(r->ds->info.classes[i]));
  json_object_set_new(sum, "classes", cls);
  json_object_set_new(sum, "split", split_json(r));
  json_object_set_new(sum, "epochs_run", json_integer(r->epoch));
  json_object_set_new(sum, "best_epoch", json_integer(r->best_epoch));
  json_object_set_new(sum, "monitor", json_string(mf_monitor_name(cfg->checkpoint_monitor)));
  json_object_set_new(sum, "stopped_early", json_boolean(r->stopped_early));
  json_object_set_new(sum, "evaluated_weights", json_string(weights));
  json_object_set_new(sum, "train_seconds", json_real(r->train_seconds));
  json_object_set_new(sum, "threads", json_integer(mf_num_threads()));
  json_object_set_new(sum, "melforge_version", json_string(MF_VERSION_STRING));
  mf_metrics mt = {0}, mv = {0};
  if (r->split.n_test) evaluate_metrics(r, r->split.test, r->split.n_test, &mt);
  if (r->split.n_val) evaluate_metrics(r, r->split.val, r->split.n_val, &mv);
  json_object_set_new(sum, "test",
                      r->split.n_test ? metrics_json(&mt, r->ds->info.classes) : json_null());
  json_object_set_new(sum, "val",
                      r->split.n_val ? metrics_json(&mv, r->ds->info.classes) : json_null());
  out->test_accuracy = r->split.n_test ? mt.accuracy : NAN;
  out->test_track_accuracy = r->split.n_test ? mt.track_accuracy : NAN;
  out->test_macro_f1 = r->split.n_test ? mt.macro_f1 : NAN;
  mf_metrics_clear(&mt);
  mf_metrics_clear(&mv);
  out->summary_json =
      json_dumps(sum, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
  json_decref(sum);
  if (r->split.n_test) {
    mf_status ps = write_predictions(r, r->split.test, r->split.n_test, "test_predictions.csv");
    if (ps != MF_OK) return ps;
  }
  out->epochs_run = r->epoch;
  out->best_epoch = r->best_epoch;
  out->stopped_early = r->stopped_early;
  out->train_seconds = r->train_seconds;
  char *path = mf__path_join(cfg->out_dir, "summary.json");
  mf_status s = write_text(path, out->summary_json);
  free(path);
  /* The report only presents the files above: failing to draw it does not fail the run. */
  if (s == MF_OK && mf_report_run(cfg->out_dir, NULL) != MF_OK)
    mf__say(r->hooks, "warning: report.html not written: %s", mf_error());
  return s;
}

mf_status mf_train_run(const mf_train_config *cfg, int resume, const mf_train_hooks *hooks,
                       mf_run_result *out) {
  memset(out, 0, sizeof *out);
  mf_status s = mf_train_config_check(cfg);
  if (s != MF_OK) return s;
  mf_runtime_init();
  run r = {0};
  r.cfg = cfg;
  r.hooks = hooks;
  const mf_rng shuffle_base = mf_rng_stream(cfg->seed, MF_RNG_SHUFFLE);
  const mf_rng dropout_base = mf_rng_stream(cfg->seed, MF_RNG_DROPOUT);
  const mf_rng augment_base = mf_rng_stream(cfg->seed, MF_RNG_AUGMENT);
  if ((s = setup(&r, resume)) != MF_OK) goto done;
  {
    char *config = mf_train_config_to_json(cfg);
    char *path = mf__path_join(cfg->out_dir, "config.json");
    s = write_text(path, config);
    free(path);
    free(config);
    if (s != MF_OK) goto done;
  }
  int64_t *order = malloc(sizeof(int64_t) * (size_t)r.split.n_train);
  char why[1024] = "";
  while (r.epoch < cfg->epochs && !r.stopped_early) {
    const double t0 = now_seconds();
    /* Per-epoch sub-streams: an epoch's batches and masks depend only on (seed, epoch). */
    mf_rng shuffle = mf_rng_substream(&shuffle_base, (uint64_t)r.epoch);
    memcpy(order, r.split.train, sizeof(int64_t) * (size_t)r.split.n_train);
    /* Fisher-Yates on the row list. */
    for (int64_t i = r.split.n_train - 1; i > 0; i--) {
      int64_t j = mf_rng_below(&shuffle, (uint32_t)(i + 1));
      int64_t t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    if (r.step == 0) {
      mf_rng d = mf_rng_substream(&dropout_base, (uint64_t)r.epoch);
      mf_ctx_set_dropout_rng(r.ctx, &d);
      r.rng[RNG_AUGMENT] = mf_rng_substream(&augment_base, (uint64_t)r.epoch);
      r.loss_sum = 0, r.correct = 0, r.seen = 0;
    }
    mf_optim_set_lr(r.opt, (float)mf_schedule_lr(&r.sched));
    epoch_end end = train_epoch(&r, order, why, sizeof why);
    if (end == EPOCH_INTERRUPTED) {
      s = save_checkpoint(&r, r.last_path, 1);
      if (s == MF_OK)
        s = mf_set_error(MF_EINTERRUPT,
                         "interrupted at epoch %d, step %d; %s holds the state: continue with "
                         "--resume",
                         r.epoch + 1, r.step, r.last_path);
      out->interrupted = 1;
      free(order);
      goto done;
    }
    if (end != EPOCH_DONE) {
      s = mf_set_error(end == EPOCH_DIVERGED ? MF_ESTATE : MF_EINVAL, "%s", why);
      free(order);
      goto done;
    }
    mf_epoch_log log = {r.epoch + 1,
                        cfg->epochs,
                        mf_optim_lr(r.opt),
                        r.loss_sum / (double)r.seen,
                        (double)r.correct / (double)r.seen,
                        NAN,
                        NAN,
                        NAN,
                        NAN,
                        0,
                        0};
    if (r.split.n_val) {
      mf_metrics m = {0};
      evaluate_metrics(&r, r.split.val, r.split.n_val, &m);
      log.val_loss = m.loss;
      log.val_accuracy = m.accuracy;
      log.val_macro_f1 = m.macro_f1;
      log.val_track_accuracy = m.track_accuracy;
      mf_metrics_clear(&m);
    }
    r.epoch++;
    r.step = 0;
    /* Callbacks: best checkpoint, early stopping, schedule. */
    double cm = monitor_value(cfg->checkpoint_monitor, &log);
    if (better(cfg->checkpoint_monitor, cm, r.best, 0)) {
      r.best = cm;
      r.best_epoch = r.epoch;
      log.improved = 1;
    }
    if (cfg->early_stopping.enabled) {
      double em = monitor_value(cfg->early_stopping.monitor, &log);
      if (better(cfg->early_stopping.monitor, em, r.es_best, cfg->early_stopping.min_delta)) {
        r.es_best = em;
        r.es_bad = 0;
      } else if (++r.es_bad >= cfg->early_stopping.patience) {
        r.stopped_early = 1;
      }
    }
    double sched_metric = monitor_value(
        cfg->early_stopping.enabled ? cfg->early_stopping.monitor : MF_MON_VAL_LOSS, &log);
    if (isnan(sched_metric)) sched_metric = log.train_loss;
    mf_schedule_step(&r.sched, sched_metric);
    log.seconds = now_seconds() - t0;
    json_t *e = json_object();
    json_object_set_new(e, "epoch", json_integer(log.epoch));
    json_object_set_new(e, "lr", json_real(log.lr));
    json_object_set_new(e, "train_loss", real_or_null(log.train_loss));
    json_object_set_new(e, "train_accuracy", real_or_null(log.train_accuracy));
    json_object_set_new(e, "val_loss", real_or_null(log.val_loss));
    json_object_set_new(e, "val_accuracy", real_or_null(log.val_accuracy));
    json_object_set_new(e, "val_macro_f1", real_or_null(log.val_macro_f1));
    json_object_set_new(e, "val_track_accuracy", real_or_null(log.val_track_accuracy));
    json_object_set_new(e, "seconds", json_real(log.seconds));
    json_object_set_new(e, "best", json_boolean(log.improved));
    json_array_append_new(r.history, e);
    if (log.improved && (s = save_checkpoint(&r, r.best_path, 0)) != MF_OK) break;
    if ((s = save_checkpoint(&r, r.last_path, 1)) != MF_OK) break;
    if ((s = write_metrics_csv(&r)) != MF_OK) break;
    if (hooks && hooks->on_epoch) hooks->on_epoch(&log, hooks->user);
    if (r.stopped_early)
      mf__say(hooks, "early stopping: %s did not improve by more than %g for %d epochs",
              mf_monitor_name(cfg->early_stopping.monitor), cfg->early_stopping.min_delta,
              cfg->early_stopping.patience);
    if (hooks && hooks->interrupt && *hooks->interrupt) {
      s = mf_set_error(MF_EINTERRUPT,
                       "interrupted after epoch %d; %s holds the state: continue "
                       "with --resume",
                       r.epoch, r.last_path);
      out->interrupted = 1;
      break;
    }
  }
  free(order);
  if (s == MF_OK) s = finish(&r, out);
done:
  run_free(&r);
  return s;
}

void mf_run_result_clear(mf_run_result *r) {
  free(r->summary_json);
  memset(r, 0, sizeof *r);
}
