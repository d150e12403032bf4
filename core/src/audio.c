/* audio.c — audio files in, mono float at the rate asked for out (libsndfile decodes, libsoxr
 * resamples), and mono float out to WAV.
 *
 * Reading reproduces librosa.load(path, sr=rate, mono=True) with its default res_type
 * "soxr_hq": libsndfile decodes to float exactly as soundfile does (integer PCM scaled by
 * 1 / 2^(bits-1)), channels are averaged, libsoxr resamples at HQ quality, and the result has
 * librosa's length (see sink_finish). The file is read in blocks that are mixed down and fed
 * to a streaming resampler as they arrive, so a long file never sits in memory at its source
 * rate or channel count: peak memory is the output plus one block.
 */
#include "melforge/audio.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sndfile.h>
#include <soxr.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "melforge/dataset.h" /* mf_temp_path_for, mf_publish_file */

/* Interleaved floats per read: 64k stereo frames, 512 KiB. */
enum { BLOCK_SAMPLES = 1 << 17 };

/* The output is first sized from the header's frame count, but never beyond this many
 * samples (512 MiB): past it the buffer grows only as decoded data really arrives, so a
 * header that lies about its length cannot make us allocate gigabytes up front. */
#define MAX_PREALLOC ((size_t)1 << 27)

#define MAX_FLOATS (SIZE_MAX / sizeof(float))

typedef struct growbuf {
  float *data;
  size_t n, cap;
} growbuf;

/* Room for `extra` more values. The first allocation is exact (it comes from a known length);
 * later ones double, so an underestimated length costs O(log) reallocations, and glibc moves
 * large blocks with mremap rather than copying. */
static int reserve(growbuf *b, size_t extra) {
  if (b->cap - b->n >= extra) return 1;
  if (extra > MAX_FLOATS - b->n) return 0;
  size_t need = b->n + extra;
  size_t cap = b->cap && b->cap <= MAX_FLOATS / 2 ? b->cap * 2 : need;
  if (cap < need) cap = need;
  float *p = realloc(b->data, cap * sizeof(float));
  if (!p) return 0;
  b->data = p;
  b->cap = cap;
  return 1;
}

/* Hands the buffer over at its final size. */
static float *growbuf_take(growbuf *b) {
  if (b->n == 0) {
    free(b->data);
    b->data = NULL;
  } else if (b->cap > b->n) {
    float *p = realloc(b->data, b->n * sizeof(float));
    if (p) b->data = p; /* a failed shrink leaves the larger, still valid block */
  }
  float *d = b->data;
  *b = (growbuf){0};
  return d;
}

/* Where mono samples go: straight into the output when no resampling is needed, else
 * through a libsoxr stream. */
typedef struct sink {
  soxr_t soxr;   /* NULL: samples are appended unchanged */
  double ratio;  /* output rate / input rate */
  uint64_t n_in; /* samples pushed so far */
  growbuf out;
  const char *what; /* the file or "mf_audio_resample", for messages */
} sink;

static mf_status sink_init(sink *s, double from, double to, uint64_t expected_in,
                           const char *what) {
  *s = (sink){.ratio = 1.0, .what = what};
  double expected_out = (double)expected_in;
  if (from != to) {
    /* librosa's "soxr_hq" is exactly soxr_quality_spec(SOXR_HQ, 0); float32 in and out
     * selects soxr's single-precision engine, which HQ's 20-bit target allows. The default
     * runtime spec runs one thread: callers parallelise across files instead. */
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
    soxr_error_t err = NULL;
    s->soxr = soxr_create(from, to, 1, &err, &io, &q, NULL);
    if (err || !s->soxr) {
      if (s->soxr) soxr_delete(s->soxr);
      s->soxr = NULL;
      return mf_set_error(MF_EINVAL, "%s: libsoxr cannot resample %g Hz to %g Hz (%s)", what, from,
                          to, err ? err : "unknown error");
    }
    s->ratio = to / from;
    /* +1: room for the zero librosa's length may add (sink_finish), so an exact estimate
     * never triggers a regrowth at the very end. */
    expected_out = ceil((double)expected_in * s->ratio) + 1;
  }
  size_t want = expected_out < (double)MAX_PREALLOC ? (size_t)expected_out : MAX_PREALLOC;
  if (want < 16) want = 16; /* soxr must never be handed a NULL output buffer */
  if (!reserve(&s->out, want))
    return mf_set_error(MF_ENOMEM, "%s: out of memory for %zu output samples", what, want);
  return MF_OK;
}

static void sink_free(sink *s) {
  if (s->soxr) soxr_delete(s->soxr);
  s->soxr = NULL;
  free(s->out.data);
  s->out = (growbuf){0};
}

static mf_status soxr_failed(const sink *s, soxr_error_t err) {
  return mf_set_error(MF_EIO, "%s: libsoxr failed while resampling (%s)", s->what, err);
}

static mf_status out_of_memory(const sink *s) {
  return mf_set_error(MF_ENOMEM,
                      "%s: out of memory after %zu output samples; the audio is too long for "
                      "this machine, cut it into shorter files",
                      s->what, s->out.n);
}

/* Collects what soxr has ready, growing the output only when soxr actually filled it. With
 * `flush` the stream is ended first, which releases the samples held back for the filter. */
static mf_status sink_drain(sink *s, int flush) {
  for (;;) {
    if (s->out.cap == s->out.n && !reserve(&s->out, 4096)) return out_of_memory(s);
    size_t space = s->out.cap - s->out.n, got = 0;
    soxr_error_t err = NULL;
    if (flush) {
      err = soxr_process(s->soxr, NULL, 0, NULL, s->out.data + s->out.n, space, &got);
    } else {
      got = soxr_output(s->soxr, s->out.data + s->out.n, space);
      err = soxr_error(s->soxr);
    }
    if (err) return soxr_failed(s, err);
    s->out.n += got;
    if (got < space) return MF_OK;
  }
}

static mf_status sink_push(sink *s, const float *x, size_t m) {
  s->n_in += m;
  if (!s->soxr) {
    if (!reserve(&s->out, m)) return out_of_memory(s);
    memcpy(s->out.data + s->out.n, x, m * sizeof(float));
    s->out.n += m;
    return MF_OK;
  }
  /* idone == NULL makes soxr take all m samples; what does not fit in the output stays in
   * its FIFO until sink_drain collects it. Chunking the input does not change the output. */
  size_t space = s->out.cap - s->out.n, got = 0;
  soxr_error_t err = soxr_process(s->soxr, x, m, NULL, s->out.data + s->out.n, space, &got);
  if (err) return soxr_failed(s, err);
  s->out.n += got;
  return got == space ? sink_drain(s, 0) : MF_OK;
}

/* Ends the stream and fixes the length. libsoxr, flushed, emits round(n * to / from) samples
 * (halves up); librosa.resample then pads or trims to ceil(n * to / from) (fix=True), so its
 * last sample is a zero whenever the fraction is below one half. We do the same, computing
 * the length exactly as librosa does (n * (to / from) in double, then ceil). */
static mf_status sink_finish(sink *s) {
  if (!s->soxr) return MF_OK;
  mf_status st = s->n_in ? sink_drain(s, 1) : MF_OK;
  soxr_delete(s->soxr);
  s->soxr = NULL;
  if (st != MF_OK) return st;
  double want_d = ceil((double)s->n_in * s->ratio);
  if (!(want_d < (double)MAX_FLOATS)) return out_of_memory(s);
  size_t want = (size_t)want_d;
  if (s->out.n > want) {
    s->out.n = want;
  } else if (s->out.n < want) {
    if (!reserve(&s->out, want - s->out.n)) return out_of_memory(s);
    memset(s->out.data + s->out.n, 0, (want - s->out.n) * sizeof(float));
    s->out.n = want;
  }
  return MF_OK;
}

static int rate_ok(double r) { return isfinite(r) && r > 0; }

mf_status mf_audio_resample(const float *in, int64_t n, double from_rate, double to_rate,
                            float **out, int64_t *n_out) {
  const char *what = "mf_audio_resample";
  if (!out || !n_out) return mf_set_error(MF_EINVAL, "%s: out and n_out must not be NULL", what);
  *out = NULL;
  *n_out = 0;
  if (n < 0 || (n > 0 && !in))
    return mf_set_error(MF_EINVAL, "%s: %lld input samples at %p; pass n >= 0 and a buffer", what,
                        (long long)n, (const void *)in);
  if (!rate_ok(from_rate) || !rate_ok(to_rate))
    return mf_set_error(MF_EINVAL,
                        "%s: sample rates must be positive and finite, got %g Hz -> %g Hz", what,
                        from_rate, to_rate);
  if ((double)n * (to_rate / from_rate) >= (double)MAX_FLOATS)
    return mf_set_error(MF_EINVAL, "%s: %lld samples at %g Hz -> %g Hz would not fit in memory",
                        what, (long long)n, from_rate, to_rate);
  sink s;
  mf_status st = sink_init(&s, from_rate, to_rate, (uint64_t)n, what);
  /* Fed in blocks so soxr's input FIFO stays small instead of holding a second copy. */
  for (int64_t off = 0; st == MF_OK && off < n; off += BLOCK_SAMPLES) {
    int64_t m = n - off < BLOCK_SAMPLES ? n - off : BLOCK_SAMPLES;
    st = sink_push(&s, in + off, (size_t)m);
  }
  if (st == MF_OK) st = sink_finish(&s);
  if (st != MF_OK) {
    sink_free(&s);
    return st;
  }
  *n_out = (int64_t)s.out.n;
  *out = growbuf_take(&s.out);
  return MF_OK;
}

/* "WAV (Microsoft) Signed 16 bit PCM": libsndfile's own names for container and encoding. */
static void describe_format(int format, char *buf, size_t size) {
  SF_FORMAT_INFO major = {.format = format & SF_FORMAT_TYPEMASK};
  SF_FORMAT_INFO sub = {.format = format & SF_FORMAT_SUBMASK};
  int have_major = sf_command(NULL, SFC_GET_FORMAT_INFO, &major, sizeof major) == 0 && major.name;
  int have_sub = sf_command(NULL, SFC_GET_FORMAT_INFO, &sub, sizeof sub) == 0 && sub.name;
  if (have_major && have_sub)
    snprintf(buf, size, "%s %s", major.name, sub.name);
  else if (have_major)
    snprintf(buf, size, "%s (encoding 0x%04x)", major.name, (unsigned)(format & SF_FORMAT_SUBMASK));
  else
    snprintf(buf, size, "libsndfile format 0x%08x", (unsigned)format);
}

/* The average of the channels, summed in double in channel order so the result does not
 * depend on anything but the data. For stereo this equals librosa's float32 np.mean bit for
 * bit: (l + r) / 2 rounded once. */
static void mixdown(const float *x, size_t frames, int ch, float *mono) {
  if (ch == 2) {
    for (size_t i = 0; i < frames; i++)
      mono[i] = (float)(((double)x[2 * i] + (double)x[2 * i + 1]) * 0.5);
    return;
  }
  for (size_t i = 0; i < frames; i++) {
    const float *f = x + i * (size_t)ch;
    double s = 0;
    for (int c = 0; c < ch; c++) s += f[c];
    mono[i] = (float)(s / ch);
  }
}

/* Index of the first NaN or infinity, or m. A float WAV can carry them, and one NaN would
 * poison every feature and gradient downstream (librosa refuses such buffers too). The
 * bit test vectorises where isfinite() in a loop with an early exit would not. */
static size_t first_nonfinite(const float *x, size_t m) {
  uint32_t bad = 0;
  for (size_t i = 0; i < m; i++) {
    uint32_t u;
    memcpy(&u, &x[i], sizeof u);
    bad |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
  }
  if (!bad) return m;
  for (size_t i = 0; i < m; i++)
    if (!isfinite(x[i])) return i;
  return m;
}

static mf_status open_for_reading(const char *path, SNDFILE **sf, SF_INFO *info) {
  /* stat first: libsndfile reports a missing file and a folder no differently from
   * other failures, and its error state for a failed open is process-wide. */
  struct stat st;
  if (stat(path, &st) != 0) {
    int e = errno;
    if (e == ENOENT || e == ENOTDIR)
      return mf_set_error(MF_ENOTFOUND, "%s: no such file; check the path", path);
    return mf_set_error(MF_EIO, "%s: cannot be read (%s)", path, strerror(e));
  }
  if (S_ISDIR(st.st_mode))
    return mf_set_error(MF_EFORMAT, "%s: is a folder, not an audio file", path);
  memset(info, 0, sizeof *info);
  *sf = sf_open(path, SFM_READ, info);
  if (*sf) return MF_OK;
  int code = sf_error(NULL);
  const char *why = sf_strerror(NULL);
  if (code == SF_ERR_SYSTEM)
    return mf_set_error(MF_EIO, "%s: cannot be read (%s); check its permissions", path, why);
  return mf_set_error(MF_EFORMAT,
                      "%s: not an audio file libsndfile can read (%s); WAV, AIFF, AU, FLAC, "
                      "OGG/Vorbis, Opus and MP3 work: convert the file or move it out of the "
                      "audio folder",
                      path, why);
}

mf_status mf_audio_read(const char *path, double target_rate, mf_audio *out) {
  if (!out) return mf_set_error(MF_EINVAL, "mf_audio_read: out must not be NULL");
  memset(out, 0, sizeof *out);
  if (!path || !*path) return mf_set_error(MF_EINVAL, "mf_audio_read: empty path");
  if (!(isfinite(target_rate) && target_rate >= 0))
    return mf_set_error(MF_EINVAL,
                        "%s: target sample rate %g Hz is not valid; use a positive rate such "
                        "as 22050, or 0 to keep the file's rate",
                        path, target_rate);
  SNDFILE *sf = NULL;
  SF_INFO info;
  mf_status st = open_for_reading(path, &sf, &info);
  if (st != MF_OK) return st;

  const int ch = info.channels;
  if (ch < 1 || info.samplerate < 1) {
    sf_close(sf);
    return mf_set_error(MF_EFORMAT, "%s: header says %d channels at %d Hz; the file is damaged",
                        path, ch, info.samplerate);
  }
  /* SF_COUNT_MAX means the length is unknown; anything else that cannot be addressed as
   * frames * channels floats is a corrupt header, not a file worth trying. */
  uint64_t expected = 0;
  if (info.frames != SF_COUNT_MAX) {
    if (info.frames < 0 || (uint64_t)info.frames > MAX_FLOATS / (size_t)ch) {
      sf_close(sf);
      return mf_set_error(MF_EFORMAT,
                          "%s: header claims %lld frames of %d channels, more than can be "
                          "addressed; the file is damaged",
                          path, (long long)info.frames, ch);
    }
    expected = (uint64_t)info.frames;
  }
  describe_format(info.format, out->format, sizeof out->format);
  const double source_rate = info.samplerate;
  const double rate = target_rate == 0 ? source_rate : target_rate;

  sink s;
  st = sink_init(&s, source_rate, rate, expected, path);
  const size_t block_frames =
      (size_t)BLOCK_SAMPLES / (size_t)ch ? (size_t)BLOCK_SAMPLES / (size_t)ch : 1;
  float *block = NULL, *mono = NULL;
  if (st == MF_OK) {
    block = malloc(block_frames * (size_t)ch * sizeof(float));
    mono = ch == 1 ? block : malloc(block_frames * sizeof(float));
    if (!block || !mono) st = mf_set_error(MF_ENOMEM, "%s: out of memory for a read buffer", path);
  }
  uint64_t frames_read = 0;
  while (st == MF_OK) {
    sf_count_t got = sf_readf_float(sf, block, (sf_count_t)block_frames);
    if (got <= 0) break;
    if (ch > 1) mixdown(block, (size_t)got, ch, mono);
    size_t bad = first_nonfinite(mono, (size_t)got);
    if (bad < (size_t)got) {
      st = mf_set_error(MF_EFORMAT,
                        "%s: sample at frame %llu is NaN or infinite; the file is damaged "
                        "(re-export it from its source)",
                        path, (unsigned long long)(frames_read + bad));
      break;
    }
    st = sink_push(&s, mono, (size_t)got);
    frames_read += (uint64_t)got;
  }
  if (st == MF_OK && sf_error(sf) != SF_ERR_NO_ERROR)
    st = mf_set_error(MF_EIO,
                      "%s: reading failed after %llu of %lld frames (%s); the file is probably "
                      "truncated or damaged",
                      path, (unsigned long long)frames_read, (long long)info.frames,
                      sf_strerror(sf));
  if (st == MF_OK) st = sink_finish(&s);
  if (mono != block) free(mono);
  free(block);
  sf_close(sf);
  if (st != MF_OK) {
    sink_free(&s);
    out->format[0] = '\0';
    return st;
  }
  out->n = (int64_t)s.out.n;
  out->samples = growbuf_take(&s.out);
  out->sample_rate = rate;
  out->source_rate = source_rate;
  out->source_channels = ch;
  return MF_OK;
}

void mf_audio_free(mf_audio *a) {
  if (!a) return;
  free(a->samples);
  a->samples = NULL;
  a->n = 0;
}

mf_status mf_audio_write_wav(const char *path, const float *samples, int64_t n, double rate,
                             int float_pcm) {
  if (!path || !*path) return mf_set_error(MF_EINVAL, "mf_audio_write_wav: empty path");
  if (n < 0 || (n > 0 && !samples))
    return mf_set_error(MF_EINVAL, "%s: %lld samples at %p; pass n >= 0 and a buffer", path,
                        (long long)n, (const void *)samples);
  if (!(rate >= 1 && rate <= INT_MAX && rate == floor(rate)))
    return mf_set_error(MF_EINVAL,
                        "%s: sample rate %g Hz cannot be stored in a WAV header, which holds a "
                        "whole number of Hz; resample to a rate such as 22050 first",
                        path, rate);
  size_t bad = first_nonfinite(samples, (size_t)n);
  if (bad < (size_t)n)
    return mf_set_error(MF_EINVAL, "%s: sample %zu is %g; only finite samples can be written", path,
                        bad, (double)samples[bad]);
  char *tmp = mf_temp_path_for(path);
  if (!tmp) return path[strlen(path) - 1] == '/' ? MF_EINVAL : MF_ENOMEM; /* message is set */

  SF_INFO info = {.samplerate = (int)rate,
                  .channels = 1,
                  .format = SF_FORMAT_WAV | (float_pcm ? SF_FORMAT_FLOAT : SF_FORMAT_PCM_16)};
  SNDFILE *sf = sf_open(tmp, SFM_WRITE, &info);
  if (!sf) {
    mf_status st = mf_set_error(MF_EIO,
                                "%s: cannot create %s (%s); check that the folder exists and is "
                                "writable",
                                path, tmp, sf_strerror(NULL));
    free(tmp);
    return st;
  }
  /* Without clipping libsndfile scales by 32767 and lets values past +-1 wrap around to the
   * other extreme; with it, values scale by 32768 and saturate. */
  if (!float_pcm) sf_command(sf, SFC_SET_CLIPPING, NULL, SF_TRUE);
  mf_status st = MF_OK;
  for (int64_t off = 0; off < n; off += BLOCK_SAMPLES) {
    sf_count_t m = n - off < BLOCK_SAMPLES ? (sf_count_t)(n - off) : BLOCK_SAMPLES;
    if (sf_writef_float(sf, samples + off, m) != m) {
      st = mf_set_error(MF_EIO,
                        "%s: writing failed after %lld of %lld samples (%s); is the disk full?",
                        path, (long long)off, (long long)n, sf_strerror(sf));
      break;
    }
  }
  /* sf_close writes the final chunk sizes into the header, so its result matters too. */
  int close_err = sf_close(sf);
  if (st == MF_OK && close_err != 0)
    st = mf_set_error(MF_EIO, "%s: finishing the WAV header failed (%s); is the disk full?", path,
                      sf_error_number(close_err));
  if (st == MF_OK) {
    st = mf_publish_file(tmp, path); /* removes tmp itself when it fails */
  } else {
    remove(tmp);
  }
  free(tmp);
  return st;
}

int mf_audio_is_candidate(const char *path) {
  static const char *const exts[] = {"wav", "wave", "aif",  "aiff", "aifc", "au",  "snd", "flac",
                                     "ogg", "oga",  "opus", "mp3",  "caf",  "w64", "rf64"};
  if (!path) return 0;
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  const char *dot = strrchr(base, '.');
  if (!dot || dot == base) return 0; /* no extension, or a hidden file such as ".wav" */
  const char *ext = dot + 1;
  size_t len = strlen(ext);
  if (len == 0 || len > 4) return 0;
  /* ASCII folding by hand: strcasecmp follows the locale, and in a Turkish one 'I' is not
   * the capital of 'i' ("AIFF"). */
  char lower[5];
  for (size_t i = 0; i <= len; i++) {
    char c = ext[i];
    lower[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  }
  for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
    if (strcmp(lower, exts[i]) == 0) return 1;
  return 0;
}
