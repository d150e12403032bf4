/* melforge/extract.h — from audio files to feature rows: segmenting, per-track feature
 * extraction, and whole-folder extraction into an HDF5 dataset.
 *
 * A track is cut into segments of one fixed length, and every segment becomes one row of
 * the dataset with the same shape:
 *
 *   equal    N segments per track, each track_seconds / N long (the GTZAN recipe: 10
 *            segments of a 30 s track, 130 frames each). track_seconds 0 uses each file's
 *            own length (then rows have equal shapes only if the files have equal lengths).
 *   window   windows of window_seconds every hop_seconds (a final partial window is kept,
 *            padded, when it covers at least half a window and padding is on).
 *
 * A segment that runs past the end of its track (GTZAN files are a little under 30 s) is
 * padded to the fixed number of frames — with the minimum of its own features (the
 * spectrogram's floor, the default) or with zeros — or dropped (pad = drop, what the
 * notebooks do).
 *
 * Scope. Log-mel features clip at (maximum - top_db), so a segment's values depend on its
 * own loudest frame. scope = segment computes each segment on its own (the notebooks'
 * behaviour); scope = track computes the whole track once and cuts its frames, so every
 * segment of a track shares the track's reference.
 *
 * Files that cannot be read, are empty or are shorter than one segment are skipped with a
 * warning naming the file and the reason, and counted; strict makes the first one fatal.
 */
#ifndef MELFORGE_EXTRACT_H
#define MELFORGE_EXTRACT_H

#include <stdint.h>

#include "melforge/component.h"
#include "melforge/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mf_seg_mode { MF_SEG_EQUAL = 0, MF_SEG_WINDOW = 1 } mf_seg_mode;
typedef enum mf_pad_mode { MF_PAD_MIN = 0, MF_PAD_ZERO = 1, MF_PAD_DROP = 2 } mf_pad_mode;
typedef enum mf_scope { MF_SCOPE_SEGMENT = 0, MF_SCOPE_TRACK = 1 } mf_scope;

typedef struct mf_segmenting {
  mf_seg_mode mode;
  int segments;          /* equal: segments per track */
  double track_seconds;  /* equal: nominal track length, 0 = each file's own */
  double window_seconds; /* window */
  double hop_seconds;    /* window */
  mf_pad_mode pad;
  mf_scope scope;
} mf_segmenting;

/* The GTZAN recipe: 10 equal segments of 30 s, padded with the minimum, per segment. */
mf_segmenting mf_segmenting_defaults(void);
/* MF_EINVAL naming the field for impossible settings. */
mf_status mf_segmenting_check(const mf_segmenting *s);
/* {"mode": "equal", "segments": 10, "track_seconds": 30, "pad": "min", "scope": "segment"}
 * (malloc'd), and back. */
char *mf_segmenting_to_json(const mf_segmenting *s);
mf_status mf_segmenting_from_json(const char *json, mf_segmenting *out);
/* Reads "key=value" settings (mode, segments, track_seconds, window_seconds, hop_seconds,
 * pad, scope) as the command line and Lua give them. */
mf_status mf_segmenting_set(mf_segmenting *s, const char *key, const char *value);

/* Samples in one segment at `rate`. */
int64_t mf_segment_length(const mf_segmenting *s, double rate, int64_t track_samples);

/* Cuts one track's audio (mono, at the feature's rate) into segments and computes their
 * features. *rows gets n_rows rows of row_shape (malloc'd; the feature's layout for one
 * segment) and *seg_index the segment number of each row (seg_index and row_shape may be
 * NULL). Returns MF_EINVAL with a reason ("shorter than one segment (2.1 s < 3.0 s)") when
 * the track yields no row. Thread-safe. */
mf_status mf_extract_track(const mf_feature *f, const mf_segmenting *s, const float *audio,
                           int64_t n, float **rows, int64_t *n_rows, int32_t **seg_index,
                           mf_shape *row_shape);

typedef struct mf_extract_progress {
  int done, total;     /* tracks */
  int64_t rows;
  int skipped;
  double seconds;      /* since start */
} mf_extract_progress;

typedef struct mf_extract_config {
  const char *audio_dir;      /* one sub-folder per class */
  const mf_component *feature;
  const mf_values *feature_params; /* NULL: the feature's defaults */
  double sample_rate;         /* 0: 22050 */
  mf_segmenting seg;
  int strict;
  const char *out_path;
  void (*progress)(const mf_extract_progress *p, void *user);
  void (*warn)(const char *file, const char *reason, void *user);
  void *user;
} mf_extract_config;

typedef struct mf_extract_summary {
  int classes, tracks, skipped;
  int64_t rows;
  double seconds;
} mf_extract_summary;

/* Scans audio_dir (classes = sorted sub-folder names, tracks = sorted audio files in each),
 * extracts every track in parallel (rows stay in track order: the result does not depend
 * on the thread count) and writes the dataset atomically to out_path. */
mf_status mf_extract_dataset(const mf_extract_config *cfg, mf_extract_summary *summary);

#ifdef __cplusplus
}
#endif
#endif
