/* Lua experiments: scripts to mf_train_config (every key, defaults), positioned errors with
 * hints, overrides, and mf.run end to end on a tiny dataset written here. */
#define _GNU_SOURCE
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "melforge/component.h"
#include "melforge/dataset.h"
#include "melforge/experiment.h"
#include "mf_config.h"
#include "mftest.h"

static void load_plugins(void) {
  if (mf_component_count() == 0) mf_plugins_load_path(MF_BUILD_PLUGIN_DIR, NULL, NULL);
}

/* Resolves a script (named exp.lua in messages) with optional --set overrides. */
static mf_status load_with(const char *src, const char *const *sets, int n_set,
                           mf_train_config *cfg) {
  load_plugins();
  mf_lua_options opt = {0};
  opt.set = sets;
  opt.n_set = n_set;
  return mf_lua_load_config("exp.lua", src, &opt, cfg);
}

static mf_status load(const char *src, mf_train_config *cfg) {
  return load_with(src, NULL, 0, cfg);
}

/* The script must fail with a message holding every one of the given fragments. */
static void expect_error(int line, const char *src, const char *const *sets, int n_set,
                         const char *const *fragments) {
  mf_train_config cfg;
  mf_status s = load_with(src, sets, n_set, &cfg);
  if (s == MF_OK) {
    mftest_fail(__FILE__, line, "the script was accepted");
    mf_train_config_clear(&cfg);
    return;
  }
  for (int i = 0; fragments[i]; i++)
    if (!strstr(mf_error(), fragments[i]))
      mftest_fail(__FILE__, line, "message lacks \"%s\": %s", fragments[i], mf_error());
}
#define EXPECT_ERROR(src, ...) \
  expect_error(__LINE__, src, NULL, 0, (const char *const[]){__VA_ARGS__, NULL})
#define EXPECT_SET_ERROR(src, set, ...)                      \
  expect_error(__LINE__, src, (const char *const[]){set}, 1, \
               (const char *const[]){__VA_ARGS__, NULL})

static double pf(const mf_values *v, const char *name) { return mf_values_float(v, name); }

/* A valid experiment around one varying line (kept on line 5 of the script). */
#define MIN_HEAD                       \
  "local mf = require \"melforge\"\n"  \
  "return mf.experiment {\n"           \
  "  name = \"t\", data = \"d.h5\",\n" \
  "  model = mf.model(\"mlp\"),\n"
#define MIN_TAIL "}\n"

TEST(test_lua_full_experiment_fills_every_config_field) {
  const char *src =
      "local mf = require \"melforge\"\n"
      "return mf.experiment {\n"
      "  name = \"full\", seed = 7,\n"
      "  data = mf.dataset { audio = \"data/genres\", cache = \"cache/mfcc.h5\",\n"
      "                      feature = mf.feature(\"mfcc\", { n_mfcc = 20 }),\n"
      "                      segments = 5, track_seconds = 29, pad = \"zero\", scope = \"track\",\n"
      "                      sample_rate = 16000 },\n"
      "  split = { train = 0.7, val = 0.1, test = 0.2, stratify = false, group = \"none\",\n"
      "            kfold = 5, fold = 2 },\n"
      "  scaler = { kind = \"standard\", per_band = true },\n"
      "  augment = {},\n"
      "  model = mf.model(\"cnn\", { filters = { 16, 32 }, dropout = 0.5 }),\n"
      "  optimizer = mf.optimizer(\"sgd\", { lr = 0.05, momentum = 0.9, dampening = 0.1,\n"
      "                                     nesterov = false, weight_decay = 1e-4 }),\n"
      "  schedule = mf.schedule(\"step\", { step_size = 3, gamma = 0.5, warmup = 2,\n"
      "                                   warmup_start_factor = 0.25 }),\n"
      "  epochs = 12, batch_size = 16, eval_batch_size = 64, clip_grad_norm = 2.5,\n"
      "  label_smoothing = 0.1,\n"
      "  early_stopping = { monitor = \"val_accuracy\", patience = 4, min_delta = 0.01,\n"
      "                     restore_best = true },\n"
      "  checkpoint = { monitor = \"val_macro_f1\" },\n"
      "  top_k = 2, out = \"myruns/\",\n"
      "}\n";
  mf_train_config c;
  mf_status s = load(src, &c);
  EXPECT(s == MF_OK, "%s", mf_error());
  if (s != MF_OK) return;
  EXPECT(!strcmp(c.name, "full"), "name %s", c.name);
  EXPECT_EQ_INT(c.seed, 7);
  EXPECT(!strcmp(c.data.path, "cache/mfcc.h5"), "path %s", c.data.path);
  EXPECT(!strcmp(c.data.audio_dir, "data/genres"), "audio %s", c.data.audio_dir);
  EXPECT(!strcmp(mf_component_name(c.data.feature.component), "mfcc"), "feature");
  EXPECT_EQ_INT(mf_values_int(c.data.feature.values, "n_mfcc"), 20);
  EXPECT_EQ_INT(c.data.seg.mode, MF_SEG_EQUAL);
  EXPECT_EQ_INT(c.data.seg.segments, 5);
  EXPECT_NEAR(c.data.seg.track_seconds, 29, 0);
  EXPECT_EQ_INT(c.data.seg.pad, MF_PAD_ZERO);
  EXPECT_EQ_INT(c.data.seg.scope, MF_SCOPE_TRACK);
  EXPECT_NEAR(c.data.sample_rate, 16000, 0);
  EXPECT_NEAR(c.split.train, 0.7, 0);
  EXPECT_NEAR(c.split.val, 0.1, 0);
  EXPECT_NEAR(c.split.test, 0.2, 0);
  EXPECT_EQ_INT(c.split.stratify, 0);
  EXPECT_EQ_INT(c.split.group_by_track, 0);
  EXPECT_EQ_INT(c.split.kfold, 5);
  EXPECT_EQ_INT(c.split.fold, 2);
  EXPECT_EQ_INT(c.scaler, MF_SCALER_STANDARD);
  EXPECT_EQ_INT(c.scaler_per_band, 1);
  EXPECT_EQ_INT(c.n_augment, 0);
  EXPECT(!strcmp(mf_component_name(c.model.component), "cnn"), "model");
  const int64_t *filters;
  EXPECT_EQ_INT(mf_values_ints(c.model.values, "filters", &filters), 2);
  EXPECT_EQ_INT(filters[0], 16);
  EXPECT_EQ_INT(filters[1], 32);
  EXPECT_NEAR(pf(c.model.values, "dropout"), 0.5, 0);
  EXPECT_EQ_INT(c.optim.kind, MF_OPTIM_SGD);
  EXPECT_NEAR(c.optim.lr, 0.05f, 0);
  EXPECT_NEAR(c.optim.momentum, 0.9f, 0);
  EXPECT_NEAR(c.optim.dampening, 0.1f, 0);
  EXPECT_EQ_INT(c.optim.nesterov, 0);
  EXPECT_NEAR(c.optim.weight_decay, 1e-4f, 0);
  EXPECT_EQ_INT(c.schedule.kind, MF_SCHED_STEP);
  EXPECT_EQ_INT(c.schedule.step_size, 3);
  EXPECT_NEAR(c.schedule.gamma, 0.5, 0);
  EXPECT_EQ_INT(c.schedule.warmup, 2);
  EXPECT_NEAR(c.schedule.warmup_start_factor, 0.25, 0);
  EXPECT_NEAR(c.schedule.base_lr, 0.05f, 0);
  EXPECT_EQ_INT(c.epochs, 12);
  EXPECT_EQ_INT(c.batch_size, 16);
  EXPECT_EQ_INT(c.eval_batch_size, 64);
  EXPECT_NEAR(c.clip_grad_norm, 2.5, 0);
  EXPECT_NEAR(c.label_smoothing, 0.1, 0);
  EXPECT_EQ_INT(c.early_stopping.enabled, 1);
  EXPECT_EQ_INT(c.early_stopping.monitor, MF_MON_VAL_ACCURACY);
  EXPECT_EQ_INT(c.early_stopping.patience, 4);
  EXPECT_NEAR(c.early_stopping.min_delta, 0.01, 0);
  EXPECT_EQ_INT(c.early_stopping.restore_best, 1);
  EXPECT_EQ_INT(c.checkpoint_monitor, MF_MON_VAL_MACRO_F1);
  EXPECT_EQ_INT(c.top_k, 2);
  EXPECT(!strcmp(c.out_dir, "myruns/full/7"), "out_dir %s", c.out_dir);
  EXPECT(!strcmp(c.source_name, "exp.lua"), "source_name %s", c.source_name);
  EXPECT(!strcmp(c.source_text, src), "source_text differs");
  mf_train_config_clear(&c);
}

TEST(test_lua_adam_betas_cosine_and_split_lists) {
  const char *src = MIN_HEAD
      "  optimizer = mf.optimizer(\"adamw\", { lr = 3e-4, betas = { 0.8, 0.95 }, eps = 1e-6,\n"
      "                                       amsgrad = true, weight_decay = 0.05 }),\n"
      "  schedule = mf.schedule(\"cosine\", { T_max = 30, eta_min = 1e-5 }),\n"
      "  split = { train_list = \"train.txt\", val_list = \"val.txt\", test_list = \"test.txt\" "
      "},\n"
      "  scaler = \"none\",\n" MIN_TAIL;
  mf_train_config c;
  mf_status s = load(src, &c);
  EXPECT(s == MF_OK, "%s", mf_error());
  if (s != MF_OK) return;
  EXPECT_EQ_INT(c.optim.kind, MF_OPTIM_ADAMW);
  EXPECT_NEAR(c.optim.lr, 3e-4f, 0);
  EXPECT_NEAR(c.optim.beta1, 0.8f, 0);
  EXPECT_NEAR(c.optim.beta2, 0.95f, 0);
  EXPECT_NEAR(c.optim.eps, 1e-6f, 0);
  EXPECT_EQ_INT(c.optim.amsgrad, 1);
  EXPECT_NEAR(c.optim.weight_decay, 0.05f, 0);
  EXPECT_EQ_INT(c.schedule.kind, MF_SCHED_COSINE);
  EXPECT_EQ_INT(c.schedule.t_max, 30);
  EXPECT_NEAR(c.schedule.eta_min, 1e-5, 0);
  EXPECT(c.split_files[0] && !strcmp(c.split_files[0], "train.txt"), "train_list");
  EXPECT(c.split_files[1] && !strcmp(c.split_files[1], "val.txt"), "val_list");
  EXPECT(c.split_files[2] && !strcmp(c.split_files[2], "test.txt"), "test_list");
  EXPECT_EQ_INT(c.scaler, MF_SCALER_NONE);
  mf_train_config_clear(&c);
}

TEST(test_lua_dataset_windows_and_ready_files) {
  const char *src = MIN_HEAD
      "  data = mf.dataset { audio = 'a', cache = 'w.h5', feature = mf.feature('melspec'),\n"
      "                      window_seconds = 2, hop_seconds = 0.5, pad = 'drop' },\n"
      "  schedule = mf.schedule('plateau', { threshold = 0.01, cooldown = 2, min_lr = 1e-6 }),\n"
      "  early_stopping = false,\n" MIN_TAIL;
  mf_train_config c;
  mf_status s = load(src, &c);
  EXPECT(s == MF_OK, "%s", mf_error());
  if (s == MF_OK) {
    EXPECT_EQ_INT(c.data.seg.mode, MF_SEG_WINDOW);
    EXPECT_NEAR(c.data.seg.window_seconds, 2, 0);
    EXPECT_NEAR(c.data.seg.hop_seconds, 0.5, 0);
    EXPECT_EQ_INT(c.data.seg.pad, MF_PAD_DROP);
    EXPECT(!strcmp(mf_component_name(c.data.feature.component), "melspec"), "feature");
    EXPECT_NEAR(c.schedule.threshold, 0.01, 0);
    EXPECT_EQ_INT(c.schedule.cooldown, 2);
    EXPECT_NEAR(c.schedule.min_lr, 1e-6, 0);
    EXPECT_EQ_INT(c.early_stopping.enabled, 0);
    mf_train_config_clear(&c);
  }
  s = load(MIN_HEAD "  data = mf.dataset { path = 'ready.h5' },\n" MIN_TAIL, &c);
  EXPECT(s == MF_OK, "%s", mf_error());
  if (s == MF_OK) {
    EXPECT(!strcmp(c.data.path, "ready.h5") && !c.data.audio_dir && !c.data.feature.component,
           "a ready dataset has no recipe");
    mf_train_config_clear(&c);
  }
  /* data.path given to a recipe replaces it with the ready file. */
  const char *set = "data.path=other.h5";
  s = load_with(MIN_HEAD "  data = { audio = 'a', cache = 'c.h5', feature = 'mfcc' },\n" MIN_TAIL,
                &set, 1, &c);
  EXPECT(s == MF_OK, "%s", mf_error());
  if (s == MF_OK) {
    EXPECT(!strcmp(c.data.path, "other.h5") && !c.data.audio_dir, "recipe kept: %s",
           c.data.audio_dir);
    mf_train_config_clear(&c);
  }
}

TEST(test_lua_augment_takes_a_list_of_augmentations_only) {
  mf_train_config c;
  mf_status s = load(MIN_HEAD "  augment = false,\n" MIN_TAIL, &c);
  EXPECT(s == MF_OK, "%s", mf_error());
  if (s == MF_OK) {
    EXPECT_EQ_INT(c.n_augment, 0);
    mf_train_config_clear(&c);
  }
  EXPECT_ERROR(MIN_HEAD "  augment = { mf.model('mlp') },\n" MIN_TAIL,
               "exp.lua:2:", "augment[1] expects an augmentation", "the model 'mlp'");
  EXPECT_ERROR(MIN_HEAD "  augment = { mask = 3 },\n" MIN_TAIL,
               "augment expects a list of augmentations");
}

/* Augmentation plugins arrive separately: with them built, the list fills cfg.augment in
 * order; without, naming one is an error at the script line. */
TEST(test_lua_augment_list_fills_the_config_in_order) {
  load_plugins();
  mf_train_config c;
  if (!mf_component_find(MF_KIND_AUGMENT, "noise") || !mf_component_find(MF_KIND_AUGMENT, "gain")) {
    EXPECT_ERROR(MIN_HEAD "  augment = { 'noise' },\n" MIN_TAIL, "exp.lua:2:", "'noise'");
    return;
  }
  const char *set = "augment={gain}";
  mf_status s =
      load(MIN_HEAD "  augment = { mf.augment('noise', { p = 0.5 }), 'gain' },\n" MIN_TAIL, &c);
  EXPECT(s == MF_OK, "%s", mf_error());
  if (s == MF_OK) {
    EXPECT_EQ_INT(c.n_augment, 2);
    EXPECT(!strcmp(mf_component_name(c.augment[0].component), "noise"), "first");
    EXPECT_NEAR(mf_values_float(c.augment[0].values, "p"), 0.5, 0);
    EXPECT(!strcmp(mf_component_name(c.augment[1].component), "gain"), "second");
    mf_train_config_clear(&c);
  }
  s = load_with(MIN_HEAD "  augment = { 'noise' },\n" MIN_TAIL, &set, 1, &c);
  EXPECT(s == MF_OK, "%s", mf_error());
  if (s == MF_OK) {
    EXPECT_EQ_INT(c.n_augment, 1);
    EXPECT(!strcmp(mf_component_name(c.augment[0].component), "gain"), "--set replaces the list");
    mf_train_config_clear(&c);
  }
  EXPECT_ERROR("local mf = require 'melforge'\nlocal a = mf.augment('noise', { pp = 1 })\n",
               "exp.lua:2:", "augment 'noise' has no parameter 'pp'; did you mean 'p'?");
}

TEST(test_lua_defaults_match_the_engine_defaults) {
  mf_train_config c, d;
  mf_status s = load(MIN_HEAD MIN_TAIL, &c);
  EXPECT(s == MF_OK, "%s", mf_error());
  if (s != MF_OK) return;
  mf_train_config_init(&d);
  EXPECT_EQ_INT(c.seed, d.seed);
  EXPECT(!strcmp(c.data.path, "d.h5") && !c.data.audio_dir, "a plain path is a ready dataset");
  EXPECT_NEAR(c.split.train, d.split.train, 0);
  EXPECT_NEAR(c.split.val, d.split.val, 0);
  EXPECT_NEAR(c.split.test, d.split.test, 0);
  EXPECT_EQ_INT(c.split.group_by_track, 1);
  EXPECT_EQ_INT(c.split.stratify, 1);
  EXPECT_EQ_INT(c.scaler, d.scaler);
  EXPECT_EQ_INT(c.optim.kind, d.optim.kind);
  EXPECT_NEAR(c.optim.lr, d.optim.lr, 0);
  EXPECT_EQ_INT(c.schedule.kind, MF_SCHED_CONSTANT);
  EXPECT_EQ_INT(c.epochs, d.epochs);
  EXPECT_EQ_INT(c.batch_size, d.batch_size);
  EXPECT_EQ_INT(c.early_stopping.enabled, 0);
  EXPECT_EQ_INT(c.checkpoint_monitor, d.checkpoint_monitor);
  EXPECT_EQ_INT(c.top_k, d.top_k);
  EXPECT(!strcmp(c.out_dir, "runs/t/42"), "out_dir %s", c.out_dir);
  /* The model's parameters are its schema defaults. */
  const int64_t *hidden;
  EXPECT_EQ_INT(mf_values_ints(c.model.values, "hidden", &hidden), 3);
  EXPECT_EQ_INT(hidden[0], 512);
  EXPECT_EQ_INT(mf_values_is_set(c.model.values, "hidden"), 0);
  mf_train_config_clear(&c);
  mf_train_config_clear(&d);
}

TEST(test_lua_split_ratios_left_out_take_the_rest) {
  mf_train_config c;
  mf_status s = load(MIN_HEAD "  split = { train = 0.8, test = 0.2 },\n" MIN_TAIL, &c);
  EXPECT(s == MF_OK, "%s", mf_error());
  if (s == MF_OK) {
    EXPECT_NEAR(c.split.val, 0, 1e-12);
    mf_train_config_clear(&c);
  }
  s = load(MIN_HEAD "  split = { val = 0.1, test = 0.1 },\n" MIN_TAIL, &c);
  EXPECT(s == MF_OK, "%s", mf_error());
  if (s == MF_OK) {
    EXPECT_NEAR(c.split.train, 0.8, 1e-12);
    mf_train_config_clear(&c);
  }
}

TEST(test_lua_plateau_mode_follows_the_monitored_metric_unless_given) {
  mf_train_config c;
  mf_status s = load(MIN_HEAD
                     "  schedule = mf.schedule(\"plateau\", { factor = 0.5, patience = 2 }),\n"
                     "  early_stopping = { monitor = \"val_accuracy\" },\n" MIN_TAIL,
                     &c);
  EXPECT(s == MF_OK, "%s", mf_error());
  if (s == MF_OK) {
    EXPECT_EQ_INT(c.schedule.kind, MF_SCHED_PLATEAU);
    EXPECT_EQ_INT(c.schedule.mode_max, 1);
    EXPECT_NEAR(c.schedule.factor, 0.5, 0);
    EXPECT_EQ_INT(c.schedule.patience, 2);
    mf_train_config_clear(&c);
  }
  s = load(MIN_HEAD
           "  schedule = mf.schedule(\"plateau\", { mode = \"min\" }),\n"
           "  early_stopping = { monitor = \"val_accuracy\" },\n" MIN_TAIL,
           &c);
  EXPECT(s == MF_OK, "%s", mf_error());
  if (s == MF_OK) {
    EXPECT_EQ_INT(c.schedule.mode_max, 0);
    mf_train_config_clear(&c);
  }
}

TEST(test_lua_plugin_values_keep_integers_and_floats_apart) {
  mf_train_config c;
  mf_status s = load(MIN_HEAD
                     "  model = mf.model(\"mlp\", { hidden = { 64, 32 }, dropout = { 0.2, 0.1 },\n"
                     "                             activation = \"gelu\" }),\n" MIN_TAIL,
                     &c);
  EXPECT(s == MF_OK, "%s", mf_error());
  if (s == MF_OK) {
    const int64_t *h;
    const double *d;
    EXPECT_EQ_INT(mf_values_ints(c.model.values, "hidden", &h), 2);
    EXPECT_EQ_INT(h[1], 32);
    EXPECT_EQ_INT(mf_values_floats(c.model.values, "dropout", &d), 2);
    EXPECT_NEAR(d[0], 0.2, 0);
    EXPECT(!strcmp(mf_values_string(c.model.values, "activation"), "gelu"), "activation");
    mf_train_config_clear(&c);
  }
  EXPECT_ERROR(MIN_HEAD "  model = mf.model(\"mlp\", { hidden = { 64.5 } }),\n" MIN_TAIL,
               "exp.lua:5:", "model 'mlp'", "'hidden'");
}

TEST(test_lua_experiment_methods_copy_and_read_back) {
  const char *src =
      "local mf = require \"melforge\"\n"
      "local base = mf.experiment { name = \"b\", data = \"d.h5\", model = mf.model(\"mlp\") }\n"
      "local e = base:with { seed = 9, model = { dropout = { 0.5 } } }\n"
      "assert(base.seed == 42 and e.seed == 9, 'with must copy')\n"
      "assert(e.model.name == 'mlp' and e.name == 'b')\n"
      "e.epochs = 3\n"
      "e['optimizer.lr'] = 0.01\n"
      "assert(e.epochs == 3)\n"
      "return e\n";
  mf_train_config c;
  mf_status s = load(src, &c);
  EXPECT(s == MF_OK, "%s", mf_error());
  if (s != MF_OK) return;
  EXPECT_EQ_INT(c.seed, 9);
  EXPECT_EQ_INT(c.epochs, 3);
  EXPECT_NEAR(c.optim.lr, 0.01f, 0);
  const double *d;
  EXPECT_EQ_INT(mf_values_floats(c.model.values, "dropout", &d), 1);
  EXPECT_NEAR(d[0], 0.5, 0);
  mf_train_config_clear(&c);
}

TEST(test_lua_plain_table_is_an_experiment) {
  mf_train_config c;
  mf_status s = load("return { name = 'p', data = 'd.h5', model = 'mlp', epochs = 4 }\n", &c);
  EXPECT(s == MF_OK, "%s", mf_error());
  if (s != MF_OK) return;
  EXPECT(!strcmp(mf_component_name(c.model.component), "mlp"), "model by name");
  EXPECT_EQ_INT(c.epochs, 4);
  mf_train_config_clear(&c);
}

/* ---- errors --------------------------------------------------------------------------------- */

TEST(test_lua_unknown_experiment_key_names_file_line_and_hint) {
  EXPECT_ERROR(MIN_HEAD "  epoch = 3,\n" MIN_TAIL, "exp.lua:2:", "experiment has no key 'epoch'",
               "did you mean 'epochs'?");
}

TEST(test_lua_unknown_keys_in_sections_get_hints) {
  EXPECT_ERROR(MIN_HEAD "  split = { stratfy = true },\n" MIN_TAIL,
               "exp.lua:2:", "split has no key 'stratfy'; did you mean 'stratify'?");
  EXPECT_ERROR(MIN_HEAD "  early_stopping = { patince = 3 },\n" MIN_TAIL,
               "early_stopping has no key 'patince'; did you mean 'patience'?");
  EXPECT_ERROR(MIN_HEAD "  checkpoint = { monitr = 'val_loss' },\n" MIN_TAIL,
               "checkpoint has no key 'monitr'; did you mean 'monitor'?");
  EXPECT_ERROR(MIN_HEAD "  scaler = { knd = 'minmax' },\n" MIN_TAIL,
               "scaler has no key 'knd'; did you mean 'kind'?");
  EXPECT_ERROR(
      "local mf = require 'melforge'\n"
      "local d = mf.dataset { audio = 'a',\n"
      "  cach = 'x.h5' }\n",
      "exp.lua:2:", "dataset has no key 'cach'; did you mean 'cache'?");
  EXPECT_ERROR(MIN_HEAD "  data = { path = 'd.h5', segmnts = 3 },\n" MIN_TAIL,
               "data has no key 'segmnts'; did you mean 'segments'?");
}

TEST(test_lua_misspelt_plugin_parameter_points_at_the_call) {
  EXPECT_ERROR(
      "local mf = require \"melforge\"\n"
      "\n"
      "local m =\n"
      "  mf.model(\"cnn\", { filtres = { 32, 64 } })\n",
      "exp.lua:4:", "model 'cnn' has no parameter 'filtres'; did you mean 'filters'?");
  EXPECT_ERROR(
      "local mf = require \"melforge\"\n"
      "local f = mf.feature(\"mfcc\", { n_mfc = 13 })\n",
      "exp.lua:2:", "feature 'mfcc' has no parameter 'n_mfc'; did you mean 'n_mfcc'?");
  EXPECT_ERROR("local mf = require \"melforge\"\nlocal m = mf.model(\"cnnn\")\n",
               "exp.lua:2:", "no model named 'cnnn'; did you mean 'cnn'?");
  EXPECT_ERROR("local mf = require \"melforge\"\nlocal a = mf.augment(\"specaugmnt\")\n",
               "exp.lua:2:", "specaugmnt");
}

TEST(test_lua_wrong_types_name_the_key_and_the_expected_type) {
  EXPECT_ERROR(MIN_HEAD "  epochs = \"ten\",\n" MIN_TAIL,
               "exp.lua:2:", "epochs expects an integer in [1, 100000], got the string \"ten\"");
  EXPECT_ERROR(MIN_HEAD "  epochs = 2.5,\n" MIN_TAIL, "epochs expects an integer");
  EXPECT_ERROR(MIN_HEAD "  split = { stratify = \"yes\" },\n" MIN_TAIL,
               "split.stratify expects true or false, got the string \"yes\"");
  EXPECT_ERROR(MIN_HEAD "  split = { group = \"tracks\" },\n" MIN_TAIL,
               "split.group must be \"track\"", "\"none\"");
  EXPECT_ERROR(MIN_HEAD "  seed = -1,\n" MIN_TAIL, "seed expects an integer >= 0, got -1");
  EXPECT_ERROR(MIN_HEAD "  model = mf.feature(\"mfcc\"),\n" MIN_TAIL,
               "model expects a model, got the feature 'mfcc'");
  EXPECT_ERROR(MIN_HEAD "  scaler = 3,\n" MIN_TAIL, "scaler expects \"minmax\"");
  EXPECT_ERROR(MIN_HEAD "  scaler = \"minmix\",\n" MIN_TAIL, "scaler", "minmix");
  EXPECT_ERROR(MIN_HEAD "  early_stopping = { monitor = \"val_acc\" },\n" MIN_TAIL,
               "early_stopping.monitor", "val_acc");
  EXPECT_ERROR(
      "local mf = require 'melforge'\n"
      "local m = mf.model('cnn', { dropout = 'high' })\n",
      "exp.lua:2:", "model 'cnn'", "'dropout'", "the string \"high\"");
  EXPECT_ERROR(
      "local mf = require 'melforge'\n"
      "local o = mf.optimizer('adam', { lr = 'fast' })\n",
      "exp.lua:2:", "optimizer.lr expects a number");
  EXPECT_ERROR(
      "local mf = require 'melforge'\n"
      "local o = mf.optimizer('adam', { betas = { 0.9 } })\n",
      "optimizer.betas expects {beta1, beta2}");
}

TEST(test_lua_optimizer_and_schedule_parameters_depend_on_the_kind) {
  EXPECT_ERROR(
      "local mf = require 'melforge'\n"
      "local o = mf.optimizer('adam', { momentum = 0.9 })\n",
      "exp.lua:2:", "optimizer 'adam' has no parameter 'momentum'");
  EXPECT_ERROR(
      "local mf = require 'melforge'\n"
      "local o = mf.optimizer('sgd', { lr = 0.1, beta1 = 0.9 })\n",
      "optimizer 'sgd' has no parameter 'beta1'");
  EXPECT_ERROR("local mf = require 'melforge'\nlocal o = mf.optimizer('adm')\n",
               "exp.lua:2:", "unknown optimizer 'adm'; did you mean 'adam'?");
  EXPECT_ERROR(
      "local mf = require 'melforge'\n"
      "local s = mf.schedule('cosine', { step_size = 3 })\n",
      "schedule 'cosine' has no parameter 'step_size'");
  EXPECT_ERROR(
      "local mf = require 'melforge'\n"
      "local s = mf.schedule('plateau', { factr = 0.5 })\n",
      "schedule 'plateau' has no parameter 'factr'; did you mean 'factor'?");
  EXPECT_ERROR("local mf = require 'melforge'\nlocal s = mf.schedule('cosin')\n",
               "did you mean 'cosine'?");
}

TEST(test_lua_missing_required_keys_are_errors) {
  EXPECT_ERROR(
      "local mf = require 'melforge'\n"
      "return mf.experiment { name = 'x', data = 'd.h5' }\n",
      "exp.lua:2:", "needs a model");
  EXPECT_ERROR(
      "local mf = require 'melforge'\n"
      "return mf.experiment { data = 'd.h5', model = mf.model('mlp') }\n",
      "exp.lua:2:", "needs a name");
  EXPECT_ERROR(
      "local mf = require 'melforge'\n"
      "return mf.experiment { name = 'x', model = mf.model('mlp') }\n",
      "exp.lua:2:", "needs data");
  EXPECT_ERROR(
      "local mf = require 'melforge'\n"
      "local d = mf.dataset { audio = 'a', cache = 'c.h5' }\n",
      "exp.lua:2:", "needs feature");
  EXPECT_ERROR(
      "local mf = require 'melforge'\n"
      "local d = mf.dataset { path = 'a.h5', audio = 'x' }\n",
      "exp.lua:2:", "either path", "not both");
  EXPECT_ERROR(MIN_HEAD "  data = { audio = 'a', feature = 'mfcc' },\n" MIN_TAIL,
               "needs cache = \"file.h5\"");
  EXPECT_ERROR(
      "local mf = require 'melforge'\n"
      "local d = mf.dataset { path = 'a.h5', segments = 3 }\n",
      "'segments' belongs to an audio recipe");
}

TEST(test_lua_script_errors_keep_their_position) {
  EXPECT_ERROR("local mf = require 'melforge'\nlocal x = {\n", "exp.lua:", "expected");
  EXPECT_ERROR("local mf = require 'melforge'\n\nlocal y = nil + 1\n", "exp.lua:3:");
  EXPECT_ERROR("return 42\n", "must return an experiment");
}

TEST(test_lua_run_cannot_train_while_only_reading_the_config) {
  EXPECT_ERROR(
      "local mf = require 'melforge'\n"
      "local e = mf.experiment { name = 'x', data = 'd.h5', model = mf.model('mlp') }\n"
      "mf.run(e)\n",
      "exp.lua:3:", "mf.run cannot be used");
}

/* ---- overrides ------------------------------------------------------------------------------ */

TEST(test_lua_overrides_reach_dotted_keys) {
  const char *src =
      "local mf = require 'melforge'\n"
      "return mf.experiment {\n"
      "  name = 'o', data = mf.dataset { audio = 'a', cache = 'c.h5',\n"
      "                                  feature = mf.feature('mfcc') },\n"
      "  model = mf.model('cnn'),\n"
      "}\n";
  const char *sets[] = {"epochs=5",
                        "seed=3",
                        "model.dropout=0.3",
                        "optimizer.lr=1e-4",
                        "data.cache=x.h5",
                        "split.group=none",
                        "early_stopping.patience=3",
                        "scaler=standard",
                        "data.feature.n_mfcc=20",
                        "split.val=0",
                        "model.filters={8, 16}",
                        "optimizer=sgd"};
  mf_train_config c;
  mf_status s = load_with(src, sets, 12, &c);
  EXPECT(s == MF_OK, "%s", mf_error());
  if (s != MF_OK) return;
  EXPECT_EQ_INT(c.epochs, 5);
  EXPECT_EQ_INT(c.seed, 3);
  EXPECT_NEAR(pf(c.model.values, "dropout"), 0.3, 0);
  EXPECT(!strcmp(c.data.path, "x.h5"), "cache %s", c.data.path);
  EXPECT(c.data.audio_dir && !strcmp(c.data.audio_dir, "a"), "recipe kept");
  EXPECT_EQ_INT(mf_values_int(c.data.feature.values, "n_mfcc"), 20);
  EXPECT_EQ_INT(c.split.group_by_track, 0);
  EXPECT_NEAR(c.split.val, 0, 0);
  EXPECT_NEAR(c.split.train, 0.8, 1e-12);
  EXPECT_EQ_INT(c.early_stopping.enabled, 1);
  EXPECT_EQ_INT(c.early_stopping.patience, 3);
  EXPECT_EQ_INT(c.scaler, MF_SCALER_STANDARD);
  const int64_t *f;
  EXPECT_EQ_INT(mf_values_ints(c.model.values, "filters", &f), 2);
  EXPECT_EQ_INT(f[1], 16);
  /* optimizer=sgd came after optimizer.lr: the kind's defaults replace the rate. */
  EXPECT_EQ_INT(c.optim.kind, MF_OPTIM_SGD);
  EXPECT_NEAR(c.optim.lr, 0.01f, 0);
  EXPECT(!strcmp(c.out_dir, "runs/o/3"), "out_dir %s", c.out_dir);
  mf_train_config_clear(&c);
}

TEST(test_lua_override_typos_are_errors_with_hints) {
  EXPECT(mf_lua_check_override("epoch=5") == MF_EINVAL, "epoch accepted");
  EXPECT(strstr(mf_error(), "--set epoch=5: experiment has no key 'epoch'; did you mean 'epochs'?"),
         "%s", mf_error());
  EXPECT(mf_lua_check_override("optimizer.lrr=1") == MF_EINVAL, "optimizer.lrr accepted");
  EXPECT(strstr(mf_error(), "did you mean 'lr'?"), "%s", mf_error());
  EXPECT(mf_lua_check_override("split.grup=none") == MF_EINVAL, "split.grup accepted");
  EXPECT(strstr(mf_error(), "split has no key 'grup'; did you mean 'group'?"), "%s", mf_error());
  EXPECT(mf_lua_check_override("epochs=five") == MF_EINVAL, "epochs=five accepted");
  EXPECT(strstr(mf_error(), "epochs expects an integer, got 'five'"), "%s", mf_error());
  EXPECT(mf_lua_check_override("epochs") == MF_EINVAL, "no '=' accepted");
  EXPECT(mf_lua_check_override("split=x") == MF_EINVAL, "a section set to text accepted");
  EXPECT(mf_lua_check_override("model.dropout=0.3") == MF_OK, "%s", mf_error());
  EXPECT(mf_lua_check_override("optimizer.momentum=0.9") == MF_OK, "%s", mf_error());
  EXPECT(mf_lua_check_override("early_stopping=false") == MF_OK, "%s", mf_error());
  /* Plugin parameter names are checked against the plugin when the override applies. */
  EXPECT_SET_ERROR(MIN_HEAD MIN_TAIL, "model.dropuot=0.3",
                   "--set model.dropuot=0.3: model 'mlp' has no parameter 'dropuot'; did you "
                   "mean 'dropout'?");
  EXPECT_SET_ERROR(MIN_HEAD MIN_TAIL, "optimizer.momentum=0.9",
                   "--set optimizer.momentum=0.9: optimizer 'adam' has no parameter 'momentum'");
  EXPECT_SET_ERROR(MIN_HEAD MIN_TAIL, "model.hidden={1, x}", "--set model.hidden={1, x}",
                   "'hidden'");
}

/* ---- mf.run end to end ---------------------------------------------------------------------- */

static char g_dir[64];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

/* A class name far longer than the usual genre names (folder names may be): the run's CSV
 * files must hold it whole. */
#define LONG_CLASS                                                                          \
  "rock_and_roll_recorded_live_in_the_nineteen_seventies_on_analogue_tape_then_remastered_" \
  "for_compact_disc_and_released_again_as_a_deluxe_edition_with_bonus_tracks_and_liner_notes"

/* 3 classes x 8 tracks x 3 segments of [6, 4] features: class means apart, some noise. */
static const char *tiny_dataset(void) {
  static char path[128];
  snprintf(g_dir, sizeof g_dir, "/tmp/mf_test_lua_XXXXXX");
  if (!mkdtemp(g_dir)) return NULL;
  snprintf(path, sizeof path, "%s/tiny.h5", g_dir);
  enum { C = 3, T = 8, S = 3, F = 24 };
  char *classes[C] = {"blues", "jazz", LONG_CLASS};
  char *tracks[C * T];
  char names[C * T][256];
  for (int i = 0; i < C * T; i++) {
    snprintf(names[i], sizeof names[i], "%s/t%02d.wav", classes[i / T], i % T);
    tracks[i] = names[i];
  }
  mf_dataset_info info = {0};
  info.sample_shape = MF_SHAPE(6, 4);
  info.n_classes = C;
  info.classes = classes;
  info.n_tracks = C * T;
  info.tracks = tracks;
  info.feature = "test";
  info.feature_params = "{}";
  info.sample_rate = 22050;
  info.segmenting = "{}";
  info.source = "test_lua";
  mf_dataset_writer *w;
  if (mf_dataset_writer_open(path, &info, &w) != MF_OK) return NULL;
  uint32_t state = 12345;
  for (int t = 0; t < C * T; t++) {
    float rows[S * F];
    int32_t lab[S], trk[S], seg[S];
    for (int s = 0; s < S; s++) {
      for (int k = 0; k < F; k++) {
        state = state * 1664525u + 1013904223u;
        float noise = (float)(state >> 8) / (float)(1u << 24) - 0.5f;
        rows[s * F + k] = (float)((t / T) * ((k % 3) + 1)) + noise;
      }
      lab[s] = t / T, trk[s] = t, seg[s] = s;
    }
    if (mf_dataset_writer_append(w, rows, S, lab, trk, seg) != MF_OK) {
      mf_dataset_writer_abort(w);
      return NULL;
    }
  }
  return mf_dataset_writer_commit(w) == MF_OK ? path : NULL;
}

TEST(test_lua_run_trains_and_returns_the_summary_as_a_table) {
  load_plugins();
  const char *data = tiny_dataset();
  EXPECT(data != NULL, "could not write the dataset: %s", mf_error());
  if (!data) return;
  char src[2048];
  snprintf(src, sizeof src,
           "local mf = require 'melforge'\n"
           "local e = mf.experiment { name = 'tiny', data = '%s', epochs = 2, batch_size = 16,\n"
           "  model = mf.model('mlp', { hidden = { 16 }, dropout = { 0 } }) }\n"
           "local acc, runs = {}, {}\n"
           "for seed = 1, 2 do\n"
           "  local s = mf.run(e, { seed = seed })\n"
           "  runs[#runs + 1] = s\n"
           "  assert(math.type(s.epochs_run) == 'integer' and s.epochs_run == 2, 'epochs_run')\n"
           "  assert(s.seed == seed and s.model == 'mlp' and #s.classes == 3, 'header')\n"
           "  assert(s.test.accuracy >= 0 and s.test.accuracy <= 1, 'accuracy')\n"
           "  assert(type(s.test.confusion) == 'table' and #s.test.confusion == 3, 'confusion')\n"
           "  assert(s.run_dir == '%s/runs/tiny/' .. seed, s.run_dir)\n"
           "  acc[#acc + 1] = s.test.accuracy\n"
           "end\n"
           "assert(mf.report(runs, '%s/cmp.html') == '%s/cmp.html', 'report path')\n"
           "return e\n",
           data, g_dir, g_dir, g_dir);
  char root[128];
  snprintf(root, sizeof root, "%s/runs", g_dir);
  mf_lua_options opt = {0};
  opt.runs_root = root;
  mf_lua_report rep = {0};
  mf_status s = mf_lua_run_source("sweep.lua", src, &opt, &rep);
  EXPECT(s == MF_OK, "%s", mf_error());
  /* The returned experiment went through mf.run: it is not run a third time. */
  EXPECT_EQ_INT(rep.n_runs, 2);
  char html[256];
  snprintf(html, sizeof html, "%s/cmp.html", g_dir);
  EXPECT(access(html, F_OK) == 0, "mf.report did not write %s", html);
  for (int i = 0; i < rep.n_runs; i++) {
    const mf_lua_run *r = &rep.runs[i];
    EXPECT(r->status == MF_OK && r->result.summary_json, "run %d: status %d", i, r->status);
    EXPECT_EQ_INT(r->seed, (uint64_t)i + 1);
    EXPECT(r->params_count > 0, "params_count %lld", (long long)r->params_count);
    EXPECT(!strcmp(r->experiment, "tiny") && !strcmp(r->model, "mlp"), "names");
    char p[256];
    snprintf(p, sizeof p, "%s/summary.json", r->run_dir);
    EXPECT(access(p, F_OK) == 0, "%s missing", p);
    /* test_predictions.csv: the header names every class; every row has 4 + 3 fields. */
    snprintf(p, sizeof p, "%s/test_predictions.csv", r->run_dir);
    FILE *f = fopen(p, "r");
    EXPECT(f != NULL, "%s missing", p);
    if (!f) continue;
    char line[1024];
    int lines = 0;
    while (fgets(line, sizeof line, f)) {
      if (lines++ == 0) EXPECT(strstr(line, ",p_" LONG_CLASS "\n") != NULL, "header: %s", line);
      int commas = 0;
      for (const char *c = line; *c; c++) commas += *c == ',';
      EXPECT(commas == 6 && line[strlen(line) - 1] == '\n', "line %d: %s", lines, line);
    }
    fclose(f);
    EXPECT(lines > 1, "%s has no rows", p);
  }
  mf_lua_report_clear(&rep);

  /* --resume: finished runs are read back, not trained again. */
  opt.resume = 1;
  s = mf_lua_run_source("sweep.lua", src, &opt, &rep);
  EXPECT(s == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(rep.n_runs, 2);
  for (int i = 0; i < rep.n_runs; i++) EXPECT(rep.runs[i].skipped, "run %d was trained again", i);
  mf_lua_report_clear(&rep);

  /* A returned experiment that mf.run did not run is run, with the overrides. */
  snprintf(src, sizeof src,
           "local mf = require 'melforge'\n"
           "return mf.experiment { name = 'ret', data = '%s', epochs = 3, batch_size = 16,\n"
           "  model = mf.model('mlp', { hidden = { 8 } }) }\n",
           data);
  const char *sets[] = {"epochs=1", "seed=5"};
  opt.resume = 0;
  opt.set = sets;
  opt.n_set = 2;
  s = mf_lua_run_source("ret.lua", src, &opt, &rep);
  EXPECT(s == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(rep.n_runs, 1);
  if (rep.n_runs == 1) {
    EXPECT_EQ_INT(rep.runs[0].seed, 5);
    EXPECT_EQ_INT(rep.runs[0].result.epochs_run, 1);
  }
  mf_lua_report_clear(&rep);
  nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TEST(test_lua_engine_failure_is_reported_at_the_run_line) {
  load_plugins();
  const char *src =
      "local mf = require 'melforge'\n"
      "local e = mf.experiment { name = 'm', data = '/nonexistent/x.h5',\n"
      "  model = mf.model('mlp') }\n"
      "mf.run(e)\n";
  mf_lua_options opt = {0};
  opt.runs_root = "/tmp/mf_test_lua_never";
  mf_lua_report rep = {0};
  mf_status s = mf_lua_run_source("fail.lua", src, &opt, &rep);
  EXPECT(s == MF_ENOTFOUND, "status %d: %s", s, mf_error());
  EXPECT(strstr(mf_error(), "fail.lua:4:") && strstr(mf_error(), "/nonexistent/x.h5"), "%s",
         mf_error());
  EXPECT_EQ_INT(rep.n_runs, 1);
  if (rep.n_runs) EXPECT(rep.runs[0].status == MF_ENOTFOUND, "run status %d", rep.runs[0].status);
  mf_lua_report_clear(&rep);
}

TEST(test_lua_script_without_experiment_or_run_is_an_error) {
  mf_lua_report rep = {0};
  mf_status s = mf_lua_run_source("empty.lua", "local x = 1\n", NULL, &rep);
  EXPECT(s == MF_EINVAL, "status %d", s);
  EXPECT(strstr(mf_error(), "empty.lua:") && strstr(mf_error(), "neither returns an experiment"),
         "%s", mf_error());
  EXPECT_EQ_INT(rep.n_runs, 0);
  mf_lua_report_clear(&rep);
}

/* ---- the shipped scripts ----------------------------------------------------------------------
 */

static void experiments_path(const char *file, char *buf, size_t n) {
  snprintf(buf, n, "%s/../../experiments/%s", mftest_data_dir(), file);
}

TEST(test_lua_shipped_gtzan_scripts_resolve) {
  load_plugins();
  static const char *const scripts[][2] = {{"gtzan_mlp_mfcc", "mlp"},
                                           {"gtzan_cnn_mel", "cnn"},
                                           {"gtzan_crnn", "crnn"},
                                           {"gtzan_cnn_transformer", "cnn_transformer"}};
  for (int i = 0; i < 4; i++) {
    char path[1024], file[64];
    snprintf(file, sizeof file, "%s.lua", scripts[i][0]);
    experiments_path(file, path, sizeof path);
    mf_train_config c;
    mf_status s = mf_lua_load_config(path, NULL, NULL, &c);
    EXPECT(s == MF_OK, "%s: %s", file, mf_error());
    if (s != MF_OK) continue;
    EXPECT(!strcmp(c.name, scripts[i][0]), "%s: name %s", file, c.name);
    EXPECT(!strcmp(mf_component_name(c.model.component), scripts[i][1]), "%s: model", file);
    EXPECT(c.data.audio_dir && !strcmp(c.data.audio_dir, "data/genres"), "%s: audio", file);
    EXPECT_EQ_INT(c.data.seg.segments, 10);
    EXPECT_EQ_INT(c.split.group_by_track, 1);
    EXPECT_EQ_INT(c.early_stopping.enabled, 1);
    mf_train_config_clear(&c);
  }
}

/* The demo scripts train with mf.run, which reading the configuration refuses: reaching it
 * means every experiment they define (all before the first mf.run) was built and checked. */
TEST(test_lua_shipped_demo_scripts_define_valid_experiments) {
  load_plugins();
  static const char *const scripts[] = {"quickstart.lua", "compare.lua"};
  for (int i = 0; i < 2; i++) {
    char path[1024];
    experiments_path(scripts[i], path, sizeof path);
    mf_train_config c;
    mf_status s = mf_lua_load_config(path, NULL, NULL, &c);
    EXPECT(s != MF_OK && strstr(mf_error(), "mf.run cannot be used"), "%s: %s", scripts[i],
           s == MF_OK ? "accepted" : mf_error());
    if (s == MF_OK) mf_train_config_clear(&c);
  }
}
