/* progress.c — see progress.h. */
#include "progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

double cli_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

void cli_progress_start(cli_progress *p, const char *label, const char *unit, int total) {
  p->label = label;
  p->unit = unit;
  p->total = total;
  p->tty = isatty(fileno(stderr));
  p->t0 = p->last_print = cli_now();
  p->last_decile = 0;
}

static void eta_text(double s, char *buf, size_t n) {
  if (s < 0 || s > 1e7)
    snprintf(buf, n, "--");
  else if (s < 60)
    snprintf(buf, n, "%.0fs", s);
  else if (s < 3600)
    snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
  else
    snprintf(buf, n, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

void cli_progress_update(cli_progress *p, int done, const char *extra) {
  double t = cli_now(), el = t - p->t0;
  double rate = el > 0 ? done / el : 0;
  char eta[32];
  eta_text(rate > 0 ? (p->total - done) / rate : -1, eta, sizeof eta);
  if (p->tty) {
    if (t - p->last_print < 0.1 && done < p->total) return;
    p->last_print = t;
    char bar[31];
    int fill = p->total ? (int)(30.0 * done / p->total) : 30;
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
    bar[30] = '\0';
    fprintf(stderr, "\r%s [%s] %d/%d %s  %.1f %s/s  ETA %s%s%s\033[K", p->label, bar, done,
            p->total, p->unit, rate, p->unit, eta, extra ? "  " : "", extra ? extra : "");
    fflush(stderr);
    return;
  }
  /* Logs get a line per 10 % (or 10 s), and none at all for work done within a second. */
  int decile = p->total ? 10 * done / p->total : 10;
  if (el < 1.0) return;
  if (decile <= p->last_decile && t - p->last_print < 10 && done < p->total) return;
  if (done == p->total && p->last_decile == 10) return;
  p->last_decile = decile;
  p->last_print = t;
  fprintf(stderr, "%s: %d/%d %s (%.0f%%), %.1f %s/s, ETA %s%s%s\n", p->label, done, p->total,
          p->unit, p->total ? 100.0 * done / p->total : 100.0, rate, p->unit, eta,
          extra ? ", " : "", extra ? extra : "");
}

void cli_progress_finish(cli_progress *p) {
  if (p->tty) fputc('\n', stderr);
}
