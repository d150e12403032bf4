/* melforge/train.h — the training engine: one experiment, from a dataset to a run folder.
 *
 * mf_train_run() loads (or first builds, from an audio recipe) the HDF5 dataset, splits it
 * (stratified, grouped by track unless told otherwise), fits the scaler on the training
 * rows, builds the model plugin, then runs the epoch loop: shuffled batches, augmentation
 * plugins on training batches only, forward, cross-entropy, backward, gradient clipping,
 * optimizer step; validation metrics each epoch; the schedule; callbacks (best checkpoint
 * by a monitored metric, early stopping with optional restore of the best weights,
 * reduce-on-plateau, NaN/Inf detection). At the end the best weights are evaluated on the
 * test split, segment- and track-level.
 *
 * Everything random comes from streams of the experiment seed (split, init, shuffle,
 * dropout, augment; per epoch a sub-stream), so the same configuration, seed and thread
 * count give bit-identical metrics and weights, and a run resumed from last.h5 — written
 * at every epoch end and when interrupted, mid-epoch included — ends bit-identical to one
 * that never stopped.
 *
 * The run folder (out_dir, by convention runs/<experiment>/<seed>/) receives metrics.csv
 * (a row per epoch), summary.json, config.json (the resolved configuration), best.h5 and
 * last.h5 (checkpoint.h), all written atomically.
 *
 * The engine is plain C; the Lua experiment scripts (lua front end) only fill the config.
 */
#ifndef MELFORGE_TRAIN_H
#define MELFORGE_TRAIN_H

#include <stdint.h>

#include "melforge/component.h"
#include "melforge/extract.h"
#include "melforge/optim.h"
#include "melforge/scaler.h"
#include "melforge/schedule.h"
#include "melforge/split.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A plugin component with its validated parameter values (owned by the config). */
typedef struct mf_choice {
  const mf_component *component;
  mf_values *values;
} mf_choice;

typedef enum mf_monitor {
  MF_MON_VAL_LOSS = 0,
  MF_MON_VAL_ACCURACY = 1,
  MF_MON_VAL_MACRO_F1 = 2,
  MF_MON_VAL_TRACK_ACCURACY = 3,
  MF_MON_TRAIN_LOSS = 4
} mf_monitor;

/* "val_loss", "val_accuracy", "val_macro_f1", "val_track_accuracy", "train_loss". */
const char *mf_monitor_name(mf_monitor m);
mf_status mf_monitor_parse(const char *name, mf_monitor *out);
/* Whether larger is better (accuracy, F1) or smaller (loss). */
int mf_monitor_maximize(mf_monitor m);

typedef struct mf_data_config {
  char *path;          /* the HDF5 dataset; with a recipe, its cache */
  char *audio_dir;     /* recipe: build `path` from this folder when missing or stale */
  mf_choice feature;   /* recipe */
  mf_segmenting seg;   /* recipe */
  double sample_rate;  /* recipe; 0: 22050 */
} mf_data_config;

typedef struct mf_early_stopping {
  int enabled;
  mf_monitor monitor;
  int patience;
  double min_delta;
  int restore_best;
} mf_early_stopping;

#define MF_MAX_AUGMENT 16

typedef struct mf_train_config {
  char *name;                  /* experiment name */
  uint64_t seed;
  mf_data_config data;
  mf_split_config split;
  char *split_files[3];        /* fixed split lists (train, val, test) or NULL */
  mf_scaler_kind scaler;
  int scaler_per_band;         /* per mel band / MFCC coefficient instead of global */
  mf_choice model;
  mf_choice augment[MF_MAX_AUGMENT];
  int n_augment;
  mf_optim_config optim;
  mf_schedule_config schedule; /* base_lr is taken from optim.lr */
  int epochs;
  int batch_size;
  int eval_batch_size;         /* 0: 128 */
  double clip_grad_norm;       /* 0: off */
  double label_smoothing;
  mf_early_stopping early_stopping;
  mf_monitor checkpoint_monitor; /* best.h5 keeps the best epoch by this */
  int top_k;                   /* 0: 3 */
  char *out_dir;               /* the run folder */
  char *source_name;           /* the experiment script's path, for the record */
  char *source_text;           /* its text, stored in checkpoints */
} mf_train_config;

/* Defaults: seed 42, split 0.64/0.16/0.20 grouped, minmax scaler, Adam 1e-3, constant
 * schedule, 50 epochs, batch 32, checkpoint on val_accuracy, no early stopping, top-3. */
void mf_train_config_init(mf_train_config *cfg);
void mf_train_config_clear(mf_train_config *cfg); /* frees owned strings and values */
/* Validates everything a run needs (MF_EINVAL naming the field). */
mf_status mf_train_config_check(const mf_train_config *cfg);
/* The resolved configuration as JSON (malloc'd): every setting, defaults included. */
char *mf_train_config_to_json(const mf_train_config *cfg);

/* One epoch's record: a row of metrics.csv and the line printed per epoch. */
typedef struct mf_epoch_log {
  int epoch;                /* 1-based */
  int epochs;
  double lr;
  double train_loss, train_accuracy;
  double val_loss, val_accuracy, val_macro_f1, val_track_accuracy; /* NAN without val set */
  double seconds;
  int improved;             /* the checkpoint monitor improved (best.h5 written) */
} mf_epoch_log;

typedef struct mf_train_hooks {
  void (*message)(const char *text, void *user);             /* notes: split, cache, ... */
  void (*on_step)(int epoch, int step, int steps, double loss, void *user);
  void (*on_epoch)(const mf_epoch_log *log, void *user);
  volatile int *interrupt;  /* set to 1 (e.g. by a SIGINT handler): stop after this step */
  void *user;
} mf_train_hooks;

typedef struct mf_run_result {
  char *summary_json;       /* summary.json's text (malloc'd), NULL if the run did not finish */
  int epochs_run;
  int best_epoch;
  int stopped_early;
  int interrupted;
  double test_accuracy, test_track_accuracy, test_macro_f1, train_seconds;
} mf_run_result;

/* Runs (or, with resume, continues from out_dir/last.h5) the experiment. Returns
 * MF_EINTERRUPT when interrupted (last.h5 written), MF_ESTATE when the loss or gradients
 * stopped being finite (the last good checkpoint is kept; the message names epoch and
 * step). */
mf_status mf_train_run(const mf_train_config *cfg, int resume, const mf_train_hooks *hooks,
                       mf_run_result *out);
void mf_run_result_clear(mf_run_result *r);

/* Makes sure cfg->data.path exists and matches its recipe: (re)builds it from the audio
 * folder when missing or when the recipe changed (feature, parameters, segmenting, rate,
 * folder are compared with the cached file's attributes). No-op without a recipe. */
mf_status mf_train_prepare_data(const mf_data_config *data, const mf_train_hooks *hooks);

#ifdef __cplusplus
}
#endif
#endif
