/* extract.c — segmenting, per-track feature extraction, folder -> HDF5 dataset. */
#define _GNU_SOURCE
#include "melforge/extract.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "melforge/audio.h"
#include "melforge/dataset.h"

/* ---- segmenting --------------------------------------------------------------------------- */

static const char *const MODE_NAMES[] = {"equal", "window"};
static const char *const PAD_NAMES[] = {"min", "zero", "drop"};
static const char *const SCOPE_NAMES[] = {"segment", "track"};

mf_segmenting mf_segmenting_defaults(void) {
  mf_segmenting s = {MF_SEG_EQUAL, 10, 30.0, 3.0, 3.0, MF_PAD_MIN, MF_SCOPE_SEGMENT};
  return s;
}

mf_status mf_segmenting_check(const mf_segmenting *s) {
  if (s->mode == MF_SEG_EQUAL) {
    if (s->segments < 1 || s->segments > 100000)
      return mf_set_error(MF_EINVAL, "segmenting: segments must be in [1, 100000], got %d",
                          s->segments);
    if (!(s->track_seconds >= 0) || s->track_seconds > 36000)
      return mf_set_error(MF_EINVAL,
                          "segmenting: track_seconds must be in [0, 36000] (0: each file's own "
                          "length), got %g",
                          s->track_seconds);
  } else if (s->mode == MF_SEG_WINDOW) {
    if (!(s->window_seconds > 0) || s->window_seconds > 3600)
      return mf_set_error(MF_EINVAL, "segmenting: window_seconds must be in (0, 3600], got %g",
                          s->window_seconds);
    if (!(s->hop_seconds > 0) || s->hop_seconds > 3600)
      return mf_set_error(MF_EINVAL, "segmenting: hop_seconds must be in (0, 3600], got %g",
                          s->hop_seconds);
  } else {
    return mf_set_error(MF_EINVAL, "segmenting: unknown mode %d", (int)s->mode);
  }
  if (s->pad < MF_PAD_MIN || s->pad > MF_PAD_DROP)
    return mf_set_error(MF_EINVAL, "segmenting: unknown pad mode %d", (int)s->pad);
  if (s->scope < MF_SCOPE_SEGMENT || s->scope > MF_SCOPE_TRACK)
    return mf_set_error(MF_EINVAL, "segmenting: unknown scope %d", (int)s->scope);
  return MF_OK;
}

static int lookup(const char *v, const char *const *names, int n) {
  for (int i = 0; i < n; i++)
    if (!strcmp(v, names[i])) return i;
  return -1;
}

static mf_status parse_number(const char *key, const char *value, double *out) {
  char *end;
  double d = strtod(value, &end);
  if (end == value || *end || !isfinite(d))
    return mf_set_error(MF_EINVAL, "segmenting: %s expects a number, got '%s'", key, value);
  *out = d;
  return MF_OK;
}

mf_status mf_segmenting_set(mf_segmenting *s, const char *key, const char *value) {
  double d = 0;
  int i;
  if (!strcmp(key, "mode")) {
    if ((i = lookup(value, MODE_NAMES, 2)) < 0)
      return mf_set_error(MF_EINVAL, "segmenting: mode must be equal or window, got '%s'", value);
    s->mode = (mf_seg_mode)i;
  } else if (!strcmp(key, "pad")) {
    if ((i = lookup(value, PAD_NAMES, 3)) < 0)
      return mf_set_error(MF_EINVAL, "segmenting: pad must be min, zero or drop, got '%s'", value);
    s->pad = (mf_pad_mode)i;
  } else if (!strcmp(key, "scope")) {
    if ((i = lookup(value, SCOPE_NAMES, 2)) < 0)
      return mf_set_error(MF_EINVAL, "segmenting: scope must be segment or track, got '%s'", value);
    s->scope = (mf_scope)i;
  } else if (!strcmp(key, "segments")) {
    if (parse_number(key, value, &d) || d != floor(d))
      return mf_set_error(MF_EINVAL, "segmenting: segments expects an integer, got '%s'", value);
    s->segments = (int)d;
  } else if (!strcmp(key, "track_seconds")) {
    if (parse_number(key, value, &s->track_seconds)) return MF_EINVAL;
  } else if (!strcmp(key, "window_seconds")) {
    if (parse_number(key, value, &s->window_seconds)) return MF_EINVAL;
    s->mode = MF_SEG_WINDOW;
  } else if (!strcmp(key, "hop_seconds")) {
    if (parse_number(key, value, &s->hop_seconds)) return MF_EINVAL;
  } else {
    static const char *const keys[] = {"mode",        "segments", "track_seconds", "window_seconds",
                                       "hop_seconds", "pad",      "scope"};
    const char *hint = mf_closest_name(key, keys, 7);
    return mf_set_error(MF_EINVAL,
                        "segmenting has no setting '%s'%s%s%s (settings: mode, "
                        "segments, track_seconds, window_seconds, hop_seconds, pad, scope)",
                        key, hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
  }
  return MF_OK;
}

char *mf_segmenting_to_json(const mf_segmenting *s) {
  json_t *o = json_object();
  json_object_set_new(o, "mode", json_string(MODE_NAMES[s->mode]));
  if (s->mode == MF_SEG_EQUAL) {
    json_object_set_new(o, "segments", json_integer(s->segments));
    json_object_set_new(o, "track_seconds", json_real(s->track_seconds));
  } else {
    json_object_set_new(o, "window_seconds", json_real(s->window_seconds));
    json_object_set_new(o, "hop_seconds", json_real(s->hop_seconds));
  }
  json_object_set_new(o, "pad", json_string(PAD_NAMES[s->pad]));
  json_object_set_new(o, "scope", json_string(SCOPE_NAMES[s->scope]));
  char *txt = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
  json_decref(o);
  return txt;
}

mf_status mf_segmenting_from_json(const char *text, mf_segmenting *out) {
  json_error_t err;
  json_t *o = json_loads(text, 0, &err);
  if (!o || !json_is_object(o)) {
    json_decref(o);
    return mf_set_error(MF_EFORMAT, "segmenting is not a JSON object (line %d, column %d: %s)",
                        err.line, err.column, err.text);
  }
  mf_segmenting s = mf_segmenting_defaults();
  const char *key;
  json_t *v;
  mf_status st = MF_OK;
  json_object_foreach(o, key, v) {
    char buf[64];
    if (json_is_string(v))
      snprintf(buf, sizeof buf, "%s", json_string_value(v));
    else if (json_is_number(v))
      snprintf(buf, sizeof buf, "%.17g", json_number_value(v));
    else {
      st = mf_set_error(MF_EFORMAT, "segmenting: '%s' has an unexpected JSON type", key);
      break;
    }
    if ((st = mf_segmenting_set(&s, key, buf)) != MF_OK) break;
  }
  json_decref(o);
  if (st == MF_OK) st = mf_segmenting_check(&s);
  if (st == MF_OK) *out = s;
  return st;
}

int64_t mf_segment_length(const mf_segmenting *s, double rate, int64_t track_samples) {
  if (s->mode == MF_SEG_WINDOW) return (int64_t)llround(s->window_seconds * rate);
  int64_t nominal =
      s->track_seconds > 0 ? (int64_t)llround(s->track_seconds * rate) : track_samples;
  return nominal / s->segments;
}

/* Segment start positions for a track of n samples; *count of them. Returns a malloc'd
 * array. A start is listed when its segment has at least one sample of audio. */
static int64_t *segment_starts(const mf_segmenting *s, int64_t seg_len, double rate, int64_t n,
                               int64_t *count) {
  int64_t cap = 16, k = 0;
  int64_t *st = malloc(sizeof *st * (size_t)cap);
  if (s->mode == MF_SEG_EQUAL) {
    for (int i = 0; i < s->segments; i++) {
      int64_t a = (int64_t)i * seg_len;
      if (a >= n) break;
      if (k == cap) st = realloc(st, sizeof *st * (size_t)(cap *= 2));
      st[k++] = a;
    }
  } else {
    int64_t hop = (int64_t)llround(s->hop_seconds * rate);
    if (hop < 1) hop = 1;
    for (int64_t a = 0; a < n; a += hop) {
      if (n - a < seg_len) {
        /* One final partial window, if padding is on, it is at least half a window, and the
         * last full window stopped short of the end. */
        int covered = k > 0 && st[k - 1] + seg_len >= n;
        if (s->pad != MF_PAD_DROP && 2 * (n - a) >= seg_len && !covered) {
          if (k == cap) st = realloc(st, sizeof *st * (size_t)(cap *= 2));
          st[k++] = a;
        }
        break;
      }
      if (k == cap) st = realloc(st, sizeof *st * (size_t)(cap *= 2));
      st[k++] = a;
    }
  }
  *count = k;
  return st;
}

/* Copies frames [f0, f0 + F) of a feature laid out as `shape` with time along `axis` into
 * dst (F frames), filling frames past the end with `fill`. */
static void cut_frames(const float *src, const mf_shape *shape, int axis, int64_t f0, int64_t F,
                       float fill, float *dst) {
  int64_t outer = 1, inner = 1, T = shape->d[axis];
  for (int i = 0; i < axis; i++) outer *= shape->d[i];
  for (int i = axis + 1; i < shape->ndim; i++) inner *= shape->d[i];
  for (int64_t o = 0; o < outer; o++)
    for (int64_t t = 0; t < F; t++) {
      float *d = dst + (o * F + t) * inner;
      int64_t ft = f0 + t;
      if (ft >= 0 && ft < T)
        memcpy(d, src + (o * T + ft) * inner, (size_t)inner * sizeof(float));
      else
        for (int64_t i = 0; i < inner; i++) d[i] = fill;
    }
}

static float min_of(const float *x, int64_t n) {
  float m = n ? x[0] : 0.0f;
  for (int64_t i = 1; i < n; i++) m = x[i] < m ? x[i] : m;
  return m;
}

mf_status mf_extract_track(const mf_feature *f, const mf_segmenting *s, const float *audio,
                           int64_t n, float **rows_out, int64_t *n_rows, int32_t **seg_out,
                           mf_shape *row_shape) {
  *rows_out = NULL;
  *n_rows = 0;
  if (seg_out) *seg_out = NULL;
  const double rate = mf_feature_sample_rate(f);
  if (n == 0) return mf_set_error(MF_EINVAL, "the file holds no audio samples");
  const int64_t seg_len = mf_segment_length(s, rate, n);
  if (seg_len < 1) return mf_set_error(MF_EINVAL, "a segment would be shorter than one sample");
  /* A track must fill at least one whole segment: a shorter one is mostly padding. */
  if (n < seg_len)
    return mf_set_error(MF_EINVAL, "shorter than one segment (%.2f s < %.2f s)", n / rate,
                        seg_len / rate);
  mf_feature_layout lay, full;
  if (mf_feature_layout_of(f, seg_len, &lay) != MF_OK) return MF_EINVAL;
  const int axis = lay.time_axis;
  const int64_t F = axis >= 0 ? lay.shape.d[axis] : 0;
  const int64_t row = mf_shape_numel(lay.shape);
  int64_t count;
  int64_t *starts = segment_starts(s, seg_len, rate, n, &count);
  float *rows = malloc(sizeof(float) * (size_t)(row * (count ? count : 1)));
  int32_t *segs = malloc(sizeof(int32_t) * (size_t)(count ? count : 1));
  float *tmp = NULL, *track_feat = NULL;
  mf_status st = MF_OK;
  int64_t k = 0;

  if (s->scope == MF_SCOPE_TRACK && axis >= 0) {
    if ((st = mf_feature_layout_of(f, n, &full)) != MF_OK) goto done;
    track_feat = malloc(sizeof(float) * (size_t)mf_shape_numel(full.shape));
    if ((st = mf_feature_compute(f, audio, n, track_feat)) != MF_OK) goto done;
  } else {
    tmp = malloc(sizeof(float) * (size_t)row);
  }
  const float track_min = track_feat ? min_of(track_feat, mf_shape_numel(full.shape)) : 0.0f;

  for (int64_t i = 0; i < count; i++) {
    const int64_t a = starts[i];
    const int64_t len = n - a < seg_len ? n - a : seg_len;
    const int is_short = len < seg_len;
    if (is_short && s->pad == MF_PAD_DROP) continue;
    float *dst = rows + k * row;
    if (track_feat) {
      const int64_t f0 = a / lay.hop;
      /* Frames past the track's end are padding: does this segment need any? */
      cut_frames(track_feat, &full.shape, axis, f0, F, s->pad == MF_PAD_ZERO ? 0.0f : track_min,
                 dst);
    } else if (!is_short || axis < 0) {
      if ((st = mf_feature_compute(f, audio + a, seg_len <= n - a ? seg_len : n - a, dst)) != MF_OK)
        goto done;
    } else {
      mf_feature_layout part;
      if ((st = mf_feature_layout_of(f, len, &part)) != MF_OK) goto done;
      if (mf_shape_numel(part.shape) > row)
        tmp = realloc(tmp, sizeof(float) * (size_t)mf_shape_numel(part.shape));
      if ((st = mf_feature_compute(f, audio + a, len, tmp)) != MF_OK) goto done;
      float fill = s->pad == MF_PAD_ZERO ? 0.0f : min_of(tmp, mf_shape_numel(part.shape));
      cut_frames(tmp, &part.shape, axis, 0, F, fill, dst);
    }
    segs[k++] = (int32_t)i;
  }
  if (k == 0) {
    st = mf_set_error(MF_EINVAL, "no segment left after dropping the short ones (%.2f s of audio)",
                      n / rate);
    goto done;
  }
done:
  free(starts);
  free(tmp);
  free(track_feat);
  if (st != MF_OK) {
    free(rows);
    free(segs);
    return st;
  }
  *rows_out = rows;
  *n_rows = k;
  if (row_shape) *row_shape = lay.shape;
  if (seg_out)
    *seg_out = segs;
  else
    free(segs);
  return MF_OK;
}

/* ---- folder scan --------------------------------------------------------------------------- */

typedef struct strlist {
  char **v;
  int n, cap;
} strlist;

static void strlist_add(strlist *l, const char *s) {
  if (l->n == l->cap)
    l->v = realloc(l->v, sizeof(char *) * (size_t)(l->cap = l->cap ? 2 * l->cap : 16));
  l->v[l->n++] = strdup(s);
}

static void strlist_free(strlist *l) {
  for (int i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Sorted names in dir that are directories (want_dirs) or audio files. */
static mf_status list_dir(const char *dir, int want_dirs, strlist *out) {
  DIR *d = opendir(dir);
  if (!d) return mf_set_error(MF_ENOTFOUND, "cannot open folder %s", dir);
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    char full[4096];
    snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
    if (want_dirs ? is_dir(full) : (!is_dir(full) && mf_audio_is_candidate(full)))
      strlist_add(out, e->d_name);
  }
  closedir(d);
  qsort(out->v, (size_t)out->n, sizeof(char *), cmp_str);
  return MF_OK;
}

/* ---- the whole folder -------------------------------------------------------------------- */

typedef struct track_result {
  float *rows;
  int32_t *segs;
  int64_t n_rows;
  mf_shape shape; /* of one row */
  char *error;    /* reason when skipped */
} track_result;

static double now_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

mf_status mf_extract_dataset(const mf_extract_config *cfg, mf_extract_summary *summary) {
  memset(summary, 0, sizeof *summary);
  const double t0 = now_seconds();
  const double rate = cfg->sample_rate > 0 ? cfg->sample_rate : 22050.0;
  if (mf_segmenting_check(&cfg->seg) != MF_OK) return MF_EINVAL;
  if (!is_dir(cfg->audio_dir))
    return mf_set_error(MF_ENOTFOUND,
                        "audio folder %s does not exist (expected one sub-folder of audio files "
                        "per class, e.g. %s/jazz/*.wav; `melforge synth --out %s` writes the "
                        "demo corpus there)",
                        cfg->audio_dir, cfg->audio_dir, cfg->audio_dir);
  mf_feature *feat = NULL;
  if (mf_feature_new(cfg->feature, cfg->feature_params, rate, &feat) != MF_OK) return MF_EINVAL;

  strlist classes = {0}, files = {0};
  int32_t *file_class = NULL;
  mf_status st = list_dir(cfg->audio_dir, 1, &classes);
  if (st == MF_OK && classes.n == 0)
    st = mf_set_error(MF_EINVAL,
                      "%s has no class sub-folders: put each class's audio files in a folder "
                      "named after the class (e.g. %s/jazz/track1.wav)",
                      cfg->audio_dir, cfg->audio_dir);
  for (int c = 0; st == MF_OK && c < classes.n; c++) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", cfg->audio_dir, classes.v[c]);
    strlist names = {0};
    if ((st = list_dir(dir, 0, &names)) != MF_OK) break;
    file_class = realloc(file_class, sizeof(int32_t) * (size_t)(files.n + names.n + 1));
    for (int i = 0; i < names.n; i++) {
      char rel[4096];
      snprintf(rel, sizeof rel, "%s/%s", classes.v[c], names.v[i]);
      file_class[files.n] = c;
      strlist_add(&files, rel);
    }
    strlist_free(&names);
  }
  if (st == MF_OK && files.n == 0)
    st = mf_set_error(MF_EINVAL,
                      "no audio files found under %s (looked for .wav, .au, .flac, "
                      ".ogg, .mp3, ... inside each class folder)",
                      cfg->audio_dir);
  if (st != MF_OK) {
    strlist_free(&classes);
    strlist_free(&files);
    free(file_class);
    mf_feature_free(feat);
    return st;
  }

  /* The dataset's description; the first usable track fixes the row shape, the track list
   * is filled in at the end (skipped files drop out). */
  mf_dataset_info info = {0};
  char *params_json = mf_values_to_json(mf_feature_values(feat));
  char *seg_json = mf_segmenting_to_json(&cfg->seg);
  info.n_classes = classes.n;
  info.classes = classes.v;
  info.feature = (char *)mf_component_name(cfg->feature);
  info.feature_params = params_json;
  info.sample_rate = rate;
  info.segmenting = seg_json;
  info.source = (char *)cfg->audio_dir;

  track_result *res = calloc((size_t)files.n, sizeof *res);
  mf_dataset_writer *w = NULL;
  int64_t rows_total = 0;
  int skipped = 0, done = 0, kept = 0, fatal = 0;
  int writer_failed = 0;
  /* Errors raised on worker threads, re-raised on the caller's thread (messages are
   * thread-local). */
  char failure[2048] = "";
  char **kept_names = malloc(sizeof(char *) * (size_t)files.n);

#pragma omp parallel for schedule(dynamic, 1) ordered
  for (int i = 0; i < files.n; i++) {
    track_result *r = &res[i];
    if (!fatal) {
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", cfg->audio_dir, files.v[i]);
      mf_audio a = {0};
      if (mf_audio_read(path, rate, &a) != MF_OK) {
        r->error = strdup(mf_error());
      } else if (mf_extract_track(feat, &cfg->seg, a.samples, a.n, &r->rows, &r->n_rows, &r->segs,
                                  &r->shape) != MF_OK) {
        r->error = strdup(mf_error());
      }
      mf_audio_free(&a);
    }
#pragma omp ordered
    {
      /* In file order: the dataset's rows do not depend on which thread finished first. */
      if (!fatal && !writer_failed) {
        if (!r->error && w && !mf_shape_equal(r->shape, info.sample_shape)) {
          char a[96], b[96];
          char msg[512];
          snprintf(msg, sizeof msg,
                   "its segments have shape %s but the dataset's have %s (files of different "
                   "lengths: set track_seconds so every track is cut alike)",
                   mf_shape_str(r->shape, a, sizeof a),
                   mf_shape_str(info.sample_shape, b, sizeof b));
          r->error = strdup(msg);
        }
        if (r->error) {
          skipped++;
          if (cfg->warn) cfg->warn(files.v[i], r->error, cfg->user);
          if (cfg->strict) {
            fatal = 1;
            snprintf(failure, sizeof failure, "%s/%s: %s (--strict makes a skipped file fatal)",
                     cfg->audio_dir, files.v[i], r->error);
          }
        } else {
          if (!w) {
            mf_feature_layout lay;
            info.sample_shape = r->shape;
            info.time_axis =
                mf_feature_layout_of(feat, 1 << 16, &lay) == MF_OK ? lay.time_axis : -1;
            if (mf_dataset_writer_open(cfg->out_path, &info, &w) != MF_OK) {
              writer_failed = 1;
              snprintf(failure, sizeof failure, "%s", mf_error());
            }
          }
          if (w && !writer_failed) {
            int32_t *labels = malloc(sizeof(int32_t) * (size_t)r->n_rows);
            int32_t *tracks = malloc(sizeof(int32_t) * (size_t)r->n_rows);
            for (int64_t k = 0; k < r->n_rows; k++) labels[k] = file_class[i], tracks[k] = kept;
            if (mf_dataset_writer_append(w, r->rows, r->n_rows, labels, tracks, r->segs) != MF_OK) {
              writer_failed = 1;
              snprintf(failure, sizeof failure, "%s", mf_error());
            }
            free(labels);
            free(tracks);
            rows_total += r->n_rows;
            kept_names[kept++] = files.v[i];
          }
        }
        done++;
        if (cfg->progress) {
          mf_extract_progress p = {done, files.n, rows_total, skipped, now_seconds() - t0};
          cfg->progress(&p, cfg->user);
        }
      }
      free(r->rows);
      free(r->segs);
      r->rows = NULL;
      r->segs = NULL;
    }
  }

  if (fatal) {
    st = mf_set_error(MF_EINVAL, "%s", failure);
  } else if (writer_failed) {
    st = mf_set_error(MF_EIO, "writing %s: %s", cfg->out_path, failure);
  } else if (!w) {
    st = mf_set_error(MF_EINVAL,
                      "none of the %d audio files under %s could be used (see the "
                      "warnings above)",
                      files.n, cfg->audio_dir);
  } else if ((st = mf_dataset_writer_set_tracks(w, kept_names, kept)) == MF_OK) {
    st = mf_dataset_writer_commit(w);
    w = NULL;
  }
  if (w) mf_dataset_writer_abort(w);

  summary->classes = classes.n;
  summary->tracks = kept;
  summary->skipped = skipped;
  summary->rows = rows_total;
  summary->seconds = now_seconds() - t0;
  for (int i = 0; i < files.n; i++) free(res[i].error);
  free(res);
  free(kept_names);
  free(params_json);
  free(seg_json);
  strlist_free(&classes);
  strlist_free(&files);
  free(file_class);
  mf_feature_free(feat);
  return st;
}
