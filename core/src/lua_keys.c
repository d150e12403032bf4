/* lua_keys.c — the keys of experiments and their sections (dataset, optimizer, schedule,
 * split, scaler, early_stopping, checkpoint): one setter per key, the cross-key rules, and
 * the checks a finished experiment must pass. */
#define _GNU_SOURCE
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_internal.h"

/* ---- dataset -------------------------------------------------------------------------------- */

void lcfg_data_init(mf_data_config *d) {
  memset(d, 0, sizeof *d);
  d->seg = mf_segmenting_defaults();
  d->sample_rate = 22050;
}

void lcfg_data_clear(mf_data_config *d) {
  free(d->path);
  free(d->audio_dir);
  lcfg_choice_clear(&d->feature);
  lcfg_data_init(d);
}

void lcfg_data_copy(mf_data_config *dst, const mf_data_config *src) {
  *dst = *src;
  dst->path = src->path ? strdup(src->path) : NULL;
  dst->audio_dir = src->audio_dir ? strdup(src->audio_dir) : NULL;
  lcfg_choice_copy(&dst->feature, &src->feature);
}

enum {
  D_PATH,
  D_CACHE,
  D_AUDIO,
  D_FEATURE,
  D_SEGMENTS,
  D_TRACK_S,
  D_WINDOW_S,
  D_HOP_S,
  D_PAD,
  D_SCOPE,
  D_MODE,
  D_RATE
};
#define DATA(o) ((mf_data_config *)(o))
#define RECIPE_KEYS                                                                          \
  ((1u << D_CACHE) | (1u << D_FEATURE) | (1u << D_SEGMENTS) | (1u << D_TRACK_S) |            \
   (1u << D_WINDOW_S) | (1u << D_HOP_S) | (1u << D_PAD) | (1u << D_SCOPE) | (1u << D_MODE) | \
   (1u << D_RATE))

static void set_data_path(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  const char *p = lcfg_want_str(L, c, idx, key);
  if (!*p) lcfg_fail(L, c, "%s must not be empty", key);
  lcfg_replace_str(&DATA(o)->path, p);
}

static void set_data_audio(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  const char *p = lcfg_want_str(L, c, idx, key);
  if (!*p) lcfg_fail(L, c, "%s must not be empty", key);
  lcfg_replace_str(&DATA(o)->audio_dir, p);
}

static void set_data_feature(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  lcfg_set_choice(L, c, &DATA(o)->feature, MF_KIND_FEATURE, idx, key);
}

static mf_choice *data_feature(lua_State *L, cfgctx *c, void *o, const char *key) {
  return lcfg_existing_choice(L, c, &DATA(o)->feature, MF_KIND_FEATURE, key);
}

/* Segmenting keys go through mf_segmenting_set, which the command line uses too. */
static void set_data_seg(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  const char *name = strrchr(key, '.') ? strrchr(key, '.') + 1 : key;
  char text[64];
  if (lua_type(L, idx) == LUA_TNUMBER) {
    if (lua_isinteger(L, idx))
      snprintf(text, sizeof text, "%lld", (long long)lua_tointeger(L, idx));
    else
      snprintf(text, sizeof text, "%.17g", (double)lua_tonumber(L, idx));
  } else if (lua_type(L, idx) == LUA_TSTRING) {
    snprintf(text, sizeof text, "%s", lua_tostring(L, idx));
  } else {
    lcfg_type_error(L, c, idx, key, "a number or a string");
  }
  const int numeric = strcmp(name, "pad") && strcmp(name, "scope") && strcmp(name, "mode");
  if (numeric && lua_type(L, idx) != LUA_TNUMBER) lcfg_type_error(L, c, idx, key, "a number");
  if (!numeric && lua_type(L, idx) != LUA_TSTRING) lcfg_type_error(L, c, idx, key, "a string");
  if (mf_segmenting_set(&DATA(o)->seg, name, text) != MF_OK)
    lcfg_fail(L, c, "%s: %s", key, mf_error());
}

static void set_data_rate(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  DATA(o)->sample_rate = lcfg_want_num(L, c, idx, key, 1, 1e6);
}

/* path names a ready dataset; audio + feature + cache a recipe. */
static void data_done(lua_State *L, cfgctx *c, void *o) {
  mf_data_config *d = DATA(o);
  const unsigned g = c->given;
  const char *what = c->path[0] ? c->path : "dataset";
  if ((g & (1u << D_PATH)) && (g & ((1u << D_AUDIO) | (1u << D_CACHE))))
    lcfg_fail(L, c,
              "%s: give either path (a ready HDF5 dataset) or audio + feature + cache (a recipe "
              "that builds one), not both",
              what);
  if ((g & (1u << D_PATH)) && d->audio_dir) {
    /* A ready file replaces the recipe. */
    free(d->audio_dir);
    d->audio_dir = NULL;
    lcfg_choice_clear(&d->feature);
  }
  if ((g & RECIPE_KEYS) && !d->audio_dir) {
    const char *first = "cache";
    static const char *const names[] = {
        "path",           "cache",       "audio", "feature", "segments", "track_seconds",
        "window_seconds", "hop_seconds", "pad",   "scope",   "mode",     "sample_rate"};
    for (int i = 0; i < 12; i++)
      if ((RECIPE_KEYS & g) & (1u << i)) {
        first = names[i];
        break;
      }
    lcfg_fail(L, c,
              "%s: '%s' belongs to an audio recipe, which needs audio = \"folder\" (one "
              "sub-folder per class)%s",
              what, first, !strcmp(first, "cache") ? "; for a ready dataset file use path" : "");
  }
}

static const field DATASET_FIELDS[] = {
    {"path", set_data_path, TX_STR, 0, NULL, NULL, NULL},
    {"cache", set_data_path, TX_STR, 0, NULL, NULL, NULL},
    {"audio", set_data_audio, TX_STR, 0, NULL, NULL, NULL},
    {"feature", set_data_feature, TX_STR, 0, NULL, NULL, data_feature},
    {"segments", set_data_seg, TX_INT, 0, NULL, NULL, NULL},
    {"track_seconds", set_data_seg, TX_NUM, 0, NULL, NULL, NULL},
    {"window_seconds", set_data_seg, TX_NUM, 0, NULL, NULL, NULL},
    {"hop_seconds", set_data_seg, TX_NUM, 0, NULL, NULL, NULL},
    {"pad", set_data_seg, TX_STR, 0, NULL, NULL, NULL},
    {"scope", set_data_seg, TX_STR, 0, NULL, NULL, NULL},
    {"mode", set_data_seg, TX_STR, 0, NULL, NULL, NULL},
    {"sample_rate", set_data_rate, TX_NUM, 0, NULL, NULL, NULL},
    {0}};
const section lcfg_dataset_keys = {"dataset", "key", DATASET_FIELDS, 0, NULL, NULL, data_done};

/* ---- optimizer ------------------------------------------------------------------------------ */

const char *const lcfg_optim_names[] = {"sgd", "adam", "adamw"};
#define OPT(o) ((mf_optim_config *)(o))
#define O_SGD (1u << MF_OPTIM_SGD)
#define O_ADAM ((1u << MF_OPTIM_ADAM) | (1u << MF_OPTIM_ADAMW))

static unsigned optim_variant(const void *o) { return 1u << OPT(o)->kind; }
static void optim_owner(const void *o, char *buf, size_t n) {
  snprintf(buf, n, "optimizer '%s'", lcfg_optim_names[OPT(o)->kind]);
}

mf_optim_kind lcfg_optim_kind(lua_State *L, cfgctx *c, const char *name, const char *key) {
  for (int i = 0; i < 3; i++)
    if (!strcmp(name, lcfg_optim_names[i])) return (mf_optim_kind)i;
  const char *hint = mf_closest_name(name, lcfg_optim_names, 3);
  lcfg_fail(L, c, "%s: unknown optimizer '%s'%s%s%s (sgd, adam or adamw)", key, name,
            hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
  return MF_OPTIM_ADAM;
}

static void set_opt_name(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  *OPT(o) = mf_optim_defaults(lcfg_optim_kind(L, c, lcfg_want_str(L, c, idx, key), key));
}

#define OPT_FLOAT(fn, member, lo, hi)                                          \
  static void fn(lua_State *L, cfgctx *c, void *o, int idx, const char *key) { \
    OPT(o)->member = (float)lcfg_want_num(L, c, idx, key, lo, hi);             \
  }
OPT_FLOAT(set_opt_lr, lr, 0, HUGE_VAL)
OPT_FLOAT(set_opt_wd, weight_decay, 0, HUGE_VAL)
OPT_FLOAT(set_opt_momentum, momentum, 0, HUGE_VAL)
OPT_FLOAT(set_opt_dampening, dampening, 0, 1)
OPT_FLOAT(set_opt_beta1, beta1, 0, 1)
OPT_FLOAT(set_opt_beta2, beta2, 0, 1)
OPT_FLOAT(set_opt_eps, eps, 0, HUGE_VAL)

static void set_opt_nesterov(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  OPT(o)->nesterov = lcfg_want_bool(L, c, idx, key);
}
static void set_opt_amsgrad(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  OPT(o)->amsgrad = lcfg_want_bool(L, c, idx, key);
}

static void set_opt_betas(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  if (!lua_istable(L, idx) || lua_rawlen(L, idx) != 2)
    lcfg_type_error(L, c, idx, key, "{beta1, beta2}");
  double b[2];
  for (int k = 0; k < 2; k++) {
    lua_rawgeti(L, idx, k + 1);
    char sub[560];
    snprintf(sub, sizeof sub, "%s[%d]", key, k + 1);
    b[k] = lcfg_want_num(L, c, -1, sub, 0, 1);
    lua_pop(L, 1);
  }
  OPT(o)->beta1 = (float)b[0];
  OPT(o)->beta2 = (float)b[1];
}

static const field OPTIM_FIELDS[] = {
    {"name", set_opt_name, TX_STR, 0, NULL, NULL, NULL},
    {"lr", set_opt_lr, TX_NUM, 0, NULL, NULL, NULL},
    {"weight_decay", set_opt_wd, TX_NUM, 0, NULL, NULL, NULL},
    {"momentum", set_opt_momentum, TX_NUM, O_SGD, NULL, NULL, NULL},
    {"dampening", set_opt_dampening, TX_NUM, O_SGD, NULL, NULL, NULL},
    {"nesterov", set_opt_nesterov, TX_BOOL, O_SGD, NULL, NULL, NULL},
    {"betas", set_opt_betas, TX_NUMS, O_ADAM, NULL, NULL, NULL},
    {"beta1", set_opt_beta1, TX_NUM, O_ADAM, NULL, NULL, NULL},
    {"beta2", set_opt_beta2, TX_NUM, O_ADAM, NULL, NULL, NULL},
    {"eps", set_opt_eps, TX_NUM, O_ADAM, NULL, NULL, NULL},
    {"amsgrad", set_opt_amsgrad, TX_BOOL, O_ADAM, NULL, NULL, NULL},
    {0}};
const section lcfg_optimizer_keys = {"optimizer",   "parameter", OPTIM_FIELDS, 1,
                                     optim_variant, optim_owner, NULL};

/* ---- schedule ------------------------------------------------------------------------------- */

const char *const lcfg_sched_names[] = {"constant", "step", "cosine", "plateau"};
#define SCH(o) ((lsched *)(o))
#define S_STEP (1u << MF_SCHED_STEP)
#define S_COS (1u << MF_SCHED_COSINE)
#define S_PLAT (1u << MF_SCHED_PLATEAU)

static unsigned sched_variant(const void *o) { return 1u << SCH(o)->cfg.kind; }
static void sched_owner(const void *o, char *buf, size_t n) {
  snprintf(buf, n, "schedule '%s'", lcfg_sched_names[SCH(o)->cfg.kind]);
}

mf_schedule_kind lcfg_sched_kind(lua_State *L, cfgctx *c, const char *name, const char *key) {
  for (int i = 0; i < 4; i++)
    if (!strcmp(name, lcfg_sched_names[i])) return (mf_schedule_kind)i;
  const char *hint = mf_closest_name(name, lcfg_sched_names, 4);
  lcfg_fail(L, c, "%s: unknown schedule '%s'%s%s%s (constant, step, cosine or plateau)", key, name,
            hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
  return MF_SCHED_CONSTANT;
}

static void set_sched_name(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  SCH(o)->cfg = mf_schedule_defaults(lcfg_sched_kind(L, c, lcfg_want_str(L, c, idx, key), key), 0);
  SCH(o)->mode_set = 0;
}

#define SCHED_INT(fn, member, lo)                                              \
  static void fn(lua_State *L, cfgctx *c, void *o, int idx, const char *key) { \
    SCH(o)->cfg.member = (int)lcfg_want_int(L, c, idx, key, lo, 1000000);      \
  }
#define SCHED_NUM(fn, member, lo, hi)                                          \
  static void fn(lua_State *L, cfgctx *c, void *o, int idx, const char *key) { \
    SCH(o)->cfg.member = lcfg_want_num(L, c, idx, key, lo, hi);                \
  }
SCHED_INT(set_sched_step_size, step_size, 1)
SCHED_NUM(set_sched_gamma, gamma, 0, HUGE_VAL)
SCHED_INT(set_sched_t_max, t_max, 1)
SCHED_NUM(set_sched_eta_min, eta_min, 0, HUGE_VAL)
SCHED_NUM(set_sched_factor, factor, 0, HUGE_VAL)
SCHED_INT(set_sched_patience, patience, 0)
SCHED_NUM(set_sched_threshold, threshold, 0, HUGE_VAL)
SCHED_INT(set_sched_cooldown, cooldown, 0)
SCHED_NUM(set_sched_min_lr, min_lr, 0, HUGE_VAL)
SCHED_INT(set_sched_warmup, warmup, 0)
SCHED_NUM(set_sched_warmup_factor, warmup_start_factor, 0, 1)

static void set_sched_mode(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  const char *m = lcfg_want_str(L, c, idx, key);
  if (strcmp(m, "min") && strcmp(m, "max"))
    lcfg_fail(L, c,
              "%s must be \"min\" (the metric should fall, as a loss) or \"max\" (rise, as an "
              "accuracy), got \"%s\"",
              key, m);
  SCH(o)->cfg.mode_max = !strcmp(m, "max");
  SCH(o)->mode_set = 1;
}

static const field SCHED_FIELDS[] = {
    {"name", set_sched_name, TX_STR, 0, NULL, NULL, NULL},
    {"step_size", set_sched_step_size, TX_INT, S_STEP, NULL, NULL, NULL},
    {"gamma", set_sched_gamma, TX_NUM, S_STEP, NULL, NULL, NULL},
    {"t_max", set_sched_t_max, TX_INT, S_COS, NULL, NULL, NULL},
    {"T_max", set_sched_t_max, TX_INT, S_COS, NULL, NULL, NULL},
    {"eta_min", set_sched_eta_min, TX_NUM, S_COS, NULL, NULL, NULL},
    {"mode", set_sched_mode, TX_STR, S_PLAT, NULL, NULL, NULL},
    {"factor", set_sched_factor, TX_NUM, S_PLAT, NULL, NULL, NULL},
    {"patience", set_sched_patience, TX_INT, S_PLAT, NULL, NULL, NULL},
    {"threshold", set_sched_threshold, TX_NUM, S_PLAT, NULL, NULL, NULL},
    {"cooldown", set_sched_cooldown, TX_INT, S_PLAT, NULL, NULL, NULL},
    {"min_lr", set_sched_min_lr, TX_NUM, S_PLAT, NULL, NULL, NULL},
    {"warmup", set_sched_warmup, TX_INT, 0, NULL, NULL, NULL},
    {"warmup_start_factor", set_sched_warmup_factor, TX_NUM, 0, NULL, NULL, NULL},
    {0}};
const section lcfg_schedule_keys = {"schedule",    "parameter", SCHED_FIELDS, 1,
                                    sched_variant, sched_owner, NULL};

/* ---- split, scaler, early stopping, checkpoint -------------------------------------------- */

#define EXP(o) ((lexp *)(o))
enum { SP_TRAIN, SP_VAL, SP_TEST };

static void set_split_ratio(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  const char *name = strrchr(key, '.') ? strrchr(key, '.') + 1 : key;
  double r = lcfg_want_num(L, c, idx, key, 0, 1);
  mf_split_config *s = &EXP(o)->cfg.split;
  if (!strcmp(name, "train"))
    s->train = r;
  else if (!strcmp(name, "val"))
    s->val = r;
  else
    s->test = r;
}

static void set_split_stratify(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  EXP(o)->cfg.split.stratify = lcfg_want_bool(L, c, idx, key);
}

static void set_split_group(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  const char *g = lcfg_want_str(L, c, idx, key);
  if (strcmp(g, "track") && strcmp(g, "none"))
    lcfg_fail(L, c,
              "%s must be \"track\" (all segments of a track in one set) or \"none\" (segments "
              "split independently, the notebooks' leaky split), got \"%s\"",
              key, g);
  EXP(o)->cfg.split.group_by_track = !strcmp(g, "track");
}

static void set_split_kfold(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  EXP(o)->cfg.split.kfold = (int)lcfg_want_int(L, c, idx, key, 0, 1000);
}
static void set_split_fold(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  EXP(o)->cfg.split.fold = (int)lcfg_want_int(L, c, idx, key, 0, 999);
}

static void set_split_list(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  const char *name = strrchr(key, '.') ? strrchr(key, '.') + 1 : key;
  int i = !strcmp(name, "train_list") ? 0 : !strcmp(name, "val_list") ? 1 : 2;
  lcfg_replace_str(&EXP(o)->cfg.split_files[i], lcfg_want_opt_str(L, c, idx, key));
}

/* Ratios left out take what the given ones leave: train when it is not given, else the one
 * missing of val and test. */
static void split_done(lua_State *L, cfgctx *c, void *o) {
  mf_split_config *s = &EXP(o)->cfg.split;
  const unsigned g = c->given & 7u;
  const char *what = c->path[0] ? c->path : "split";
  if (!g || g == 7u) return;
  if (!(g & (1u << SP_TRAIN))) {
    s->train = 1.0 - s->val - s->test;
    if (!(s->train > 1e-9))
      lcfg_fail(L, c, "%s: val %g + test %g leave nothing for train", what, s->val, s->test);
  } else if (g != (1u << SP_TRAIN)) {
    double *missing = (g & (1u << SP_VAL)) ? &s->test : &s->val;
    *missing = 1.0 - s->train - (missing == &s->test ? s->val : s->test);
    if (*missing < -1e-9)
      lcfg_fail(L, c, "%s: train %g + %s %g is more than 1", what, s->train,
                missing == &s->test ? "val" : "test", missing == &s->test ? s->val : s->test);
    if (*missing < 0) *missing = 0;
  }
}

static const field SPLIT_FIELDS[] = {{"train", set_split_ratio, TX_NUM, 0, NULL, NULL, NULL},
                                     {"val", set_split_ratio, TX_NUM, 0, NULL, NULL, NULL},
                                     {"test", set_split_ratio, TX_NUM, 0, NULL, NULL, NULL},
                                     {"stratify", set_split_stratify, TX_BOOL, 0, NULL, NULL, NULL},
                                     {"group", set_split_group, TX_STR, 0, NULL, NULL, NULL},
                                     {"kfold", set_split_kfold, TX_INT, 0, NULL, NULL, NULL},
                                     {"fold", set_split_fold, TX_INT, 0, NULL, NULL, NULL},
                                     {"train_list", set_split_list, TX_STR, 0, NULL, NULL, NULL},
                                     {"val_list", set_split_list, TX_STR, 0, NULL, NULL, NULL},
                                     {"test_list", set_split_list, TX_STR, 0, NULL, NULL, NULL},
                                     {0}};
static const section SPLIT = {"split", "key", SPLIT_FIELDS, 0, NULL, NULL, split_done};

static void set_scaler_kind(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  if (mf_scaler_kind_parse(lcfg_want_str(L, c, idx, key), &EXP(o)->cfg.scaler) != MF_OK)
    lcfg_fail(L, c, "%s: %s", key, mf_error());
}
static void set_scaler_per_band(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  EXP(o)->cfg.scaler_per_band = lcfg_want_bool(L, c, idx, key);
}
static const field SCALER_FIELDS[] = {
    {"kind", set_scaler_kind, TX_STR, 0, NULL, NULL, NULL},
    {"per_band", set_scaler_per_band, TX_BOOL, 0, NULL, NULL, NULL},
    {0}};
static const section SCALER = {"scaler", "key", SCALER_FIELDS, 0, NULL, NULL, NULL};

#define ES(o) ((mf_early_stopping *)(o))
enum { ES_ENABLED };

static void set_monitor(lua_State *L, cfgctx *c, mf_monitor *m, int idx, const char *key) {
  if (mf_monitor_parse(lcfg_want_str(L, c, idx, key), m) != MF_OK)
    lcfg_fail(L, c, "%s: %s", key, mf_error());
}

static void set_es_enabled(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  ES(o)->enabled = lcfg_want_bool(L, c, idx, key);
}
static void set_es_monitor(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  set_monitor(L, c, &ES(o)->monitor, idx, key);
}
static void set_es_patience(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  ES(o)->patience = (int)lcfg_want_int(L, c, idx, key, 1, 1000000);
}
static void set_es_min_delta(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  ES(o)->min_delta = lcfg_want_num(L, c, idx, key, 0, HUGE_VAL);
}
static void set_es_restore(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  ES(o)->restore_best = lcfg_want_bool(L, c, idx, key);
}
/* Giving early_stopping settings turns it on, unless enabled = false says otherwise. */
static void es_done(lua_State *L, cfgctx *c, void *o) {
  if (!(c->given & (1u << ES_ENABLED))) ES(o)->enabled = 1;
}
static const field ES_FIELDS[] = {{"enabled", set_es_enabled, TX_BOOL, 0, NULL, NULL, NULL},
                                  {"monitor", set_es_monitor, TX_STR, 0, NULL, NULL, NULL},
                                  {"patience", set_es_patience, TX_INT, 0, NULL, NULL, NULL},
                                  {"min_delta", set_es_min_delta, TX_NUM, 0, NULL, NULL, NULL},
                                  {"restore_best", set_es_restore, TX_BOOL, 0, NULL, NULL, NULL},
                                  {0}};
static const section EARLY_STOPPING = {"early_stopping", "key", ES_FIELDS, 0, NULL, NULL, es_done};

static void set_ck_monitor(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  set_monitor(L, c, (mf_monitor *)o, idx, key);
}
static const field CK_FIELDS[] = {{"monitor", set_ck_monitor, TX_STR, 0, NULL, NULL, NULL}, {0}};
static const section CHECKPOINT = {"checkpoint", "key", CK_FIELDS, 0, NULL, NULL, NULL};

/* ---- experiment ---------------------------------------------------------------------------- */

static void set_name(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  const char *s = lcfg_want_str(L, c, idx, key);
  if (!*s || strchr(s, '/') || !strcmp(s, ".") || !strcmp(s, ".."))
    lcfg_fail(L, c, "%s must be a non-empty name without '/' (it names the run folder), got \"%s\"",
              key, s);
  lcfg_replace_str(&EXP(o)->cfg.name, s);
}

static void set_seed(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  EXP(o)->cfg.seed = (uint64_t)lcfg_want_int(L, c, idx, key, 0, INT64_MAX);
}

static void set_data(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  mf_data_config *d = &EXP(o)->cfg.data;
  ldata *u = luaL_testudata(L, idx, LDATA_META);
  if (u) {
    mf_data_config copy;
    lcfg_data_copy(&copy, &u->d);
    lcfg_data_clear(d);
    *d = copy;
  } else if (lua_type(L, idx) == LUA_TSTRING) {
    const char *p = lua_tostring(L, idx);
    if (!*p) lcfg_fail(L, c, "%s must not be empty", key);
    lcfg_data_clear(d);
    d->path = strdup(p);
  } else if (lua_istable(L, idx)) {
    lcfg_apply_section(L, c, &lcfg_dataset_keys, d, idx, key);
  } else {
    lcfg_type_error(L, c, idx, key,
                    "a dataset (mf.dataset { ... }), the path of an HDF5 dataset or a "
                    "table of dataset keys");
  }
}
static void *data_child(lua_State *L, cfgctx *c, void *o) { return &EXP(o)->cfg.data; }

static void set_split(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  if (!lua_istable(L, idx))
    lcfg_type_error(L, c, idx, key, "a table { train = ..., val = ..., test = ..., ... }");
  lcfg_apply_section(L, c, &SPLIT, o, idx, key);
}
static void *self_child(lua_State *L, cfgctx *c, void *o) { return o; }

static void set_scaler(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  if (lua_type(L, idx) == LUA_TSTRING) {
    set_scaler_kind(L, c, o, idx, key);
  } else if (lua_type(L, idx) == LUA_TBOOLEAN && !lua_toboolean(L, idx)) {
    EXP(o)->cfg.scaler = MF_SCALER_NONE;
  } else if (lua_istable(L, idx)) {
    lcfg_apply_section(L, c, &SCALER, o, idx, key);
  } else {
    lcfg_type_error(L, c, idx, key,
                    "\"minmax\", \"standard\", \"none\" or { kind = ..., per_band = ... }");
  }
}

static void set_augment(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  mf_train_config *cfg = &EXP(o)->cfg;
  idx = lua_absindex(L, idx);
  int n = 0;
  /* Check everything before changing anything: the list is replaced as a whole. */
  if (lua_type(L, idx) == LUA_TBOOLEAN && !lua_toboolean(L, idx)) {
    n = 0;
  } else if (luaL_testudata(L, idx, LCOMP_META) || lua_type(L, idx) == LUA_TSTRING) {
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, idx);
    lua_rawseti(L, -2, 1);
    lua_replace(L, idx);
  } else if (!lua_istable(L, idx)) {
    lcfg_type_error(L, c, idx, key,
                    "a list of augmentations { mf.augment(\"name\", { ... }), ... }");
  }
  const mf_component *comps[MF_MAX_AUGMENT] = {0};
  if (lua_istable(L, idx)) {
    int count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      lua_pop(L, 1);
      count++;
    }
    n = (int)lua_rawlen(L, idx);
    if (count != n) lcfg_type_error(L, c, idx, key, "a list of augmentations (no named keys)");
    if (n > MF_MAX_AUGMENT)
      lcfg_fail(L, c, "%s: at most %d augmentations, got %d", key, MF_MAX_AUGMENT, n);
    for (int i = 0; i < n; i++) {
      lua_rawgeti(L, idx, i + 1);
      char sub[560];
      snprintf(sub, sizeof sub, "%s[%d]", key, i + 1);
      lcomp *k = luaL_testudata(L, -1, LCOMP_META);
      if (k && mf_component_kind(k->c.component) == MF_KIND_AUGMENT)
        comps[i] = k->c.component;
      else if (lua_type(L, -1) == LUA_TSTRING)
        comps[i] = lcfg_find_component(L, c, MF_KIND_AUGMENT, lua_tostring(L, -1));
      else
        lcfg_type_error(L, c, -1, sub,
                        "an augmentation (mf.augment(\"name\", { ... })) or its name");
      lua_pop(L, 1);
    }
  }
  for (int i = 0; i < cfg->n_augment; i++) lcfg_choice_clear(&cfg->augment[i]);
  cfg->n_augment = 0;
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, idx, i + 1);
    lcomp *k = luaL_testudata(L, -1, LCOMP_META);
    if (k)
      lcfg_choice_copy(&cfg->augment[i], &k->c);
    else if (mf_component_values(comps[i], &cfg->augment[i].values) == MF_OK)
      cfg->augment[i].component = comps[i];
    lua_pop(L, 1);
    cfg->n_augment = i + 1;
  }
}

static void set_model(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  lcfg_set_choice(L, c, &EXP(o)->cfg.model, MF_KIND_MODEL, idx, key);
}
static mf_choice *model_choice(lua_State *L, cfgctx *c, void *o, const char *key) {
  return lcfg_existing_choice(L, c, &EXP(o)->cfg.model, MF_KIND_MODEL, key);
}

static void set_optimizer(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  mf_optim_config *oc = &EXP(o)->cfg.optim;
  lopt *u = luaL_testudata(L, idx, LOPT_META);
  if (u)
    *oc = u->cfg;
  else if (lua_type(L, idx) == LUA_TSTRING)
    *oc = mf_optim_defaults(lcfg_optim_kind(L, c, lua_tostring(L, idx), key));
  else if (lua_istable(L, idx))
    lcfg_apply_section(L, c, &lcfg_optimizer_keys, oc, idx, key);
  else
    lcfg_type_error(L, c, idx, key,
                    "an optimizer (mf.optimizer(\"adam\", { ... })), its name or a "
                    "table of its parameters");
}
static void *optim_child(lua_State *L, cfgctx *c, void *o) { return &EXP(o)->cfg.optim; }

static void set_schedule(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  lsched *s = &EXP(o)->sched;
  lsched *u = luaL_testudata(L, idx, LSCHED_META);
  if (u) {
    *s = *u;
  } else if (lua_type(L, idx) == LUA_TSTRING) {
    s->cfg = mf_schedule_defaults(lcfg_sched_kind(L, c, lua_tostring(L, idx), key), 0);
    s->mode_set = 0;
  } else if (lua_istable(L, idx)) {
    lcfg_apply_section(L, c, &lcfg_schedule_keys, s, idx, key);
  } else {
    lcfg_type_error(L, c, idx, key,
                    "a schedule (mf.schedule(\"cosine\", { ... })), its name or a "
                    "table of its parameters");
  }
}
static void *sched_child(lua_State *L, cfgctx *c, void *o) { return &EXP(o)->sched; }

#define EXP_INT(fn, member, lo, hi)                                            \
  static void fn(lua_State *L, cfgctx *c, void *o, int idx, const char *key) { \
    EXP(o)->cfg.member = (int)lcfg_want_int(L, c, idx, key, lo, hi);           \
  }
EXP_INT(set_epochs, epochs, 1, 100000)
EXP_INT(set_batch_size, batch_size, 1, 65536)
EXP_INT(set_eval_batch_size, eval_batch_size, 1, 65536)
EXP_INT(set_top_k, top_k, 1, 1000)

static void set_clip(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  EXP(o)->cfg.clip_grad_norm = lcfg_want_num(L, c, idx, key, 0, HUGE_VAL);
}
static void set_smoothing(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  double v = lcfg_want_num(L, c, idx, key, 0, 1);
  if (v >= 1) lcfg_type_error(L, c, idx, key, "a number in [0, 1)");
  EXP(o)->cfg.label_smoothing = v;
}

static void set_early_stopping(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  mf_early_stopping *es = &EXP(o)->cfg.early_stopping;
  if (lua_type(L, idx) == LUA_TBOOLEAN)
    es->enabled = lua_toboolean(L, idx);
  else if (lua_istable(L, idx))
    lcfg_apply_section(L, c, &EARLY_STOPPING, es, idx, key);
  else
    lcfg_type_error(L, c, idx, key, "a table { monitor = ..., patience = ..., ... } or true/false");
}
static void *es_child(lua_State *L, cfgctx *c, void *o) { return &EXP(o)->cfg.early_stopping; }

static void set_checkpoint(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  if (!lua_istable(L, idx)) lcfg_type_error(L, c, idx, key, "a table { monitor = ... }");
  lcfg_apply_section(L, c, &CHECKPOINT, &EXP(o)->cfg.checkpoint_monitor, idx, key);
}
static void *ck_child(lua_State *L, cfgctx *c, void *o) { return &EXP(o)->cfg.checkpoint_monitor; }

static void set_out(lua_State *L, cfgctx *c, void *o, int idx, const char *key) {
  const char *s = lcfg_want_opt_str(L, c, idx, key);
  if (s && !*s) lcfg_fail(L, c, "%s must not be empty", key);
  lcfg_replace_str(&EXP(o)->out_root, s);
}

static const field EXP_FIELDS[] = {
    {"name", set_name, TX_STR, 0, NULL, NULL, NULL},
    {"seed", set_seed, TX_INT, 0, NULL, NULL, NULL},
    {"data", set_data, TX_STR, 0, &lcfg_dataset_keys, data_child, NULL},
    {"split", set_split, TX_SECTION, 0, &SPLIT, self_child, NULL},
    {"scaler", set_scaler, TX_STR, 0, &SCALER, self_child, NULL},
    {"augment", set_augment, TX_NAMES, 0, NULL, NULL, NULL},
    {"model", set_model, TX_STR, 0, NULL, NULL, model_choice},
    {"optimizer", set_optimizer, TX_STR, 0, &lcfg_optimizer_keys, optim_child, NULL},
    {"schedule", set_schedule, TX_STR, 0, &lcfg_schedule_keys, sched_child, NULL},
    {"epochs", set_epochs, TX_INT, 0, NULL, NULL, NULL},
    {"batch_size", set_batch_size, TX_INT, 0, NULL, NULL, NULL},
    {"eval_batch_size", set_eval_batch_size, TX_INT, 0, NULL, NULL, NULL},
    {"clip_grad_norm", set_clip, TX_NUM, 0, NULL, NULL, NULL},
    {"label_smoothing", set_smoothing, TX_NUM, 0, NULL, NULL, NULL},
    {"early_stopping", set_early_stopping, TX_BOOL, 0, &EARLY_STOPPING, es_child, NULL},
    {"checkpoint", set_checkpoint, TX_SECTION, 0, &CHECKPOINT, ck_child, NULL},
    {"top_k", set_top_k, TX_INT, 0, NULL, NULL, NULL},
    {"out", set_out, TX_STR, 0, NULL, NULL, NULL},
    {0}};
const section lcfg_experiment_keys = {"experiment", "key", EXP_FIELDS, 0, NULL, NULL, NULL};

/* ---- copies and checks ---------------------------------------------------------------------- */

void lcfg_config_copy(mf_train_config *dst, const mf_train_config *src) {
  *dst = *src;
  dst->name = src->name ? strdup(src->name) : NULL;
  lcfg_data_copy(&dst->data, &src->data);
  for (int i = 0; i < 3; i++)
    dst->split_files[i] = src->split_files[i] ? strdup(src->split_files[i]) : NULL;
  lcfg_choice_copy(&dst->model, &src->model);
  for (int i = 0; i < src->n_augment; i++) lcfg_choice_copy(&dst->augment[i], &src->augment[i]);
  dst->out_dir = src->out_dir ? strdup(src->out_dir) : NULL;
  dst->source_name = src->source_name ? strdup(src->source_name) : NULL;
  dst->source_text = src->source_text ? strdup(src->source_text) : NULL;
}

/* The schedule the engine gets: base rate from the optimizer; a plateau without an explicit
 * mode follows the metric it is stepped with (the early-stopping monitor, else val_loss). */
void lcfg_sync_schedule(lexp *e) {
  e->cfg.schedule = e->sched.cfg;
  e->cfg.schedule.base_lr = e->cfg.optim.lr;
  if (e->sched.cfg.kind == MF_SCHED_PLATEAU && !e->sched.mode_set)
    e->cfg.schedule.mode_max = mf_monitor_maximize(
        e->cfg.early_stopping.enabled ? e->cfg.early_stopping.monitor : MF_MON_VAL_LOSS);
}

void lcfg_finish(lua_State *L, lexp *e) {
  const mf_data_config *d = &e->cfg.data;
  char who[160] = "";
  if (e->cfg.name) snprintf(who, sizeof who, "experiment '%s': ", e->cfg.name);
  if (d->audio_dir && (!d->path || !*d->path))
    lcfg_error(L,
               "%sthe dataset recipe (audio = \"%s\") needs cache = \"file.h5\", the file its "
               "features are extracted to",
               who, d->audio_dir);
  lcfg_sync_schedule(e);
  /* The run folder is decided when the run starts; the check only needs one. */
  char *out = e->cfg.out_dir;
  char placeholder[] = "runs";
  if (!out) e->cfg.out_dir = placeholder;
  mf_status s = mf_train_config_check(&e->cfg);
  e->cfg.out_dir = out;
  if (s != MF_OK) lcfg_error(L, "%s%s", who, mf_error());
}
