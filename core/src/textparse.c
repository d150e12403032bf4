/* textparse.c — see textparse.h. */
#include "textparse.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int mf__text_int(const char *t, int64_t *out) {
  while (isspace((unsigned char)*t)) t++;
  if (!*t) return 0;
  char *end;
  errno = 0;
  long long v = strtoll(t, &end, 10);
  if (*end == '.' || *end == 'e' || *end == 'E') { /* 128.0 or 1e3: integral floats are ints */
    double d = strtod(t, &end);
    while (isspace((unsigned char)*end)) end++;
    if (*end || d != floor(d) || !(fabs(d) <= 9e15)) return 0;
    *out = (int64_t)d;
    return 1;
  }
  if (errno) return 0;
  while (isspace((unsigned char)*end)) end++;
  if (*end) return 0;
  *out = v;
  return 1;
}

int mf__text_float(const char *t, double *out) {
  while (isspace((unsigned char)*t)) t++;
  if (!*t) return 0;
  char *end;
  double v = strtod(t, &end);
  while (isspace((unsigned char)*end)) end++;
  if (*end || !isfinite(v)) return 0;
  *out = v;
  return 1;
}

int mf__text_bool(const char *t, int *out) {
  static const char *const yes[] = {"true", "1", "yes", "on"};
  static const char *const no[] = {"false", "0", "no", "off"};
  while (isspace((unsigned char)*t)) t++;
  char w[8];
  size_t n = strlen(t);
  while (n && isspace((unsigned char)t[n - 1])) n--;
  if (n >= sizeof w) return 0;
  memcpy(w, t, n);
  w[n] = '\0';
  for (int i = 0; i < 4; i++) {
    if (!strcasecmp(w, yes[i])) return *out = 1, 1;
    if (!strcasecmp(w, no[i])) return *out = 0, 1;
  }
  return 0;
}

int mf__text_list(const char *t, char items[][MF_TEXT_ITEM], int max) {
  char buf[2048];
  if (strlen(t) >= sizeof buf) return -1;
  snprintf(buf, sizeof buf, "%s", t);
  char *s = buf;
  while (isspace((unsigned char)*s)) s++;
  size_t l = strlen(s);
  while (l && isspace((unsigned char)s[l - 1])) s[--l] = '\0';
  if (l >= 2 && ((s[0] == '{' && s[l - 1] == '}') || (s[0] == '[' && s[l - 1] == ']'))) {
    s[l - 1] = '\0';
    s++;
  }
  while (isspace((unsigned char)*s)) s++;
  if (!*s) return 0;
  int n = 0;
  for (char *p = s;;) {
    char *comma = strchr(p, ',');
    if (comma) *comma = '\0';
    while (isspace((unsigned char)*p)) p++;
    size_t k = strlen(p);
    while (k && isspace((unsigned char)p[k - 1])) p[--k] = '\0';
    if (!k || k >= MF_TEXT_ITEM || n == max) return -1;
    memcpy(items[n++], p, k + 1);
    if (!comma) break;
    p = comma + 1;
  }
  return n;
}
