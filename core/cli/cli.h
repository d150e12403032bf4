/* cli.h — what the subcommands of the melforge command share: option parsing helpers,
 * plugin loading with warnings, exit codes (0 success, 1 runtime failure, 2 usage error). */
#ifndef MF_CLI_H
#define MF_CLI_H

#include <stdio.h>

#define MF_EXIT_OK 0
#define MF_EXIT_FAIL 1
#define MF_EXIT_USAGE 2

/* Options every subcommand accepts, removed from argv by cli_common_options. */
typedef struct cli_common {
  const char *plugin_path; /* --plugin-path P */
  int threads;             /* --threads N (0: MELFORGE_THREADS or all cores) */
} cli_common;

/* Strips --plugin-path/--threads from argv (in place, argc updated); applies the threads.
 * Returns 0, or MF_EXIT_USAGE after printing a message. */
int cli_common_options(int *argc, char **argv, cli_common *out);

/* Loads plugins from the search path, printing a warning per file that failed. Returns the
 * number of failures. */
int cli_load_plugins(const cli_common *c);

/* "melforge <cmd>: " + message on stderr. */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int cmd_plugins(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_extract(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
