/* The demo corpus generator: every genre renders finite, normalised audio; the same seed gives
 * the same samples (whatever the thread count) and another seed other samples; tracks differ
 * inside a genre; the genres differ in simple audio statistics on average, yet no single
 * statistic tells them all apart; the corpus is written in GTZAN's layout and replaces only
 * its own files. Tracks are 1 to 3 s long to keep the suite fast. */
#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "melforge/audio.h"
#include "melforge/runtime.h"
#include "melforge/synth.h"
#include "mftest.h"

#define RATE 22050

static mf_synth_config config(double seconds, uint64_t seed) {
  mf_synth_config c = mf_synth_defaults();
  c.seconds = seconds;
  c.seed = seed;
  return c;
}

/* Renders track (genre, index) of cfg; the caller frees. */
static float *render(const mf_synth_config *cfg, int genre, int index, int64_t *n) {
  *n = (int64_t)llround(cfg->seconds * cfg->sample_rate);
  float *x = malloc((size_t)*n * sizeof *x);
  mf_status st = mf_synth_track(cfg, genre, index, x, *n);
  EXPECT(st == MF_OK, "genre %d track %d: %s", genre, index, mf_error());
  return x;
}

TEST(test_synth_defaults_and_genre_names) {
  mf_synth_config d = mf_synth_defaults();
  EXPECT_EQ_INT(d.genres, mf_synth_genre_count());
  EXPECT_EQ_INT(d.tracks, 20);
  EXPECT_NEAR(d.seconds, 30.0, 0);
  EXPECT_NEAR(d.sample_rate, 22050.0, 0);
  EXPECT_EQ_INT(d.seed, 42);
  const int g = mf_synth_genre_count();
  EXPECT(g >= 6, "only %d genres", g);
  for (int i = 0; i < g; i++) {
    const char *name = mf_synth_genre_name(i);
    EXPECT(name && *name, "genre %d has no name", i);
    if (!name) continue;
    for (const char *c = name; *c; c++)
      EXPECT(*c >= 'a' && *c <= 'z', "genre name '%s' is not a lowercase folder name", name);
    for (int j = 0; j < i; j++)
      EXPECT(strcmp(name, mf_synth_genre_name(j)), "genre name '%s' repeats", name);
  }
  EXPECT(mf_synth_genre_name(-1) == NULL && mf_synth_genre_name(g) == NULL,
         "names outside [0, %d) should be NULL", g);
  EXPECT(!strcmp(mf_synth_genre_name(0), "electronic"), "genre 0 is %s", mf_synth_genre_name(0));
}

TEST(test_synth_every_genre_renders_finite_normalised_audio) {
  const mf_synth_config cfg = config(2.0, 42);
  for (int g = 0; g < mf_synth_genre_count(); g++)
    for (int i = 0; i < 3; i++) {
      int64_t n;
      float *x = render(&cfg, g, i, &n);
      double peak = 0, ss = 0;
      int64_t bad = 0;
      for (int64_t k = 0; k < n; k++) {
        bad += !isfinite(x[k]);
        peak = fmax(peak, fabs(x[k]));
        ss += (double)x[k] * x[k];
      }
      const double rms = sqrt(ss / (double)n);
      EXPECT(bad == 0, "%s %d: %lld non-finite samples", mf_synth_genre_name(g), i, (long long)bad);
      /* Normalised to about -1 dBFS (0.891); the range leaves room for the limiter. */
      EXPECT(peak > 0.5 && peak <= 1.0, "%s %d: peak %g", mf_synth_genre_name(g), i, peak);
      EXPECT(rms > 0.02, "%s %d: rms %g, nearly silent", mf_synth_genre_name(g), i, rms);
      free(x);
    }
}

TEST(test_synth_same_seed_gives_identical_samples) {
  const mf_synth_config cfg = config(1.5, 7);
  for (int g = 0; g < mf_synth_genre_count(); g++) {
    int64_t n;
    float *a = render(&cfg, g, 3, &n), *b = render(&cfg, g, 3, &n);
    EXPECT(!memcmp(a, b, (size_t)n * sizeof *a), "%s: two renders differ", mf_synth_genre_name(g));
    free(a);
    free(b);
  }
}

static double rms_diff(const float *a, const float *b, int64_t n) {
  double s = 0;
  for (int64_t k = 0; k < n; k++) s += ((double)a[k] - b[k]) * ((double)a[k] - b[k]);
  return sqrt(s / (double)n);
}

TEST(test_synth_other_seed_or_track_gives_other_music) {
  const mf_synth_config c7 = config(1.5, 7), c8 = config(1.5, 8);
  for (int g = 0; g < mf_synth_genre_count(); g++) {
    int64_t n;
    float *a = render(&c7, g, 0, &n), *b = render(&c8, g, 0, &n), *c = render(&c7, g, 1, &n);
    /* Unrelated signals of RMS > 0.02 differ by about their RMS: not a rounding difference. */
    EXPECT(rms_diff(a, b, n) > 0.02, "%s: seeds 7 and 8 give nearly the same track (%g)",
           mf_synth_genre_name(g), rms_diff(a, b, n));
    EXPECT(rms_diff(a, c, n) > 0.02, "%s: tracks 0 and 1 are nearly the same (%g)",
           mf_synth_genre_name(g), rms_diff(a, c, n));
    free(a);
    free(b);
    free(c);
  }
}

TEST(test_synth_renders_at_other_rates) {
  mf_synth_config cfg = config(1.0, 3);
  const double rates[] = {8000, 16000, 44100};
  for (int r = 0; r < 3; r++) {
    cfg.sample_rate = rates[r];
    for (int g = 0; g < mf_synth_genre_count(); g++) {
      int64_t n;
      float *x = render(&cfg, g, 0, &n);
      double peak = 0;
      for (int64_t k = 0; k < n; k++) peak = fmax(peak, fabs(x[k]));
      EXPECT(peak > 0.5 && peak <= 1.0, "%s at %g Hz: peak %g", mf_synth_genre_name(g), rates[r],
             peak);
      free(x);
    }
  }
}

/* ---- statistics: the genres differ on average, no statistic alone separates them -------- */

enum { ST_CENTROID, ST_LOW, ST_MID, ST_ONSETS, ST_ZCR, ST_CREST, ST_DYNAMICS, N_STATS };
static const char *const STAT_NAME[N_STATS] = {
    "spectral centroid",  "energy below 200 Hz", "energy in 200-2000 Hz",      "onset rate",
    "zero-crossing rate", "crest factor",        "variation of frame loudness"};
#define FRAME 512

/* Statistics of one excerpt: mean spectral centroid and shares of energy below 200 Hz and in
 * 200-2000 Hz over Hann-windowed frames (naive DFT); onsets per second (rises of the frame
 * energy); zero crossings per sample; crest factor (peak / RMS: low for a limited master);
 * the coefficient of variation of the frames' RMS (how much the loudness moves). */
static void track_stats(const float *x, int64_t n, double *st) {
  double cosw[FRAME], sinw[FRAME], hann[FRAME];
  for (int k = 0; k < FRAME; k++) {
    cosw[k] = cos(2 * M_PI * k / FRAME), sinw[k] = sin(2 * M_PI * k / FRAME);
    hann[k] = 0.5 - 0.5 * cos(2 * M_PI * k / FRAME);
  }
  const int frames = (int)(n / FRAME);
  double cent = 0, low = 0, mid = 0, total = 0, prev_e = 0, sum_r = 0, sum_r2 = 0, peak = 0;
  int onsets = 0, spectra = 0;
  for (int f = 0; f < frames; f++) {
    const float *w = x + (int64_t)f * FRAME;
    double e = 0;
    for (int k = 0; k < FRAME; k++) e += (double)w[k] * w[k], peak = fmax(peak, fabs(w[k]));
    sum_r += sqrt(e / FRAME), sum_r2 += e / FRAME;
    /* An onset: the frame is at least twice as loud as the last (+3 dB) and not silent. */
    if (f > 0 && e > 2.0 * prev_e && e > 1e-4 * FRAME) onsets++;
    prev_e = e;
    if (f % 8) continue; /* the DFT of every eighth frame is plenty */
    double xw[FRAME], num = 0, den = 0;
    for (int k = 0; k < FRAME; k++) xw[k] = hann[k] * w[k];
    for (int b = 1; b <= FRAME / 2; b++) {
      double re = 0, im = 0;
      for (int k = 0, idx = 0; k < FRAME; k++, idx = (idx + b) & (FRAME - 1)) {
        re += xw[k] * cosw[idx];
        im -= xw[k] * sinw[idx];
      }
      const double p = re * re + im * im, hzb = (double)b * RATE / FRAME;
      num += hzb * p;
      den += p;
      if (hzb < 200.0) low += p;
      if (hzb >= 200.0 && hzb < 2000.0) mid += p;
      total += p;
    }
    if (den > 0) cent += num / den, spectra++;
  }
  int64_t zc = 0;
  for (int64_t k = 1; k < n; k++) zc += (x[k - 1] < 0) != (x[k] < 0);
  st[ST_CENTROID] = spectra ? cent / spectra : 0;
  st[ST_LOW] = total > 0 ? low / total : 0;
  st[ST_MID] = total > 0 ? mid / total : 0;
  const double mean_r = sum_r / frames, var_r = sum_r2 / frames - mean_r * mean_r;
  st[ST_CREST] = sum_r2 > 0 ? peak / sqrt(sum_r2 / frames) : 0;
  st[ST_DYNAMICS] = mean_r > 0 ? sqrt(fmax(var_r, 0)) / mean_r : 0;
  st[ST_ONSETS] = onsets / ((double)n / RATE);
  st[ST_ZCR] = (double)zc / (double)n;
}

#define STAT_TRACKS 8

TEST(test_synth_genres_differ_in_audio_statistics_but_no_single_one_separates_them) {
  const int G = mf_synth_genre_count() < 16 ? mf_synth_genre_count() : 16;
  const mf_synth_config cfg = config(3.0, 42);
  double st[16][STAT_TRACKS][N_STATS];
  mf_status status[16 * STAT_TRACKS];
  const int64_t n = (int64_t)llround(cfg.seconds * cfg.sample_rate);
  /* Tracks are independent: render them on all threads (the sanitizer build is slow). */
#pragma omp parallel for schedule(dynamic, 1)
  for (int k = 0; k < G * STAT_TRACKS; k++) {
    const int g = k / STAT_TRACKS, i = k % STAT_TRACKS;
    float *x = malloc((size_t)n * sizeof *x);
    status[k] = mf_synth_track(&cfg, g, i, x, n);
    track_stats(x, n, st[g][i]);
    free(x);
  }
  for (int k = 0; k < G * STAT_TRACKS; k++) EXPECT(status[k] == MF_OK, "track %d failed", k);
  double mean[16][N_STATS], sd[16][N_STATS];
  for (int g = 0; g < G; g++)
    for (int s = 0; s < N_STATS; s++) {
      double m = 0, v = 0;
      for (int i = 0; i < STAT_TRACKS; i++) m += st[g][i][s];
      m /= STAT_TRACKS;
      for (int i = 0; i < STAT_TRACKS; i++) v += (st[g][i][s] - m) * (st[g][i][s] - m);
      mean[g][s] = m, sd[g][s] = sqrt(v / (STAT_TRACKS - 1));
    }
  /* Distinguishable: every pair of genres differs in some statistic by at least one pooled
   * standard deviation (a large effect, not noise between 8-track samples). */
  for (int a = 0; a < G; a++)
    for (int b = a + 1; b < G; b++) {
      double best = 0;
      for (int s = 0; s < N_STATS; s++) {
        const double pooled = sqrt(0.5 * (sd[a][s] * sd[a][s] + sd[b][s] * sd[b][s])) + 1e-12;
        best = fmax(best, fabs(mean[a][s] - mean[b][s]) / pooled);
      }
      EXPECT(best > 1.0, "%s and %s differ by only %.2f standard deviations in every statistic",
             mf_synth_genre_name(a), mf_synth_genre_name(b), best);
    }
  /* Not trivial: a nearest-class-mean rule on any one statistic misclassifies a good share of
   * the tracks, while the statistics together do much better than chance. */
  for (int s = 0; s < N_STATS; s++) {
    int right = 0;
    for (int g = 0; g < G; g++)
      for (int i = 0; i < STAT_TRACKS; i++) {
        int best = 0;
        for (int c = 1; c < G; c++)
          if (fabs(st[g][i][s] - mean[c][s]) < fabs(st[g][i][s] - mean[best][s])) best = c;
        right += best == g;
      }
    const double acc = (double)right / (G * STAT_TRACKS);
    EXPECT(acc < 0.8, "%s alone classifies %.0f%% of the tracks", STAT_NAME[s], 100 * acc);
  }
  double scale[N_STATS];
  for (int s = 0; s < N_STATS; s++) {
    scale[s] = 0;
    for (int g = 0; g < G; g++) scale[s] += sd[g][s] * sd[g][s] / G;
    scale[s] = sqrt(scale[s]) + 1e-12;
  }
  int right = 0;
  for (int g = 0; g < G; g++)
    for (int i = 0; i < STAT_TRACKS; i++) {
      int best = 0;
      double best_d = INFINITY;
      for (int c = 0; c < G; c++) {
        double d = 0;
        for (int s = 0; s < N_STATS; s++) {
          const double z = (st[g][i][s] - mean[c][s]) / scale[s];
          d += z * z;
        }
        if (d < best_d) best_d = d, best = c;
      }
      right += best == g;
    }
  const double acc = (double)right / (G * STAT_TRACKS);
  EXPECT(acc > 2.0 / G,
         "all statistics together classify only %.0f%% of the tracks (chance %.0f%%)", 100 * acc,
         100.0 / G);
}

/* ---- arguments ---------------------------------------------------------------------------- */

TEST(test_synth_track_rejects_bad_arguments) {
  mf_synth_config cfg = config(1.0, 1);
  float x[16];
  EXPECT(mf_synth_track(NULL, 0, 0, x, 16) == MF_EINVAL, "NULL config accepted");
  EXPECT(mf_synth_track(&cfg, -1, 0, x, 16) == MF_EINVAL, "genre -1 accepted");
  EXPECT(mf_synth_track(&cfg, mf_synth_genre_count(), 0, x, 16) == MF_EINVAL,
         "genre count accepted");
  EXPECT(strstr(mf_error(), "genre"), "message '%s' does not name the genre", mf_error());
  EXPECT(mf_synth_track(&cfg, 0, -1, x, 16) == MF_EINVAL, "index -1 accepted");
  EXPECT(mf_synth_track(&cfg, 0, 0, NULL, 16) == MF_EINVAL, "NULL buffer accepted");
  EXPECT(mf_synth_track(&cfg, 0, 0, x, -1) == MF_EINVAL, "negative length accepted");
  cfg.sample_rate = 100;
  EXPECT(mf_synth_track(&cfg, 0, 0, x, 16) == MF_EINVAL, "100 Hz accepted");
  EXPECT(strstr(mf_error(), "100"), "message '%s' does not name the rate", mf_error());
  cfg.sample_rate = RATE;
  EXPECT(mf_synth_track(&cfg, 0, 0, x, 0) == MF_OK, "an empty track is not an error: %s",
         mf_error());
}

static char *make_tmpdir(void) {
  const char *base = getenv("TMPDIR");
  char tmpl[PATH_MAX];
  snprintf(tmpl, sizeof tmpl, "%s/mf_synth_XXXXXX", base && *base ? base : "/tmp");
  char *d = mkdtemp(tmpl);
  if (!d) {
    perror("mkdtemp");
    abort();
  }
  return strdup(d);
}

static void remove_tree(const char *path) {
  DIR *d = opendir(path);
  if (!d) {
    unlink(path);
    return;
  }
  for (struct dirent *e; (e = readdir(d));) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", path, e->d_name);
    remove_tree(p);
  }
  closedir(d);
  rmdir(path);
}

TEST(test_synth_write_corpus_rejects_bad_config) {
  char *dir = make_tmpdir();
  const mf_synth_config good = config(0.5, 1);
  struct {
    const char *what;
    mf_synth_config c;
  } bad[] = {{"genres", good},  {"genres", good},  {"tracks", good}, {"seconds", good},
             {"seconds", good}, {"seconds", good}, {"rate", good},   {"rate", good}};
  bad[0].c.genres = 0, bad[1].c.genres = mf_synth_genre_count() + 1, bad[2].c.tracks = 0;
  bad[3].c.seconds = 0, bad[4].c.seconds = 601, bad[5].c.seconds = NAN;
  bad[6].c.sample_rate = 4000, bad[7].c.sample_rate = 22050.5;
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    EXPECT(mf_synth_write_corpus(&bad[k].c, dir, NULL, NULL) == MF_EINVAL,
           "bad %s accepted (case %zu)", bad[k].what, k);
  }
  EXPECT(mf_synth_write_corpus(&good, "", NULL, NULL) == MF_EINVAL, "empty folder accepted");
  remove_tree(dir);
  free(dir);
}

typedef struct counter {
  int calls, last_done, last_total, monotone;
} counter;

static void count_progress(int done, int total, void *user) {
  counter *c = user;
  c->monotone &= done == c->last_done + 1;
  c->calls++, c->last_done = done, c->last_total = total;
}

static int read_file(const char *path, char **data, long *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  fseek(f, 0, SEEK_END);
  *size = ftell(f);
  fseek(f, 0, SEEK_SET);
  *data = malloc((size_t)*size + 1);
  int ok = fread(*data, 1, (size_t)*size, f) == (size_t)*size;
  fclose(f);
  return ok;
}

TEST(test_synth_write_corpus_uses_gtzan_layout_and_matches_the_tracks) {
  char *tmp = make_tmpdir();
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s/new/corpus", tmp); /* parents are created */
  mf_synth_config cfg = config(0.5, 11);
  cfg.genres = 2, cfg.tracks = 3;
  counter c = {0, 0, 0, 1};
  EXPECT(mf_synth_write_corpus(&cfg, dir, count_progress, &c) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(c.calls, 6);
  EXPECT(c.monotone && c.last_done == 6 && c.last_total == 6, "progress went %d/%d", c.last_done,
         c.last_total);
  for (int g = 0; g < 2; g++)
    for (int i = 0; i < 3; i++) {
      const char *name = mf_synth_genre_name(g);
      char path[PATH_MAX * 2];
      snprintf(path, sizeof path, "%s/%s/%s.%05d.wav", dir, name, name, i);
      mf_audio a;
      mf_status st = mf_audio_read(path, 0, &a);
      EXPECT(st == MF_OK, "%s: %s", path, mf_error());
      if (st) continue;
      int64_t n;
      float *want = render(&cfg, g, i, &n);
      EXPECT_EQ_INT(a.n, n);
      EXPECT_NEAR(a.sample_rate, RATE, 0);
      EXPECT(strstr(a.format, "16"), "%s is %s, expected 16-bit PCM", path, a.format);
      /* 16-bit PCM: within one quantisation step of the rendered samples. */
      double worst = 0;
      for (int64_t k = 0; k < n && k < a.n; k++) worst = fmax(worst, fabs(a.samples[k] - want[k]));
      EXPECT(worst <= 1.0 / 32768 + 1e-7, "%s differs from the render by %g", path, worst);
      free(want);
      mf_audio_free(&a);
    }
  remove_tree(tmp);
  free(tmp);
}

TEST(test_synth_write_corpus_is_independent_of_thread_count) {
  char *tmp = make_tmpdir();
  char d1[PATH_MAX], d2[PATH_MAX];
  snprintf(d1, sizeof d1, "%s/one", tmp);
  snprintf(d2, sizeof d2, "%s/two", tmp);
  mf_synth_config cfg = config(0.5, 5);
  cfg.genres = 3, cfg.tracks = 2;
  const int threads = mf_num_threads();
  mf_set_num_threads(1);
  EXPECT(mf_synth_write_corpus(&cfg, d1, NULL, NULL) == MF_OK, "%s", mf_error());
  mf_set_num_threads(threads > 1 ? threads : 2);
  EXPECT(mf_synth_write_corpus(&cfg, d2, NULL, NULL) == MF_OK, "%s", mf_error());
  mf_set_num_threads(threads);
  for (int g = 0; g < 3; g++)
    for (int i = 0; i < 2; i++) {
      const char *name = mf_synth_genre_name(g);
      char p1[PATH_MAX * 2], p2[PATH_MAX * 2];
      snprintf(p1, sizeof p1, "%s/%s/%s.%05d.wav", d1, name, name, i);
      snprintf(p2, sizeof p2, "%s/%s/%s.%05d.wav", d2, name, name, i);
      char *a = NULL, *b = NULL;
      long na = 0, nb = 0;
      EXPECT(read_file(p1, &a, &na) && read_file(p2, &b, &nb), "cannot read %s or %s", p1, p2);
      EXPECT(na == nb && na > 44 && !memcmp(a, b, (size_t)na), "%s and %s differ", p1, p2);
      free(a);
      free(b);
    }
  remove_tree(tmp);
  free(tmp);
}

TEST(test_synth_write_corpus_replaces_its_own_files_only) {
  char *dir = make_tmpdir();
  mf_synth_config cfg = config(0.25, 1);
  cfg.genres = 1, cfg.tracks = 2;
  EXPECT(mf_synth_write_corpus(&cfg, dir, NULL, NULL) == MF_OK, "%s", mf_error());
  cfg.seed = 2; /* a second run over the first replaces its WAV files */
  EXPECT(mf_synth_write_corpus(&cfg, dir, NULL, NULL) == MF_OK, "rewrite: %s", mf_error());
  char path[PATH_MAX * 2];
  snprintf(path, sizeof path, "%s/electronic/electronic.00001.wav", dir);
  FILE *f = fopen(path, "w");
  fputs("my notes, not a WAV file\n", f);
  fclose(f);
  mf_status st = mf_synth_write_corpus(&cfg, dir, NULL, NULL);
  EXPECT(st != MF_OK, "a non-WAV file at a corpus path was overwritten");
  EXPECT(strstr(mf_error(), path), "message '%s' does not name %s", mf_error(), path);
  char *data = NULL;
  long size = 0;
  EXPECT(read_file(path, &data, &size) && size > 0 && !strncmp(data, "my notes", 8),
         "the user's file was changed");
  free(data);
  /* A file where a genre folder should be. */
  char *dir2 = make_tmpdir();
  snprintf(path, sizeof path, "%s/electronic", dir2);
  f = fopen(path, "w");
  fclose(f);
  st = mf_synth_write_corpus(&cfg, dir2, NULL, NULL);
  EXPECT(st != MF_OK && strstr(mf_error(), path), "got %d: %s", st, mf_error());
  remove_tree(dir);
  remove_tree(dir2);
  free(dir);
  free(dir2);
}
