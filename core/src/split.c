/* split.c — train / validation / test splits, grouped by track and stratified by class.
 *
 * The unit of assignment is a group: a track (all its rows move together) or, in the leaky
 * mode, a single row. Groups are numbered in ascending id order and listed per class in that
 * order before the split stream shuffles them, so the result is a function of (labels,
 * groups, rng state) alone: the order rows arrive in, the thread count and the model never
 * move it.
 *
 * Plain split, per class of m groups (shuffled): the first round(test * m) go to test, the
 * next round(val * m) to validation, the rest to training. When that would leave training
 * empty (m small, or large val / test ratios) validation gives up groups first, then test,
 * until one training group remains: a class with 1 group trains on it, a class with 2 groups
 * (at 0.64 / 0.16 / 0.20) has nothing to spare for the other sets. This is silent on
 * purpose: small classes are normal in sub-sampled datasets and the set sizes are reported.
 * Rounding is half-up (with a 1e-9 tolerance, so 0.7 * 5 counts as 3.5 although the double
 * product is a hair below it).
 *
 * K-fold: the shuffled groups of each class are dealt round-robin into k folds, the dealer
 * continuing across classes (class 1 starts at the fold after class 0's last group), so the
 * folds differ in size by at most one group in total. Fold `fold` is the test set; of the
 * other groups of each class (in shuffled order) the first round(val * remaining) form the
 * validation set, keeping at least one for training. A class whose only group is in the
 * test fold has no training group in that fold: that cannot be helped without breaking
 * "every group is tested exactly once". Every fold must be made from the same rng state.
 *
 * Without stratification all groups form one pool and the rules above apply to it (the
 * at-least-one-training-group guarantee then holds for the pool, not per class).
 */
#include "melforge/split.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SET_NONE = -1, SET_TRAIN = 0, SET_VAL = 1, SET_TEST = 2 };

mf_split_config mf_split_defaults(void) {
  mf_split_config c;
  memset(&c, 0, sizeof c);
  c.train = 0.64;
  c.val = 0.16;
  c.test = 0.20;
  c.stratify = 1;
  c.group_by_track = 1;
  c.kfold = 0;
  c.fold = 0;
  return c;
}

mf_status mf_split_check(const mf_split_config *cfg) {
  if (!cfg) return mf_set_error(MF_EINVAL, "split: no configuration given");
  if (!(cfg->train > 0 && cfg->train <= 1))
    return mf_set_error(MF_EINVAL, "split: train = %g must be in (0, 1] (the training share)",
                        cfg->train);
  if (!(cfg->val >= 0 && cfg->val <= 1))
    return mf_set_error(MF_EINVAL, "split: val = %g must be in [0, 1] (0: no validation set)",
                        cfg->val);
  if (!(cfg->test >= 0 && cfg->test <= 1))
    return mf_set_error(MF_EINVAL, "split: test = %g must be in [0, 1] (0: no test set)",
                        cfg->test);
  double sum = cfg->train + cfg->val + cfg->test;
  if (!(fabs(sum - 1.0) <= 1e-6))
    return mf_set_error(MF_EINVAL,
                        "split: train + val + test = %g + %g + %g = %.9g must be 1 (within 1e-6)",
                        cfg->train, cfg->val, cfg->test, sum);
  if (cfg->kfold < 0 || cfg->kfold > 1000)
    return mf_set_error(MF_EINVAL,
                        "split: kfold = %d must be in 0..1000 (0 or 1: a plain split, k >= 2: "
                        "k-fold)",
                        cfg->kfold);
  if (cfg->kfold >= 2 && (cfg->fold < 0 || cfg->fold >= cfg->kfold))
    return mf_set_error(MF_EINVAL, "split: fold = %d must be in 0..%d (kfold = %d)", cfg->fold,
                        cfg->kfold - 1, cfg->kfold);
  if (cfg->kfold < 2 && cfg->fold != 0)
    return mf_set_error(MF_EINVAL, "split: fold = %d needs kfold >= 2 (kfold = %d)", cfg->fold,
                        cfg->kfold);
  return MF_OK;
}

void mf_split_free(mf_split *s) {
  if (!s) return;
  free(s->train);
  free(s->val);
  free(s->test);
  memset(s, 0, sizeof *s);
}

static int64_t round_share(double ratio, int64_t m) {
  return (int64_t)floor(ratio * (double)m + 0.5 + 1e-9);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Gathers the rows of each set in ascending order. set_of_unit[unit_of_row[i]] gives row i's
 * set (unit_of_row NULL: units are rows). */
static mf_status collect(const int8_t *set_of_unit, const int32_t *unit_of_row, int64_t n,
                         mf_split *out) {
  int64_t count[3] = {0, 0, 0};
  for (int64_t i = 0; i < n; i++) {
    int s = set_of_unit[unit_of_row ? unit_of_row[i] : i];
    if (s >= 0) count[s]++;
  }
  int64_t *arr[3];
  for (int s = 0; s < 3; s++) arr[s] = malloc((size_t)(count[s] ? count[s] : 1) * sizeof(int64_t));
  if (!arr[0] || !arr[1] || !arr[2]) {
    for (int s = 0; s < 3; s++) free(arr[s]);
    return mf_set_error(MF_ENOMEM, "split: out of memory for the index lists of %lld rows",
                        (long long)n);
  }
  int64_t k[3] = {0, 0, 0};
  for (int64_t i = 0; i < n; i++) {
    int s = set_of_unit[unit_of_row ? unit_of_row[i] : i];
    if (s >= 0) arr[s][k[s]++] = i;
  }
  out->train = arr[SET_TRAIN], out->n_train = count[SET_TRAIN];
  out->val = arr[SET_VAL], out->n_val = count[SET_VAL];
  out->test = arr[SET_TEST], out->n_test = count[SET_TEST];
  return MF_OK;
}

/* Numbers the tracks in ascending id order: unit_of_row[i], and the label of each unit.
 * Fails naming the track when its rows disagree on the label. */
static mf_status group_units(const int32_t *labels, const int32_t *groups, int64_t n,
                             int32_t *unit_of_row, int32_t *unit_label, int64_t *n_units) {
  uint64_t *key = malloc((size_t)n * sizeof *key);
  if (!key) return mf_set_error(MF_ENOMEM, "split: out of memory sorting %lld rows", (long long)n);
  /* (group, row) packed so that one integer sort orders by group id, then by row. The sign
   * bit is flipped so negative ids sort first. */
  for (int64_t i = 0; i < n; i++)
    key[i] = ((uint64_t)((uint32_t)groups[i] ^ 0x80000000u) << 32) | (uint64_t)i;
  qsort(key, (size_t)n, sizeof *key, cmp_u64);
  int64_t u = -1;
  int64_t first_row = -1;
  for (int64_t k = 0; k < n; k++) {
    int64_t row = (int64_t)(key[k] & 0xffffffffu);
    if (k == 0 || groups[row] != groups[first_row]) {
      u++;
      first_row = row;
      unit_label[u] = labels[row];
    } else if (labels[row] != unit_label[u]) {
      mf_status st = mf_set_error(
          MF_EINVAL,
          "split: track %d has rows with different labels (row %lld: %d, row %lld: %d); a "
          "track must carry one class: fix the dataset or split by rows (group = \"none\")",
          (int)groups[row], (long long)first_row, (int)labels[first_row], (long long)row,
          (int)labels[row]);
      free(key);
      return st;
    }
    unit_of_row[row] = (int32_t)u;
  }
  free(key);
  *n_units = u + 1;
  return MF_OK;
}

/* Assigns the shuffled units of one pool (a class, or everything) to sets. *dealer is the
 * k-fold round-robin position carried from pool to pool. */
static void assign_pool(const int32_t *units, int64_t m, const mf_split_config *cfg, int *dealer,
                        int8_t *set_of_unit) {
  if (m == 0) return;
  if (cfg->kfold >= 2) {
    const int k = cfg->kfold, start = *dealer;
    int64_t n_rest = 0;
    for (int64_t j = 0; j < m; j++) n_rest += (start + j) % k != cfg->fold;
    *dealer = (int)((start + m) % k);
    /* The other folds keep the configured train : val proportion. */
    const double val_share = cfg->train + cfg->val > 0 ? cfg->val / (cfg->train + cfg->val) : 0;
    int64_t n_val = round_share(val_share, n_rest);
    if (n_rest >= 1 && n_val > n_rest - 1) n_val = n_rest - 1;
    for (int64_t j = 0; j < m; j++) {
      if ((start + j) % k == cfg->fold) {
        set_of_unit[units[j]] = SET_TEST;
      } else if (n_val > 0) {
        set_of_unit[units[j]] = SET_VAL;
        n_val--;
      } else {
        set_of_unit[units[j]] = SET_TRAIN;
      }
    }
    return;
  }
  int64_t n_test = round_share(cfg->test, m);
  int64_t n_val = round_share(cfg->val, m);
  int64_t excess = n_test + n_val - (m - 1);
  if (excess > 0) {
    int64_t d = excess < n_val ? excess : n_val;
    n_val -= d;
    n_test -= excess - d;
  }
  for (int64_t j = 0; j < m; j++)
    set_of_unit[units[j]] = j < n_test ? SET_TEST : j < n_test + n_val ? SET_VAL : SET_TRAIN;
}

mf_status mf_split_make(const int32_t *labels, const int32_t *groups, int64_t n, int n_classes,
                        const mf_split_config *cfg, mf_rng *rng, mf_split *out) {
  if (!out) return mf_set_error(MF_EINVAL, "mf_split_make: no output given");
  memset(out, 0, sizeof *out);
  mf_status st = mf_split_check(cfg);
  if (st != MF_OK) return st;
  if (!labels || !rng) return mf_set_error(MF_EINVAL, "mf_split_make: labels and rng are required");
  if (n <= 0)
    return mf_set_error(MF_EINVAL, "split: the dataset has no rows (n = %lld)", (long long)n);
  if (n > INT32_MAX)
    return mf_set_error(MF_EINVAL, "split: %lld rows is more than the %d supported", (long long)n,
                        INT32_MAX);
  if (n_classes < 1)
    return mf_set_error(MF_EINVAL, "split: n_classes = %d must be >= 1", n_classes);
  if (cfg->group_by_track && !groups)
    return mf_set_error(MF_EINVAL,
                        "split: grouping by track needs the track ids (/track); pass them or "
                        "split by rows (group = \"none\")");
  for (int64_t i = 0; i < n; i++)
    if (labels[i] < 0 || labels[i] >= n_classes)
      return mf_set_error(MF_EINVAL, "split: row %lld has label %d, outside 0..%d", (long long)i,
                          (int)labels[i], n_classes - 1);

  int32_t *unit_of_row = NULL, *unit_label = NULL, *order = NULL;
  int64_t *class_start = NULL;
  int8_t *set_of_unit = NULL;
  int64_t n_units = n;
  if (cfg->group_by_track) {
    unit_of_row = malloc((size_t)n * sizeof *unit_of_row);
    unit_label = malloc((size_t)n * sizeof *unit_label);
    if (!unit_of_row || !unit_label) goto oom;
    st = group_units(labels, groups, n, unit_of_row, unit_label, &n_units);
    if (st != MF_OK) goto done;
  }
  const int32_t *label_of = cfg->group_by_track ? unit_label : labels;
  int n_pools = cfg->stratify ? n_classes : 1;
  order = malloc((size_t)n_units * sizeof *order);
  class_start = calloc((size_t)n_pools + 1, sizeof *class_start);
  set_of_unit = malloc((size_t)n_units);
  if (!order || !class_start || !set_of_unit) goto oom;
  /* Counting sort of the units by pool; units stay in ascending id order inside a pool. */
  for (int64_t u = 0; u < n_units; u++) class_start[(cfg->stratify ? label_of[u] : 0) + 1]++;
  for (int c = 0; c < n_pools; c++) class_start[c + 1] += class_start[c];
  {
    int64_t *fill = malloc((size_t)n_pools * sizeof *fill);
    if (!fill) goto oom;
    memcpy(fill, class_start, (size_t)n_pools * sizeof *fill);
    for (int64_t u = 0; u < n_units; u++)
      order[fill[cfg->stratify ? label_of[u] : 0]++] = (int32_t)u;
    free(fill);
  }
  int dealer = 0;
  for (int c = 0; c < n_pools; c++) {
    int64_t m = class_start[c + 1] - class_start[c];
    mf_rng_shuffle_i32(rng, order + class_start[c], m);
    assign_pool(order + class_start[c], m, cfg, &dealer, set_of_unit);
  }
  st = collect(set_of_unit, cfg->group_by_track ? unit_of_row : NULL, n, out);
  goto done;
oom:
  st = mf_set_error(MF_ENOMEM, "split: out of memory for %lld rows", (long long)n);
done:
  free(unit_of_row);
  free(unit_label);
  free(order);
  free(class_start);
  free(set_of_unit);
  return st;
}

/* ---- fixed splits from lists ----------------------------------------------------------- */

static const char *base_name(const char *p) {
  const char *s = strrchr(p, '/');
  return s ? s + 1 : p;
}

typedef struct track_index {
  char *const *tracks;
  int32_t *by_path; /* track numbers sorted by full path */
  int32_t *by_base; /* ... and by file name */
  int n;
} track_index;

/* qsort has no context argument; the index being sorted is set here for the comparators.
 * Sorting happens once per call, on the calling thread, before anything reads it. */
static _Thread_local char *const *g_sort_tracks;

static int cmp_path(const void *a, const void *b) {
  return strcmp(g_sort_tracks[*(const int32_t *)a], g_sort_tracks[*(const int32_t *)b]);
}
static int cmp_base(const void *a, const void *b) {
  return strcmp(base_name(g_sort_tracks[*(const int32_t *)a]),
                base_name(g_sort_tracks[*(const int32_t *)b]));
}

/* The range [*lo, *hi) of `sorted` whose key equals `key`. */
static void equal_range(const track_index *ix, const int32_t *sorted, int by_base, const char *key,
                        int *lo, int *hi) {
  int a = 0, b = ix->n;
  while (a < b) {
    int mid = a + (b - a) / 2;
    const char *t = ix->tracks[sorted[mid]];
    if (strcmp(by_base ? base_name(t) : t, key) < 0)
      a = mid + 1;
    else
      b = mid;
  }
  int e = a;
  while (e < ix->n) {
    const char *t = ix->tracks[sorted[e]];
    if (strcmp(by_base ? base_name(t) : t, key) != 0) break;
    e++;
  }
  *lo = a, *hi = e;
}

static char *trim(char *s) {
  while (*s && isspace((unsigned char)*s)) s++;
  size_t len = strlen(s);
  while (len > 0 && isspace((unsigned char)s[len - 1])) s[--len] = '\0';
  while (s[0] == '.' && s[1] == '/') s += 2;
  return s;
}

/* The track a list line names: by its full path, else by its file name when exactly one
 * track has that file name. */
static mf_status match_track(const track_index *ix, const char *path, int64_t line_no,
                             const char *line, int32_t *track) {
  int lo, hi;
  equal_range(ix, ix->by_path, 0, line, &lo, &hi);
  if (hi - lo == 1) {
    *track = ix->by_path[lo];
    return MF_OK;
  }
  if (hi - lo > 1)
    return mf_set_error(
        MF_EFORMAT, "%s:%lld: '%s' is the path of tracks %d and %d: the dataset lists it twice",
        path, (long long)line_no, line, (int)ix->by_path[lo], (int)ix->by_path[lo + 1]);
  const char *name = base_name(line);
  equal_range(ix, ix->by_base, 1, name, &lo, &hi);
  if (hi - lo == 1) {
    *track = ix->by_base[lo];
    return MF_OK;
  }
  if (hi - lo > 1)
    return mf_set_error(MF_EINVAL,
                        "%s:%lld: '%s' matches no track path, and its file name '%s' fits several "
                        "tracks ('%s', '%s'); write the path as stored in the dataset's /tracks",
                        path, (long long)line_no, line, name, ix->tracks[ix->by_base[lo]],
                        ix->tracks[ix->by_base[lo + 1]]);
  return mf_set_error(MF_ENOTFOUND,
                      "%s:%lld: '%s' matches no track of the dataset (%d tracks, stored like "
                      "'%s'); check that the list belongs to this dataset",
                      path, (long long)line_no, line, ix->n, ix->tracks[0]);
}

/* Reads one list file into assign[] (track -> set), remembering where each track was listed
 * (file, line) for the duplicate message. */
static mf_status read_list(const char *path, int set, const char *const files[3],
                           const track_index *ix, int8_t *assign, int64_t *where_line) {
  FILE *f = fopen(path, "r");
  if (!f)
    return mf_set_error(errno == ENOENT ? MF_ENOTFOUND : MF_EIO, "split list %s: cannot open (%s)",
                        path, strerror(errno));
  char *buf = NULL;
  size_t cap = 0;
  int64_t line_no = 0;
  mf_status st = MF_OK;
  while (st == MF_OK && getline(&buf, &cap, f) >= 0) {
    line_no++;
    char *line = trim(buf);
    if (!*line || line[0] == '#') continue;
    int32_t t = -1;
    st = match_track(ix, path, line_no, line, &t);
    if (st != MF_OK) break;
    if (assign[t] != SET_NONE) {
      st = mf_set_error(MF_EFORMAT, "%s:%lld: track '%s' is already listed at %s:%lld", path,
                        (long long)line_no, ix->tracks[t], files[assign[t]],
                        (long long)where_line[t]);
      break;
    }
    assign[t] = (int8_t)set;
    where_line[t] = line_no;
  }
  if (st == MF_OK && ferror(f))
    st =
        mf_set_error(MF_EIO, "split list %s: read error after line %lld", path, (long long)line_no);
  free(buf);
  fclose(f);
  return st;
}

mf_status mf_split_from_lists(const int32_t *groups, int64_t n, char *const *tracks, int n_tracks,
                              const char *train_file, const char *val_file, const char *test_file,
                              mf_split *out) {
  if (!out) return mf_set_error(MF_EINVAL, "mf_split_from_lists: no output given");
  memset(out, 0, sizeof *out);
  if (!train_file) return mf_set_error(MF_EINVAL, "split lists: the training list is required");
  if (n < 0 || (n > 0 && !groups))
    return mf_set_error(MF_EINVAL, "split lists: the rows' track ids (/track) are required");
  if (n_tracks < 1 || !tracks)
    return mf_set_error(MF_EINVAL, "split lists: the dataset has no track paths (/tracks)");
  for (int t = 0; t < n_tracks; t++)
    if (!tracks[t]) return mf_set_error(MF_EINVAL, "split lists: track %d has no path", t);
  for (int64_t i = 0; i < n; i++)
    if (groups[i] < 0 || groups[i] >= n_tracks)
      return mf_set_error(MF_EINVAL, "split lists: row %lld has track %d, outside 0..%d",
                          (long long)i, (int)groups[i], n_tracks - 1);

  track_index ix = {tracks, malloc((size_t)n_tracks * sizeof(int32_t)),
                    malloc((size_t)n_tracks * sizeof(int32_t)), n_tracks};
  int8_t *assign = malloc((size_t)n_tracks);
  int64_t *where_line = malloc((size_t)n_tracks * sizeof *where_line);
  mf_status st = MF_OK;
  if (!ix.by_path || !ix.by_base || !assign || !where_line) {
    st = mf_set_error(MF_ENOMEM, "split lists: out of memory for %d tracks", n_tracks);
    goto done;
  }
  for (int t = 0; t < n_tracks; t++) ix.by_path[t] = ix.by_base[t] = t, assign[t] = SET_NONE;
  g_sort_tracks = tracks;
  qsort(ix.by_path, (size_t)n_tracks, sizeof(int32_t), cmp_path);
  qsort(ix.by_base, (size_t)n_tracks, sizeof(int32_t), cmp_base);
  const char *const files[3] = {train_file, val_file, test_file};
  for (int s = 0; s < 3 && st == MF_OK; s++)
    if (files[s]) st = read_list(files[s], s, files, &ix, assign, where_line);
  if (st != MF_OK) goto done;
  /* collect() looks the set up per unit: here the units are the tracks. */
  st = collect(assign, groups, n, out);
done:
  free(ix.by_path);
  free(ix.by_base);
  free(assign);
  free(where_line);
  return st;
}
