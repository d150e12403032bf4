/* dataset.c — feature datasets in HDF5 (layout in melforge/dataset.h): the streaming writer,
 * whole-dataset save and load, and the layout checks that turn a wrong file into a message
 * naming what is wrong and where.
 *
 * HDF5 prints its own error stack to stderr by default; that is silenced here and its
 * innermost description is folded into our messages instead. */
#include <float.h>
#include <hdf5.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "h5util.h"
#include "melforge/dataset.h"
#include "melforge/runtime.h"

/* Rows per chunk aim at this many bytes: big enough that a full read is a few large
 * sequential reads, small enough for HDF5's chunk cache. No compression: reading speed
 * matters more than file size for a dataset re-read every run. */
#define CHUNK_BYTES (1 << 20)
#define INT_CHUNK_ROWS 16384

static const char *const REQUIRED =
    "every melforge dataset has /features, /labels, /track, /segment, /classes and /tracks";

/* ------------------------------------------------------------------------------------ */
/* Rows (HDF5 plumbing shared with checkpoints is in h5util.c) */

/* A rows dataset: [0, sample...] growing along the first axis, chunked by whole rows. */
static hid_t create_rows(hid_t file, const char *name, hid_t type, int sample_ndim,
                         const int64_t *sample, hsize_t chunk_rows, size_t cache_bytes) {
  hsize_t dims[MF_MAX_DIMS + 1], maxdims[MF_MAX_DIMS + 1], chunk[MF_MAX_DIMS + 1];
  dims[0] = 0;
  maxdims[0] = H5S_UNLIMITED;
  chunk[0] = chunk_rows;
  for (int i = 0; i < sample_ndim; i++)
    dims[i + 1] = maxdims[i + 1] = chunk[i + 1] = (hsize_t)sample[i];
  hid_t space = H5Screate_simple(sample_ndim + 1, dims, maxdims);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE), dapl = H5Pcreate(H5P_DATASET_ACCESS);
  hid_t d = H5I_INVALID_HID;
  /* Every byte is written by append, so HDF5 need not fill chunks first. */
  if (space >= 0 && dcpl >= 0 && dapl >= 0 && H5Pset_chunk(dcpl, sample_ndim + 1, chunk) >= 0 &&
      H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) >= 0 &&
      H5Pset_chunk_cache(dapl, 521, cache_bytes, 1.0) >= 0)
    d = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, dapl);
  mf__h5_close(&space);
  mf__h5_close(&dcpl);
  mf__h5_close(&dapl);
  return d;
}

/* Grows d to `total` rows and writes rows [total - n, total) from buf. */
static int append_rows(hid_t d, hid_t memtype, hsize_t total, hsize_t n, const void *buf) {
  hsize_t dims[MF_MAX_DIMS + 1], start[MF_MAX_DIMS + 1] = {0};
  hid_t fspace = H5Dget_space(d), mspace = H5I_INVALID_HID;
  int rank = fspace >= 0 ? H5Sget_simple_extent_ndims(fspace) : -1;
  int ok =
      rank >= 1 && rank <= MF_MAX_DIMS + 1 && H5Sget_simple_extent_dims(fspace, dims, NULL) >= 0;
  mf__h5_close(&fspace);
  dims[0] = total;
  ok = ok && H5Dset_extent(d, dims) >= 0;
  if (ok) {
    fspace = H5Dget_space(d);
    start[0] = total - n;
    dims[0] = n; /* now the block being written */
    mspace = H5Screate_simple(rank, dims, NULL);
    ok = fspace >= 0 && mspace >= 0 &&
         H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, dims, NULL) >= 0 &&
         H5Dwrite(d, memtype, mspace, fspace, H5P_DEFAULT, buf) >= 0;
  }
  mf__h5_close(&fspace);
  mf__h5_close(&mspace);
  return ok ? 0 : -1;
}

/* ------------------------------------------------------------------------------------ */
/* Info */

void mf_dataset_info_clear(mf_dataset_info *info) {
  if (!info) return;
  for (int i = 0; i < info->n_classes && info->classes; i++) free(info->classes[i]);
  for (int i = 0; i < info->n_tracks && info->tracks; i++) free(info->tracks[i]);
  free(info->classes);
  free(info->tracks);
  free(info->feature);
  free(info->feature_params);
  free(info->segmenting);
  free(info->source);
  memset(info, 0, sizeof *info);
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static char **dup_strings(char *const *s, int n) {
  if (n <= 0 || !s) return NULL;
  char **d = calloc((size_t)n, sizeof *d);
  if (!d) return NULL;
  for (int i = 0; i < n; i++) d[i] = dup_or_null(s[i]);
  return d;
}

void mf_dataset_info_copy(mf_dataset_info *dst, const mf_dataset_info *src) {
  memset(dst, 0, sizeof *dst);
  dst->sample_shape = src->sample_shape;
  dst->n_classes = src->n_classes;
  dst->classes = dup_strings(src->classes, src->n_classes);
  dst->n_tracks = src->n_tracks;
  dst->tracks = dup_strings(src->tracks, src->n_tracks);
  dst->feature = dup_or_null(src->feature);
  dst->feature_params = dup_or_null(src->feature_params);
  dst->sample_rate = src->sample_rate;
  dst->segmenting = dup_or_null(src->segmenting);
  dst->source = dup_or_null(src->source);
  dst->time_axis = src->time_axis;
}

static mf_status check_json_object(const char *path, const char *field, const char *text) {
  json_error_t err;
  json_t *j = json_loads(text, JSON_DECODE_ANY, &err);
  int ok = j && json_is_object(j);
  json_decref(j);
  if (!ok)
    return mf_set_error(MF_EINVAL, "%s: %s must be a JSON object, got '%.80s'%s%s", path, field,
                        text, j ? "" : ": ", j ? "" : err.text);
  return MF_OK;
}

static mf_status check_info(const char *path, const mf_dataset_info *info) {
  if (!info) return mf_set_error(MF_EINVAL, "%s: no dataset info given", path);
  const mf_shape *s = &info->sample_shape;
  if (s->ndim < 1 || s->ndim > MF_MAX_DIMS - 1)
    return mf_set_error(MF_EINVAL, "%s: a sample has %d dimensions; expected 1 to %d", path,
                        s->ndim, MF_MAX_DIMS - 1);
  for (int i = 0; i < s->ndim; i++)
    if (s->d[i] < 1) {
      char b[96];
      return mf_set_error(MF_EINVAL, "%s: sample shape %s has an empty dimension", path,
                          mf_shape_str(*s, b, sizeof b));
    }
  if (info->n_classes < 1 || !info->classes)
    return mf_set_error(MF_EINVAL, "%s: a dataset needs at least one class", path);
  for (int i = 0; i < info->n_classes; i++) {
    if (!info->classes[i]) return mf_set_error(MF_EINVAL, "%s: class %d has no name", path, i);
    for (int j = 0; j < i; j++)
      if (!strcmp(info->classes[i], info->classes[j]))
        return mf_set_error(MF_EINVAL, "%s: class '%s' is listed twice (%d and %d)", path,
                            info->classes[i], j, i);
  }
  if (info->n_tracks < 0 || (info->n_tracks > 0 && !info->tracks))
    return mf_set_error(MF_EINVAL, "%s: the track list is missing", path);
  for (int i = 0; i < info->n_tracks; i++)
    if (!info->tracks[i]) return mf_set_error(MF_EINVAL, "%s: track %d has no name", path, i);
  if (info->feature_params) {
    mf_status st = check_json_object(path, "feature_params", info->feature_params);
    if (st) return st;
  }
  if (info->segmenting) return check_json_object(path, "segmenting", info->segmenting);
  return MF_OK;
}

static void fill_defaults(mf_dataset_info *info) {
  if (!info->feature) info->feature = strdup("");
  if (!info->feature_params) info->feature_params = strdup("{}");
  if (!info->segmenting) info->segmenting = strdup("{}");
  if (!info->source) info->source = strdup("");
}

/* ------------------------------------------------------------------------------------ */
/* Writer */

/* Rows are gathered into whole chunks before they reach HDF5, so every write is a full
 * chunk written straight through (no read-modify-write of half-filled chunks whatever the
 * caller's batch size), and the datasets are created only once the first chunk is full or
 * at commit: a dataset smaller than one chunk gets chunks of its own size instead of being
 * padded out to a megabyte. */
struct mf_dataset_writer {
  char *path, *tmp;
  hid_t file, features, labels, track, segment;
  mf_dataset_info info;
  int64_t row_size;
  int64_t chunk_rows;          /* rows per /features chunk */
  int64_t written, buffered;   /* rows in the file, rows waiting in the buffers */
  float *buf;                  /* chunk_rows rows */
  int32_t *lbuf, *tbuf, *sbuf; /* chunk_rows each */
  int64_t max_track;           /* checked against the track list at commit */
  int failed;
};

static void writer_close_handles(mf_dataset_writer *w) {
  mf__h5_close(&w->features);
  mf__h5_close(&w->labels);
  mf__h5_close(&w->track);
  mf__h5_close(&w->segment);
  if (w->file >= 0) H5Fclose(w->file);
  w->file = H5I_INVALID_HID;
}

static void writer_free(mf_dataset_writer *w) {
  mf_dataset_info_clear(&w->info);
  free(w->buf);
  free(w->lbuf);
  free(w->path);
  free(w->tmp);
  free(w);
}

/* Failure: drop the temporary file now so nothing is left behind even if the caller never
 * gets to abort. The message already set stays. */
static mf_status writer_fail(mf_dataset_writer *w, mf_status code) {
  if (!w->failed) {
    writer_close_handles(w);
    unlink(w->tmp);
    w->failed = 1;
  }
  return code;
}

static mf_status h5_fail(mf_dataset_writer *w, const char *what) {
  char r[256];
  mf__h5_reason(r);
  mf_set_error(MF_EIO, "%s: could not %s (HDF5: %s); is the disk full or the folder read-only?",
               w->path, what, r[0] ? r : "unknown error");
  return writer_fail(w, MF_EIO);
}

static mf_status write_metadata(mf_dataset_writer *w) {
  const mf_dataset_info *in = &w->info;
  char created[32];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
  hid_t root = H5Gopen2(w->file, "/", H5P_DEFAULT);
  int rc = root < 0 || mf__h5_write_strings(w->file, "/classes", in->classes, in->n_classes) ||
           mf__h5_write_string_attr(root, "feature", in->feature) ||
           mf__h5_write_string_attr(root, "feature_params", in->feature_params) ||
           mf__h5_write_attr(root, "sample_rate", H5T_IEEE_F64LE, &in->sample_rate) ||
           mf__h5_write_string_attr(root, "segmenting", in->segmenting) ||
           mf__h5_write_string_attr(root, "source", in->source) ||
           mf__h5_write_int64_attr(root, "time_axis", in->time_axis) ||
           mf__h5_write_string_attr(root, "melforge_version", mf_version()) ||
           mf__h5_write_string_attr(root, "created", created);
  mf__h5_close(&root);
  return rc ? h5_fail(w, "write the class names and attributes") : MF_OK;
}

/* final_rows: the dataset's size when known (at commit), else 0. */
static mf_status create_datasets(mf_dataset_writer *w, int64_t final_rows) {
  int64_t chunk = w->chunk_rows, ichunk = INT_CHUNK_ROWS;
  if (final_rows > 0 && final_rows < chunk) chunk = final_rows;
  if (final_rows > 0 && final_rows < ichunk) ichunk = final_rows;
  size_t cache = (size_t)(2 * chunk * w->row_size) * sizeof(float) + CHUNK_BYTES;
  const mf_shape *s = &w->info.sample_shape;
  w->features =
      create_rows(w->file, "/features", H5T_IEEE_F32LE, s->ndim, s->d, (hsize_t)chunk, cache);
  w->labels = create_rows(w->file, "/labels", H5T_STD_I32LE, 0, NULL, (hsize_t)ichunk, CHUNK_BYTES);
  w->track = create_rows(w->file, "/track", H5T_STD_I32LE, 0, NULL, (hsize_t)ichunk, CHUNK_BYTES);
  w->segment =
      create_rows(w->file, "/segment", H5T_STD_I32LE, 0, NULL, (hsize_t)ichunk, CHUNK_BYTES);
  if (w->features < 0 || w->labels < 0 || w->track < 0 || w->segment < 0)
    return h5_fail(w, "create the datasets");
  return MF_OK;
}

static mf_status write_block(mf_dataset_writer *w, const float *rows, const int32_t *labels,
                             const int32_t *track, const int32_t *segment, int64_t n) {
  if (w->features < 0) {
    mf_status st = create_datasets(w, 0);
    if (st) return st;
  }
  hsize_t total = (hsize_t)(w->written + n), m = (hsize_t)n;
  if (append_rows(w->features, H5T_NATIVE_FLOAT, total, m, rows) ||
      append_rows(w->labels, H5T_NATIVE_INT32, total, m, labels) ||
      append_rows(w->track, H5T_NATIVE_INT32, total, m, track) ||
      append_rows(w->segment, H5T_NATIVE_INT32, total, m, segment))
    return h5_fail(w, "append rows");
  w->written += n;
  return MF_OK;
}

static mf_status flush_buffer(mf_dataset_writer *w) {
  if (w->buffered == 0) return MF_OK;
  mf_status st = write_block(w, w->buf, w->lbuf, w->tbuf, w->sbuf, w->buffered);
  w->buffered = 0;
  return st;
}

mf_status mf_dataset_writer_open(const char *path, const mf_dataset_info *info,
                                 mf_dataset_writer **out) {
  *out = NULL;
  mf__h5_quiet();
  if (!path || !*path) return mf_set_error(MF_EINVAL, "dataset writer: no output path given");
  mf_status st = check_info(path, info);
  if (st) return st;
  mf_dataset_writer *w = calloc(1, sizeof *w);
  if (!w) return mf_set_error(MF_ENOMEM, "%s: out of memory", path);
  w->file = w->features = w->labels = w->track = w->segment = H5I_INVALID_HID;
  w->max_track = -1;
  mf_dataset_info_copy(&w->info, info);
  fill_defaults(&w->info);
  w->row_size = mf_shape_numel(info->sample_shape);
  w->chunk_rows = CHUNK_BYTES / (w->row_size * (int64_t)sizeof(float));
  if (w->chunk_rows < 1) w->chunk_rows = 1;
  w->path = strdup(path);
  w->tmp = mf_temp_path_for(path);
  w->buf = malloc((size_t)(w->chunk_rows * w->row_size) * sizeof(float));
  w->lbuf = malloc((size_t)w->chunk_rows * 3 * sizeof(int32_t));
  if (!w->path || !w->tmp || !w->buf || !w->lbuf) {
    writer_free(w);
    return mf_set_error(MF_ENOMEM, "%s: out of memory for the dataset writer", path);
  }
  w->tbuf = w->lbuf + w->chunk_rows;
  w->sbuf = w->tbuf + w->chunk_rows;
  w->file = H5Fcreate(w->tmp, H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT);
  if (w->file < 0) {
    char r[256];
    mf__h5_reason(r);
    mf_set_error(MF_EIO,
                 "%s: could not create the file (%s); does the folder exist and is it writable?",
                 path, r[0] ? r : "unknown error");
    writer_free(w);
    return MF_EIO;
  }
  st = write_metadata(w);
  if (st) {
    writer_free(w);
    return st;
  }
  *out = w;
  return MF_OK;
}

mf_status mf_dataset_writer_append(mf_dataset_writer *w, const float *rows, int64_t n_rows,
                                   const int32_t *labels, const int32_t *track,
                                   const int32_t *segment) {
  if (!w) return mf_set_error(MF_EINVAL, "mf_dataset_writer_append: no writer");
  if (w->failed)
    return mf_set_error(MF_ESTATE,
                        "%s: the dataset writer failed earlier; abort it and start again", w->path);
  if (n_rows == 0) return MF_OK;
  if (n_rows < 0 || !rows || !labels || !track || !segment) {
    mf_set_error(MF_EINVAL, "%s: append needs rows, labels, track and segment for %lld rows",
                 w->path, (long long)n_rows);
    return writer_fail(w, MF_EINVAL);
  }
  int64_t first = w->written + w->buffered;
  for (int64_t i = 0; i < n_rows; i++) {
    long long row = (long long)(first + i);
    if (labels[i] < 0 || labels[i] >= w->info.n_classes) {
      mf_set_error(MF_EINVAL, "%s: label %d at row %lld is outside the %d classes (0..%d)", w->path,
                   labels[i], row, w->info.n_classes, w->info.n_classes - 1);
      return writer_fail(w, MF_EINVAL);
    }
    if (track[i] < 0 || segment[i] < 0) {
      mf_set_error(MF_EINVAL, "%s: row %lld has a negative %s (%d)", w->path, row,
                   track[i] < 0 ? "track" : "segment", track[i] < 0 ? track[i] : segment[i]);
      return writer_fail(w, MF_EINVAL);
    }
    if (track[i] > w->max_track) w->max_track = track[i];
  }
  const int64_t cap = w->chunk_rows, rs = w->row_size;
  int64_t i = 0;
  mf_status st = MF_OK;
  while (i < n_rows && !st) {
    if (w->buffered == 0 && n_rows - i >= cap) {
      /* Whole chunks go straight from the caller's memory. */
      int64_t m = (n_rows - i) / cap * cap;
      st = write_block(w, rows + i * rs, labels + i, track + i, segment + i, m);
      i += m;
      continue;
    }
    int64_t m = cap - w->buffered < n_rows - i ? cap - w->buffered : n_rows - i;
    memcpy(w->buf + w->buffered * rs, rows + i * rs, (size_t)(m * rs) * sizeof(float));
    memcpy(w->lbuf + w->buffered, labels + i, (size_t)m * sizeof(int32_t));
    memcpy(w->tbuf + w->buffered, track + i, (size_t)m * sizeof(int32_t));
    memcpy(w->sbuf + w->buffered, segment + i, (size_t)m * sizeof(int32_t));
    w->buffered += m;
    i += m;
    if (w->buffered == cap) st = flush_buffer(w);
  }
  return st;
}

mf_status mf_dataset_writer_set_tracks(mf_dataset_writer *w, char **tracks, int n_tracks) {
  if (!w) return mf_set_error(MF_EINVAL, "mf_dataset_writer_set_tracks: no writer");
  if (w->failed)
    return mf_set_error(MF_ESTATE,
                        "%s: the dataset writer failed earlier; abort it and start again", w->path);
  if (n_tracks < 0 || (n_tracks > 0 && !tracks))
    return mf_set_error(MF_EINVAL, "%s: set_tracks got %d tracks and no list", w->path, n_tracks);
  for (int i = 0; i < n_tracks; i++)
    if (!tracks[i]) return mf_set_error(MF_EINVAL, "%s: track %d has no name", w->path, i);
  char **copy = dup_strings(tracks, n_tracks);
  if (n_tracks > 0 && !copy) return mf_set_error(MF_ENOMEM, "%s: out of memory", w->path);
  for (int i = 0; i < w->info.n_tracks; i++) free(w->info.tracks[i]);
  free(w->info.tracks);
  w->info.tracks = copy;
  w->info.n_tracks = n_tracks;
  return MF_OK;
}

static mf_status finish(mf_dataset_writer *w) {
  int64_t n = w->written + w->buffered;
  if (n == 0) {
    mf_set_error(MF_EINVAL, "%s: no rows were written; the dataset would be empty", w->path);
    return writer_fail(w, MF_EINVAL);
  }
  if (w->max_track >= w->info.n_tracks) {
    mf_set_error(MF_EINVAL, "%s: rows refer to track %lld but only %d tracks are listed", w->path,
                 (long long)w->max_track, w->info.n_tracks);
    return writer_fail(w, MF_EINVAL);
  }
  mf_status st = w->features < 0 ? create_datasets(w, n) : MF_OK;
  if (!st) st = flush_buffer(w);
  if (st) return st;
  if (mf__h5_write_strings(w->file, "/tracks", w->info.tracks, w->info.n_tracks))
    return h5_fail(w, "write the track list");
  mf__h5_close(&w->features);
  mf__h5_close(&w->labels);
  mf__h5_close(&w->track);
  mf__h5_close(&w->segment);
  herr_t rc = H5Fclose(w->file);
  w->file = H5I_INVALID_HID;
  if (rc < 0) return h5_fail(w, "finish the file");
  return mf_publish_file(w->tmp, w->path);
}

mf_status mf_dataset_writer_commit(mf_dataset_writer *w) {
  if (!w) return mf_set_error(MF_EINVAL, "mf_dataset_writer_commit: no writer");
  mf_status st =
      w->failed
          ? mf_set_error(MF_ESTATE, "%s: the dataset writer failed earlier; nothing was written",
                         w->path)
          : finish(w);
  writer_free(w);
  return st;
}

void mf_dataset_writer_abort(mf_dataset_writer *w) {
  if (!w) return;
  writer_fail(w, MF_OK);
  writer_free(w);
}

mf_status mf_dataset_save(const mf_dataset *ds, const char *path) {
  if (!ds) return mf_set_error(MF_EINVAL, "%s: no dataset to save", path ? path : "(null)");
  if (ds->row_size != mf_shape_numel(ds->info.sample_shape)) {
    char b[96];
    return mf_set_error(MF_EINVAL, "%s: row_size %lld does not match the sample shape %s", path,
                        (long long)ds->row_size, mf_shape_str(ds->info.sample_shape, b, sizeof b));
  }
  mf_dataset_writer *w;
  mf_status st = mf_dataset_writer_open(path, &ds->info, &w);
  if (st) return st;
  st = mf_dataset_writer_append(w, ds->features, ds->n, ds->labels, ds->track, ds->segment);
  if (st) {
    mf_dataset_writer_abort(w);
    return st;
  }
  return mf_dataset_writer_commit(w);
}

/* ------------------------------------------------------------------------------------ */
/* Loading */

typedef struct reader {
  const char *path;
  hid_t file;
} reader;

static const char *class_name(H5T_class_t c) {
  switch (c) {
    case H5T_INTEGER:
      return "integer";
    case H5T_FLOAT:
      return "float";
    case H5T_STRING:
      return "string";
    case H5T_COMPOUND:
      return "compound";
    case H5T_ENUM:
      return "enum";
    case H5T_VLEN:
      return "variable-length";
    case H5T_ARRAY:
      return "array";
    default:
      return "non-numeric";
  }
}

/* Opens a dataset and checks its type class and rank (rank 0: any of 2..MF_MAX_DIMS). */
static mf_status open_checked(const reader *r, const char *name, H5T_class_t want,
                              const char *want_text, int rank, hid_t *d, hsize_t *dims,
                              int *rank_out) {
  *d = H5I_INVALID_HID;
  htri_t exists = H5Lexists(r->file, name, H5P_DEFAULT);
  if (exists <= 0) {
    H5Eclear2(H5E_DEFAULT);
    if (!strcmp(name, "/features"))
      return mf_set_error(MF_EFORMAT,
                          "%s: missing dataset /features — is this a melforge dataset? (melforge "
                          "import converts notebook formats)",
                          r->path);
    return mf_set_error(MF_EFORMAT, "%s: missing dataset %s (%s)", r->path, name, REQUIRED);
  }
  *d = H5Dopen2(r->file, name, H5P_DEFAULT);
  if (*d < 0) {
    char why[256];
    mf__h5_reason(why);
    return mf_set_error(MF_EFORMAT, "%s: %s is not a readable dataset (HDF5: %s)", r->path, name,
                        why);
  }
  hid_t t = H5Dget_type(*d), s = H5Dget_space(*d);
  H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
  int nd = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
  if (nd > 0 && nd <= MF_MAX_DIMS) H5Sget_simple_extent_dims(s, dims, NULL);
  mf__h5_close(&t);
  mf__h5_close(&s);
  if (cls != want) {
    mf__h5_close(d);
    return mf_set_error(MF_EFORMAT, "%s: %s holds %s values; expected %s", r->path, name,
                        class_name(cls), want_text);
  }
  int ok = rank ? nd == rank : nd >= 2 && nd <= MF_MAX_DIMS;
  if (!ok) {
    mf__h5_close(d);
    if (rank == 1)
      return mf_set_error(MF_EFORMAT, "%s: %s has %d dimensions; expected one value per row",
                          r->path, name, nd);
    return mf_set_error(MF_EFORMAT,
                        "%s: %s has %d dimensions; expected [rows, sample dims...] with 2 to %d",
                        r->path, name, nd, MF_MAX_DIMS);
  }
  *rank_out = nd;
  return MF_OK;
}

static mf_status read_string_list(const reader *r, const char *name, char ***out, int *n_out) {
  hid_t d;
  hsize_t dims[MF_MAX_DIMS];
  int rank;
  mf_status st = open_checked(r, name, H5T_STRING, "strings", 1, &d, dims, &rank);
  if (st) return st;
  if (dims[0] > (hsize_t)INT32_MAX) {
    mf__h5_close(&d);
    return mf_set_error(MF_EFORMAT, "%s: %s has %llu entries; at most %d are supported", r->path,
                        name, (unsigned long long)dims[0], INT32_MAX);
  }
  int n = (int)dims[0];
  char **list = calloc(n ? (size_t)n : 1, sizeof *list);
  hid_t t = H5Dget_type(d);
  int rc = !list || t < 0 || (n > 0 && mf__h5_read_string_values(d, 0, t, (size_t)n, list));
  mf__h5_close(&t);
  mf__h5_close(&d);
  if (rc) {
    char why[256];
    mf__h5_reason(why);
    for (int i = 0; list && i < n; i++) free(list[i]);
    free(list);
    return mf_set_error(MF_EFORMAT, "%s: could not read the strings in %s (%s)", r->path, name,
                        why[0] ? why : "out of memory");
  }
  *out = list;
  *n_out = n;
  return MF_OK;
}

/* A string attribute of /, or a copy of `fallback` when it is absent (older files, files
 * made by other tools): metadata is shown, not relied on. */
static mf_status read_string_attr(const reader *r, const char *name, const char *fallback,
                                  char **out) {
  *out = NULL;
  if (H5Aexists(r->file, name) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    *out = strdup(fallback);
    return *out ? MF_OK : mf_set_error(MF_ENOMEM, "%s: out of memory", r->path);
  }
  hid_t a = H5Aopen(r->file, name, H5P_DEFAULT), t = H5I_INVALID_HID, s = H5I_INVALID_HID;
  int rc = -1;
  if (a >= 0) {
    t = H5Aget_type(a);
    s = H5Aget_space(a);
    if (t >= 0 && s >= 0 && H5Tget_class(t) == H5T_STRING && H5Sget_simple_extent_npoints(s) == 1)
      rc = mf__h5_read_string_values(a, 1, t, 1, out);
  }
  mf__h5_close(&t);
  mf__h5_close(&s);
  mf__h5_close(&a);
  if (rc) {
    H5Eclear2(H5E_DEFAULT);
    return mf_set_error(MF_EFORMAT, "%s: attribute '%s' of / is not a single string", r->path,
                        name);
  }
  return MF_OK;
}

static mf_status read_rate_attr(const reader *r, double *out) {
  *out = 0;
  if (H5Aexists(r->file, "sample_rate") <= 0) {
    H5Eclear2(H5E_DEFAULT);
    return MF_OK;
  }
  hid_t a = H5Aopen(r->file, "sample_rate", H5P_DEFAULT), t = H5I_INVALID_HID, s = H5I_INVALID_HID;
  int ok = 0;
  if (a >= 0) {
    t = H5Aget_type(a);
    s = H5Aget_space(a);
    H5T_class_t c = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    ok = (c == H5T_FLOAT || c == H5T_INTEGER) && H5Sget_simple_extent_npoints(s) == 1 &&
         H5Aread(a, H5T_NATIVE_DOUBLE, out) >= 0;
  }
  mf__h5_close(&t);
  mf__h5_close(&s);
  mf__h5_close(&a);
  if (!ok) {
    H5Eclear2(H5E_DEFAULT);
    return mf_set_error(MF_EFORMAT, "%s: attribute 'sample_rate' of / is not a single number",
                        r->path);
  }
  return MF_OK;
}

static mf_status read_ints(const reader *r, hid_t d, const char *name, int32_t *buf) {
  if (H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
    char why[256];
    mf__h5_reason(why);
    return mf_set_error(MF_EFORMAT, "%s: could not read %s (HDF5: %s)", r->path, name, why);
  }
  return MF_OK;
}

/* Finds the first row holding NaN or infinity; -1 when every value is finite. The test is
 * written as a compare the compiler vectorises (a NaN fails every comparison). */
static int64_t first_non_finite_row(const float *x, int64_t n, int64_t row_size) {
  for (int64_t r = 0; r < n; r++) {
    const float *p = x + r * row_size;
    int bad = 0;
    for (int64_t i = 0; i < row_size; i++) bad |= !(p[i] >= -FLT_MAX && p[i] <= FLT_MAX);
    if (bad) return r;
  }
  return -1;
}

static mf_status load_into(const reader *r, mf_dataset *ds) {
  hid_t df = H5I_INVALID_HID, dl = H5I_INVALID_HID, dt = H5I_INVALID_HID, dsg = H5I_INVALID_HID;
  hsize_t fdims[MF_MAX_DIMS], dims[MF_MAX_DIMS];
  int frank, rank;
  mf_status st = open_checked(r, "/features", H5T_FLOAT, "float32 features", 0, &df, fdims, &frank);
  if (st) return st;
  int64_t n = (int64_t)fdims[0];
  const char *names[3] = {"/labels", "/track", "/segment"};
  hid_t *ids[3] = {&dl, &dt, &dsg};
  for (int k = 0; k < 3 && !st; k++) {
    st = open_checked(r, names[k], H5T_INTEGER, "integers", 1, ids[k], dims, &rank);
    if (!st && (int64_t)dims[0] != n)
      st = mf_set_error(MF_EFORMAT, "%s: %s has %llu rows but /features has %lld", r->path,
                        names[k], (unsigned long long)dims[0], (long long)n);
  }
  if (!st && n == 0) st = mf_set_error(MF_EFORMAT, "%s: /features has no rows", r->path);
  if (!st) st = read_string_list(r, "/classes", &ds->info.classes, &ds->info.n_classes);
  if (!st) st = read_string_list(r, "/tracks", &ds->info.tracks, &ds->info.n_tracks);
  if (!st && ds->info.n_classes == 0)
    st = mf_set_error(MF_EFORMAT, "%s: /classes is empty; a dataset needs at least one class",
                      r->path);
  if (st) goto done;

  ds->info.sample_shape.ndim = frank - 1;
  for (int i = 0; i < MF_MAX_DIMS; i++)
    ds->info.sample_shape.d[i] = i < frank - 1 ? (int64_t)fdims[i + 1] : 1;
  ds->n = n;
  ds->row_size = mf_shape_numel(ds->info.sample_shape);
  size_t total = (size_t)n * (size_t)ds->row_size;
  if (ds->row_size > 0 && total / (size_t)ds->row_size != (size_t)n) {
    st = mf_set_error(MF_ENOMEM, "%s: /features is too large to address", r->path);
    goto done;
  }
  ds->features = malloc(total * sizeof(float));
  ds->labels = malloc((size_t)n * sizeof(int32_t));
  ds->track = malloc((size_t)n * sizeof(int32_t));
  ds->segment = malloc((size_t)n * sizeof(int32_t));
  if (!ds->features || !ds->labels || !ds->track || !ds->segment) {
    st =
        mf_set_error(MF_ENOMEM, "%s: out of memory for %lld rows of %lld floats (%.1f GB)", r->path,
                     (long long)n, (long long)ds->row_size, (double)total * sizeof(float) / 1e9);
    goto done;
  }
  if (H5Dread(df, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, ds->features) < 0) {
    char why[256];
    mf__h5_reason(why);
    st =
        mf_set_error(MF_EFORMAT, "%s: could not read /features (HDF5: %s); the file may be damaged",
                     r->path, why);
    goto done;
  }
  if ((st = read_ints(r, dl, "/labels", ds->labels)) ||
      (st = read_ints(r, dt, "/track", ds->track)) ||
      (st = read_ints(r, dsg, "/segment", ds->segment)))
    goto done;

  int c = ds->info.n_classes, t = ds->info.n_tracks;
  for (int64_t i = 0; i < n; i++) {
    if (ds->labels[i] < 0 || ds->labels[i] >= c) {
      st = mf_set_error(MF_EFORMAT,
                        "%s: label %d at row %lld is outside the %d classes (0..%d in /classes)",
                        r->path, ds->labels[i], (long long)i, c, c - 1);
      goto done;
    }
    if (ds->track[i] < 0 || ds->track[i] >= t) {
      st = mf_set_error(MF_EFORMAT, "%s: track %d at row %lld is outside the %d tracks in /tracks",
                        r->path, ds->track[i], (long long)i, t);
      goto done;
    }
    if (ds->segment[i] < 0) {
      st = mf_set_error(MF_EFORMAT, "%s: segment %d at row %lld is negative", r->path,
                        ds->segment[i], (long long)i);
      goto done;
    }
  }
  int64_t bad = first_non_finite_row(ds->features, n, ds->row_size);
  if (bad >= 0) {
    st = mf_set_error(MF_EFORMAT,
                      "%s: row %lld of /features holds NaN or infinity; re-extract the dataset "
                      "(or drop that row) before training",
                      r->path, (long long)bad);
    goto done;
  }
  if ((st = read_string_attr(r, "feature", "", &ds->info.feature)) ||
      (st = read_string_attr(r, "feature_params", "{}", &ds->info.feature_params)) ||
      (st = read_string_attr(r, "segmenting", "{}", &ds->info.segmenting)) ||
      (st = read_string_attr(r, "source", "", &ds->info.source)))
    goto done;
  st = read_rate_attr(r, &ds->info.sample_rate);
  int64_t ta;
  ds->info.time_axis = mf__h5_read_int64_attr(r->file, "time_axis", &ta) == 0 ? (int)ta : -1;
done:
  mf__h5_close(&df);
  mf__h5_close(&dl);
  mf__h5_close(&dt);
  mf__h5_close(&dsg);
  return st;
}

mf_status mf_dataset_load(const char *path, mf_dataset **out) {
  *out = NULL;
  mf__h5_quiet();
  struct stat sb;
  if (stat(path, &sb) != 0) return mf_set_error(MF_ENOTFOUND, "%s: no such file", path);
  if (S_ISDIR(sb.st_mode))
    return mf_set_error(MF_EINVAL, "%s: is a folder; expected a dataset file (.h5)", path);
  if (H5Fis_hdf5(path) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    return mf_set_error(MF_EFORMAT, "%s: not an HDF5 file (or damaged)", path);
  }
  reader r = {path, H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT)};
  if (r.file < 0) {
    char why[256];
    mf__h5_reason(why);
    return mf_set_error(MF_EFORMAT, "%s: not an HDF5 file (or damaged): %s", path, why);
  }
  mf_dataset *ds = calloc(1, sizeof *ds);
  mf_status st = ds ? load_into(&r, ds) : mf_set_error(MF_ENOMEM, "%s: out of memory", path);
  H5Fclose(r.file);
  if (st) {
    mf_dataset_free(ds);
    return st;
  }
  *out = ds;
  return MF_OK;
}

void mf_dataset_free(mf_dataset *ds) {
  if (!ds) return;
  mf_dataset_info_clear(&ds->info);
  free(ds->features);
  free(ds->labels);
  free(ds->track);
  free(ds->segment);
  free(ds);
}
