/* cmd_extract.c — `melforge extract`: a folder of audio (one sub-folder per class) into an
 * HDF5 feature dataset. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "melforge/component.h"
#include "melforge/extract.h"
#include "progress.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: melforge extract --audio DIR --feature NAME --out FILE.h5 [options]\n"
          "\n"
          "  --audio DIR            one sub-folder of audio files per class (classes = sorted\n"
          "                         folder names); any format libsndfile reads\n"
          "  --feature NAME         feature plugin (melforge plugins lists them: melspec, mfcc)\n"
          "  --set key=value        a feature parameter (repeatable; melforge plugins show NAME)\n"
          "  --out FILE.h5          the dataset (written atomically)\n"
          "  --rate HZ              resample to this rate first (default 22050)\n"
          "  --segments N           N equal segments per track (default 10)\n"
          "  --track-seconds S      nominal track length the segments divide (default 30; 0 =\n"
          "                         each file's own length)\n"
          "  --window S --hop S     fixed windows of S seconds every hop seconds instead\n"
          "  --pad min|zero|drop    segments running past the track's end: pad with the\n"
          "                         feature's minimum (default), with zeros, or drop them\n"
          "  --scope segment|track  compute features per segment (default, like the notebooks)\n"
          "                         or once per track and cut (one dB reference per track)\n"
          "  --strict               a file that cannot be used is fatal instead of skipped\n");
}

typedef struct state {
  cli_progress bar;
  int warned;
} state;

static void on_progress(const mf_extract_progress *p, void *user) {
  state *s = user;
  s->bar.total = p->total; /* known once the folder has been scanned */
  char extra[96];
  snprintf(extra, sizeof extra, "%lld segments%s", (long long)p->rows, p->skipped ? ", some skipped" : "");
  cli_progress_update(&s->bar, p->done, extra);
}

static void on_warn(const char *file, const char *reason, void *user) {
  state *s = user;
  if (s->bar.tty) fputc('\n', stderr);
  fprintf(stderr, "melforge extract: warning: skipped %s: %s\n", file, reason);
  s->warned++;
}

static int need_value(int i, int argc, char **argv) {
  if (i + 1 >= argc) {
    cli_error("extract", "%s needs a value (melforge extract --help)", argv[i]);
    return 0;
  }
  return 1;
}

int cmd_extract(int argc, char **argv) {
  cli_common common;
  int rc = cli_common_options(&argc, argv, &common);
  if (rc) return rc;
  const char *audio = NULL, *feature = NULL, *out = NULL;
  const char *sets[256];
  int nsets = 0, strict = 0;
  double rate = 22050;
  mf_segmenting seg = mf_segmenting_defaults();
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return MF_EXIT_OK;
    }
    if (!strcmp(a, "--strict")) {
      strict = 1;
      continue;
    }
    static const char *const seg_opts[][2] = {{"--segments", "segments"},
                                              {"--track-seconds", "track_seconds"},
                                              {"--window", "window_seconds"},
                                              {"--hop", "hop_seconds"},
                                              {"--pad", "pad"},
                                              {"--scope", "scope"}};
    int handled = 0;
    for (size_t k = 0; k < sizeof seg_opts / sizeof seg_opts[0]; k++)
      if (!strcmp(a, seg_opts[k][0])) {
        if (!need_value(i, argc, argv)) return MF_EXIT_USAGE;
        if (mf_segmenting_set(&seg, seg_opts[k][1], argv[++i]) != MF_OK) {
          cli_error("extract", "%s: %s", a, mf_error());
          return MF_EXIT_USAGE;
        }
        if (!strcmp(a, "--segments")) seg.mode = MF_SEG_EQUAL;
        handled = 1;
      }
    if (handled) continue;
    if (!strcmp(a, "--audio") || !strcmp(a, "--feature") || !strcmp(a, "--out") ||
        !strcmp(a, "--set") || !strcmp(a, "--rate")) {
      if (!need_value(i, argc, argv)) return MF_EXIT_USAGE;
      const char *v = argv[++i];
      if (!strcmp(a, "--audio")) audio = v;
      else if (!strcmp(a, "--feature")) feature = v;
      else if (!strcmp(a, "--out")) out = v;
      else if (!strcmp(a, "--set")) {
        if (nsets == 256) {
          cli_error("extract", "too many --set options (at most 256)");
          return MF_EXIT_USAGE;
        }
        sets[nsets++] = v;
      } else {
        char *end;
        rate = strtod(v, &end);
        if (*end || !(rate >= 1000 && rate <= 384000)) {
          cli_error("extract", "--rate expects a sample rate in [1000, 384000] Hz, got '%s'", v);
          return MF_EXIT_USAGE;
        }
      }
      continue;
    }
    cli_error("extract", "unknown option '%s' (melforge extract --help)", a);
    return MF_EXIT_USAGE;
  }
  if (!audio || !feature || !out) {
    cli_error("extract", "--audio, --feature and --out are required (melforge extract --help)");
    return MF_EXIT_USAGE;
  }
  if (mf_segmenting_check(&seg) != MF_OK) {
    cli_error("extract", "%s", mf_error());
    return MF_EXIT_USAGE;
  }
  cli_load_plugins(&common);
  const mf_component *c = mf_component_find(MF_KIND_FEATURE, feature);
  if (!c) {
    cli_error("extract", "%s", mf_error());
    return MF_EXIT_USAGE;
  }
  mf_values *v;
  if (mf_component_values(c, &v) != MF_OK) {
    cli_error("extract", "%s", mf_error());
    return MF_EXIT_FAIL;
  }
  for (int i = 0; i < nsets; i++)
    if (mf_values_set_assignment(v, sets[i]) != MF_OK) {
      cli_error("extract", "--set %s: %s", sets[i], mf_error());
      mf_values_free(v);
      return MF_EXIT_USAGE;
    }

  state st = {0};
  cli_progress_start(&st.bar, "extract", "tracks", 0);
  mf_extract_config cfg = {audio, c, v, rate, seg, strict, out, on_progress, on_warn, &st};
  mf_extract_summary sum;
  mf_status s = mf_extract_dataset(&cfg, &sum);
  cli_progress_finish(&st.bar);
  mf_values_free(v);
  if (s != MF_OK) {
    cli_error("extract", "%s", mf_error());
    return MF_EXIT_FAIL;
  }
  printf("extracted %lld segments from %d tracks (%d classes) into %s in %.1f s (%.1f tracks/s)\n",
         (long long)sum.rows, sum.tracks, sum.classes, out, sum.seconds,
         sum.seconds > 0 ? (sum.tracks + sum.skipped) / sum.seconds : 0.0);
  if (sum.skipped)
    printf("skipped %d file%s that could not be used (warnings above)\n", sum.skipped,
           sum.skipped == 1 ? "" : "s");
  return MF_EXIT_OK;
}
