/* error.c — thread-local error messages and the abort path for programming errors. */
#include "melforge/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char g_msg[2048];

const char *mf_error(void) { return g_msg; }

void mf_clear_error(void) { g_msg[0] = '\0'; }

mf_status mf_set_error(mf_status code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_msg, sizeof g_msg, fmt, ap);
  va_end(ap);
  return code;
}

mf_status mf_wrap_error(mf_status code, const char *fmt, ...) {
  char prev[sizeof g_msg];
  memcpy(prev, g_msg, sizeof prev);
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(g_msg, sizeof g_msg, fmt, ap);
  va_end(ap);
  if (n >= 0 && (size_t)n < sizeof g_msg - 3 && prev[0]) {
    /* Truncating a long chain of context is fine: the message stays NUL-terminated. */
    int r = snprintf(g_msg + n, sizeof g_msg - (size_t)n, ": %s", prev);
    (void)r;
  }
  return code;
}

void mf_panic(const char *file, int line, const char *fmt, ...) {
  fflush(stdout);
  fprintf(stderr, "melforge: internal error at %s:%d: ", file, line);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  abort();
}
