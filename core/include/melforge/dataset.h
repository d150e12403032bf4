/* melforge/dataset.h — feature datasets in HDF5 (DESIGN.md section 5), readable from h5py
 * as plain arrays:
 *
 *   /features  float32 [N, ...]  one row per segment, chunked by rows (gzip-free: fast reads)
 *   /labels    int32   [N]       class index
 *   /track     int32   [N]       index into /tracks (the group key for splits)
 *   /segment   int32   [N]       segment number inside its track
 *   /classes   string  [C]       class names (UTF-8, variable length)
 *   /tracks    string  [T]       source files, relative to the audio root
 *   attributes on /: feature (plugin name), feature_params (JSON), sample_rate,
 *                    segmenting (JSON), source, melforge_version, created
 *
 * Writing streams rows in (a 10 000-segment mel dataset does not need to fit in memory
 * twice) into a temporary file that is fsync'ed and renamed into place on close, so a crash
 * never leaves a broken dataset. Reading loads everything into memory.
 */
#ifndef MELFORGE_DATASET_H
#define MELFORGE_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "melforge/error.h"
#include "melforge/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Everything in the dataset except the rows, which writers stream. */
typedef struct mf_dataset_info {
  mf_shape sample_shape; /* one row, without N: [n_mels, frames] or [frames, n_mfcc] */
  int n_classes;
  char **classes; /* n_classes names */
  int n_tracks;
  char **tracks;        /* n_tracks paths */
  char *feature;        /* plugin name ("melspec"), or the importer's ("json") */
  char *feature_params; /* JSON object */
  double sample_rate;
  char *segmenting; /* JSON object: {"mode": "equal", "segments": 10, ...} */
  char *source;     /* the audio root or imported file */
  int time_axis;    /* axis of a row that is time (frames), -1 when unknown; stored as
                       the attribute time_axis (scalers work per band along the other) */
} mf_dataset_info;

typedef struct mf_dataset {
  mf_dataset_info info;
  int64_t n;        /* rows */
  int64_t row_size; /* floats per row */
  float *features;  /* n * row_size */
  int32_t *labels, *track, *segment;
} mf_dataset;

mf_status mf_dataset_load(const char *path, mf_dataset **out);
/* Reads only the description (attributes, classes, tracks, shapes) — cheap, for checking a
 * cache against its recipe. Free with mf_dataset_info_clear. */
mf_status mf_dataset_read_info(const char *path, mf_dataset_info *info);
void mf_dataset_free(mf_dataset *ds);
/* Writes ds in one go (atomic), e.g. after an import. */
mf_status mf_dataset_save(const mf_dataset *ds, const char *path);

/* Deep copy of info fields (strings duplicated); free with mf_dataset_info_clear. */
void mf_dataset_info_copy(mf_dataset_info *dst, const mf_dataset_info *src);
void mf_dataset_info_clear(mf_dataset_info *info);

/* Streaming writer: rows are appended in order; commit renames the finished file into
 * place; abort (or a failure) removes the temporary file and leaves `path` untouched.
 * Commit and abort both free the writer (commit also when it fails). */
typedef struct mf_dataset_writer mf_dataset_writer;
mf_status mf_dataset_writer_open(const char *path, const mf_dataset_info *info,
                                 mf_dataset_writer **out);
mf_status mf_dataset_writer_append(mf_dataset_writer *w, const float *rows, int64_t n_rows,
                                   const int32_t *labels, const int32_t *track,
                                   const int32_t *segment);
/* Sets the track list when it is only known at the end (files that failed are dropped). */
mf_status mf_dataset_writer_set_tracks(mf_dataset_writer *w, char **tracks, int n_tracks);
mf_status mf_dataset_writer_commit(mf_dataset_writer *w);
void mf_dataset_writer_abort(mf_dataset_writer *w);

/* Atomic file replacement used by datasets and checkpoints: a temporary name next to
 * `path`, and the fsync + rename that publishes it. */
char *mf_temp_path_for(const char *path);
mf_status mf_publish_file(const char *tmp_path, const char *path);
/* Both for a buffer already in memory (JSON, CSV, HTML, PNG): readers of `path` see the old
 * file or all `size` bytes of the new one. */
mf_status mf_write_file_atomic(const char *path, const void *data, size_t size);

#ifdef __cplusplus
}
#endif
#endif
