/* cmd_eval.c — `melforge eval CHECKPOINT.h5 [DATASET.h5]`: a checkpoint's classification
 * report, confusion matrix, top-k and track-level accuracy, on the test split of the run that
 * wrote it (recomputed exactly as the engine made it) or on every row of another dataset. */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "melforge/component.h"
#include "melforge/predict.h"
#include "progress.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: melforge eval CHECKPOINT.h5 [DATASET.h5] [--json] [--top K] [--batch N]\n"
          "\n"
          "evaluates a checkpoint (best.h5 or last.h5 of a run folder): the classification\n"
          "report (precision, recall, F1 and support per class), the confusion matrix, top-k\n"
          "and track-level accuracy (a track's segment probabilities averaged)\n"
          "\n"
          "  without DATASET  the test split of the dataset the run trained on, recomputed from\n"
          "                   the run's configuration and seed exactly as the run made it (its\n"
          "                   metrics equal summary.json's test metrics for the same weights)\n"
          "  DATASET.h5       every row of this dataset; its classes are matched to the\n"
          "                   checkpoint's by name and its sample shape must be the model's\n"
          "  --json           print the metrics as JSON (the keys of summary.json's test)\n"
          "  --top K          top-K accuracy (default: the run's top_k, 3)\n"
          "  --batch N        rows per forward pass (default: the run's eval_batch_size, 128)\n");
}

/* "--name V" or "--name=V" at argv[*i]; NULL when argv[*i] is another option. */
static const char *option_value(int argc, char **argv, int *i, const char *name, int *missing) {
  const char *a = argv[*i];
  size_t n = strlen(name);
  if (strncmp(a, name, n)) return NULL;
  if (a[n] == '=') return a + n + 1;
  if (a[n] != '\0') return NULL;
  if (*i + 1 >= argc) {
    *missing = 1;
    return NULL;
  }
  return argv[++*i];
}

static int parse_count(const char *cmd, const char *opt, const char *v, int max, int *out) {
  char *end;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (errno || end == v || *end || x < 1 || x > max) {
    cli_error(cmd, "%s expects a whole number from 1 to %d, got '%s'", opt, max, v);
    return 0;
  }
  *out = (int)x;
  return 1;
}

/* The dataset the run trained on: its path as the run was given it is relative to the folder
 * the run was started from, usually the parent of runs/<experiment>/<seed>/; tried as given,
 * then from the folders above the checkpoint. */
static char *locate_dataset(const char *ckpt, const char *recorded) {
  if (access(recorded, R_OK) == 0) return strdup(recorded);
  if (recorded[0] == '/') return NULL;
  char dir[PATH_MAX];
  if (!realpath(ckpt, dir)) return NULL;
  for (int up = 0; up < 4; up++) {
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) break;
    *slash = '\0';
    char cand[PATH_MAX + 256];
    snprintf(cand, sizeof cand, "%s/%s", dir, recorded);
    if (access(cand, R_OK) == 0) return strdup(cand);
  }
  return NULL;
}

/* summary.json next to the checkpoint, when the checkpoint sits in its run folder. */
static json_t *load_summary(const char *ckpt) {
  char *copy = strdup(ckpt);
  char path[PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/summary.json", dirname(copy));
  free(copy);
  return json_load_file(path, 0, NULL);
}

typedef struct eval_ui {
  cli_progress bar;
  int shown;
} eval_ui;

static void on_progress(int64_t done, int64_t total, void *user) {
  eval_ui *ui = user;
  if (!ui->bar.tty || total < 1024) return;
  ui->shown = 1;
  cli_progress_update(&ui->bar, (int)done, NULL);
}

int cmd_eval(int argc, char **argv) {
  cli_common common;
  int rc = cli_common_options(&argc, argv, &common);
  if (rc) return rc;
  const char *ckpt = NULL, *dataset = NULL;
  int json = 0, top_k = 0, batch = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    int missing = 0;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return MF_EXIT_OK;
    }
    if (!strcmp(a, "--json")) {
      json = 1;
    } else if ((v = option_value(argc, argv, &i, "--top", &missing))) {
      if (!parse_count("eval", "--top", v, 1000, &top_k)) return MF_EXIT_USAGE;
    } else if ((v = option_value(argc, argv, &i, "--batch", &missing))) {
      if (!parse_count("eval", "--batch", v, 65536, &batch)) return MF_EXIT_USAGE;
    } else if (missing) {
      cli_error("eval", "%s needs a value (melforge eval --help)", a);
      return MF_EXIT_USAGE;
    } else if (a[0] == '-' && a[1]) {
      static const char *const opts[] = {"--json", "--top",     "--batch",
                                         "--help", "--threads", "--plugin-path"};
      const char *hint = mf_closest_name(a, opts, 6);
      cli_error("eval", "unknown option '%s'%s%s%s; 'melforge eval --help' lists the options", a,
                hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
      return MF_EXIT_USAGE;
    } else if (!ckpt) {
      ckpt = a;
    } else if (!dataset) {
      dataset = a;
    } else {
      cli_error("eval", "too many arguments ('%s'): give a checkpoint and at most one dataset", a);
      return MF_EXIT_USAGE;
    }
  }
  if (!ckpt) {
    usage(stderr);
    return MF_EXIT_USAGE;
  }
  cli_load_plugins(&common);

  mf_classifier *c;
  if (mf_classifier_load(ckpt, &c) != MF_OK) {
    cli_error("eval", "%s", mf_error());
    return MF_EXIT_FAIL;
  }
  const mf_checkpoint_meta *meta = &mf_classifier_checkpoint(c)->meta;
  const int C = mf_classifier_n_classes(c);
  char *const *classes = mf_classifier_classes(c);
  if (top_k > C) {
    cli_error("eval", "--top %d: the checkpoint has %d classes, so K must be at most %d", top_k, C,
              C);
    mf_classifier_free(c);
    return MF_EXIT_USAGE;
  }

  int result = MF_EXIT_FAIL;
  char *ds_path = NULL;
  mf_dataset *ds = NULL;
  mf_dataset_match match = {0};
  mf_split split = {0};
  mf_metrics mt = {0};
  json_t *summary = NULL;
  char split_desc[512] = "";
  const int64_t *idx = NULL;
  int64_t n = 0;

  if (dataset) {
    ds_path = strdup(dataset);
  } else {
    const char *rec = meta->dataset ? meta->dataset : "";
    if (!*rec) {
      cli_error("eval",
                "%s does not record the dataset it was trained on: pass one (melforge "
                "eval %s DATASET.h5)",
                ckpt, ckpt);
      goto done;
    }
    if (!(ds_path = locate_dataset(ckpt, rec))) {
      cli_error("eval",
                "the dataset %s was trained on, %s, is not found (from here nor from the "
                "folders above the checkpoint): run eval from the folder the run was started in, "
                "or pass the dataset: melforge eval %s DATASET.h5",
                ckpt, rec, ckpt);
      goto done;
    }
  }
  if (mf_dataset_load(ds_path, &ds) != MF_OK) {
    cli_error("eval", "%s", mf_error());
    goto done;
  }
  if (mf_classifier_match(c, &ds->info, &match) != MF_OK) {
    cli_error("eval", "%s: %s", ds_path, mf_error());
    goto done;
  }
  if (match.warnings) {
    fprintf(stderr, "melforge eval: warning: %s was not made like the data %s was trained on:\n",
            ds_path, ckpt);
    for (char *line = match.warnings, *next; line; line = next) {
      next = strchr(line, '\n');
      if (next) *next++ = '\0';
      fprintf(stderr, "  %s\n", line);
    }
    if (!dataset)
      fprintf(stderr,
              "  (the dataset changed since training? the test split may not be the run's)\n");
  }

  if (dataset) {
    n = ds->n;
  } else {
    if (mf_classifier_run_split(c, ds, &split, split_desc, sizeof split_desc) != MF_OK) {
      cli_error("eval", "%s", mf_error());
      goto done;
    }
    if (split.n_test == 0) {
      cli_error("eval",
                "the run that wrote %s had no test split (%s): pass a dataset to evaluate "
                "on (melforge eval %s DATASET.h5)",
                ckpt, split_desc, ckpt);
      goto done;
    }
    idx = split.test;
    n = split.n_test;
    /* A dataset rebuilt since training gives another split: say so rather than report
     * numbers for rows the run never tested on. */
    summary = load_summary(ckpt);
    json_t *want =
        json_object_get(json_object_get(json_object_get(summary, "split"), "test"), "segments");
    if (json_is_integer(want) && json_integer_value(want) != n)
      fprintf(stderr,
              "melforge eval: warning: the recomputed test split has %lld segments but "
              "the run's summary.json says %lld: %s changed since training?\n",
              (long long)n, (long long)json_integer_value(want), ds_path);
  }
  if (n == 0) {
    cli_error("eval", "%s has no rows to evaluate", ds_path);
    goto done;
  }

  eval_ui ui = {0};
  cli_progress_start(&ui.bar, "eval", "segments", (int)n);
  mf_classify_options opt = {batch, on_progress, &ui};
  mf_status s = mf_classifier_evaluate(c, ds, &match, idx, n, top_k, &opt, &mt, NULL);
  if (ui.shown) cli_progress_finish(&ui.bar);
  if (s != MF_OK) {
    cli_error("eval", "%s", mf_error());
    goto done;
  }

  if (json) {
    char *txt = mf_metrics_to_json(&mt, classes);
    json_t *o = txt ? json_loads(txt, 0, NULL) : NULL;
    free(txt);
    if (!o) {
      cli_error("eval", "cannot format the metrics as JSON: %s", mf_error());
      goto done;
    }
    json_object_set_new(o, "checkpoint", json_string(ckpt));
    json_object_set_new(o, "dataset", json_string(ds_path));
    json_object_set_new(o, "rows", json_string(dataset ? "all" : "test"));
    if (!dataset) json_object_set_new(o, "split", json_string(split_desc));
    char *out = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    json_decref(o);
    printf("%s\n", out);
    free(out);
  } else {
    char *report = mf_metrics_report(&mt, classes);
    char *confusion = mf_metrics_confusion_text(&mt, classes);
    if (!report || !confusion) {
      free(report);
      free(confusion);
      cli_error("eval", "cannot format the report: %s", mf_error());
      goto done;
    }
    printf("checkpoint  %s: %s, experiment %s, seed %llu, after epoch %d\n", ckpt, meta->model,
           meta->experiment && *meta->experiment ? meta->experiment : "-",
           (unsigned long long)meta->seed, meta->epoch);
    printf("dataset     %s\n", ds_path);
    if (dataset)
      printf("rows        all: %lld segments of %lld tracks\n", (long long)mt.n,
             (long long)mt.n_tracks);
    else
      printf("rows        the run's test split: %lld segments of %lld tracks (%s)\n",
             (long long)mt.n, (long long)mt.n_tracks, split_desc);
    if (match.reordered)
      printf("classes     matched by name (the dataset lists them in another order)\n");
    if (match.missing)
      printf("classes     the dataset lacks %d of the checkpoint's %d classes (support 0 below)\n",
             match.missing, C);
    printf("loss        %.4f\n\n%s\nconfusion matrix (rows: true class, columns: predicted)\n%s",
           mt.loss, report, confusion);
    const char *weights = json_string_value(json_object_get(summary, "evaluated_weights"));
    char *copy = strdup(ckpt);
    const char *base = basename(copy);
    if (weights && ((!strcmp(weights, "final") && !strcmp(base, "best.h5")) ||
                    (!strcmp(weights, "best") && !strcmp(base, "last.h5"))))
      printf("\n(summary.json's test metrics are of the %s weights, %s, not of these)\n", weights,
             !strcmp(weights, "best") ? "best.h5" : "last.h5");
    free(copy);
    free(report);
    free(confusion);
  }
  result = MF_EXIT_OK;
done:
  json_decref(summary);
  mf_metrics_clear(&mt);
  mf_split_free(&split);
  mf_dataset_match_clear(&match);
  mf_dataset_free(ds);
  free(ds_path);
  mf_classifier_free(c);
  return result;
}
