/* Audio input and output: every format libsndfile reads comes back as the mono float signal
 * that was written, resampling keeps pitch and level at librosa's output length, and
 * failures say which file and why. Test files are written at run time with libsndfile
 * itself into a fresh temporary folder, one second or two of audio each. */
#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <sndfile.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "melforge/audio.h"
#include "mftest.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* ---- scratch folder ---------------------------------------------------------------------- */

typedef struct scratch {
  char dir[PATH_MAX];
  char path[PATH_MAX]; /* last path built with at() */
} scratch;

static void scratch_open(scratch *s) {
  const char *base = getenv("TMPDIR");
  int k = snprintf(s->dir, sizeof s->dir, "%s/mf_audio_XXXXXX", base && *base ? base : "/tmp");
  if (k < 0 || (size_t)k >= sizeof s->dir || !mkdtemp(s->dir)) {
    perror("mkdtemp");
    abort();
  }
}

static const char *at(scratch *s, const char *name) {
  int k = snprintf(s->path, sizeof s->path, "%s/%s", s->dir, name);
  if (k < 0 || (size_t)k >= sizeof s->path) abort(); /* TMPDIR absurdly long */
  return s->path;
}

/* Names left in the folder, so a test can see that no temporary file survived. */
static int scratch_count(const scratch *s) {
  DIR *d = opendir(s->dir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  if (d) closedir(d);
  return n;
}

static void scratch_close(scratch *s) {
  DIR *d = opendir(s->dir);
  char p[PATH_MAX * 2];
  for (struct dirent *e; d && (e = readdir(d));) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    int k = snprintf(p, sizeof p, "%s/%s", s->dir, e->d_name);
    if (k > 0 && (size_t)k < sizeof p && remove(p) != 0) perror(p);
  }
  if (d) closedir(d);
  rmdir(s->dir);
}

/* ---- writing test files with libsndfile ------------------------------------------------- */

/* Writes interleaved frames; returns 0 (with a notice) when this libsndfile cannot write the
 * format at all, so an optional encoder missing from a build skips rather than fails. */
static int write_float(const char *path, int format, int rate, int ch, const float *x,
                       int64_t frames) {
  SF_INFO info = {.samplerate = rate, .channels = ch, .format = format};
  SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
  if (!sf) {
    printf("  notice: this libsndfile cannot write %s (%s); skipping that case\n", path,
           sf_strerror(NULL));
    return 0;
  }
  EXPECT(sf_writef_float(sf, x, frames) == frames, "writing %s: %s", path, sf_strerror(sf));
  EXPECT(sf_close(sf) == 0, "closing %s", path);
  return 1;
}

static void write_short(const char *path, int format, int rate, int ch, const short *x,
                        int64_t frames) {
  SF_INFO info = {.samplerate = rate, .channels = ch, .format = format};
  SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
  EXPECT(sf != NULL, "creating %s: %s", path, sf_strerror(NULL));
  if (!sf) return;
  EXPECT(sf_writef_short(sf, x, frames) == frames, "writing %s: %s", path, sf_strerror(sf));
  EXPECT(sf_close(sf) == 0, "closing %s", path);
}

static float tone(double freq, double amp, double rate, int64_t i) {
  return (float)(amp * sin(2 * M_PI * freq * (double)i / rate));
}

/* Integer PCM with distinct content per channel: channel c is a tone at 220 * (c + 1) Hz
 * plus a little deterministic noise, so any mixing or ordering mistake shows. */
static short *pcm_signal(int rate, int ch, int64_t frames) {
  short *x = malloc((size_t)(frames * ch) * sizeof *x);
  uint32_t r = 12345;
  for (int64_t i = 0; i < frames; i++)
    for (int c = 0; c < ch; c++) {
      r = r * 1664525u + 1013904223u;
      double v = 0.6 * sin(2 * M_PI * 220.0 * (c + 1) * (double)i / rate);
      x[i * ch + c] = (short)lrint(v * 32767 + (double)((int)(r >> 24) - 128));
    }
  x[0] = SHRT_MIN; /* the extremes of the range must survive too */
  x[ch] = SHRT_MAX;
  return x;
}

/* ---- signal measurements ---------------------------------------------------------------- */

/* Frequency from upward zero crossings located by linear interpolation between samples,
 * over x[from, to): precise to well under 0.1 % for a clean tone of a second. */
static double zc_frequency(const float *x, int64_t from, int64_t to, double rate) {
  double first = -1, last = -1;
  int64_t count = 0;
  for (int64_t i = from; i + 1 < to; i++)
    if (x[i] <= 0 && x[i + 1] > 0) {
      double t = (double)i + (double)x[i] / ((double)x[i] - (double)x[i + 1]);
      if (first < 0) first = t;
      last = t;
      count++;
    }
  if (count < 2) return 0;
  return (double)(count - 1) * rate / (last - first);
}

static double rms(const float *x, int64_t from, int64_t to) {
  double s = 0;
  for (int64_t i = from; i < to; i++) s += (double)x[i] * x[i];
  return sqrt(s / (double)(to - from));
}

/* The best normalised correlation between a[from, to) and b shifted by up to max_lag
 * samples either way: lossy codecs may delay the signal slightly; the waveform must match. */
static double best_correlation(const float *a, const float *b, int64_t nb, int64_t from, int64_t to,
                               int max_lag) {
  double best = -1;
  for (int lag = -max_lag; lag <= max_lag; lag++) {
    if (from + lag < 0 || to + lag > nb) continue;
    double sab = 0, saa = 0, sbb = 0;
    for (int64_t i = from; i < to; i++) {
      double u = a[i], v = b[i + lag];
      sab += u * v;
      saa += u * u;
      sbb += v * v;
    }
    double c = sab / sqrt(saa * sbb + 1e-30);
    if (c > best) best = c;
  }
  return best;
}

/* ---- lossless formats: exact samples ---------------------------------------------------- */

/* libsndfile reads 16-bit PCM as s / 32768 exactly, so a lossless round trip is exact; a
 * stereo file reads as the average of its channels, rounded once from the exact sum. */
static void check_pcm16_file(const char *name, int format, int rate, int ch, int64_t frames,
                             const char *format_words) {
  scratch s;
  scratch_open(&s);
  short *x = pcm_signal(rate, ch, frames);
  write_short(at(&s, name), format, rate, ch, x, frames);
  mf_audio a;
  mf_status st = mf_audio_read(s.path, 0, &a);
  EXPECT(st == MF_OK, "%s: %s", name, mf_error());
  EXPECT_EQ_INT(a.n, frames);
  EXPECT_NEAR(a.sample_rate, rate, 0);
  EXPECT_NEAR(a.source_rate, rate, 0);
  EXPECT_EQ_INT(a.source_channels, ch);
  EXPECT(strstr(a.format, format_words) != NULL, "%s: format \"%s\" lacks \"%s\"", name, a.format,
         format_words);
  int64_t wrong = 0;
  for (int64_t i = 0; st == MF_OK && i < frames; i++) {
    double sum = 0;
    for (int c = 0; c < ch; c++) sum += x[i * ch + c] / 32768.0;
    float want = (float)(sum / ch);
    if (a.samples[i] != want && wrong++ < 3)
      EXPECT(0, "%s: sample %lld = %.9g, expected %.9g", name, (long long)i, a.samples[i], want);
  }
  EXPECT_EQ_INT(wrong, 0);
  mf_audio_free(&a);
  free(x);
  scratch_close(&s);
}

TEST(test_read_wav_pcm16_mono_gives_exact_samples) {
  check_pcm16_file("mono.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 22050, 1, 22050,
                   "WAV (Microsoft) Signed 16 bit PCM");
}

TEST(test_read_aiff_stereo_48000_averages_channels_exactly) {
  check_pcm16_file("stereo.aiff", SF_FORMAT_AIFF | SF_FORMAT_PCM_16, 48000, 2, 48000, "AIFF");
}

TEST(test_read_au_gtzan_format_gives_exact_samples) {
  /* GTZAN's originals: Sun .au, 16-bit big-endian PCM, mono, 22050 Hz. */
  check_pcm16_file("blues.00000.au", SF_FORMAT_AU | SF_FORMAT_PCM_16 | SF_ENDIAN_BIG, 22050, 1,
                   33075, "AU (Sun/NeXT) Signed 16 bit PCM");
}

TEST(test_read_flac_stereo_44100_is_lossless) {
  check_pcm16_file("stereo.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 44100, 2, 44100, "FLAC");
}

TEST(test_read_wav_8000_hz_keeps_its_rate_when_target_is_zero) {
  check_pcm16_file("phone.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 8000, 1, 8000, "WAV");
}

TEST(test_read_wav_float_stereo_averages_channels_across_blocks) {
  /* 2 s of stereo at 44100 is 88200 frames: more than one 64k-frame read block. */
  scratch s;
  scratch_open(&s);
  const int rate = 44100;
  const int64_t frames = 2 * rate;
  float *x = malloc((size_t)frames * 2 * sizeof *x);
  for (int64_t i = 0; i < frames; i++) {
    x[2 * i] = tone(440, 0.7, rate, i);
    x[2 * i + 1] = tone(1234.5, 0.3, rate, i) + 0.1f; /* different, with an offset */
  }
  x[2 * 70000] = 1.75f; /* float WAV keeps values past full scale; nothing clips them */
  EXPECT(write_float(at(&s, "float.wav"), SF_FORMAT_WAV | SF_FORMAT_FLOAT, rate, 2, x, frames),
         "float WAV must be writable");
  mf_audio a;
  EXPECT(mf_audio_read(s.path, 0, &a) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(a.n, frames);
  EXPECT_EQ_INT(a.source_channels, 2);
  EXPECT(strstr(a.format, "32 bit float") != NULL, "format \"%s\"", a.format);
  int64_t wrong = 0;
  for (int64_t i = 0; i < a.n; i++) {
    float want = (float)(((double)x[2 * i] + (double)x[2 * i + 1]) / 2);
    if (a.samples[i] != want) wrong++;
  }
  EXPECT_EQ_INT(wrong, 0);
  EXPECT_NEAR(a.samples[70000], (1.75 + x[2 * 70000 + 1]) / 2, 1e-7);
  mf_audio_free(&a);
  free(x);
  scratch_close(&s);
}

TEST(test_read_three_channels_averages_all_of_them) {
  scratch s;
  scratch_open(&s);
  const int64_t frames = 1000;
  float x[3 * 1000];
  for (int64_t i = 0; i < frames; i++) {
    x[3 * i] = 0.5f;
    x[3 * i + 1] = -0.25f;
    x[3 * i + 2] = (float)i / 2000.0f;
  }
  write_float(at(&s, "three.wav"), SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 3, x, frames);
  mf_audio a;
  EXPECT(mf_audio_read(s.path, 0, &a) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(a.n, frames);
  for (int64_t i = 0; i < a.n; i++) EXPECT_NEAR(a.samples[i], (0.25 + i / 2000.0) / 3, 1e-7);
  mf_audio_free(&a);
  scratch_close(&s);
}

/* ---- lossy formats: the same tone at the same level --------------------------------------- */

/* A 440 Hz tone at amplitude 0.5, 1 s, through a lossy codec and back: the length stays
 * within 2 % (codecs pad to whole frames; libsndfile trims what it knows about), and over the
 * middle of the signal the frequency is within 0.2 %, the RMS level within 3 % and the waveform
 * correlates above 0.99 with the original at the best lag within 128 samples, more than one
 * period of the tone, so a codec delay of any length still finds its best alignment. */
static void check_lossy(const char *name, int format, int rate, int ch) {
  scratch s;
  scratch_open(&s);
  const int64_t frames = rate;
  float *x = malloc((size_t)(frames * ch) * sizeof *x), *ref = malloc((size_t)frames * sizeof *ref);
  for (int64_t i = 0; i < frames; i++) {
    ref[i] = tone(440, 0.5, rate, i);
    for (int c = 0; c < ch; c++) x[i * ch + c] = ref[i];
  }
  if (write_float(at(&s, name), format, rate, ch, x, frames)) {
    mf_audio a;
    mf_status st = mf_audio_read(s.path, 0, &a);
    EXPECT(st == MF_OK, "%s: %s", name, mf_error());
    if (st == MF_OK) {
      EXPECT(llabs(a.n - frames) <= frames / 50, "%s: %lld samples, wrote %lld", name,
             (long long)a.n, (long long)frames);
      EXPECT_NEAR(a.source_rate, rate, 0);
      EXPECT_EQ_INT(a.source_channels, ch);
      int64_t from = frames / 5, to = frames * 4 / 5;
      if (to > a.n) to = a.n;
      double f = zc_frequency(a.samples, from, to, rate);
      EXPECT(fabs(f - 440) <= 440 * 0.002, "%s: frequency %.3f Hz, wrote 440 Hz", name, f);
      double level = rms(a.samples, from, to);
      EXPECT(fabs(level - 0.5 / sqrt(2)) <= 0.03 * 0.5 / sqrt(2), "%s: RMS %.4f, wrote %.4f", name,
             level, 0.5 / sqrt(2));
      double c = best_correlation(ref, a.samples, a.n, from, to, 128);
      EXPECT(c > 0.99, "%s: correlation %.4f with the original", name, c);
      printf("  %s (%s): n=%lld f=%.3f Hz rms=%.4f corr=%.5f\n", name, a.format, (long long)a.n, f,
             level, c);
    }
    mf_audio_free(&a);
  }
  free(x);
  free(ref);
  scratch_close(&s);
}

TEST(test_read_ogg_vorbis_stereo_keeps_tone_and_level) {
  check_lossy("tone.ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, 44100, 2);
}

TEST(test_read_opus_keeps_tone_and_level) {
  check_lossy("tone.opus", SF_FORMAT_OGG | SF_FORMAT_OPUS, 48000, 1);
}

TEST(test_read_mp3_keeps_tone_and_level) {
  /* Debian's libsndfile decodes MPEG through mpg123 and encodes through LAME; a build
   * without LAME skips this case inside write_float. */
  check_lossy("tone.mp3", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, 44100, 2);
}

TEST(test_read_mp3_mono_22050) {
  check_lossy("tone22.mp3", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, 22050, 1);
}

/* ---- resampling ------------------------------------------------------------------------- */

static float *sine(double freq, double amp, double rate, int64_t n) {
  float *x = malloc((size_t)n * sizeof *x);
  for (int64_t i = 0; i < n; i++) x[i] = tone(freq, amp, rate, i);
  return x;
}

/* The tone in the middle (away from the filter's edge effects) keeps its frequency within
 * 0.05 % and its amplitude within 1 %: a 1 kHz tone sits deep in HQ's passband (flat to
 * about 0.01 dB), so a larger error would be a real resampling fault. */
static void check_tone(const float *y, int64_t n, double rate, double freq, double amp) {
  int64_t from = n / 10, to = n - n / 10;
  double f = zc_frequency(y, from, to, rate);
  EXPECT(fabs(f - freq) <= freq * 5e-4, "frequency %.4f Hz, expected %.1f Hz", f, freq);
  double a = rms(y, from, to) * sqrt(2);
  EXPECT(fabs(a - amp) <= amp * 0.01, "amplitude %.5f, expected %.5f", a, amp);
}

TEST(test_resample_44100_to_22050_keeps_1khz_frequency_and_amplitude) {
  float *x = sine(1000, 0.5, 44100, 44100), *y = NULL;
  int64_t ny = -1;
  EXPECT(mf_audio_resample(x, 44100, 44100, 22050, &y, &ny) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(ny, 22050);
  if (y) check_tone(y, ny, 22050, 1000, 0.5);
  free(x);
  free(y);
}

TEST(test_resample_8000_to_22050_upsamples_a_tone) {
  float *x = sine(1000, 0.8, 8000, 8000), *y = NULL;
  int64_t ny = -1;
  EXPECT(mf_audio_resample(x, 8000, 8000, 22050, &y, &ny) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(ny, 22050);
  if (y) check_tone(y, ny, 22050, 1000, 0.8);
  free(x);
  free(y);
}

/* Level of a resampled 44100 Hz tone at 22050 Hz relative to its input level, in dB, over
 * the middle of the signal. */
static double level_after_resampling_db(double freq) {
  float *x = sine(freq, 0.5, 44100, 44100), *y = NULL;
  int64_t ny = 0;
  EXPECT(mf_audio_resample(x, 44100, 44100, 22050, &y, &ny) == MF_OK, "%s", mf_error());
  double level = y ? rms(y, ny / 10, ny - ny / 10) / (0.5 / sqrt(2)) : 1;
  free(x);
  free(y);
  return 20 * log10(level + 1e-30);
}

TEST(test_resample_uses_soxr_hq_flat_passband_and_no_aliasing) {
  /* librosa's default is soxr_hq, and the filter decides what a model sees near Nyquist, so
   * the quality level is part of the contract. 44100 -> 22050 (new Nyquist 11025 Hz):
   * - 9 and 10 kHz pass within 0.1 dB (LQ's wider roll-off takes 10 kHz down by 22 dB);
   * - 11 kHz lies in HQ's transition band and comes out 99.5 dB down with libsoxr 0.1.3:
   *   between 90 and 110 dB here, where MQ gives 82 dB and VHQ 133 dB;
   * - 13 kHz, which would alias to 9050 Hz, is more than 120 dB down (about -142 dB). */
  double pass9 = level_after_resampling_db(9000), pass10 = level_after_resampling_db(10000);
  EXPECT(fabs(pass9) < 0.1, "9 kHz: %.2f dB", pass9);
  EXPECT(fabs(pass10) < 0.1, "10 kHz: %.2f dB", pass10);
  double edge = level_after_resampling_db(11000);
  EXPECT(edge < -90 && edge > -110, "11 kHz at %.1f dB: not soxr's HQ filter", edge);
  double alias = level_after_resampling_db(13000);
  EXPECT(alias < -120, "13 kHz leaked through at %.1f dB", alias);
}

TEST(test_resample_output_length_is_librosas_ceil) {
  /* libsoxr alone gives round(n * to / from); librosa pads that to ceil(n * to / from) with
   * a zero. Cases where the two differ (fraction below one half) and where they agree. */
  const struct {
    int64_t n;
    double from, to;
    int64_t want;
    int padded; /* soxr's own length is one short: the last sample is librosa's zero pad */
  } cases[] = {
      {44100, 48000, 22050, 20259, 1}, /* 20258.4375 */
      {99999, 8000, 22050, 275623, 1}, /* 275622.24 */
      {12345, 44100, 22050, 6173, 0},  /* 6172.5 rounds up in soxr too */
      {1001, 48000, 22050, 460, 0},    /* 459.83 */
      {7, 44100, 16000, 3, 0},         /* 2.54 */
      {1, 48000, 22050, 1, 1},         /* 0.46: soxr alone gives nothing */
      {3, 22050, 44100, 6, 0},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    float *x = sine(440, 0.5, cases[k].from, cases[k].n), *y = NULL;
    int64_t ny = -1;
    EXPECT(mf_audio_resample(x, cases[k].n, cases[k].from, cases[k].to, &y, &ny) == MF_OK, "%s",
           mf_error());
    EXPECT(ny == cases[k].want, "%lld samples at %g -> %g Hz: got %lld, expected %lld",
           (long long)cases[k].n, cases[k].from, cases[k].to, (long long)ny,
           (long long)cases[k].want);
    if (cases[k].padded && y && ny > 0)
      EXPECT(y[ny - 1] == 0.0f, "case %zu: pad is %g", k, y[ny - 1]);
    free(x);
    free(y);
  }
}

TEST(test_resample_same_rate_returns_identical_samples) {
  float *x = sine(440, 0.5, 22050, 5000), *y = NULL;
  int64_t ny = -1;
  EXPECT(mf_audio_resample(x, 5000, 22050, 22050, &y, &ny) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(ny, 5000);
  EXPECT(y && y != x && memcmp(x, y, 5000 * sizeof *x) == 0, "same-rate output differs");
  free(x);
  free(y);
}

TEST(test_resample_empty_input_gives_empty_output) {
  float *y = (float *)1;
  int64_t ny = -1;
  EXPECT(mf_audio_resample(NULL, 0, 44100, 22050, &y, &ny) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(ny, 0);
  EXPECT(y == NULL, "empty output should be NULL");
}

TEST(test_resample_rejects_invalid_rates) {
  float x[4] = {0}, *y = NULL;
  int64_t ny = 0;
  EXPECT_EQ_INT(mf_audio_resample(x, 4, 0, 22050, &y, &ny), MF_EINVAL);
  EXPECT_EQ_INT(mf_audio_resample(x, 4, 44100, -1, &y, &ny), MF_EINVAL);
  EXPECT_EQ_INT(mf_audio_resample(x, 4, NAN, 22050, &y, &ny), MF_EINVAL);
  EXPECT_EQ_INT(mf_audio_resample(x, 4, 44100, INFINITY, &y, &ny), MF_EINVAL);
  EXPECT_EQ_INT(mf_audio_resample(NULL, 4, 44100, 22050, &y, &ny), MF_EINVAL);
  EXPECT(strstr(mf_error(), "mf_audio_resample") != NULL, "message: %s", mf_error());
}

TEST(test_read_resamples_while_streaming_like_resampling_the_whole_signal) {
  /* Reading at 22050 feeds soxr block by block (64k stereo frames); the result must be the
   * one-shot resampling of the file's mono signal, bit for bit, at librosa's length. */
  scratch s;
  scratch_open(&s);
  const int rate = 44100;
  const int64_t frames = 2 * rate + 17;
  float *x = malloc((size_t)frames * 2 * sizeof *x);
  for (int64_t i = 0; i < frames; i++) {
    x[2 * i] = tone(1000, 0.5, rate, i);
    x[2 * i + 1] = tone(1000, 0.3, rate, i);
  }
  write_float(at(&s, "stream.wav"), SF_FORMAT_WAV | SF_FORMAT_FLOAT, rate, 2, x, frames);
  mf_audio native, resampled;
  EXPECT(mf_audio_read(s.path, 0, &native) == MF_OK, "%s", mf_error());
  EXPECT(mf_audio_read(s.path, 22050, &resampled) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(resampled.n, (int64_t)ceil(frames * 0.5));
  EXPECT_NEAR(resampled.sample_rate, 22050, 0);
  EXPECT_NEAR(resampled.source_rate, 44100, 0);
  float *y = NULL;
  int64_t ny = 0;
  EXPECT(mf_audio_resample(native.samples, native.n, 44100, 22050, &y, &ny) == MF_OK, "%s",
         mf_error());
  EXPECT_EQ_INT(ny, resampled.n);
  EXPECT(y && resampled.samples && memcmp(y, resampled.samples, (size_t)ny * sizeof *y) == 0,
         "streamed and one-shot resampling differ");
  if (resampled.samples) check_tone(resampled.samples, resampled.n, 22050, 1000, 0.4);
  free(y);
  mf_audio_free(&native);
  mf_audio_free(&resampled);
  free(x);
  scratch_close(&s);
}

TEST(test_read_at_the_files_own_rate_returns_samples_untouched) {
  scratch s;
  scratch_open(&s);
  float *x = sine(440, 0.5, 22050, 22050);
  x[100] = 0.123456789f; /* any resampler would smear a lone value into its neighbours */
  write_float(at(&s, "own.wav"), SF_FORMAT_WAV | SF_FORMAT_FLOAT, 22050, 1, x, 22050);
  mf_audio a;
  EXPECT(mf_audio_read(s.path, 22050, &a) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(a.n, 22050);
  EXPECT(a.samples && memcmp(a.samples, x, 22050 * sizeof *x) == 0, "samples changed");
  mf_audio_free(&a);
  free(x);
  scratch_close(&s);
}

TEST(test_read_8000_hz_file_upsampled_to_22050) {
  scratch s;
  scratch_open(&s);
  float *x = sine(1000, 0.5, 8000, 8000);
  write_float(at(&s, "up.wav"), SF_FORMAT_WAV | SF_FORMAT_FLOAT, 8000, 1, x, 8000);
  mf_audio a;
  EXPECT(mf_audio_read(s.path, 22050, &a) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(a.n, 22050);
  EXPECT_NEAR(a.sample_rate, 22050, 0);
  EXPECT_NEAR(a.source_rate, 8000, 0);
  if (a.samples) check_tone(a.samples, a.n, 22050, 1000, 0.5);
  mf_audio_free(&a);
  free(x);
  scratch_close(&s);
}

/* ---- errors ----------------------------------------------------------------------------- */

TEST(test_read_missing_file_is_not_found_and_names_the_path) {
  scratch s;
  scratch_open(&s);
  mf_audio a;
  EXPECT_EQ_INT(mf_audio_read(at(&s, "nope.wav"), 22050, &a), MF_ENOTFOUND);
  EXPECT(strstr(mf_error(), s.path) != NULL, "message lacks the path: %s", mf_error());
  EXPECT(a.samples == NULL && a.n == 0, "failed read must leave an empty result");
  mf_audio_free(&a);
  scratch_close(&s);
}

TEST(test_read_text_file_named_wav_is_a_format_error) {
  scratch s;
  scratch_open(&s);
  FILE *f = fopen(at(&s, "notes.wav"), "w");
  fputs("these are not the samples you are looking for\n", f);
  fclose(f);
  mf_audio a;
  EXPECT_EQ_INT(mf_audio_read(s.path, 22050, &a), MF_EFORMAT);
  EXPECT(strstr(mf_error(), s.path) != NULL, "message lacks the path: %s", mf_error());
  EXPECT(strstr(mf_error(), "not recognised") != NULL, "message lacks libsndfile's reason: %s",
         mf_error());
  mf_audio_free(&a);
  scratch_close(&s);
}

TEST(test_read_folder_is_a_format_error) {
  scratch s;
  scratch_open(&s);
  mf_audio a;
  EXPECT_EQ_INT(mf_audio_read(s.dir, 0, &a), MF_EFORMAT);
  EXPECT(strstr(mf_error(), "folder") != NULL, "message: %s", mf_error());
  scratch_close(&s);
}

TEST(test_read_empty_wav_gives_zero_samples_at_any_rate) {
  scratch s;
  scratch_open(&s);
  write_float(at(&s, "empty.wav"), SF_FORMAT_WAV | SF_FORMAT_PCM_16, 44100, 2, NULL, 0);
  for (int k = 0; k < 2; k++) { /* as is, and through the resampler */
    mf_audio a;
    EXPECT(mf_audio_read(s.path, k ? 22050 : 0, &a) == MF_OK, "%s", mf_error());
    EXPECT_EQ_INT(a.n, 0);
    EXPECT_EQ_INT(a.source_channels, 2);
    mf_audio_free(&a);
  }
  scratch_close(&s);
}

TEST(test_read_float_wav_with_nan_is_a_format_error) {
  scratch s;
  scratch_open(&s);
  float x[300] = {0};
  x[257] = NAN;
  write_float(at(&s, "nan.wav"), SF_FORMAT_WAV | SF_FORMAT_FLOAT, 22050, 1, x, 300);
  mf_audio a;
  EXPECT_EQ_INT(mf_audio_read(s.path, 0, &a), MF_EFORMAT);
  EXPECT(strstr(mf_error(), "frame 257") != NULL, "message: %s", mf_error());
  scratch_close(&s);
}

TEST(test_read_rejects_negative_target_rate) {
  mf_audio a;
  EXPECT_EQ_INT(mf_audio_read("whatever.wav", -22050, &a), MF_EINVAL);
  EXPECT_EQ_INT(mf_audio_read("whatever.wav", NAN, &a), MF_EINVAL);
}

/* ---- writing ---------------------------------------------------------------------------- */

TEST(test_write_wav_float_round_trips_exactly_and_leaves_no_temporary_file) {
  scratch s;
  scratch_open(&s);
  float *x = sine(440, 0.9, 22050, 22050);
  x[7] = 1.5f; /* float WAV stores values past full scale as they are */
  EXPECT(mf_audio_write_wav(at(&s, "out.wav"), x, 22050, 22050, 1) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(scratch_count(&s), 1);
  mf_audio a;
  EXPECT(mf_audio_read(s.path, 0, &a) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(a.n, 22050);
  EXPECT(a.samples && memcmp(a.samples, x, 22050 * sizeof *x) == 0, "float WAV not exact");
  EXPECT(strstr(a.format, "32 bit float") != NULL, "format \"%s\"", a.format);
  mf_audio_free(&a);
  free(x);
  scratch_close(&s);
}

TEST(test_write_wav_pcm16_round_trips_within_quantisation_and_clips) {
  /* Written with clipping, libsndfile scales by 32768 and rounds (error <= 0.5 / 32768);
   * +1.0 saturates at 32767 / 32768 (error 1 / 32768). Beyond +-1 the value clips rather
   * than wrapping around to the other extreme. */
  scratch s;
  scratch_open(&s);
  const int64_t n = 11025;
  float *x = sine(440, 0.99, 11025, n);
  x[0] = 1.0f;
  x[1] = -1.0f;
  x[2] = 1.5f;
  x[3] = -3.0f;
  EXPECT(mf_audio_write_wav(at(&s, "pcm.wav"), x, n, 11025, 0) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(scratch_count(&s), 1);
  mf_audio a;
  EXPECT(mf_audio_read(s.path, 0, &a) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(a.n, n);
  EXPECT(strstr(a.format, "16 bit PCM") != NULL, "format \"%s\"", a.format);
  if (a.n == n) {
    EXPECT_NEAR(a.samples[2], 32767.0 / 32768, 0);
    EXPECT_NEAR(a.samples[3], -1.0, 0);
    double worst = 0;
    for (int64_t i = 0; i < n; i++)
      if (i != 2 && i != 3) worst = fmax(worst, fabs((double)a.samples[i] - x[i]));
    EXPECT(worst <= 1.0 / 32768, "worst error %.3g > 1/32768", worst);
  }
  mf_audio_free(&a);
  free(x);
  scratch_close(&s);
}

TEST(test_write_wav_replaces_an_existing_file) {
  scratch s;
  scratch_open(&s);
  float one[3] = {0.25f, 0.5f, 0.75f}, two[2] = {-0.5f, 0.125f};
  EXPECT(mf_audio_write_wav(at(&s, "r.wav"), one, 3, 8000, 1) == MF_OK, "%s", mf_error());
  EXPECT(mf_audio_write_wav(s.path, two, 2, 16000, 1) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(scratch_count(&s), 1);
  mf_audio a;
  EXPECT(mf_audio_read(s.path, 0, &a) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(a.n, 2);
  EXPECT_NEAR(a.source_rate, 16000, 0);
  if (a.n == 2) EXPECT(a.samples[0] == -0.5f && a.samples[1] == 0.125f, "old content");
  mf_audio_free(&a);
  scratch_close(&s);
}

TEST(test_write_wav_into_a_missing_folder_fails_and_names_it) {
  scratch s;
  scratch_open(&s);
  float x[4] = {0};
  EXPECT_EQ_INT(mf_audio_write_wav(at(&s, "no/such/dir/x.wav"), x, 4, 22050, 0), MF_EIO);
  EXPECT(strstr(mf_error(), s.path) != NULL, "message: %s", mf_error());
  EXPECT_EQ_INT(scratch_count(&s), 0);
  scratch_close(&s);
}

TEST(test_write_wav_rejects_bad_rates_and_non_finite_samples) {
  scratch s;
  scratch_open(&s);
  float x[4] = {0, 0.5f, INFINITY, 0};
  EXPECT_EQ_INT(mf_audio_write_wav(at(&s, "bad.wav"), x, 2, 22050.5, 0), MF_EINVAL);
  EXPECT_EQ_INT(mf_audio_write_wav(s.path, x, 2, 0, 0), MF_EINVAL);
  EXPECT_EQ_INT(mf_audio_write_wav(s.path, x, 4, 22050, 0), MF_EINVAL);
  EXPECT(strstr(mf_error(), "sample 2") != NULL, "message: %s", mf_error());
  EXPECT_EQ_INT(mf_audio_write_wav(s.path, NULL, 4, 22050, 0), MF_EINVAL);
  EXPECT_EQ_INT(scratch_count(&s), 0);
  scratch_close(&s);
}

/* ---- folder scanning -------------------------------------------------------------------- */

TEST(test_is_candidate_accepts_audio_extensions_in_any_case) {
  const char *yes[] = {"a.wav", "b.WAV", "dir/c.Wave", "d.aif",  "e.AIFF",         "f.aifc",
                       "g.au",  "h.snd", "i.flac",     "j.ogg",  "k.oga",          "l.opus",
                       "m.MP3", "n.caf", "o.w64",      "p.RF64", "blues.00000.au", "/x.y/z.flac"};
  const char *no[] = {"a.txt", "wav",  "a.wav.bak", ".wav", "dir.wav/readme",
                      "a.",    "a.mp", "a.mp33",    "",     "a.json"};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
    EXPECT(mf_audio_is_candidate(yes[i]), "%s should be a candidate", yes[i]);
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
    EXPECT(!mf_audio_is_candidate(no[i]), "%s should not be a candidate", no[i]);
  EXPECT(!mf_audio_is_candidate(NULL), "NULL is not a candidate");
}
