/* report_html.h — what the run report (report.c) and the comparison (report_compare.c)
 * share (not installed): a growing text buffer with HTML escaping and base64 images, the
 * page frame and style sheet, and readers for the run folder's files. */
#ifndef MF_REPORT_HTML_H
#define MF_REPORT_HTML_H

#include <jansson.h>
#include <stddef.h>

#include "fileio.h" /* mf__path_join */
#include "melforge/error.h"
#include "melforge/plot.h"

/* Text built piece by piece; after an allocation failure `oom` is set and appends stop. */
typedef struct mf__text {
  char *p;
  size_t n, cap;
  int oom;
} mf__text;

void mf__text_add(mf__text *t, const char *s);
void mf__text_addf(mf__text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s with &, <, >, " and ' escaped (NULL adds nothing). */
void mf__text_html(mf__text *t, const char *s);
/* <img> with the PNG as a base64 data URI. */
void mf__text_img(mf__text *t, const mf_png *png, const char *alt);
/* Appends s padded with spaces to `width` columns (a code point is one column). */
void mf__text_pad(mf__text *t, const char *s, int width, int right_align);

/* <!doctype html> ... <main>, with the inline style sheet; and the closing part. */
void mf__html_begin(mf__text *t, const char *title);
void mf__html_end(mf__text *t);

/* Writes the text to path atomically; MF_ENOMEM when building it ran out of memory. */
mf_status mf__write_text(const char *path, const mf__text *t);

/* The whole file, NUL-terminated (malloc'd); NULL with the error set. */
char *mf__read_file(const char *path, size_t *size);

/* summary.json of a run folder, parsed. */
mf_status mf__load_summary(const char *dir, json_t **out);
/* o[key] as a number; NaN when missing or not a number. */
double mf__json_num(const json_t *o, const char *key);

/* metrics.csv: one value per epoch and column (NaN for an empty cell). */
enum {
  MF__H_EPOCH,
  MF__H_TRAIN_LOSS,
  MF__H_VAL_LOSS,
  MF__H_TRAIN_ACCURACY,
  MF__H_VAL_ACCURACY,
  MF__H_COLUMNS
};
typedef struct mf__history {
  int n;
  double *col[MF__H_COLUMNS];
} mf__history;
mf_status mf__read_history(const char *dir, mf__history *h);
void mf__history_free(mf__history *h);

/* "3.4 ms", "420 ms", "12.3 s", "4 min 05 s", "2 h 03 min". */
void mf__format_seconds(double s, char *buf, size_t size);
/* 1234567 as "1,234,567"; "–" for NaN. */
void mf__format_count(double v, char *buf, size_t size);
/* "%.{decimals}f", or "–" for NaN. */
void mf__format_num(double v, int decimals, char *buf, size_t size);

#endif
