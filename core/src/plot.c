/* plot.c — line charts and confusion heatmaps rendered with cairo into PNG bytes.
 *
 * Sizes are in pixels of a 1:1 image surface; fonts are chosen for reading the image at its
 * natural size in a report (12-13 px ticks and labels, 18-20 px titles). Every string goes
 * through clean_text first: cairo's toy API puts the context into a permanent error state
 * on invalid UTF-8, and class names come from user files.
 */
#include "melforge/plot.h"

#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "melforge/dataset.h" /* mf_temp_path_for, mf_publish_file */

#define FONT "DejaVu Sans"
#define INK 0x222222u
#define MUTED 0x555555u
#define AXIS 0x555555u
#define GRID 0xe3e3e3u

static const uint32_t PALETTE[MF_PLOT_PALETTE_SIZE] = {0x0072B2, 0xD55E00, 0x009E73, 0xCC79A7,
                                                       0xE69F00, 0x56B4E9, 0x000000, 0xF0E442};

uint32_t mf_plot_color(int i) {
  return PALETTE[((i % MF_PLOT_PALETTE_SIZE) + MF_PLOT_PALETTE_SIZE) % MF_PLOT_PALETTE_SIZE];
}

void mf_png_free(mf_png *png) {
  if (!png) return;
  free(png->data);
  memset(png, 0, sizeof *png);
}

mf_status mf_png_write(const mf_png *png, const char *path) {
  if (!png || !png->data || !png->size)
    return mf_set_error(MF_EINVAL, "mf_png_write: no image to write to %s", path ? path : "(null)");
  return mf_write_file_atomic(path, png->data, png->size);
}

/* ---- drawing helpers ------------------------------------------------------------------------ */

static void set_rgb(cairo_t *cr, uint32_t c) {
  cairo_set_source_rgb(cr, ((c >> 16) & 255) / 255.0, ((c >> 8) & 255) / 255.0, (c & 255) / 255.0);
}

static void font(cairo_t *cr, double size, int bold) {
  cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
}

static double font_size(cairo_t *cr) {
  cairo_matrix_t m;
  cairo_get_font_matrix(cr, &m);
  return m.yy;
}

/* Copies s into buf as valid UTF-8 (invalid bytes become '?'), at most max_chars code points
 * (longer text ends with an ellipsis). */
static const char *clean_text(const char *s, char *buf, size_t size, int max_chars) {
  size_t k = 0;
  int chars = 0;
  const unsigned char *p = (const unsigned char *)(s ? s : "");
  while (*p && k + 8 < size) {
    int len = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
    for (int i = 1; i < len; i++)
      if ((p[i] & 0xC0) != 0x80) len = 0;
    if (chars == max_chars) {
      memcpy(buf + k, "\xe2\x80\xa6", 3); /* U+2026 */
      k += 3;
      break;
    }
    if (len == 0) {
      buf[k++] = '?';
      p++;
    } else {
      memcpy(buf + k, p, (size_t)len);
      k += (size_t)len;
      p += len;
    }
    chars++;
  }
  buf[k] = '\0';
  return buf;
}

#define TEXT_MAX 512

static double text_width(cairo_t *cr, const char *s) {
  char buf[TEXT_MAX];
  cairo_text_extents_t e;
  cairo_text_extents(cr, clean_text(s, buf, sizeof buf, 200), &e);
  return e.x_advance;
}

enum { VA_BASELINE, VA_CENTER, VA_TOP };

/* Draws s anchored at (x, y): ha 0 = left edge, 0.5 = centre, 1 = right edge; va places the
 * baseline (VA_BASELINE), the middle of the capitals (VA_CENTER) or their top (VA_TOP) at y.
 * DejaVu's capitals are 0.73 em high. */
static void text_at(cairo_t *cr, double x, double y, const char *s, double ha, int va) {
  char buf[TEXT_MAX];
  const char *t = clean_text(s, buf, sizeof buf, 200);
  cairo_text_extents_t e;
  cairo_text_extents(cr, t, &e);
  const double size = font_size(cr);
  double base = va == VA_CENTER ? y + 0.365 * size : va == VA_TOP ? y + 0.73 * size : y;
  cairo_move_to(cr, x - ha * e.x_advance, base);
  cairo_show_text(cr, t);
}

/* text_at in a frame rotated by angle (radians, positive = clockwise on screen) about (x, y). */
static void text_rotated(cairo_t *cr, double x, double y, double angle, const char *s, double ha,
                         int va) {
  cairo_save(cr);
  cairo_translate(cr, x, y);
  cairo_rotate(cr, angle);
  text_at(cr, 0, 0, s, ha, va);
  cairo_restore(cr);
}

/* Pixel centre for crisp 1-pixel lines. */
static double snap(double v) { return floor(v) + 0.5; }

static cairo_t *new_canvas(int w, int h, cairo_surface_t **surface) {
  *surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
  cairo_t *cr = cairo_create(*surface);
  cairo_font_options_t *fo = cairo_font_options_create();
  cairo_font_options_set_antialias(fo, CAIRO_ANTIALIAS_GRAY);
  cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_SLIGHT);
  /* Unhinted metrics: text widths scale smoothly, so measured layouts hold at any size. */
  cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF);
  cairo_set_font_options(cr, fo);
  cairo_font_options_destroy(fo);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  return cr;
}

typedef struct byte_buf {
  unsigned char *p;
  size_t n, cap;
} byte_buf;

static cairo_status_t png_sink(void *closure, const unsigned char *data, unsigned int len) {
  byte_buf *b = closure;
  if (b->n + len > b->cap) {
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->n + len) cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (!p) return CAIRO_STATUS_NO_MEMORY;
    b->p = p, b->cap = cap;
  }
  memcpy(b->p + b->n, data, len);
  b->n += len;
  return CAIRO_STATUS_SUCCESS;
}

/* Encodes the finished canvas and releases it. */
static mf_status finish_canvas(cairo_t *cr, cairo_surface_t *surface, const char *what,
                               mf_png *out) {
  cairo_status_t st = cairo_status(cr);
  cairo_destroy(cr);
  byte_buf b = {0};
  if (st == CAIRO_STATUS_SUCCESS) {
    cairo_surface_flush(surface);
    st = cairo_surface_write_to_png_stream(surface, png_sink, &b);
  }
  const int w = cairo_image_surface_get_width(surface), h = cairo_image_surface_get_height(surface);
  cairo_surface_destroy(surface);
  if (st != CAIRO_STATUS_SUCCESS) {
    free(b.p);
    return mf_set_error(st == CAIRO_STATUS_NO_MEMORY ? MF_ENOMEM : MF_EINVAL,
                        "drawing the %s (%dx%d pixels) failed: %s", what, w, h,
                        cairo_status_to_string(st));
  }
  out->data = b.p;
  out->size = b.n;
  out->width = w;
  out->height = h;
  return MF_OK;
}

/* ---- axes --------------------------------------------------------------------------------- */

/* 1, 2 or 5 times a power of ten, near range / target. */
static double nice_step(double range, double target) {
  double raw = range / (target < 1 ? 1 : target);
  double p = pow(10, floor(log10(raw)));
  double f = raw / p;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * p;
}

typedef struct axis {
  double lo, hi, step;
  int decimals;
  int n_ticks;
  double ticks[64];
} axis;

static void axis_make(axis *a, double lo, double hi, double target, int integer) {
  a->lo = lo, a->hi = hi;
  a->step = nice_step(hi - lo, target);
  if (integer && a->step < 1) a->step = 1;
  while ((hi - lo) / a->step > 60) a->step *= 2; /* guards the tick array */
  a->decimals = a->step >= 1 ? 0 : (int)ceil(-log10(a->step) - 1e-9);
  a->n_ticks = 0;
  /* Multiples of the step, computed (not accumulated) so no rounding drift creeps in. */
  const double first = ceil(lo / a->step - 1e-9);
  for (int i = 0; i < 64; i++) {
    double t = (first + i) * a->step;
    if (t > hi + 1e-9 * a->step) break;
    a->ticks[a->n_ticks++] = fabs(t) < a->step * 1e-6 ? 0 : t;
  }
}

static void tick_label(const axis *a, double v, char *buf, size_t size) {
  snprintf(buf, size, "%.*f", a->decimals, v);
}

/* Range of a panel's finite points along x (use_x) or y; the marker counts along x. */
static void panel_range(const mf_plot_panel *p, int use_x, double *lo, double *hi) {
  double mn = INFINITY, mx = -INFINITY;
  for (int l = 0; l < p->n_lines; l++) {
    const mf_plot_line *ln = &p->lines[l];
    for (int i = 0; i < ln->n; i++) {
      if (!isfinite(ln->x[i]) || !isfinite(ln->y[i])) continue;
      double v = use_x ? ln->x[i] : ln->y[i];
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
  }
  if (use_x && isfinite(p->marker_x)) {
    if (p->marker_x < mn) mn = p->marker_x;
    if (p->marker_x > mx) mx = p->marker_x;
  }
  if (!(mn <= mx)) mn = 0, mx = 1;
  *lo = mn, *hi = mx;
}

/* [mn, mx] grown by frac of its width on both sides; a flat range gets a window of 10 % of
 * its value, or +-flat around 0. */
static void padded(double mn, double mx, double frac, double flat, double *lo, double *hi) {
  double r = mx - mn;
  double pad = r > 0 ? r * frac : (fabs(mn) > 0 ? fabs(mn) * 0.1 : flat);
  *lo = mn - pad, *hi = mx + pad;
}

/* ---- legend ------------------------------------------------------------------------------- */

#define LEGEND_SAMPLE 26.0
#define LEGEND_ROW 22.0

static double legend_entry_width(cairo_t *cr, const mf_plot_legend *e) {
  return LEGEND_SAMPLE + 7 + text_width(cr, e->label) + 22;
}

/* Rows needed for the legend in width w (font must be set). */
static int legend_rows(cairo_t *cr, const mf_plot_legend *lg, int n, double w) {
  int rows = n > 0, i = 0;
  double x = 0;
  for (; i < n; i++) {
    double ew = legend_entry_width(cr, &lg[i]);
    if (x > 0 && x + ew > w) rows++, x = 0;
    x += ew;
  }
  return rows;
}

static void legend_sample(cairo_t *cr, double x, double y, uint32_t color, int dashed) {
  set_rgb(cr, color);
  cairo_set_line_width(cr, 3);
  double dash[] = {6, 4};
  cairo_set_dash(cr, dash, dashed ? 2 : 0, 0);
  cairo_move_to(cr, x, y);
  cairo_line_to(cr, x + LEGEND_SAMPLE, y);
  cairo_stroke(cr);
  cairo_set_dash(cr, NULL, 0, 0);
}

/* Draws the legend rows centred in [x0, x0 + w] from top y. */
static void legend_draw(cairo_t *cr, const mf_plot_legend *lg, int n, double x0, double w,
                        double y) {
  int i = 0;
  while (i < n) {
    int j = i;
    double rw = 0;
    while (j < n) {
      double ew = legend_entry_width(cr, &lg[j]);
      if (j > i && rw + ew > w) break;
      rw += ew;
      j++;
    }
    rw -= 22; /* no gap after the last entry */
    double x = x0 + (w - rw) / 2, cy = y + LEGEND_ROW / 2;
    for (int k = i; k < j; k++) {
      legend_sample(cr, x, cy, lg[k].color, lg[k].dashed);
      set_rgb(cr, INK);
      text_at(cr, x + LEGEND_SAMPLE + 7, cy, lg[k].label, 0, VA_CENTER);
      x += legend_entry_width(cr, &lg[k]);
    }
    y += LEGEND_ROW;
    i = j;
  }
}

/* ---- line charts -------------------------------------------------------------------------- */

static mf_status check_figure(const mf_plot_figure *f) {
  if (!f) return mf_set_error(MF_EINVAL, "mf_plot_lines: no figure given");
  if (f->n_panels < 1 || f->n_panels > MF_PLOT_MAX_PANELS || !f->panels)
    return mf_set_error(MF_EINVAL, "mf_plot_lines: %d panels; 1 to %d are supported", f->n_panels,
                        MF_PLOT_MAX_PANELS);
  if (f->width < 160 * f->n_panels || f->height < 200 || f->width > 10000 || f->height > 10000)
    return mf_set_error(MF_EINVAL,
                        "mf_plot_lines: a %dx%d image is too small or too large for %d panels "
                        "(at least 160 pixels wide per panel and 200 high, at most 10000)",
                        f->width, f->height, f->n_panels);
  if (f->n_legend < 0 || (f->n_legend > 0 && !f->legend))
    return mf_set_error(MF_EINVAL, "mf_plot_lines: legend of %d entries without entries",
                        f->n_legend);
  for (int p = 0; p < f->n_panels; p++) {
    const mf_plot_panel *pa = &f->panels[p];
    if (pa->n_lines < 0 || (pa->n_lines > 0 && !pa->lines))
      return mf_set_error(MF_EINVAL, "mf_plot_lines: panel %d has %d lines but no line data", p,
                          pa->n_lines);
    for (int l = 0; l < pa->n_lines; l++)
      if (pa->lines[l].n < 0 || (pa->lines[l].n > 0 && (!pa->lines[l].x || !pa->lines[l].y)))
        return mf_set_error(MF_EINVAL, "mf_plot_lines: panel %d, line %d: %d points without data",
                            p, l, pa->lines[l].n);
  }
  return MF_OK;
}

static void draw_line(cairo_t *cr, const mf_plot_line *ln, const mf_plot_rect *a, double x0,
                      double x1, double y0, double y1) {
  const double sx = a->w / (x1 - x0), sy = a->h / (y1 - y0);
  set_rgb(cr, ln->color);
  cairo_set_line_width(cr, ln->width > 0 ? ln->width : 2);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
  double dash[] = {6, 4};
  cairo_set_dash(cr, dash, ln->dashed ? 2 : 0, 0);
  int pen = 0;
  for (int i = 0; i < ln->n; i++) {
    if (!isfinite(ln->x[i]) || !isfinite(ln->y[i])) {
      pen = 0;
      continue;
    }
    double px = a->x + (ln->x[i] - x0) * sx, py = a->y + a->h - (ln->y[i] - y0) * sy;
    if (!pen) {
      cairo_move_to(cr, px, py);
      pen = 1;
    }
    /* After a move, a zero-length segment: a lone point between gaps shows as a dot. */
    cairo_line_to(cr, px, py);
  }
  cairo_stroke(cr);
  cairo_set_dash(cr, NULL, 0, 0);
  if (!ln->markers) return;
  const double r = (ln->width > 0 ? ln->width : 2) + 1.2;
  for (int i = 0; i < ln->n; i++) {
    if (!isfinite(ln->x[i]) || !isfinite(ln->y[i])) continue;
    double px = a->x + (ln->x[i] - x0) * sx, py = a->y + a->h - (ln->y[i] - y0) * sy;
    cairo_new_sub_path(cr);
    cairo_arc(cr, px, py, r, 0, 2 * M_PI);
  }
  cairo_fill_preserve(cr);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_set_line_width(cr, 1);
  cairo_stroke(cr);
}

/* How much of a line passes through r (grown by 3 pixels): samples along each segment. */
static int line_hits(const mf_plot_line *ln, const mf_plot_rect *a, double x0, double x1, double y0,
                     double y1, const mf_plot_rect *r) {
  const double sx = a->w / (x1 - x0), sy = a->h / (y1 - y0);
  int hits = 0;
  for (int i = 0; i + 1 < ln->n; i++) {
    if (!isfinite(ln->x[i]) || !isfinite(ln->y[i]) || !isfinite(ln->x[i + 1]) ||
        !isfinite(ln->y[i + 1]))
      continue;
    const double ax = a->x + (ln->x[i] - x0) * sx, ay = a->y + a->h - (ln->y[i] - y0) * sy;
    const double bx = a->x + (ln->x[i + 1] - x0) * sx, by = a->y + a->h - (ln->y[i + 1] - y0) * sy;
    for (int k = 0; k <= 16; k++) {
      const double px = ax + (bx - ax) * k / 16, py = ay + (by - ay) * k / 16;
      hits += px >= r->x - 3 && px <= r->x + r->w + 3 && py >= r->y - 3 && py <= r->y + r->h + 3;
    }
  }
  return hits;
}

/* The panel between x = px and px + pw, from y = top to the image's bottom edge h. */
static void draw_panel(cairo_t *cr, const mf_plot_panel *p, double px, double pw, double top,
                       double h, mf_plot_rect *area_out, double range_out[4]) {
  double xmn, xmx, ymn, ymx, x0, x1, y0, y1;
  panel_range(p, 1, &xmn, &xmx);
  panel_range(p, 0, &ymn, &ymx);
  padded(xmn, xmx, 0.03, 0.5, &x0, &x1);
  if (p->integer_x && x1 - x0 < xmx - xmn + 0.8) x0 = xmn - 0.4, x1 = xmx + 0.4;
  padded(ymn, ymx, 0.06, 0.5, &y0, &y1);

  font(cr, 12, 0);
  const double plot_top = top + (p->title && *p->title ? 28 : 8);
  const double plot_bottom = h - 54;
  axis ya;
  axis_make(&ya, y0, y1, (plot_bottom - plot_top) / 55.0, 0);
  double tick_w = 0;
  char lab[64];
  for (int i = 0; i < ya.n_ticks; i++) {
    tick_label(&ya, ya.ticks[i], lab, sizeof lab);
    double w = text_width(cr, lab);
    if (w > tick_w) tick_w = w;
  }
  mf_plot_rect a;
  a.x = floor(px + 14 + 13 + 10 + tick_w + 9);
  a.y = floor(plot_top);
  a.w = floor(px + pw - 18 - a.x);
  a.h = floor(plot_bottom - a.y);
  axis xa;
  axis_make(&xa, x0, x1, a.w / 75.0, p->integer_x);

  /* Grid. */
  cairo_set_line_width(cr, 1);
  set_rgb(cr, GRID);
  for (int i = 0; i < ya.n_ticks; i++) {
    double y = snap(a.y + a.h - (ya.ticks[i] - y0) / (y1 - y0) * a.h);
    cairo_move_to(cr, a.x, y);
    cairo_line_to(cr, a.x + a.w, y);
  }
  for (int i = 0; i < xa.n_ticks; i++) {
    double x = snap(a.x + (xa.ticks[i] - x0) / (x1 - x0) * a.w);
    cairo_move_to(cr, x, a.y);
    cairo_line_to(cr, x, a.y + a.h);
  }
  cairo_stroke(cr);

  /* Best-epoch marker under the data, label on top of everything. */
  double mx = NAN;
  if (isfinite(p->marker_x)) {
    mx = a.x + (p->marker_x - x0) / (x1 - x0) * a.w;
    set_rgb(cr, 0x666666);
    cairo_set_line_width(cr, 1.5);
    double dash[] = {5, 4};
    cairo_set_dash(cr, dash, 2, 0);
    cairo_move_to(cr, snap(mx), a.y);
    cairo_line_to(cr, snap(mx), a.y + a.h);
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
  }

  cairo_save(cr);
  cairo_rectangle(cr, a.x, a.y, a.w, a.h);
  cairo_clip(cr);
  for (int l = 0; l < p->n_lines; l++) draw_line(cr, &p->lines[l], &a, x0, x1, y0, y1);
  cairo_restore(cr);

  if (isfinite(mx) && p->marker_label && *p->marker_label) {
    font(cr, 11.5, 0);
    const double tw = text_width(cr, p->marker_label);
    /* The free corner next to the line: right or left of it, top or bottom of the area. */
    mf_plot_rect best = {0, 0, 0, 0};
    int best_hits = -1;
    for (int k = 0; k < 4; k++) {
      mf_plot_rect r = {k & 1 ? mx - 6 - tw - 3 : mx + 6 - 3, k & 2 ? a.y + a.h - 21 : a.y + 4,
                        tw + 6, 17};
      if (r.x < a.x || r.x + r.w > a.x + a.w) continue;
      int hits = 0;
      for (int l = 0; l < p->n_lines; l++) hits += line_hits(&p->lines[l], &a, x0, x1, y0, y1, &r);
      if (best_hits < 0 || hits < best_hits) best = r, best_hits = hits;
    }
    if (best_hits >= 0) {
      cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
      cairo_rectangle(cr, best.x, best.y, best.w, best.h);
      cairo_fill(cr);
      set_rgb(cr, 0x444444);
      text_at(cr, best.x + 3, best.y + 8.5, p->marker_label, 0, VA_CENTER);
    }
  }

  /* Axes: left and bottom lines with outward ticks. */
  set_rgb(cr, AXIS);
  cairo_set_line_width(cr, 1);
  cairo_move_to(cr, snap(a.x) - 1, a.y);
  cairo_line_to(cr, snap(a.x) - 1, snap(a.y + a.h));
  cairo_line_to(cr, a.x + a.w, snap(a.y + a.h));
  for (int i = 0; i < ya.n_ticks; i++) {
    double y = snap(a.y + a.h - (ya.ticks[i] - y0) / (y1 - y0) * a.h);
    cairo_move_to(cr, a.x - 1, y);
    cairo_line_to(cr, a.x - 6, y);
  }
  for (int i = 0; i < xa.n_ticks; i++) {
    double x = snap(a.x + (xa.ticks[i] - x0) / (x1 - x0) * a.w);
    cairo_move_to(cr, x, a.y + a.h);
    cairo_line_to(cr, x, a.y + a.h + 5);
  }
  cairo_stroke(cr);
  font(cr, 12, 0);
  set_rgb(cr, INK);
  for (int i = 0; i < ya.n_ticks; i++) {
    tick_label(&ya, ya.ticks[i], lab, sizeof lab);
    text_at(cr, a.x - 9, a.y + a.h - (ya.ticks[i] - y0) / (y1 - y0) * a.h, lab, 1, VA_CENTER);
  }
  for (int i = 0; i < xa.n_ticks; i++) {
    tick_label(&xa, xa.ticks[i], lab, sizeof lab);
    text_at(cr, a.x + (xa.ticks[i] - x0) / (x1 - x0) * a.w, a.y + a.h + 10, lab, 0.5, VA_TOP);
  }
  font(cr, 13, 0);
  if (p->x_label) text_at(cr, a.x + a.w / 2, h - 14, p->x_label, 0.5, VA_BASELINE);
  if (p->y_label)
    text_rotated(cr, px + 14 + 10, a.y + a.h / 2, -M_PI / 2, p->y_label, 0.5, VA_BASELINE);
  if (p->title && *p->title) {
    font(cr, 14, 1);
    text_at(cr, a.x + a.w / 2, top + 8, p->title, 0.5, VA_TOP);
  }
  *area_out = a;
  range_out[0] = x0, range_out[1] = x1, range_out[2] = y0, range_out[3] = y1;
}

mf_status mf_plot_lines(const mf_plot_figure *fig, mf_png *out, mf_plot_geometry *geometry) {
  if (!out) return mf_set_error(MF_EINVAL, "mf_plot_lines: no output given");
  memset(out, 0, sizeof *out);
  mf_status s = check_figure(fig);
  if (s != MF_OK) return s;
  cairo_surface_t *surface;
  cairo_t *cr = new_canvas(fig->width, fig->height, &surface);
  const double W = fig->width, H = fig->height;
  double y = 12;
  if (fig->title && *fig->title) {
    font(cr, 19, 1);
    set_rgb(cr, INK);
    text_at(cr, W / 2, y, fig->title, 0.5, VA_TOP);
    y += 26;
  }
  if (fig->subtitle && *fig->subtitle) {
    font(cr, 13, 0);
    set_rgb(cr, MUTED);
    text_at(cr, W / 2, y, fig->subtitle, 0.5, VA_TOP);
    y += 20;
  }
  if (fig->n_legend > 0) {
    font(cr, 13, 0);
    y += 2;
    legend_draw(cr, fig->legend, fig->n_legend, 20, W - 40, y);
    y += LEGEND_ROW * legend_rows(cr, fig->legend, fig->n_legend, W - 40);
  }
  y += 4;
  const double pw = (W - 12) / fig->n_panels;
  mf_plot_geometry g = {0};
  g.n = fig->n_panels;
  for (int p = 0; p < fig->n_panels; p++) {
    double r[4];
    draw_panel(cr, &fig->panels[p], 6 + p * pw, pw, y, H, &g.area[p], r);
    g.x0[p] = r[0], g.x1[p] = r[1], g.y0[p] = r[2], g.y1[p] = r[3];
  }
  s = finish_canvas(cr, surface, "line chart", out);
  if (s == MF_OK && geometry) *geometry = g;
  return s;
}

/* ---- confusion matrix ----------------------------------------------------------------------- */

/* ColorBrewer "Blues" (9 classes): sequential, light to dark. */
static const uint32_t BLUES[9] = {0xf7fbff, 0xdeebf7, 0xc6dbef, 0x9ecae1, 0x6baed6,
                                  0x4292c6, 0x2171b5, 0x08519c, 0x08306b};

static void blues(double t, double rgb[3]) {
  if (!(t > 0)) t = 0;
  if (t > 1) t = 1;
  double pos = t * 8;
  int i = (int)floor(pos);
  if (i > 7) i = 7;
  double f = pos - i;
  for (int c = 0; c < 3; c++) {
    int sh = 16 - 8 * c;
    double a = (BLUES[i] >> sh) & 255, b = (BLUES[i + 1] >> sh) & 255;
    rgb[c] = (a + (b - a) * f) / 255.0;
  }
}

/* WCAG relative luminance of an sRGB colour. */
static double luminance(const double rgb[3]) {
  double l[3];
  for (int c = 0; c < 3; c++)
    l[c] = rgb[c] <= 0.04045 ? rgb[c] / 12.92 : pow((rgb[c] + 0.055) / 1.055, 2.4);
  return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2];
}

#define NAME_CHARS 28

mf_status mf_plot_confusion(const int64_t *counts, int n_classes, char *const *class_names,
                            const char *title, const char *subtitle, mf_png *out,
                            mf_plot_geometry *geometry) {
  if (!out) return mf_set_error(MF_EINVAL, "mf_plot_confusion: no output given");
  memset(out, 0, sizeof *out);
  const int C = n_classes;
  if (!counts || C < 1 || C > 256)
    return mf_set_error(MF_EINVAL, "mf_plot_confusion: %d classes; 1 to 256 are supported", C);
  for (int64_t i = 0; i < (int64_t)C * C; i++)
    if (counts[i] < 0)
      return mf_set_error(MF_EINVAL, "mf_plot_confusion: negative count %lld at row %d, column %d",
                          (long long)counts[i], (int)(i / C), (int)(i % C));
  char **names = calloc((size_t)C, sizeof *names);
  if (!names) return mf_set_error(MF_ENOMEM, "mf_plot_confusion: out of memory");
  for (int k = 0; k < C; k++) {
    char buf[TEXT_MAX], num[16];
    snprintf(num, sizeof num, "%d", k);
    names[k] = strdup(clean_text(class_names && class_names[k] ? class_names[k] : num, buf,
                                 sizeof buf, NAME_CHARS));
  }

  /* Measure on a scratch surface, then lay out. */
  cairo_surface_t *scratch;
  cairo_t *cr = new_canvas(1, 1, &scratch);
  const double cell = fmax(22, fmin(72, floor(560.0 / C)));
  const double label_size = cell < 26 ? 11 : 13;
  font(cr, label_size, 0);
  double name_w = 0;
  for (int k = 0; k < C; k++) name_w = fmax(name_w, text_width(cr, names[k]));
  font(cr, 19, 1);
  double title_w = title ? text_width(cr, title) : 0;
  font(cr, 13, 0);
  double sub_w = subtitle ? text_width(cr, subtitle) : 0;
  cairo_destroy(cr);
  cairo_surface_destroy(scratch);

  const int rotate = name_w > cell - 8;
  const double c45 = sqrt(0.5);
  /* Rotated labels end at their cell's centre and run down-left at 45 degrees. */
  const double xlab_h = rotate ? (name_w + label_size * 0.8) * c45 + 4 : label_size + 2;
  const double xlab_left = rotate ? name_w * c45 - cell / 2 : 0;
  const double M = cell * C;
  double left = fmax(16 + 18 + 10 + name_w + 10, xlab_left + 24);
  const double top = 16 + (title ? 28 : 0) + (subtitle ? 22 : 0) + 8;
  const double bar_gap = 26, bar_w = 18, right = bar_gap + bar_w + 8 + 34 + 14 + 16 + 10;
  double width = left + M + right;
  const double need = fmax(title_w, sub_w) + 40;
  if (width < need) left += (need - width) / 2, width = need;
  const double height = top + M + 10 + xlab_h + 14 + 16 + 14;
  const int W = (int)ceil(width), H = (int)ceil(height);

  cairo_surface_t *surface;
  cr = new_canvas(W, H, &surface);
  double y = 16;
  set_rgb(cr, INK);
  if (title) {
    font(cr, 19, 1);
    text_at(cr, W / 2.0, y, title, 0.5, VA_TOP);
    y += 28;
  }
  if (subtitle) {
    font(cr, 13, 0);
    set_rgb(cr, MUTED);
    text_at(cr, W / 2.0, y, subtitle, 0.5, VA_TOP);
  }

  const double x0 = floor(left), y0 = floor(top);
  const double count_size0 = fmin(17, fmax(8, cell * 0.3));
  for (int r = 0; r < C; r++) {
    int64_t row_sum = 0;
    for (int c = 0; c < C; c++) row_sum += counts[(int64_t)r * C + c];
    for (int c = 0; c < C; c++) {
      const int64_t v = counts[(int64_t)r * C + c];
      const double frac = row_sum > 0 ? (double)v / (double)row_sum : 0;
      double rgb[3];
      blues(frac, rgb);
      cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
      cairo_rectangle(cr, x0 + c * cell, y0 + r * cell, cell, cell);
      cairo_fill(cr);
      char num[32];
      snprintf(num, sizeof num, "%lld", (long long)v);
      font(cr, count_size0, r == c);
      double tw = text_width(cr, num);
      if (tw > cell - 6) font(cr, count_size0 * (cell - 6) / tw, r == c);
      /* White on dark cells, near-black on light ones: the contrast stays above 4.5:1. */
      if (luminance(rgb) < 0.32)
        cairo_set_source_rgb(cr, 1, 1, 1);
      else
        set_rgb(cr, v == 0 && r != c ? 0x8c959f : 0x1a1a1a); /* empty cells recede */
      text_at(cr, x0 + (c + 0.5) * cell, y0 + (r + 0.5) * cell, num, 0.5, VA_CENTER);
    }
  }
  /* Cell separators and frame. */
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_set_line_width(cr, 1);
  for (int k = 1; k < C; k++) {
    cairo_move_to(cr, snap(x0 + k * cell), y0);
    cairo_line_to(cr, snap(x0 + k * cell), y0 + M);
    cairo_move_to(cr, x0, snap(y0 + k * cell));
    cairo_line_to(cr, x0 + M, snap(y0 + k * cell));
  }
  cairo_stroke(cr);
  set_rgb(cr, 0x888888);
  cairo_rectangle(cr, x0 - 0.5, y0 - 0.5, M + 1, M + 1);
  cairo_stroke(cr);

  /* Class names: rows right-aligned at the left, columns under the matrix. */
  font(cr, label_size, 0);
  set_rgb(cr, INK);
  for (int k = 0; k < C; k++) {
    text_at(cr, x0 - 9, y0 + (k + 0.5) * cell, names[k], 1, VA_CENTER);
    if (rotate)
      text_rotated(cr, x0 + (k + 0.5) * cell + label_size * 0.3, y0 + M + 8, -M_PI / 4, names[k], 1,
                   VA_TOP);
    else
      text_at(cr, x0 + (k + 0.5) * cell, y0 + M + 8, names[k], 0.5, VA_TOP);
  }
  font(cr, 13, 1);
  text_at(cr, x0 + M / 2, y0 + M + 10 + xlab_h + 14, "predicted class", 0.5, VA_TOP);
  text_rotated(cr, 16 + 10, y0 + M / 2, -M_PI / 2, "true class", 0.5, VA_CENTER);

  /* Colour bar: 0 at the bottom, 1 at the top. */
  const double bx = x0 + M + bar_gap;
  cairo_pattern_t *grad = cairo_pattern_create_linear(0, y0 + M, 0, y0);
  for (int i = 0; i < 9; i++) {
    double rgb[3];
    blues(i / 8.0, rgb);
    cairo_pattern_add_color_stop_rgb(grad, i / 8.0, rgb[0], rgb[1], rgb[2]);
  }
  cairo_set_source(cr, grad);
  cairo_rectangle(cr, bx, y0, bar_w, M);
  cairo_fill(cr);
  cairo_pattern_destroy(grad);
  set_rgb(cr, 0x888888);
  cairo_rectangle(cr, bx - 0.5, y0 - 0.5, bar_w + 1, M + 1);
  cairo_stroke(cr);
  font(cr, 12, 0);
  static const char *const bar_ticks[5] = {"0", "0.25", "0.5", "0.75", "1"};
  for (int i = 0; i < 5; i++) {
    double ty = y0 + M - i * 0.25 * M;
    set_rgb(cr, AXIS);
    cairo_move_to(cr, bx + bar_w, snap(ty));
    cairo_line_to(cr, bx + bar_w + 5, snap(ty));
    cairo_stroke(cr);
    set_rgb(cr, INK);
    text_at(cr, bx + bar_w + 8, ty, bar_ticks[i], 0, VA_CENTER);
  }
  font(cr, 12, 0);
  set_rgb(cr, MUTED);
  text_rotated(cr, bx + bar_w + 8 + 34 + 14, y0 + M / 2, -M_PI / 2, "share of the true class (row)",
               0.5, VA_CENTER);

  for (int k = 0; k < C; k++) free(names[k]);
  free(names);
  mf_status s = finish_canvas(cr, surface, "confusion matrix", out);
  if (s == MF_OK && geometry) {
    memset(geometry, 0, sizeof *geometry);
    geometry->n = 1;
    geometry->area[0] = (mf_plot_rect){x0, y0, M, M};
    geometry->x0[0] = 0, geometry->x1[0] = C;
    geometry->y0[0] = C, geometry->y1[0] = 0;
  }
  return s;
}
