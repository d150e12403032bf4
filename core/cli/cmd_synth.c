/* cmd_synth.c — `melforge synth --out DIR ...`: writes the built-in demo corpus. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "melforge/component.h"
#include "melforge/synth.h"
#include "progress.h"

static void usage(FILE *f) {
  const mf_synth_config d = mf_synth_defaults();
  fprintf(
      f,
      "usage: melforge synth --out DIR [--genres N] [--tracks N] [--seconds S] [--seed N]\n"
      "                      [--rate HZ]\n"
      "\nWrites procedurally generated music in genre-like classes as 16-bit WAV files,\n"
      "DIR/<genre>/<genre>.00000.wav ... (the GTZAN layout): a demo corpus that needs no\n"
      "download. The same seed writes identical files.\n"
      "\n  --out DIR      folder to write (created if missing; only its own files are replaced)\n"
      "  --genres N     classes, 1 to %d (default %d): ",
      mf_synth_genre_count(), d.genres);
  for (int i = 0; i < mf_synth_genre_count(); i++)
    fprintf(f, "%s%s", i ? ", " : "", mf_synth_genre_name(i));
  fprintf(f,
          "\n  --tracks N     tracks per class, 1 to 100000 (default %d)\n"
          "  --seconds S    length of each track, 0 < S <= 600 (default %g)\n"
          "  --seed N       random seed, 0 to 2^64 - 1 (default %" PRIu64
          ")\n"
          "  --rate HZ      sample rate, a whole number from 8000 to 192000 (default %g)\n",
          d.tracks, d.seconds, d.seed, d.sample_rate);
}

static const char *const OPTIONS[] = {"--out",     "--genres", "--tracks",
                                      "--seconds", "--seed",   "--rate"};
#define N_OPTIONS (int)(sizeof OPTIONS / sizeof OPTIONS[0])

static int parse_int(const char *opt, const char *v, long lo, long hi, int *out) {
  char *end;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (!*v || *end || errno || x < lo || x > hi) {
    cli_error("synth", "%s expects a whole number from %ld to %ld, got '%s'", opt, lo, hi, v);
    return MF_EXIT_USAGE;
  }
  *out = (int)x;
  return 0;
}

static int parse_real(const char *opt, const char *v, double lo_excl, double hi, double *out) {
  char *end;
  errno = 0;
  double x = strtod(v, &end);
  if (!*v || *end || errno || !isfinite(x) || !(x > lo_excl && x <= hi)) {
    cli_error("synth", "%s expects a number above %g and at most %g, got '%s'", opt, lo_excl, hi,
              v);
    return MF_EXIT_USAGE;
  }
  *out = x;
  return 0;
}

typedef struct progress_state {
  cli_progress bar;
} progress_state;

static void on_progress(int done, int total, void *user) {
  (void)total;
  cli_progress_update(&((progress_state *)user)->bar, done, NULL);
}

int cmd_synth(int argc, char **argv) {
  cli_common common;
  int rc = cli_common_options(&argc, argv, &common);
  if (rc) return rc;
  mf_synth_config cfg = mf_synth_defaults();
  const char *out = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return MF_EXIT_OK;
    }
    const char *eq = strchr(a, '=');
    const size_t name_len = eq ? (size_t)(eq - a) : strlen(a);
    int which = -1;
    for (int k = 0; k < N_OPTIONS; k++)
      if (strlen(OPTIONS[k]) == name_len && !strncmp(a, OPTIONS[k], name_len)) which = k;
    if (which < 0) {
      char name[64];
      snprintf(name, sizeof name, "%.*s", (int)(name_len < 63 ? name_len : 63), a);
      const char *hint = mf_closest_name(name, OPTIONS, N_OPTIONS);
      if (hint)
        cli_error("synth", "unknown option '%s'; did you mean '%s'? (melforge synth --help)", name,
                  hint);
      else
        cli_error("synth", "unexpected argument '%s'; 'melforge synth --help' lists the options",
                  a);
      return MF_EXIT_USAGE;
    }
    const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
    if (!v) {
      cli_error("synth", "%s needs a value", OPTIONS[which]);
      return MF_EXIT_USAGE;
    }
    int bad = 0;
    switch (which) {
      case 0:
        if (!*v) {
          cli_error("synth", "--out needs a folder name");
          bad = MF_EXIT_USAGE;
        }
        out = v;
        break;
      case 1:
        bad = parse_int("--genres", v, 1, mf_synth_genre_count(), &cfg.genres);
        break;
      case 2:
        bad = parse_int("--tracks", v, 1, 100000, &cfg.tracks);
        break;
      case 3:
        bad = parse_real("--seconds", v, 0.0, 600.0, &cfg.seconds);
        break;
      case 4: {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 10);
        if (!*v || *end || errno || v[0] == '-') {
          cli_error("synth", "--seed expects a whole number from 0 to 2^64 - 1, got '%s'", v);
          bad = MF_EXIT_USAGE;
        }
        cfg.seed = (uint64_t)s;
        break;
      }
      default: {
        int rate = 0;
        bad = parse_int("--rate", v, 8000, 192000, &rate);
        cfg.sample_rate = rate;
        break;
      }
    }
    if (bad) return bad;
  }
  if (!out) {
    cli_error("synth", "--out DIR is required: the folder to write the corpus into");
    usage(stderr);
    return MF_EXIT_USAGE;
  }
  const int total = cfg.genres * cfg.tracks;
  progress_state ps;
  cli_progress_start(&ps.bar, "synth", "tracks", total);
  const double t0 = cli_now();
  mf_status st = mf_synth_write_corpus(&cfg, out, on_progress, &ps);
  cli_progress_finish(&ps.bar);
  if (st) {
    cli_error("synth", "%s", mf_error());
    return MF_EXIT_FAIL;
  }
  printf("wrote %d tracks (%d genres x %d) to %s in %.1f s\n", total, cfg.genres, cfg.tracks, out,
         cli_now() - t0);
  return MF_EXIT_OK;
}
