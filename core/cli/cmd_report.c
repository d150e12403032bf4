/* cmd_report.c — `melforge report RUN_DIR... [--out FILE.html]`: the HTML report of one run,
 * or the comparison of every run found below the given folders (melforge/report.h), with
 * the comparison table printed as text too. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "melforge/report.h"
#include "progress.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: melforge report RUN_DIR... [--out FILE.html]\n"
          "\n"
          "writes a self-contained HTML report (plots embedded, no network needed). A RUN_DIR\n"
          "is a run folder (runs/<experiment>/<seed>) or any folder above run folders (runs,\n"
          "runs/<experiment>): every folder below it with a summary.json is a run.\n"
          "\n"
          "one run: its report.html (summary, metrics, classification report, training\n"
          "  curves, confusion matrix, configuration) in the run folder, with curves.png and\n"
          "  confusion.png; melforge run writes the same at the end of every run\n"
          "several runs: a comparison with one row per (experiment, model): mean +- sample\n"
          "  std over its runs (seeds) of test accuracy, track accuracy, macro F1, parameters\n"
          "  and training time; the validation curves of every run; and paired tests between\n"
          "  models run with the same seed on the same test rows (McNemar's test, bootstrap\n"
          "  95%% interval of the accuracy difference). Written to report.html in the runs'\n"
          "  common folder; the tables are printed too. Runs without a report.html get one.\n"
          "\n"
          "  --out FILE.html  where to write the report instead\n");
}

typedef struct run_list {
  char **dir;  /* as found */
  char **real; /* resolved, to drop duplicates and find the common folder */
  int n, cap;
} run_list;

static void run_list_free(run_list *l) {
  for (int i = 0; i < l->n; i++) free(l->dir[i]), free(l->real[i]);
  free(l->dir);
  free(l->real);
}

/* Adds the runs below root; 0 or an exit code. */
static int collect(const char *root, run_list *l) {
  char **dirs;
  int n;
  if (mf_report_find_runs(root, &dirs, &n) != MF_OK) {
    cli_error("report", "%s", mf_error());
    return MF_EXIT_FAIL;
  }
  int rc = 0;
  for (int i = 0; i < n; i++) {
    char *real = realpath(dirs[i], NULL);
    if (!real) {
      cli_error("report", "cannot resolve %s: %s", dirs[i], strerror(errno));
      rc = MF_EXIT_FAIL;
      break;
    }
    int dup = 0;
    for (int k = 0; k < l->n && !dup; k++) dup = !strcmp(l->real[k], real);
    if (dup) {
      free(real);
      continue;
    }
    if (l->n == l->cap) {
      l->cap = l->cap ? 2 * l->cap : 16;
      char **d = realloc(l->dir, sizeof(char *) * (size_t)l->cap);
      if (d) l->dir = d;
      char **r = realloc(l->real, sizeof(char *) * (size_t)l->cap);
      if (r) l->real = r;
      if (!d || !r) {
        free(real);
        cli_error("report", "out of memory");
        rc = MF_EXIT_FAIL;
        break;
      }
    }
    l->dir[l->n] = dirs[i];
    l->real[l->n++] = real;
    dirs[i] = NULL;
  }
  mf_report_free_dirs(dirs, n);
  return rc;
}

/* The deepest folder holding every run (malloc'd), shown relative to the current folder
 * when below it. */
static char *common_folder(const run_list *l) {
  size_t len = strlen(l->real[0]);
  for (int i = 1; i < l->n; i++) {
    size_t k = 0;
    while (k < len && l->real[i][k] == l->real[0][k]) k++;
    /* Shared text is a shared folder only when it ends at a '/' (or the end) in both. */
    const char a = k < len ? l->real[0][k] : '\0', b = l->real[i][k];
    if (!((a == '/' || !a) && (b == '/' || !b))) {
      while (k > 0 && l->real[0][k - 1] != '/') k--;
      if (k > 1) k--; /* the '/' itself, except the root's */
    }
    len = k;
  }
  char *dir = len ? strndup(l->real[0], len) : strdup("/");
  char cwd[4096];
  if (dir && getcwd(cwd, sizeof cwd)) {
    size_t c = strlen(cwd);
    if (!strcmp(dir, cwd)) {
      free(dir);
      return strdup(".");
    }
    if (!strncmp(dir, cwd, c) && dir[c] == '/') {
      char *rel = strdup(dir + c + 1);
      free(dir);
      return rel;
    }
  }
  return dir;
}

int cmd_report(int argc, char **argv) {
  cli_common common;
  int rc = cli_common_options(&argc, argv, &common);
  if (rc) return rc;
  const char *out = NULL;
  char **roots = calloc((size_t)argc + 1, sizeof *roots);
  int n_roots = 0;
  if (!roots) {
    cli_error("report", "out of memory");
    return MF_EXIT_FAIL;
  }
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      free(roots);
      return MF_EXIT_OK;
    }
    if (!strcmp(a, "--out") || !strncmp(a, "--out=", 6)) {
      out = a[5] == '=' ? a + 6 : i + 1 < argc ? argv[++i] : NULL;
      if (!out || !*out) {
        cli_error("report", "--out needs a file name (--out report.html)");
        free(roots);
        return MF_EXIT_USAGE;
      }
      continue;
    }
    if (a[0] == '-' && a[1]) {
      cli_error("report", "unknown option '%s'; 'melforge report --help' lists the options", a);
      free(roots);
      return MF_EXIT_USAGE;
    }
    struct stat st;
    if (stat(a, &st) != 0 || !S_ISDIR(st.st_mode)) {
      cli_error("report",
                "%s is not a folder; give run folders (runs/<experiment>/<seed>) or "
                "folders above them (runs)",
                a);
      free(roots);
      return MF_EXIT_USAGE;
    }
    roots[n_roots++] = argv[i];
  }
  if (n_roots == 0) {
    usage(stderr);
    free(roots);
    return MF_EXIT_USAGE;
  }

  run_list runs = {0};
  for (int i = 0; i < n_roots && !rc; i++) rc = collect(roots[i], &runs);
  if (!rc && runs.n == 0) {
    cli_error("report",
              "no finished runs below %s%s: a run folder holds the summary.json that "
              "'melforge run' writes when a run ends",
              roots[0], n_roots > 1 ? " and the other folders" : "");
    rc = MF_EXIT_FAIL;
  }
  free(roots);
  if (rc) {
    run_list_free(&runs);
    return rc;
  }

  if (runs.n == 1) {
    char *page = NULL;
    if (!out && asprintf(&page, "%s/report.html", runs.dir[0]) < 0) page = NULL;
    if (mf_report_run(runs.dir[0], out ? out : page) != MF_OK) {
      cli_error("report", "%s", mf_error());
      rc = MF_EXIT_FAIL;
    } else {
      printf("wrote %s\n", out ? out : page);
    }
    free(page);
    run_list_free(&runs);
    return rc;
  }

  /* Runs from before reports existed get theirs, so the comparison can link to them. */
  int missing = 0, written = 0;
  char *has = calloc((size_t)runs.n, 1);
  for (int i = 0; has && i < runs.n; i++) {
    char *page = NULL;
    has[i] = asprintf(&page, "%s/report.html", runs.dir[i]) < 0 || access(page, F_OK) == 0;
    missing += !has[i];
    free(page);
  }
  if (missing) {
    cli_progress bar;
    cli_progress_start(&bar, "run reports", "runs", missing);
    for (int i = 0; i < runs.n; i++) {
      if (has[i]) continue;
      if (mf_report_run(runs.dir[i], NULL) != MF_OK)
        fprintf(stderr, "melforge report: warning: no report for %s: %s\n", runs.dir[i],
                mf_error());
      else
        written++;
      cli_progress_update(&bar, written, NULL);
    }
    cli_progress_finish(&bar);
    if (written) printf("wrote report.html in %d run folder%s\n", written, written == 1 ? "" : "s");
  }
  free(has);

  mf_comparison cmp;
  if (mf_comparison_load(runs.dir, runs.n, &cmp) != MF_OK) {
    cli_error("report", "%s", mf_error());
    run_list_free(&runs);
    return MF_EXIT_FAIL;
  }
  char *text = mf_comparison_text(&cmp);
  if (text) fputs(text, stdout);
  free(text);
  char *folder = out ? NULL : common_folder(&runs);
  char *page = NULL;
  if (!out && folder && !strcmp(folder, "."))
    page = strdup("report.html");
  else if (!out && folder && asprintf(&page, "%s/report.html", folder) < 0)
    page = NULL;
  const char *target = out ? out : page;
  if (!target) {
    cli_error("report", "out of memory");
    rc = MF_EXIT_FAIL;
  } else if (mf_comparison_write_html(&cmp, target) != MF_OK) {
    cli_error("report", "%s", mf_error());
    rc = MF_EXIT_FAIL;
  } else {
    printf("\nwrote %s\n", target);
  }
  free(page);
  free(folder);
  mf_comparison_free(&cmp);
  run_list_free(&runs);
  return rc;
}
