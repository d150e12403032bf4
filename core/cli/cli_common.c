/* cli_common.c — helpers shared by the subcommands. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "melforge/component.h"
#include "melforge/runtime.h"

void cli_error(const char *cmd, const char *fmt, ...) {
  fflush(stdout);
  fprintf(stderr, "melforge %s: ", cmd);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

int cli_common_options(int *argc, char **argv, cli_common *out) {
  memset(out, 0, sizeof *out);
  int w = 0;
  for (int i = 0; i < *argc; i++) {
    const char *a = argv[i];
    const char *val = NULL;
    int is_path = !strncmp(a, "--plugin-path", 13), is_thr = !strncmp(a, "--threads", 9);
    if (is_path || is_thr) {
      const char *eq = strchr(a, '=');
      if (eq)
        val = eq + 1;
      else if (i + 1 < *argc)
        val = argv[++i];
      else {
        fprintf(stderr, "melforge: %s needs a value\n", a);
        return MF_EXIT_USAGE;
      }
      if (is_path) {
        out->plugin_path = val;
      } else {
        char *end;
        long n = strtol(val, &end, 10);
        if (*end || n < 1 || n > 1024) {
          fprintf(stderr, "melforge: --threads expects a positive integer, got '%s'\n", val);
          return MF_EXIT_USAGE;
        }
        out->threads = (int)n;
      }
      continue;
    }
    argv[w++] = argv[i];
  }
  *argc = w;
  argv[w] = NULL;
  if (out->threads)
    mf_set_num_threads(out->threads);
  else
    mf_runtime_init();
  return 0;
}

static void warn_plugin(const char *file, const char *message, void *user) {
  (void)user;
  (void)file;
  fprintf(stderr, "melforge: warning: skipped plugin: %s\n", message);
}

int cli_load_plugins(const cli_common *c) {
  return mf_plugins_load_search_path(c->plugin_path, warn_plugin, NULL);
}
