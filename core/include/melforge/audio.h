/* melforge/audio.h — audio files in, mono float samples at the rate you ask for out.
 *
 * Reading goes through libsndfile, so every format it reads works: WAV, AIFF, AU (GTZAN's
 * originals), FLAC, OGG/Vorbis, Opus, MP3. Channels are averaged to mono; the signal is
 * resampled with libsoxr at high quality (the resampler librosa uses by default) unless it
 * already has the target rate, in which case the samples are returned untouched.
 *
 * Life cycle: mf_audio a; mf_audio_read(path, 22050, &a); ... a.samples[0 .. a.n) ...;
 * mf_audio_free(&a).
 */
#ifndef MELFORGE_AUDIO_H
#define MELFORGE_AUDIO_H

#include <stdint.h>

#include "melforge/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mf_audio {
  float *samples;     /* mono, n values (malloc'd) */
  int64_t n;
  double sample_rate; /* of samples (the target rate when resampled) */
  double source_rate; /* of the file */
  int source_channels;
  char format[64];    /* "WAV (Microsoft) Signed 16 bit PCM", for messages and `info` */
} mf_audio;

/* Reads `path` as mono float at target_rate (0 keeps the file's rate). Errors name the file
 * and the reason: MF_ENOTFOUND (no such file), MF_EFORMAT (not audio libsndfile can read),
 * MF_EIO. An empty file is not an error here (n == 0); callers decide what is too short. */
mf_status mf_audio_read(const char *path, double target_rate, mf_audio *out);
void mf_audio_free(mf_audio *a);

/* Resamples with libsoxr HQ. *out is malloc'd (NULL when *n_out is 0); *n_out is
 * ceil(n * to / from), the length librosa.resample gives. */
mf_status mf_audio_resample(const float *in, int64_t n, double from_rate, double to_rate,
                            float **out, int64_t *n_out);

/* Writes mono float samples as a 16-bit PCM WAV (the demo corpus), or 32-bit float WAV when
 * float_pcm is set. The file is written under a temporary name and renamed into place. */
mf_status mf_audio_write_wav(const char *path, const float *samples, int64_t n, double rate,
                             int float_pcm);

/* File extensions libsndfile is asked to read when scanning a folder (lower case, no dot). */
int mf_audio_is_candidate(const char *path);

#ifdef __cplusplus
}
#endif
#endif
