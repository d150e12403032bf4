/* dataset_import.h — converting the notebooks' feature files into melforge datasets
 * (private to libmelforge and the `melforge import` command).
 *
 *   json  the MFCC notebook's data.json: {"mapping": [genre names], "labels": [int],
 *         "mfcc": [[[n_mfcc floats] x frames] x segments]}; every segment is one row
 *         [frames, n_mfcc] and, since the format has no track ids, its own track.
 *   npy   one sub-folder of .npy arrays per genre (classes = sorted folder names, files
 *         sorted); every file is one row and one track, float32 or float64, C or Fortran
 *         order.
 *
 * Both stream rows into mf_dataset_writer, so the output is written atomically and the rows
 * are never held in memory twice. */
#ifndef MF_DATASET_IMPORT_H
#define MF_DATASET_IMPORT_H

#include <stdint.h>

#include "melforge/dataset.h"

typedef struct mf_import_summary {
  int64_t rows;
  mf_shape sample_shape;
  int classes, tracks;
  int grouped_by_track; /* 0 when every row is its own track (no track ids in the source) */
  int ignored;          /* npy: files in the class folders that are not .npy */
} mf_import_summary;

typedef struct mf_import_options {
  double sample_rate; /* recorded in the dataset; 0: the source's ("sr" in JSON) or 22050 */
  /* Called now and then with what is being done ("reading data.json", "converting") and
   * how far along it is, in the stage's unit ("bytes", "rows", "files"). */
  void (*progress)(const char *stage, const char *unit, int64_t done, int64_t total, void *user);
  void *user;
} mf_import_options;

mf_status mf_import_json(const char *json_path, const char *out_path, const mf_import_options *opt,
                         mf_import_summary *summary);
mf_status mf_import_npy(const char *dir, const char *out_path, const mf_import_options *opt,
                        mf_import_summary *summary);

/* One .npy file read as float32 in C order (the importer's reader, exposed for tests).
 * *data is malloc'd; shape gets the array's dimensions (1 to MF_MAX_DIMS - 1 of them). */
mf_status mf_npy_read(const char *path, float **data, mf_shape *shape);

#endif
