/* Splits: per-class ratios, whole tracks per set, stratification, determinism, the leaky
 * row-level mode, k-fold coverage, fixed splits from list files, and the errors.
 *
 * The synthetic datasets have classes of different sizes, tracks with 1..4 segments, track
 * ids that are not in class order and rows in a scrambled order, so nothing passes by
 * accident of layout. All checks are exact counts.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "melforge/split.h"
#include "mftest.h"

typedef struct dataset {
  int64_t n;
  int n_classes, n_tracks;
  int32_t *labels, *groups;
  int32_t *track_label; /* per track id */
} dataset;

/* tracks_per_class[c] tracks of class c; track t has 1 + (t * 7) % 4 segments; track ids are
 * a fixed permutation of 0..T-1 and the rows are shuffled with `order_seed`. */
static dataset make_dataset(const int *tracks_per_class, int n_classes, uint64_t order_seed) {
  dataset d = {0};
  d.n_classes = n_classes;
  for (int c = 0; c < n_classes; c++) d.n_tracks += tracks_per_class[c];
  int T = d.n_tracks;
  d.track_label = malloc((size_t)T * sizeof(int32_t));
  int64_t cap = 4 * (int64_t)T;
  d.labels = malloc((size_t)cap * sizeof(int32_t));
  d.groups = malloc((size_t)cap * sizeof(int32_t));
  int t = 0;
  for (int c = 0; c < n_classes; c++)
    for (int k = 0; k < tracks_per_class[c]; k++, t++) {
      int id = (int)(((int64_t)t * 7919 + 13) % T); /* 7919 is prime: a permutation when T < it */
      d.track_label[id] = c;
      int segs = 1 + (t * 7) % 4;
      for (int s = 0; s < segs; s++) {
        d.labels[d.n] = c;
        d.groups[d.n] = id;
        d.n++;
      }
    }
  mf_rng r = mf_rng_stream(order_seed, MF_RNG_USER);
  for (int64_t i = d.n - 1; i > 0; i--) {
    int64_t j = mf_rng_below(&r, (uint32_t)(i + 1));
    int32_t a = d.labels[i], b = d.groups[i];
    d.labels[i] = d.labels[j], d.groups[i] = d.groups[j];
    d.labels[j] = a, d.groups[j] = b;
  }
  return d;
}

static void free_dataset(dataset *d) {
  free(d->labels), free(d->groups), free(d->track_label);
  memset(d, 0, sizeof *d);
}

static mf_split split_ok(const dataset *d, const mf_split_config *cfg, uint64_t seed) {
  mf_rng r = mf_rng_stream(seed, MF_RNG_SPLIT);
  mf_split s;
  mf_status st = mf_split_make(d->labels, d->groups, d->n, d->n_classes, cfg, &r, &s);
  EXPECT(st == MF_OK, "split failed: %s", mf_error());
  return s;
}

/* Set of each row (-1: none); fails when a row is in two sets or a list is not ascending. */
static int8_t *row_sets(const mf_split *s, int64_t n) {
  int8_t *set = malloc((size_t)n);
  memset(set, -1, (size_t)n);
  const int64_t *lists[3] = {s->train, s->val, s->test};
  int64_t counts[3] = {s->n_train, s->n_val, s->n_test};
  for (int k = 0; k < 3; k++)
    for (int64_t i = 0; i < counts[k]; i++) {
      int64_t r = lists[k][i];
      EXPECT(r >= 0 && r < n, "set %d holds row %lld outside 0..%lld", k, (long long)r,
             (long long)n - 1);
      if (r < 0 || r >= n) continue;
      EXPECT(i == 0 || lists[k][i - 1] < r, "set %d is not ascending at %lld", k, (long long)i);
      EXPECT(set[r] == -1, "row %lld is in sets %d and %d", (long long)r, set[r], k);
      set[r] = (int8_t)k;
    }
  return set;
}

/* Set of each track; fails when a track's rows are in different sets. */
static int8_t *track_sets(const dataset *d, const mf_split *s) {
  int8_t *rows = row_sets(s, d->n);
  int8_t *tr = malloc((size_t)d->n_tracks);
  memset(tr, -2, (size_t)d->n_tracks);
  for (int64_t i = 0; i < d->n; i++) {
    int g = d->groups[i];
    if (tr[g] == -2) tr[g] = rows[i];
    EXPECT(tr[g] == rows[i], "track %d has rows in sets %d and %d", g, tr[g], rows[i]);
  }
  free(rows);
  return tr;
}

static const int SIZES[4] = {20, 40, 60, 80};

TEST(test_defaults_are_64_16_20_stratified_by_track) {
  mf_split_config c = mf_split_defaults();
  EXPECT_NEAR(c.train, 0.64, 0);
  EXPECT_NEAR(c.val, 0.16, 0);
  EXPECT_NEAR(c.test, 0.20, 0);
  EXPECT_EQ_INT(c.stratify, 1);
  EXPECT_EQ_INT(c.group_by_track, 1);
  EXPECT_EQ_INT(c.kfold, 0);
  EXPECT(mf_split_check(&c) == MF_OK, "defaults rejected: %s", mf_error());
}

TEST(test_split_takes_rounded_ratios_of_each_class_tracks) {
  const int sizes[3] = {7, 13, 26};
  dataset d = make_dataset(sizes, 3, 1);
  mf_split_config cfg = mf_split_defaults();
  mf_split s = split_ok(&d, &cfg, 42);
  int8_t *tr = track_sets(&d, &s);
  /* round(0.2 m), round(0.16 m): m=7 -> 1 (1.4), 1 (1.12); 13 -> 3 (2.6), 2 (2.08);
   * 26 -> 5 (5.2), 4 (4.16). */
  const int want_test[3] = {1, 3, 5}, want_val[3] = {1, 2, 4};
  for (int c = 0; c < 3; c++) {
    int cnt[3] = {0, 0, 0};
    for (int t = 0; t < d.n_tracks; t++)
      if (d.track_label[t] == c) {
        EXPECT(tr[t] >= 0, "track %d of class %d is in no set", t, c);
        if (tr[t] >= 0) cnt[tr[t]]++;
      }
    EXPECT_EQ_INT(cnt[2], want_test[c]);
    EXPECT_EQ_INT(cnt[1], want_val[c]);
    EXPECT_EQ_INT(cnt[0], sizes[c] - want_test[c] - want_val[c]);
  }
  EXPECT_EQ_INT(s.n_train + s.n_val + s.n_test, d.n);
  free(tr);
  mf_split_free(&s);
  free_dataset(&d);
}

TEST(test_split_never_puts_a_track_in_two_sets) {
  dataset d = make_dataset(SIZES, 4, 2);
  mf_split_config cfg = mf_split_defaults();
  for (uint64_t seed = 0; seed < 5; seed++) {
    mf_split s = split_ok(&d, &cfg, seed);
    free(track_sets(&d, &s)); /* checks every row and track */
    mf_split_free(&s);
  }
  free_dataset(&d);
}

TEST(test_stratified_split_keeps_class_proportions_in_every_set) {
  /* 20/40/60/80 tracks: 0.2 m is whole, so each set's class shares equal the overall 10/20/
   * 30/40 % exactly in the test set, and within one track of it in the others. */
  dataset d = make_dataset(SIZES, 4, 3);
  mf_split_config cfg = mf_split_defaults();
  mf_split s = split_ok(&d, &cfg, 7);
  int8_t *tr = track_sets(&d, &s);
  int cnt[3][4] = {{0}};
  for (int t = 0; t < d.n_tracks; t++) cnt[(int)tr[t]][d.track_label[t]]++;
  for (int set = 0; set < 3; set++) {
    int total = 0;
    for (int c = 0; c < 4; c++) total += cnt[set][c];
    for (int c = 0; c < 4; c++) {
      double share = (double)cnt[set][c] / total, want = SIZES[c] / 200.0;
      EXPECT(fabs(share - want) <= (set == 2 ? 1e-12 : 1.0 / total),
             "set %d class %d: share %g, want %g", set, c, share, want);
    }
  }
  EXPECT_EQ_INT(cnt[2][0], 4);
  EXPECT_EQ_INT(cnt[2][3], 16);
  free(tr);
  mf_split_free(&s);
  free_dataset(&d);
}

static int same_split(const mf_split *a, const mf_split *b) {
  return a->n_train == b->n_train && a->n_val == b->n_val && a->n_test == b->n_test &&
         !memcmp(a->train, b->train, (size_t)a->n_train * 8) &&
         !memcmp(a->val, b->val, (size_t)a->n_val * 8) &&
         !memcmp(a->test, b->test, (size_t)a->n_test * 8);
}

TEST(test_split_is_deterministic_for_a_seed_and_moves_with_it) {
  dataset d = make_dataset(SIZES, 4, 4);
  mf_split_config cfg = mf_split_defaults();
  mf_split a = split_ok(&d, &cfg, 11), b = split_ok(&d, &cfg, 11), c = split_ok(&d, &cfg, 12);
  EXPECT(same_split(&a, &b), "same seed, different split");
  EXPECT(!same_split(&a, &c), "seeds 11 and 12 gave the same split");
  mf_split_free(&a), mf_split_free(&b), mf_split_free(&c);
  free_dataset(&d);
}

TEST(test_split_depends_on_tracks_not_on_row_order) {
  /* The same dataset with its rows in two different orders: every track lands in the same
   * set. */
  dataset d1 = make_dataset(SIZES, 4, 5), d2 = make_dataset(SIZES, 4, 6);
  EXPECT(memcmp(d1.groups, d2.groups, (size_t)d1.n * 4) != 0, "row orders should differ");
  mf_split_config cfg = mf_split_defaults();
  mf_split s1 = split_ok(&d1, &cfg, 9), s2 = split_ok(&d2, &cfg, 9);
  int8_t *t1 = track_sets(&d1, &s1), *t2 = track_sets(&d2, &s2);
  EXPECT(memcmp(t1, t2, (size_t)d1.n_tracks) == 0, "track assignment depends on row order");
  free(t1), free(t2);
  mf_split_free(&s1), mf_split_free(&s2);
  free_dataset(&d1), free_dataset(&d2);
}

TEST(test_leaky_split_works_on_rows_and_mixes_tracks) {
  dataset d = make_dataset(SIZES, 4, 8);
  mf_split_config cfg = mf_split_defaults();
  cfg.group_by_track = 0;
  mf_rng r = mf_rng_stream(3, MF_RNG_SPLIT);
  mf_split s;
  /* Track ids are not needed in this mode. */
  EXPECT(mf_split_make(d.labels, NULL, d.n, 4, &cfg, &r, &s) == MF_OK, "%s", mf_error());
  int8_t *rows = row_sets(&s, d.n);
  int64_t per_class[4] = {0}, test_rows[4] = {0}, val_rows[4] = {0};
  for (int64_t i = 0; i < d.n; i++) {
    per_class[d.labels[i]]++;
    test_rows[d.labels[i]] += rows[i] == 2;
    val_rows[d.labels[i]] += rows[i] == 1;
  }
  for (int c = 0; c < 4; c++) {
    EXPECT_EQ_INT(test_rows[c], (int64_t)floor(0.2 * per_class[c] + 0.5 + 1e-9));
    EXPECT_EQ_INT(val_rows[c], (int64_t)floor(0.16 * per_class[c] + 0.5 + 1e-9));
  }
  int8_t *first = malloc((size_t)d.n_tracks);
  memset(first, -1, (size_t)d.n_tracks);
  int mixed = 0;
  for (int64_t i = 0; i < d.n; i++) {
    int g = d.groups[i];
    if (first[g] == -1)
      first[g] = rows[i];
    else if (first[g] != rows[i])
      mixed++;
  }
  EXPECT(mixed > 10, "only %d rows of tracks split across sets: the leaky mode should mix", mixed);
  free(first), free(rows);
  mf_split_free(&s);
  free_dataset(&d);
}

TEST(test_kfold_tests_every_track_exactly_once_across_folds) {
  const int sizes[3] = {11, 17, 23};
  dataset d = make_dataset(sizes, 3, 9);
  const int k = 5;
  int *tested = calloc((size_t)d.n_tracks, sizeof(int));
  int fold_size[5] = {0};
  for (int f = 0; f < k; f++) {
    mf_split_config cfg = mf_split_defaults();
    cfg.kfold = k;
    cfg.fold = f;
    mf_split s = split_ok(&d, &cfg, 77); /* every fold from the same stream state */
    int8_t *tr = track_sets(&d, &s);
    int per_class_test[3] = {0}, rest[3] = {0}, val[3] = {0};
    for (int t = 0; t < d.n_tracks; t++) {
      EXPECT(tr[t] >= 0, "fold %d: track %d is in no set", f, t);
      if (tr[t] == 2)
        tested[t]++, fold_size[f]++, per_class_test[d.track_label[t]]++;
      else
        rest[d.track_label[t]]++, val[d.track_label[t]] += tr[t] == 1;
    }
    for (int c = 0; c < 3; c++) {
      /* Dealt round-robin: floor or ceil of m / k per class and fold. */
      EXPECT(per_class_test[c] == sizes[c] / k || per_class_test[c] == sizes[c] / k + 1,
             "fold %d class %d: %d test tracks of %d", f, c, per_class_test[c], sizes[c]);
      /* The other folds keep train : val = 0.64 : 0.16, i.e. val gets 20 % of them. */
      EXPECT_EQ_INT(val[c], (int)floor(0.16 / (0.64 + 0.16) * rest[c] + 0.5 + 1e-9));
    }
    free(tr);
    mf_split_free(&s);
  }
  for (int t = 0; t < d.n_tracks; t++)
    EXPECT(tested[t] == 1, "track %d was tested %d times over %d folds", t, tested[t], k);
  /* The dealer carries over between classes: 51 tracks make folds of 10 or 11. */
  for (int f = 0; f < k; f++)
    EXPECT(fold_size[f] == 10 || fold_size[f] == 11, "fold %d has %d", f, fold_size[f]);
  free(tested);
  free_dataset(&d);
}

TEST(test_kfold_on_rows_tests_every_row_once) {
  dataset d = make_dataset(SIZES, 4, 10);
  int *tested = calloc((size_t)d.n, sizeof(int));
  for (int f = 0; f < 3; f++) {
    mf_split_config cfg = mf_split_defaults();
    cfg.kfold = 3, cfg.fold = f, cfg.group_by_track = 0;
    mf_split s = split_ok(&d, &cfg, 5);
    for (int64_t i = 0; i < s.n_test; i++) tested[s.test[i]]++;
    EXPECT_EQ_INT(s.n_train + s.n_val + s.n_test, d.n);
    mf_split_free(&s);
  }
  for (int64_t i = 0; i < d.n; i++)
    EXPECT(tested[i] == 1, "row %lld tested %d times", (long long)i, tested[i]);
  free(tested);
  free_dataset(&d);
}

TEST(test_small_classes_keep_a_training_track) {
  /* 1 and 2 tracks at the defaults: round(0.2) = round(0.4) = 0 test, all train. With
   * 0.1 / 0.45 / 0.45, a 2-track class would get 1 val + 1 test: val gives way. */
  const int sizes[3] = {1, 2, 30};
  dataset d = make_dataset(sizes, 3, 11);
  mf_split_config cfg = mf_split_defaults();
  mf_split s = split_ok(&d, &cfg, 1);
  int8_t *tr = track_sets(&d, &s);
  for (int t = 0; t < d.n_tracks; t++)
    if (d.track_label[t] < 2)
      EXPECT(tr[t] == 0, "track %d of a tiny class went to set %d", t, tr[t]);
  free(tr);
  mf_split_free(&s);

  cfg.train = 0.1, cfg.val = 0.45, cfg.test = 0.45;
  s = split_ok(&d, &cfg, 1);
  tr = track_sets(&d, &s);
  int cnt[3][3] = {{0}};
  for (int t = 0; t < d.n_tracks; t++) cnt[d.track_label[t]][(int)tr[t]]++;
  EXPECT(cnt[0][0] == 1, "the 1-track class has %d training tracks", cnt[0][0]);
  EXPECT(cnt[1][0] == 1 && cnt[1][1] == 0 && cnt[1][2] == 1,
         "2-track class: train %d val %d test %d, want 1 0 1", cnt[1][0], cnt[1][1], cnt[1][2]);
  /* 30 tracks: round(13.5) = 14 test, 14 val, 2 train. */
  EXPECT(cnt[2][0] == 2 && cnt[2][1] == 14 && cnt[2][2] == 14, "30-track class: %d %d %d",
         cnt[2][0], cnt[2][1], cnt[2][2]);
  free(tr);
  mf_split_free(&s);
  free_dataset(&d);
}

TEST(test_track_with_two_labels_is_an_error_naming_it) {
  int32_t labels[6] = {0, 0, 1, 1, 0, 1};
  int32_t groups[6] = {3, 3, 8, 8, 8, 5}; /* track 8 has labels 1 and 0 */
  mf_split_config cfg = mf_split_defaults();
  mf_rng r = mf_rng_stream(1, MF_RNG_SPLIT);
  mf_split s;
  mf_status st = mf_split_make(labels, groups, 6, 2, &cfg, &r, &s);
  EXPECT(st == MF_EINVAL, "status %d", st);
  EXPECT(strstr(mf_error(), "track 8 ") != NULL, "message does not name track 8: %s", mf_error());
  EXPECT(s.train == NULL && s.n_train == 0, "output not cleared on error");
}

TEST(test_bad_labels_and_missing_groups_are_errors) {
  int32_t labels[3] = {0, 2, 1}, groups[3] = {0, 1, 2};
  mf_split_config cfg = mf_split_defaults();
  mf_rng r = mf_rng_stream(1, MF_RNG_SPLIT);
  mf_split s;
  EXPECT(mf_split_make(labels, groups, 3, 2, &cfg, &r, &s) == MF_EINVAL, "label 2 of 2 classes");
  EXPECT(strstr(mf_error(), "row 1") != NULL, "%s", mf_error());
  EXPECT(mf_split_make(labels, NULL, 3, 3, &cfg, &r, &s) == MF_EINVAL, "no groups");
  EXPECT(strstr(mf_error(), "track") != NULL, "%s", mf_error());
}

static void expect_check_fails(mf_split_config c, const char *field) {
  EXPECT(mf_split_check(&c) == MF_EINVAL, "config with bad %s accepted", field);
  EXPECT(strstr(mf_error(), field) != NULL, "message does not name %s: %s", field, mf_error());
}

TEST(test_split_check_names_the_bad_field) {
  mf_split_config c = mf_split_defaults();
  c.train = 0, c.val = 0.5, c.test = 0.5;
  expect_check_fails(c, "train");
  c = mf_split_defaults();
  c.val = -0.1, c.train = 0.84, c.test = 0.26;
  expect_check_fails(c, "val");
  c = mf_split_defaults();
  c.test = 1.5;
  expect_check_fails(c, "test");
  c = mf_split_defaults();
  c.test = 0.3; /* sums to 1.1 */
  expect_check_fails(c, "train + val + test");
  c = mf_split_defaults();
  c.val = NAN;
  expect_check_fails(c, "val");
  c = mf_split_defaults();
  c.kfold = 1001;
  expect_check_fails(c, "kfold");
  c = mf_split_defaults();
  c.kfold = 5, c.fold = 5;
  expect_check_fails(c, "fold");
  c = mf_split_defaults();
  c.fold = 2; /* no k-fold */
  expect_check_fails(c, "fold");
  c = mf_split_defaults();
  c.train = 0.64 + 5e-7; /* within 1e-6 */
  EXPECT(mf_split_check(&c) == MF_OK, "%s", mf_error());
  c.kfold = 1000, c.fold = 999;
  EXPECT(mf_split_check(&c) == MF_OK, "%s", mf_error());
}

/* ---- lists ------------------------------------------------------------------------------ */

static char g_dir[64];

static const char *write_list(const char *name, const char *text) {
  static char paths[4][128];
  static int next;
  if (!g_dir[0]) {
    strcpy(g_dir, "/tmp/mf_split_XXXXXX");
    EXPECT(mkdtemp(g_dir) != NULL, "mkdtemp failed");
  }
  char *p = paths[next++ % 4];
  snprintf(p, 128, "%s/%s", g_dir, name);
  FILE *f = fopen(p, "w");
  fputs(text, f);
  fclose(f);
  return p;
}

/* Each list test ends here: the files and the folder go. */
static void remove_lists(void) {
  if (!g_dir[0]) return;
  const char *names[3] = {"train.txt", "val.txt", "test.txt"};
  char p[128];
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s/%s", g_dir, names[i]);
    unlink(p);
  }
  EXPECT(rmdir(g_dir) == 0, "could not remove %s", g_dir);
  g_dir[0] = '\0';
}

static char *TRACKS[6] = {"blues/blues.00000.wav",
                          "blues/blues.00001.wav",
                          "rock/rock.00000.wav",
                          "rock/rock.00001.wav",
                          "a/same.wav",
                          "b/same.wav"};
/* Rows: two per track, track 5 has one. */
static const int32_t LIST_GROUPS[11] = {0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4};

TEST(test_lists_match_by_path_or_unique_file_name) {
  const char *train = write_list("train.txt",
                                 "# published split\n"
                                 "blues/blues.00000.wav\n"
                                 "\n"
                                 "  rock.00000.wav  \r\n" /* file name alone */
                                 "./b/same.wav\n");
  const char *val = write_list("val.txt", "genres/blues/blues.00001.wav\n"); /* other root */
  const char *test = write_list("test.txt", "rock/rock.00001.wav\n");
  mf_split s;
  mf_status st = mf_split_from_lists(LIST_GROUPS, 11, TRACKS, 6, train, val, test, &s);
  EXPECT(st == MF_OK, "%s", mf_error());
  if (st != MF_OK) {
    remove_lists();
    return;
  }
  /* train: tracks 0, 2, 5 -> rows 0, 2, 5, 6, 8; val: track 1 -> 1, 7; test: 3 -> 3, 9;
   * track 4 (a/same.wav) is in no list: rows 4 and 10 are left out. */
  const int64_t want_train[5] = {0, 2, 5, 6, 8}, want_val[2] = {1, 7}, want_test[2] = {3, 9};
  EXPECT_EQ_INT(s.n_train, 5);
  EXPECT_EQ_INT(s.n_val, 2);
  EXPECT_EQ_INT(s.n_test, 2);
  if (s.n_train == 5) EXPECT(!memcmp(s.train, want_train, sizeof want_train), "train rows differ");
  if (s.n_val == 2) EXPECT(!memcmp(s.val, want_val, sizeof want_val), "val rows differ");
  if (s.n_test == 2) EXPECT(!memcmp(s.test, want_test, sizeof want_test), "test rows differ");
  mf_split_free(&s);

  /* Optional lists may be NULL. */
  EXPECT(mf_split_from_lists(LIST_GROUPS, 11, TRACKS, 6, train, NULL, NULL, &s) == MF_OK, "%s",
         mf_error());
  EXPECT_EQ_INT(s.n_train, 5);
  EXPECT_EQ_INT(s.n_val + s.n_test, 0);
  mf_split_free(&s);
  remove_lists();
}

TEST(test_list_with_unknown_path_names_file_and_line) {
  const char *train = write_list("train.txt", "blues/blues.00000.wav\n# c\njazz/jazz.00000.wav\n");
  mf_split s;
  EXPECT(mf_split_from_lists(LIST_GROUPS, 11, TRACKS, 6, train, NULL, NULL, &s) == MF_ENOTFOUND,
         "unknown path accepted");
  char want[160];
  snprintf(want, sizeof want, "%s:3:", train);
  EXPECT(strstr(mf_error(), want) && strstr(mf_error(), "jazz/jazz.00000.wav"), "message: %s",
         mf_error());
  remove_lists();
}

TEST(test_track_listed_twice_is_an_error_naming_both_places) {
  const char *train = write_list("train.txt", "blues/blues.00000.wav\nrock/rock.00000.wav\n");
  const char *test = write_list("test.txt", "rock/rock.00001.wav\n\nblues.00000.wav\n");
  mf_split s;
  EXPECT(mf_split_from_lists(LIST_GROUPS, 11, TRACKS, 6, train, NULL, test, &s) == MF_EFORMAT,
         "duplicate accepted");
  char here[160], there[160];
  snprintf(here, sizeof here, "%s:3:", test);
  snprintf(there, sizeof there, "%s:1", train);
  EXPECT(strstr(mf_error(), here) && strstr(mf_error(), there), "message: %s", mf_error());
  /* Twice in one file too. */
  train = write_list("train.txt", "rock/rock.00000.wav\nrock/rock.00000.wav\n");
  EXPECT(mf_split_from_lists(LIST_GROUPS, 11, TRACKS, 6, train, NULL, NULL, &s) == MF_EFORMAT,
         "duplicate in one file accepted");
  remove_lists();
}

TEST(test_ambiguous_file_name_and_missing_list_are_errors) {
  const char *train = write_list("train.txt", "same.wav\n");
  mf_split s;
  EXPECT(mf_split_from_lists(LIST_GROUPS, 11, TRACKS, 6, train, NULL, NULL, &s) == MF_EINVAL,
         "ambiguous file name accepted");
  EXPECT(strstr(mf_error(), ":1:") && strstr(mf_error(), "a/same.wav") &&
             strstr(mf_error(), "b/same.wav"),
         "message: %s", mf_error());
  EXPECT(mf_split_from_lists(LIST_GROUPS, 11, TRACKS, 6, "/nonexistent/train.txt", NULL, NULL,
                             &s) == MF_ENOTFOUND,
         "missing list accepted");
  EXPECT(strstr(mf_error(), "/nonexistent/train.txt") != NULL, "message: %s", mf_error());
  remove_lists();
}

TEST(test_unstratified_split_rounds_over_all_tracks_at_once) {
  /* 7 + 13 + 26 = 46 tracks in one pool: round(0.2 * 46) = 9 test, round(0.16 * 46) = 7 val
   * (per class rounding would give 1 + 3 + 5 = 9 and 1 + 2 + 4 = 7 too, so also check that
   * the class mix of the test set moves with the seed, which per-class quotas forbid). */
  const int sizes[3] = {7, 13, 26};
  dataset d = make_dataset(sizes, 3, 12);
  mf_split_config cfg = mf_split_defaults();
  cfg.stratify = 0;
  int mixes_differ = 0, first_mix[3] = {0};
  for (uint64_t seed = 0; seed < 8; seed++) {
    mf_split s = split_ok(&d, &cfg, seed);
    int8_t *tr = track_sets(&d, &s);
    int cnt[3] = {0}, mix[3] = {0};
    for (int t = 0; t < d.n_tracks; t++) {
      cnt[(int)tr[t]]++;
      if (tr[t] == 2) mix[d.track_label[t]]++;
    }
    EXPECT_EQ_INT(cnt[2], 9);
    EXPECT_EQ_INT(cnt[1], 7);
    EXPECT_EQ_INT(cnt[0], 30);
    if (seed == 0)
      memcpy(first_mix, mix, sizeof mix);
    else
      mixes_differ += memcmp(first_mix, mix, sizeof mix) != 0;
    free(tr);
    mf_split_free(&s);
  }
  EXPECT(mixes_differ > 0, "the test set's class mix never changed over 8 seeds");
  free_dataset(&d);
}
