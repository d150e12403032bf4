/* cmd_predict.c — `melforge predict CHECKPOINT.h5 AUDIO... [--top K] [--json]`: the genre of
 * audio files from a checkpoint alone. Each file is read at the checkpoint's sample rate, cut
 * and turned into features as the training data was, and its segment probabilities are
 * averaged. Files are prepared in parallel a batch at a time and reported in argument order;
 * a file that cannot be used is reported and skipped (exit 1 once the others are done). */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "melforge/component.h"
#include "melforge/predict.h"
#include "melforge/runtime.h"
#include "progress.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: melforge predict CHECKPOINT.h5 AUDIO... [--top K] [--json]\n"
          "\n"
          "classifies audio files (any format libsndfile reads: wav, au, flac, ogg, mp3, ...)\n"
          "with a checkpoint: each file is resampled to the checkpoint's rate, cut into\n"
          "consecutive segments of the trained length over its whole duration, turned into\n"
          "features exactly as the training data was, scaled, and classified; the segment\n"
          "probabilities are averaged per file\n"
          "\n"
          "  --top K   genres to show per file, most probable first (default 3)\n"
          "  --json    print an array of {file, segments, top: [{class, probability}],\n"
          "            probabilities: {class: p}} instead\n"
          "\n"
          "a file that cannot be read or is shorter than one segment is reported and skipped;\n"
          "the exit code is then 1\n");
}

static json_t *file_json(const char *file, int64_t segments, const float *p, const int *top, int k,
                         char *const *classes, int C) {
  json_t *o = json_object();
  json_object_set_new(o, "file", json_string(file));
  json_object_set_new(o, "segments", json_integer(segments));
  json_t *t = json_array();
  for (int i = 0; i < k; i++) {
    json_t *e = json_object();
    json_object_set_new(e, "class", json_string(classes[top[i]]));
    json_object_set_new(e, "probability", json_real(p[top[i]]));
    json_array_append_new(t, e);
  }
  json_object_set_new(o, "top", t);
  json_t *all = json_object();
  for (int j = 0; j < C; j++) json_object_set_new(all, classes[j], json_real(p[j]));
  json_object_set_new(o, "probabilities", all);
  return o;
}

int cmd_predict(int argc, char **argv) {
  cli_common common;
  int rc = cli_common_options(&argc, argv, &common);
  if (rc) return rc;
  const char *ckpt = NULL;
  const char **files = calloc((size_t)argc + 1, sizeof *files);
  int n_files = 0, json = 0, top_k = 3;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      free(files);
      return MF_EXIT_OK;
    }
    if (!strcmp(a, "--json")) {
      json = 1;
    } else if (!strncmp(a, "--top", 5) && (a[5] == '\0' || a[5] == '=')) {
      const char *v = a[5] == '=' ? a + 6 : i + 1 < argc ? argv[++i] : NULL;
      char *end = NULL;
      long k = v ? strtol(v, &end, 10) : 0;
      if (!v || end == v || *end || k < 1 || k > 1000) {
        cli_error("predict", "--top expects a whole number from 1 to 1000, got '%s'", v ? v : "");
        free(files);
        return MF_EXIT_USAGE;
      }
      top_k = (int)k;
    } else if (!strcmp(a, "--")) {
      /* Everything after is a file, even names starting with '-'. */
      for (i++; i < argc; i++) {
        if (!ckpt)
          ckpt = argv[i];
        else
          files[n_files++] = argv[i];
      }
    } else if (a[0] == '-' && a[1]) {
      static const char *const opts[] = {"--top", "--json", "--help", "--threads", "--plugin-path"};
      const char *hint = mf_closest_name(a, opts, 5);
      cli_error("predict", "unknown option '%s'%s%s%s; 'melforge predict --help' lists the options",
                a, hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
      free(files);
      return MF_EXIT_USAGE;
    } else if (!ckpt) {
      ckpt = a;
    } else {
      files[n_files++] = a;
    }
  }
  if (!ckpt || n_files == 0) {
    if (ckpt) cli_error("predict", "no audio files given after the checkpoint %s", ckpt);
    usage(stderr);
    free(files);
    return MF_EXIT_USAGE;
  }
  cli_load_plugins(&common);

  mf_classifier *c;
  if (mf_classifier_load(ckpt, &c) != MF_OK) {
    cli_error("predict", "%s", mf_error());
    free(files);
    return MF_EXIT_FAIL;
  }
  if (mf_classifier_audio_ready(c) != MF_OK) {
    cli_error("predict", "cannot predict from audio: %s", mf_error());
    mf_classifier_free(c);
    free(files);
    return MF_EXIT_FAIL;
  }
  const int C = mf_classifier_n_classes(c);
  char *const *classes = mf_classifier_classes(c);
  const int k = top_k < C ? top_k : C;
  float *p = malloc(sizeof(float) * (size_t)C);
  int *top = malloc(sizeof(int) * (size_t)C);
  json_t *out = json ? json_array() : NULL;
  int failed = 0;

  /* Files are prepared (read, resampled, features) in parallel a chunk at a time, which is
   * where the time goes, and classified in argument order: output and memory do not depend on
   * the thread count. */
  const int chunk = 4 * mf_num_threads();
  mf_file_rows *prep = calloc((size_t)chunk, sizeof *prep);
  cli_progress bar;
  cli_progress_start(&bar, "predict", "files", n_files);
  const int show_bar = bar.tty && n_files > 1;
  for (int f0 = 0; f0 < n_files; f0 += chunk) {
    const int m = n_files - f0 < chunk ? n_files - f0 : chunk;
    mf_classifier_prepare_files(c, files + f0, m, prep);
    for (int i = 0; i < m; i++) {
      const char *file = files[f0 + i];
      mf_file_rows *r = &prep[i];
      if (!r->error && mf_classifier_average(c, r->rows, r->n_rows, NULL, p) != MF_OK)
        r->error = strdup(mf_error());
      if (show_bar) fputs("\r\033[K", stderr);
      if (r->error) {
        cli_error("predict", "%s (skipped)", r->error);
        failed++;
      } else {
        mf_top_k(p, C, k, top);
        if (json) {
          json_array_append_new(out, file_json(file, r->n_rows, p, top, k, classes, C));
        } else {
          printf("%s:", file);
          for (int j = 0; j < k; j++)
            printf("%s %s %.2f", j ? "," : "", classes[top[j]], p[top[j]]);
          printf("   (%lld segment%s)\n", (long long)r->n_rows, r->n_rows == 1 ? "" : "s");
          fflush(stdout);
        }
      }
      mf_file_rows_clear(r);
      if (show_bar) cli_progress_update(&bar, f0 + i + 1, NULL);
    }
  }
  if (show_bar) cli_progress_finish(&bar);
  if (json) {
    char *txt = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    printf("%s\n", txt ? txt : "[]");
    free(txt);
    json_decref(out);
  }
  if (failed)
    cli_error("predict", "%d of %d file%s could not be classified (reasons above)", failed, n_files,
              n_files == 1 ? "" : "s");
  free(prep);
  free(p);
  free(top);
  free(files);
  mf_classifier_free(c);
  return failed ? MF_EXIT_FAIL : MF_EXIT_OK;
}
