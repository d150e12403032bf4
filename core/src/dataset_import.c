/* dataset_import.c — the notebooks' feature files (MFCC data.json, folders of .npy
 * spectrograms) converted into melforge datasets; see dataset_import.h. */
#include "dataset_import.h"
#include "fileio.h"

#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define DEFAULT_RATE 22050.0
/* Rows are converted and appended in batches of about this many bytes. */
#define BATCH_BYTES (4 << 20)
#define PROGRESS_BYTES (8 << 20)

static void report(const mf_import_options *opt, const char *stage, const char *unit, int64_t done,
                   int64_t total) {
  if (opt && opt->progress) opt->progress(stage, unit, done, total, opt->user);
}

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

static int64_t batch_rows(int64_t row_size) {
  int64_t b = BATCH_BYTES / (row_size * (int64_t)sizeof(float));
  return b < 1 ? 1 : b;
}

static int all_finite(const float *x, int64_t n) {
  int bad = 0;
  for (int64_t i = 0; i < n; i++) bad |= !(x[i] >= -FLT_MAX && x[i] <= FLT_MAX);
  return !bad;
}

/* ------------------------------------------------------------------------------------ */
/* JSON (the MFCC notebook) */

typedef struct json_reader {
  FILE *f;
  int64_t done, total, next_report;
  int failed_errno;
  const mf_import_options *opt;
  char stage[256];
} json_reader;

/* json_load_callback hands us its buffer, so parsing streams through the file once and the
 * progress callback sees bytes as they are consumed. */
static size_t json_read_chunk(void *buf, size_t len, void *data) {
  json_reader *r = data;
  size_t got = fread(buf, 1, len, r->f);
  if (got == 0 && ferror(r->f)) {
    r->failed_errno = errno ? errno : EIO;
    return (size_t)-1;
  }
  r->done += (int64_t)got;
  if (r->done >= r->next_report || got == 0) {
    report(r->opt, r->stage, "bytes", r->done, r->total);
    r->next_report = r->done + PROGRESS_BYTES;
  }
  return got;
}

static const char *FORMAT_HINT =
    "expected the MFCC notebook's format {\"mapping\": [genre names], \"labels\": [int], "
    "\"mfcc\": [[[13 floats] x frames] x segments]}";

/* Copies segment i ([frames][n_mfcc] nested lists) into dst, checking every size. */
static mf_status json_segment(const char *path, json_t *seg, size_t i, size_t frames, size_t n_mfcc,
                              float *dst) {
  if (!json_is_array(seg))
    return mf_set_error(MF_EFORMAT, "%s: mfcc[%zu] is not a list of frames; %s", path, i,
                        FORMAT_HINT);
  if (json_array_size(seg) != frames)
    return mf_set_error(MF_EFORMAT,
                        "%s: segment %zu has %zu frames but segment 0 has %zu; rows must have "
                        "equal shapes (the notebook keeps only segments of the expected length "
                        "and drops short ones: drop segment %zu and its label, then import again)",
                        path, i, json_array_size(seg), frames, i);
  for (size_t t = 0; t < frames; t++) {
    json_t *fr = json_array_get(seg, t);
    if (!json_is_array(fr) || json_array_size(fr) != n_mfcc)
      return mf_set_error(MF_EFORMAT,
                          "%s: mfcc[%zu][%zu] has %zu values but mfcc[0][0] has %zu; every frame "
                          "needs the same number of coefficients",
                          path, i, t, json_is_array(fr) ? json_array_size(fr) : 0, n_mfcc);
    for (size_t k = 0; k < n_mfcc; k++) {
      json_t *v = json_array_get(fr, k);
      if (!json_is_number(v))
        return mf_set_error(MF_EFORMAT, "%s: mfcc[%zu][%zu][%zu] is not a number", path, i, t, k);
      double x = json_number_value(v);
      if (!(fabs(x) <= FLT_MAX))
        return mf_set_error(MF_EFORMAT, "%s: mfcc[%zu][%zu][%zu] = %g does not fit a float32", path,
                            i, t, k, x);
      dst[t * n_mfcc + k] = (float)x;
    }
  }
  return MF_OK;
}

static mf_status json_label(const char *path, json_t *labels, size_t i, int n_classes,
                            int32_t *out) {
  json_t *v = json_array_get(labels, i);
  double x = json_is_number(v) ? json_number_value(v) : NAN;
  if (!(x == floor(x)))
    return mf_set_error(MF_EFORMAT, "%s: labels[%zu] is not an integer class index", path, i);
  if (x < 0 || x >= n_classes)
    return mf_set_error(
        MF_EFORMAT, "%s: label %.0f at row %zu is outside the %d classes in \"mapping\" (0..%d)",
        path, x, i, n_classes, n_classes - 1);
  *out = (int32_t)x;
  return MF_OK;
}

/* Reads and checks the top level: mapping, labels, mfcc and the row shape from mfcc[0][0]. */
static mf_status json_layout(const char *path, json_t *root, json_t **mapping, json_t **labels,
                             json_t **mfcc, size_t *frames, size_t *n_mfcc) {
  if (!json_is_object(root))
    return mf_set_error(MF_EFORMAT, "%s: the top level is not an object; %s", path, FORMAT_HINT);
  *mapping = json_object_get(root, "mapping");
  *labels = json_object_get(root, "labels");
  *mfcc = json_object_get(root, "mfcc");
  const char *missing = !*mfcc ? "mfcc" : !*labels ? "labels" : !*mapping ? "mapping" : NULL;
  if (missing) return mf_set_error(MF_EFORMAT, "%s: no \"%s\" key; %s", path, missing, FORMAT_HINT);
  if (!json_is_array(*mapping) || json_array_size(*mapping) == 0)
    return mf_set_error(MF_EFORMAT, "%s: \"mapping\" must be a non-empty list of genre names",
                        path);
  for (size_t c = 0; c < json_array_size(*mapping); c++)
    if (!json_is_string(json_array_get(*mapping, c)))
      return mf_set_error(MF_EFORMAT, "%s: mapping[%zu] is not a string", path, c);
  if (json_array_size(*mapping) > INT32_MAX)
    return mf_set_error(MF_EFORMAT, "%s: too many classes in \"mapping\"", path);
  if (!json_is_array(*mfcc) || json_array_size(*mfcc) == 0)
    return mf_set_error(MF_EFORMAT, "%s: \"mfcc\" must be a non-empty list of segments", path);
  if (!json_is_array(*labels))
    return mf_set_error(MF_EFORMAT, "%s: \"labels\" must be a list of class indices", path);
  if (json_array_size(*labels) != json_array_size(*mfcc))
    return mf_set_error(MF_EFORMAT, "%s: \"labels\" has %zu entries but \"mfcc\" has %zu segments",
                        path, json_array_size(*labels), json_array_size(*mfcc));
  if (json_array_size(*mfcc) > INT32_MAX)
    return mf_set_error(MF_EFORMAT, "%s: too many segments for one dataset", path);
  json_t *s0 = json_array_get(*mfcc, 0), *f0 = json_array_get(s0, 0);
  if (!json_is_array(s0) || json_array_size(s0) == 0 || !json_is_array(f0) ||
      json_array_size(f0) == 0)
    return mf_set_error(MF_EFORMAT, "%s: mfcc[0] is not a non-empty list of frames; %s", path,
                        FORMAT_HINT);
  *frames = json_array_size(s0);
  *n_mfcc = json_array_size(f0);
  return MF_OK;
}

static mf_status json_rows(const char *path, json_t *mfcc, json_t *labels, int n_classes,
                           size_t frames, size_t n_mfcc, mf_dataset_writer *w,
                           const mf_import_options *opt) {
  int64_t n = (int64_t)json_array_size(mfcc), row = (int64_t)(frames * n_mfcc);
  int64_t cap = batch_rows(row);
  float *buf = malloc((size_t)(cap * row) * sizeof(float));
  int32_t *lab = malloc((size_t)cap * 3 * sizeof(int32_t));
  if (!buf || !lab) {
    free(buf);
    free(lab);
    return mf_set_error(MF_ENOMEM, "%s: out of memory", path);
  }
  int32_t *trk = lab + cap, *seg = lab + 2 * cap;
  mf_status st = MF_OK;
  for (int64_t start = 0; start < n && !st; start += cap) {
    int64_t m = n - start < cap ? n - start : cap;
    for (int64_t j = 0; j < m && !st; j++) {
      size_t i = (size_t)(start + j);
      st = json_segment(path, json_array_get(mfcc, i), i, frames, n_mfcc, buf + j * row);
      if (!st) st = json_label(path, labels, i, n_classes, &lab[j]);
      trk[j] = (int32_t)i;
      seg[j] = 0;
      /* The tree is the big copy; let each segment go as soon as it is converted. */
      if (!st) json_array_set_new(mfcc, i, json_null());
    }
    if (!st) st = mf_dataset_writer_append(w, buf, m, lab, trk, seg);
    report(opt, "converting", "rows", start + m, n);
  }
  free(buf);
  free(lab);
  return st;
}

mf_status mf_import_json(const char *json_path, const char *out_path, const mf_import_options *opt,
                         mf_import_summary *summary) {
  memset(summary, 0, sizeof *summary);
  struct stat sb;
  if (stat(json_path, &sb) != 0) return mf_set_error(MF_ENOTFOUND, "%s: no such file", json_path);
  FILE *f = fopen(json_path, "rb");
  if (!f) return mf_set_error(MF_EIO, "%s: cannot open (%s)", json_path, strerror(errno));
  json_reader jr = {.f = f, .total = (int64_t)sb.st_size, .opt = opt};
  snprintf(jr.stage, sizeof jr.stage, "reading %s", base_name(json_path));
  json_error_t err;
  json_t *root = json_load_callback(json_read_chunk, &jr, 0, &err);
  fclose(f);
  if (!root) {
    if (jr.failed_errno)
      return mf_set_error(MF_EIO, "%s: read error (%s)", json_path, strerror(jr.failed_errno));
    if (err.line > 0)
      return mf_set_error(MF_EFORMAT, "%s:%d:%d: %s", json_path, err.line, err.column, err.text);
    return mf_set_error(MF_EFORMAT, "%s: %s", json_path, err.text);
  }
  json_t *mapping = NULL, *labels = NULL, *mfcc = NULL;
  size_t frames = 0, n_mfcc = 0;
  mf_status st = json_layout(json_path, root, &mapping, &labels, &mfcc, &frames, &n_mfcc);
  if (st) {
    json_decref(root);
    return st;
  }
  int n_classes = (int)json_array_size(mapping);
  int n = (int)json_array_size(mfcc);
  mf_dataset_info info = {0};
  info.sample_shape = MF_SHAPE((int64_t)frames, (int64_t)n_mfcc);
  info.n_classes = n_classes;
  info.classes = calloc((size_t)n_classes, sizeof *info.classes);
  info.n_tracks = n;
  info.tracks = calloc((size_t)n, sizeof *info.tracks);
  char params[64];
  snprintf(params, sizeof params, "{\"n_mfcc\": %zu}", n_mfcc);
  json_t *sr = json_object_get(root, "sr");
  info.sample_rate = opt && opt->sample_rate > 0                       ? opt->sample_rate
                     : json_is_number(sr) && json_number_value(sr) > 0 ? json_number_value(sr)
                                                                       : DEFAULT_RATE;
  info.feature = strdup("json");
  info.time_axis = 0; /* the notebook's MFCC rows are [frames, n_mfcc] */
  info.feature_params = strdup(params);
  info.segmenting = strdup("{\"mode\": \"imported\", \"grouped_by_track\": false}");
  info.source = strdup(json_path);
  int oom = !info.classes || !info.tracks || !info.feature || !info.feature_params ||
            !info.segmenting || !info.source;
  for (int c = 0; !oom && c < n_classes; c++)
    oom = !(info.classes[c] = strdup(json_string_value(json_array_get(mapping, (size_t)c))));
  /* No track ids in this format: each segment stands alone, named by where it came from. */
  for (int i = 0; !oom && i < n; i++) {
    char name[40];
    snprintf(name, sizeof name, "mfcc[%d]", i);
    oom = !(info.tracks[i] = strdup(name));
  }
  mf_dataset_writer *w = NULL;
  if (oom)
    st = mf_set_error(MF_ENOMEM, "%s: out of memory", json_path);
  else
    st = mf_dataset_writer_open(out_path, &info, &w);
  if (!st) st = json_rows(json_path, mfcc, labels, n_classes, frames, n_mfcc, w, opt);
  json_decref(root);
  if (st)
    mf_dataset_writer_abort(w);
  else
    st = mf_dataset_writer_commit(w);
  if (!st) {
    summary->rows = n;
    summary->sample_shape = info.sample_shape;
    summary->classes = n_classes;
    summary->tracks = n;
    summary->grouped_by_track = 0;
  }
  mf_dataset_info_clear(&info);
  return st;
}

/* ------------------------------------------------------------------------------------ */
/* .npy */

typedef struct npy_header {
  int f8;      /* float64 (else float32) */
  int fortran; /* column-major data */
  mf_shape shape;
  int64_t numel;
  long data_offset;
} npy_header;

/* Finds 'key': (either quote) in a header dict and returns the text after the colon. */
static const char *npy_value(const char *hdr, const char *key) {
  char q1[40], q2[40];
  snprintf(q1, sizeof q1, "'%s'", key);
  snprintf(q2, sizeof q2, "\"%s\"", key);
  const char *p = strstr(hdr, q1);
  if (!p) p = strstr(hdr, q2);
  if (!p) return NULL;
  p += strlen(q1);
  while (*p == ' ') p++;
  if (*p != ':') return NULL;
  p++;
  while (*p == ' ') p++;
  return p;
}

static mf_status npy_parse_dict(const char *path, const char *hdr, npy_header *h) {
  const char *d = npy_value(hdr, "descr"), *fo = npy_value(hdr, "fortran_order"),
             *sh = npy_value(hdr, "shape");
  if (!d || !fo || !sh)
    return mf_set_error(MF_EFORMAT, "%s: the .npy header has no '%s' entry: %.200s", path,
                        !d    ? "descr"
                        : !fo ? "fortran_order"
                              : "shape",
                        hdr);
  char descr[32] = "";
  if (*d == '\'' || *d == '"') {
    const char *end = strchr(d + 1, *d);
    if (end && end - d - 1 < (long)sizeof descr)
      snprintf(descr, sizeof descr, "%.*s", (int)(end - d - 1), d + 1);
  }
  if (!strcmp(descr, "<f4"))
    h->f8 = 0;
  else if (!strcmp(descr, "<f8"))
    h->f8 = 1;
  else
    return mf_set_error(MF_EFORMAT,
                        "%s: dtype '%s' is not supported; expected float32 ('<f4') or float64 "
                        "('<f8') — save with arr.astype(np.float32)",
                        path, descr[0] ? descr : "?");
  if (!strncmp(fo, "True", 4))
    h->fortran = 1;
  else if (!strncmp(fo, "False", 5))
    h->fortran = 0;
  else
    return mf_set_error(MF_EFORMAT, "%s: fortran_order is neither True nor False", path);
  if (*sh != '(') return mf_set_error(MF_EFORMAT, "%s: the .npy shape is not a tuple", path);
  int64_t dims[MF_MAX_DIMS];
  int nd = 0;
  const char *p = sh + 1;
  for (;;) {
    while (*p == ' ') p++;
    if (*p == ')') break;
    char *end;
    long long v = strtoll(p, &end, 10);
    if (end == p) return mf_set_error(MF_EFORMAT, "%s: cannot read the .npy shape %.40s", path, sh);
    if (nd == MF_MAX_DIMS - 1)
      return mf_set_error(MF_EFORMAT, "%s: arrays of more than %d dimensions are not supported",
                          path, MF_MAX_DIMS - 1);
    if (v < 1)
      return mf_set_error(MF_EFORMAT, "%s: the array is empty (a dimension of size %lld)", path, v);
    dims[nd++] = v;
    p = end;
    while (*p == ' ') p++;
    if (*p == ',') p++;
  }
  if (nd == 0)
    return mf_set_error(MF_EFORMAT, "%s: holds a single number; expected a spectrogram array",
                        path);
  h->shape = mf_shape_make(nd, dims);
  h->numel = mf_shape_numel(h->shape);
  return MF_OK;
}

static uint32_t le_u32(const unsigned char *b) {
  return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Reads the header and leaves f at the data; checks the file holds exactly the data the
 * header describes (a truncated or mislabelled file fails here, not later). */
static mf_status npy_open(const char *path, FILE **fp, npy_header *h) {
  *fp = NULL;
  FILE *f = fopen(path, "rb");
  if (!f)
    return mf_set_error(errno == ENOENT ? MF_ENOTFOUND : MF_EIO, "%s: cannot open (%s)", path,
                        strerror(errno));
  unsigned char pre[12];
  size_t got = fread(pre, 1, sizeof pre, f);
  mf_status st = MF_OK;
  uint32_t hlen = 0;
  long off = 0;
  if (got < 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
    st = mf_set_error(MF_EFORMAT, "%s: not a .npy file (no \\x93NUMPY magic at the start)", path);
  } else if (pre[6] == 1) {
    hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8;
    off = 10;
  } else if (pre[6] == 2 || pre[6] == 3) {
    if (got < 12) st = mf_set_error(MF_EFORMAT, "%s: the .npy header is truncated", path);
    hlen = le_u32(pre + 8);
    off = 12;
  } else {
    st = mf_set_error(MF_EFORMAT, "%s: .npy format version %d.%d is not supported (1, 2 and 3 are)",
                      path, pre[6], pre[7]);
  }
  char *hdr = NULL;
  if (!st && hlen > (1u << 24))
    st = mf_set_error(MF_EFORMAT, "%s: the .npy header is implausibly long", path);
  if (!st) {
    hdr = malloc((size_t)hlen + 1);
    if (!hdr) st = mf_set_error(MF_ENOMEM, "%s: out of memory", path);
  }
  if (!st && (fseek(f, off, SEEK_SET) != 0 || fread(hdr, 1, hlen, f) != hlen))
    st = mf_set_error(MF_EFORMAT, "%s: the .npy header is truncated", path);
  if (!st) {
    hdr[hlen] = '\0';
    st = npy_parse_dict(path, hdr, h);
  }
  free(hdr);
  if (!st) {
    struct stat sb;
    h->data_offset = off + (long)hlen;
    int64_t want = h->numel * (h->f8 ? 8 : 4), have = -1;
    if (fstat(fileno(f), &sb) == 0) have = (int64_t)sb.st_size - h->data_offset;
    char b[96];
    if (have != want)
      st = mf_set_error(MF_EFORMAT,
                        "%s: the header says %s %s (%lld bytes of data) but the file holds %lld; "
                        "is it truncated?",
                        path, mf_shape_str(h->shape, b, sizeof b), h->f8 ? "float64" : "float32",
                        (long long)want, (long long)have);
  }
  if (st) {
    fclose(f);
    return st;
  }
  *fp = f;
  return MF_OK;
}

static void byteswap_if_big_endian(void *p, int64_t n, int size) {
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  unsigned char *b = p;
  for (int64_t i = 0; i < n; i++, b += size)
    for (int k = 0; k < size / 2; k++) {
      unsigned char t = b[k];
      b[k] = b[size - 1 - k];
      b[size - 1 - k] = t;
    }
#else
  (void)p, (void)n, (void)size;
#endif
}

/* Reads the data of an opened file into dst as float32 in C order. scratch is grown as
 * needed and kept by the caller across files. */
static mf_status npy_data(const char *path, FILE *f, const npy_header *h, float *dst,
                          void **scratch, size_t *scratch_size) {
  size_t item = h->f8 ? 8 : 4, bytes = (size_t)h->numel * item;
  int direct = !h->f8 && !h->fortran;
  void *raw = dst;
  if (!direct) {
    if (*scratch_size < bytes) {
      void *p = realloc(*scratch, bytes);
      if (!p) return mf_set_error(MF_ENOMEM, "%s: out of memory", path);
      *scratch = p;
      *scratch_size = bytes;
    }
    raw = *scratch;
  }
  if (fread(raw, 1, bytes, f) != bytes)
    return mf_set_error(MF_EIO, "%s: read error (%s)", path,
                        ferror(f) ? strerror(errno) : "file ended early");
  byteswap_if_big_endian(raw, h->numel, (int)item);
  if (direct) return MF_OK;
  if (!h->fortran) {
    const double *s = raw;
    for (int64_t i = 0; i < h->numel; i++) dst[i] = (float)s[i];
    return MF_OK;
  }
  /* Fortran order: the source walks the first index fastest. Follow the source in order
   * and scatter into C order with an odometer over the indices. */
  int nd = h->shape.ndim;
  int64_t cstride[MF_MAX_DIMS], idx[MF_MAX_DIMS] = {0};
  cstride[nd - 1] = 1;
  for (int k = nd - 2; k >= 0; k--) cstride[k] = cstride[k + 1] * h->shape.d[k + 1];
  int64_t at = 0;
  for (int64_t i = 0; i < h->numel; i++) {
    dst[at] = h->f8 ? (float)((const double *)raw)[i] : ((const float *)raw)[i];
    for (int k = 0; k < nd; k++) {
      at += cstride[k];
      if (++idx[k] < h->shape.d[k]) break;
      at -= cstride[k] * h->shape.d[k];
      idx[k] = 0;
    }
  }
  return MF_OK;
}

mf_status mf_npy_read(const char *path, float **data, mf_shape *shape) {
  *data = NULL;
  FILE *f;
  npy_header h;
  mf_status st = npy_open(path, &f, &h);
  if (st) return st;
  float *out = malloc((size_t)h.numel * sizeof(float));
  void *scratch = NULL;
  size_t scratch_size = 0;
  st = out ? npy_data(path, f, &h, out, &scratch, &scratch_size)
           : mf_set_error(MF_ENOMEM, "%s: out of memory", path);
  free(scratch);
  fclose(f);
  if (st) {
    free(out);
    return st;
  }
  *data = out;
  *shape = h.shape;
  return MF_OK;
}

typedef struct name_list {
  char **v;
  int n, cap;
} name_list;

static int list_push(name_list *l, const char *s) {
  if (l->n == l->cap) {
    int cap = l->cap ? 2 * l->cap : 16;
    char **v = realloc(l->v, (size_t)cap * sizeof *v);
    if (!v) return -1;
    l->v = v;
    l->cap = cap;
  }
  return (l->v[l->n] = strdup(s)) ? (l->n++, 0) : -1;
}

static void list_free(name_list *l) {
  for (int i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  memset(l, 0, sizeof *l);
}

static int by_strcmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted entries of dir: sub-folders (want_dirs) or .npy files; hidden names skipped. */
static mf_status list_dir(const char *dir, int want_dirs, name_list *out, int *ignored) {
  DIR *d = opendir(dir);
  if (!d)
    return mf_set_error(errno == ENOENT ? MF_ENOTFOUND : MF_EIO, "%s: cannot open the folder (%s)",
                        dir, strerror(errno));
  mf_status st = MF_OK;
  struct dirent *e;
  size_t dlen = strlen(dir);
  char *full = malloc(dlen + 2 + 256 + 1);
  while (!st && full && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    snprintf(full, dlen + 2 + 256 + 1, "%s/%s", dir, e->d_name);
    struct stat sb;
    if (stat(full, &sb) != 0) continue;
    int is_dir = S_ISDIR(sb.st_mode);
    size_t len = strlen(e->d_name);
    int keep = want_dirs ? is_dir : !is_dir && len > 4 && !strcasecmp(e->d_name + len - 4, ".npy");
    if (keep) {
      if (list_push(out, e->d_name)) st = mf_set_error(MF_ENOMEM, "%s: out of memory", dir);
    } else if (ignored && !is_dir) {
      (*ignored)++;
    }
  }
  if (!full) st = mf_set_error(MF_ENOMEM, "%s: out of memory", dir);
  free(full);
  closedir(d);
  if (!st && out->n > 1) qsort(out->v, (size_t)out->n, sizeof *out->v, by_strcmp);
  return st;
}

/* Scans DIR/<class>/<file>.npy into classes, tracks (relative paths) and labels. */
static mf_status npy_scan(const char *dir, name_list *classes, name_list *tracks, int32_t **labels,
                          int *ignored) {
  struct stat sb;
  if (stat(dir, &sb) != 0) return mf_set_error(MF_ENOTFOUND, "%s: no such folder", dir);
  if (!S_ISDIR(sb.st_mode))
    return mf_set_error(MF_EINVAL,
                        "%s: not a folder; expected one sub-folder of .npy files per genre", dir);
  mf_status st = list_dir(dir, 1, classes, NULL);
  if (st) return st;
  if (classes->n == 0)
    return mf_set_error(MF_EFORMAT,
                        "%s: has no class folders; expected one sub-folder of .npy "
                        "files per genre (%s/blues/blues.00000.npy, ...)",
                        dir, dir);
  int cap = 0;
  *labels = NULL;
  for (int c = 0; c < classes->n && !st; c++) {
    char *cdir = mf__path_join(dir, classes->v[c]);
    name_list files = {0};
    st = cdir ? list_dir(cdir, 0, &files, ignored) : mf_set_error(MF_ENOMEM, "out of memory");
    if (!st && files.n == 0)
      st = mf_set_error(MF_EFORMAT,
                        "%s: has no .npy files; every class folder needs at least one (remove the "
                        "folder to drop the class)",
                        cdir);
    for (int i = 0; i < files.n && !st; i++) {
      char *rel = mf__path_join(classes->v[c], files.v[i]);
      if (!rel || list_push(tracks, rel)) st = mf_set_error(MF_ENOMEM, "out of memory");
      free(rel);
      if (!st && tracks->n > cap) {
        cap = 2 * tracks->n;
        int32_t *l = realloc(*labels, (size_t)cap * sizeof *l);
        if (!l)
          st = mf_set_error(MF_ENOMEM, "out of memory");
        else
          *labels = l;
      }
      if (!st) (*labels)[tracks->n - 1] = c;
    }
    list_free(&files);
    free(cdir);
  }
  return st;
}

static mf_status npy_rows(const char *dir, const name_list *tracks, const int32_t *labels,
                          const npy_header *first, const char *first_path, mf_dataset_writer *w,
                          const mf_import_options *opt) {
  int64_t row = first->numel, cap = batch_rows(row);
  float *buf = malloc((size_t)(cap * row) * sizeof(float));
  int32_t *ids = malloc((size_t)cap * 2 * sizeof(int32_t));
  void *scratch = NULL;
  size_t scratch_size = 0;
  mf_status st = buf && ids ? MF_OK : mf_set_error(MF_ENOMEM, "%s: out of memory", dir);
  int32_t *seg = ids ? ids + cap : NULL;
  char stage[256];
  snprintf(stage, sizeof stage, "reading %s", base_name(dir));
  for (int64_t start = 0; start < tracks->n && !st; start += cap) {
    int64_t m = tracks->n - start < cap ? tracks->n - start : cap;
    for (int64_t j = 0; j < m && !st; j++) {
      int i = (int)(start + j);
      char *path = mf__path_join(dir, tracks->v[i]);
      FILE *f = NULL;
      npy_header h;
      st = path ? npy_open(path, &f, &h) : mf_set_error(MF_ENOMEM, "out of memory");
      if (!st && !mf_shape_equal(h.shape, first->shape)) {
        char a[96], b[96];
        st = mf_set_error(MF_EFORMAT,
                          "%s: has shape %s but %s has %s; every array must have the same shape "
                          "(crop or pad them to one length)",
                          path, mf_shape_str(h.shape, a, sizeof a), first_path,
                          mf_shape_str(first->shape, b, sizeof b));
      }
      if (!st) st = npy_data(path, f, &h, buf + j * row, &scratch, &scratch_size);
      if (!st && !all_finite(buf + j * row, row))
        st = mf_set_error(MF_EFORMAT, "%s: holds NaN or infinity (after conversion to float32)",
                          path);
      if (f) fclose(f);
      free(path);
      ids[j] = i;
      seg[j] = 0;
    }
    if (!st) st = mf_dataset_writer_append(w, buf, m, labels + start, ids, seg);
    report(opt, stage, "files", start + m, tracks->n);
  }
  free(scratch);
  free(buf);
  free(ids);
  return st;
}

mf_status mf_import_npy(const char *dir, const char *out_path, const mf_import_options *opt,
                        mf_import_summary *summary) {
  memset(summary, 0, sizeof *summary);
  name_list classes = {0}, tracks = {0};
  int32_t *labels = NULL;
  int ignored = 0;
  mf_status st = npy_scan(dir, &classes, &tracks, &labels, &ignored);
  npy_header first;
  char *first_path = NULL;
  if (!st) {
    FILE *f = NULL;
    first_path = mf__path_join(dir, tracks.v[0]);
    st = first_path ? npy_open(first_path, &f, &first) : mf_set_error(MF_ENOMEM, "out of memory");
    if (f) fclose(f);
  }
  mf_dataset_writer *w = NULL;
  mf_dataset_info info = {0};
  if (!st) {
    info.sample_shape = first.shape;
    info.n_classes = classes.n;
    info.classes = classes.v;
    info.n_tracks = tracks.n;
    info.tracks = tracks.v;
    info.feature = "npy";
    info.time_axis = -1; /* unknown: per-band scaling treats axis 0 as the band axis */
    info.feature_params = "{}";
    info.sample_rate = opt && opt->sample_rate > 0 ? opt->sample_rate : DEFAULT_RATE;
    info.segmenting = "{\"mode\": \"imported\", \"grouped_by_track\": true}";
    info.source = (char *)dir;
    st = mf_dataset_writer_open(out_path, &info, &w);
  }
  if (!st) st = npy_rows(dir, &tracks, labels, &first, first_path, w, opt);
  if (st)
    mf_dataset_writer_abort(w);
  else
    st = mf_dataset_writer_commit(w);
  if (!st) {
    summary->rows = tracks.n;
    summary->sample_shape = first.shape;
    summary->classes = classes.n;
    summary->tracks = tracks.n;
    summary->grouped_by_track = 1;
    summary->ignored = ignored;
  }
  free(first_path);
  free(labels);
  list_free(&classes);
  list_free(&tracks);
  return st;
}
