/* train_config.c — the training configuration: defaults, validation, resolved JSON. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "melforge/train.h"

static const char *const MONITOR_NAMES[] = {"val_loss", "val_accuracy", "val_macro_f1",
                                            "val_track_accuracy", "train_loss"};
#define N_MONITORS 5

const char *mf_monitor_name(mf_monitor m) {
  return (unsigned)m < N_MONITORS ? MONITOR_NAMES[m] : "?";
}

mf_status mf_monitor_parse(const char *name, mf_monitor *out) {
  for (int i = 0; i < N_MONITORS; i++)
    if (!strcmp(name, MONITOR_NAMES[i])) {
      *out = (mf_monitor)i;
      return MF_OK;
    }
  const char *hint = mf_closest_name(name, MONITOR_NAMES, N_MONITORS);
  return mf_set_error(MF_EINVAL, "unknown metric to monitor '%s'%s%s%s (one of val_loss, "
                      "val_accuracy, val_macro_f1, val_track_accuracy, train_loss)",
                      name, hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
}

int mf_monitor_maximize(mf_monitor m) { return m != MF_MON_VAL_LOSS && m != MF_MON_TRAIN_LOSS; }

void mf_train_config_init(mf_train_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->seed = 42;
  cfg->data.seg = mf_segmenting_defaults();
  cfg->data.sample_rate = 22050;
  cfg->split = mf_split_defaults();
  cfg->scaler = MF_SCALER_MINMAX;
  cfg->optim = mf_optim_defaults(MF_OPTIM_ADAM);
  cfg->schedule = mf_schedule_defaults(MF_SCHED_CONSTANT, cfg->optim.lr);
  cfg->epochs = 50;
  cfg->batch_size = 32;
  cfg->eval_batch_size = 128;
  cfg->early_stopping.monitor = MF_MON_VAL_LOSS;
  cfg->early_stopping.patience = 10;
  cfg->checkpoint_monitor = MF_MON_VAL_ACCURACY;
  cfg->top_k = 3;
}

static void clear_choice(mf_choice *c) {
  mf_values_free(c->values);
  c->values = NULL;
  c->component = NULL;
}

void mf_train_config_clear(mf_train_config *cfg) {
  free(cfg->name);
  free(cfg->data.path);
  free(cfg->data.audio_dir);
  clear_choice(&cfg->data.feature);
  for (int i = 0; i < 3; i++) free(cfg->split_files[i]);
  clear_choice(&cfg->model);
  for (int i = 0; i < cfg->n_augment; i++) clear_choice(&cfg->augment[i]);
  free(cfg->out_dir);
  free(cfg->source_name);
  free(cfg->source_text);
  memset(cfg, 0, sizeof *cfg);
}

mf_status mf_train_config_check(const mf_train_config *cfg) {
  if (!cfg->name || !*cfg->name)
    return mf_set_error(MF_EINVAL, "the experiment needs a name (name = \"cnn_mel\")");
  if (!cfg->data.path || !*cfg->data.path)
    return mf_set_error(MF_EINVAL,
                        "the experiment needs data: a dataset file (data = mf.dataset { path = "
                        "\"x.h5\" }) or an audio recipe with a cache path");
  if (cfg->data.audio_dir && !cfg->data.feature.component)
    return mf_set_error(MF_EINVAL, "the dataset recipe for %s needs a feature (feature = "
                        "mf.feature(\"melspec\"))", cfg->data.audio_dir);
  if (!cfg->model.component)
    return mf_set_error(MF_EINVAL, "the experiment needs a model (model = mf.model(\"cnn\"))");
  if (mf_component_kind(cfg->model.component) != MF_KIND_MODEL)
    return mf_set_error(MF_EINVAL, "'%s' is not a model", mf_component_name(cfg->model.component));
  if (!cfg->split_files[0] && mf_split_check(&cfg->split) != MF_OK) return MF_EINVAL;
  if (cfg->epochs < 1 || cfg->epochs > 100000)
    return mf_set_error(MF_EINVAL, "epochs must be in [1, 100000], got %d", cfg->epochs);
  if (cfg->batch_size < 1 || cfg->batch_size > 65536)
    return mf_set_error(MF_EINVAL, "batch_size must be in [1, 65536], got %d", cfg->batch_size);
  if (cfg->eval_batch_size < 0 || cfg->eval_batch_size > 65536)
    return mf_set_error(MF_EINVAL, "eval_batch_size must be in [1, 65536], got %d",
                        cfg->eval_batch_size);
  if (!(cfg->clip_grad_norm >= 0) || !isfinite(cfg->clip_grad_norm))
    return mf_set_error(MF_EINVAL, "clip_grad_norm must be >= 0 (0: off), got %g",
                        cfg->clip_grad_norm);
  if (!(cfg->label_smoothing >= 0 && cfg->label_smoothing < 1))
    return mf_set_error(MF_EINVAL, "label_smoothing must be in [0, 1), got %g",
                        cfg->label_smoothing);
  if (cfg->early_stopping.enabled &&
      (cfg->early_stopping.patience < 1 || !(cfg->early_stopping.min_delta >= 0)))
    return mf_set_error(MF_EINVAL, "early_stopping needs patience >= 1 and min_delta >= 0");
  if (cfg->top_k < 0 || cfg->top_k > 1000)
    return mf_set_error(MF_EINVAL, "top_k must be in [1, 1000], got %d", cfg->top_k);
  if (!cfg->out_dir || !*cfg->out_dir)
    return mf_set_error(MF_EINVAL, "the run needs an output folder");
  mf_schedule s;
  mf_schedule_config sc = cfg->schedule;
  sc.base_lr = cfg->optim.lr;
  if (mf_schedule_init(&s, &sc) != MF_OK) return mf_wrap_error(MF_EINVAL, "schedule");
  mf_params *none = mf_params_new();
  mf_optim *probe = mf_optim_new(none, &cfg->optim); /* validates the settings */
  mf_optim_free(probe);
  mf_params_free(none);
  if (!probe) return mf_wrap_error(MF_EINVAL, "optimizer");
  return mf_segmenting_check(&cfg->data.seg);
}

static json_t *choice_json(const mf_choice *c) {
  if (!c->component) return json_null();
  json_t *o = json_object();
  json_object_set_new(o, "name", json_string(mf_component_name(c->component)));
  char *p = c->values ? mf_values_to_json(c->values) : NULL;
  json_t *params = p ? json_loads(p, 0, NULL) : NULL;
  json_object_set_new(o, "params", params ? params : json_object());
  free(p);
  return o;
}

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

char *mf_train_config_to_json(const mf_train_config *cfg) {
  static const char *const OPT[] = {"sgd", "adam", "adamw"};
  static const char *const SCHED[] = {"constant", "step", "cosine", "plateau"};
  json_t *o = json_object();
  json_object_set_new(o, "name", str_or_null(cfg->name));
  json_object_set_new(o, "seed", json_integer((json_int_t)cfg->seed));
  json_t *data = json_object();
  json_object_set_new(data, "path", str_or_null(cfg->data.path));
  if (cfg->data.audio_dir) {
    json_object_set_new(data, "audio", json_string(cfg->data.audio_dir));
    json_object_set_new(data, "feature", choice_json(&cfg->data.feature));
    char *seg = mf_segmenting_to_json(&cfg->data.seg);
    json_object_set_new(data, "segmenting", json_loads(seg, 0, NULL));
    free(seg);
    json_object_set_new(data, "sample_rate", json_real(cfg->data.sample_rate));
  }
  json_object_set_new(o, "data", data);
  json_t *split = json_object();
  if (cfg->split_files[0]) {
    json_object_set_new(split, "train_list", json_string(cfg->split_files[0]));
    json_object_set_new(split, "val_list", str_or_null(cfg->split_files[1]));
    json_object_set_new(split, "test_list", str_or_null(cfg->split_files[2]));
  } else {
    json_object_set_new(split, "train", json_real(cfg->split.train));
    json_object_set_new(split, "val", json_real(cfg->split.val));
    json_object_set_new(split, "test", json_real(cfg->split.test));
    json_object_set_new(split, "stratify", json_boolean(cfg->split.stratify));
    json_object_set_new(split, "group", json_string(cfg->split.group_by_track ? "track" : "none"));
    if (cfg->split.kfold > 1) {
      json_object_set_new(split, "kfold", json_integer(cfg->split.kfold));
      json_object_set_new(split, "fold", json_integer(cfg->split.fold));
    }
  }
  json_object_set_new(o, "split", split);
  json_t *scaler = json_object();
  json_object_set_new(scaler, "kind", json_string(mf_scaler_kind_name(cfg->scaler)));
  json_object_set_new(scaler, "per_band", json_boolean(cfg->scaler_per_band));
  json_object_set_new(o, "scaler", scaler);
  json_t *aug = json_array();
  for (int i = 0; i < cfg->n_augment; i++) json_array_append_new(aug, choice_json(&cfg->augment[i]));
  json_object_set_new(o, "augment", aug);
  json_object_set_new(o, "model", choice_json(&cfg->model));
  json_t *opt = json_object();
  const mf_optim_config *oc = &cfg->optim;
  json_object_set_new(opt, "name", json_string(OPT[oc->kind]));
  json_object_set_new(opt, "lr", json_real(oc->lr));
  json_object_set_new(opt, "weight_decay", json_real(oc->weight_decay));
  if (oc->kind == MF_OPTIM_SGD) {
    json_object_set_new(opt, "momentum", json_real(oc->momentum));
    json_object_set_new(opt, "dampening", json_real(oc->dampening));
    json_object_set_new(opt, "nesterov", json_boolean(oc->nesterov));
  } else {
    json_object_set_new(opt, "beta1", json_real(oc->beta1));
    json_object_set_new(opt, "beta2", json_real(oc->beta2));
    json_object_set_new(opt, "eps", json_real(oc->eps));
    json_object_set_new(opt, "amsgrad", json_boolean(oc->amsgrad));
  }
  json_object_set_new(o, "optimizer", opt);
  json_t *sch = json_object();
  const mf_schedule_config *sc = &cfg->schedule;
  json_object_set_new(sch, "name", json_string(SCHED[sc->kind]));
  if (sc->kind == MF_SCHED_STEP) {
    json_object_set_new(sch, "step_size", json_integer(sc->step_size));
    json_object_set_new(sch, "gamma", json_real(sc->gamma));
  } else if (sc->kind == MF_SCHED_COSINE) {
    json_object_set_new(sch, "t_max", json_integer(sc->t_max));
    json_object_set_new(sch, "eta_min", json_real(sc->eta_min));
  } else if (sc->kind == MF_SCHED_PLATEAU) {
    json_object_set_new(sch, "mode", json_string(sc->mode_max ? "max" : "min"));
    json_object_set_new(sch, "factor", json_real(sc->factor));
    json_object_set_new(sch, "patience", json_integer(sc->patience));
    json_object_set_new(sch, "threshold", json_real(sc->threshold));
    json_object_set_new(sch, "cooldown", json_integer(sc->cooldown));
    json_object_set_new(sch, "min_lr", json_real(sc->min_lr));
  }
  json_object_set_new(sch, "warmup", json_integer(sc->warmup));
  if (sc->warmup) json_object_set_new(sch, "warmup_start_factor", json_real(sc->warmup_start_factor));
  json_object_set_new(o, "schedule", sch);
  json_object_set_new(o, "epochs", json_integer(cfg->epochs));
  json_object_set_new(o, "batch_size", json_integer(cfg->batch_size));
  json_object_set_new(o, "eval_batch_size", json_integer(cfg->eval_batch_size));
  json_object_set_new(o, "clip_grad_norm", json_real(cfg->clip_grad_norm));
  json_object_set_new(o, "label_smoothing", json_real(cfg->label_smoothing));
  json_t *es = json_object();
  json_object_set_new(es, "enabled", json_boolean(cfg->early_stopping.enabled));
  json_object_set_new(es, "monitor", json_string(mf_monitor_name(cfg->early_stopping.monitor)));
  json_object_set_new(es, "patience", json_integer(cfg->early_stopping.patience));
  json_object_set_new(es, "min_delta", json_real(cfg->early_stopping.min_delta));
  json_object_set_new(es, "restore_best", json_boolean(cfg->early_stopping.restore_best));
  json_object_set_new(o, "early_stopping", es);
  json_t *ck = json_object();
  json_object_set_new(ck, "monitor", json_string(mf_monitor_name(cfg->checkpoint_monitor)));
  json_object_set_new(o, "checkpoint", ck);
  json_object_set_new(o, "top_k", json_integer(cfg->top_k));
  json_object_set_new(o, "out", str_or_null(cfg->out_dir));
  json_object_set_new(o, "source", str_or_null(cfg->source_name));
  char *txt = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
  json_decref(o);
  return txt;
}
