/* melforge/plot.h — PNG charts drawn with cairo: line charts in side-by-side panels
 * (training curves, runs overlaid for a comparison) and confusion-matrix heatmaps.
 *
 * A chart is rendered into memory (mf_png, freed with mf_png_free); mf_png_write stores it
 * atomically, and report.html embeds the same bytes as a data URI. Text uses cairo's toy
 * font API with "DejaVu Sans" (Debian: fonts-dejavu-core). Line colours come from the
 * Okabe-Ito palette, the heatmap from a single-hue blue ramp (light = few, dark = many):
 * both stay readable with the common colour-vision deficiencies and in grey-scale print.
 *
 * The optional mf_plot_geometry output tells where the data landed in the image (plot
 * areas and their data ranges, the matrix cells) so callers and tests can map values to
 * pixels.
 */
#ifndef MELFORGE_PLOT_H
#define MELFORGE_PLOT_H

#include <stddef.h>
#include <stdint.h>

#include "melforge/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An encoded PNG image. */
typedef struct mf_png {
  unsigned char *data;
  size_t size;
  int width, height;
} mf_png;

void mf_png_free(mf_png *png);
/* Writes the bytes to path atomically (temporary file, fsync, rename). */
mf_status mf_png_write(const mf_png *png, const char *path);

/* Colour i of the palette as 0xRRGGBB: blue, vermillion, bluish green, reddish purple,
 * orange, sky blue, black, yellow (Okabe & Ito), repeating after 8. */
#define MF_PLOT_PALETTE_SIZE 8
uint32_t mf_plot_color(int i);

typedef struct mf_plot_line {
  const double *x, *y; /* n points in x order; a non-finite y leaves a gap */
  int n;
  uint32_t color; /* 0xRRGGBB */
  double width;   /* stroke width in pixels; 0: 2 */
  int dashed;
  int markers; /* a dot at each point */
} mf_plot_line;

typedef struct mf_plot_panel {
  const char *title, *x_label, *y_label;
  const mf_plot_line *lines;
  int n_lines;
  int integer_x;            /* ticks on whole numbers only (epochs) */
  double marker_x;          /* a labelled vertical dashed line (the best epoch); NaN: none */
  const char *marker_label; /* e.g. "best epoch 7" */
} mf_plot_panel;

typedef struct mf_plot_legend {
  const char *label;
  uint32_t color;
  int dashed;
} mf_plot_legend;

#define MF_PLOT_MAX_PANELS 4

typedef struct mf_plot_figure {
  int width, height;    /* pixels */
  const char *title;    /* bold, centred on top */
  const char *subtitle; /* optional, under the title */
  const mf_plot_panel *panels;
  int n_panels; /* 1 to MF_PLOT_MAX_PANELS, side by side */
  const mf_plot_legend *legend;
  int n_legend; /* one legend for all panels, under the titles; 0: none */
} mf_plot_figure;

typedef struct mf_plot_rect {
  double x, y, w, h; /* pixels, from the top-left corner */
} mf_plot_rect;

typedef struct mf_plot_geometry {
  int n;                                 /* panels (1 for a confusion matrix) */
  mf_plot_rect area[MF_PLOT_MAX_PANELS]; /* plot areas; for a confusion matrix, the cells */
  double x0[MF_PLOT_MAX_PANELS], x1[MF_PLOT_MAX_PANELS]; /* data at the left / right edge */
  double y0[MF_PLOT_MAX_PANELS], y1[MF_PLOT_MAX_PANELS]; /* data at the bottom / top edge */
} mf_plot_geometry;

/* Line charts, one panel per mf_plot_panel; axis ranges follow the finite data with a
 * small margin. geometry may be NULL. */
mf_status mf_plot_lines(const mf_plot_figure *fig, mf_png *out, mf_plot_geometry *geometry);

/* Heatmap of a confusion matrix (rows = true class, columns = predicted): each cell holds
 * its count and is coloured by the row-normalised fraction (0 to 1, with a colour bar), so
 * classes of different sizes read alike. Names label both axes (x labels rotate when they
 * do not fit). The image grows with the number of classes (1 to 256). geometry may be
 * NULL; its area is the n_classes x n_classes block of cells. */
mf_status mf_plot_confusion(const int64_t *counts, int n_classes, char *const *class_names,
                            const char *title, const char *subtitle, mf_png *out,
                            mf_plot_geometry *geometry);

#ifdef __cplusplus
}
#endif
#endif
