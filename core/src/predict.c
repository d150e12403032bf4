/* predict.c — a checkpoint as a ready classifier: model, scaler, feature, segmenting. */
#define _GNU_SOURCE
#include "melforge/predict.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melforge/audio.h"
#include "melforge/component.h"
#include "melforge/melforge.h"

struct mf_classifier {
  char *path;
  mf_checkpoint *ck;
  mf_model *model;
  mf_ctx *ctx;
  mf_classifier_settings settings;
  int64_t row_size;
  /* Audio: the feature instance and segmenting, or why there are none. */
  mf_feature *feature;
  mf_segmenting seg;
  char *no_audio;
};

/* ---- loading --------------------------------------------------------------------------- */

static json_t *parse_object(const char *text) {
  if (!text || !*text) return NULL;
  json_t *o = json_loads(text, 0, NULL);
  if (o && !json_is_object(o)) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* The settings the run evaluated with: what the engine used (train.c evaluate()), so the
 * default evaluation here reproduces the run's numbers batch for batch. */
static mf_classifier_settings read_settings(const mf_checkpoint *ck) {
  mf_classifier_settings s = {128, 3, 0.0};
  json_t *cfg = parse_object(ck->meta.config);
  if (cfg) {
    json_t *v;
    if (json_is_integer(v = json_object_get(cfg, "eval_batch_size")) && json_integer_value(v) > 0)
      s.eval_batch_size = (int)json_integer_value(v);
    if (json_is_integer(v = json_object_get(cfg, "top_k")) && json_integer_value(v) > 0)
      s.top_k = (int)json_integer_value(v);
    if (json_is_number(v = json_object_get(cfg, "label_smoothing")))
      s.label_smoothing = json_number_value(v);
    json_decref(cfg);
  }
  if (s.top_k > ck->meta.n_classes) s.top_k = ck->meta.n_classes;
  return s;
}

static void set_no_audio(mf_classifier *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_no_audio(mf_classifier *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  free(c->no_audio);
  if (vasprintf(&c->no_audio, fmt, ap) < 0) c->no_audio = NULL;
  va_end(ap);
}

/* Builds the feature instance when the checkpoint names a loadable feature plugin; otherwise
 * records why audio cannot be classified (rows still can). */
static void setup_audio(mf_classifier *c) {
  const mf_checkpoint_meta *m = &c->ck->meta;
  const char *name = m->feature ? m->feature : "";
  if (!*name) {
    set_no_audio(c,
                 "%s records no feature plugin: it was trained on features computed outside "
                 "melforge, so it cannot classify audio files; evaluate it on a dataset of such "
                 "features with melforge eval",
                 c->path);
    return;
  }
  if (!strcmp(name, "json") || !strcmp(name, "npy")) {
    set_no_audio(c,
                 "%s was trained on features imported from %s files (melforge import), not "
                 "computed by a feature plugin, so it cannot classify audio files; evaluate it on "
                 "an imported dataset with melforge eval, or train on a dataset made with "
                 "melforge extract to predict from audio",
                 c->path, name);
    return;
  }
  const mf_component *fc = mf_component_find(MF_KIND_FEATURE, name);
  if (!fc) {
    set_no_audio(c,
                 "%s needs the feature plugin '%s' to compute features from audio: %s (load "
                 "it with --plugin-path or MELFORGE_PLUGIN_PATH)",
                 c->path, name, mf_error());
    return;
  }
  if (!(m->sample_rate > 0)) {
    set_no_audio(c, "%s records no sample rate, so audio cannot be prepared as in training",
                 c->path);
    return;
  }
  if (mf_segmenting_from_json(m->segmenting ? m->segmenting : "", &c->seg) != MF_OK) {
    set_no_audio(c, "%s: its stored segmenting cannot be used: %s", c->path, mf_error());
    return;
  }
  /* A new song is covered whole: "N segments of a T-second track" becomes consecutive
   * windows of the trained segment length, so a 4-minute song is not judged by its first
   * 30 seconds. The rows keep the shape the model was trained on. */
  if (c->seg.mode == MF_SEG_EQUAL && c->seg.track_seconds > 0) {
    double len = (double)mf_segment_length(&c->seg, m->sample_rate, 0) / m->sample_rate;
    c->seg.mode = MF_SEG_WINDOW;
    c->seg.window_seconds = c->seg.hop_seconds = len;
  }
  mf_values *v;
  if (mf_component_values(fc, &v) != MF_OK) {
    set_no_audio(c, "%s", mf_error());
    return;
  }
  if (mf_values_from_json(v, m->feature_params ? m->feature_params : "{}") != MF_OK) {
    set_no_audio(c,
                 "%s: its feature parameters do not fit the feature plugin '%s' loaded from "
                 "%s (was the plugin changed since training?): %s",
                 c->path, name, mf_component_file(fc), mf_error());
    mf_values_free(v);
    return;
  }
  mf_status s = mf_feature_new(fc, v, m->sample_rate, &c->feature);
  mf_values_free(v);
  if (s != MF_OK) {
    set_no_audio(c, "%s: cannot create the feature '%s': %s", c->path, name, mf_error());
    c->feature = NULL;
    return;
  }
  /* With a fixed segment length the row shape is known now: a plugin that changed since
   * training is reported here rather than once per file. */
  if (c->seg.mode == MF_SEG_WINDOW || c->seg.track_seconds > 0) {
    mf_feature_layout lay;
    int64_t len = mf_segment_length(&c->seg, m->sample_rate, 0);
    if (len >= 1 && mf_feature_layout_of(c->feature, len, &lay) == MF_OK &&
        !mf_shape_equal(lay.shape, m->input_shape)) {
      char a[96], b[96];
      set_no_audio(c,
                   "%s: the feature plugin '%s' now gives segments of shape %s but the model "
                   "takes %s (was the plugin changed since training?)",
                   c->path, name, mf_shape_str(lay.shape, a, sizeof a),
                   mf_shape_str(m->input_shape, b, sizeof b));
      mf_feature_free(c->feature);
      c->feature = NULL;
    }
  }
}

mf_status mf_classifier_load(const char *path, mf_classifier **out) {
  *out = NULL;
  mf_checkpoint *ck;
  mf_status s = mf_checkpoint_load(path, &ck);
  if (s != MF_OK) return s;
  const mf_checkpoint_meta *m = &ck->meta;
  if (m->n_classes < 1 || !m->classes || m->input_shape.ndim < 1) {
    mf_checkpoint_free(ck);
    return mf_set_error(MF_EFORMAT, "%s: /meta lacks the classes or the input shape", path);
  }
  mf_classifier *c = calloc(1, sizeof *c);
  if (!c) {
    mf_checkpoint_free(ck);
    return mf_set_error(MF_ENOMEM, "out of memory loading %s", path);
  }
  c->path = strdup(path);
  c->ck = ck;
  c->row_size = mf_shape_numel(m->input_shape);
  c->settings = read_settings(ck);

  const mf_component *mc = mf_component_find(MF_KIND_MODEL, m->model ? m->model : "");
  if (!mc) {
    s = mf_wrap_error(MF_ENOTFOUND,
                      "%s needs the model plugin '%s' (load it with --plugin-path "
                      "or MELFORGE_PLUGIN_PATH)",
                      path, m->model ? m->model : "");
    goto fail;
  }
  mf_values *v;
  if ((s = mf_component_values(mc, &v)) != MF_OK) goto fail;
  if ((s = mf_values_from_json(v, m->model_params ? m->model_params : "{}")) != MF_OK) {
    mf_values_free(v);
    s = mf_wrap_error(s,
                      "%s: its parameters for the model '%s' do not fit the plugin loaded from "
                      "%s (was the plugin changed since training?)",
                      path, m->model, mf_component_file(mc));
    goto fail;
  }
  mf_model_io io = {m->input_shape, m->n_classes};
  /* The initial values are overwritten by the stored weights; the stream only has to be
   * valid. */
  mf_rng init = mf_rng_stream(m->seed, MF_RNG_INIT);
  s = mf_model_new(mc, v, &io, &init, &c->model);
  mf_values_free(v);
  if (s != MF_OK) {
    s = mf_wrap_error(s, "%s: building the model '%s'", path, m->model);
    goto fail;
  }
  if ((s = mf_checkpoint_restore_params(ck, mf_model_params(c->model))) != MF_OK) {
    s = mf_wrap_error(s, "%s: restoring the weights of the model '%s'", path, m->model);
    goto fail;
  }
  if (ck->scaler.kind != MF_SCALER_NONE && mf_shape_numel(ck->scaler.row_shape) != c->row_size) {
    char a[96], b[96];
    s = mf_set_error(MF_EFORMAT,
                     "%s: the scaler was fitted on rows of shape %s but the model "
                     "takes %s",
                     path, mf_shape_str(ck->scaler.row_shape, a, sizeof a),
                     mf_shape_str(m->input_shape, b, sizeof b));
    goto fail;
  }
  if (!(c->ctx = mf_ctx_new())) {
    s = mf_set_error(MF_ENOMEM, "out of memory loading %s", path);
    goto fail;
  }
  setup_audio(c);
  *out = c;
  return MF_OK;
fail:
  mf_classifier_free(c);
  return s;
}

void mf_classifier_free(mf_classifier *c) {
  if (!c) return;
  mf_feature_free(c->feature);
  mf_ctx_free(c->ctx);
  mf_model_free(c->model);
  mf_checkpoint_free(c->ck);
  free(c->no_audio);
  free(c->path);
  free(c);
}

const mf_checkpoint *mf_classifier_checkpoint(const mf_classifier *c) { return c->ck; }
int mf_classifier_n_classes(const mf_classifier *c) { return c->ck->meta.n_classes; }
char *const *mf_classifier_classes(const mf_classifier *c) { return c->ck->meta.classes; }
mf_shape mf_classifier_input_shape(const mf_classifier *c) { return c->ck->meta.input_shape; }
mf_classifier_settings mf_classifier_run_settings(const mf_classifier *c) { return c->settings; }

/* ---- rows -------------------------------------------------------------------------------- */

static mf_shape batch_shape(mf_shape sample, int64_t n) {
  mf_shape s;
  s.ndim = sample.ndim + 1;
  s.d[0] = n;
  for (int i = 0; i < sample.ndim; i++) s.d[i + 1] = sample.d[i];
  for (int i = s.ndim; i < MF_MAX_DIMS; i++) s.d[i] = 1;
  return s;
}

mf_status mf_classifier_rows(mf_classifier *c, const float *rows, const int64_t *idx, int64_t n,
                             const int32_t *labels, const mf_classify_options *opt, float *probs,
                             double *loss) {
  const int C = c->ck->meta.n_classes;
  const int64_t rs = c->row_size;
  const int64_t B = opt && opt->batch > 0 ? opt->batch : c->settings.eval_batch_size;
  const float smoothing = (float)c->settings.label_smoothing;
  double loss_sum = 0;
  for (int64_t s0 = 0; s0 < n; s0 += B) {
    const int64_t b = n - s0 < B ? n - s0 : B;
    mf_ctx_reset(c->ctx);
    const int prev = mf_ctx_set_grad_enabled(c->ctx, 0);
    mf_tensor *x = mf_ctx_tensor(c->ctx, batch_shape(c->ck->meta.input_shape, b));
#pragma omp parallel for schedule(static) if (b * rs > (1 << 16))
    for (int64_t i = 0; i < b; i++) {
      const int64_t r = idx ? idx[s0 + i] : s0 + i;
      memcpy(x->data + i * rs, rows + r * rs, (size_t)rs * sizeof(float));
    }
    /* On the copy, element by element: the same values the engine gets by scaling the whole
     * dataset once, without touching the caller's rows. */
    mf_scaler_apply(&c->ck->scaler, x->data, b);
    mf_tensor *logits = mf_model_forward(c->model, c->ctx, x, 0);
    if (!logits || logits->ndim != 2 || logits->shape[0] != b || logits->shape[1] != C) {
      mf_ctx_set_grad_enabled(c->ctx, prev);
      if (!logits) return mf_wrap_error(MF_EINVAL, "%s: the model's forward pass failed", c->path);
      return mf_set_error(MF_EINVAL,
                          "%s: the model '%s' returned logits of the wrong shape "
                          "(expected [%lld, %d])",
                          c->path, c->ck->meta.model, (long long)b, C);
    }
    if (labels) {
      mf_tensor *l = mf_cross_entropy(c->ctx, logits, labels + s0, smoothing);
      loss_sum += (double)l->data[0] * (double)b;
    }
    mf_tensor *p = mf_softmax(c->ctx, logits, -1);
    mf_ctx_set_grad_enabled(c->ctx, prev);
    memcpy(probs + s0 * C, p->data, sizeof(float) * (size_t)(b * C));
    if (opt && opt->progress) opt->progress(s0 + b, n, opt->user);
  }
  mf_ctx_reset(c->ctx);
  if (loss) *loss = labels && n ? loss_sum / (double)n : NAN;
  return MF_OK;
}

/* ---- datasets ----------------------------------------------------------------------------- */

void mf_dataset_match_clear(mf_dataset_match *m) {
  if (!m) return;
  free(m->label_map);
  free(m->warnings);
  memset(m, 0, sizeof *m);
}

/* Numbers compare by value (32 and 32.0 are one setting), containers member by member. */
static int json_same(json_t *a, json_t *b) {
  if (json_is_number(a) && json_is_number(b)) return json_number_value(a) == json_number_value(b);
  if (json_is_array(a) && json_is_array(b)) {
    if (json_array_size(a) != json_array_size(b)) return 0;
    for (size_t i = 0; i < json_array_size(a); i++)
      if (!json_same(json_array_get(a, i), json_array_get(b, i))) return 0;
    return 1;
  }
  return json_equal(a, b);
}

typedef struct textbuf {
  char *s;
  size_t n;
} textbuf;

static void tb_add(textbuf *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_add(textbuf *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *line = NULL;
  int k = vasprintf(&line, fmt, ap);
  va_end(ap);
  if (k < 0) return;
  char *grown = realloc(t->s, t->n + (size_t)k + 2);
  if (grown) {
    t->s = grown;
    memcpy(t->s + t->n, line, (size_t)k);
    t->n += (size_t)k;
    t->s[t->n++] = '\n';
    t->s[t->n] = '\0';
  }
  free(line);
}

static char *json_text(json_t *v) {
  return v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(10))
           : strdup("(not set)");
}

/* One line per key whose value differs between the dataset's and the checkpoint's JSON
 * object; the whole texts when either is not an object. */
static void diff_objects(textbuf *t, const char *what, const char *ds_text, const char *ck_text) {
  json_t *a = parse_object(ds_text), *b = parse_object(ck_text);
  if (!a || !b) {
    if (strcmp(ds_text ? ds_text : "", ck_text ? ck_text : ""))
      tb_add(t, "%s: %s in the dataset, %s in the checkpoint", what, ds_text ? ds_text : "",
             ck_text ? ck_text : "");
  } else {
    const char *key;
    json_t *va;
    json_object_foreach(a, key, va) {
      json_t *vb = json_object_get(b, key);
      if (vb && json_same(va, vb)) continue;
      char *x = json_text(va), *y = json_text(vb);
      tb_add(t, "%s %s: %s in the dataset, %s in the checkpoint", what, key, x, y);
      free(x);
      free(y);
    }
    json_object_foreach(b, key, va) {
      if (json_object_get(a, key)) continue;
      char *y = json_text(va);
      tb_add(t, "%s %s: not set in the dataset, %s in the checkpoint", what, key, y);
      free(y);
    }
  }
  json_decref(a);
  json_decref(b);
}

/* The differences of feature, its parameters, segmenting and rate, one per line (NULL when
 * none). */
static char *describe_differences(const mf_checkpoint_meta *m, const mf_dataset_info *info) {
  textbuf t = {0};
  const char *df = info->feature ? info->feature : "", *cf = m->feature ? m->feature : "";
  if (strcmp(df, cf))
    tb_add(&t, "feature: '%s' in the dataset, '%s' in the checkpoint", df, cf);
  else
    diff_objects(&t, "feature parameter", info->feature_params, m->feature_params);
  diff_objects(&t, "segmenting", info->segmenting, m->segmenting);
  if (info->sample_rate != m->sample_rate)
    tb_add(&t, "sample rate: %g Hz in the dataset, %g Hz in the checkpoint", info->sample_rate,
           m->sample_rate);
  if (t.n) t.s[t.n - 1] = '\0'; /* no trailing newline */
  return t.s;
}

mf_status mf_classifier_match(const mf_classifier *c, const mf_dataset_info *info,
                              mf_dataset_match *out) {
  memset(out, 0, sizeof *out);
  const mf_checkpoint_meta *m = &c->ck->meta;
  char *diff = describe_differences(m, info);
  if (!mf_shape_equal(info->sample_shape, m->input_shape)) {
    char a[96], b[96];
    if (diff)
      for (char *p = diff; (p = strchr(p, '\n'));) *p = ';';
    mf_status s;
    if (diff)
      s = mf_set_error(MF_EINVAL,
                       "the dataset's samples have shape %s but the model of %s takes "
                       "%s (%s): evaluate on a dataset extracted with the checkpoint's settings",
                       mf_shape_str(info->sample_shape, a, sizeof a), c->path,
                       mf_shape_str(m->input_shape, b, sizeof b), diff);
    else
      s = mf_set_error(MF_EINVAL,
                       "the dataset's samples have shape %s but the model of %s takes "
                       "%s, although both record the same feature settings (segments cut from "
                       "each file's own length, track_seconds = 0, depend on the files' length)",
                       mf_shape_str(info->sample_shape, a, sizeof a), c->path,
                       mf_shape_str(m->input_shape, b, sizeof b));
    free(diff);
    return s;
  }
  out->warnings = diff;
  out->label_map = malloc(sizeof(int32_t) * (size_t)(info->n_classes + 1));
  char *known = calloc((size_t)m->n_classes, 1);
  if (!out->label_map || !known) {
    free(known);
    mf_dataset_match_clear(out);
    return mf_set_error(MF_ENOMEM, "out of memory matching classes");
  }
  for (int k = 0; k < info->n_classes; k++) {
    int j = 0;
    while (j < m->n_classes && strcmp(info->classes[k], m->classes[j])) j++;
    if (j == m->n_classes) {
      textbuf list = {0};
      for (int i = 0; i < m->n_classes; i++) {
        char *grown = realloc(list.s, list.n + strlen(m->classes[i]) + 3);
        if (!grown) break;
        list.s = grown;
        list.n += (size_t)sprintf(list.s + list.n, "%s%s", i ? ", " : "", m->classes[i]);
      }
      mf_status s = mf_set_error(MF_EINVAL,
                                 "the dataset's class '%s' is not one the checkpoint %s "
                                 "was trained on (its classes: %s)",
                                 info->classes[k], c->path, list.s ? list.s : "");
      free(list.s);
      free(known);
      mf_dataset_match_clear(out);
      return s;
    }
    out->label_map[k] = j;
    known[j] = 1;
    if (j != k) out->reordered = 1;
  }
  for (int j = 0; j < m->n_classes; j++) out->missing += !known[j];
  free(known);
  return MF_OK;
}

static int json_flag(json_t *o, const char *key, int dflt) {
  json_t *v = json_object_get(o, key);
  return json_is_boolean(v) ? json_is_true(v) : dflt;
}

static const char *json_str(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

mf_status mf_classifier_run_split(const mf_classifier *c, const mf_dataset *ds, mf_split *out,
                                  char *desc, size_t desc_size) {
  memset(out, 0, sizeof *out);
  const mf_checkpoint_meta *m = &c->ck->meta;
  json_t *cfg = parse_object(m->config);
  json_t *sp = cfg ? json_object_get(cfg, "split") : NULL;
  if (!json_is_object(sp)) {
    json_decref(cfg);
    return mf_set_error(MF_ENOTFOUND,
                        "%s holds no training configuration with a split (was it "
                        "written by melforge run?), so the rows its run tested on are unknown: "
                        "pass the dataset to evaluate",
                        c->path);
  }
  mf_status s;
  char buf[512];
  const char *train_list = json_str(sp, "train_list");
  if (train_list) {
    /* Fixed lists: the same files the run read (paths as the run was given them). */
    const char *val_list = json_str(sp, "val_list"), *test_list = json_str(sp, "test_list");
    s = mf_split_from_lists(ds->track, ds->n, ds->info.tracks, ds->info.n_tracks, train_list,
                            val_list, test_list, out);
    snprintf(buf, sizeof buf, "fixed lists: train %s, val %s, test %s", train_list,
             val_list ? val_list : "(none)", test_list ? test_list : "(none)");
  } else {
    mf_split_config sc = mf_split_defaults();
    json_t *v;
    if (json_is_number(v = json_object_get(sp, "train"))) sc.train = json_number_value(v);
    if (json_is_number(v = json_object_get(sp, "val"))) sc.val = json_number_value(v);
    if (json_is_number(v = json_object_get(sp, "test"))) sc.test = json_number_value(v);
    sc.stratify = json_flag(sp, "stratify", sc.stratify);
    const char *group = json_str(sp, "group");
    if (group) sc.group_by_track = !strcmp(group, "track");
    if (json_is_integer(v = json_object_get(sp, "kfold"))) sc.kfold = (int)json_integer_value(v);
    if (json_is_integer(v = json_object_get(sp, "fold"))) sc.fold = (int)json_integer_value(v);
    if ((s = mf_split_check(&sc)) != MF_OK) {
      json_decref(cfg);
      return mf_wrap_error(s, "%s: the stored split", c->path);
    }
    /* The engine's split depends only on the labels, the tracks and this stream. */
    mf_rng rng = mf_rng_stream(m->seed, MF_RNG_SPLIT);
    s = mf_split_make(ds->labels, ds->track, ds->n, ds->info.n_classes, &sc, &rng, out);
    int k = 0;
    if (sc.kfold > 1)
      k = snprintf(buf, sizeof buf, "fold %d of %d, val %g of the rest", sc.fold, sc.kfold,
                   sc.train + sc.val > 0 ? sc.val / (sc.train + sc.val) : 0.0);
    else
      k = snprintf(buf, sizeof buf, "train %g / val %g / test %g", sc.train, sc.val, sc.test);
    snprintf(buf + k, sizeof buf - (size_t)k, ", %s, %s, seed %llu",
             sc.stratify ? "stratified" : "not stratified",
             sc.group_by_track ? "grouped by track" : "not grouped by track",
             (unsigned long long)m->seed);
  }
  json_decref(cfg);
  if (s != MF_OK)
    return mf_wrap_error(s, "recomputing the split of the run that wrote %s", c->path);
  if (desc && desc_size) snprintf(desc, desc_size, "%s", buf);
  return MF_OK;
}

mf_status mf_classifier_evaluate(mf_classifier *c, const mf_dataset *ds,
                                 const mf_dataset_match *match, const int64_t *idx, int64_t n,
                                 int top_k, const mf_classify_options *opt, mf_metrics *out,
                                 float **probs_out) {
  memset(out, 0, sizeof *out);
  if (probs_out) *probs_out = NULL;
  const int C = c->ck->meta.n_classes;
  if (ds->row_size != c->row_size)
    return mf_set_error(MF_EINVAL,
                        "the dataset's rows have %lld values but the model of %s takes "
                        "%lld",
                        (long long)ds->row_size, c->path, (long long)c->row_size);
  if (!match && ds->info.n_classes != C)
    return mf_set_error(MF_EINVAL,
                        "the dataset has %d classes but %s has %d: match them first "
                        "(mf_classifier_match)",
                        ds->info.n_classes, c->path, C);
  if (n == 0) return mf_set_error(MF_EINVAL, "no rows to evaluate");
  if (top_k <= 0) top_k = c->settings.top_k;
  float *probs = malloc(sizeof(float) * (size_t)(n * C));
  int32_t *labels = malloc(sizeof(int32_t) * (size_t)n);
  int32_t *tracks = malloc(sizeof(int32_t) * (size_t)n);
  if (!probs || !labels || !tracks) {
    free(probs);
    free(labels);
    free(tracks);
    return mf_set_error(MF_ENOMEM, "out of memory evaluating %lld rows", (long long)n);
  }
  for (int64_t i = 0; i < n; i++) {
    const int64_t r = idx ? idx[i] : i;
    const int32_t y = ds->labels[r];
    labels[i] = match ? match->label_map[y] : y;
    tracks[i] = ds->track[r];
  }
  double loss = NAN;
  mf_status s = mf_classifier_rows(c, ds->features, idx, n, labels, opt, probs, &loss);
  if (s == MF_OK) s = mf_metrics_compute(probs, labels, tracks, n, C, top_k, loss, out);
  free(labels);
  free(tracks);
  if (s == MF_OK && probs_out)
    *probs_out = probs;
  else
    free(probs);
  return s;
}

/* ---- audio -------------------------------------------------------------------------------- */

mf_status mf_classifier_audio_ready(const mf_classifier *c) {
  if (c->feature) return MF_OK;
  return mf_set_error(MF_ESTATE, "%s", c->no_audio ? c->no_audio : "audio cannot be classified");
}

double mf_classifier_sample_rate(const mf_classifier *c) { return c->ck->meta.sample_rate; }

mf_status mf_classifier_features(const mf_classifier *c, const float *audio, int64_t n,
                                 float **rows, int64_t *n_rows) {
  *rows = NULL;
  *n_rows = 0;
  mf_status s = mf_classifier_audio_ready(c);
  if (s != MF_OK) return s;
  mf_shape shape;
  float *r;
  int64_t k;
  if ((s = mf_extract_track(c->feature, &c->seg, audio, n, &r, &k, NULL, &shape)) != MF_OK)
    return s;
  if (!mf_shape_equal(shape, c->ck->meta.input_shape)) {
    char a[96], b[96];
    free(r);
    return mf_set_error(MF_EINVAL, "its segments have shape %s but the model takes %s%s",
                        mf_shape_str(shape, a, sizeof a),
                        mf_shape_str(c->ck->meta.input_shape, b, sizeof b),
                        c->seg.mode == MF_SEG_EQUAL && c->seg.track_seconds == 0
                            ? " (the model was trained on segments cut from each file's own "
                              "length, track_seconds = 0: only files of the training files' "
                              "length fit)"
                            : "");
  }
  *rows = r;
  *n_rows = k;
  return MF_OK;
}

mf_status mf_classifier_average(mf_classifier *c, const float *rows, int64_t n_rows,
                                const mf_classify_options *opt, float *probs) {
  const int C = c->ck->meta.n_classes;
  if (n_rows < 1) return mf_set_error(MF_EINVAL, "no segments to classify");
  float *p = malloc(sizeof(float) * (size_t)(n_rows * C));
  if (!p)
    return mf_set_error(MF_ENOMEM, "out of memory classifying %lld segments", (long long)n_rows);
  mf_status s = mf_classifier_rows(c, rows, NULL, n_rows, NULL, opt, p, NULL);
  if (s == MF_OK) {
    /* In segment order, in double: the mean does not depend on the thread count. */
    for (int k = 0; k < C; k++) {
      double sum = 0;
      for (int64_t i = 0; i < n_rows; i++) sum += p[i * C + k];
      probs[k] = (float)(sum / (double)n_rows);
    }
  }
  free(p);
  return s;
}

static void prepare_one(const mf_classifier *c, const char *path, mf_file_rows *out) {
  memset(out, 0, sizeof *out);
  mf_audio a = {0};
  mf_status s = mf_audio_read(path, c->ck->meta.sample_rate, &a);
  /* Messages from the extractor do not name the file; the reader's do. */
  if (s == MF_OK && (s = mf_classifier_features(c, a.samples, a.n, &out->rows, &out->n_rows)))
    s = mf_wrap_error(s, "%s", path);
  mf_audio_free(&a);
  out->status = s;
  if (s != MF_OK) out->error = strdup(mf_error());
}

void mf_classifier_prepare_files(const mf_classifier *c, const char *const *paths, int n,
                                 mf_file_rows *out) {
#pragma omp parallel for schedule(dynamic, 1) if (n > 1)
  for (int i = 0; i < n; i++) prepare_one(c, paths[i], &out[i]);
}

void mf_file_rows_clear(mf_file_rows *r) {
  if (!r) return;
  free(r->rows);
  free(r->error);
  memset(r, 0, sizeof *r);
}

mf_status mf_classifier_classify_file(mf_classifier *c, const char *path, float *probs,
                                      int64_t *n_segments) {
  if (n_segments) *n_segments = 0;
  mf_status s = mf_classifier_audio_ready(c);
  if (s != MF_OK) return s;
  mf_file_rows r;
  prepare_one(c, path, &r);
  if (r.status != MF_OK) {
    s = r.status; /* the message is still this thread's */
  } else {
    s = mf_classifier_average(c, r.rows, r.n_rows, NULL, probs);
    if (s == MF_OK && n_segments) *n_segments = r.n_rows;
  }
  mf_file_rows_clear(&r);
  return s;
}

void mf_top_k(const float *probs, int n_classes, int k, int *out) {
  if (k > n_classes) k = n_classes;
  /* Insertion into a sorted prefix: k and the class count are small. */
  int m = 0;
  for (int j = 0; j < n_classes; j++) {
    int pos = m;
    while (pos > 0 && probs[j] > probs[out[pos - 1]]) pos--;
    if (pos >= k) continue;
    int end = m < k ? m : k - 1;
    for (int i = end; i > pos; i--) out[i] = out[i - 1];
    out[pos] = j;
    if (m < k) m++;
  }
}
