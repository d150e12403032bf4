/* main.c — the `melforge` command: one file per subcommand (cmd_*.c), dispatched here. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "melforge/component.h"
#include "melforge/melforge.h"

static int cmd_version(int argc, char **argv);

typedef struct command {
  const char *name;
  int (*run)(int argc, char **argv); /* argv[0] is the command name */
  const char *usage;                 /* "synth --out DIR [...]" */
  const char *summary;
} command;

/* Keep in the order of a typical session; `melforge --help` prints it as is. */
static const command COMMANDS[] = {
    {"synth", cmd_synth, "synth --out DIR [--genres N] [--tracks N] [--seconds S] [--seed N]",
     "write the built-in demo corpus: generated music in genre-like classes"},
    {"extract", cmd_extract,
     "extract --audio DIR --feature NAME [--set key=value ...] [--segments N] --out FILE.h5",
     "audio folder (one sub-folder per class) -> HDF5 feature dataset"},
    {"import", cmd_import, "import json|npy SOURCE OUT.h5",
     "convert the notebooks' MFCC data.json or a folder of .npy arrays into a dataset"},
    {"info", cmd_info, "info FILE.h5", "what a dataset holds: feature, shape, rows, classes"},
    {"run", cmd_run, "run EXPERIMENT.lua [--set key=value ...] [--resume] [--out DIR]",
     "train what a Lua experiment script defines; results go to runs/<name>/<seed>/"},
    {"eval", cmd_eval, "eval CHECKPOINT.h5 [DATASET.h5] [--json] [--top K] [--batch N]",
     "a checkpoint's report and confusion matrix on its run's test split or a dataset"},
    {"predict", cmd_predict, "predict CHECKPOINT.h5 AUDIO... [--top K] [--json]",
     "the genres of audio files, from a checkpoint alone"},
    {"report", cmd_report, "report RUN_DIR... [--out FILE.html]",
     "HTML report of a run, or a comparison of runs with paired significance tests"},
    {"plugins", cmd_plugins, "plugins [show NAME]", "list model, feature and augment plugins"},
    {"bench", cmd_bench, "bench [MODEL...] [--threads N] [--json FILE] [--quick] | bench features",
     "training/inference speed and peak memory of the reference models; feature speed"},
    {"version", cmd_version, "version", "version, thread count and BLAS kernels"},
};
#define N_COMMANDS (int)(sizeof COMMANDS / sizeof COMMANDS[0])

static void usage(FILE *f) {
  fprintf(f, "usage: melforge <command> [options]\n\ncommands:\n");
  for (int i = 0; i < N_COMMANDS; i++)
    fprintf(f, "  melforge %s\n      %s\n", COMMANDS[i].usage, COMMANDS[i].summary);
  fprintf(f,
          "\noptions every command accepts:\n"
          "  --threads N        threads for OpenBLAS and melforge's loops (default: all cores,\n"
          "                     or MELFORGE_THREADS)\n"
          "  --plugin-path P    ':'-separated plugin files or folders searched first (also\n"
          "                     MELFORGE_PLUGIN_PATH)\n"
          "\n'melforge <command> --help' describes one command. Exit codes: 0 success, 1 failure,\n"
          "2 usage error.\n");
}

static int cmd_version(int argc, char **argv) {
  cli_common common;
  int rc = cli_common_options(&argc, argv, &common);
  if (rc) return rc;
  printf("melforge %s\nthreads %d\nblas %s (%s)\n", mf_version(), mf_num_threads(),
         mf_blas_corename(), mf_blas_config());
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return MF_EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
    usage(stdout);
    return MF_EXIT_OK;
  }
  if (!strcmp(cmd, "--version")) cmd = "version";
  const char *names[N_COMMANDS];
  for (int i = 0; i < N_COMMANDS; i++) {
    names[i] = COMMANDS[i].name;
    if (!strcmp(cmd, COMMANDS[i].name)) return COMMANDS[i].run(argc - 1, argv + 1);
  }
  const char *hint = mf_closest_name(cmd, names, N_COMMANDS);
  if (hint)
    fprintf(stderr, "melforge: unknown command '%s'; did you mean '%s'? (melforge --help lists them)\n",
            cmd, hint);
  else
    fprintf(stderr, "melforge: unknown command '%s'; 'melforge --help' lists the commands\n", cmd);
  return MF_EXIT_USAGE;
}
