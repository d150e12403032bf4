/* report_html.c — text buffer, HTML frame and run-file readers shared by the reports. */
#define _GNU_SOURCE
#include "report_html.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "melforge/dataset.h" /* mf_temp_path_for, mf_publish_file */

/* ---- text ----------------------------------------------------------------------------------- */

static int reserve(mf__text *t, size_t more) {
  if (t->oom) return 0;
  if (t->n + more + 1 <= t->cap) return 1;
  size_t cap = t->cap ? t->cap : 4096;
  while (cap < t->n + more + 1) cap *= 2;
  char *p = realloc(t->p, cap);
  if (!p) {
    t->oom = 1;
    return 0;
  }
  t->p = p, t->cap = cap;
  return 1;
}

static void add_n(mf__text *t, const char *s, size_t n) {
  if (!reserve(t, n)) return;
  memcpy(t->p + t->n, s, n);
  t->n += n;
  t->p[t->n] = '\0';
}

void mf__text_add(mf__text *t, const char *s) {
  if (s) add_n(t, s, strlen(s));
}

void mf__text_addf(mf__text *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || !reserve(t, (size_t)n)) return;
  va_start(ap, fmt);
  vsnprintf(t->p + t->n, (size_t)n + 1, fmt, ap);
  va_end(ap);
  t->n += (size_t)n;
}

void mf__text_html(mf__text *t, const char *s) {
  if (!s) return;
  for (const char *p = s; *p; p++) {
    switch (*p) {
      case '&':
        mf__text_add(t, "&amp;");
        break;
      case '<':
        mf__text_add(t, "&lt;");
        break;
      case '>':
        mf__text_add(t, "&gt;");
        break;
      case '"':
        mf__text_add(t, "&quot;");
        break;
      case '\'':
        mf__text_add(t, "&#39;");
        break;
      default:
        add_n(t, p, 1);
    }
  }
}

void mf__text_img(mf__text *t, const mf_png *png, const char *alt) {
  static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  mf__text_addf(t, "<img width=\"%d\" height=\"%d\" alt=\"", png->width, png->height);
  mf__text_html(t, alt);
  mf__text_add(t, "\" src=\"data:image/png;base64,");
  const size_t n = png->size;
  if (!reserve(t, (n + 2) / 3 * 4)) return;
  char *o = t->p + t->n;
  const unsigned char *d = png->data;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
    *o++ = B64[v >> 18], *o++ = B64[(v >> 12) & 63], *o++ = B64[(v >> 6) & 63], *o++ = B64[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)d[i] << 16;
    *o++ = B64[v >> 18], *o++ = B64[(v >> 12) & 63], *o++ = '=', *o++ = '=';
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8;
    *o++ = B64[v >> 18], *o++ = B64[(v >> 12) & 63], *o++ = B64[(v >> 6) & 63], *o++ = '=';
  }
  t->n = (size_t)(o - t->p);
  t->p[t->n] = '\0';
  mf__text_add(t, "\">");
}

void mf__text_pad(mf__text *t, const char *s, int width, int right_align) {
  int cols = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) cols += (*p & 0xC0) != 0x80;
  if (right_align)
    for (int i = cols; i < width; i++) add_n(t, " ", 1);
  mf__text_add(t, s);
  if (!right_align)
    for (int i = cols; i < width; i++) add_n(t, " ", 1);
}

/* ---- page frame ----------------------------------------------------------------------------- */

/* Reads like the plots: the same font, muted greys, the palette's blue as the accent.
 * Numbers use tabular figures so columns line up. */
static const char CSS[] =
    ":root{--ink:#1f2328;--muted:#59636e;--line:#d8dee4;--soft:#f6f8fa;--accent:#0072b2}"
    "*{box-sizing:border-box}"
    "body{margin:0;background:#fff;color:var(--ink);"
    "font:15px/1.5 'DejaVu Sans',system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}"
    "main{max-width:1280px;margin:0 auto;padding:28px 32px 56px}"
    "h1{font-size:26px;margin:0 0 4px;font-weight:700}"
    "h2{font-size:19px;margin:36px 0 12px;padding-bottom:6px;border-bottom:1px solid var(--line)}"
    "h3{font-size:15px;margin:18px 0 8px}"
    "p.sub{color:var(--muted);margin:0 0 20px}"
    "p.note{color:var(--muted);font-size:13px;max-width:900px}"
    "a{color:var(--accent)}"
    "table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin:4px 0 8px}"
    "th,td{padding:6px 14px;border-bottom:1px solid var(--line);text-align:left;"
    "vertical-align:top}"
    "th{white-space:nowrap}"
    "table.compact th,table.compact td{padding:6px 10px}"
    "td.path{overflow-wrap:anywhere;min-width:14ch}"
    "td.name{white-space:nowrap}"
    ".wide{overflow-x:auto}"
    "thead th{background:var(--soft);font-weight:600;border-bottom:2px solid var(--line)}"
    "th.n,td.n{text-align:right;white-space:nowrap}"
    "tbody tr:hover td{background:#fafbfc}"
    "tr.avg td{background:var(--soft)}"
    "tr.first td{border-top:2px solid var(--line)}"
    "td.best{font-weight:700}"
    "td.k{color:var(--muted);white-space:nowrap}"
    "td.skip{color:var(--muted);font-style:italic}"
    ".sig{color:#b35900;font-weight:600}"
    ".cards{display:flex;flex-wrap:wrap;gap:14px;margin:8px 0 4px}"
    ".card{border:1px solid var(--line);border-radius:10px;padding:12px 18px;min-width:170px}"
    ".card .v{font-size:28px;font-weight:700;line-height:1.2}"
    ".card .k{color:var(--muted);font-size:13px}"
    ".cols{display:flex;flex-wrap:wrap;gap:20px 48px;align-items:flex-start}"
    ".cols>*{min-width:0}"
    ".cols>figure{flex:1 1 520px}"
    "table.kv td.path{max-width:460px}"
    "figure{margin:8px 0 0}"
    "figure img{max-width:100%;height:auto;border:1px solid var(--line);border-radius:8px}"
    "figcaption{color:var(--muted);font-size:13px;margin-top:4px}"
    "details{margin-top:8px}"
    "summary{cursor:pointer;color:var(--accent)}"
    "pre{background:var(--soft);border:1px solid var(--line);border-radius:8px;padding:14px;"
    "overflow:auto;font:13px/1.45 'DejaVu Sans Mono',ui-monospace,monospace}"
    "code{font:13px 'DejaVu Sans Mono',ui-monospace,monospace}"
    "footer{color:var(--muted);font-size:12px;margin-top:48px;border-top:1px solid var(--line);"
    "padding-top:10px}";

void mf__html_begin(mf__text *t, const char *title) {
  mf__text_add(t,
               "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
               "<title>");
  mf__text_html(t, title);
  mf__text_add(t, "</title>\n<style>");
  mf__text_add(t, CSS);
  mf__text_add(t, "</style>\n</head>\n<body>\n<main>\n");
}

void mf__html_end(mf__text *t) { mf__text_add(t, "</main>\n</body>\n</html>\n"); }

/* ---- files ---------------------------------------------------------------------------------- */

mf_status mf__write_text(const char *path, const mf__text *t) {
  if (t->oom) return mf_set_error(MF_ENOMEM, "out of memory building %s", path);
  return mf_write_file_atomic(path, t->p, t->n);
}

char *mf__read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    mf_set_error(errno == ENOENT ? MF_ENOTFOUND : MF_EIO, "cannot read %s: %s", path,
                 strerror(errno));
    return NULL;
  }
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    n += fread(buf + n, 1, cap - n - 1, f);
    if (n < cap - 1) break;
    char *p = realloc(buf, cap * 2);
    if (!p) free(buf);
    buf = p, cap *= 2;
  }
  int err = ferror(f);
  fclose(f);
  if (!buf) {
    mf_set_error(MF_ENOMEM, "out of memory reading %s", path);
    return NULL;
  }
  if (err) {
    free(buf);
    mf_set_error(MF_EIO, "cannot read %s", path);
    return NULL;
  }
  buf[n] = '\0';
  if (size) *size = n;
  return buf;
}

mf_status mf__load_summary(const char *dir, json_t **out) {
  *out = NULL;
  char *path = mf__path_join(dir, "summary.json");
  if (!path) return mf_set_error(MF_ENOMEM, "out of memory");
  json_error_t e;
  json_t *j = json_load_file(path, 0, &e);
  mf_status s = MF_OK;
  if (!j) {
    if (access(path, F_OK) != 0)
      s = mf_set_error(MF_ENOTFOUND,
                       "%s has no summary.json: not a finished run (melforge run writes it when "
                       "a run ends; an interrupted run continues with --resume)",
                       dir);
    else
      s = mf_set_error(MF_EFORMAT, "%s, line %d: %s", path, e.line, e.text);
  } else if (!json_is_object(j)) {
    json_decref(j);
    j = NULL;
    s = mf_set_error(MF_EFORMAT, "%s: expected a JSON object", path);
  }
  free(path);
  *out = j;
  return s;
}

double mf__json_num(const json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  return json_is_number(v) ? json_number_value(v) : NAN;
}

static const char *const HISTORY_COLUMNS[MF__H_COLUMNS] = {"epoch", "train_loss", "val_loss",
                                                           "train_accuracy", "val_accuracy"};

void mf__history_free(mf__history *h) {
  for (int c = 0; c < MF__H_COLUMNS; c++) free(h->col[c]);
  memset(h, 0, sizeof *h);
}

mf_status mf__read_history(const char *dir, mf__history *h) {
  memset(h, 0, sizeof *h);
  char *path = mf__path_join(dir, "metrics.csv");
  if (!path) return mf_set_error(MF_ENOMEM, "out of memory");
  char *txt = mf__read_file(path, NULL);
  if (!txt) {
    free(path);
    return mf_wrap_error(MF_ENOTFOUND, "the curves need metrics.csv");
  }
  int lines = 0;
  for (char *p = txt; *p; p++) lines += *p == '\n';
  /* Which field holds each column: the header names them, so the order may change. */
  int where[MF__H_COLUMNS];
  for (int c = 0; c < MF__H_COLUMNS; c++) where[c] = -1;
  char *save = NULL, *line = strtok_r(txt, "\n", &save);
  int field = 0;
  for (char *p = line; p && *p; field++) {
    size_t len = strcspn(p, ",\r");
    for (int c = 0; c < MF__H_COLUMNS; c++)
      if (strlen(HISTORY_COLUMNS[c]) == len && !strncmp(p, HISTORY_COLUMNS[c], len))
        where[c] = field;
    p += len;
    if (*p == ',')
      p++;
    else
      break;
  }
  mf_status s = MF_OK;
  if (where[MF__H_EPOCH] < 0) {
    s = mf_set_error(MF_EFORMAT, "%s: no 'epoch' column in the header", path);
    goto out;
  }
  for (int c = 0; c < MF__H_COLUMNS; c++) {
    h->col[c] = malloc(sizeof(double) * (size_t)(lines + 1));
    if (!h->col[c]) {
      s = mf_set_error(MF_ENOMEM, "out of memory reading %s", path);
      goto out;
    }
  }
  while ((line = strtok_r(NULL, "\n", &save))) {
    if (!*line || *line == '\r') continue;
    for (int c = 0; c < MF__H_COLUMNS; c++) h->col[c][h->n] = NAN;
    char *p = line;
    for (field = 0; p; field++) {
      for (int c = 0; c < MF__H_COLUMNS; c++) {
        if (where[c] != field) continue;
        char *end;
        double v = strtod(p, &end);
        if (end != p) h->col[c][h->n] = v;
      }
      p = strchr(p, ',');
      if (p) p++;
    }
    if (isfinite(h->col[MF__H_EPOCH][h->n])) h->n++;
  }
out:
  if (s != MF_OK) mf__history_free(h);
  free(txt);
  free(path);
  return s;
}

void mf__format_seconds(double s, char *buf, size_t size) {
  if (!isfinite(s) || s < 0)
    snprintf(buf, size, "\xe2\x80\x93");
  else if (s < 0.01)
    snprintf(buf, size, "%.1f ms", s * 1e3);
  else if (s < 1)
    snprintf(buf, size, "%.0f ms", s * 1e3);
  else if (s < 60)
    snprintf(buf, size, "%.1f s", s);
  else if (s < 3600)
    snprintf(buf, size, "%d min %02d s", (int)(s / 60), (int)fmod(s, 60));
  else
    snprintf(buf, size, "%d h %02d min", (int)(s / 3600), (int)fmod(s / 60, 60));
}

void mf__format_num(double v, int decimals, char *buf, size_t size) {
  if (isfinite(v))
    snprintf(buf, size, "%.*f", decimals, v);
  else
    snprintf(buf, size, "\xe2\x80\x93");
}

void mf__format_count(double v, char *buf, size_t size) {
  if (!isfinite(v)) {
    snprintf(buf, size, "\xe2\x80\x93");
    return;
  }
  char digits[32];
  int n = snprintf(digits, sizeof digits, "%.0f", fabs(v));
  size_t k = 0;
  if (v <= -0.5 && k + 1 < size) buf[k++] = '-';
  for (int i = 0; i < n && k + 2 < size; i++) {
    if (i > 0 && (n - i) % 3 == 0) buf[k++] = ',';
    buf[k++] = digits[i];
  }
  buf[k] = '\0';
}
