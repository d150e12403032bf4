/* synth.c — the built-in demo corpus: renders one track (a genre's sequencer from
 * synth_beats.c or synth_acoustic.c, then reverb, tone, background noise and normalisation) and
 * writes the whole corpus as a GTZAN-style folder tree, rendering tracks in parallel.
 *
 * Every track is a pure function of (seed, genre, index, rate, length): its random draws
 * come from the Philox sub-stream of (genre, index), and it is rendered by one thread from
 * start to end, so the files are bit-identical whatever the thread count or the order in
 * which the threads pick up the tracks.
 */
#include "melforge/synth.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "melforge/audio.h"
#include "melforge/runtime.h"
#include "synth_track.h"

static const struct {
  const char *name;
  void (*play)(track *t);
} GENRES[] = {
    {"electronic", mf__syn_electronic}, {"jazz", mf__syn_jazz},
    {"orchestral", mf__syn_orchestral}, {"rock", mf__syn_rock},
    {"piano", mf__syn_piano_genre},     {"hiphop", mf__syn_hiphop},
};
#define N_GENRES (int)(sizeof GENRES / sizeof GENRES[0])

#define MIN_RATE 8000.0
#define MAX_RATE 192000.0
#define MAX_SECONDS 600.0
#define MAX_TRACKS 100000 /* file names hold five digits */
#define AUX_SECONDS 48.0f /* drum one-shots (cymbals ring for seconds) and chord samples */
#define PEAK 0.891250938f /* -1 dBFS */

mf_synth_config mf_synth_defaults(void) {
  mf_synth_config c = {
      .genres = N_GENRES, .tracks = 20, .seconds = 30.0, .sample_rate = 22050.0, .seed = 42};
  return c;
}

int mf_synth_genre_count(void) { return N_GENRES; }

const char *mf_synth_genre_name(int i) { return i >= 0 && i < N_GENRES ? GENRES[i].name : NULL; }

/* ---- buses ------------------------------------------------------------------------------ */

/* Sub-stream indices under a track's root stream. */
enum { STREAM_PARAM = 0, STREAM_NOISE = 1, STREAM_LAYER0 = 16 };

void mf__syn_layer_begin(track *t, int id) {
  memset(t->layer, 0, (size_t)t->n * sizeof *t->layer);
  t->ev = mf_rng_substream(&t->base, STREAM_LAYER0 + (uint64_t)id);
  t->r = &t->ev;
}

void mf__syn_layer_end(track *t, float gain, float send) {
  const float s = gain * send;
  float *restrict mix = t->mix, *restrict snd = t->send;
  const float *restrict layer = t->layer;
  for (int64_t i = 0; i < t->n; i++) {
    mix[i] += gain * layer[i];
    snd[i] += s * layer[i];
  }
  t->r = &t->param;
}

/* ---- one track -------------------------------------------------------------------------- */

/* Per-thread buffers, reused from track to track. */
typedef struct scratch {
  int64_t n;
  float *send, *layer, *aux, *ks;
  int64_t aux_n;
  int ks_cap;
} scratch;

static void scratch_free(scratch *s) {
  free(s->send);
  free(s->layer);
  free(s->aux);
  free(s->ks);
  memset(s, 0, sizeof *s);
}

static mf_status scratch_init(scratch *s, int64_t n, double rate) {
  memset(s, 0, sizeof *s);
  s->n = n;
  s->aux_n = (int64_t)(AUX_SECONDS * (float)rate);
  /* The lowest plucked note (about 25 Hz) must fit in the Karplus-Strong line. */
  s->ks_cap = 64;
  while (s->ks_cap < (int)(rate / 25.0) + 8) s->ks_cap *= 2;
  s->send = malloc((size_t)n * sizeof(float));
  s->layer = malloc((size_t)n * sizeof(float));
  s->aux = malloc((size_t)s->aux_n * sizeof(float));
  s->ks = calloc((size_t)s->ks_cap, sizeof(float));
  if (!s->send || !s->layer || !s->aux || !s->ks) {
    scratch_free(s);
    return mf_set_error(MF_ENOMEM, "synth: out of memory for a %lld-sample track (%.0f MB)",
                        (long long)n, 3.0 * (double)n * sizeof(float) / 1e6);
  }
  return MF_OK;
}

static double rms(const float *x, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
  return n ? sqrt(s / (double)n) : 0.0;
}

/* The mastering EQ in one pass (the filters' recurrences are independent chains, so one
 * loop keeps them all in flight): optional low-pass `tone`, low and high shelves made by
 * splitting with one-pole filters (x + (gl - 1) low(x) + (gh - 1) high(x)), a peaking bell
 * (adds the SVF band, whose peak gain is 1 / k) and a 25 Hz high-pass against DC and rumble. */
static void master_eq(const track *t, float *x, int64_t n) {
  const float rate = t->rate;
  const float tone = t->tone_hz > 0.0f ? syn_onepole_coef(t->tone_hz, rate) : 1.0f;
  const float gl = powf(10.0f, t->eq_low_db / 20.0f) - 1.0f;
  const float gh = powf(10.0f, t->eq_high_db / 20.0f) - 1.0f;
  const float al = syn_onepole_coef(250.0f, rate), ah = syn_onepole_coef(4000.0f, rate);
  const float ad = syn_onepole_coef(25.0f, rate);
  syn_svf f = {0};
  syn_svf_set(&f, t->eq_mid_hz, 1.0f, rate);
  const float gb = (powf(10.0f, t->eq_mid_db / 20.0f) - 1.0f) * f.k;
  float y0 = 0.0f, lo = 0.0f, hi_lp = 0.0f, dc = 0.0f;
  for (int64_t i = 0; i < n; i++) {
    y0 += tone * (x[i] - y0);
    lo += al * (y0 - lo);
    hi_lp += ah * (y0 - hi_lp);
    const float v = y0 + gl * lo + gh * (y0 - hi_lp);
    float bp;
    (void)syn_svf_tick(&f, v, &bp);
    const float w = v + gb * bp;
    dc += ad * (w - dc);
    x[i] = w - dc;
  }
}

static float peak_of(const float *x, int64_t n) {
  float peak = 0.0f;
  for (int64_t i = 0; i < n; i++) {
    const float a = fabsf(x[i]);
    peak = a > peak ? a : peak;
  }
  return peak;
}

/* Reverb, tone, background noise at the drawn SNR, peak normalisation. */
static mf_status master(track *t, float *out) {
  const int64_t n = t->n;
  if (mf__syn_reverb(t->send, out, n, t->rate, t->rev_size, t->rev_fb, t->rev_damp, 1.0f))
    return mf_set_error(MF_ENOMEM, "synth: out of memory for the reverb");
  if (t->vinyl_hiss > 0.0f) {
    /* Relative to the music's level, so a record's surface sounds the same under any mix. */
    const float g = (float)rms(out, n) / 0.1f;
    memset(t->layer, 0, (size_t)n * sizeof *t->layer);
    mf__syn_vinyl(&t->v, t->layer, n, g * t->vinyl_hiss, t->vinyl_clicks, g * t->vinyl_click);
    for (int64_t i = 0; i < n; i++) out[i] += t->layer[i];
  }
  master_eq(t, out, n);
  if (t->snr_db > 0.0f) {
    float *noise = t->layer;
    for (int64_t i = 0; i < n; i++) noise[i] = syn_noise(&t->v);
    mf__syn_lowpass(noise, n, t->noise_hz, t->rate);
    const double ns = rms(noise, n), sig = rms(out, n);
    if (ns > 0.0 && sig > 0.0) {
      const float g = (float)(sig / ns * pow(10.0, -t->snr_db / 20.0));
      for (int64_t i = 0; i < n; i++) out[i] += g * noise[i];
    }
  }
  if (t->limit > 0.0f) {
    /* A loud master: drive the peaks into soft saturation, as mastering limiters do. */
    const float pk = peak_of(out, n);
    if (pk > 0.0f) {
      const float g = t->limit / pk;
      for (int64_t i = 0; i < n; i++) out[i] = syn_softclip(g * out[i]);
    }
  }
  float peak = 0.0f;
  int64_t bad = 0;
  for (int64_t i = 0; i < n; i++) {
    const float a = fabsf(out[i]);
    peak = a > peak ? a : peak;
    bad += !(a < INFINITY); /* NaN or infinity */
  }
  if (bad) return mf_set_error(MF_EINVAL, "synth: a rendered sample is not finite; this is a bug");
  if (peak > 0.0f) {
    const float g = PEAK / peak;
    for (int64_t i = 0; i < n; i++) out[i] *= g;
  }
  return MF_OK;
}

static mf_status check_rate(double rate) {
  if (!(rate >= MIN_RATE && rate <= MAX_RATE))
    return mf_set_error(MF_EINVAL,
                        "synth: sample rate %g Hz is outside [%g, %g]; 22050 is the usual", rate,
                        MIN_RATE, MAX_RATE);
  return MF_OK;
}

static mf_status render(const mf_synth_config *cfg, int genre, int index, float *out, int64_t n,
                        scratch *s) {
  track t;
  memset(&t, 0, sizeof t);
  const mf_rng root = mf_rng_stream(cfg->seed, MF_RNG_USER);
  t.base = mf_rng_substream(&root, ((uint64_t)(uint32_t)genre << 32) | (uint32_t)index);
  t.param = mf_rng_substream(&t.base, STREAM_PARAM);
  t.r = &t.param;
  mf_rng ns = mf_rng_substream(&t.base, STREAM_NOISE);
  t.v.noise = mf_rng_u32(&ns) | 1u;
  t.v.rate = t.rate = (float)cfg->sample_rate;
  t.v.n = t.n = n;
  t.v.ks = s->ks;
  t.v.ks_cap = s->ks_cap;
  t.mix = out;
  t.send = s->send;
  t.layer = s->layer;
  t.aux = s->aux;
  t.aux_n = s->aux_n;
  t.meter = 4;
  t.swing = 0.5, t.swing_unit = 0.5;
  memset(out, 0, (size_t)n * sizeof *out);
  memset(t.send, 0, (size_t)n * sizeof *t.send);
  GENRES[genre].play(&t);
  mf_status st = master(&t, out);
  if (st) return mf_wrap_error(st, "%s track %d", GENRES[genre].name, index);
  return MF_OK;
}

mf_status mf_synth_track(const mf_synth_config *cfg, int genre, int index, float *out, int64_t n) {
  if (!cfg)
    return mf_set_error(MF_EINVAL, "mf_synth_track: no config; start from mf_synth_defaults()");
  if (genre < 0 || genre >= N_GENRES)
    return mf_set_error(MF_EINVAL, "mf_synth_track: genre %d is outside [0, %d)", genre, N_GENRES);
  if (index < 0)
    return mf_set_error(MF_EINVAL, "mf_synth_track: track index %d is negative", index);
  if (n < 0 || (n > 0 && !out))
    return mf_set_error(MF_EINVAL, "mf_synth_track: %lld samples into %p; pass n >= 0 and a buffer",
                        (long long)n, (void *)out);
  mf_status st = check_rate(cfg->sample_rate);
  if (st) return st;
  if ((double)n > MAX_SECONDS * cfg->sample_rate)
    return mf_set_error(MF_EINVAL, "mf_synth_track: %lld samples is over %g s at %g Hz",
                        (long long)n, MAX_SECONDS, cfg->sample_rate);
  if (n == 0) return MF_OK;
  scratch s;
  if ((st = scratch_init(&s, n, cfg->sample_rate))) return st;
  st = render(cfg, genre, index, out, n, &s);
  scratch_free(&s);
  return st;
}

/* ---- the corpus ------------------------------------------------------------------------- */

static mf_status check_config(const mf_synth_config *cfg) {
  if (!cfg) return mf_set_error(MF_EINVAL, "synth: no config; start from mf_synth_defaults()");
  if (cfg->genres < 1 || cfg->genres > N_GENRES)
    return mf_set_error(MF_EINVAL, "synth: %d genres asked for; there are 1 to %d", cfg->genres,
                        N_GENRES);
  if (cfg->tracks < 1 || cfg->tracks > MAX_TRACKS)
    return mf_set_error(MF_EINVAL, "synth: %d tracks per genre asked for; use 1 to %d", cfg->tracks,
                        MAX_TRACKS);
  if (!(cfg->seconds > 0.0 && cfg->seconds <= MAX_SECONDS))
    return mf_set_error(MF_EINVAL, "synth: track length %g s is outside (0, %g]", cfg->seconds,
                        MAX_SECONDS);
  mf_status st = check_rate(cfg->sample_rate);
  if (st) return st;
  if (cfg->sample_rate != floor(cfg->sample_rate))
    return mf_set_error(MF_EINVAL,
                        "synth: sample rate %g Hz is not a whole number, which a WAV file needs",
                        cfg->sample_rate);
  if ((int64_t)llround(cfg->seconds * cfg->sample_rate) < 1)
    return mf_set_error(MF_EINVAL, "synth: %g s at %g Hz is less than one sample", cfg->seconds,
                        cfg->sample_rate);
  return MF_OK;
}

/* mkdir -p: creates every missing folder along `path`. */
static mf_status make_dirs(const char *path) {
  size_t len = strlen(path);
  char *p = malloc(len + 1);
  if (!p) return mf_set_error(MF_ENOMEM, "out of memory");
  memcpy(p, path, len + 1);
  mf_status st = MF_OK;
  for (size_t i = 1; i <= len && !st; i++) {
    if (p[i] != '/' && p[i] != '\0') continue;
    const char saved = p[i];
    p[i] = '\0';
    struct stat sb;
    if (mkdir(p, 0777) != 0 && errno != EEXIST)
      st = mf_set_error(MF_EIO, "%s: cannot create the folder (%s)", p, strerror(errno));
    else if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode))
      st = mf_set_error(MF_EIO, "%s exists and is not a folder; choose another output folder", p);
    p[i] = saved;
  }
  free(p);
  return st;
}

/* The corpus replaces its own files only: a path it writes may not exist yet, or be a WAV. */
static mf_status check_replaceable(const char *path) {
  struct stat sb;
  if (lstat(path, &sb) != 0) return MF_OK;
  unsigned char h[12] = {0};
  FILE *f = S_ISREG(sb.st_mode) ? fopen(path, "rb") : NULL;
  size_t got = f ? fread(h, 1, sizeof h, f) : 0;
  if (f) fclose(f);
  if (got == sizeof h && !memcmp(h, "RIFF", 4) && !memcmp(h + 8, "WAVE", 4)) return MF_OK;
  return mf_set_error(MF_EIO,
                      "%s exists and is not a WAV file; the synth only replaces its own files, so "
                      "move it away or choose another output folder",
                      path);
}

static char *track_path(const char *dir, int genre, int index) {
  const char *g = GENRES[genre].name;
  size_t size = strlen(dir) + 2 * strlen(g) + 32;
  char *p = malloc(size);
  if (p) snprintf(p, size, "%s/%s/%s.%05d.wav", dir, g, g, index);
  return p;
}

mf_status mf_synth_write_corpus(const mf_synth_config *cfg, const char *dir,
                                void (*progress)(int done, int total, void *user), void *user) {
  mf_status st = check_config(cfg);
  if (st) return st;
  if (!dir || !*dir) return mf_set_error(MF_EINVAL, "synth: no output folder given");
  const int total = cfg->genres * cfg->tracks;
  const int64_t n = (int64_t)llround(cfg->seconds * cfg->sample_rate);
  if ((st = make_dirs(dir))) return st;
  for (int g = 0; g < cfg->genres && !st; g++) {
    char *sub = track_path(dir, g, 0);
    if (!sub) return mf_set_error(MF_ENOMEM, "out of memory");
    *strrchr(sub, '/') = '\0';
    st = make_dirs(sub);
    free(sub);
  }
  /* Refuse before rendering anything, so a wrong folder is left untouched. */
  for (int k = 0; k < total && !st; k++) {
    char *path = track_path(dir, k / cfg->tracks, k % cfg->tracks);
    st = path ? check_replaceable(path) : mf_set_error(MF_ENOMEM, "out of memory");
    free(path);
  }
  if (st) return st;

  int failed = 0, failed_k = total, done = 0;
  mf_status failed_st = MF_OK;
  char failed_msg[1024] = "";
#pragma omp parallel num_threads(mf_num_threads())
  {
    scratch s;
    float *out = malloc((size_t)n * sizeof *out);
    mf_status tst = scratch_init(&s, n, cfg->sample_rate);
    if (!out && !tst) tst = mf_set_error(MF_ENOMEM, "synth: out of memory for a track");
#pragma omp for schedule(dynamic, 1)
    for (int k = 0; k < total; k++) {
      int stop;
#pragma omp atomic read
      stop = failed;
      if (stop) continue;
      const int g = k / cfg->tracks, i = k % cfg->tracks;
      char *path = track_path(dir, g, i);
      mf_status r = tst;
      if (!r && !path) r = mf_set_error(MF_ENOMEM, "out of memory");
      if (!r) r = render(cfg, g, i, out, n, &s);
      if (!r) r = mf_audio_write_wav(path, out, n, cfg->sample_rate, 0);
      free(path);
      if (r) {
        /* Report the first failing track in corpus order, whichever thread saw it. */
#pragma omp critical(mf_synth_failure)
        if (k < failed_k) {
          failed_k = k;
          failed_st = r;
          snprintf(failed_msg, sizeof failed_msg, "%s", mf_error());
        }
#pragma omp atomic write
        failed = 1;
      } else {
#pragma omp critical(mf_synth_progress)
        {
          done++;
          if (progress) progress(done, total, user);
        }
      }
    }
    if (!tst) scratch_free(&s);
    free(out);
  }
  if (failed) return mf_set_error(failed_st, "%s", failed_msg);
  return MF_OK;
}
