/* Learning-rate schedules against torch.optim.lr_scheduler's formulas (StepLR,
 * CosineAnnealingLR, ReduceLROnPlateau, LinearLR warm-up).
 *
 * The closed forms are evaluated here in double exactly as the schedule does, so they agree
 * to rounding: TOL = 1e-12 relative. Plateau sequences are traced by hand in the comments.
 */
#include <string.h>

#include "melforge/melforge.h"
#include "mftest.h"

#define TOL 1e-12

static void init_ok(mf_schedule *s, const mf_schedule_config *c) {
  mf_status st = mf_schedule_init(s, c);
  EXPECT(st == MF_OK, "init failed: %s", mf_error());
}

/* Checks the rates of epochs 0..n-1 (metrics fed after each epoch). */
static void expect_rates(const char *label, mf_schedule *s, const double *want,
                         const double *metrics, int n) {
  for (int e = 0; e < n; e++) {
    double lr = e == 0 ? mf_schedule_lr(s) : mf_schedule_step(s, metrics ? metrics[e - 1] : NAN);
    EXPECT(fabs(lr - want[e]) <= TOL * fabs(want[e]) + 1e-300, "%s: epoch %d lr %.17g, want %.17g",
           label, e, lr, want[e]);
    EXPECT(mf_schedule_lr(s) == lr, "%s: mf_schedule_lr disagrees with step", label);
  }
}

TEST(test_constant_schedule_keeps_the_rate) {
  mf_schedule s;
  init_ok(&s, &(mf_schedule_config){.kind = MF_SCHED_CONSTANT, .base_lr = 0.3});
  double want[5] = {0.3, 0.3, 0.3, 0.3, 0.3};
  expect_rates("constant", &s, want, NULL, 5);
}

TEST(test_step_schedule_matches_steplr) {
  mf_schedule_config c = mf_schedule_defaults(MF_SCHED_STEP, 0.1);
  c.step_size = 3;
  c.gamma = 0.5;
  mf_schedule s;
  init_ok(&s, &c);
  double want[11];
  for (int e = 0; e < 11; e++) want[e] = 0.1 * pow(0.5, e / 3); /* base * gamma^(e // step) */
  EXPECT_NEAR(want[3], 0.05, 1e-15);
  EXPECT_NEAR(want[8], 0.025, 1e-15);
  expect_rates("step", &s, want, NULL, 11);
}

TEST(test_cosine_schedule_matches_closed_form_and_continues_past_t_max) {
  mf_schedule_config c = mf_schedule_defaults(MF_SCHED_COSINE, 0.1);
  c.t_max = 5;
  c.eta_min = 0.001;
  mf_schedule s;
  init_ok(&s, &c);
  double want[13];
  for (int e = 0; e < 13; e++)
    want[e] = 0.001 + (0.1 - 0.001) * (1 + cos(3.14159265358979323846 * e / 5)) / 2;
  EXPECT_NEAR(want[5], 0.001, 1e-15); /* the minimum at T_max */
  EXPECT_NEAR(want[10], 0.1, 1e-15);  /* and back up after another T_max */
  expect_rates("cosine", &s, want, NULL, 13);
}

TEST(test_plateau_reduces_after_patience_then_cools_down_and_stops_at_min_lr) {
  mf_schedule_config c = mf_schedule_defaults(MF_SCHED_PLATEAU, 1.0);
  c.factor = 0.5;
  c.patience = 2;
  c.cooldown = 1;
  c.min_lr = 0.2;
  c.threshold = 0.1; /* improvement must beat best * 0.9 */
  mf_schedule s;
  init_ok(&s, &c);
  /* Trace (best, bad, cooldown) after each epoch's metric:
   *  e0 10  : better (inf)            best 10, bad 0
   *  e1 9.5 : 9.5 < 9? no             bad 1
   *  e2 9.2 :                         bad 2
   *  e3 9.1 :                         bad 3 > 2 -> lr 0.5, cooldown 1, bad 0
   *  e4 9.0 : 9.0 < 9? no, bad 1; in cooldown -> cooldown 0, bad 0
   *  e5 9.0 :                         bad 1
   *  e6 8.9 : better                  best 8.9, bad 0
   *  e7..e9 8.5 (8.5 < 8.01? no)      bad 1, 2, 3 -> lr 0.25 after e9, cooldown 1
   *  e10 8.5: cooldown                bad 0
   *  e11..e13 8.5                     bad 1, 2, 3 -> max(0.125, 0.2) = 0.2 after e13
   *  e14 cooldown, e15..e17 bad 1..3 -> max(0.1, 0.2) = 0.2: no decrease, lr stays 0.2 */
  const double metrics[18] = {10,  9.5, 9.2, 9.1, 9.0, 9.0, 8.9, 8.5, 8.5,
                              8.5, 8.5, 8.5, 8.5, 8.5, 8.5, 8.5, 8.5, 8.5};
  /* want[e] is the rate of epoch e, i.e. after the metrics of epochs 0..e-1. */
  const double want[19] = {1,    1,    1,    1,    0.5, 0.5, 0.5, 0.5, 0.5, 0.5,
                           0.25, 0.25, 0.25, 0.25, 0.2, 0.2, 0.2, 0.2, 0.2};
  expect_rates("plateau min", &s, want, metrics, 19);
  EXPECT_NEAR(s.best, 8.9, 0);
}

TEST(test_plateau_ignores_reductions_smaller_than_eps) {
  /* PyTorch's eps = 1e-8: old_lr - new_lr must exceed it. */
  mf_schedule_config c = mf_schedule_defaults(MF_SCHED_PLATEAU, 1e-7);
  c.patience = 0;
  c.factor = 0.5;
  c.min_lr = 0.95e-7; /* max(0.5e-7, 0.95e-7): a decrease of 5e-9 */
  mf_schedule s;
  init_ok(&s, &c);
  mf_schedule_step(&s, 1.0);
  EXPECT_NEAR(mf_schedule_step(&s, 2.0), 1e-7, 0);
  c.min_lr = 0.85e-7; /* a decrease of 1.5e-8 is applied */
  init_ok(&s, &c);
  mf_schedule_step(&s, 1.0);
  EXPECT_NEAR(mf_schedule_step(&s, 2.0), 0.85e-7, 1e-22);
}

TEST(test_plateau_mode_max_waits_for_increases) {
  mf_schedule_config c = mf_schedule_defaults(MF_SCHED_PLATEAU, 0.1);
  c.mode_max = 1;
  c.factor = 0.1;
  c.patience = 1;
  c.threshold = 0.01; /* improvement must beat best * 1.01 */
  mf_schedule s;
  init_ok(&s, &c);
  /* e0 0.5 better; e1 0.504 (< 0.505) bad 1; e2 0.6 better; e3 0.55 bad 1; e4 0.58 bad 2 ->
   * lr 0.01; e5 0.7 better; e6 0.6 bad 1; e7 0.6 bad 2 -> lr 0.001. */
  const double metrics[8] = {0.5, 0.504, 0.6, 0.55, 0.58, 0.7, 0.6, 0.6};
  const double want[9] = {0.1, 0.1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001};
  expect_rates("plateau max", &s, want, metrics, 9);
  EXPECT_NEAR(s.best, 0.7, 0);
  /* The same metrics in min mode: 0.5 stays best, every second epoch is the second bad one
   * (after e2, e4, e6), so the rate is divided by 10 three times. */
  c.mode_max = 0;
  init_ok(&s, &c);
  for (int e = 0; e < 8; e++) mf_schedule_step(&s, metrics[e]);
  EXPECT_NEAR(mf_schedule_lr(&s), 1e-4, 1e-16);
  EXPECT_NEAR(s.best, 0.5, 0);
}

TEST(test_warmup_ramps_linearly_then_hands_over_to_cosine) {
  mf_schedule_config c = mf_schedule_defaults(MF_SCHED_COSINE, 0.1);
  c.t_max = 6;
  c.warmup = 4;
  c.warmup_start_factor = 0.25;
  mf_schedule s;
  init_ok(&s, &c);
  double want[14];
  for (int e = 0; e < 14; e++)
    want[e] = e < 4 ? 0.1 * (0.25 + 0.75 * e / 4.0)
                    : 0.1 * (1 + cos(3.14159265358979323846 * (e - 4) / 6)) / 2;
  EXPECT_NEAR(want[0], 0.025, 1e-15);
  EXPECT_NEAR(want[4], 0.1, 1e-15); /* the cosine starts at its epoch 0 after the warm-up */
  expect_rates("warmup+cosine", &s, want, NULL, 14);
}

TEST(test_warmup_in_front_of_step_schedule) {
  mf_schedule_config c = mf_schedule_defaults(MF_SCHED_STEP, 1.0);
  c.step_size = 2;
  c.gamma = 0.1;
  c.warmup = 3;
  c.warmup_start_factor = 0.1;
  mf_schedule s;
  init_ok(&s, &c);
  double want[10];
  for (int e = 0; e < 10; e++) want[e] = e < 3 ? 0.1 + 0.9 * e / 3.0 : pow(0.1, (e - 3) / 2);
  expect_rates("warmup+step", &s, want, NULL, 10);
}

TEST(test_warmup_then_plateau_ignores_metrics_during_warmup) {
  mf_schedule_config c = mf_schedule_defaults(MF_SCHED_PLATEAU, 0.1);
  c.patience = 0;
  c.factor = 0.5;
  c.warmup = 2;
  c.warmup_start_factor = 0.5;
  mf_schedule s;
  init_ok(&s, &c);
  /* Epochs 0, 1 are warm-up (their worsening metrics do not count); epoch 2 sets best = 3;
   * epoch 3 is worse -> bad 1 > patience 0 -> halve; epoch 4 worse again -> halve. */
  const double metrics[5] = {1, 2, 3, 4, 5};
  const double want[6] = {0.05, 0.075, 0.1, 0.1, 0.05, 0.025};
  expect_rates("warmup+plateau", &s, want, metrics, 6);
}

TEST(test_schedule_state_copy_resumes_exactly) {
  /* Checkpoints store the struct; a copy taken mid-run continues identically. */
  mf_schedule_config c = mf_schedule_defaults(MF_SCHED_PLATEAU, 0.01);
  c.patience = 1;
  c.cooldown = 2;
  c.warmup = 2;
  mf_schedule a, b;
  init_ok(&a, &c);
  const double m[12] = {5, 4, 3, 3.5, 3.2, 3.1, 3.0, 3.3, 3.4, 3.5, 3.6, 3.7};
  for (int e = 0; e < 6; e++) mf_schedule_step(&a, m[e]);
  memcpy(&b, &a, sizeof a);
  for (int e = 6; e < 12; e++)
    EXPECT(mf_schedule_step(&a, m[e]) == mf_schedule_step(&b, m[e]), "diverged at %d", e);
  EXPECT(a.lr < 0.01, "the run never reduced the rate; the test proves nothing");
}

TEST(test_schedule_defaults_follow_pytorch) {
  mf_schedule_config c = mf_schedule_defaults(MF_SCHED_PLATEAU, 0.5);
  EXPECT(c.kind == MF_SCHED_PLATEAU && c.base_lr == 0.5, "kind / base_lr");
  EXPECT(c.step_size == 10 && c.gamma == 0.1, "StepLR defaults");
  EXPECT(c.t_max == 50 && c.eta_min == 0, "cosine defaults");
  EXPECT(c.factor == 0.1 && c.patience == 10 && c.threshold == 1e-4 && c.cooldown == 0 &&
             c.min_lr == 0 && c.mode_max == 0,
         "ReduceLROnPlateau defaults");
  EXPECT(c.warmup == 0 && fabs(c.warmup_start_factor - 1.0 / 3.0) < 1e-15, "LinearLR defaults");
  mf_schedule s;
  init_ok(&s, &c);
  EXPECT(isinf(s.best) && s.best > 0 && s.num_bad == 0 && s.epoch == 0, "initial plateau state");
}

TEST(test_invalid_schedule_configs_are_rejected_naming_the_field) {
  mf_schedule_config cases[32];
  const char *fields[32];
  int n = 0;
#define CASE(k, f, stmt)               \
  do {                                 \
    mf_schedule_config *c = &cases[n]; \
    *c = mf_schedule_defaults(k, 0.1); \
    stmt;                              \
    fields[n++] = f;                   \
  } while (0)
  CASE(MF_SCHED_STEP, "step_size", c->step_size = 0);
  CASE(MF_SCHED_STEP, "gamma", c->gamma = 0);
  CASE(MF_SCHED_COSINE, "t_max", c->t_max = 0);
  CASE(MF_SCHED_COSINE, "eta_min", c->eta_min = -1);
  CASE(MF_SCHED_PLATEAU, "factor", c->factor = 1.0);
  CASE(MF_SCHED_PLATEAU, "factor", c->factor = -0.1);
  CASE(MF_SCHED_PLATEAU, "patience", c->patience = -1);
  CASE(MF_SCHED_PLATEAU, "threshold", c->threshold = -1e-4);
  CASE(MF_SCHED_PLATEAU, "cooldown", c->cooldown = -2);
  CASE(MF_SCHED_PLATEAU, "min_lr", c->min_lr = -1);
  CASE(MF_SCHED_PLATEAU, "mode_max", c->mode_max = 2);
  CASE(MF_SCHED_CONSTANT, "base_lr", c->base_lr = -0.1);
  CASE(MF_SCHED_CONSTANT, "base_lr", c->base_lr = NAN);
  CASE(MF_SCHED_COSINE, "warmup", c->warmup = -1);
  CASE(MF_SCHED_STEP, "warmup_start_factor", (c->warmup = 3, c->warmup_start_factor = 0));
  CASE(MF_SCHED_STEP, "warmup_start_factor", (c->warmup = 3, c->warmup_start_factor = 1.5));
  CASE((mf_schedule_kind)9, "kind", (void)c);
#undef CASE
  for (int k = 0; k < n; k++) {
    mf_schedule s;
    mf_clear_error();
    EXPECT(mf_schedule_init(&s, &cases[k]) == MF_EINVAL, "case %d (%s) was accepted", k, fields[k]);
    EXPECT(strstr(mf_error(), fields[k]) != NULL, "case %d: message '%s' does not name %s", k,
           mf_error(), fields[k]);
  }
  /* A start factor is only read when there is a warm-up. */
  mf_schedule_config c = mf_schedule_defaults(MF_SCHED_STEP, 0.1);
  c.warmup_start_factor = 0;
  mf_schedule s;
  EXPECT(mf_schedule_init(&s, &c) == MF_OK, "%s", mf_error());
}
