/* Datasets in HDF5: the streaming writer and save/load round trips, atomic replacement,
 * the layout checks of load (each broken layout made here with the HDF5 API), h5py
 * readability, and the notebook importers (MFCC data.json, folders of .npy arrays). */
#define _GNU_SOURCE
#include <dirent.h>
#include <ftw.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset_import.h"
#include "melforge/dataset.h"
#include "mftest.h"

/* ------------------------------------------------------------------------------------ */
/* Helpers */

static char *make_tmpdir(void) {
  char tmpl[] = "/tmp/mf_dataset_test_XXXXXX";
  char *d = mkdtemp(tmpl);
  return d ? strdup(d) : NULL;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *f) {
  (void)sb, (void)flag, (void)f;
  return remove(p);
}

static void rm_tree(char *dir) {
  if (dir) nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(dir);
}

static char *path_in(const char *dir, const char *name) {
  char *p = malloc(strlen(dir) + strlen(name) + 2);
  sprintf(p, "%s/%s", dir, name);
  return p;
}

/* Entries of dir whose name marks a temporary file of mf_temp_path_for. */
static int count_temp_files(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, ".tmp-") != NULL;
  if (d) closedir(d);
  return n;
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  fputs(text, f);
  fclose(f);
}

static char *classes3[] = {"blues", "rock", "Música"};
static char *tracks2[] = {"blues/a.wav", "rock/b.wav"};

static mf_dataset_info test_info(void) {
  mf_dataset_info in = {0};
  in.sample_shape = MF_SHAPE(3, 4);
  in.n_classes = 3;
  in.classes = classes3;
  in.n_tracks = 2;
  in.tracks = tracks2;
  in.feature = "melspec";
  in.feature_params = "{\"n_mels\": 3, \"hop_length\": 512}";
  in.sample_rate = 22050;
  in.segmenting = "{\"mode\": \"equal\", \"segments\": 5}";
  in.source = "data/genres";
  return in;
}

/* Row r holds r * 100 + i, so any misplaced value shows. */
static void fill_rows(float *x, int64_t first, int64_t n, int64_t row) {
  for (int64_t r = 0; r < n; r++)
    for (int64_t i = 0; i < row; i++) x[r * row + i] = (float)((first + r) * 100 + i) * 0.5f;
}

/* A complete dataset of n rows with the test_info layout. */
static mf_dataset *test_dataset(int64_t n) {
  mf_dataset *ds = calloc(1, sizeof *ds);
  mf_dataset_info in = test_info();
  mf_dataset_info_copy(&ds->info, &in);
  ds->n = n;
  ds->row_size = 12;
  ds->features = malloc((size_t)(n * 12) * sizeof(float));
  ds->labels = malloc((size_t)n * sizeof(int32_t));
  ds->track = malloc((size_t)n * sizeof(int32_t));
  ds->segment = malloc((size_t)n * sizeof(int32_t));
  fill_rows(ds->features, 0, n, 12);
  for (int64_t i = 0; i < n; i++) {
    ds->labels[i] = (int32_t)(i % 3);
    ds->track[i] = (int32_t)(i % 2);
    ds->segment[i] = (int32_t)(i / 2);
  }
  return ds;
}

static mf_dataset *load_ok(const char *path) {
  mf_dataset *ds = NULL;
  mf_status st = mf_dataset_load(path, &ds);
  EXPECT(st == MF_OK, "load %s failed: %s", path, mf_error());
  return ds;
}

static void expect_error_contains(mf_status st, const char *needle) {
  EXPECT(st != MF_OK, "expected a failure mentioning '%s'", needle);
  EXPECT(strstr(mf_error(), needle) != NULL, "message '%s' lacks '%s'", mf_error(), needle);
}

/* ------------------------------------------------------------------------------------ */
/* Writing and reading */

TEST(test_writer_round_trips_rows_appended_in_several_calls) {
  char *dir = make_tmpdir(), *path = path_in(dir, "w.h5");
  mf_dataset_info in = test_info();
  mf_dataset_writer *w;
  EXPECT(mf_dataset_writer_open(path, &in, &w) == MF_OK, "open: %s", mf_error());
  const int64_t batches[] = {2, 1, 4};
  int64_t done = 0;
  for (int b = 0; b < 3; b++) {
    float x[4 * 12];
    int32_t lab[4], trk[4], seg[4];
    fill_rows(x, done, batches[b], 12);
    for (int64_t i = 0; i < batches[b]; i++) {
      lab[i] = (int32_t)((done + i) % 3);
      trk[i] = (int32_t)((done + i) % 2);
      seg[i] = (int32_t)(done + i);
    }
    EXPECT(mf_dataset_writer_append(w, x, batches[b], lab, trk, seg) == MF_OK, "append: %s",
           mf_error());
    done += batches[b];
  }
  EXPECT(mf_dataset_writer_commit(w) == MF_OK, "commit: %s", mf_error());
  mf_dataset *ds = load_ok(path);
  if (ds) {
    EXPECT_EQ_INT(ds->n, 7);
    EXPECT_EQ_INT(ds->row_size, 12);
    EXPECT_EQ_INT(ds->info.sample_shape.ndim, 2);
    EXPECT_EQ_INT(ds->info.sample_shape.d[0], 3);
    EXPECT_EQ_INT(ds->info.sample_shape.d[1], 4);
    float want[7 * 12];
    fill_rows(want, 0, 7, 12);
    for (int i = 0; i < 7 * 12; i++) EXPECT_NEAR(ds->features[i], want[i], 0);
    for (int i = 0; i < 7; i++) {
      EXPECT_EQ_INT(ds->labels[i], i % 3);
      EXPECT_EQ_INT(ds->track[i], i % 2);
      EXPECT_EQ_INT(ds->segment[i], i);
    }
  }
  mf_dataset_free(ds);
  EXPECT_EQ_INT(count_temp_files(dir), 0);
  free(path);
  rm_tree(dir);
}

TEST(test_writer_keeps_row_order_across_chunk_boundaries) {
  /* Rows of 256 KB make chunks of 4 rows, so these batch sizes hit every path: rows gathered
   * into a chunk, whole chunks written from the caller's memory, and a partial last chunk. */
  char *dir = make_tmpdir(), *path = path_in(dir, "big.h5");
  mf_dataset_info in = test_info();
  in.sample_shape = MF_SHAPE(256, 256);
  const int64_t row = 256 * 256, batches[] = {1, 1, 1, 1, 1, 9, 2, 1};
  float *x = malloc((size_t)(9 * row) * sizeof(float));
  int32_t lab[9], trk[9], seg[9];
  mf_dataset_writer *w;
  EXPECT(mf_dataset_writer_open(path, &in, &w) == MF_OK, "%s", mf_error());
  int64_t done = 0;
  for (int b = 0; b < 8; b++) {
    for (int64_t r = 0; r < batches[b]; r++) {
      for (int64_t i = 0; i < row; i++) x[r * row + i] = (float)((done + r) * 1000 + i % 997);
      lab[r] = (int32_t)((done + r) % 3);
      trk[r] = 0;
      seg[r] = (int32_t)(done + r);
    }
    EXPECT(mf_dataset_writer_append(w, x, batches[b], lab, trk, seg) == MF_OK, "%s", mf_error());
    done += batches[b];
  }
  EXPECT(mf_dataset_writer_commit(w) == MF_OK, "%s", mf_error());
  free(x);
  mf_dataset *ds = load_ok(path);
  if (ds) {
    EXPECT_EQ_INT(ds->n, 17);
    int bad = 0;
    for (int64_t r = 0; r < 17; r++) {
      for (int64_t i = 0; i < row; i++)
        bad += ds->features[r * row + i] != (float)(r * 1000 + i % 997);
      bad += ds->segment[r] != r || ds->labels[r] != r % 3;
    }
    EXPECT_EQ_INT(bad, 0);
  }
  mf_dataset_free(ds);
  free(path);
  rm_tree(dir);
}

TEST(test_small_dataset_is_not_padded_to_a_full_chunk) {
  /* 5 rows of 48 bytes; a 1 MB chunk would make a file of over a megabyte. */
  char *dir = make_tmpdir(), *path = path_in(dir, "small.h5");
  mf_dataset *src = test_dataset(5);
  EXPECT(mf_dataset_save(src, path) == MF_OK, "%s", mf_error());
  struct stat sb;
  EXPECT(stat(path, &sb) == 0 && sb.st_size < 32 * 1024, "file is %lld bytes",
         (long long)sb.st_size);
  mf_dataset_free(src);
  free(path);
  rm_tree(dir);
}

TEST(test_save_then_load_round_trips_strings_and_attributes) {
  char *dir = make_tmpdir(), *path = path_in(dir, "s.h5");
  mf_dataset *src = test_dataset(5);
  EXPECT(mf_dataset_save(src, path) == MF_OK, "save: %s", mf_error());
  mf_dataset *ds = load_ok(path);
  if (ds) {
    EXPECT_EQ_INT(ds->n, 5);
    EXPECT(memcmp(ds->features, src->features, 5 * 12 * sizeof(float)) == 0, "features differ");
    EXPECT(memcmp(ds->labels, src->labels, 5 * sizeof(int32_t)) == 0, "labels differ");
    EXPECT(memcmp(ds->track, src->track, 5 * sizeof(int32_t)) == 0, "track differs");
    EXPECT(memcmp(ds->segment, src->segment, 5 * sizeof(int32_t)) == 0, "segment differs");
    EXPECT_EQ_INT(ds->info.n_classes, 3);
    for (int c = 0; c < 3; c++)
      EXPECT(!strcmp(ds->info.classes[c], classes3[c]), "class %d: %s", c, ds->info.classes[c]);
    EXPECT_EQ_INT(ds->info.n_tracks, 2);
    for (int t = 0; t < 2; t++)
      EXPECT(!strcmp(ds->info.tracks[t], tracks2[t]), "track %d: %s", t, ds->info.tracks[t]);
    EXPECT(!strcmp(ds->info.feature, "melspec"), "feature %s", ds->info.feature);
    EXPECT(!strcmp(ds->info.feature_params, src->info.feature_params), "params %s",
           ds->info.feature_params);
    EXPECT(!strcmp(ds->info.segmenting, src->info.segmenting), "segmenting %s",
           ds->info.segmenting);
    EXPECT(!strcmp(ds->info.source, "data/genres"), "source %s", ds->info.source);
    EXPECT_NEAR(ds->info.sample_rate, 22050, 0);
  }
  mf_dataset_free(ds);
  mf_dataset_free(src);
  free(path);
  rm_tree(dir);
}

TEST(test_info_copy_is_deep) {
  mf_dataset_info in = test_info(), copy;
  mf_dataset_info_copy(&copy, &in);
  EXPECT(copy.classes != in.classes && copy.classes[2] != in.classes[2], "classes shared");
  EXPECT(!strcmp(copy.classes[2], "Música") && !strcmp(copy.tracks[1], "rock/b.wav"),
         "strings differ");
  EXPECT(copy.feature != in.feature && !strcmp(copy.feature, "melspec"), "feature not copied");
  mf_dataset_info_clear(&copy);
  EXPECT(copy.classes == NULL && copy.n_classes == 0 && copy.feature == NULL, "not cleared");
}

TEST(test_writer_set_tracks_replaces_the_track_list) {
  char *dir = make_tmpdir(), *path = path_in(dir, "t.h5");
  mf_dataset_info in = test_info();
  in.n_tracks = 0;
  in.tracks = NULL;
  mf_dataset_writer *w;
  EXPECT(mf_dataset_writer_open(path, &in, &w) == MF_OK, "open: %s", mf_error());
  float x[12] = {0};
  int32_t lab = 1, trk = 2, seg = 0;
  EXPECT(mf_dataset_writer_append(w, x, 1, &lab, &trk, &seg) == MF_OK, "%s", mf_error());
  char *late[] = {"x.wav", "y.wav", "z.wav"};
  EXPECT(mf_dataset_writer_set_tracks(w, late, 3) == MF_OK, "%s", mf_error());
  EXPECT(mf_dataset_writer_commit(w) == MF_OK, "commit: %s", mf_error());
  mf_dataset *ds = load_ok(path);
  if (ds) {
    EXPECT_EQ_INT(ds->info.n_tracks, 3);
    EXPECT(!strcmp(ds->info.tracks[2], "z.wav"), "track 2: %s", ds->info.tracks[2]);
    EXPECT_EQ_INT(ds->track[0], 2);
  }
  mf_dataset_free(ds);
  free(path);
  rm_tree(dir);
}

TEST(test_writer_rejects_bad_info) {
  char *dir = make_tmpdir(), *path = path_in(dir, "bad.h5");
  mf_dataset_writer *w = NULL;
  mf_dataset_info in = test_info();
  in.feature_params = "n_mels=3";
  expect_error_contains(mf_dataset_writer_open(path, &in, &w),
                        "feature_params must be a JSON object");
  in = test_info();
  char *dup[] = {"rock", "pop", "rock"};
  in.classes = dup;
  expect_error_contains(mf_dataset_writer_open(path, &in, &w), "class 'rock' is listed twice");
  in = test_info();
  in.sample_shape = MF_SHAPE(3, 0);
  expect_error_contains(mf_dataset_writer_open(path, &in, &w), "empty dimension");
  EXPECT(w == NULL, "a writer was returned");
  EXPECT_EQ_INT(count_temp_files(dir), 0);
  EXPECT(access(path, F_OK) != 0, "a file was created");
  free(path);
  rm_tree(dir);
}

/* ------------------------------------------------------------------------------------ */
/* Atomic replacement */

TEST(test_temp_path_is_hidden_next_to_the_target_and_unique) {
  char *a = mf_temp_path_for("some/dir/data.h5"), *b = mf_temp_path_for("some/dir/data.h5");
  char want[64];
  snprintf(want, sizeof want, "some/dir/.data.h5.tmp-%ld-", (long)getpid());
  EXPECT(a && !strncmp(a, want, strlen(want)), "got %s, want prefix %s", a, want);
  EXPECT(a && b && strcmp(a, b) != 0, "two temp names are equal: %s", a);
  char *c = mf_temp_path_for("x.h5");
  snprintf(want, sizeof want, ".x.h5.tmp-%ld-", (long)getpid());
  EXPECT(c && !strncmp(c, want, strlen(want)), "got %s", c);
  EXPECT(mf_temp_path_for("dir/") == NULL, "a folder got a temp name");
  free(a);
  free(b);
  free(c);
}

TEST(test_publish_file_replaces_the_target) {
  char *dir = make_tmpdir(), *path = path_in(dir, "f.txt");
  write_text(path, "old");
  char *tmp = mf_temp_path_for(path);
  write_text(tmp, "new");
  EXPECT(mf_publish_file(tmp, path) == MF_OK, "%s", mf_error());
  char buf[8] = {0};
  FILE *f = fopen(path, "rb");
  size_t got = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  EXPECT(got == 3 && !strcmp(buf, "new"), "target holds '%s'", buf);
  EXPECT(access(tmp, F_OK) != 0, "temp file still there");
  free(tmp);
  free(path);
  rm_tree(dir);
}

TEST(test_publish_failure_removes_the_temp_file) {
  char *dir = make_tmpdir(), *tmp = path_in(dir, ".x.tmp-1-1"), *bad = path_in(dir, "missing/x");
  write_text(tmp, "new");
  expect_error_contains(mf_publish_file(tmp, bad), "could not move the new file into place");
  EXPECT(access(tmp, F_OK) != 0, "temp file left behind");
  free(tmp);
  free(bad);
  rm_tree(dir);
}

TEST(test_aborted_writer_leaves_the_previous_file_and_no_temp_files) {
  char *dir = make_tmpdir(), *path = path_in(dir, "a.h5");
  mf_dataset *old = test_dataset(4);
  EXPECT(mf_dataset_save(old, path) == MF_OK, "%s", mf_error());
  mf_dataset_info in = test_info();
  in.source = "replacement";
  mf_dataset_writer *w;
  EXPECT(mf_dataset_writer_open(path, &in, &w) == MF_OK, "%s", mf_error());
  float x[12] = {0};
  int32_t zero = 0;
  EXPECT(mf_dataset_writer_append(w, x, 1, &zero, &zero, &zero) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(count_temp_files(dir), 1); /* the write really goes to a temporary file */
  mf_dataset_writer_abort(w);
  EXPECT_EQ_INT(count_temp_files(dir), 0);
  mf_dataset *ds = load_ok(path);
  if (ds) {
    EXPECT_EQ_INT(ds->n, 4);
    EXPECT(!strcmp(ds->info.source, "data/genres"), "source %s", ds->info.source);
  }
  mf_dataset_free(ds);
  mf_dataset_free(old);
  free(path);
  rm_tree(dir);
}

TEST(test_failed_append_removes_the_temp_file_and_keeps_the_previous_file) {
  char *dir = make_tmpdir(), *path = path_in(dir, "f.h5");
  mf_dataset *old = test_dataset(3);
  EXPECT(mf_dataset_save(old, path) == MF_OK, "%s", mf_error());
  mf_dataset_info in = test_info();
  mf_dataset_writer *w;
  EXPECT(mf_dataset_writer_open(path, &in, &w) == MF_OK, "%s", mf_error());
  float x[24] = {0};
  int32_t lab[2] = {0, 7}, trk[2] = {0, 0}, seg[2] = {0, 1};
  expect_error_contains(mf_dataset_writer_append(w, x, 2, lab, trk, seg),
                        "label 7 at row 1 is outside the 3 classes");
  EXPECT_EQ_INT(count_temp_files(dir), 0);
  /* Further use is refused until the caller aborts. */
  expect_error_contains(mf_dataset_writer_append(w, x, 1, lab, trk, seg), "failed earlier");
  mf_dataset_writer_abort(w);
  mf_dataset *ds = load_ok(path);
  if (ds) EXPECT_EQ_INT(ds->n, 3);
  mf_dataset_free(ds);
  mf_dataset_free(old);
  free(path);
  rm_tree(dir);
}

TEST(test_commit_refuses_track_ids_beyond_the_track_list) {
  char *dir = make_tmpdir(), *path = path_in(dir, "c.h5");
  mf_dataset_info in = test_info();
  mf_dataset_writer *w;
  EXPECT(mf_dataset_writer_open(path, &in, &w) == MF_OK, "%s", mf_error());
  float x[12] = {0};
  int32_t lab = 0, trk = 5, seg = 0;
  EXPECT(mf_dataset_writer_append(w, x, 1, &lab, &trk, &seg) == MF_OK, "%s", mf_error());
  expect_error_contains(mf_dataset_writer_commit(w), "rows refer to track 5 but only 2 tracks");
  EXPECT(access(path, F_OK) != 0, "a file was published");
  EXPECT_EQ_INT(count_temp_files(dir), 0);
  free(path);
  rm_tree(dir);
}

TEST(test_commit_without_rows_fails_and_publishes_nothing) {
  char *dir = make_tmpdir(), *path = path_in(dir, "e.h5");
  mf_dataset_info in = test_info();
  mf_dataset_writer *w;
  EXPECT(mf_dataset_writer_open(path, &in, &w) == MF_OK, "%s", mf_error());
  expect_error_contains(mf_dataset_writer_commit(w), "no rows were written");
  EXPECT(access(path, F_OK) != 0, "a file was published");
  EXPECT_EQ_INT(count_temp_files(dir), 0);
  free(path);
  rm_tree(dir);
}

/* ------------------------------------------------------------------------------------ */
/* Broken layouts, written with the HDF5 API */

typedef struct raw_layout {
  int64_t feature_rows, label_rows;
  int n_classes, n_tracks;
  int64_t bad_row; /* row given bad_label / bad_track (-1: none) */
  int32_t bad_label, bad_track;
  int nan_row;       /* row holding a NaN (-1: none) */
  const char *skip;  /* a dataset left out */
  int fixed_strings; /* /classes as fixed-length strings, as h5py writes numpy 'S' arrays */
  int int_features;  /* /features as int32 */
} raw_layout;

static raw_layout good_layout(void) {
  return (raw_layout){.feature_rows = 10,
                      .label_rows = 10,
                      .n_classes = 10,
                      .n_tracks = 5,
                      .bad_row = -1,
                      .nan_row = -1};
}

static void raw_ints(hid_t f, const char *name, const int32_t *v, hsize_t n) {
  hid_t s = H5Screate_simple(1, &n, NULL);
  hid_t d = H5Dcreate2(f, name, H5T_STD_I32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
  H5Dclose(d);
  H5Sclose(s);
}

static void raw_strings(hid_t f, const char *name, int n, int fixed) {
  hsize_t dim = (hsize_t)n;
  hid_t s = H5Screate_simple(1, &dim, NULL), t = H5Tcopy(H5T_C_S1);
  char(*fixed_buf)[16] = calloc((size_t)n + 1, 16);
  char **vlen = calloc((size_t)n + 1, sizeof *vlen);
  for (int i = 0; i < n; i++) {
    snprintf(fixed_buf[i], 16, "c%d", i);
    vlen[i] = fixed_buf[i];
  }
  H5Tset_size(t, fixed ? 16 : H5T_VARIABLE);
  hid_t d = H5Dcreate2(f, name, t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (n > 0)
    H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, fixed ? (void *)fixed_buf : (void *)vlen);
  H5Dclose(d);
  H5Tclose(t);
  H5Sclose(s);
  free(fixed_buf);
  free(vlen);
}

static void write_raw(const char *path, raw_layout L) {
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t dims[2] = {(hsize_t)L.feature_rows, 4};
  if (!L.skip || strcmp(L.skip, "/features")) {
    float *x = calloc((size_t)L.feature_rows * 4 + 1, sizeof(float));
    if (L.nan_row >= 0) x[L.nan_row * 4 + 2] = NAN;
    hid_t s = H5Screate_simple(2, dims, NULL);
    hid_t d = H5Dcreate2(f, "/features", L.int_features ? H5T_STD_I32LE : H5T_IEEE_F32LE, s,
                         H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (!L.int_features) H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
    H5Dclose(d);
    H5Sclose(s);
    free(x);
  }
  int64_t most = L.label_rows > L.feature_rows ? L.label_rows : L.feature_rows;
  int32_t *lab = calloc((size_t)most + 1, sizeof *lab); /* also the /segment values */
  int32_t *trk = calloc((size_t)L.feature_rows + 1, sizeof *trk);
  for (int64_t i = 0; i < most; i++) lab[i] = (int32_t)(i % L.n_classes);
  for (int64_t i = 0; i < L.feature_rows; i++) trk[i] = (int32_t)(i % L.n_tracks);
  if (L.bad_row >= 0) {
    if (L.bad_label) lab[L.bad_row] = L.bad_label;
    if (L.bad_track) trk[L.bad_row] = L.bad_track;
  }
  if (!L.skip || strcmp(L.skip, "/labels")) raw_ints(f, "/labels", lab, (hsize_t)L.label_rows);
  if (!L.skip || strcmp(L.skip, "/track")) raw_ints(f, "/track", trk, (hsize_t)L.feature_rows);
  if (!L.skip || strcmp(L.skip, "/segment")) raw_ints(f, "/segment", lab, (hsize_t)L.feature_rows);
  if (!L.skip || strcmp(L.skip, "/classes"))
    raw_strings(f, "/classes", L.n_classes, L.fixed_strings);
  if (!L.skip || strcmp(L.skip, "/tracks")) raw_strings(f, "/tracks", L.n_tracks, 0);
  free(lab);
  free(trk);
  H5Fclose(f);
}

static mf_status load_raw(const char *dir, raw_layout L, mf_dataset **out) {
  char *path = path_in(dir, "data.h5");
  write_raw(path, L);
  mf_status st = mf_dataset_load(path, out);
  free(path);
  return st;
}

TEST(test_load_accepts_a_minimal_file_written_by_another_tool) {
  char *dir = make_tmpdir();
  mf_dataset *ds = NULL;
  raw_layout L = good_layout();
  L.fixed_strings = 1;
  mf_status st = load_raw(dir, L, &ds);
  EXPECT(st == MF_OK, "%s", mf_error());
  if (ds) {
    EXPECT_EQ_INT(ds->n, 10);
    EXPECT_EQ_INT(ds->info.n_classes, 10);
    EXPECT(!strcmp(ds->info.classes[3], "c3"), "fixed-length class 3 read as '%s'",
           ds->info.classes[3]);
    /* Attributes are metadata: absent ones read as empty. */
    EXPECT(!strcmp(ds->info.feature_params, "{}") && ds->info.sample_rate == 0, "defaults");
  }
  mf_dataset_free(ds);
  rm_tree(dir);
}

TEST(test_load_reports_a_missing_file) {
  mf_dataset *ds = (mf_dataset *)1;
  mf_status st = mf_dataset_load("/nonexistent/melforge/data.h5", &ds);
  EXPECT(st == MF_ENOTFOUND, "status %d", st);
  EXPECT(ds == NULL, "out not cleared");
  expect_error_contains(st, "/nonexistent/melforge/data.h5: no such file");
}

TEST(test_load_rejects_a_file_that_is_not_hdf5) {
  char *dir = make_tmpdir(), *path = path_in(dir, "data.h5");
  write_text(path, "{\"mapping\": []}\n");
  mf_dataset *ds = NULL;
  mf_status st = mf_dataset_load(path, &ds);
  EXPECT(st == MF_EFORMAT, "status %d", st);
  expect_error_contains(st, "data.h5: not an HDF5 file (or damaged)");
  free(path);
  rm_tree(dir);
}

TEST(test_load_reports_missing_features_with_a_hint) {
  char *dir = make_tmpdir();
  mf_dataset *ds = NULL;
  raw_layout L = good_layout();
  L.skip = "/features";
  mf_status st = load_raw(dir, L, &ds);
  expect_error_contains(st, "data.h5: missing dataset /features — is this a melforge dataset?");
  expect_error_contains(st, "melforge import");
  EXPECT(ds == NULL, "a dataset was returned");
  rm_tree(dir);
}

TEST(test_load_reports_each_missing_dataset_by_name) {
  const char *names[] = {"/labels", "/track", "/segment", "/classes", "/tracks"};
  for (int k = 0; k < 5; k++) {
    char *dir = make_tmpdir();
    mf_dataset *ds = NULL;
    raw_layout L = good_layout();
    L.skip = names[k];
    char want[64];
    snprintf(want, sizeof want, "missing dataset %s", names[k]);
    expect_error_contains(load_raw(dir, L, &ds), want);
    rm_tree(dir);
  }
}

TEST(test_load_reports_mismatched_row_counts) {
  char *dir = make_tmpdir();
  mf_dataset *ds = NULL;
  raw_layout L = good_layout();
  L.feature_rows = 1000;
  L.label_rows = 950;
  expect_error_contains(load_raw(dir, L, &ds),
                        "data.h5: /labels has 950 rows but /features has 1000");
  rm_tree(dir);
}

TEST(test_load_reports_a_label_outside_the_classes) {
  char *dir = make_tmpdir();
  mf_dataset *ds = NULL;
  raw_layout L = good_layout();
  L.bad_row = 4;
  L.bad_label = 12;
  expect_error_contains(load_raw(dir, L, &ds), "label 12 at row 4 is outside the 10 classes");
  rm_tree(dir);
}

TEST(test_load_reports_a_track_outside_the_track_list) {
  char *dir = make_tmpdir();
  mf_dataset *ds = NULL;
  raw_layout L = good_layout();
  L.bad_row = 7;
  L.bad_track = 5;
  expect_error_contains(load_raw(dir, L, &ds), "track 5 at row 7 is outside the 5 tracks");
  rm_tree(dir);
}

TEST(test_load_reports_non_float_features) {
  char *dir = make_tmpdir();
  mf_dataset *ds = NULL;
  raw_layout L = good_layout();
  L.int_features = 1;
  expect_error_contains(load_raw(dir, L, &ds), "/features holds integer values; expected float32");
  rm_tree(dir);
}

TEST(test_load_reports_the_first_row_holding_nan) {
  char *dir = make_tmpdir();
  mf_dataset *ds = NULL;
  raw_layout L = good_layout();
  L.nan_row = 6;
  expect_error_contains(load_raw(dir, L, &ds), "row 6 of /features holds NaN or infinity");
  rm_tree(dir);
}

/* ------------------------------------------------------------------------------------ */
/* h5py */

static int have_h5py(void) {
  return system("/usr/bin/python3 -c 'import h5py, numpy' >/dev/null 2>&1") == 0;
}

TEST(test_h5py_reads_the_dataset_as_plain_arrays) {
  if (!have_h5py()) {
    printf("    skipped: /usr/bin/python3 with h5py and numpy is not installed\n");
    return;
  }
  char *dir = make_tmpdir(), *path = path_in(dir, "py.h5"), *script = path_in(dir, "check.py");
  mf_dataset *src = test_dataset(6);
  EXPECT(mf_dataset_save(src, path) == MF_OK, "%s", mf_error());
  write_text(script,
             "import sys, json, h5py, numpy as np\n"
             "f = h5py.File(sys.argv[1], 'r')\n"
             "x = f['features'][()]\n"
             "assert x.dtype == np.float32 and x.shape == (6, 3, 4), (x.dtype, x.shape)\n"
             "want = (np.arange(6)[:, None] * 100 + np.arange(12)[None, :]) * 0.5\n"
             "assert np.array_equal(x.reshape(6, 12), want.astype(np.float32))\n"
             "for k, v in (('labels', np.arange(6) % 3), ('track', np.arange(6) % 2),\n"
             "             ('segment', np.arange(6) // 2)):\n"
             "    a = f[k][()]\n"
             "    assert a.dtype == np.int32 and a.shape == (6,), (k, a.dtype, a.shape)\n"
             "    assert np.array_equal(a, v), (k, a)\n"
             "assert list(f['classes'].asstr()[()]) == ['blues', 'rock', 'Música']\n"
             "assert list(f['tracks'].asstr()[()]) == ['blues/a.wav', 'rock/b.wav']\n"
             "assert f['features'].chunks[1:] == (3, 4) and f['features'].maxshape[0] is None\n"
             "a = f.attrs\n"
             "assert a['feature'] == 'melspec' and a['source'] == 'data/genres'\n"
             "assert json.loads(a['feature_params']) == {'n_mels': 3, 'hop_length': 512}\n"
             "assert json.loads(a['segmenting'])['segments'] == 5\n"
             "assert float(a['sample_rate']) == 22050.0\n"
             "assert a['melforge_version'] and a['created'].endswith('Z')\n");
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s", script, path);
  EXPECT(system(cmd) == 0, "h5py check failed (see the Python traceback above)");
  mf_dataset_free(src);
  free(script);
  free(path);
  rm_tree(dir);
}

/* ------------------------------------------------------------------------------------ */
/* JSON importer */

static const char *NOTEBOOK_JSON =
    "{\n"
    "  \"mapping\": [\"blues\", \"classical\"],\n"
    "  \"labels\": [0, 1, 1],\n"
    "  \"mfcc\": [\n"
    "    [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]],\n"
    "    [[-1.5, 2.25, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]],\n"
    "    [[0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 1e-3]]\n"
    "  ]\n"
    "}\n";

TEST(test_import_json_converts_the_notebook_format) {
  char *dir = make_tmpdir(), *json = path_in(dir, "data.json"), *out = path_in(dir, "out.h5");
  write_text(json, NOTEBOOK_JSON);
  mf_import_summary sum;
  EXPECT(mf_import_json(json, out, NULL, &sum) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(sum.rows, 3);
  EXPECT_EQ_INT(sum.grouped_by_track, 0);
  mf_dataset *ds = load_ok(out);
  if (ds) {
    EXPECT_EQ_INT(ds->n, 3);
    EXPECT_EQ_INT(ds->info.sample_shape.ndim, 2);
    EXPECT_EQ_INT(ds->info.sample_shape.d[0], 4); /* frames */
    EXPECT_EQ_INT(ds->info.sample_shape.d[1], 3); /* n_mfcc */
    EXPECT_NEAR(ds->features[0], 1, 0);
    EXPECT_NEAR(ds->features[11], 12, 0);
    EXPECT_NEAR(ds->features[12], -1.5, 0);
    EXPECT_NEAR(ds->features[13], 2.25, 0);
    EXPECT_NEAR(ds->features[35], 1e-3f, 0);
    EXPECT_EQ_INT(ds->labels[0], 0);
    EXPECT_EQ_INT(ds->labels[2], 1);
    EXPECT(!strcmp(ds->info.classes[1], "classical"), "class 1 %s", ds->info.classes[1]);
    /* Every segment is its own track. */
    EXPECT_EQ_INT(ds->info.n_tracks, 3);
    for (int i = 0; i < 3; i++) EXPECT_EQ_INT(ds->track[i], i);
    EXPECT(!strcmp(ds->info.feature, "json"), "feature %s", ds->info.feature);
    EXPECT(!strcmp(ds->info.feature_params, "{\"n_mfcc\": 3}"), "params %s",
           ds->info.feature_params);
    EXPECT_NEAR(ds->info.sample_rate, 22050, 0);
    EXPECT(!strcmp(ds->info.source, json), "source %s", ds->info.source);
  }
  mf_dataset_free(ds);
  free(json);
  free(out);
  rm_tree(dir);
}

TEST(test_import_json_takes_the_sample_rate_from_sr) {
  char *dir = make_tmpdir(), *json = path_in(dir, "sr.json"), *out = path_in(dir, "out.h5");
  write_text(json, "{\"sr\": 16000, \"mapping\": [\"a\"], \"labels\": [0], \"mfcc\": [[[1, 2]]]}");
  mf_import_summary sum;
  EXPECT(mf_import_json(json, out, NULL, &sum) == MF_OK, "%s", mf_error());
  mf_dataset *ds = load_ok(out);
  if (ds) EXPECT_NEAR(ds->info.sample_rate, 16000, 0);
  mf_dataset_free(ds);
  free(json);
  free(out);
  rm_tree(dir);
}

TEST(test_import_json_reports_line_and_column_of_syntax_errors) {
  char *dir = make_tmpdir(), *json = path_in(dir, "data.json"), *out = path_in(dir, "out.h5");
  write_text(json, "{\n  \"mapping\": [\"blues\",\n     oops],\n  \"labels\": []\n}\n");
  mf_import_summary sum;
  mf_status st = mf_import_json(json, out, NULL, &sum);
  char want[512];
  snprintf(want, sizeof want, "%s:3:", json);
  EXPECT(st == MF_EFORMAT, "status %d", st);
  EXPECT(!strncmp(mf_error(), want, strlen(want)), "message '%s' does not start with '%s'",
         mf_error(), want);
  /* The column points into line 3, at or just past "oops" (5 spaces in). */
  int col = atoi(mf_error() + strlen(want));
  EXPECT(col >= 6 && col <= 10, "column %d in '%s'", col, mf_error());
  EXPECT(access(out, F_OK) != 0, "output written");
  free(json);
  free(out);
  rm_tree(dir);
}

TEST(test_import_json_names_the_first_segment_of_unequal_length) {
  char *dir = make_tmpdir(), *json = path_in(dir, "data.json"), *out = path_in(dir, "out.h5");
  write_text(json,
             "{\"mapping\": [\"a\", \"b\"], \"labels\": [0, 1, 0],\n"
             " \"mfcc\": [[[1, 2], [3, 4], [5, 6]], [[1, 2], [3, 4], [5, 6]], [[1, 2], [3, 4]]]}");
  mf_import_summary sum;
  mf_status st = mf_import_json(json, out, NULL, &sum);
  expect_error_contains(st, "segment 2 has 2 frames but segment 0 has 3");
  expect_error_contains(st, "drops short ones");
  EXPECT(access(out, F_OK) != 0, "output written");
  EXPECT_EQ_INT(count_temp_files(dir), 0);
  free(json);
  free(out);
  rm_tree(dir);
}

TEST(test_import_json_rejects_bad_labels_and_layouts) {
  char *dir = make_tmpdir(), *json = path_in(dir, "data.json"), *out = path_in(dir, "out.h5");
  mf_import_summary sum;
  write_text(json, "{\"mapping\": [\"a\"], \"labels\": [3], \"mfcc\": [[[1]]]}");
  expect_error_contains(mf_import_json(json, out, NULL, &sum),
                        "label 3 at row 0 is outside the 1 classes");
  write_text(json, "{\"mapping\": [\"a\"], \"labels\": [0, 0], \"mfcc\": [[[1]]]}");
  expect_error_contains(mf_import_json(json, out, NULL, &sum),
                        "\"labels\" has 2 entries but \"mfcc\" has 1");
  write_text(json, "{\"mapping\": [\"a\"], \"labels\": [0]}");
  expect_error_contains(mf_import_json(json, out, NULL, &sum), "no \"mfcc\" key");
  write_text(json,
             "{\"mapping\": [\"a\"], \"labels\": [0, 0], \"mfcc\": [[[1, 2]], [[1, \"x\"]]]}");
  expect_error_contains(mf_import_json(json, out, NULL, &sum), "mfcc[1][0][1] is not a number");
  expect_error_contains(mf_import_json("/nonexistent/data.json", out, NULL, &sum), "no such file");
  EXPECT(access(out, F_OK) != 0, "output written");
  EXPECT_EQ_INT(count_temp_files(dir), 0);
  free(json);
  free(out);
  rm_tree(dir);
}

TEST(test_failed_import_leaves_an_existing_output_untouched) {
  char *dir = make_tmpdir(), *json = path_in(dir, "data.json"), *out = path_in(dir, "out.h5");
  mf_dataset *old = test_dataset(2);
  EXPECT(mf_dataset_save(old, out) == MF_OK, "%s", mf_error());
  /* Fails at the last segment, once the temporary file exists. */
  write_text(json, "{\"mapping\": [\"a\"], \"labels\": [0, 0], \"mfcc\": [[[1, 2]], [[1, 2, 3]]]}");
  mf_import_summary sum;
  EXPECT(mf_import_json(json, out, NULL, &sum) != MF_OK, "a broken import succeeded");
  mf_dataset *ds = load_ok(out);
  if (ds) EXPECT(!strcmp(ds->info.feature, "melspec") && ds->n == 2, "the old file changed");
  mf_dataset_free(ds);
  mf_dataset_free(old);
  EXPECT_EQ_INT(count_temp_files(dir), 0);
  free(json);
  free(out);
  rm_tree(dir);
}

/* ------------------------------------------------------------------------------------ */
/* .npy reader and importer */

/* A minimal .npy writer: header dict padded with spaces to a multiple of 64 bytes. */
static void write_npy(const char *path, const char *descr, int fortran, int ndim,
                      const int64_t *shape, const void *data, size_t bytes, int version) {
  char dict[256], shp[96] = "(";
  for (int i = 0; i < ndim; i++) {
    char d[24];
    snprintf(d, sizeof d, "%lld%s", (long long)shape[i],
             ndim == 1      ? ","
             : i + 1 < ndim ? ", "
                            : "");
    strcat(shp, d);
  }
  strcat(shp, ")");
  snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr,
           fortran ? "True" : "False", shp);
  size_t pre = version == 1 ? 10 : 12, len = strlen(dict) + 1;
  size_t padded = (pre + len + 63) / 64 * 64 - pre;
  FILE *f = fopen(path, "wb");
  fwrite("\x93NUMPY", 1, 6, f);
  unsigned char v[2] = {(unsigned char)version, 0};
  fwrite(v, 1, 2, f);
  unsigned char hl[4] = {(unsigned char)(padded & 255), (unsigned char)(padded >> 8), 0, 0};
  fwrite(hl, 1, version == 1 ? 2 : 4, f);
  fputs(dict, f);
  for (size_t i = strlen(dict); i + 1 < padded; i++) fputc(' ', f);
  fputc('\n', f);
  fwrite(data, 1, bytes, f);
  fclose(f);
}

/* value(i, j, k) of a C-order [2, 3, 4] array. */
static double v3(int i, int j, int k) { return i * 100 + j * 10 + k + 0.25; }

TEST(test_npy_reader_reads_float32_float64_c_and_fortran_order) {
  char *dir = make_tmpdir(), *path = path_in(dir, "a.npy");
  const int64_t shape[3] = {2, 3, 4};
  float c32[24], f32[24];
  double c64[24], f64[24];
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++)
      for (int k = 0; k < 4; k++) {
        int c = (i * 3 + j) * 4 + k, f = i + 2 * (j + 3 * k); /* first index fastest */
        c32[c] = f32[f] = (float)v3(i, j, k);
        c64[c] = f64[f] = v3(i, j, k);
      }
  struct {
    const char *descr;
    int fortran, version;
    const void *data;
    size_t bytes;
  } cases[] = {{"<f4", 0, 1, c32, sizeof c32},
               {"<f8", 0, 1, c64, sizeof c64},
               {"<f4", 1, 2, f32, sizeof f32},
               {"<f8", 1, 3, f64, sizeof f64}};
  for (int n = 0; n < 4; n++) {
    write_npy(path, cases[n].descr, cases[n].fortran, 3, shape, cases[n].data, cases[n].bytes,
              cases[n].version);
    float *x = NULL;
    mf_shape s = {0};
    EXPECT(mf_npy_read(path, &x, &s) == MF_OK, "case %d: %s", n, mf_error());
    if (!x) continue;
    EXPECT(s.ndim == 3 && s.d[0] == 2 && s.d[1] == 3 && s.d[2] == 4, "case %d: shape", n);
    for (int i = 0; i < 24; i++)
      EXPECT(x[i] == c32[i], "case %d (%s, fortran %d): x[%d] = %g, want %g", n, cases[n].descr,
             cases[n].fortran, i, x[i], c32[i]);
    free(x);
  }
  free(path);
  rm_tree(dir);
}

TEST(test_npy_reader_rejects_unsupported_and_truncated_files) {
  char *dir = make_tmpdir(), *path = path_in(dir, "b.npy");
  const int64_t shape[2] = {2, 2};
  int16_t i16[4] = {1, 2, 3, 4};
  float f[4] = {1, 2, 3, 4};
  float *x = NULL;
  mf_shape s;
  write_npy(path, "<i2", 0, 2, shape, i16, sizeof i16, 1);
  expect_error_contains(mf_npy_read(path, &x, &s), "dtype '<i2' is not supported");
  write_npy(path, "<f4", 0, 2, shape, f, 12, 1); /* one value short */
  expect_error_contains(mf_npy_read(path, &x, &s), "is it truncated?");
  write_text(path, "PK\x03\x04 not numpy");
  expect_error_contains(mf_npy_read(path, &x, &s), "not a .npy file");
  EXPECT(x == NULL, "data returned for a bad file");
  free(path);
  rm_tree(dir);
}

static void npy_tree(const char *root, const char *cls, const char *file, float base, int cols) {
  char *cdir = path_in(root, cls);
  mkdir(cdir, 0755);
  char *p = path_in(cdir, file);
  const int64_t shape[2] = {2, cols};
  float v[2 * 8];
  for (int i = 0; i < 2 * cols; i++) v[i] = base + (float)i;
  write_npy(p, "<f4", 0, 2, shape, v, (size_t)(2 * cols) * sizeof(float), 1);
  free(p);
  free(cdir);
}

TEST(test_import_npy_makes_one_row_and_track_per_file) {
  char *dir = make_tmpdir(), *root = path_in(dir, "spec"), *out = path_in(dir, "out.h5");
  mkdir(root, 0755);
  npy_tree(root, "rock", "r1.npy", 100, 3);
  npy_tree(root, "blues", "b2.npy", 20, 3);
  npy_tree(root, "blues", "b1.npy", 10, 3);
  char *readme = path_in(root, "rock/README.txt");
  write_text(readme, "not an array");
  mf_import_summary sum;
  EXPECT(mf_import_npy(root, out, NULL, &sum) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(sum.rows, 3);
  EXPECT_EQ_INT(sum.ignored, 1);
  mf_dataset *ds = load_ok(out);
  if (ds) {
    EXPECT_EQ_INT(ds->info.n_classes, 2);
    EXPECT(!strcmp(ds->info.classes[0], "blues") && !strcmp(ds->info.classes[1], "rock"),
           "classes not sorted");
    EXPECT_EQ_INT(ds->info.n_tracks, 3);
    EXPECT(
        !strcmp(ds->info.tracks[0], "blues/b1.npy") && !strcmp(ds->info.tracks[2], "rock/r1.npy"),
        "tracks %s, %s", ds->info.tracks[0], ds->info.tracks[2]);
    EXPECT(ds->info.sample_shape.ndim == 2 && ds->row_size == 6, "shape");
    const float first[3] = {10, 20, 100};
    for (int r = 0; r < 3; r++) {
      EXPECT_NEAR(ds->features[r * 6], first[r], 0);
      EXPECT_NEAR(ds->features[r * 6 + 5], first[r] + 5, 0);
      EXPECT_EQ_INT(ds->track[r], r);
    }
    EXPECT_EQ_INT(ds->labels[1], 0);
    EXPECT_EQ_INT(ds->labels[2], 1);
    EXPECT(!strcmp(ds->info.feature, "npy"), "feature %s", ds->info.feature);
  }
  mf_dataset_free(ds);
  free(readme);
  free(root);
  free(out);
  rm_tree(dir);
}

TEST(test_import_npy_names_the_file_with_a_different_shape) {
  char *dir = make_tmpdir(), *root = path_in(dir, "spec"), *out = path_in(dir, "out.h5");
  mkdir(root, 0755);
  npy_tree(root, "blues", "a.npy", 0, 4);
  npy_tree(root, "jazz", "b.npy", 0, 3);
  mf_import_summary sum;
  mf_status st = mf_import_npy(root, out, NULL, &sum);
  expect_error_contains(st, "jazz/b.npy: has shape [2, 3] but");
  expect_error_contains(st, "blues/a.npy has [2, 4]");
  EXPECT(access(out, F_OK) != 0, "output written");
  EXPECT_EQ_INT(count_temp_files(dir), 0);
  free(root);
  free(out);
  rm_tree(dir);
}

TEST(test_import_npy_rejects_a_folder_without_classes_or_files) {
  char *dir = make_tmpdir(), *root = path_in(dir, "spec"), *out = path_in(dir, "out.h5");
  mkdir(root, 0755);
  mf_import_summary sum;
  expect_error_contains(mf_import_npy(root, out, NULL, &sum), "has no class folders");
  char *empty = path_in(root, "pop");
  mkdir(empty, 0755);
  expect_error_contains(mf_import_npy(root, out, NULL, &sum), "pop: has no .npy files");
  free(empty);
  free(root);
  free(out);
  rm_tree(dir);
}
