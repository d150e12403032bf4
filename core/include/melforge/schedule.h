/* melforge/schedule.h — learning-rate schedules, advanced once per epoch.
 *
 * A schedule maps the epoch count (and, for reduce-on-plateau, the monitored metric) to a
 * learning rate, like torch.optim.lr_scheduler:
 *   step     lr = base * gamma ^ floor(epoch / step_size)             (StepLR)
 *   cosine   lr = eta_min + (base - eta_min)(1 + cos(pi epoch / T_max)) / 2  (CosineAnnealingLR)
 *   plateau  multiply by factor after `patience` epochs without improvement of the metric
 *            (relative threshold, cooldown, min_lr)                  (ReduceLROnPlateau)
 *   constant
 * and any of them behind a linear warm-up from start_factor * lr to lr over `warmup` epochs.
 *
 * Use: lr = mf_schedule_lr(s) for the first epoch; after each epoch
 * lr = mf_schedule_step(s, metric) gives the next epoch's rate. The state is a plain struct
 * so checkpoints store it and resume exactly.
 */
#ifndef MELFORGE_SCHEDULE_H
#define MELFORGE_SCHEDULE_H

#include "melforge/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mf_schedule_kind {
  MF_SCHED_CONSTANT = 0,
  MF_SCHED_STEP = 1,
  MF_SCHED_COSINE = 2,
  MF_SCHED_PLATEAU = 3
} mf_schedule_kind;

typedef struct mf_schedule_config {
  mf_schedule_kind kind;
  double base_lr;
  /* step */
  int step_size;
  double gamma;
  /* cosine */
  int t_max;
  double eta_min;
  /* plateau */
  int mode_max;     /* 0: the metric should go down (loss), 1: up (accuracy) */
  double factor;
  int patience;
  double threshold; /* relative, PyTorch's threshold_mode='rel' */
  int cooldown;
  double min_lr;
  /* warm-up in front of any kind */
  int warmup;       /* epochs, 0 for none */
  double warmup_start_factor;
} mf_schedule_config;

/* The state; treat as opaque except to save and restore it. */
typedef struct mf_schedule {
  mf_schedule_config cfg;
  int epoch;        /* epochs completed */
  double lr;        /* rate for the coming epoch */
  double best;      /* plateau: best metric so far */
  int num_bad;      /* plateau: epochs without improvement */
  int cooldown_left;
} mf_schedule;

/* Defaults of each kind (PyTorch's): step_size 10, gamma 0.1; t_max 50, eta_min 0;
 * factor 0.1, patience 10, threshold 1e-4, cooldown 0, min_lr 0. */
mf_schedule_config mf_schedule_defaults(mf_schedule_kind kind, double base_lr);
/* MF_EINVAL with a message for bad settings (factor >= 1, t_max < 1, ...). */
mf_status mf_schedule_init(mf_schedule *s, const mf_schedule_config *cfg);
double mf_schedule_lr(const mf_schedule *s);
/* Ends an epoch; metric is read by plateau only (pass NAN otherwise). Returns the new rate. */
double mf_schedule_step(mf_schedule *s, double metric);

#ifdef __cplusplus
}
#endif
#endif
