/* mftest_main.c — runs the registered tests of one suite. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mftest.h"

#define MAX_TESTS 512

static struct {
  const char *name;
  mftest_fn fn;
} g_tests[MAX_TESTS];
static int g_n;
static int g_failed_checks;

void mftest_register(const char *name, mftest_fn fn) {
  if (g_n < MAX_TESTS) g_tests[g_n++] = (typeof(g_tests[0])){name, fn};
}

void mftest_fail(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "    %s:%d: ", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  g_failed_checks++;
}

const char *mftest_data_dir(void) {
  const char *d = getenv("MFTEST_DATA_DIR");
#ifdef MFTEST_DATA_DIR_DEFAULT
  if (!d) d = MFTEST_DATA_DIR_DEFAULT;
#endif
  return d ? d : "tests/data";
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const typeof(g_tests[0]) *)a)->name, ((const typeof(g_tests[0]) *)b)->name);
}

int main(int argc, char **argv) {
  const char *filter = argc > 1 ? argv[1] : NULL;
  /* Constructors run in link order; sort so the output reads the same everywhere. */
  qsort(g_tests, (size_t)g_n, sizeof g_tests[0], by_name);
  int run = 0, failed = 0;
  for (int i = 0; i < g_n; i++) {
    if (filter && !strstr(g_tests[i].name, filter)) continue;
    int before = g_failed_checks;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    g_tests[i].fn();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    int ok = g_failed_checks == before;
    printf("%s %s (%.0f ms)\n", ok ? "PASS" : "FAIL", g_tests[i].name, ms);
    fflush(stdout);
    run++;
    failed += !ok;
  }
  printf("%d tests, %d failed\n", run, failed);
  if (run == 0 && filter) {
    fprintf(stderr, "no test name contains '%s'\n", filter);
    return 2;
  }
  return failed ? 1 : 0;
}
