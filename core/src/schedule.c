/* schedule.c — learning-rate schedules (torch.optim.lr_scheduler), once per epoch.
 *
 * Step and cosine use their closed forms, so the rate depends on the epoch count alone and a
 * schedule restored from a checkpoint continues exactly. Reduce-on-plateau is stateful (the
 * current rate, the best metric, the bad-epoch and cooldown counters all live in the
 * struct). A warm-up of W epochs runs in front of any kind: epochs 0..W-1 use
 * base * (start + (1 - start) * epoch / W) (LinearLR with end factor 1), and the wrapped
 * schedule counts its own epochs from W, so a plateau schedule ignores the metric during the
 * warm-up, when the loss falls for reasons of its own.
 */
#include "melforge/schedule.h"

#include <math.h>
#include <string.h>

/* ReduceLROnPlateau's eps: a reduction smaller than this is not applied. */
#define PLATEAU_EPS 1e-8
#define PI 3.14159265358979323846

static const char *kind_name(mf_schedule_kind k) {
  switch (k) {
    case MF_SCHED_CONSTANT:
      return "constant";
    case MF_SCHED_STEP:
      return "step";
    case MF_SCHED_COSINE:
      return "cosine";
    case MF_SCHED_PLATEAU:
      return "plateau";
  }
  return "schedule";
}

mf_schedule_config mf_schedule_defaults(mf_schedule_kind kind, double base_lr) {
  mf_schedule_config c;
  memset(&c, 0, sizeof c);
  c.kind = kind;
  c.base_lr = base_lr;
  c.step_size = 10;
  c.gamma = 0.1;
  c.t_max = 50;
  c.eta_min = 0;
  c.mode_max = 0;
  c.factor = 0.1;
  c.patience = 10;
  c.threshold = 1e-4;
  c.cooldown = 0;
  c.min_lr = 0;
  c.warmup = 0;
  c.warmup_start_factor = 1.0 / 3.0; /* LinearLR's default */
  return c;
}

static int nonneg(double v) { return v >= 0 && isfinite(v); }

static mf_status validate(const mf_schedule_config *c) {
  if (c->kind != MF_SCHED_CONSTANT && c->kind != MF_SCHED_STEP && c->kind != MF_SCHED_COSINE &&
      c->kind != MF_SCHED_PLATEAU)
    return mf_set_error(MF_EINVAL,
                        "unknown schedule kind %d; use constant, step, cosine or "
                        "plateau",
                        (int)c->kind);
  const char *k = kind_name(c->kind);
  if (!nonneg(c->base_lr))
    return mf_set_error(MF_EINVAL, "%s schedule: base_lr = %g must be a finite number >= 0", k,
                        c->base_lr);
  switch (c->kind) {
    case MF_SCHED_STEP:
      if (c->step_size < 1)
        return mf_set_error(MF_EINVAL,
                            "step schedule: step_size = %d must be >= 1 (epochs "
                            "between decays)",
                            c->step_size);
      if (!(c->gamma > 0 && isfinite(c->gamma)))
        return mf_set_error(MF_EINVAL,
                            "step schedule: gamma = %g must be a finite number > 0 "
                            "(0.1 is usual)",
                            c->gamma);
      break;
    case MF_SCHED_COSINE:
      if (c->t_max < 1)
        return mf_set_error(MF_EINVAL,
                            "cosine schedule: t_max = %d must be >= 1 (epochs of "
                            "the half period)",
                            c->t_max);
      if (!nonneg(c->eta_min))
        return mf_set_error(MF_EINVAL,
                            "cosine schedule: eta_min = %g must be a finite number "
                            ">= 0",
                            c->eta_min);
      break;
    case MF_SCHED_PLATEAU:
      if (c->mode_max != 0 && c->mode_max != 1)
        return mf_set_error(MF_EINVAL,
                            "plateau schedule: mode_max = %d must be 0 (minimise "
                            "the metric) or 1 (maximise it)",
                            c->mode_max);
      if (!(c->factor >= 0 && c->factor < 1))
        return mf_set_error(MF_EINVAL,
                            "plateau schedule: factor = %g must be in [0, 1) (the "
                            "rate is multiplied by it)",
                            c->factor);
      if (c->patience < 0)
        return mf_set_error(MF_EINVAL, "plateau schedule: patience = %d must be >= 0", c->patience);
      if (!nonneg(c->threshold))
        return mf_set_error(MF_EINVAL,
                            "plateau schedule: threshold = %g must be a finite "
                            "number >= 0 (relative improvement, 1e-4 is usual)",
                            c->threshold);
      if (c->cooldown < 0)
        return mf_set_error(MF_EINVAL, "plateau schedule: cooldown = %d must be >= 0", c->cooldown);
      if (!nonneg(c->min_lr))
        return mf_set_error(MF_EINVAL,
                            "plateau schedule: min_lr = %g must be a finite number "
                            ">= 0",
                            c->min_lr);
      break;
    case MF_SCHED_CONSTANT:
      break;
  }
  if (c->warmup < 0)
    return mf_set_error(MF_EINVAL, "%s schedule: warmup = %d must be >= 0 (epochs, 0 for none)", k,
                        c->warmup);
  if (c->warmup > 0 && !(c->warmup_start_factor > 0 && c->warmup_start_factor <= 1))
    return mf_set_error(MF_EINVAL, "%s schedule: warmup_start_factor = %g must be in (0, 1]", k,
                        c->warmup_start_factor);
  return MF_OK;
}

/* The rate of the wrapped schedule's epoch e (plateau: its rate before any reduction). */
static double closed_form(const mf_schedule_config *c, int e) {
  switch (c->kind) {
    case MF_SCHED_STEP:
      return c->base_lr * pow(c->gamma, (double)(e / c->step_size));
    case MF_SCHED_COSINE:
      return c->eta_min +
             (c->base_lr - c->eta_min) * (1.0 + cos(PI * (double)e / (double)c->t_max)) / 2.0;
    case MF_SCHED_CONSTANT:
    case MF_SCHED_PLATEAU:
      break;
  }
  return c->base_lr;
}

static double warmup_factor(const mf_schedule_config *c, int e) {
  const double s = c->warmup_start_factor;
  return s + (1.0 - s) * (double)e / (double)c->warmup;
}

mf_status mf_schedule_init(mf_schedule *s, const mf_schedule_config *cfg) {
  if (validate(cfg) != MF_OK) return MF_EINVAL;
  memset(s, 0, sizeof *s);
  s->cfg = *cfg;
  s->best = cfg->mode_max ? -INFINITY : INFINITY;
  s->lr = cfg->warmup > 0 ? cfg->base_lr * warmup_factor(cfg, 0) : closed_form(cfg, 0);
  return MF_OK;
}

double mf_schedule_lr(const mf_schedule *s) { return s->lr; }

/* ReduceLROnPlateau.step with threshold_mode 'rel', on the rate in s->lr. */
static void plateau_step(mf_schedule *s, double metric) {
  const mf_schedule_config *c = &s->cfg;
  const int better = c->mode_max ? metric > s->best * (1.0 + c->threshold)
                                 : metric < s->best * (1.0 - c->threshold);
  if (better) {
    s->best = metric;
    s->num_bad = 0;
  } else {
    s->num_bad++;
  }
  if (s->cooldown_left > 0) {
    s->cooldown_left--;
    s->num_bad = 0; /* bad epochs during the cooldown do not count */
  }
  if (s->num_bad > c->patience) {
    const double reduced = fmax(s->lr * c->factor, c->min_lr);
    if (s->lr - reduced > PLATEAU_EPS) s->lr = reduced;
    s->cooldown_left = c->cooldown;
    s->num_bad = 0;
  }
}

double mf_schedule_step(mf_schedule *s, double metric) {
  const mf_schedule_config *c = &s->cfg;
  const int done = s->epoch; /* the epoch that just ended */
  const int e = ++s->epoch;  /* the coming one */
  if (c->kind == MF_SCHED_PLATEAU) {
    /* From epoch W on, s->lr is the plateau's own rate. */
    if (done >= c->warmup) plateau_step(s, metric);
    if (e < c->warmup)
      s->lr = c->base_lr * warmup_factor(c, e);
    else if (e == c->warmup)
      s->lr = c->base_lr;
  } else {
    s->lr = e < c->warmup ? c->base_lr * warmup_factor(c, e) : closed_form(c, e - c->warmup);
  }
  return s->lr;
}
