/* The feature plugins (melspec, mfcc) against librosa, and the spectral core they share.
 *
 * Golden values: tests/data/reference/ (from /work/shared/reference: make_reference.py
 * computes them with numpy/scipy in float64, the way librosa does; cases.txt lists the
 * signals and parameters). The tones and chirp signals are generated here by their formulas
 * (bit-identical to the reference's float32 samples); the noise samples are read from CSV.
 * Plugin-level tests go through the built .so files; the filterbank, STFT and delta tests
 * call spectral.c, compiled into this suite.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "melforge/component.h"
#include "melforge/melforge.h"
#include "mftest.h"
#include "spectral.h"

#define SR 22050
#define NSIG 22050 /* one second: 44 frames */
#define NFR 44

/* ---- helpers ---------------------------------------------------------------------------- */

/* rows x cols doubles from tests/data/reference/<name>; NULL (test failed) on a mismatch. */
static double *read_csv(const char *name, int rows, int cols) {
  char path[1024];
  snprintf(path, sizeof path, "%s/reference/%s", mftest_data_dir(), name);
  FILE *f = fopen(path, "r");
  if (!f) {
    mftest_fail(__FILE__, __LINE__, "cannot open %s", path);
    return NULL;
  }
  double *x = malloc((size_t)rows * (size_t)cols * sizeof *x);
  for (int i = 0; i < rows * cols; i++) {
    if (fscanf(f, " %lf ,", &x[i]) != 1) {
      mftest_fail(__FILE__, __LINE__, "%s: value %d of %d x %d missing", path, i, rows, cols);
      free(x);
      fclose(f);
      return NULL;
    }
  }
  double extra;
  if (fscanf(f, " %lf", &extra) == 1) {
    mftest_fail(__FILE__, __LINE__, "%s has more than %d x %d values", path, rows, cols);
    free(x);
    x = NULL;
  }
  fclose(f);
  return x;
}

/* The reference signals (cases.txt), NSIG float32 samples at SR. */
static int make_signal(const char *name, float *y) {
  if (!strcmp(name, "tones")) {
    for (int n = 0; n < NSIG; n++)
      y[n] = (float)(0.5 * sin(2 * M_PI * 440 * n / SR) + 0.25 * sin(2 * M_PI * 3000 * n / SR) +
                     0.1 * sin(2 * M_PI * 8000 * n / SR));
    return 1;
  }
  if (!strcmp(name, "chirp")) { /* 0.8 * scipy.signal.chirp(t, 50, 1.0, 9000, 'logarithmic') */
    const double f0 = 50, f1 = 9000, t1 = 1.0, beta = t1 / log(f1 / f0);
    for (int n = 0; n < NSIG; n++) {
      const double t = n / (double)SR;
      y[n] = (float)(0.8 * cos(2 * M_PI * beta * f0 * (pow(f1 / f0, t / t1) - 1.0)));
    }
    return 1;
  }
  double *x = read_csv("noise_signal.csv", 1, NSIG);
  if (!x) return 0;
  for (int n = 0; n < NSIG; n++) y[n] = (float)x[n];
  free(x);
  return 1;
}

static void load_plugins(void) {
  static int loaded;
  if (loaded) return;
  loaded = 1;
  MF_CHECK(mf_plugins_load_file(BUILD_PLUGIN_DIR "/melspec.so") == MF_OK, "%s", mf_error());
  MF_CHECK(mf_plugins_load_file(BUILD_PLUGIN_DIR "/mfcc.so") == MF_OK, "%s", mf_error());
}

/* Feature `name` at SR with "k=v" overrides; NULL with the error set when create fails. */
static mf_feature *feature(const char *name, const char *const *sets) {
  load_plugins();
  const mf_component *c = mf_component_find(MF_KIND_FEATURE, name);
  MF_CHECK(c, "%s", mf_error());
  mf_values *v;
  MF_CHECK(mf_component_values(c, &v) == MF_OK, "%s", mf_error());
  for (; sets && *sets; sets++)
    MF_CHECK(mf_values_set_assignment(v, *sets) == MF_OK, "%s", mf_error());
  mf_feature *f = NULL;
  mf_feature_new(c, v, SR, &f);
  mf_values_free(v);
  return f;
}

/* Runs a feature on n samples; returns the output (malloc'd) and its layout. */
static float *run(mf_feature *f, const float *y, int64_t n, mf_feature_layout *lay) {
  MF_CHECK(mf_feature_layout_of(f, n, lay) == MF_OK, "%s", mf_error());
  float *out = malloc((size_t)mf_shape_numel(lay->shape) * sizeof(float));
  MF_CHECK(mf_feature_compute(f, y, n, out) == MF_OK, "%s", mf_error());
  return out;
}

static const mf_param_spec SPEC_PARAMS[] = {SPECTRAL_PARAMS, {0}};

/* The spectral core alone, with "k=v" overrides of melspec's parameters. */
static spectral *core(const char *const *sets) {
  mf_values *v;
  MF_CHECK(mf_values_new("test", SPEC_PARAMS, &v) == MF_OK, "%s", mf_error());
  for (; sets && *sets; sets++)
    MF_CHECK(mf_values_set_assignment(v, *sets) == MF_OK, "%s", mf_error());
  spectral_cfg cfg;
  MF_CHECK(spectral_read_cfg(mf_api_table(), v, SR, "test", &cfg) == MF_OK, "%s", mf_error());
  mf_values_free(v);
  spectral *s = spectral_new(mf_api_table(), &cfg);
  MF_CHECK(s, "%s", mf_error());
  return s;
}

static const char *const CASES[] = {"tones", "chirp", "noise"};

/* ---- filterbank and mel scale ------------------------------------------------------------ */

TEST(test_filterbank_matches_librosa_slaney_128_by_1025) {
  spectral *s = core(NULL);
  EXPECT_EQ_INT(spectral_n_bins(s), 1025);
  float *fb = malloc(128 * 1025 * sizeof(float));
  spectral_filterbank(s, fb);
  double *ref = read_csv("melfb_22050_2048_128.csv", 128, 1025);
  /* Both are float32 roundings of the same float64 formula; librosa (and this code) round
   * twice, before and after the Slaney norm, the reference once: at most two ulps apart. */
  double worst = 0;
  int nonzero = 0, pattern_ok = 1;
  for (int i = 0; ref && i < 128 * 1025; i++) {
    const double d = fabs(fb[i] - ref[i]) / fmax(fabs(ref[i]), 1e-30);
    if (ref[i] != 0) worst = fmax(worst, d);
    nonzero += fb[i] > 0;
    pattern_ok &= (fb[i] > 0) == (ref[i] > 0);
  }
  EXPECT(worst <= 2.4e-7, "filterbank relative error %g > 2.4e-7 (two float32 ulps)", worst);
  EXPECT(pattern_ok, "the non-zero pattern differs from librosa's");
  EXPECT_EQ_INT(nonzero, 2018); /* bench_features.py's melfb_nonzero */
  free(ref);
  free(fb);
  spectral_free(s);
}

TEST(test_slaney_mel_scale_is_linear_below_1khz_and_logarithmic_above) {
  EXPECT_NEAR(spectral_hz_to_mel(500, 0), 7.5, 1e-12);
  EXPECT_NEAR(spectral_hz_to_mel(1000, 0), 15.0, 1e-12);
  EXPECT_NEAR(spectral_hz_to_mel(6400, 0), 42.0, 1e-12); /* 15 + 27 log(6.4) / log(6.4) */
  EXPECT_NEAR(spectral_mel_to_hz(42.0, 0), 6400.0, 1e-9);
  EXPECT_NEAR(spectral_mel_to_hz(spectral_hz_to_mel(3000, 0), 0), 3000.0, 1e-9);
}

TEST(test_htk_mel_scale_matches_hand_computed_values) {
  /* 2595 log10(1 + 1000/700) and its inverse at 1000 mel */
  EXPECT_NEAR(spectral_hz_to_mel(1000, 1), 999.9855371396244, 1e-9);
  EXPECT_NEAR(spectral_mel_to_hz(1000, 1), 1000.021816457287, 1e-9);
  /* An HTK filterbank peaks (weight 1, norm none) at the bin nearest each band's centre
   * 700 (10^(mel/2595) - 1), mels evenly spaced from 0 to hz_to_mel(sr/2). */
  const char *const sets[] = {"htk=true", "norm=none", "n_mels=40", NULL};
  spectral *s = core(sets);
  float *fb = malloc(40 * 1025 * sizeof(float));
  spectral_filterbank(s, fb);
  const double top = 2595 * log10(1 + 11025.0 / 700);
  for (int m = 0; m < 40; m++) {
    const double centre = 700 * (pow(10, top * (m + 1) / 41 / 2595) - 1);
    int peak = 0;
    for (int k = 1; k < 1025; k++) peak = fb[m * 1025 + k] > fb[m * 1025 + peak] ? k : peak;
    EXPECT(fabs(peak - centre * 2048 / SR) <= 0.5 + 1e-9,
           "band %d peaks at bin %d, centre %.2f Hz is bin %.2f", m, peak, centre,
           centre * 2048 / SR);
    EXPECT(fb[m * 1025 + peak] <= 1.0f && fb[m * 1025 + peak] > 0.5f,
           "band %d peak weight %g is not a triangle's top (norm none)", m, fb[m * 1025 + peak]);
  }
  free(fb);
  spectral_free(s);
}

/* ---- STFT -------------------------------------------------------------------------------- */

TEST(test_sine_at_1033_hz_peaks_in_stft_bin_96) {
  /* 1033.59375 Hz = 96 sr / n_fft: exactly bin 96, so the periodic Hann window leaks only
   * into bins 95 and 97, each at half the amplitude: |X_96| = A n_fft / 4. */
  float *y = malloc(NSIG * sizeof(float));
  const double A = 0.5, f = 96.0 * SR / 2048;
  for (int n = 0; n < NSIG; n++) y[n] = (float)(A * sin(2 * M_PI * f * n / SR));
  spectral *s = core(NULL);
  float *p = malloc(NFR * 1025 * sizeof(float));
  EXPECT(spectral_stft_power(s, y, NSIG, p) == MF_OK, "%s", mf_error());
  for (int t = 2; t < NFR - 2; t++) { /* frames away from the padded edges */
    const float *pt = p + t * 1025;
    int peak = 0;
    for (int k = 1; k < 1025; k++) peak = pt[k] > pt[peak] ? k : peak;
    EXPECT_EQ_INT(peak, 96);
    EXPECT_NEAR(sqrt(pt[96]), A * 2048 / 4, 1e-4 * A * 2048 / 4);
    EXPECT_NEAR(sqrt(pt[95]), A * 2048 / 8, 1e-4 * A * 2048 / 4);
    EXPECT(pt[100] < 1e-8 * pt[96], "frame %d: bin 100 holds %g of bin 96's power", t,
           pt[100] / pt[96]);
  }
  free(p);
  free(y);
  spectral_free(s);
}

/* The windowed frame t in double, as librosa builds it. */
static void windowed_frame(const float *y, int64_t n, int n_fft, int win, int hop, int64_t t,
                           double *out) {
  const int lo = (n_fft - win) / 2;
  for (int j = 0; j < n_fft; j++) {
    const int64_t i = t * hop - n_fft / 2 + j;
    const double w = j >= lo && j < lo + win ? 0.5 - 0.5 * cos(2 * M_PI * (j - lo) / win) : 0;
    out[j] = i >= 0 && i < n ? w * y[i] : 0;
  }
}

TEST(test_stft_power_satisfies_parseval_in_every_frame) {
  /* sum_k c_k |X_k|^2 = n_fft sum_j (w_j x_j)^2 with c = 1 for DC and Nyquist, 2 else */
  float *y = malloc(NSIG * sizeof(float));
  MF_CHECK(make_signal("noise", y), "no noise signal");
  spectral *s = core(NULL);
  float *p = malloc(NFR * 1025 * sizeof(float));
  double *x = malloc(2048 * sizeof(double));
  EXPECT(spectral_stft_power(s, y, NSIG, p) == MF_OK, "%s", mf_error());
  double worst = 0; /* relative; float32 rounding of ~2000 squared bins stays near 1e-7 */
  int worst_t = 0;
  for (int t = 0; t < NFR; t++) {
    windowed_frame(y, NSIG, 2048, 2048, 512, t, x);
    double time = 0, freq = 0;
    for (int j = 0; j < 2048; j++) time += x[j] * x[j];
    for (int k = 0; k < 1025; k++) freq += (k == 0 || k == 1024 ? 1 : 2) * (double)p[t * 1025 + k];
    const double rel = fabs(freq - 2048 * time) / (2048 * time);
    if (rel > worst) worst = rel, worst_t = t;
  }
  EXPECT(worst <= 1e-5, "frame %d: spectrum energy off the windowed frame's by %g (relative)",
         worst_t, worst);
  free(x);
  free(p);
  free(y);
  spectral_free(s);
}

/* Compares spectral_stft_power with a direct float64 DFT of the frames librosa builds, in the
 * padded first and last frames and two inner ones. Float32 FFT error: 1e-5 of the frame's
 * largest bin. */
static void check_against_dft(const char *const *sets, int n_fft, int win, int hop) {
  float *y = malloc(NSIG * sizeof(float));
  make_signal("chirp", y);
  spectral *s = core(sets);
  const int nb = n_fft / 2 + 1;
  const int64_t frames = spectral_frames(s, NSIG);
  EXPECT_EQ_INT(spectral_n_bins(s), nb);
  float *p = malloc((size_t)(frames * nb) * sizeof(float));
  double *x = malloc((size_t)n_fft * sizeof(double));
  EXPECT(spectral_stft_power(s, y, NSIG, p) == MF_OK, "%s", mf_error());
  const int64_t ts[] = {0, 1, frames / 2, frames - 1};
  for (int i = 0; i < 4; i++) {
    windowed_frame(y, NSIG, n_fft, win, hop, ts[i], x);
    const float *pt = p + ts[i] * nb;
    double top = 0, worst = 0;
    for (int k = 0; k < nb; k++) top = fmax(top, pt[k]);
    for (int k = 0; k < nb; k++) {
      double re = 0, im = 0;
      for (int j = 0; j < n_fft; j++) {
        const double a = 2 * M_PI * (double)((int64_t)k * j % n_fft) / n_fft;
        re += x[j] * cos(a);
        im -= x[j] * sin(a);
      }
      worst = fmax(worst, fabs(re * re + im * im - pt[k]));
    }
    EXPECT(worst <= 1e-5 * top, "n_fft %d win %d frame %lld: |error| %g of max bin %g", n_fft, win,
           (long long)ts[i], worst, top);
  }
  free(x);
  free(p);
  free(y);
  spectral_free(s);
}

TEST(test_stft_matches_direct_dft_including_padded_edge_frames) {
  check_against_dft(NULL, 2048, 2048, 512);
}

TEST(test_win_length_below_n_fft_is_zero_padded_and_centred) {
  const char *const sets[] = {"win_length=1000", NULL};
  check_against_dft(sets, 2048, 1000, 512);
}

TEST(test_odd_and_tiny_n_fft_match_direct_dft) {
  const char *const odd[] = {"n_fft=1023", "hop_length=300", "win_length=777", NULL};
  check_against_dft(odd, 1023, 777, 300);
  const char *const tiny[] = {"n_fft=16", "hop_length=4000", NULL};
  check_against_dft(tiny, 16, 16, 4000);
}

/* ---- melspec and mfcc against librosa ------------------------------------------------------- */

TEST(test_melspec_db_matches_librosa_within_1e_3_db) {
  mf_feature *f = feature("melspec", NULL);
  float *y = malloc(NSIG * sizeof(float));
  for (int c = 0; c < 3; c++) {
    char name[64];
    snprintf(name, sizeof name, "%s_mel_db.csv", CASES[c]);
    double *ref = read_csv(name, 128, NFR);
    if (!ref || !make_signal(CASES[c], y)) continue;
    mf_feature_layout lay;
    float *out = run(f, y, NSIG, &lay);
    EXPECT(mf_shape_equal(lay.shape, MF_SHAPE(128, NFR)), "%s: layout is not [128, 44]", name);
    double worst = 0;
    for (int i = 0; i < 128 * NFR; i++) worst = fmax(worst, fabs(out[i] - ref[i]));
    EXPECT(worst <= 1e-3, "%s: max |dB error| %g > 1e-3", name, worst);
    free(out);
    free(ref);
  }
  free(y);
  mf_feature_free(f);
}

TEST(test_melspec_power_matches_librosa_to_float32_fft_accuracy) {
  /* Relative error 1e-5 within 60 dB of each case's maximum and 3e-4 down to 80 dB (what
   * power_to_db keeps). A float32 FFT's rounding noise sits ~130 dB below a frame's peak, so
   * bands far below it carry relative error: scipy.fft.rfft in float32 shows 5.8e-5 (tones)
   * and 1.1e-4 (chirp) on these cases in the 60-80 dB range, 7e-6 within 60 dB. */
  const char *const sets[] = {"db=false", NULL};
  mf_feature *f = feature("melspec", sets);
  float *y = malloc(NSIG * sizeof(float));
  for (int c = 0; c < 3; c++) {
    char name[64];
    snprintf(name, sizeof name, "%s_mel_power.csv", CASES[c]);
    double *ref = read_csv(name, 128, NFR);
    if (!ref || !make_signal(CASES[c], y)) continue;
    mf_feature_layout lay;
    float *out = run(f, y, NSIG, &lay);
    double top = 0, worst60 = 0, worst80 = 0;
    for (int i = 0; i < 128 * NFR; i++) top = fmax(top, ref[i]);
    for (int i = 0; i < 128 * NFR; i++) {
      const double rel = fabs(out[i] - ref[i]) / ref[i];
      if (ref[i] >= 1e-6 * top) worst60 = fmax(worst60, rel);
      if (ref[i] >= 1e-8 * top) worst80 = fmax(worst80, rel);
    }
    EXPECT(worst60 <= 1e-5, "%s: max relative error %g > 1e-5 within 60 dB", name, worst60);
    EXPECT(worst80 <= 3e-4, "%s: max relative error %g > 3e-4 within 80 dB", name, worst80);
    free(out);
    free(ref);
  }
  free(y);
  mf_feature_free(f);
}

TEST(test_mfcc20_matches_librosa_within_1e_3) {
  const char *const sets[] = {"n_mfcc=20", NULL};
  mf_feature *f = feature("mfcc", sets);
  float *y = malloc(NSIG * sizeof(float));
  for (int c = 0; c < 3; c++) {
    char name[64];
    snprintf(name, sizeof name, "%s_mfcc20.csv", CASES[c]);
    double *ref = read_csv(name, 20, NFR); /* rows = coefficients */
    if (!ref || !make_signal(CASES[c], y)) continue;
    mf_feature_layout lay;
    float *out = run(f, y, NSIG, &lay); /* [frames, 20] */
    EXPECT(mf_shape_equal(lay.shape, MF_SHAPE(NFR, 20)) && lay.time_axis == 0,
           "%s: layout is not [44, 20] with time on axis 0", name);
    double worst = 0;
    for (int k = 0; k < 20; k++)
      for (int t = 0; t < NFR; t++) worst = fmax(worst, fabs(out[t * 20 + k] - ref[k * NFR + t]));
    EXPECT(worst <= 1e-3, "%s: max |error| %g > 1e-3", name, worst);
    free(out);
    free(ref);
  }
  free(y);
  mf_feature_free(f);
}

TEST(test_mfcc_deltas_match_savgol_interp_reference) {
  const char *const sets[] = {"n_mfcc=20", "deltas=1", NULL};
  mf_feature *f = feature("mfcc", sets);
  float *y = malloc(NSIG * sizeof(float));
  for (int c = 0; c < 3; c++) {
    char name[64];
    snprintf(name, sizeof name, "%s_mfcc20_delta.csv", CASES[c]);
    double *ref = read_csv(name, 20, NFR);
    if (!ref || !make_signal(CASES[c], y)) continue;
    mf_feature_layout lay;
    float *out = run(f, y, NSIG, &lay); /* [frames, 20 mfcc | 20 delta] */
    EXPECT(mf_shape_equal(lay.shape, MF_SHAPE(NFR, 40)), "%s: layout is not [44, 40]", name);
    double worst = 0;
    for (int k = 0; k < 20; k++)
      for (int t = 0; t < NFR; t++)
        worst = fmax(worst, fabs(out[t * 40 + 20 + k] - ref[k * NFR + t]));
    EXPECT(worst <= 1e-3, "%s: max |delta error| %g > 1e-3", name, worst);
    free(out);
    free(ref);
  }
  free(y);
  mf_feature_free(f);
}

TEST(test_mfcc13_is_the_first_13_of_mfcc20) {
  const char *const s20[] = {"n_mfcc=20", NULL};
  mf_feature *f13 = feature("mfcc", NULL), *f20 = feature("mfcc", s20);
  float *y = malloc(NSIG * sizeof(float));
  make_signal("tones", y);
  mf_feature_layout l13, l20;
  float *a = run(f13, y, NSIG, &l13), *b = run(f20, y, NSIG, &l20);
  EXPECT(mf_shape_equal(l13.shape, MF_SHAPE(NFR, 13)), "default n_mfcc is not 13");
  int same = 1;
  for (int t = 0; t < NFR; t++) same &= memcmp(a + t * 13, b + t * 20, 13 * sizeof(float)) == 0;
  EXPECT(same, "the first 13 coefficients differ between n_mfcc 13 and 20");
  free(a);
  free(b);
  free(y);
  mf_feature_free(f13);
  mf_feature_free(f20);
}

TEST(test_lifter_scales_coefficient_k_by_librosa_sinusoid) {
  const char *const sets[] = {"lifter=22", NULL};
  mf_feature *plain = feature("mfcc", NULL), *lift = feature("mfcc", sets);
  float *y = malloc(NSIG * sizeof(float));
  make_signal("chirp", y);
  mf_feature_layout lay;
  float *a = run(plain, y, NSIG, &lay), *b = run(lift, y, NSIG, &lay);
  for (int k = 0; k < 13; k++) {
    const double g = 1 + 11 * sin(M_PI * (k + 1) / 22);
    double worst = 0;
    for (int t = 0; t < NFR; t++)
      worst = fmax(worst, fabs(b[t * 13 + k] - g * a[t * 13 + k]) / (1 + fabs(g * a[t * 13 + k])));
    EXPECT(worst <= 1e-6, "coefficient %d: lifted differs from %g x plain by %g", k, g, worst);
  }
  free(a);
  free(b);
  free(y);
  mf_feature_free(plain);
  mf_feature_free(lift);
}

/* ---- options ------------------------------------------------------------------------------ */

TEST(test_power_1_filters_the_magnitude) {
  /* bin-exact sine: |X_95| = |X_97| = A n/8, |X_96| = A n/4, the rest ~0 */
  const char *const sets[] = {"power=1", "db=false", NULL};
  mf_feature *f = feature("melspec", sets);
  float *y = malloc(NSIG * sizeof(float));
  const double A = 0.5;
  for (int n = 0; n < NSIG; n++) y[n] = (float)(A * sin(2 * M_PI * 96 * n / 2048.0));
  mf_feature_layout lay;
  float *out = run(f, y, NSIG, &lay);
  spectral *s = core(NULL);
  float *fb = malloc(128 * 1025 * sizeof(float));
  spectral_filterbank(s, fb);
  double top = 0, worst = 0;
  for (int m = 0; m < 128; m++) {
    const float *w = fb + m * 1025;
    const double want = A * 2048 / 8 * (w[95] + 2.0 * w[96] + w[97]);
    top = fmax(top, want);
    worst = fmax(worst, fabs(out[m * NFR + NFR / 2] - want));
  }
  EXPECT(top > 0 && worst <= 1e-4 * top, "mel magnitude off by %g (largest band %g)", worst, top);
  free(fb);
  spectral_free(s);
  free(out);
  free(y);
  mf_feature_free(f);
}

static void min_max(const float *x, int64_t n, float *lo, float *hi) {
  *lo = INFINITY;
  *hi = -INFINITY;
  for (int64_t i = 0; i < n; i++) {
    *lo = fminf(*lo, x[i]);
    *hi = fmaxf(*hi, x[i]);
  }
}

TEST(test_top_db_clips_at_the_maximum_minus_top_db) {
  float *y = malloc(NSIG * sizeof(float));
  make_signal("tones", y);
  const char *const s20[] = {"top_db=20", NULL}, *const s0[] = {"top_db=0", NULL};
  mf_feature *f80 = feature("melspec", NULL), *f20 = feature("melspec", s20),
             *f0 = feature("melspec", s0);
  mf_feature_layout lay;
  float *a = run(f80, y, NSIG, &lay), *b = run(f20, y, NSIG, &lay), *c = run(f0, y, NSIG, &lay);
  float lo80, hi80, lo20, hi20, lo0, hi0;
  min_max(a, 128 * NFR, &lo80, &hi80);
  min_max(b, 128 * NFR, &lo20, &hi20);
  min_max(c, 128 * NFR, &lo0, &hi0);
  EXPECT_NEAR(hi80, 34.814817, 1e-3); /* cases.txt: tones max dB */
  EXPECT_NEAR(lo80, hi80 - 80, 1e-5);
  EXPECT_NEAR(lo20, hi20 - 20, 1e-5);
  EXPECT(lo0 < hi0 - 80, "top_db=0 still clips: min %g, max %g", lo0, hi0);
  int same = 1; /* unclipped values agree */
  for (int i = 0; i < 128 * NFR; i++) same &= a[i] == (c[i] > lo80 ? c[i] : lo80);
  EXPECT(same, "clipping changed values above the floor");
  free(a);
  free(b);
  free(c);
  free(y);
  mf_feature_free(f80);
  mf_feature_free(f20);
  mf_feature_free(f0);
}

TEST(test_ref_and_amin_shift_and_floor_the_db_scale) {
  float *y = malloc(NSIG * sizeof(float));
  make_signal("noise", y);
  const char *const sref[] = {"ref=10", "top_db=0", NULL}, *const smax[] = {"ref=0", NULL},
                    *const samin[] = {"amin=1e-2", "top_db=0", NULL},
                    *const splain[] = {"top_db=0", NULL};
  mf_feature *fp = feature("melspec", splain), *fr = feature("melspec", sref),
             *fm = feature("melspec", smax), *fa = feature("melspec", samin);
  mf_feature_layout lay;
  float *p = run(fp, y, NSIG, &lay), *r = run(fr, y, NSIG, &lay), *m = run(fm, y, NSIG, &lay),
        *a = run(fa, y, NSIG, &lay);
  float lo, hi;
  min_max(p, 128 * NFR, &lo, &hi);
  EXPECT_NEAR(hi, 15.676562, 1e-3); /* cases.txt: noise max dB */
  double worst_max = 0, worst_ref = 0, worst_amin = 0;
  for (int i = 0; i < 128 * NFR; i++) {
    worst_max = fmax(worst_max, fabs(m[i] - (p[i] - hi))); /* ref = max: the loudest is 0 dB */
    worst_ref = fmax(worst_ref, fabs(r[i] - (p[i] - 10)));
    worst_amin = fmax(worst_amin, fabs(a[i] - fmax(p[i], -20)));
  }
  EXPECT(worst_max <= 1e-5, "ref=0 is not a shift by the maximum (off by %g)", worst_max);
  EXPECT(worst_ref <= 1e-5, "ref=10 is not a 10 dB shift (off by %g)", worst_ref);
  EXPECT(worst_amin <= 1e-5, "amin=1e-2 is not a -20 dB floor (off by %g)", worst_amin);
  free(p);
  free(r);
  free(m);
  free(a);
  free(y);
  mf_feature_free(fp);
  mf_feature_free(fr);
  mf_feature_free(fm);
  mf_feature_free(fa);
}

TEST(test_power_to_db_is_within_2_ulp_of_float64_log10) {
  enum { N = 100000 };
  float *x = malloc(N * sizeof(float));
  double *want = malloc(N * sizeof(double));
  for (int i = 0; i < N; i++) {
    x[i] = (float)pow(10.0, -37.0 + 74.0 * i / (N - 1)); /* every float exponent */
    want[i] = 10 * log10((double)x[i]);
  }
  spectral_cfg cfg = {.amin = 1e-38, .ref = 1, .top_db = 0};
  spectral_power_to_db(&cfg, x, N);
  double worst = 0;
  for (int i = 0; i < N; i++)
    worst = fmax(worst, fabs(x[i] - want[i]) / fmax(1e-6, ldexp(1, ilogb(want[i]) - 23)));
  EXPECT(worst <= 2.0, "10 log10 off by %g ulp (or units of 1e-6 dB)", worst);
  free(x);
  free(want);
}

/* ---- deltas -----------------------------------------------------------------------------------
 */

TEST(test_delta_weights_are_savitzky_golay) {
  delta_filter d1, d2;
  EXPECT(delta_filter_init(mf_api_table(), 9, 1, &d1) == MF_OK, "%s", mf_error());
  EXPECT(delta_filter_init(mf_api_table(), 9, 2, &d2) == MF_OK, "%s", mf_error());
  for (int j = -4; j <= 4; j++) {
    EXPECT_NEAR(d1.interior[j + 4], j / 60.0, 1e-14);                 /* slope */
    EXPECT_NEAR(d2.interior[j + 4], (3.0 * j * j - 20) / 462, 1e-14); /* 2 x curvature */
  }
  delta_filter_release(&d1);
  delta_filter_release(&d2);
}

TEST(test_delta_interp_edges_use_the_fit_over_the_first_and_last_window) {
  /* For x = a t^2 + b t + c: delta-delta is 2a everywhere; delta is 2a t + b inside, and on
   * the edges the slope of the line fitted to the first / last 9 frames, i.e. the derivative
   * at that window's centre (scipy's mode 'interp'), not at t. Two columns, stride 3. */
  enum { T = 20, W = 9 };
  float x[T * 3], y1[T * 3], y2[T * 3];
  const double a = 0.25, b = -3, c = 7;
  for (int t = 0; t < T; t++) {
    x[t * 3] = (float)(a * t * t + b * t + c);
    x[t * 3 + 1] = (float)(-2 * a * t * t + 1);
  }
  delta_filter d1, d2;
  double tmp[2];
  delta_filter_init(mf_api_table(), W, 1, &d1);
  delta_filter_init(mf_api_table(), W, 2, &d2);
  delta_filter_apply(&d1, x, 3, T, 2, y1, 3, tmp);
  delta_filter_apply(&d2, x, 3, T, 2, y2, 3, tmp);
  for (int t = 0; t < T; t++) {
    const int at = t < 4 ? 4 : t >= T - 4 ? T - 5 : t;
    EXPECT_NEAR(y1[t * 3], 2 * a * at + b, 1e-4);
    EXPECT_NEAR(y1[t * 3 + 1], -4 * a * at, 1e-4);
    EXPECT_NEAR(y2[t * 3], 2 * a, 1e-4);
    EXPECT_NEAR(y2[t * 3 + 1], -4 * a, 1e-4);
  }
  delta_filter_release(&d1);
  delta_filter_release(&d2);
}

TEST(test_deltas_append_delta_and_delta_delta_columns) {
  const char *const s0[] = {"n_mfcc=20", NULL}, *const s2[] = {"n_mfcc=20", "deltas=2", NULL};
  mf_feature *f0 = feature("mfcc", s0), *f2 = feature("mfcc", s2);
  float *y = malloc(NSIG * sizeof(float));
  make_signal("chirp", y);
  mf_feature_layout l0, l2;
  float *a = run(f0, y, NSIG, &l0), *b = run(f2, y, NSIG, &l2);
  EXPECT(mf_shape_equal(l2.shape, MF_SHAPE(NFR, 60)), "deltas=2 layout is not [44, 60]");
  delta_filter d;
  delta_filter_init(mf_api_table(), 9, 2, &d);
  float *dd = malloc(NFR * 20 * sizeof(float));
  double tmp[20];
  delta_filter_apply(&d, a, 20, NFR, 20, dd, 20, tmp);
  int same = 1;
  for (int t = 0; t < NFR; t++) {
    same &= memcmp(b + t * 60, a + t * 20, 20 * sizeof(float)) == 0;
    same &= memcmp(b + t * 60 + 40, dd + t * 20, 20 * sizeof(float)) == 0;
  }
  EXPECT(same, "columns 0-19 are not the MFCCs or 40-59 not their order-2 deltas");
  delta_filter_release(&d);
  free(dd);
  free(a);
  free(b);
  free(y);
  mf_feature_free(f0);
  mf_feature_free(f2);
}

/* ---- layout, validation, edge cases -----------------------------------------------------------
 */

TEST(test_layout_reports_shape_time_axis_and_hop) {
  const char *const sd[] = {"deltas=2", NULL}, *const sh[] = {"hop_length=256", "n_mels=64", NULL};
  mf_feature *mel = feature("melspec", NULL), *mel2 = feature("melspec", sh),
             *mf = feature("mfcc", NULL), *mfd = feature("mfcc", sd);
  mf_feature_layout l;
  EXPECT(mf_feature_layout_of(mel, 66150, &l) == MF_OK, "%s", mf_error()); /* 3 s segment */
  EXPECT(mf_shape_equal(l.shape, MF_SHAPE(128, 130)) && l.time_axis == 1 && l.hop == 512,
         "melspec 3 s: not [128, 130], axis 1, hop 512");
  EXPECT(mf_feature_layout_of(mel2, 661500, &l) == MF_OK, "%s", mf_error());
  EXPECT(mf_shape_equal(l.shape, MF_SHAPE(64, 2584)) && l.hop == 256,
         "melspec 30 s hop 256: not [64, 2584]");
  EXPECT(mf_feature_layout_of(mf, 66150, &l) == MF_OK, "%s", mf_error());
  EXPECT(mf_shape_equal(l.shape, MF_SHAPE(130, 13)) && l.time_axis == 0 && l.hop == 512,
         "mfcc 3 s: not [130, 13], axis 0, hop 512");
  EXPECT(mf_feature_layout_of(mfd, 66150, &l) == MF_OK, "%s", mf_error());
  EXPECT(mf_shape_equal(l.shape, MF_SHAPE(130, 39)), "mfcc deltas=2: not [130, 39]");
  mf_feature_free(mel);
  mf_feature_free(mel2);
  mf_feature_free(mf);
  mf_feature_free(mfd);
}

TEST(test_zero_samples_give_one_frame_of_padding) {
  mf_feature *mel = feature("melspec", NULL), *mf = feature("mfcc", NULL);
  mf_feature_layout l;
  EXPECT(mf_feature_layout_of(mel, 0, &l) == MF_OK, "%s", mf_error());
  EXPECT(mf_shape_equal(l.shape, MF_SHAPE(128, 1)), "melspec of 0 samples is not [128, 1]");
  float out[128], none = 0;
  EXPECT(mf_feature_compute(mel, &none, 0, out) == MF_OK, "%s", mf_error());
  int floor = 1; /* silence: max(amin, 0) = 1e-10 -> -100 dB everywhere */
  for (int m = 0; m < 128; m++) floor &= fabsf(out[m] + 100.0f) < 1e-4f;
  EXPECT(floor, "melspec of silence is not -100 dB");
  EXPECT(mf_feature_layout_of(mf, 0, &l) == MF_OK, "%s", mf_error());
  EXPECT(mf_shape_equal(l.shape, MF_SHAPE(1, 13)), "mfcc of 0 samples is not [1, 13]");
  EXPECT(mf_feature_layout_of(mel, -1, &l) != MF_OK, "a negative length has a layout");
  mf_feature_free(mel);
  mf_feature_free(mf);
}

TEST(test_deltas_on_fewer_frames_than_delta_width_fail_clearly) {
  const char *const sd[] = {"deltas=1", NULL};
  mf_feature *f = feature("mfcc", sd);
  mf_feature_layout l;
  float y[3000] = {0}, out[8 * 26];
  EXPECT(mf_feature_layout_of(f, 3000, &l) == MF_EINVAL, "6 frames accepted for width 9");
  EXPECT(strstr(mf_error(), "delta_width") != NULL, "message does not name delta_width: %s",
         mf_error());
  EXPECT(mf_feature_compute(f, y, 3000, out) == MF_EINVAL, "compute accepted 6 frames");
  EXPECT(mf_feature_layout_of(f, 4096, &l) == MF_OK, "9 frames refused: %s", mf_error());
  mf_feature_free(f);
}

/* Creating `name` with `set` fails (create or schema) with a message naming `param`. */
static void expect_rejected(const char *name, const char *set, const char *param) {
  load_plugins();
  const mf_component *c = mf_component_find(MF_KIND_FEATURE, name);
  mf_values *v;
  mf_component_values(c, &v);
  mf_feature *f = NULL;
  if (mf_values_set_assignment(v, set) == MF_OK) {
    EXPECT(mf_feature_new(c, v, SR, &f) != MF_OK, "%s: %s accepted", name, set);
    mf_feature_free(f);
  }
  EXPECT(strstr(mf_error(), param) != NULL, "%s: %s: message does not name '%s': %s", name, set,
         param, mf_error());
  mf_values_free(v);
}

TEST(test_invalid_parameters_fail_with_a_message_naming_them) {
  for (int i = 0; i < 2; i++) {
    const char *name = i ? "mfcc" : "melspec";
    expect_rejected(name, "n_fft=8", "n_fft");
    expect_rejected(name, "hop_length=0", "hop_length");
    expect_rejected(name, "n_mels=0", "n_mels");
    expect_rejected(name, "win_length=4096", "win_length");
    expect_rejected(name, "fmax=12000", "fmax");
    expect_rejected(name, "fmin=11025", "fmin");
    expect_rejected(name, "norm=l2", "norm");
    expect_rejected(name, "amin=0", "amin");
  }
  expect_rejected("mfcc", "n_mfcc=129", "n_mfcc");
  expect_rejected("mfcc", "delta_width=8", "delta_width");
  expect_rejected("mfcc", "delta_width=1", "delta_width");
  expect_rejected("mfcc", "deltas=3", "deltas");
  expect_rejected("mfcc", "db=false", "db");
  const char *const ok[] = {"fmax=11025", "win_length=2048", NULL};
  mf_feature *f = feature("melspec", ok);
  EXPECT(f != NULL, "fmax = sr/2 and win_length = n_fft refused: %s", mf_error());
  mf_feature_free(f);
}

/* ---- threads --------------------------------------------------------------------------------- */

typedef struct job {
  mf_feature *f;
  const float *y;
  int64_t n;
  float *out;
  mf_status st;
} job;

static void *run_job(void *arg) {
  job *j = arg;
  for (int rep = 0; rep < 3 && j->st == MF_OK; rep++)
    j->st = mf_feature_compute(j->f, j->y, j->n, j->out);
  return NULL;
}

TEST(test_two_threads_on_one_instance_give_the_serial_bits) {
  enum { N = 5 * SR }; /* 216 frames each */
  float *y = malloc(2 * N * sizeof(float));
  for (int n = 0; n < 2 * N; n++)
    y[n] = (float)(0.3 * sin(0.01 * n) + 0.2 * sin(0.37 * n + 0.001 * n * n / N));
  const char *const sd[] = {"deltas=2", NULL};
  for (int k = 0; k < 2; k++) {
    mf_feature *f = k ? feature("mfcc", sd) : feature("melspec", NULL);
    mf_feature_layout l;
    mf_feature_layout_of(f, N, &l);
    const size_t sz = (size_t)mf_shape_numel(l.shape);
    float *serial = malloc(2 * sz * sizeof(float)), *par = malloc(2 * sz * sizeof(float));
    for (int i = 0; i < 2; i++) mf_feature_compute(f, y + i * N, N, serial + i * sz);
    job jobs[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
      jobs[i] = (job){f, y + i * N, N, par + i * sz, MF_OK};
      pthread_create(&th[i], NULL, run_job, &jobs[i]);
    }
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    EXPECT(jobs[0].st == MF_OK && jobs[1].st == MF_OK, "a concurrent compute failed");
    EXPECT(memcmp(serial, par, 2 * sz * sizeof(float)) == 0,
           "%s: concurrent results differ from serial ones", k ? "mfcc" : "melspec");
    free(serial);
    free(par);
    mf_feature_free(f);
  }
  free(y);
}
