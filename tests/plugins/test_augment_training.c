/* Augmentations in the training engine (mf_train_run on a tiny HDF5 dataset written here):
 * each augment changes what training learns, evaluation never sees an augment, and a run
 * with augments is bit-reproducible from its seed, also across an interruption and resume. */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "melforge/checkpoint.h"
#include "melforge/component.h"
#include "melforge/dataset.h"
#include "melforge/melforge.h"
#include "melforge/train.h"
#include "mftest.h"

static char g_dir[64];

static void load_plugins(void) {
  if (mf_component_count() == 0) mf_plugins_load_path(BUILD_PLUGIN_DIR, NULL, NULL);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static void remove_temp_dir(void) { nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* 3 classes x 8 tracks x 4 segments of mel-like rows [8 bands, 12 frames]: each class lights
 * its own bands, plus noise. Written once per process. */
static const char *dataset(void) {
  static char path[128];
  if (path[0]) return path;
  snprintf(g_dir, sizeof g_dir, "/tmp/mf_test_augment_XXXXXX");
  MF_CHECK(mkdtemp(g_dir), "cannot create a temporary folder");
  atexit(remove_temp_dir);
  snprintf(path, sizeof path, "%s/mel.h5", g_dir);
  enum { C = 3, TR = 8, S = 4, B = 8, F = 12 };
  char *classes[C] = {"blues", "jazz", "rock"};
  char names[C * TR][32], *tracks[C * TR];
  for (int i = 0; i < C * TR; i++) {
    snprintf(names[i], sizeof names[i], "%s/%s.%05d.au", classes[i / TR], classes[i / TR], i % TR);
    tracks[i] = names[i];
  }
  mf_dataset_info info = {0};
  info.sample_shape = MF_SHAPE(B, F);
  info.n_classes = C;
  info.classes = classes;
  info.n_tracks = C * TR;
  info.tracks = tracks;
  info.feature = "test";
  info.feature_params = "{}";
  info.sample_rate = 22050;
  info.segmenting = "{}";
  info.source = "test_augment_training";
  info.time_axis = 1;
  mf_dataset_writer *w;
  MF_CHECK(mf_dataset_writer_open(path, &info, &w) == MF_OK, "%s", mf_error());
  mf_rng r = mf_rng_stream(17, MF_RNG_USER);
  for (int t = 0; t < C * TR; t++) {
    float rows[S * B * F];
    int32_t lab[S], trk[S], seg[S];
    const int c = t / TR;
    for (int s = 0; s < S; s++) {
      for (int b = 0; b < B; b++)
        for (int f = 0; f < F; f++)
          rows[(s * B + b) * F + f] = (float)((b % C == c ? 1.0 : 0.2) + 0.4 * mf_rng_normal(&r));
      lab[s] = c, trk[s] = t, seg[s] = s;
    }
    MF_CHECK(mf_dataset_writer_append(w, rows, S, lab, trk, seg) == MF_OK, "%s", mf_error());
  }
  MF_CHECK(mf_dataset_writer_commit(w) == MF_OK, "%s", mf_error());
  return path;
}

typedef struct aug_spec {
  const char *name;
  const char *sets[4];
} aug_spec;

static mf_choice choice(mf_kind kind, const char *name, const char *const *sets) {
  const mf_component *c = mf_component_find(kind, name);
  MF_CHECK(c, "%s", mf_error());
  mf_choice ch = {c, NULL};
  MF_CHECK(mf_component_values(c, &ch.values) == MF_OK, "%s", mf_error());
  for (; sets && *sets; sets++)
    MF_CHECK(mf_values_set_assignment(ch.values, *sets) == MF_OK, "%s", mf_error());
  return ch;
}

/* Interrupts a run after its `stop_at`-th step of the first epoch (0: never). */
typedef struct stopper {
  int stop_at;
  volatile int flag;
} stopper;

static void on_step(int epoch, int step, int steps, double loss, void *user) {
  (void)steps, (void)loss;
  stopper *st = user;
  if (epoch == 1 && step == st->stop_at) st->flag = 1;
}

/* Trains the mlp for 2 epochs into g_dir/<tag> (resuming from its last.h5 with resume, stopping
 * early with st); returns the run folder (static) and the run's status in *status. */
static const char *train_ex(const char *tag, uint64_t seed, float lr, const aug_spec *augs, int n,
                            int resume, stopper *st, mf_status *status) {
  load_plugins();
  static char out[160];
  const char *data = dataset();
  snprintf(out, sizeof out, "%s/%s", g_dir, tag);
  mf_train_config cfg;
  mf_train_config_init(&cfg);
  cfg.name = strdup(tag);
  cfg.seed = seed;
  cfg.data.path = strdup(data);
  cfg.model =
      choice(MF_KIND_MODEL, "mlp", (const char *const[]){"hidden={16}", "dropout={0}", NULL});
  for (int i = 0; i < n; i++) cfg.augment[i] = choice(MF_KIND_AUGMENT, augs[i].name, augs[i].sets);
  cfg.n_augment = n;
  cfg.optim.lr = lr;
  cfg.epochs = 2;
  cfg.batch_size = 16;
  cfg.out_dir = strdup(out);
  mf_run_result res;
  mf_train_hooks hooks = {0};
  if (st) hooks.on_step = on_step, hooks.interrupt = &st->flag, hooks.user = st;
  *status = mf_train_run(&cfg, resume, &hooks, &res);
  mf_run_result_clear(&res);
  mf_train_config_clear(&cfg);
  return out;
}

static const char *train(const char *tag, uint64_t seed, float lr, const aug_spec *augs, int n) {
  mf_status s;
  const char *out = train_ex(tag, seed, lr, augs, n, 0, NULL, &s);
  EXPECT(s == MF_OK, "run %s: %s", tag, mf_error());
  return out;
}

static char *slurp(const char *dir, const char *name) {
  char p[256];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  buf[fread(buf, 1, (size_t)n, f)] = '\0';
  fclose(f);
  return buf;
}

static mf_checkpoint *last_checkpoint(const char *dir) {
  char p[256];
  snprintf(p, sizeof p, "%s/last.h5", dir);
  mf_checkpoint *ck = NULL;
  EXPECT(mf_checkpoint_load(p, &ck) == MF_OK, "%s", mf_error());
  return ck;
}

/* 1 when every parameter of a and b is bit-identical. */
static int same_weights(const mf_checkpoint *a, const mf_checkpoint *b) {
  if (!a || !b || mf_params_size(a->model) != mf_params_size(b->model)) return 0;
  for (int i = 0; i < mf_params_size(a->model); i++) {
    const mf_tensor *ta = mf_params_at(a->model, i), *tb = mf_params_at(b->model, i);
    if (ta->numel != tb->numel || memcmp(ta->data, tb->data, sizeof(float) * (size_t)ta->numel))
      return 0;
  }
  return 1;
}

/* The column `col` (0-based) of metrics.csv's data rows, joined. */
static void csv_column(const char *csv, int col, char *out, size_t size) {
  size_t k = 0;
  out[0] = '\0';
  const char *line = strchr(csv, '\n'); /* skip the header */
  while (line && line[1]) {
    line++;
    const char *f = line;
    for (int c = 0; c < col && f; c++) f = strchr(f, ',') ? strchr(f, ',') + 1 : NULL;
    if (f) {
      size_t n = strcspn(f, ",\n");
      k += (size_t)snprintf(out + k, size > k ? size - k : 0, "%.*s;", (int)n, f);
    }
    line = strchr(line, '\n');
  }
}

/* Strong settings, so an augment that leaked into evaluation could not hide. */
static const aug_spec ALL[] = {
    {"specaugment", {"freq_mask=4", "time_mask=6", NULL}},
    {"mixup", {"alpha=1", NULL}},
    {"noise", {"mode=std", "std=0.5", NULL}},
    {"gain", {"db_per_unit=10", NULL}},
    {"timeshift", {"max_fraction=0.5", "mode=shift", NULL}},
    {"random_crop", {"frames=6", NULL}},
};
#define N_ALL 6

TEST(test_training_with_each_augment_differs_from_training_without) {
  mf_checkpoint *base = last_checkpoint(train("plain", 3, 1e-2f, NULL, 0));
  for (int i = 0; i < N_ALL; i++) {
    mf_checkpoint *ck = last_checkpoint(train(ALL[i].name, 3, 1e-2f, &ALL[i], 1));
    EXPECT(ck && !same_weights(base, ck), "training with %s gave the weights of training without",
           ALL[i].name);
    mf_checkpoint_free(ck);
  }
  mf_checkpoint_free(base);
}

TEST(test_augments_never_touch_evaluation) {
  /* lr = 0 keeps the weights at their initialisation (the init stream does not depend on the
   * augments), so both runs evaluate one fixed model: its test predictions and validation
   * losses must agree to the byte, while the training losses — over augmented batches — do
   * not. */
  const char *dir = train("eval_plain", 4, 0.0f, NULL, 0);
  char *pred0 = slurp(dir, "test_predictions.csv"), *csv0 = slurp(dir, "metrics.csv");
  dir = train("eval_aug", 4, 0.0f, ALL, N_ALL);
  char *pred1 = slurp(dir, "test_predictions.csv"), *csv1 = slurp(dir, "metrics.csv");
  EXPECT(pred0 && pred1 && csv0 && csv1, "a run wrote no test_predictions.csv or metrics.csv");
  if (pred0 && pred1 && csv0 && csv1) {
    EXPECT(strlen(pred0) > 100 && !strcmp(pred0, pred1),
           "test predictions of one fixed model differ with augments configured");
    char a[512], b[512];
    csv_column(csv0, 4, a, sizeof a), csv_column(csv1, 4, b, sizeof b); /* val_loss */
    EXPECT(a[0] && !strcmp(a, b), "validation losses differ: %s vs %s", a, b);
    csv_column(csv0, 2, a, sizeof a), csv_column(csv1, 2, b, sizeof b); /* train_loss */
    EXPECT(a[0] && strcmp(a, b), "training losses agree (%s): the augments did not run", a);
  }
  free(pred0), free(pred1), free(csv0), free(csv1);
}

TEST(test_training_with_augments_is_bit_reproducible_from_the_seed) {
  mf_checkpoint *a = last_checkpoint(train("repro_a", 5, 1e-2f, ALL, N_ALL));
  mf_checkpoint *b = last_checkpoint(train("repro_b", 5, 1e-2f, ALL, N_ALL));
  EXPECT(same_weights(a, b), "two runs with one seed and every augment ended with other weights");
  /* The same split and init (seed 5) without augments end elsewhere: the augments mattered. */
  mf_checkpoint *c = last_checkpoint(train("repro_plain", 5, 1e-2f, NULL, 0));
  EXPECT(!same_weights(a, c), "every augment together changed nothing");
  mf_checkpoint_free(a), mf_checkpoint_free(b), mf_checkpoint_free(c);
}

TEST(test_interrupted_run_with_augments_resumes_bit_identical) {
  /* The augment stream is saved in last.h5 mid-epoch; the plugins keep no other state that
   * shapes their output, so a resumed run draws the masks, noise and mixes it would have. */
  mf_checkpoint *whole = last_checkpoint(train("resume_whole", 6, 1e-2f, ALL, N_ALL));
  stopper st = {2, 0};
  mf_status s;
  train_ex("resume_cut", 6, 1e-2f, ALL, N_ALL, 0, &st, &s);
  EXPECT(s == MF_EINTERRUPT, "the run was not interrupted: status %d, %s", s, mf_error());
  const char *dir = train_ex("resume_cut", 6, 1e-2f, ALL, N_ALL, 1, NULL, &s);
  EXPECT(s == MF_OK, "resume: %s", mf_error());
  mf_checkpoint *resumed = last_checkpoint(dir);
  EXPECT(same_weights(whole, resumed), "the resumed run ended with other weights");
  mf_checkpoint_free(whole), mf_checkpoint_free(resumed);
}
