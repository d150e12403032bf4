/* A checkpoint as a classifier (predict.h): built from checkpoints that tiny runs of the
 * training engine write here, it must reproduce the run's own test evaluation exactly (split,
 * probabilities, metrics), classify audio files the way their dataset rows were made, match
 * datasets by class name, and say clearly what it cannot do. */
#define _GNU_SOURCE
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "melforge/audio.h"
#include "melforge/component.h"
#include "melforge/dataset.h"
#include "melforge/predict.h"
#include "melforge/synth.h"
#include "melforge/train.h"
#include "mf_config.h"
#include "mftest.h"

#define RATE 8000.0
#define GENRES 3
#define TRACKS 6

static char g_dir[64];

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

static void cleanup(void) {
  if (g_dir[0]) nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *path_in(const char *name) {
  char *p;
  if (asprintf(&p, "%s/%s", g_dir, name) < 0) return NULL;
  return p;
}

/* A run of the engine and what it wrote. */
typedef struct fixture {
  char *dir;        /* run folder */
  char *checkpoint; /* the weights the run's test metrics are of */
  mf_run_result result;
  int ok;
} fixture;

static void train(fixture *fx, const char *name, const char *dataset, int kfold, int group,
                  int restore_best) {
  mf_train_config cfg;
  mf_train_config_init(&cfg);
  cfg.name = strdup(name);
  cfg.seed = 11;
  cfg.data.path = strdup(dataset);
  cfg.model.component = mf_component_find(MF_KIND_MODEL, "mlp");
  MF_CHECK(cfg.model.component, "%s", mf_error());
  MF_CHECK(mf_component_values(cfg.model.component, &cfg.model.values) == MF_OK, "%s", mf_error());
  const int64_t hidden[] = {16};
  mf_values_set_ints(cfg.model.values, "hidden", hidden, 1);
  cfg.split.train = 0.5, cfg.split.val = 0.25, cfg.split.test = 0.25;
  cfg.split.kfold = kfold;
  cfg.split.fold = kfold ? 1 : 0;
  cfg.split.group_by_track = group;
  cfg.early_stopping.restore_best = restore_best;
  cfg.epochs = 4;
  cfg.batch_size = 8;
  /* Several batches per evaluation: the classifier must batch exactly as the engine. */
  cfg.eval_batch_size = 5;
  cfg.optim.lr = 3e-3f;
  fx->dir = path_in(name);
  cfg.out_dir = strdup(fx->dir);
  mf_status s = mf_train_run(&cfg, 0, NULL, &fx->result);
  MF_CHECK(s == MF_OK, "training %s: %s", name, mf_error());
  json_t *sum = json_loads(fx->result.summary_json, 0, NULL);
  const char *w = json_string_value(json_object_get(sum, "evaluated_weights"));
  if (asprintf(&fx->checkpoint, "%s/%s", fx->dir, w && !strcmp(w, "best") ? "best.h5" : "last.h5") <
      0)
    abort();
  json_decref(sum);
  mf_train_config_clear(&cfg);
  fx->ok = 1;
}

/* Audio corpus -> melspec dataset -> a run (grouped by track, best weights tested), and the
 * same features stored as an imported dataset (feature "json") -> runs with a k-fold split
 * and an ungrouped split (final weights tested). */
static fixture g_audio, g_kfold, g_leaky;
static char *g_audio_ds, *g_import_ds;

static void setup(void) {
  if (g_dir[0]) return;
  if (mf_component_count() == 0) mf_plugins_load_path(MF_BUILD_PLUGIN_DIR, NULL, NULL);
  snprintf(g_dir, sizeof g_dir, "/tmp/mf_test_predict_XXXXXX");
  MF_CHECK(mkdtemp(g_dir), "mkdtemp");
  atexit(cleanup);
  char *audio = path_in("audio");
  mf_synth_config sc = mf_synth_defaults();
  sc.genres = GENRES, sc.tracks = TRACKS, sc.seconds = 2.0, sc.sample_rate = RATE, sc.seed = 5;
  MF_CHECK(mf_synth_write_corpus(&sc, audio, NULL, NULL) == MF_OK, "%s", mf_error());

  const mf_component *mel = mf_component_find(MF_KIND_FEATURE, "melspec");
  MF_CHECK(mel, "%s", mf_error());
  mf_values *mv;
  MF_CHECK(mf_component_values(mel, &mv) == MF_OK, "%s", mf_error());
  mf_values_set_int(mv, "n_fft", 256);
  mf_values_set_int(mv, "hop_length", 128);
  mf_values_set_int(mv, "n_mels", 12);
  mf_segmenting seg = mf_segmenting_defaults();
  seg.segments = 2, seg.track_seconds = 2.0;
  g_audio_ds = path_in("mel.h5");
  mf_extract_config ec = {audio, mel, mv, RATE, seg, 1, g_audio_ds, NULL, NULL, NULL};
  mf_extract_summary es;
  MF_CHECK(mf_extract_dataset(&ec, &es) == MF_OK, "%s", mf_error());
  mf_values_free(mv);
  free(audio);

  /* The same rows as if imported: no feature plugin recorded. */
  mf_dataset *ds;
  MF_CHECK(mf_dataset_load(g_audio_ds, &ds) == MF_OK, "%s", mf_error());
  free(ds->info.feature);
  ds->info.feature = strdup("json");
  g_import_ds = path_in("imported.h5");
  MF_CHECK(mf_dataset_save(ds, g_import_ds) == MF_OK, "%s", mf_error());
  mf_dataset_free(ds);

  train(&g_audio, "audio_run", g_audio_ds, 0, 1, 1);
  train(&g_kfold, "kfold_run", g_import_ds, 3, 1, 0);
  train(&g_leaky, "leaky_run", g_import_ds, 0, 0, 0);
}

static mf_classifier *load(const char *path) {
  mf_classifier *c = NULL;
  mf_status s = mf_classifier_load(path, &c);
  MF_CHECK(s == MF_OK, "%s", mf_error());
  return c;
}

static json_t *summary_test(const fixture *fx) {
  json_t *sum = json_loads(fx->result.summary_json, 0, NULL);
  json_t *t = json_incref(json_object_get(sum, "test"));
  json_decref(sum);
  return t;
}

/* Evaluates the run's recomputed test split and compares every summary metric. */
static void expect_reproduces_run(const fixture *fx, const char *ds_path) {
  mf_classifier *c = load(fx->checkpoint);
  mf_dataset *ds;
  MF_CHECK(mf_dataset_load(ds_path, &ds) == MF_OK, "%s", mf_error());
  mf_split sp;
  char desc[256];
  EXPECT(mf_classifier_run_split(c, ds, &sp, desc, sizeof desc) == MF_OK, "%s", mf_error());
  mf_metrics m;
  mf_status s = mf_classifier_evaluate(c, ds, NULL, sp.test, sp.n_test, 0, NULL, &m, NULL);
  EXPECT(s == MF_OK, "%s", mf_error());
  json_t *t = summary_test(fx);
  EXPECT_EQ_INT(m.n, json_integer_value(json_object_get(t, "n")));
  EXPECT_EQ_INT(m.n_tracks, json_integer_value(json_object_get(t, "n_tracks")));
  /* Same rows, same batches, same ops: the numbers are the run's to the bit. */
  EXPECT(m.accuracy == fx->result.test_accuracy, "accuracy %.17g vs the run's %.17g (%s)",
         m.accuracy, fx->result.test_accuracy, desc);
  EXPECT(m.track_accuracy == fx->result.test_track_accuracy, "track accuracy %.17g vs %.17g",
         m.track_accuracy, fx->result.test_track_accuracy);
  EXPECT(m.macro_f1 == fx->result.test_macro_f1, "macro F1 %.17g vs %.17g", m.macro_f1,
         fx->result.test_macro_f1);
  /* summary.json keeps 10 significant digits. */
  EXPECT_NEAR(m.loss, json_number_value(json_object_get(t, "loss")), 1e-9 * fabs(m.loss));
  EXPECT_NEAR(m.top_k_accuracy, json_number_value(json_object_get(t, "top_k_accuracy")), 1e-9);
  json_t *conf = json_object_get(t, "confusion");
  for (int i = 0; i < m.n_classes; i++)
    for (int j = 0; j < m.n_classes; j++)
      EXPECT_EQ_INT(m.confusion[i * m.n_classes + j],
                    json_integer_value(json_array_get(json_array_get(conf, (size_t)i), (size_t)j)));
  json_decref(t);
  mf_metrics_clear(&m);
  mf_split_free(&sp);
  mf_dataset_free(ds);
  mf_classifier_free(c);
}

TEST(test_eval_of_run_test_split_reproduces_summary_metrics) {
  setup();
  expect_reproduces_run(&g_audio, g_audio_ds);
}

TEST(test_eval_reproduces_kfold_run_with_final_weights) {
  setup();
  expect_reproduces_run(&g_kfold, g_import_ds);
}

TEST(test_eval_reproduces_ungrouped_run) {
  setup();
  expect_reproduces_run(&g_leaky, g_import_ds);
}

/* test_predictions.csv: row,track,label,predicted,p_<class>... */
TEST(test_row_probabilities_equal_engine_test_predictions) {
  setup();
  mf_classifier *c = load(g_audio.checkpoint);
  mf_dataset *ds;
  MF_CHECK(mf_dataset_load(g_audio_ds, &ds) == MF_OK, "%s", mf_error());
  mf_split sp;
  EXPECT(mf_classifier_run_split(c, ds, &sp, NULL, 0) == MF_OK, "%s", mf_error());
  const int C = mf_classifier_n_classes(c);
  float *probs = malloc(sizeof(float) * (size_t)(sp.n_test * C));
  EXPECT(mf_classifier_rows(c, ds->features, sp.test, sp.n_test, NULL, NULL, probs, NULL) == MF_OK,
         "%s", mf_error());
  char *csv = path_in("audio_run/test_predictions.csv");
  FILE *f = fopen(csv, "r");
  EXPECT(f != NULL, "cannot open %s", csv);
  char line[1024];
  int64_t i = 0;
  if (f && fgets(line, sizeof line, f)) {
    while (fgets(line, sizeof line, f)) {
      long long row;
      int track, label, pred;
      float p[GENRES];
      int got =
          sscanf(line, "%lld,%d,%d,%d,%g,%g,%g", &row, &track, &label, &pred, &p[0], &p[1], &p[2]);
      EXPECT_EQ_INT(got, 4 + GENRES);
      if (i >= sp.n_test) break;
      EXPECT_EQ_INT(row, sp.test[i]);
      int arg = 0;
      for (int k = 0; k < C; k++) {
        /* The file has 6 significant digits. */
        EXPECT_NEAR(probs[i * C + k], p[k], 1e-6);
        if (probs[i * C + k] > probs[i * C + arg]) arg = k;
      }
      EXPECT_EQ_INT(arg, pred);
      i++;
    }
  }
  EXPECT_EQ_INT(i, sp.n_test);
  if (f) fclose(f);
  free(csv);
  free(probs);
  mf_split_free(&sp);
  mf_dataset_free(ds);
  mf_classifier_free(c);
}

TEST(test_row_probabilities_sum_to_one_and_do_not_depend_on_batch_size) {
  setup();
  mf_classifier *c = load(g_audio.checkpoint);
  mf_dataset *ds;
  MF_CHECK(mf_dataset_load(g_audio_ds, &ds) == MF_OK, "%s", mf_error());
  const int C = mf_classifier_n_classes(c);
  float *a = malloc(sizeof(float) * (size_t)(ds->n * C));
  float *b = malloc(sizeof(float) * (size_t)(ds->n * C));
  mf_classify_options one = {1, NULL, NULL}, all = {1000, NULL, NULL};
  EXPECT(mf_classifier_rows(c, ds->features, NULL, ds->n, NULL, &one, a, NULL) == MF_OK, "%s",
         mf_error());
  EXPECT(mf_classifier_rows(c, ds->features, NULL, ds->n, NULL, &all, b, NULL) == MF_OK, "%s",
         mf_error());
  for (int64_t i = 0; i < ds->n; i++) {
    double sum = 0;
    for (int k = 0; k < C; k++) {
      sum += a[i * C + k];
      EXPECT(a[i * C + k] >= 0 && a[i * C + k] <= 1, "row %lld class %d: %g", (long long)i, k,
             a[i * C + k]);
      /* Eval mode has no batch statistics: only summation order inside BLAS may differ. */
      EXPECT_NEAR(a[i * C + k], b[i * C + k], 1e-6);
    }
    EXPECT_NEAR(sum, 1.0, 1e-5);
  }
  free(a);
  free(b);
  mf_dataset_free(ds);
  mf_classifier_free(c);
}

TEST(test_rows_leave_the_callers_features_unscaled) {
  setup();
  mf_classifier *c = load(g_audio.checkpoint);
  mf_dataset *ds;
  MF_CHECK(mf_dataset_load(g_audio_ds, &ds) == MF_OK, "%s", mf_error());
  EXPECT(mf_classifier_checkpoint(c)->scaler.kind == MF_SCALER_MINMAX,
         "expected the default scaler");
  const size_t bytes = sizeof(float) * (size_t)(ds->n * ds->row_size);
  float *copy = malloc(bytes);
  memcpy(copy, ds->features, bytes);
  float *p = malloc(sizeof(float) * (size_t)(ds->n * GENRES));
  EXPECT(mf_classifier_rows(c, ds->features, NULL, ds->n, NULL, NULL, p, NULL) == MF_OK, "%s",
         mf_error());
  EXPECT(memcmp(copy, ds->features, bytes) == 0, "the rows were changed");
  free(p);
  free(copy);
  mf_dataset_free(ds);
  mf_classifier_free(c);
}

/* A training file goes through read, resample (none: same rate), segmenting and the feature
 * exactly as extraction did, so its probabilities are the mean over its dataset rows. */
TEST(test_classify_file_equals_mean_over_its_dataset_rows) {
  setup();
  mf_classifier *c = load(g_audio.checkpoint);
  mf_dataset *ds;
  MF_CHECK(mf_dataset_load(g_audio_ds, &ds) == MF_OK, "%s", mf_error());
  const int C = mf_classifier_n_classes(c);
  const int t = ds->info.n_tracks - 1;
  int64_t idx[16], n = 0;
  for (int64_t i = 0; i < ds->n && n < 16; i++)
    if (ds->track[i] == t) idx[n++] = i;
  EXPECT_EQ_INT(n, 2);
  float *rp = malloc(sizeof(float) * (size_t)(n * C));
  EXPECT(mf_classifier_rows(c, ds->features, idx, n, NULL, NULL, rp, NULL) == MF_OK, "%s",
         mf_error());
  char *file = path_in("audio");
  char *full;
  if (asprintf(&full, "%s/%s", file, ds->info.tracks[t]) < 0) abort();
  float p[GENRES];
  int64_t segs = 0;
  EXPECT(mf_classifier_classify_file(c, full, p, &segs) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(segs, n);
  double total = 0;
  for (int k = 0; k < C; k++) {
    double mean = 0;
    for (int64_t i = 0; i < n; i++) mean += rp[i * C + k];
    mean /= (double)n;
    EXPECT_NEAR(p[k], mean, 1e-6);
    total += p[k];
  }
  EXPECT_NEAR(total, 1.0, 1e-5);
  free(full);
  free(file);
  free(rp);
  mf_dataset_free(ds);
  mf_classifier_free(c);
}

TEST(test_classify_file_too_short_names_file_and_lengths) {
  setup();
  mf_classifier *c = load(g_audio.checkpoint);
  char *wav = path_in("short.wav");
  float x[2400];
  for (int i = 0; i < 2400; i++) x[i] = 0.1f * sinf(0.05f * (float)i);
  MF_CHECK(mf_audio_write_wav(wav, x, 2400, RATE, 0) == MF_OK, "%s", mf_error());
  float p[GENRES];
  EXPECT(mf_classifier_classify_file(c, wav, p, NULL) == MF_EINVAL, "a 0.3 s file was accepted");
  EXPECT(strstr(mf_error(), wav) && strstr(mf_error(), "shorter than one segment") &&
             strstr(mf_error(), "0.30 s < 1.00 s"),
         "message: %s", mf_error());
  char *missing = path_in("no_such.wav");
  EXPECT(mf_classifier_classify_file(c, missing, p, NULL) == MF_ENOTFOUND, "%s", mf_error());
  EXPECT(strstr(mf_error(), missing) != NULL, "message lacks the path: %s", mf_error());
  free(missing);
  free(wav);
  mf_classifier_free(c);
}

TEST(test_imported_checkpoint_classifies_rows_but_not_audio) {
  setup();
  mf_classifier *c = load(g_kfold.checkpoint);
  EXPECT(mf_classifier_audio_ready(c) != MF_OK, "audio accepted without a feature plugin");
  EXPECT(strstr(mf_error(), "imported from json") && strstr(mf_error(), "cannot classify audio"),
         "message: %s", mf_error());
  float p[GENRES];
  char *any = path_in("audio/jazz/jazz.00000.wav");
  EXPECT(mf_classifier_classify_file(c, any, p, NULL) == MF_ESTATE, "expected MF_ESTATE");
  EXPECT(strstr(mf_error(), "imported from json") != NULL, "message: %s", mf_error());
  free(any);
  mf_classifier_free(c);
}

/* A copy of the dataset listing its classes in reverse order (labels renumbered): matching by
 * name maps them back and the metrics are the original's. */
TEST(test_match_reorders_classes_by_name) {
  setup();
  mf_classifier *c = load(g_audio.checkpoint);
  mf_dataset *ds, *rev;
  MF_CHECK(mf_dataset_load(g_audio_ds, &ds) == MF_OK, "%s", mf_error());
  MF_CHECK(mf_dataset_load(g_audio_ds, &rev) == MF_OK, "%s", mf_error());
  const int C = rev->info.n_classes;
  for (int k = 0; k < C / 2; k++) {
    char *t = rev->info.classes[k];
    rev->info.classes[k] = rev->info.classes[C - 1 - k];
    rev->info.classes[C - 1 - k] = t;
  }
  for (int64_t i = 0; i < rev->n; i++) rev->labels[i] = C - 1 - rev->labels[i];
  mf_dataset_match m;
  EXPECT(mf_classifier_match(c, &rev->info, &m) == MF_OK, "%s", mf_error());
  EXPECT(m.reordered && !m.missing && !m.warnings, "reordered %d missing %d warnings %s",
         m.reordered, m.missing, m.warnings ? m.warnings : "");
  for (int k = 0; k < C; k++) EXPECT_EQ_INT(m.label_map[k], C - 1 - k);
  mf_metrics a, b;
  EXPECT(mf_classifier_evaluate(c, ds, NULL, NULL, ds->n, 1, NULL, &a, NULL) == MF_OK, "%s",
         mf_error());
  EXPECT(mf_classifier_evaluate(c, rev, &m, NULL, rev->n, 1, NULL, &b, NULL) == MF_OK, "%s",
         mf_error());
  EXPECT(a.accuracy == b.accuracy && a.track_accuracy == b.track_accuracy,
         "accuracy %g / %g, track %g / %g", a.accuracy, b.accuracy, a.track_accuracy,
         b.track_accuracy);
  EXPECT_EQ_INT(a.top_k, 1);
  mf_metrics_clear(&a);
  mf_metrics_clear(&b);
  mf_dataset_match_clear(&m);
  mf_dataset_free(rev);
  mf_dataset_free(ds);
  mf_classifier_free(c);
}

TEST(test_match_rejects_unknown_class_naming_it) {
  setup();
  mf_classifier *c = load(g_audio.checkpoint);
  mf_dataset_info info;
  MF_CHECK(mf_dataset_read_info(g_audio_ds, &info) == MF_OK, "%s", mf_error());
  free(info.classes[1]);
  info.classes[1] = strdup("polka");
  mf_dataset_match m;
  EXPECT(mf_classifier_match(c, &info, &m) == MF_EINVAL, "an unknown class was accepted");
  EXPECT(strstr(mf_error(), "'polka'") && strstr(mf_error(), "electronic"), "message: %s",
         mf_error());
  EXPECT(m.label_map == NULL, "label map left allocated");
  mf_dataset_info_clear(&info);
  mf_classifier_free(c);
}

TEST(test_match_accepts_a_subset_of_classes_and_counts_the_missing) {
  setup();
  mf_classifier *c = load(g_audio.checkpoint);
  mf_dataset_info info;
  MF_CHECK(mf_dataset_read_info(g_audio_ds, &info) == MF_OK, "%s", mf_error());
  /* Only the last class, listed first. */
  free(info.classes[0]);
  info.classes[0] = strdup(mf_classifier_classes(c)[GENRES - 1]);
  info.n_classes = 1;
  mf_dataset_match m;
  EXPECT(mf_classifier_match(c, &info, &m) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(m.label_map[0], GENRES - 1);
  EXPECT_EQ_INT(m.missing, GENRES - 1);
  EXPECT(m.reordered, "class 0 maps to %d", m.label_map[0]);
  info.n_classes = GENRES;
  mf_dataset_match_clear(&m);
  mf_dataset_info_clear(&info);
  mf_classifier_free(c);
}

TEST(test_match_rejects_other_sample_shape_naming_both) {
  setup();
  mf_classifier *c = load(g_audio.checkpoint);
  mf_dataset_info info;
  MF_CHECK(mf_dataset_read_info(g_audio_ds, &info) == MF_OK, "%s", mf_error());
  char want[64], got[64];
  mf_shape_str(info.sample_shape, want, sizeof want);
  info.sample_shape.d[1] += 1;
  mf_shape_str(info.sample_shape, got, sizeof got);
  mf_dataset_match m;
  EXPECT(mf_classifier_match(c, &info, &m) == MF_EINVAL, "another shape was accepted");
  EXPECT(strstr(mf_error(), want) && strstr(mf_error(), got), "message: %s", mf_error());
  mf_dataset_info_clear(&info);
  mf_classifier_free(c);
}

TEST(test_match_warns_naming_feature_and_segmenting_differences) {
  setup();
  mf_classifier *c = load(g_audio.checkpoint);
  mf_dataset_info info;
  MF_CHECK(mf_dataset_read_info(g_audio_ds, &info) == MF_OK, "%s", mf_error());
  mf_dataset_match m;
  EXPECT(mf_classifier_match(c, &info, &m) == MF_OK, "%s", mf_error());
  EXPECT(m.warnings == NULL, "the training dataset differs: %s", m.warnings);
  mf_dataset_match_clear(&m);

  char *p = strstr(info.feature_params, "\"n_mels\":12");
  MF_CHECK(p, "feature params: %s", info.feature_params);
  memcpy(p, "\"n_mels\":13", 11);
  free(info.segmenting);
  info.segmenting = strdup(
      "{\"mode\":\"equal\",\"segments\":2,\"track_seconds\":2,\"pad\":\"zero\","
      "\"scope\":\"segment\"}");
  EXPECT(mf_classifier_match(c, &info, &m) == MF_OK, "%s", mf_error());
  EXPECT(m.warnings && strstr(m.warnings,
                              "feature parameter n_mels: 13 in the dataset, 12 in the "
                              "checkpoint"),
         "warnings: %s", m.warnings ? m.warnings : "(none)");
  /* 2 and 2.0 are one value; only pad differs. */
  EXPECT(m.warnings && strstr(m.warnings, "segmenting pad: \"zero\"") &&
             !strstr(m.warnings, "track_seconds"),
         "warnings: %s", m.warnings ? m.warnings : "(none)");
  mf_dataset_match_clear(&m);

  free(info.feature);
  info.feature = strdup("mfcc");
  EXPECT(mf_classifier_match(c, &info, &m) == MF_OK, "%s", mf_error());
  EXPECT(m.warnings && strstr(m.warnings,
                              "feature: 'mfcc' in the dataset, 'melspec' in the "
                              "checkpoint"),
         "warnings: %s", m.warnings ? m.warnings : "(none)");
  mf_dataset_match_clear(&m);
  mf_dataset_info_clear(&info);
  mf_classifier_free(c);
}

TEST(test_run_split_needs_the_stored_configuration) {
  setup();
  mf_checkpoint *ck;
  MF_CHECK(mf_checkpoint_load(g_audio.checkpoint, &ck) == MF_OK, "%s", mf_error());
  char *bare = path_in("bare.h5");
  mf_checkpoint_meta meta = ck->meta;
  meta.config = NULL;
  MF_CHECK(mf_checkpoint_save(bare, &meta, ck->model, NULL, &ck->scaler, 0, NULL, NULL) == MF_OK,
           "%s", mf_error());
  mf_checkpoint_free(ck);
  mf_classifier *c = load(bare);
  mf_dataset *ds;
  MF_CHECK(mf_dataset_load(g_audio_ds, &ds) == MF_OK, "%s", mf_error());
  mf_split sp;
  EXPECT(mf_classifier_run_split(c, ds, &sp, NULL, 0) == MF_ENOTFOUND, "expected MF_ENOTFOUND");
  EXPECT(strstr(mf_error(), "no training configuration") && strstr(mf_error(), bare), "message: %s",
         mf_error());
  /* Without the run's settings, the engine's defaults. */
  mf_classifier_settings st = mf_classifier_run_settings(c);
  EXPECT_EQ_INT(st.eval_batch_size, 128);
  EXPECT_EQ_INT(st.top_k, 3);
  mf_dataset_free(ds);
  mf_classifier_free(c);
  free(bare);
}

TEST(test_load_names_a_missing_checkpoint) {
  setup();
  char *nope = path_in("nope.h5");
  mf_classifier *c = NULL;
  EXPECT(mf_classifier_load(nope, &c) != MF_OK, "a missing file loaded");
  EXPECT(c == NULL, "out set on failure");
  EXPECT(strstr(mf_error(), nope) != NULL, "message lacks the path: %s", mf_error());
  free(nope);
}

TEST(test_settings_come_from_the_run) {
  setup();
  mf_classifier *c = load(g_audio.checkpoint);
  mf_classifier_settings st = mf_classifier_run_settings(c);
  EXPECT_EQ_INT(st.eval_batch_size, 5);
  EXPECT_EQ_INT(st.top_k, 3);
  EXPECT_NEAR(st.label_smoothing, 0.0, 0.0);
  mf_classifier_free(c);
}

TEST(test_top_k_orders_by_probability_with_ties_to_the_lower_index) {
  const float p[6] = {0.1f, 0.3f, 0.05f, 0.3f, 0.2f, 0.05f};
  int out[6];
  mf_top_k(p, 6, 3, out);
  EXPECT(out[0] == 1 && out[1] == 3 && out[2] == 4, "got %d %d %d", out[0], out[1], out[2]);
  mf_top_k(p, 6, 6, out);
  const int want[6] = {1, 3, 4, 0, 2, 5};
  for (int i = 0; i < 6; i++) EXPECT_EQ_INT(out[i], want[i]);
  mf_top_k(p, 6, 1, out);
  EXPECT_EQ_INT(out[0], 1);
}
