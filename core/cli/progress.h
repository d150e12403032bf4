/* progress.h — progress reporting for long CLI work: a bar with rate and ETA redrawn in
 * place when stderr is a terminal, a plain line every ~10 % (or 10 s) otherwise, so logs
 * stay readable. */
#ifndef MF_CLI_PROGRESS_H
#define MF_CLI_PROGRESS_H

typedef struct cli_progress {
  const char *label; /* "extract" */
  const char *unit;  /* "tracks" */
  int total;
  int tty;
  double t0, last_print;
  int last_decile;
} cli_progress;

void cli_progress_start(cli_progress *p, const char *label, const char *unit, int total);
/* done items so far; extra is appended to the line ("1190 segments, 1 skipped"). */
void cli_progress_update(cli_progress *p, int done, const char *extra);
/* Ends the bar line (a newline on a terminal). */
void cli_progress_finish(cli_progress *p);
double cli_now(void);

#endif
