/* main.c — the `melforge` command: dispatches to one file per subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "melforge/melforge.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: melforge <command> [options]\n"
          "\n"
          "commands available in this build:\n"
          "  plugins          list the model, feature and augment plugins; 'plugins show NAME'\n"
          "  version          print the version, thread count and BLAS kernels\n"
          "  help             this text\n"
          "\n"
          "planned (see the issues): synth, extract, info, import, run, eval, predict, report,\n"
          "bench.\n"
          "\n"
          "environment: MELFORGE_THREADS sets the threads used by OpenBLAS and melforge.\n");
}

static int cmd_version(void) {
  mf_runtime_init();
  printf("melforge %s\nthreads %d\nblas %s (%s)\n", mf_version(), mf_num_threads(),
         mf_blas_corename(), mf_blas_config());
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) return cmd_version();
  if (!strcmp(cmd, "plugins")) return cmd_plugins(argc - 1, argv + 1);
  fprintf(stderr, "melforge: unknown command '%s'; run 'melforge --help' for the list\n", cmd);
  return 2;
}
