/* cmd_import.c — `melforge import json|npy SOURCE OUT.h5`: the notebooks' feature files
 * (the MFCC notebook's data.json, folders of .npy spectrograms) as melforge datasets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dataset_import.h"
#include "melforge/component.h"
#include "progress.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: melforge import json DATA.json OUT.h5 [--sample-rate HZ]\n"
          "       melforge import npy DIR OUT.h5 [--sample-rate HZ]\n"
          "\n"
          "json  the MFCC notebook's data.json ({\"mapping\": [genres], \"labels\": [...],\n"
          "      \"mfcc\": [segments x frames x n_mfcc]}): one row [frames, n_mfcc] per segment\n"
          "npy   DIR/<genre>/*.npy, one array (e.g. a mel spectrogram) per file: one row and one\n"
          "      track per file; float32 or float64, C or Fortran order, all the same shape\n"
          "\n"
          "--sample-rate HZ  the rate the features were computed at (default: \"sr\" in the JSON,\n"
          "                  else 22050)\n"
          "\nOUT.h5 is written atomically: a failed import leaves an existing file untouched.\n");
}

typedef struct progress_state {
  cli_progress bar;
  char stage[256];
  double stage_t0;
  int shown; /* the bar for this stage has started */
} progress_state;

/* Stages that finish within a second (small imports) print nothing; longer ones get the
 * shared progress bar, started late but timed from the stage's beginning. */
static void on_progress(const char *stage, const char *unit, int64_t done, int64_t total,
                        void *user) {
  progress_state *ps = user;
  if (strcmp(ps->stage, stage)) {
    if (ps->shown) cli_progress_finish(&ps->bar);
    snprintf(ps->stage, sizeof ps->stage, "%s", stage);
    ps->stage_t0 = cli_now();
    ps->shown = 0;
  }
  if (!ps->shown && cli_now() - ps->stage_t0 < 1.0) return;
  /* Bytes are shown in MB so a multi-gigabyte JSON fits the bar's int counters. */
  int bytes = !strcmp(unit, "bytes");
  int d = (int)(bytes ? done >> 20 : done), t = (int)(bytes ? total >> 20 : total);
  if (!ps->shown) {
    cli_progress_start(&ps->bar, ps->stage, bytes ? "MB" : unit, t);
    ps->bar.t0 = ps->stage_t0;
    ps->shown = 1;
  }
  cli_progress_update(&ps->bar, d, NULL);
}

int cmd_import(int argc, char **argv) {
  cli_common common;
  int rc = cli_common_options(&argc, argv, &common);
  if (rc) return rc;
  const char *pos[3];
  int npos = 0;
  double rate = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return MF_EXIT_OK;
    }
    if (!strncmp(a, "--sample-rate", 13) && (a[13] == '\0' || a[13] == '=')) {
      const char *v = a[13] == '=' ? a + 14 : i + 1 < argc ? argv[++i] : NULL;
      char *end = NULL;
      rate = v ? strtod(v, &end) : 0;
      if (!v || *end || !(rate > 0 && rate < 1e7)) {
        cli_error("import", "--sample-rate expects a rate in Hz such as 22050, got '%s'",
                  v ? v : "");
        return MF_EXIT_USAGE;
      }
      continue;
    }
    if (a[0] == '-' && a[1]) {
      cli_error("import", "unknown option '%s' (melforge import --help lists them)", a);
      return MF_EXIT_USAGE;
    }
    if (npos == 3) {
      cli_error("import", "too many arguments: '%s'", a);
      usage(stderr);
      return MF_EXIT_USAGE;
    }
    pos[npos++] = a;
  }
  if (npos != 3) {
    usage(stderr);
    return MF_EXIT_USAGE;
  }
  static const char *const formats[] = {"json", "npy"};
  const char *fmt = pos[0], *src = pos[1], *out = pos[2];
  int is_json = !strcmp(fmt, "json"), is_npy = !strcmp(fmt, "npy");
  if (!is_json && !is_npy) {
    const char *hint = mf_closest_name(fmt, formats, 2);
    cli_error("import", "unknown format '%s'%s%s%s; the formats are json and npy", fmt,
              hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
    return MF_EXIT_USAGE;
  }

  progress_state ps = {.shown = 0};
  mf_import_options opt = {.sample_rate = rate, .progress = on_progress, .user = &ps};
  mf_import_summary sum;
  mf_status st =
      is_json ? mf_import_json(src, out, &opt, &sum) : mf_import_npy(src, out, &opt, &sum);
  if (ps.shown) cli_progress_finish(&ps.bar);
  if (st) {
    cli_error("import", "%s", mf_error());
    return MF_EXIT_FAIL;
  }
  char shape[96];
  mf_shape_str(sum.sample_shape, shape, sizeof shape);
  printf("imported %lld %s of shape %s in %d classes (%d tracks) from %s into %s\n",
         (long long)sum.rows, is_json ? "segments" : "arrays", shape, sum.classes, sum.tracks, src,
         out);
  if (!sum.grouped_by_track)
    printf(
        "note: %s has no track ids, so every segment is its own track: splits cannot be "
        "grouped by track for this data (segments of one song can land in both train and "
        "test, which inflates test accuracy)\n",
        src);
  if (sum.ignored)
    printf("note: ignored %d file%s in the class folders that %s not .npy\n", sum.ignored,
           sum.ignored == 1 ? "" : "s", sum.ignored == 1 ? "is" : "are");
  return MF_EXIT_OK;
}
