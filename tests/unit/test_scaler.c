/* Scalers: min-max and standard, global or per band along either axis of a row, fitted on
 * the training rows only; constant features; restore; thread-count independence.
 *
 * Tolerances: the scaled values are float, (x - offset) * scale with scale = 1 / range
 * rounded to float, so an exact 1 can come out one or two ulps off: 1e-6 absolute. Means
 * and standard deviations of scaled data are recomputed here in double from float results:
 * 1e-5.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "melforge/melforge.h"
#include "melforge/scaler.h"
#include "mftest.h"

#define TOL 1e-6

/* n rows of shape [4, 6]; band b of axis 0 lives around 100 b, column j of axis 1 adds 10 j,
 * plus a pseudo-random wiggle in [0, 1). */
static float *make_rows(int64_t n, uint64_t seed) {
  float *x = malloc((size_t)n * 24 * sizeof(float));
  mf_rng r = mf_rng_stream(seed, MF_RNG_USER);
  for (int64_t i = 0; i < n; i++)
    for (int b = 0; b < 4; b++)
      for (int j = 0; j < 6; j++)
        x[i * 24 + b * 6 + j] = 100.0f * b + 10.0f * j + mf_rng_uniform(&r);
  return x;
}

static int64_t *iota(int64_t n, int64_t start) {
  int64_t *idx = malloc((size_t)n * sizeof *idx);
  for (int64_t i = 0; i < n; i++) idx[i] = start + i;
  return idx;
}

static mf_scaler fit_ok(mf_scaler_kind kind, int per_band, int axis, mf_shape shape,
                        const float *rows, const int64_t *idx, int64_t n) {
  mf_scaler s;
  mf_status st = mf_scaler_fit(&s, kind, per_band, axis, shape, rows, idx, n);
  EXPECT(st == MF_OK, "fit failed: %s", mf_error());
  return s;
}

TEST(test_kind_names_parse_with_a_hint_for_typos) {
  mf_scaler_kind k;
  EXPECT(mf_scaler_kind_parse("minmax", &k) == MF_OK && k == MF_SCALER_MINMAX, "minmax");
  EXPECT(mf_scaler_kind_parse("standard", &k) == MF_OK && k == MF_SCALER_STANDARD, "standard");
  EXPECT(mf_scaler_kind_parse("none", &k) == MF_OK && k == MF_SCALER_NONE, "none");
  k = MF_SCALER_MINMAX;
  EXPECT(mf_scaler_kind_parse(NULL, &k) == MF_OK && k == MF_SCALER_NONE, "NULL is none");
  EXPECT(mf_scaler_kind_parse("minmx", &k) == MF_EINVAL, "typo accepted");
  EXPECT(strstr(mf_error(), "did you mean 'minmax'") && strstr(mf_error(), "standard"),
         "message: %s", mf_error());
  EXPECT(mf_scaler_kind_parse("zscore", &k) == MF_EINVAL, "unknown accepted");
  EXPECT(strstr(mf_error(), "minmax, standard, none") != NULL, "message: %s", mf_error());
  EXPECT(strcmp(mf_scaler_kind_name(MF_SCALER_STANDARD), "standard") == 0, "name");
}

TEST(test_minmax_maps_training_rows_to_unit_interval_and_other_rows_beyond) {
  const int64_t n = 50;
  float *x = make_rows(n, 1);
  /* Rows 40..49 play validation: push them outside the training range. */
  for (int j = 0; j < 24; j++) x[45 * 24 + j] += 1000.0f, x[46 * 24 + j] -= 1000.0f;
  int64_t *train = iota(40, 0);
  mf_scaler s = fit_ok(MF_SCALER_MINMAX, 1, 0, MF_SHAPE(4, 6), x, train, 40);
  EXPECT_EQ_INT(s.n_bands, 4);
  mf_scaler_apply(&s, x, n);
  for (int b = 0; b < 4; b++) {
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < 40; i++)
      for (int j = 0; j < 6; j++) {
        double v = x[i * 24 + b * 6 + j];
        lo = v < lo ? v : lo, hi = v > hi ? v : hi;
      }
    EXPECT_NEAR(lo, 0.0, 0); /* the minimum itself: x - min is exactly 0 */
    EXPECT_NEAR(hi, 1.0, TOL);
  }
  EXPECT(x[45 * 24] > 1.5f, "validation row above the training max: %g", x[45 * 24]);
  EXPECT(x[46 * 24] < -0.5f, "validation row below the training min: %g", x[46 * 24]);
  free(x), free(train);
  mf_scaler_clear(&s);
}

TEST(test_fit_reads_only_the_indexed_rows) {
  float *x = make_rows(20, 2);
  x[3 * 24] = 1e6f; /* not a training row */
  int64_t train[5] = {0, 5, 7, 11, 19};
  mf_scaler s = fit_ok(MF_SCALER_MINMAX, 0, 0, MF_SHAPE(4, 6), x, train, 5);
  double lo = INFINITY, hi = -INFINITY;
  for (int k = 0; k < 5; k++)
    for (int j = 0; j < 24; j++) {
      double v = x[train[k] * 24 + j];
      lo = v < lo ? v : lo, hi = v > hi ? v : hi;
    }
  EXPECT_EQ_INT(s.n_bands, 1);
  EXPECT_NEAR(s.offset[0], lo, 0);
  EXPECT_NEAR(s.scale[0], (float)(1.0 / (hi - lo)), 0);
  free(x);
  mf_scaler_clear(&s);
}

TEST(test_standard_gives_zero_mean_unit_std_per_band) {
  const int64_t n = 64;
  float *x = make_rows(n, 3);
  int64_t *train = iota(n, 0);
  mf_scaler s = fit_ok(MF_SCALER_STANDARD, 1, 1, MF_SHAPE(4, 6), x, train, n);
  EXPECT_EQ_INT(s.n_bands, 6);
  mf_scaler_apply(&s, x, n);
  for (int j = 0; j < 6; j++) {
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < n; i++)
      for (int b = 0; b < 4; b++) sum += x[i * 24 + b * 6 + j];
    double mean = sum / (n * 4);
    for (int64_t i = 0; i < n; i++)
      for (int b = 0; b < 4; b++) sq += pow(x[i * 24 + b * 6 + j] - mean, 2);
    EXPECT_NEAR(mean, 0.0, 1e-5);
    EXPECT_NEAR(sqrt(sq / (n * 4)), 1.0, 1e-5); /* population std, as sklearn */
  }
  free(x), free(train);
  mf_scaler_clear(&s);
}

TEST(test_standard_statistics_match_a_hand_computed_case) {
  /* One band of values 1, 2, 3, 4 (two rows of [1, 2]): mean 2.5, population variance
   * (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25. */
  float x[4] = {1, 2, 3, 4};
  int64_t idx[2] = {0, 1};
  mf_scaler s = fit_ok(MF_SCALER_STANDARD, 0, 0, MF_SHAPE(2), x, idx, 2);
  EXPECT_NEAR(s.offset[0], 2.5, 0);
  EXPECT_NEAR(s.scale[0], (float)(1.0 / sqrt(1.25)), 0);
  mf_scaler_apply(&s, x, 2);
  EXPECT_NEAR(x[0], -1.5 / sqrt(1.25), TOL);
  EXPECT_NEAR(x[3], 1.5 / sqrt(1.25), TOL);
  mf_scaler_clear(&s);
}

TEST(test_per_band_scales_each_band_while_global_shares_one_range) {
  const int64_t n = 30;
  float *a = make_rows(n, 4), *g = make_rows(n, 4);
  int64_t *train = iota(n, 0);
  mf_scaler sa = fit_ok(MF_SCALER_MINMAX, 1, 0, MF_SHAPE(4, 6), a, train, n);
  mf_scaler sg = fit_ok(MF_SCALER_MINMAX, 0, 0, MF_SHAPE(4, 6), g, train, n);
  mf_scaler_apply(&sa, a, n);
  mf_scaler_apply(&sg, g, n);
  /* Band 0 spans about [0, 51) of a global range of about [0, 351): per band it fills
   * [0, 1], globally it stays below 51 / 350. */
  double hi_a = 0, hi_g = 0;
  for (int64_t i = 0; i < n; i++)
    for (int j = 0; j < 6; j++) {
      hi_a = fmax(hi_a, a[i * 24 + j]);
      hi_g = fmax(hi_g, g[i * 24 + j]);
    }
  EXPECT_NEAR(hi_a, 1.0, TOL);
  EXPECT(hi_g < 51.0 / 350.0, "global scaling gave band 0 a maximum of %g", hi_g);
  EXPECT_EQ_INT(sg.n_bands, 1);
  free(a), free(g), free(train);
  mf_scaler_clear(&sa), mf_scaler_clear(&sg);
}

TEST(test_band_axis_selects_rows_or_columns_of_the_row_shape) {
  /* x[b][j] = 100 b + 10 j + u, u in [0, 1): along axis 0 band b has minimum about 100 b,
   * along axis 1 column j has minimum about 10 j. The exact minima are computed here. */
  const int64_t n = 16;
  float *x = make_rows(n, 5);
  int64_t *train = iota(n, 0);
  mf_scaler s0 = fit_ok(MF_SCALER_MINMAX, 1, 0, MF_SHAPE(4, 6), x, train, n);
  mf_scaler s1 = fit_ok(MF_SCALER_MINMAX, 1, 1, MF_SHAPE(4, 6), x, train, n);
  mf_scaler sm = fit_ok(MF_SCALER_MINMAX, 1, -1, MF_SHAPE(4, 6), x, train, n);
  EXPECT_EQ_INT(s0.n_bands, 4);
  EXPECT_EQ_INT(s1.n_bands, 6);
  EXPECT_EQ_INT(sm.band_axis, 1); /* -1 counts from the end */
  for (int b = 0; b < 4; b++) {
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; i++)
      for (int j = 0; j < 6; j++)
        lo = fminf(lo, x[i * 24 + b * 6 + j]), hi = fmaxf(hi, x[i * 24 + b * 6 + j]);
    EXPECT_NEAR(s0.offset[b], lo, 0);
    EXPECT_NEAR(s0.scale[b], (float)(1.0 / ((double)hi - lo)), 0);
  }
  for (int j = 0; j < 6; j++) {
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; i++)
      for (int b = 0; b < 4; b++)
        lo = fminf(lo, x[i * 24 + b * 6 + j]), hi = fmaxf(hi, x[i * 24 + b * 6 + j]);
    EXPECT_NEAR(s1.offset[j], lo, 0);
    EXPECT_NEAR(s1.scale[j], (float)(1.0 / ((double)hi - lo)), 0);
    EXPECT_NEAR(sm.offset[j], lo, 0);
  }
  free(x), free(train);
  mf_scaler_clear(&s0), mf_scaler_clear(&s1), mf_scaler_clear(&sm);
}

TEST(test_constant_band_maps_to_zero) {
  const int64_t n = 10;
  float *x = make_rows(n, 6);
  for (int64_t i = 0; i < n; i++)
    for (int j = 0; j < 6; j++) x[i * 24 + 2 * 6 + j] = 7.5f; /* band 2 constant */
  int64_t *train = iota(n, 0);
  for (int kind = MF_SCALER_MINMAX; kind <= MF_SCALER_STANDARD; kind++) {
    float *y = malloc(n * 24 * sizeof(float));
    memcpy(y, x, n * 24 * sizeof(float));
    mf_scaler s = fit_ok((mf_scaler_kind)kind, 1, 0, MF_SHAPE(4, 6), y, train, n);
    EXPECT_NEAR(s.offset[2], 7.5, 0);
    EXPECT_NEAR(s.scale[2], 0.0, 0);
    y[0 * 24 + 2 * 6] = 9.0f; /* unseen value in that band: still 0 */
    mf_scaler_apply(&s, y, n);
    for (int64_t i = 0; i < n; i++)
      for (int j = 0; j < 6; j++)
        EXPECT(y[i * 24 + 2 * 6 + j] == 0.0f, "%s: constant band gave %g",
               mf_scaler_kind_name(s.kind), y[i * 24 + 2 * 6 + j]);
    EXPECT(y[1 * 24 + 1 * 6] != 0.0f, "other bands untouched by the constant one");
    free(y);
    mf_scaler_clear(&s);
  }
  free(x), free(train);
}

TEST(test_restore_reproduces_apply_bit_for_bit) {
  const int64_t n = 25;
  float *x = make_rows(n, 7), *y = make_rows(n, 7);
  int64_t *train = iota(20, 0);
  mf_scaler s = fit_ok(MF_SCALER_STANDARD, 1, 0, MF_SHAPE(4, 6), x, train, 20);
  mf_scaler r;
  EXPECT(mf_scaler_restore(&r, s.kind, s.per_band, s.band_axis, s.row_shape, s.offset, s.scale,
                           s.n_bands) == MF_OK,
         "%s", mf_error());
  EXPECT(r.offset != s.offset, "restore must copy the arrays");
  mf_scaler_apply(&s, x, n);
  mf_scaler_apply(&r, y, n);
  EXPECT(memcmp(x, y, n * 24 * sizeof(float)) == 0, "restored scaler applies differently");
  /* A wrong band count or a non-finite value is a broken checkpoint. */
  mf_scaler bad;
  EXPECT(mf_scaler_restore(&bad, s.kind, 1, 1, s.row_shape, s.offset, s.scale, 4) == MF_EFORMAT,
         "4 pairs for 6 bands accepted");
  float nanv[4] = {0, NAN, 0, 0};
  EXPECT(mf_scaler_restore(&bad, s.kind, 1, 0, s.row_shape, nanv, s.scale, 4) == MF_EFORMAT,
         "NaN offset accepted");
  free(x), free(y), free(train);
  mf_scaler_clear(&s), mf_scaler_clear(&r);
}

TEST(test_none_is_the_identity) {
  float *x = make_rows(3, 8), *y = make_rows(3, 8);
  mf_scaler s = fit_ok(MF_SCALER_NONE, 0, 0, MF_SHAPE(4, 6), x, NULL, 0);
  mf_scaler_apply(&s, x, 3);
  EXPECT(memcmp(x, y, 3 * 24 * sizeof(float)) == 0, "none changed the data");
  EXPECT(s.offset && s.scale && s.offset[0] == 0.0f && s.scale[0] == 1.0f, "identity arrays");
  free(x), free(y);
  mf_scaler_clear(&s);
}

TEST(test_fit_and_apply_do_not_depend_on_the_thread_count) {
  /* Large enough for the parallel paths: 2000 rows of [64, 40]. */
  const int64_t n = 2000, rs = 64 * 40;
  float *x = malloc((size_t)(n * rs) * sizeof(float));
  mf_rng r = mf_rng_stream(9, MF_RNG_USER);
  mf_rng_fill_normal(&r, x, n * rs, 3.0f, 2.0f);
  float *y = malloc((size_t)(n * rs) * sizeof(float));
  memcpy(y, x, (size_t)(n * rs) * sizeof(float));
  int64_t *train = iota(1500, 0);
  int before = mf_num_threads();
  for (int axis = 0; axis < 2; axis++) {
    mf_set_num_threads(1);
    mf_scaler s1 = fit_ok(MF_SCALER_STANDARD, 1, axis, MF_SHAPE(64, 40), x, train, 1500);
    memcpy(y, x, (size_t)(n * rs) * sizeof(float));
    mf_scaler_apply(&s1, y, n);
    mf_set_num_threads(2);
    mf_scaler s2 = fit_ok(MF_SCALER_STANDARD, 1, axis, MF_SHAPE(64, 40), x, train, 1500);
    EXPECT(memcmp(s1.offset, s2.offset, (size_t)s1.n_bands * 4) == 0 &&
               memcmp(s1.scale, s2.scale, (size_t)s1.n_bands * 4) == 0,
           "axis %d: statistics differ between 1 and 2 threads", axis);
    mf_scaler_apply(&s2, x, n);
    EXPECT(memcmp(x, y, (size_t)(n * rs) * sizeof(float)) == 0,
           "axis %d: apply differs between 1 and 2 threads", axis);
    mf_scaler_clear(&s1), mf_scaler_clear(&s2);
    mf_rng_fill_normal(&r, x, n * rs, 3.0f, 2.0f);
  }
  mf_set_num_threads(before);
  free(x), free(y), free(train);
}

TEST(test_fit_rejects_non_finite_values_and_bad_axes) {
  float *x = make_rows(6, 10);
  x[4 * 24 + 5] = NAN;
  int64_t *idx = iota(6, 0);
  mf_scaler s;
  EXPECT(mf_scaler_fit(&s, MF_SCALER_STANDARD, 0, 0, MF_SHAPE(4, 6), x, idx, 6) == MF_EINVAL,
         "NaN accepted");
  EXPECT(strstr(mf_error(), "row 4") != NULL, "message: %s", mf_error());
  EXPECT(s.offset == NULL, "failed fit left arrays behind");
  EXPECT(mf_scaler_fit(&s, MF_SCALER_MINMAX, 1, 2, MF_SHAPE(4, 6), x, idx, 4) == MF_EINVAL,
         "axis 2 of a 2-d row accepted");
  EXPECT(strstr(mf_error(), "band_axis") != NULL, "message: %s", mf_error());
  EXPECT(mf_scaler_fit(&s, MF_SCALER_MINMAX, 0, 0, MF_SHAPE(4, 6), x, idx, 0) == MF_EINVAL,
         "fit on no rows accepted");
  free(x), free(idx);
}
