/* cmd_plugins.c — `melforge plugins [show NAME]`: what the plugin path provides. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "melforge/component.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: melforge plugins [--plugin-path P]           list components by kind\n"
          "       melforge plugins show NAME [--plugin-path P] describe one and its parameters\n"
          "\nsearch path: --plugin-path, MELFORGE_PLUGIN_PATH, the build tree, the install prefix\n");
}

static int by_name(const void *a, const void *b) {
  return strcmp(mf_component_name(*(const mf_component *const *)a),
                mf_component_name(*(const mf_component *const *)b));
}

static int show(const char *name) {
  const mf_component *found[3];
  int n = 0;
  for (int i = 0; i < mf_component_count(); i++)
    if (!strcmp(mf_component_name(mf_component_at(i)), name)) found[n++] = mf_component_at(i);
  if (n == 0) {
    /* Ask each kind, so the message carries a "did you mean" from the closest kind. */
    const mf_component *c = mf_component_find(MF_KIND_MODEL, name);
    (void)c;
    cli_error("plugins", "%s", mf_error());
    return MF_EXIT_FAIL;
  }
  for (int k = 0; k < n; k++) {
    const mf_component *c = found[k];
    printf("%s %s: %s\n  from %s\n", mf_kind_name(mf_component_kind(c)), mf_component_name(c),
           mf_component_description(c), mf_component_file(c));
    const mf_param_spec *p = mf_component_params(c);
    if (!p || !p->name) {
      printf("  no parameters\n");
      continue;
    }
    printf("  parameters:\n");
    int w = 4;
    for (const mf_param_spec *s = p; s->name; s++)
      if ((int)strlen(s->name) > w) w = (int)strlen(s->name);
    for (const mf_param_spec *s = p; s->name; s++) {
      char want[256];
      mf_param_describe(s, want, sizeof want);
      printf("    %-*s  default %-14s %s\n    %*s  accepts %s\n", w, s->name, s->def,
             s->doc ? s->doc : "", w, "", want);
    }
  }
  return MF_EXIT_OK;
}

int cmd_plugins(int argc, char **argv) {
  cli_common common;
  int rc = cli_common_options(&argc, argv, &common);
  if (rc) return rc;
  if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    usage(stdout);
    return MF_EXIT_OK;
  }
  int failures = cli_load_plugins(&common);
  if (argc >= 2 && !strcmp(argv[1], "show")) {
    if (argc != 3) {
      usage(stderr);
      return MF_EXIT_USAGE;
    }
    return show(argv[2]);
  }
  if (argc != 1) {
    usage(stderr);
    return MF_EXIT_USAGE;
  }
  static const mf_kind kinds[] = {MF_KIND_MODEL, MF_KIND_FEATURE, MF_KIND_AUGMENT};
  int n = mf_component_count(), total = 0;
  const mf_component **sorted = malloc(sizeof *sorted * (size_t)(n ? n : 1));
  for (int i = 0; i < n; i++) sorted[i] = mf_component_at(i);
  qsort(sorted, (size_t)n, sizeof *sorted, by_name);
  for (int k = 0; k < 3; k++) {
    printf("%ss:\n", mf_kind_name(kinds[k]));
    int shown = 0;
    for (int i = 0; i < n; i++) {
      const mf_component *c = sorted[i];
      if (mf_component_kind(c) != kinds[k]) continue;
      printf("  %-18s %s\n", mf_component_name(c), mf_component_description(c));
      shown++;
    }
    if (!shown) printf("  (none)\n");
    total += shown;
  }
  free(sorted);
  if (!total)
    fprintf(stderr, "melforge plugins: no plugins found on %s\n", mf_plugins_search_path(common.plugin_path));
  return failures ? MF_EXIT_FAIL : MF_EXIT_OK;
}
