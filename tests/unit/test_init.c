/* Initialisers against torch.nn.init: fans, gains, bounds, moments, reproducibility.
 *
 * Moment checks draw n >= 2^18 values from a fixed seed and allow 5 standard errors:
 * the sample mean has standard error sd / sqrt(n), the sample standard deviation
 * sd * sqrt((kurtosis - 1) / (4 n)) (kurtosis 1.8 for a uniform, 3 for a normal). With a fixed
 * seed the test is deterministic; 5 standard errors make it robust to a change of stream
 * while a wrong scale (off by sqrt(2), sqrt(3), a wrong fan) is off by hundreds of them.
 */
#include <stdlib.h>
#include <string.h>

#include "melforge/melforge.h"
#include "mftest.h"

typedef struct moments {
  double mean, sd, absmax;
} moments;

static moments stats(const mf_tensor *t) {
  double s = 0, ss = 0, mx = 0;
  for (int64_t i = 0; i < t->numel; i++) {
    s += t->data[i];
    mx = fmax(mx, fabs(t->data[i]));
  }
  const double mean = s / (double)t->numel;
  for (int64_t i = 0; i < t->numel; i++) ss += (t->data[i] - mean) * (t->data[i] - mean);
  return (moments){mean, sqrt(ss / (double)(t->numel - 1)), mx};
}

/* Mean and sd within 5 standard errors of the targets. */
static void expect_moments(const char *label, const mf_tensor *t, double mean, double sd,
                           double kurtosis) {
  moments m = stats(t);
  const double n = (double)t->numel;
  const double tol_mean = 5 * sd / sqrt(n), tol_sd = 5 * sd * sqrt((kurtosis - 1) / (4 * n));
  EXPECT(fabs(m.mean - mean) <= tol_mean, "%s: mean %.6g, want %.6g +- %.2g", label, m.mean, mean,
         tol_mean);
  EXPECT(fabs(m.sd - sd) <= tol_sd, "%s: sd %.6g, want %.6g +- %.2g", label, m.sd, sd, tol_sd);
}

/* Every |value| <= bound, and the extremes come close to it (not a narrower range). */
static void expect_bound(const char *label, const mf_tensor *t, double bound) {
  moments m = stats(t);
  EXPECT(m.absmax <= (float)bound, "%s: |w| reaches %.9g above the bound %.9g", label, m.absmax,
         bound);
  EXPECT(m.absmax >= 0.999 * bound, "%s: |w| only reaches %.9g of the bound %.9g", label, m.absmax,
         bound);
}

TEST(test_fans_of_linear_and_conv_weights) {
  mf_tensor *lin = mf_tensor_new(MF_SHAPE(3, 5)), *conv = mf_tensor_new(MF_SHAPE(8, 4, 3, 5));
  double fi, fo;
  mf_fans(lin, &fi, &fo);
  EXPECT_NEAR(fi, 5, 0);
  EXPECT_NEAR(fo, 3, 0);
  mf_fans(conv, &fi, &fo);
  EXPECT_NEAR(fi, 4 * 3 * 5, 0);
  EXPECT_NEAR(fo, 8 * 3 * 5, 0);
  mf_fans(conv, &fi, NULL); /* either output may be skipped */
  EXPECT_NEAR(fi, 60, 0);
  mf_tensor_free(lin);
  mf_tensor_free(conv);
}

TEST(test_gains_match_calculate_gain) {
  EXPECT_NEAR(mf_init_gain(MF_NL_LINEAR, 0), 1.0, 0);
  EXPECT_NEAR(mf_init_gain(MF_NL_RELU, 0.3), sqrt(2.0), 1e-15); /* a is ignored */
  EXPECT_NEAR(mf_init_gain(MF_NL_TANH, 0), 5.0 / 3.0, 1e-15);
  EXPECT_NEAR(mf_init_gain(MF_NL_LEAKY_RELU, 0.2), sqrt(2.0 / 1.04), 1e-15);
  EXPECT_NEAR(mf_init_gain(MF_NL_LEAKY_RELU, 0), sqrt(2.0), 1e-15);
  EXPECT_NEAR(mf_init_gain(MF_NL_LEAKY_RELU, sqrt(5.0)), sqrt(1.0 / 3.0), 1e-15);
}

TEST(test_constant_fills_every_element) {
  mf_tensor *t = mf_tensor_new(MF_SHAPE(100001)); /* above the parallel threshold */
  uint32_t v0 = *t->version;
  mf_init_constant(t, 0.25f);
  int bad = 0;
  for (int64_t i = 0; i < t->numel; i++) bad += t->data[i] != 0.25f;
  EXPECT_EQ_INT(bad, 0);
  EXPECT(*t->version != v0, "init must bump the tensor's version");
  mf_tensor_free(t);
}

TEST(test_uniform_respects_bounds_and_moments) {
  mf_tensor *t = mf_tensor_new(MF_SHAPE(1 << 20));
  mf_rng r = mf_rng_stream(1, MF_RNG_INIT);
  mf_init_uniform(t, &r, -2.0f, 3.0f);
  double lo = 1e9, hi = -1e9;
  for (int64_t i = 0; i < t->numel; i++) lo = fmin(lo, t->data[i]), hi = fmax(hi, t->data[i]);
  EXPECT(lo >= -2.0 && hi <= 3.0 && lo < -1.999 && hi > 2.999, "range [%g, %g]", lo, hi);
  expect_moments("uniform(-2, 3)", t, 0.5, 5.0 / sqrt(12.0), 1.8);
  mf_tensor_free(t);
}

TEST(test_normal_has_requested_moments) {
  mf_tensor *t = mf_tensor_new(MF_SHAPE(1 << 20));
  mf_rng r = mf_rng_stream(2, MF_RNG_INIT);
  mf_init_normal(t, &r, 1.0f, 2.0f);
  expect_moments("normal(1, 2)", t, 1.0, 2.0, 3.0);
  mf_tensor_free(t);
}

TEST(test_kaiming_uniform_bound_uses_gain_and_fan_in) {
  mf_tensor *w = mf_tensor_new(MF_SHAPE(256, 128, 3, 3)); /* fan_in 1152, fan_out 2304 */
  mf_rng r = mf_rng_stream(3, MF_RNG_INIT);
  mf_init_kaiming_uniform(w, &r, 0, MF_FAN_IN, MF_NL_RELU);
  const double bound = sqrt(2.0) * sqrt(3.0 / 1152);
  expect_bound("kaiming_uniform relu fan_in", w, bound);
  expect_moments("kaiming_uniform relu fan_in", w, 0, bound / sqrt(3.0), 1.8);
  mf_init_kaiming_uniform(w, &r, 0.1, MF_FAN_OUT, MF_NL_LEAKY_RELU);
  expect_bound("kaiming_uniform leaky fan_out", w, sqrt(2.0 / 1.01) * sqrt(3.0 / 2304));
  mf_tensor_free(w);
}

TEST(test_kaiming_normal_std_uses_gain_and_fan_out) {
  mf_tensor *w = mf_tensor_new(MF_SHAPE(512, 256, 3)); /* fan_in 768, fan_out 1536 */
  mf_rng r = mf_rng_stream(4, MF_RNG_INIT);
  mf_init_kaiming_normal(w, &r, 0, MF_FAN_OUT, MF_NL_RELU);
  expect_moments("kaiming_normal relu fan_out", w, 0, sqrt(2.0) / sqrt(1536.0), 3.0);
  mf_init_kaiming_normal(w, &r, 0, MF_FAN_IN, MF_NL_TANH);
  expect_moments("kaiming_normal tanh fan_in", w, 0, 5.0 / 3.0 / sqrt(768.0), 3.0);
  mf_tensor_free(w);
}

TEST(test_xavier_uniform_and_normal_scale_with_both_fans) {
  mf_tensor *w = mf_tensor_new(MF_SHAPE(600, 500)); /* fan_in + fan_out = 1100 */
  mf_rng r = mf_rng_stream(5, MF_RNG_INIT);
  mf_init_xavier_uniform(w, &r, 1.5);
  const double bound = 1.5 * sqrt(6.0 / 1100);
  expect_bound("xavier_uniform", w, bound);
  expect_moments("xavier_uniform", w, 0, bound / sqrt(3.0), 1.8);
  mf_init_xavier_normal(w, &r, 1.0);
  expect_moments("xavier_normal", w, 0, sqrt(2.0 / 1100), 3.0);
  mf_tensor_free(w);
}

TEST(test_linear_default_is_uniform_over_inverse_sqrt_fan_in) {
  mf_tensor *w = mf_tensor_new(MF_SHAPE(700, 400)), *b = mf_tensor_new(MF_SHAPE(700));
  mf_rng r = mf_rng_stream(6, MF_RNG_INIT), r2 = r;
  mf_init_linear_default(w, b, &r);
  expect_bound("linear weight", w, 1.0 / 20);
  expect_moments("linear weight", w, 0, 1.0 / 20 / sqrt(3.0), 1.8);
  /* The same draws as an explicit U(-1/sqrt(fan_in), 1/sqrt(fan_in)), weight then bias. */
  mf_tensor *w2 = mf_tensor_new(MF_SHAPE(700, 400)), *b2 = mf_tensor_new(MF_SHAPE(700));
  mf_init_uniform(w2, &r2, -0.05f, 0.05f);
  mf_init_uniform(b2, &r2, -0.05f, 0.05f);
  int bad = 0;
  for (int64_t i = 0; i < w->numel; i++) bad += fabsf(w->data[i] - w2->data[i]) > 1e-9f;
  for (int64_t i = 0; i < b->numel; i++) bad += fabsf(b->data[i] - b2->data[i]) > 1e-9f;
  EXPECT_EQ_INT(bad, 0);
  EXPECT(r.counter == r2.counter, "the stream advanced differently");
  mf_init_linear_default(w, NULL, &r); /* bias is optional */
  mf_tensor_free(w), mf_tensor_free(b), mf_tensor_free(w2), mf_tensor_free(b2);
}

TEST(test_conv_default_uses_fan_in_over_the_kernel) {
  mf_tensor *w = mf_tensor_new(MF_SHAPE(256, 16, 5, 5)), *b = mf_tensor_new(MF_SHAPE(256));
  mf_rng r = mf_rng_stream(7, MF_RNG_INIT);
  mf_init_conv_default(w, b, &r); /* fan_in = 16 * 25 = 400 */
  expect_bound("conv weight", w, 0.05);
  expect_moments("conv weight", w, 0, 0.05 / sqrt(3.0), 1.8);
  moments mb = stats(b);
  EXPECT(mb.absmax <= 0.05f && mb.absmax > 0.04, "conv bias reaches %g (bound 0.05)", mb.absmax);
  mf_tensor_free(w), mf_tensor_free(b);
}

TEST(test_same_seed_gives_same_weights_whatever_the_thread_count) {
  const int threads = mf_num_threads();
  mf_tensor *a = mf_tensor_new(MF_SHAPE(300, 500)), *b = mf_tensor_new(MF_SHAPE(300, 500));
  mf_set_num_threads(1);
  mf_rng r = mf_rng_stream(42, MF_RNG_INIT);
  mf_init_kaiming_normal(a, &r, 0, MF_FAN_IN, MF_NL_RELU);
  mf_set_num_threads(2);
  r = mf_rng_stream(42, MF_RNG_INIT);
  mf_init_kaiming_normal(b, &r, 0, MF_FAN_IN, MF_NL_RELU);
  mf_set_num_threads(threads);
  EXPECT(memcmp(a->data, b->data, (size_t)a->numel * sizeof(float)) == 0,
         "same seed gave different weights");
  r = mf_rng_stream(43, MF_RNG_INIT);
  mf_init_kaiming_normal(b, &r, 0, MF_FAN_IN, MF_NL_RELU);
  EXPECT(memcmp(a->data, b->data, (size_t)a->numel * sizeof(float)) != 0,
         "another seed gave the same weights");
  mf_tensor_free(a), mf_tensor_free(b);
}

TEST(test_zero_element_tensor_is_a_no_op) {
  mf_tensor *w = mf_tensor_new(MF_SHAPE(0, 4));
  mf_rng r = mf_rng_stream(1, MF_RNG_INIT);
  const uint64_t c0 = r.counter;
  mf_init_kaiming_uniform(w, &r, 0, MF_FAN_OUT, MF_NL_RELU);
  mf_init_xavier_normal(w, &r, 1.0);
  EXPECT(r.counter == c0, "drew numbers for an empty tensor");
  mf_tensor_free(w);
}
