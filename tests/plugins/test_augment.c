/* The augment plugins on batches: each changes a training batch in place, draws only from the
 * rng it is handed (same state, same output; another state, another output), keeps to its
 * documented distribution (mask widths and starts, Beta lambdas, noise SNR and std, gains,
 * shifts, crop windows; every tolerance is stated next to its check), and has its parameters
 * validated by the schema. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "melforge/component.h"
#include "melforge/melforge.h"
#include "mftest.h"

#define SETS(...) ((const char *const[]){__VA_ARGS__, NULL})

static const char *const ALL[] = {"specaugment", "mixup",     "noise",
                                  "gain",        "timeshift", "random_crop"};
#define N_ALL 6

static const mf_component *component(const char *name) {
  if (mf_component_count() == 0) mf_plugins_load_path(BUILD_PLUGIN_DIR, NULL, NULL);
  return mf_component_find(MF_KIND_AUGMENT, name);
}

/* `name` with "k=v" overrides; NULL (error set) when a value or the creation is refused. */
static mf_augment *make(const char *name, const char *const *sets) {
  const mf_component *c = component(name);
  if (!c) return NULL;
  mf_values *v;
  if (mf_component_values(c, &v) != MF_OK) return NULL;
  for (; sets && *sets; sets++)
    if (mf_values_set_assignment(v, *sets) != MF_OK) {
      mf_values_free(v);
      return NULL;
    }
  mf_augment *a = NULL;
  mf_augment_new(c, v, &a);
  mf_values_free(v);
  return a;
}

static mf_augment *must_make(const char *name, const char *const *sets) {
  mf_augment *a = make(name, sets);
  MF_CHECK(a, "cannot build augment %s: %s", name, mf_error());
  return a;
}

static mf_rng rng_of(uint64_t seed) { return mf_rng_stream(seed, MF_RNG_AUGMENT); }

/* Uniform values in [lo, hi): no two equal in practice, none equal to a sample's mean. */
static mf_tensor *random_batch(mf_shape shape, uint64_t seed, float lo, float hi) {
  mf_tensor *t = mf_tensor_new(shape);
  mf_rng r = mf_rng_stream(seed, MF_RNG_USER);
  mf_rng_fill_uniform(&r, t->data, t->numel, lo, hi);
  return t;
}

static mf_tensor *clone(const mf_tensor *t) {
  return mf_tensor_from_data(mf_tensor_shape(t), t->data);
}

static int same(const mf_tensor *a, const mf_tensor *b) {
  return a->numel == b->numel && memcmp(a->data, b->data, sizeof(float) * (size_t)a->numel) == 0;
}

/* Row i one-hot at label i % C. */
static mf_tensor *one_hot(int64_t n, int64_t C) {
  mf_tensor *t = mf_tensor_new(MF_SHAPE(n, C));
  for (int64_t i = 0; i < n; i++) t->data[i * C + i % C] = 1;
  return t;
}

static double sample_mean(const float *v, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += v[i];
  return s / (double)n;
}

static float sample_min(const float *v, int64_t n) {
  float m = v[0];
  for (int64_t i = 1; i < n; i++) m = v[i] < m ? v[i] : m;
  return m;
}

static mf_status apply(mf_augment *a, mf_tensor *x, mf_tensor *t, uint64_t seed) {
  mf_rng r = rng_of(seed);
  return mf_augment_apply(a, x, t, &r);
}

#define EXPECT_ERROR_HAS(text) \
  EXPECT(strstr(mf_error(), text) != NULL, "error message lacks \"%s\": %s", text, mf_error())

/* ---- every plugin -------------------------------------------------------------------------- */

TEST(test_every_augment_is_registered_with_documented_parameters) {
  for (int i = 0; i < N_ALL; i++) {
    const mf_component *c = component(ALL[i]);
    EXPECT(c != NULL, "augment %s is not registered: %s", ALL[i], mf_error());
    if (!c) continue;
    EXPECT(mf_component_kind(c) == MF_KIND_AUGMENT, "%s is not an augment", ALL[i]);
    const mf_param_spec *p = mf_component_params(c);
    int has_p = 0;
    for (; p && p->name; p++) {
      EXPECT(p->doc && strlen(p->doc) > 10, "%s.%s has no doc line", ALL[i], p->name);
      has_p |= !strcmp(p->name, "p");
    }
    EXPECT(has_p, "%s has no probability parameter p", ALL[i]);
  }
}

TEST(test_every_augment_changes_a_training_batch) {
  for (int i = 0; i < N_ALL; i++) {
    mf_augment *a = must_make(ALL[i], NULL);
    mf_tensor *x = random_batch(MF_SHAPE(8, 1, 40, 60), 1, 0, 1), *x0 = clone(x);
    mf_tensor *t = one_hot(8, 4), *t0 = clone(t);
    EXPECT(apply(a, x, t, 7) == MF_OK, "%s: %s", ALL[i], mf_error());
    EXPECT(x->ndim == 4 && x->shape[0] == 8 && x->shape[3] == 60, "%s changed the shape", ALL[i]);
    EXPECT(!same(x, x0), "%s left the batch unchanged", ALL[i]);
    if (!strcmp(ALL[i], "mixup"))
      EXPECT(!same(t, t0), "mixup left the targets unchanged");
    else
      EXPECT(same(t, t0), "%s changed the targets", ALL[i]);
    mf_tensor_free(x), mf_tensor_free(x0), mf_tensor_free(t), mf_tensor_free(t0);
    mf_augment_free(a);
  }
}

/* Field by field: the struct's tail padding is not part of the state. */
static int same_rng_state(const mf_rng *a, const mf_rng *b) {
  return a->key[0] == b->key[0] && a->key[1] == b->key[1] && a->counter == b->counter &&
         a->nbuf == b->nbuf && !memcmp(a->buf, b->buf, sizeof a->buf);
}

TEST(test_every_augment_is_a_function_of_its_rng_state) {
  for (int i = 0; i < N_ALL; i++) {
    mf_augment *a = must_make(ALL[i], NULL);
    mf_tensor *x[3], *t[3];
    mf_rng r[3] = {rng_of(5), rng_of(5), rng_of(6)};
    for (int k = 0; k < 3; k++) {
      x[k] = random_batch(MF_SHAPE(16, 32, 48), 2, 0, 1);
      t[k] = one_hot(16, 5);
      EXPECT(mf_augment_apply(a, x[k], t[k], &r[k]) == MF_OK, "%s: %s", ALL[i], mf_error());
    }
    EXPECT(same(x[0], x[1]) && same(t[0], t[1]), "%s: one rng state gave two outputs", ALL[i]);
    EXPECT(same_rng_state(&r[0], &r[1]), "%s: the rng advanced differently", ALL[i]);
    EXPECT(!same(x[0], x[2]), "%s: two rng states gave one output", ALL[i]);
    /* A second batch from the advanced stream is augmented differently from the first. */
    mf_tensor *y = random_batch(MF_SHAPE(16, 32, 48), 2, 0, 1), *u = one_hot(16, 5);
    mf_augment_apply(a, y, u, &r[0]);
    EXPECT(!same(x[0], y), "%s: consecutive batches got the same augmentation", ALL[i]);
    for (int k = 0; k < 3; k++) mf_tensor_free(x[k]), mf_tensor_free(t[k]);
    mf_tensor_free(y), mf_tensor_free(u);
    mf_augment_free(a);
  }
}

TEST(test_every_augment_with_p_zero_leaves_the_batch_alone) {
  for (int i = 0; i < N_ALL; i++) {
    mf_augment *a = must_make(ALL[i], SETS("p=0"));
    mf_tensor *x = random_batch(MF_SHAPE(8, 20, 30), 3, 0, 1), *x0 = clone(x);
    mf_tensor *t = one_hot(8, 3), *t0 = clone(t);
    EXPECT(apply(a, x, t, 1) == MF_OK, "%s: %s", ALL[i], mf_error());
    EXPECT(same(x, x0) && same(t, t0), "%s with p = 0 changed the batch", ALL[i]);
    mf_tensor_free(x), mf_tensor_free(x0), mf_tensor_free(t), mf_tensor_free(t0);
    mf_augment_free(a);
  }
}

TEST(test_parameters_are_validated_by_the_schema) {
  static const struct {
    const char *name, *set, *fragment;
  } cases[] = {
      {"specaugment", "freq_mask=-1", "parameter 'freq_mask' expects an int in [0, 1048576]"},
      {"specaugment", "time_masks=65", "parameter 'time_masks' expects an int in [0, 64]"},
      {"specaugment", "mask_value=avg", "must be one of mean|zero|min"},
      {"specaugment", "time_msk=27", "did you mean 'time_mask'"},
      {"specaugment", "p=1.5", "parameter 'p' expects a float in [0, 1]"},
      {"specaugment", "time_axis=6", "parameter 'time_axis' expects an int in [-5, 4]"},
      {"mixup", "alpha=0", "parameter 'alpha' expects a float in [0.001, 1000]"},
      {"mixup", "per_sample=maybe", "expects a bool"},
      {"noise", "mode=white", "must be one of snr|std"},
      {"noise", "std=-0.1", "parameter 'std' expects a float in [0, 1000]"},
      {"noise", "snr_max=200", "parameter 'snr_max' expects a float in [-30, 100]"},
      {"gain", "db_per_unit=0", "parameter 'db_per_unit' expects a float in [0.001, 1e+06]"},
      {"gain", "gain_db=3", "has no parameter 'gain_db'"},
      {"timeshift", "mode=wrap", "must be one of roll|shift"},
      {"timeshift", "max_fraction=2", "parameter 'max_fraction' expects a float in [0, 1]"},
      {"random_crop", "fill=edge", "must be one of mean|zero|min"},
      {"random_crop", "frame=10", "did you mean 'frames'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mf_augment *a = make(cases[i].name, SETS(cases[i].set));
    EXPECT(a == NULL, "%s accepted %s", cases[i].name, cases[i].set);
    mf_augment_free(a);
    EXPECT(strstr(mf_error(), cases[i].fragment) != NULL, "%s %s: message lacks \"%s\": %s",
           cases[i].name, cases[i].set, cases[i].fragment, mf_error());
  }
}

TEST(test_inverted_ranges_are_refused_at_creation) {
  EXPECT(make("noise", SETS("snr_min=30", "snr_max=10")) == NULL, "noise took snr_min > snr_max");
  EXPECT_ERROR_HAS("snr_min = 30 dB is above snr_max = 10 dB");
  EXPECT(make("gain", SETS("db_min=3", "db_max=-3")) == NULL, "gain took db_min > db_max");
  EXPECT_ERROR_HAS("db_min = 3 is above db_max = -3");
  /* std mode ignores the SNR range. */
  mf_augment *a = make("noise", SETS("mode=std", "snr_min=30", "snr_max=10"));
  EXPECT(a != NULL, "%s", mf_error());
  mf_augment_free(a);
}

/* ---- specaugment ----------------------------------------------------------------------------- */

/* For one sample x [F, T] against its original x0: the bands and frames wholly equal to `fill`
 * are the masked ones (random originals never are); every value in them is `fill`, every other
 * value is the original. Returns those bands and frames as 0/1 arrays. */
static int check_band_frame_masks(const float *x, const float *x0, int64_t F, int64_t T, float fill,
                                  char *band, char *frame) {
  for (int64_t f = 0; f < F; f++) {
    band[f] = 1;
    for (int64_t t = 0; t < T; t++) band[f] &= x[f * T + t] == fill;
  }
  for (int64_t t = 0; t < T; t++) {
    frame[t] = 1;
    for (int64_t f = 0; f < F; f++) frame[t] &= x[f * T + t] == fill;
  }
  for (int64_t f = 0; f < F; f++)
    for (int64_t t = 0; t < T; t++)
      if (!band[f] && !frame[t] && x[f * T + t] != x0[f * T + t]) return 0;
  return 1;
}

static int runs(const char *m, int64_t n) {
  int r = 0;
  for (int64_t i = 0; i < n; i++) r += m[i] && (i == 0 || !m[i - 1]);
  return r;
}

static int64_t count(const char *m, int64_t n) {
  int64_t c = 0;
  for (int64_t i = 0; i < n; i++) c += m[i];
  return c;
}

TEST(test_specaugment_masks_whole_bands_and_frames_with_the_sample_mean) {
  enum { N = 32, F = 64, T = 100 };
  mf_augment *a = must_make("specaugment", NULL); /* 2 x F 15, 2 x T 25, mean */
  mf_tensor *x = random_batch(MF_SHAPE(N, F, T), 4, -1, 3), *x0 = clone(x);
  EXPECT(apply(a, x, NULL, 11) == MF_OK, "%s", mf_error());
  char band[F], frame[T];
  int64_t masked_bands = 0, masked_frames = 0;
  for (int s = 0; s < N; s++) {
    const float *v = x->data + s * F * T, *v0 = x0->data + s * F * T;
    const float mean = (float)sample_mean(v0, F * T);
    EXPECT(check_band_frame_masks(v, v0, F, T, mean, band, frame),
           "sample %d: the changes are not whole bands / frames set to the mean %g", s, mean);
    EXPECT(runs(band, F) <= 2 && count(band, F) <= 30, "sample %d: %d band runs, %lld bands", s,
           runs(band, F), (long long)count(band, F));
    EXPECT(runs(frame, T) <= 2 && count(frame, T) <= 50, "sample %d: %d frame runs, %lld frames", s,
           runs(frame, T), (long long)count(frame, T));
    masked_bands += count(band, F), masked_frames += count(frame, T);
  }
  /* Two masks of mean width 7.5 (15 / 2) and 12.5, less overlap: well above zero. */
  EXPECT(masked_bands > N * 5 && masked_frames > N * 10, "masked %lld bands, %lld frames",
         (long long)masked_bands, (long long)masked_frames);
  mf_tensor_free(x), mf_tensor_free(x0);
  mf_augment_free(a);
}

TEST(test_specaugment_mask_widths_and_starts_are_uniform) {
  /* One frequency mask of width U{0..10} over 32 bands of ones, zero fill: the masked bands
   * of each sample are one run [start, start + width). 4000 samples. */
  enum { N = 4000, F = 32, T = 4, W = 10 };
  mf_augment *a = must_make(
      "specaugment", SETS("freq_masks=1", "freq_mask=10", "time_masks=0", "mask_value=zero"));
  mf_tensor *x = mf_tensor_new(MF_SHAPE(N, F, T));
  mf_tensor_fill(x, 1);
  EXPECT(apply(a, x, NULL, 3) == MF_OK, "%s", mf_error());
  int64_t hist[W + 2] = {0}, start_lo = 0, start_hi = 0;
  double width_sum = 0, rel_start_sum = 0;
  int64_t rel_n = 0;
  for (int s = 0; s < N; s++) {
    const float *v = x->data + s * F * T;
    int64_t w = 0, start = -1;
    for (int64_t f = 0; f < F; f++)
      if (v[f * T] == 0) {
        if (start < 0) start = f;
        w++;
        for (int64_t t = 1; t < T; t++)
          EXPECT(v[f * T + t] == 0, "band %lld partly masked", (long long)f);
      }
    if (w > 0) EXPECT(v[(start + w - 1) * T] == 0, "sample %d: the mask is not one run", s);
    hist[w <= W ? w : W + 1]++;
    width_sum += (double)w;
    if (w > 0 && w < F) {
      rel_start_sum += (double)start / (double)(F - w);
      rel_n++;
      start_lo += start == 0;
      start_hi += start == F - w;
    }
  }
  EXPECT_EQ_INT(hist[W + 1], 0); /* never wider than freq_mask */
  /* Width ~ U{0..10}: mean 5, sd 3.16; 4000 samples give a standard error of 0.05 on the mean
   * and 0.0045 on each of the 11 shares (1/11 = 0.091): tolerances of about 4 standard errors. */
  EXPECT_NEAR(width_sum / N, 5.0, 0.2);
  for (int w = 0; w <= W; w++)
    EXPECT(fabs((double)hist[w] / N - 1.0 / 11) < 0.02, "width %d has share %.4f, expected 0.091",
           w, (double)hist[w] / N);
  /* start / (F - width) ~ U[0, 1] roughly: mean 0.5, standard error 0.005. */
  EXPECT_NEAR(rel_start_sum / (double)rel_n, 0.5, 0.02);
  EXPECT(start_lo > 0 && start_hi > 0, "starts never reach an end: %lld at 0, %lld at the top",
         (long long)start_lo, (long long)start_hi);
  mf_tensor_free(x);
  mf_augment_free(a);
}

TEST(test_specaugment_mask_value_zero_and_min) {
  enum { N = 8, F = 20, T = 30 };
  const char *const kinds[] = {"mask_value=zero", "mask_value=min"};
  for (int k = 0; k < 2; k++) {
    mf_augment *a = must_make("specaugment", SETS(kinds[k], "freq_mask=8", "time_mask=10"));
    mf_tensor *x = random_batch(MF_SHAPE(N, F, T), 5, 1, 2), *x0 = clone(x);
    EXPECT(apply(a, x, NULL, 2) == MF_OK, "%s", mf_error());
    char band[F], frame[T];
    for (int s = 0; s < N; s++) {
      const float *v0 = x0->data + s * F * T;
      const float fill = k == 0 ? 0.0f : sample_min(v0, F * T);
      EXPECT(check_band_frame_masks(x->data + s * F * T, v0, F, T, fill, band, frame),
             "%s: sample %d is not masked with %g", kinds[k], s, fill);
    }
    EXPECT(!same(x, x0), "%s masked nothing", kinds[k]);
    mf_tensor_free(x), mf_tensor_free(x0);
    mf_augment_free(a);
  }
}

TEST(test_specaugment_axes_fit_channel_and_mfcc_layouts) {
  /* [1, n_mels, frames] with the defaults: masks still cover bands and frames. */
  enum { N = 6, F = 24, T = 36, C = 13 };
  mf_augment *a = must_make("specaugment", SETS("freq_mask=6", "time_mask=8"));
  mf_tensor *x = random_batch(MF_SHAPE(N, 1, F, T), 6, 0, 1), *x0 = clone(x);
  EXPECT(apply(a, x, NULL, 4) == MF_OK, "%s", mf_error());
  char band[F], frame[T];
  for (int s = 0; s < N; s++) {
    const float *v0 = x0->data + s * F * T;
    EXPECT(check_band_frame_masks(x->data + s * F * T, v0, F, T, (float)sample_mean(v0, F * T),
                                  band, frame),
           "channel layout: sample %d", s);
  }
  mf_tensor_free(x), mf_tensor_free(x0);
  mf_augment_free(a);
  /* MFCC rows [frames, n_coeffs]: time on axis 0, coefficients on axis 1. Transposed, the
   * masks are whole frames (rows) and whole coefficients (columns). */
  a = must_make("specaugment", SETS("time_axis=0", "freq_axis=1", "freq_mask=4", "time_mask=8"));
  x = random_batch(MF_SHAPE(N, T, C), 7, 0, 1), x0 = clone(x);
  EXPECT(apply(a, x, NULL, 4) == MF_OK, "%s", mf_error());
  char coeff[C], row[T];
  int64_t masked_rows = 0;
  for (int s = 0; s < N; s++) {
    const float *v0 = x0->data + s * T * C;
    /* Seen as [T, C], "bands" are rows (frames) and "frames" are coefficients. */
    EXPECT(check_band_frame_masks(x->data + s * T * C, v0, T, C, (float)sample_mean(v0, T * C), row,
                                  coeff),
           "MFCC layout: sample %d", s);
    EXPECT(runs(row, T) <= 2 && count(row, T) <= 16, "MFCC sample %d: %lld frames masked", s,
           (long long)count(row, T));
    masked_rows += count(row, T);
  }
  EXPECT(masked_rows > 0, "no frame of the MFCC rows was masked");
  mf_tensor_free(x), mf_tensor_free(x0);
  mf_augment_free(a);
}

TEST(test_specaugment_rejects_axes_that_do_not_fit_the_samples) {
  mf_augment *a = must_make("specaugment", SETS("time_axis=0"));
  mf_tensor *x = random_batch(MF_SHAPE(2, 30, 13), 1, 0, 1);
  EXPECT(apply(a, x, NULL, 1) == MF_EINVAL, "MFCC rows with freq_axis = -2 = time_axis passed");
  EXPECT_ERROR_HAS("are the same axis (0)");
  EXPECT_ERROR_HAS("set time_axis = 0 and freq_axis = 1");
  mf_augment_free(a);
  a = must_make("specaugment", SETS("time_axis=2"));
  EXPECT(apply(a, x, NULL, 1) == MF_EINVAL, "time_axis = 2 on 2-d samples passed");
  EXPECT_ERROR_HAS("time_axis = 2 names no axis of the samples, which are [30, 13]");
  mf_augment_free(a);
  /* Without frequency masks, 1-d samples are fine. */
  a = must_make("specaugment", SETS("freq_masks=0"));
  mf_tensor *y = random_batch(MF_SHAPE(4, 50), 1, 0, 1);
  EXPECT(apply(a, y, NULL, 1) == MF_OK, "%s", mf_error());
  mf_augment_free(a);
  mf_tensor_free(x), mf_tensor_free(y);
}

TEST(test_specaugment_p_masks_about_that_share_of_samples) {
  enum { N = 2000, F = 16, T = 32 };
  mf_augment *a = must_make("specaugment", SETS("p=0.3", "freq_mask=8", "time_mask=8"));
  mf_tensor *x = random_batch(MF_SHAPE(N, F, T), 8, 0, 1), *x0 = clone(x);
  EXPECT(apply(a, x, NULL, 9) == MF_OK, "%s", mf_error());
  int changed = 0;
  for (int s = 0; s < N; s++)
    changed += memcmp(x->data + s * F * T, x0->data + s * F * T, sizeof(float) * F * T) != 0;
  /* Binomial(2000, 0.3) less the rare draws of four empty masks ((1/9)^4): standard error
   * 0.010; tolerance 0.04. */
  EXPECT_NEAR((double)changed / N, 0.3, 0.04);
  mf_tensor_free(x), mf_tensor_free(x0);
  mf_augment_free(a);
}

/* ---- mixup ----------------------------------------------------------------------------------- */

/* x = identity rows [n, n] and one-hot targets: after mixing, row i is lam_i e_i + (1 - lam_i)
 * e_perm(i). Checks the structure and returns lam_i in lam (-1 where row i is still e_i:
 * perm(i) = i, or lam_i rounded to 1). */
static int mixed_identity(mf_augment *a, int64_t n, uint64_t seed, float *lam) {
  mf_tensor *x = mf_tensor_new(MF_SHAPE(n, n)), *t = mf_tensor_new(MF_SHAPE(n, n));
  for (int64_t i = 0; i < n; i++) x->data[i * n + i] = t->data[i * n + i] = 1;
  int ok = apply(a, x, t, seed) == MF_OK;
  int64_t *hits = calloc((size_t)n, sizeof *hits);
  for (int64_t i = 0; ok && i < n; i++) {
    const float *row = x->data + i * n, *trow = t->data + i * n;
    double sum = 0;
    int64_t other = -1;
    for (int64_t j = 0; j < n; j++) {
      sum += trow[j];
      ok &= row[j] == trow[j]; /* features and labels mixed alike */
      ok &= row[j] >= 0 && row[j] <= 1;
      if (j != i && row[j] != 0) other = j;
    }
    ok &= fabs(sum - 1) < 1e-6; /* float rounding of lam + (1 - lam) */
    lam[i] = other < 0 ? -1 : row[i];
    if (other < 0) ok &= fabs(row[i] - 1) < 1e-6; /* perm(i) = i, or lam rounded to 1 */
    if (other >= 0) {
      ok &= fabs(row[i] + row[other] - 1) < 1e-6;
      hits[other]++;
    }
  }
  for (int64_t j = 0; ok && j < n; j++) ok &= hits[j] <= 1; /* perm is a permutation */
  free(hits);
  mf_tensor_free(x), mf_tensor_free(t);
  return ok;
}

TEST(test_mixup_blends_features_and_targets_with_one_lambda_and_a_permutation) {
  mf_augment *a = must_make("mixup", SETS("alpha=1"));
  float lam[16];
  int distinct = 0;
  float first = -1;
  for (int b = 0; b < 20; b++) {
    EXPECT(mixed_identity(a, 16, 100 + (uint64_t)b, lam), "batch %d is not a valid mix", b);
    float l = -1;
    for (int i = 0; i < 16; i++) {
      if (lam[i] < 0) continue;
      if (l < 0) l = lam[i];
      EXPECT(lam[i] == l, "batch %d: row %d has lam %g, row 0's is %g", b, i, lam[i], l);
      EXPECT(lam[i] >= 0 && lam[i] <= 1, "lam %g outside [0, 1]", lam[i]);
    }
    if (b == 0) first = l;
    distinct += l != first;
  }
  EXPECT(distinct > 15, "lam barely changes between batches (%d of 19 differ)", distinct);
  mf_augment_free(a);
}

TEST(test_mixup_per_sample_draws_a_lambda_for_each_row) {
  mf_augment *a = must_make("mixup", SETS("alpha=1", "per_sample=true"));
  float lam[32];
  EXPECT(mixed_identity(a, 32, 5, lam), "not a valid mix");
  int distinct = 0, valid = 0;
  for (int i = 0; i < 32; i++) {
    if (lam[i] < 0) continue;
    valid++;
    int seen = 0;
    for (int j = 0; j < i; j++) seen |= lam[j] == lam[i];
    distinct += !seen;
  }
  EXPECT(distinct > valid - 2, "only %d distinct lambdas among %d rows", distinct, valid);
  mf_augment_free(a);
}

/* lam of many batches of 8 (one lam each). A batch whose rows all stayed e_i had lam = 1 (an
 * identity permutation, 1 in 40320 batches, would read the same; negligible here). */
static int collect_lambdas(double alpha, double *out, int n) {
  char set[64];
  snprintf(set, sizeof set, "alpha=%g", alpha);
  mf_augment *a = must_make("mixup", SETS(set));
  float lam[8];
  int k = 0;
  for (uint64_t b = 0; k < n; b++) {
    if (!mixed_identity(a, 8, 1000 + b, lam)) return 0;
    double l = 1;
    for (int i = 0; i < 8; i++)
      if (lam[i] >= 0) {
        l = lam[i];
        break;
      }
    out[k++] = l;
  }
  mf_augment_free(a);
  return 1;
}

TEST(test_mixup_lambda_follows_beta_alpha_alpha) {
  enum { M = 4000 };
  static double lam[M];
  /* Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)). Over 4000 draws the mean's standard error
   * is at most 0.0067 and the variance's about 0.003 (a = 0.2), 0.0011 (a = 1), 0.0006
   * (a = 4); tolerances are 4-5 standard errors. */
  const double alphas[] = {0.2, 1.0, 4.0}, var_tol[] = {0.012, 0.005, 0.003};
  for (int k = 0; k < 3; k++) {
    EXPECT(collect_lambdas(alphas[k], lam, M), "alpha %g: a batch was not a valid mix", alphas[k]);
    double mean = 0, var = 0, lo = 1, hi = 0;
    for (int i = 0; i < M; i++) mean += lam[i], lo = fmin(lo, lam[i]), hi = fmax(hi, lam[i]);
    mean /= M;
    for (int i = 0; i < M; i++) var += (lam[i] - mean) * (lam[i] - mean);
    var /= M - 1;
    const double want = 1.0 / (4 * (2 * alphas[k] + 1));
    printf("  alpha %g: mean %.4f, variance %.4f (Beta: 0.5, %.4f), range [%.2g, %.6g]\n",
           alphas[k], mean, var, want, lo, hi);
    EXPECT(lo >= 0 && hi <= 1, "alpha %g: lam outside [0, 1]", alphas[k]);
    EXPECT(fabs(mean - 0.5) < 0.03, "alpha %g: mean lam %.4f, expected 0.5", alphas[k], mean);
    EXPECT(fabs(var - want) < var_tol[k], "alpha %g: variance %.4f, expected %.4f", alphas[k], var,
           want);
    if (alphas[k] == 1.0) {
      /* Beta(1, 1) is uniform: each decile holds 10 % (standard error 0.47 %; tolerance 2 %). */
      int dec[10] = {0};
      for (int i = 0; i < M; i++) dec[lam[i] >= 1 ? 9 : (int)(lam[i] * 10)]++;
      for (int d = 0; d < 10; d++)
        EXPECT(fabs(dec[d] / (double)M - 0.1) < 0.02, "alpha 1: decile %d holds %.3f", d,
               dec[d] / (double)M);
    }
  }
}

TEST(test_mixup_needs_targets_of_the_batch_size) {
  mf_augment *a = must_make("mixup", NULL);
  mf_tensor *x = random_batch(MF_SHAPE(4, 10), 1, 0, 1), *t = one_hot(3, 3);
  EXPECT(apply(a, x, NULL, 1) == MF_EINVAL, "mixup ran without targets");
  EXPECT_ERROR_HAS("needs the targets");
  EXPECT(apply(a, x, t, 1) == MF_EINVAL, "mixup ran with 3 target rows for 4 samples");
  EXPECT_ERROR_HAS("N = 4");
  mf_tensor_free(x), mf_tensor_free(t);
  mf_augment_free(a);
}

/* ---- noise ----------------------------------------------------------------------------------- */

TEST(test_noise_std_mode_adds_zero_mean_gaussian_noise_of_that_std) {
  mf_augment *a = must_make("noise", SETS("mode=std", "std=0.1"));
  mf_tensor *x = mf_tensor_new(MF_SHAPE(64, 64, 64));
  EXPECT(apply(a, x, NULL, 1) == MF_OK, "%s", mf_error());
  const int64_t n = x->numel;
  double s = 0, s2 = 0;
  int64_t within1 = 0;
  for (int64_t i = 0; i < n; i++) {
    s += x->data[i], s2 += (double)x->data[i] * x->data[i];
    within1 += fabsf(x->data[i]) < 0.1f;
  }
  const double mean = s / n, sd = sqrt(s2 / n - mean * mean);
  /* 262144 values: standard errors 0.0002 (mean), 0.00014 (std), 0.0009 (share within one
   * sigma, 0.6827 for a normal); tolerances 5-7 standard errors. */
  EXPECT_NEAR(mean, 0.0, 0.001);
  EXPECT_NEAR(sd, 0.1, 0.001);
  EXPECT_NEAR((double)within1 / n, 0.6827, 0.005);
  mf_tensor_free(x);
  mf_augment_free(a);
}

/* Measured SNR of each sample: 10 log10(signal power / noise power). */
static void measured_snr(const mf_tensor *x, const mf_tensor *x0, double *snr) {
  const int64_t n = x->shape[0], size = x->numel / n;
  for (int64_t s = 0; s < n; s++) {
    double ps = 0, pn = 0;
    for (int64_t k = 0; k < size; k++) {
      const double v0 = x0->data[s * size + k], d = x->data[s * size + k] - v0;
      ps += v0 * v0, pn += d * d;
    }
    snr[s] = 10 * log10(ps / pn);
  }
}

TEST(test_noise_snr_mode_reaches_the_drawn_snr_relative_to_each_sample) {
  enum { N = 32, S = 4096 };
  mf_augment *a = must_make("noise", SETS("snr_min=20", "snr_max=20"));
  mf_tensor *x = random_batch(MF_SHAPE(N, S), 1, 0, 1);
  for (int s = 0; s < N; s++)
    for (int k = 0; k < S; k++) x->data[s * S + k] *= (float)(0.1 + s); /* powers 0.003 .. 320 */
  mf_tensor *x0 = clone(x);
  EXPECT(apply(a, x, NULL, 2) == MF_OK, "%s", mf_error());
  double snr[N];
  measured_snr(x, x0, snr);
  /* Noise power estimated from 4096 values: relative standard error 2.2 %, 0.1 dB; tolerance
   * 0.5 dB. */
  for (int s = 0; s < N; s++)
    EXPECT(fabs(snr[s] - 20) < 0.5, "sample %d: SNR %.2f dB, not 20", s, snr[s]);
  mf_tensor_free(x), mf_tensor_free(x0);
  mf_augment_free(a);
}

TEST(test_noise_snr_is_uniform_between_snr_min_and_snr_max) {
  enum { N = 400, S = 4096 };
  mf_augment *a = must_make("noise", NULL); /* 10 .. 30 dB */
  mf_tensor *x = random_batch(MF_SHAPE(N, S), 3, -1, 2), *x0 = clone(x);
  EXPECT(apply(a, x, NULL, 3) == MF_OK, "%s", mf_error());
  double snr[N], mean = 0, lo = 1e9, hi = -1e9;
  measured_snr(x, x0, snr);
  for (int s = 0; s < N; s++) mean += snr[s], lo = fmin(lo, snr[s]), hi = fmax(hi, snr[s]);
  mean /= N;
  /* U[10, 30]: sd 5.8 dB, standard error of the mean 0.29 dB (tolerance 1.2); each measured
   * value within 0.5 dB of its draw (see above). */
  EXPECT(lo > 9.5 && hi < 30.5, "SNRs span [%.2f, %.2f], outside [10, 30]", lo, hi);
  EXPECT(lo < 11 && hi > 29, "SNRs span only [%.2f, %.2f] of [10, 30]", lo, hi);
  EXPECT_NEAR(mean, 20.0, 1.2);
  mf_tensor_free(x), mf_tensor_free(x0);
  mf_augment_free(a);
}

TEST(test_noise_does_not_depend_on_the_thread_count) {
  mf_augment *a = must_make("noise", NULL);
  mf_tensor *x1 = random_batch(MF_SHAPE(16, 64, 130), 4, 0, 1), *x2 = clone(x1);
  const int threads = mf_num_threads();
  mf_set_num_threads(1);
  apply(a, x1, NULL, 8);
  mf_set_num_threads(2);
  apply(a, x2, NULL, 8);
  mf_set_num_threads(threads);
  EXPECT(same(x1, x2), "noise differs between 1 and 2 threads");
  mf_tensor_free(x1), mf_tensor_free(x2);
  mf_augment_free(a);
}

TEST(test_noise_leaves_a_silent_sample_silent_in_snr_mode) {
  mf_augment *a = must_make("noise", NULL);
  mf_tensor *x = mf_tensor_new(MF_SHAPE(3, 100));
  EXPECT(apply(a, x, NULL, 1) == MF_OK, "%s", mf_error());
  for (int64_t i = 0; i < x->numel; i++)
    EXPECT(x->data[i] == 0, "value %lld became %g", (long long)i, x->data[i]);
  mf_tensor_free(x);
  mf_augment_free(a);
}

/* ---- gain ------------------------------------------------------------------------------------ */

TEST(test_gain_adds_one_uniform_offset_per_sample_within_the_db_range) {
  enum { N = 2000, S = 64 };
  mf_augment *a = must_make("gain", SETS("db_per_unit=1"));
  mf_tensor *x = random_batch(MF_SHAPE(N, 8, 8), 2, 0, 1), *x0 = clone(x);
  EXPECT(apply(a, x, NULL, 4) == MF_OK, "%s", mf_error());
  double mean = 0, var = 0, lo = 1e9, hi = -1e9;
  for (int s = 0; s < N; s++) {
    const double g = x->data[s * S] - x0->data[s * S];
    for (int k = 1; k < S; k++)
      if (fabs(x->data[s * S + k] - x0->data[s * S + k] - g) > 1e-5) {
        EXPECT(0, "sample %d: offsets differ within the sample", s);
        break;
      }
    mean += g, var += g * g, lo = fmin(lo, g), hi = fmax(hi, g);
  }
  mean /= N, var = var / N - mean * mean;
  /* U[-6, 6] dB: mean 0 (standard error 0.077; tolerance 0.31), variance 12 (standard error
   * 0.24; tolerance 1.0); float rounding of values in [0, 7) is below 1e-5. */
  EXPECT(lo >= -6 - 1e-5 && hi <= 6 + 1e-5, "gains span [%.3f, %.3f], outside [-6, 6]", lo, hi);
  EXPECT(lo < -5.9 && hi > 5.9, "gains span only [%.3f, %.3f]", lo, hi);
  EXPECT_NEAR(mean, 0.0, 0.31);
  EXPECT_NEAR(var, 12.0, 1.0);
  mf_tensor_free(x), mf_tensor_free(x0);
  mf_augment_free(a);
}

TEST(test_gain_offset_is_the_gain_over_db_per_unit) {
  mf_augment *a = must_make("gain", SETS("db_min=8", "db_max=8")); /* db_per_unit 80 */
  mf_tensor *x = random_batch(MF_SHAPE(4, 10), 2, 0, 1), *x0 = clone(x);
  EXPECT(apply(a, x, NULL, 4) == MF_OK, "%s", mf_error());
  for (int64_t i = 0; i < x->numel; i++) EXPECT_NEAR(x->data[i] - x0->data[i], 0.1, 1e-6);
  mf_tensor_free(x), mf_tensor_free(x0);
  mf_augment_free(a);
}

/* ---- timeshift ------------------------------------------------------------------------------- */

/* x [n, F, T] with x[s][f][t] = 1000 f + t + 1 (never zero). */
static mf_tensor *frame_numbered(int64_t n, int64_t F, int64_t T) {
  mf_tensor *x = mf_tensor_new(MF_SHAPE(n, F, T));
  for (int64_t s = 0; s < n; s++)
    for (int64_t f = 0; f < F; f++)
      for (int64_t t = 0; t < T; t++) x->data[(s * F + f) * T + t] = (float)(1000 * f + t + 1);
  return x;
}

TEST(test_timeshift_roll_rotates_each_sample_along_time) {
  enum { N = 500, F = 4, T = 50, S = 10 };
  mf_augment *a = must_make("timeshift", SETS("max_shift=10"));
  mf_tensor *x = frame_numbered(N, F, T);
  EXPECT(apply(a, x, NULL, 5) == MF_OK, "%s", mf_error());
  int hist[2 * S + 1] = {0};
  double mean = 0;
  for (int s = 0; s < N; s++) {
    const float *v = x->data + s * F * T;
    /* out[t] = in[(t - sh) mod T]: out[0] = (-sh mod T) + 1. */
    int64_t r = (int64_t)v[0] - 1, sh = r == 0 ? 0 : T - r;
    if (sh > T / 2) sh -= T;
    int ok = sh >= -S && sh <= S;
    for (int64_t f = 0; ok && f < F; f++)
      for (int64_t t = 0; t < T; t++)
        ok &= v[f * T + t] == (float)(1000 * f + ((t - sh) % T + T) % T + 1);
    EXPECT(ok, "sample %d is not a roll by at most %d frames", s, S);
    if (!ok) continue;
    hist[sh + S]++;
    mean += (double)sh;
  }
  /* U{-10..10}: sd 6.06, standard error of the mean 0.27 (tolerance 1.1); each of the 21
   * shifts expected 23.8 times, none missing. */
  EXPECT_NEAR(mean / N, 0.0, 1.1);
  for (int k = 0; k <= 2 * S; k++) EXPECT(hist[k] > 0, "shift %d never drawn", k - S);
  mf_tensor_free(x);
  mf_augment_free(a);
}

TEST(test_timeshift_shift_fills_the_vacated_frames) {
  enum { N = 200, F = 3, T = 40 };
  const char *const fills[] = {"fill=zero", "fill=edge", "fill=min", "fill=mean"};
  for (int k = 0; k < 4; k++) {
    mf_augment *a = must_make("timeshift", SETS("mode=shift", "max_fraction=0.25", fills[k]));
    mf_tensor *x = frame_numbered(N, F, T), *x0 = clone(x);
    EXPECT(apply(a, x, NULL, 6) == MF_OK, "%s", mf_error());
    int max_seen = 0;
    for (int s = 0; s < N; s++) {
      const float *v = x->data + s * F * T, *v0 = x0->data + s * F * T;
      /* The shift, from band 1 (values 1001.., never a fill value): where frame 0's content
       * went (the last match: edge fill repeats it before), or where frame 0's came from. */
      int64_t sh = 0;
      for (int64_t t = 0; t < T; t++)
        if (v[T + t] == v0[T]) sh = t;
      if (sh == 0)
        for (int64_t t = 0; t < T; t++)
          if (v[T] == v0[T + t]) sh = -t;
      const int64_t a_ = sh < 0 ? -sh : sh;
      max_seen = a_ > max_seen ? (int)a_ : max_seen;
      EXPECT(a_ <= 10, "%s: shift %lld beyond floor(0.25 x 40) = 10", fills[k], (long long)sh);
      const float fill = k == 0 ? 0.0f : k == 2 ? 1.0f : (float)sample_mean(v0, F * T);
      int ok = 1;
      for (int64_t f = 0; f < F; f++)
        for (int64_t t = 0; t < T; t++) {
          const int64_t from = t - sh;
          float want;
          if (from >= 0 && from < T)
            want = v0[f * T + from];
          else if (k == 1)
            want = v0[f * T + (from < 0 ? 0 : T - 1)];
          else
            want = fill;
          ok &= v[f * T + t] == want;
        }
      EXPECT(ok, "%s: sample %d (shift %lld) is not a shift with that fill", fills[k], s,
             (long long)sh);
    }
    EXPECT_EQ_INT(max_seen, 10);
    mf_tensor_free(x), mf_tensor_free(x0);
    mf_augment_free(a);
  }
}

TEST(test_timeshift_time_axis_zero_moves_rows_of_mfcc) {
  enum { N = 50, T = 30, C = 13 };
  mf_augment *a = must_make("timeshift", SETS("time_axis=0", "max_shift=5"));
  mf_tensor *x = mf_tensor_new(MF_SHAPE(N, T, C));
  for (int64_t i = 0; i < x->numel; i++) x->data[i] = (float)(i % (T * C)); /* row t: 13 t + c */
  EXPECT(apply(a, x, NULL, 7) == MF_OK, "%s", mf_error());
  int moved = 0;
  for (int s = 0; s < N; s++) {
    const float *v = x->data + s * T * C;
    const int64_t r0 = (int64_t)v[0] / C; /* the row now first */
    int ok = (int64_t)v[0] % C == 0;
    for (int64_t t = 0; t < T; t++)
      for (int64_t c = 0; c < C; c++) ok &= v[t * C + c] == (float)(((r0 + t) % T) * C + c);
    EXPECT(ok, "sample %d: rows were not rolled whole", s);
    moved += r0 != 0;
  }
  EXPECT(moved > N / 2, "only %d of %d samples moved", moved, N);
  mf_tensor_free(x);
  mf_augment_free(a);
}

TEST(test_timeshift_max_shift_must_fit_the_rows) {
  mf_augment *a = must_make("timeshift", SETS("max_shift=40"));
  mf_tensor *x = random_batch(MF_SHAPE(2, 8, 40), 1, 0, 1);
  EXPECT(apply(a, x, NULL, 1) == MF_EINVAL, "a shift of 40 on 40 frames passed");
  EXPECT_ERROR_HAS("max_shift = 40 frames, but the samples have 40 frames along axis 1");
  mf_tensor_free(x);
  mf_augment_free(a);
}

/* ---- random_crop ----------------------------------------------------------------------------- */

/* Checks each sample of x [N, F, T] keeps exactly one window of W frames of x0 and is `fill`
 * elsewhere (fill_mean: the sample's mean); returns the window starts. */
static int check_windows(const mf_tensor *x, const mf_tensor *x0, int64_t W, int fill_mean,
                         float fill, int64_t *starts) {
  const int64_t N = x->shape[0], F = x->shape[1], T = x->shape[2];
  for (int64_t s = 0; s < N; s++) {
    const float *v = x->data + s * F * T, *v0 = x0->data + s * F * T;
    const float f_ = fill_mean ? (float)sample_mean(v0, F * T) : fill;
    int64_t start = -1, kept = 0;
    for (int64_t t = 0; t < T; t++) {
      int keep = 1, filled = 1;
      for (int64_t f = 0; f < F; f++)
        keep &= v[f * T + t] == v0[f * T + t], filled &= v[f * T + t] == f_;
      if (keep && !filled) {
        if (start < 0) start = t;
        if (t != start + kept) return 0; /* not one run */
        kept++;
      } else if (!filled) {
        return 0;
      }
    }
    if (kept != W) return 0;
    starts[s] = start;
  }
  return 1;
}

TEST(test_random_crop_keeps_one_window_of_w_frames_and_fills_the_rest) {
  enum { N = 1000, F = 4, T = 40, W = 10 };
  mf_augment *a = must_make("random_crop", SETS("frames=10", "fill=zero"));
  mf_tensor *x = random_batch(MF_SHAPE(N, F, T), 9, 1, 2), *x0 = clone(x);
  EXPECT(apply(a, x, NULL, 10) == MF_OK, "%s", mf_error());
  int64_t starts[N];
  EXPECT(check_windows(x, x0, W, 0, 0, starts), "a sample is not one 10-frame window + zeros");
  double mean = 0;
  int lo = 0, hi = 0;
  for (int s = 0; s < N; s++)
    mean += (double)starts[s], lo += starts[s] == 0, hi += starts[s] == T - W;
  /* Start ~ U{0..30}: mean 15, sd 8.9, standard error 0.28 (tolerance 1.2); each end expected
   * 32 times. */
  EXPECT_NEAR(mean / N, 15.0, 1.2);
  EXPECT(lo > 0 && hi > 0, "window starts never reach an end (%d at 0, %d at 30)", lo, hi);
  mf_tensor_free(x), mf_tensor_free(x0);
  mf_augment_free(a);
}

TEST(test_random_crop_fraction_and_fill_mean) {
  enum { N = 50, F = 6, T = 40 };
  mf_augment *a = must_make("random_crop", SETS("fraction=0.25")); /* W = 10, fill mean */
  mf_tensor *x = random_batch(MF_SHAPE(N, F, T), 3, 0, 1), *x0 = clone(x);
  EXPECT(apply(a, x, NULL, 2) == MF_OK, "%s", mf_error());
  int64_t starts[N];
  EXPECT(check_windows(x, x0, 10, 1, 0, starts), "a sample is not one 10-frame window + its mean");
  mf_tensor_free(x), mf_tensor_free(x0);
  mf_augment_free(a);
  /* MFCC rows: time on axis 0, a window of whole rows. */
  a = must_make("random_crop", SETS("frames=5", "time_axis=0", "fill=min"));
  x = random_batch(MF_SHAPE(N, T, F), 4, 0, 1), x0 = clone(x);
  EXPECT(apply(a, x, NULL, 2) == MF_OK, "%s", mf_error());
  for (int s = 0; s < N; s++) {
    const float *v = x->data + s * T * F, *v0 = x0->data + s * T * F;
    const float mn = sample_min(v0, T * F);
    int kept = 0;
    for (int64_t t = 0; t < T; t++) {
      const int keep = !memcmp(v + t * F, v0 + t * F, sizeof(float) * F);
      int filled = 1;
      for (int64_t c = 0; c < F; c++) filled &= v[t * F + c] == mn;
      EXPECT(keep || filled, "sample %d row %lld is neither kept nor filled", s, (long long)t);
      kept += keep;
    }
    EXPECT_EQ_INT(kept, 5);
  }
  mf_tensor_free(x), mf_tensor_free(x0);
  mf_augment_free(a);
}

TEST(test_random_crop_window_longer_than_the_rows_is_an_error) {
  mf_augment *a = must_make("random_crop", SETS("frames=41"));
  mf_tensor *x = random_batch(MF_SHAPE(2, 8, 40), 1, 0, 1), *x0 = clone(x);
  EXPECT(apply(a, x, NULL, 1) == MF_EINVAL, "a 41-frame window on 40 frames passed");
  EXPECT_ERROR_HAS("frames = 41, but the samples have only 40 frames along axis 1");
  mf_augment_free(a);
  a = must_make("random_crop", SETS("frames=40"));
  EXPECT(apply(a, x, NULL, 1) == MF_OK && same(x, x0), "a window of the whole row changed it");
  mf_tensor_free(x), mf_tensor_free(x0);
  mf_augment_free(a);
}
