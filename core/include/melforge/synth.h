/* melforge/synth.h — the built-in demo corpus: procedurally generated music in genre-like
 * classes, so the quickstart and the tests need no download.
 *
 * Each class differs in tempo, rhythm, timbre and harmony; inside a class every track
 * varies (tempo, key, instrument detuning, pattern variations, mix, noise), so telling the
 * classes apart takes a real model and is not trivial. Everything is drawn from one seed:
 * the same seed writes bit-identical files.
 */
#ifndef MELFORGE_SYNTH_H
#define MELFORGE_SYNTH_H

#include <stdint.h>

#include "melforge/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mf_synth_config {
  int genres;         /* classes to write (1 .. mf_synth_genre_count()) */
  int tracks;         /* tracks per class */
  double seconds;     /* length of each track */
  double sample_rate;
  uint64_t seed;
} mf_synth_config;

/* 6 genres, 20 tracks each, 30 s, 22050 Hz, seed 42. */
mf_synth_config mf_synth_defaults(void);
int mf_synth_genre_count(void);
/* Folder name of genre i ("electronic", "jazz", ...). */
const char *mf_synth_genre_name(int i);

/* Renders one track of genre `genre` (index), variation `index`, into out[0 .. n), n =
 * seconds * sample_rate. Deterministic in (cfg->seed, genre, index). */
mf_status mf_synth_track(const mf_synth_config *cfg, int genre, int index, float *out, int64_t n);

/* Writes <dir>/<genre>/<genre>.<index>.wav for every genre and track (GTZAN's layout),
 * rendering tracks in parallel. progress(done, total, user) is called as tracks finish
 * (may be NULL). */
mf_status mf_synth_write_corpus(const mf_synth_config *cfg, const char *dir,
                                void (*progress)(int done, int total, void *user), void *user);

#ifdef __cplusplus
}
#endif
#endif
