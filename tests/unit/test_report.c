/* Plots (PNG bytes cairo reads back; pixels where the data says they should be), the run
 * report (files written, values and images in the HTML, nothing fetched from a network) and
 * the comparison of runs (mean and sample std per group, paired tests that equal the
 * metrics functions on the same predictions, pairs skipped when the test rows differ).
 *
 * Run folders are written by hand in a temporary folder, in the layout train.c writes.
 */
#define _GNU_SOURCE
#include <cairo.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "melforge/metrics.h"
#include "melforge/plot.h"
#include "melforge/report.h"
#include "melforge/rng.h"
#include "mftest.h"

/* ---- helpers --------------------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

static char *temp_dir(void) {
  char *d = strdup("/tmp/mf_test_report.XXXXXX");
  if (!mkdtemp(d)) {
    free(d);
    return NULL;
  }
  return d;
}

static void remove_tree(char *dir) {
  if (dir) nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(dir);
}

static char *path_of(const char *dir, const char *name) {
  char *p;
  if (asprintf(&p, "%s/%s", dir, name) < 0) return NULL;
  return p;
}

static void write_file(const char *dir, const char *name, const char *text) {
  char *p = path_of(dir, name);
  FILE *f = fopen(p, "w");
  EXPECT(f != NULL, "cannot write %s", p);
  if (f) {
    fputs(text, f);
    fclose(f);
  }
  free(p);
}

static char *read_all(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  size_t got = fread(b, 1, (size_t)n, f);
  fclose(f);
  b[got] = '\0';
  if (size) *size = got;
  return b;
}

static void mkdir_p(const char *path) {
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      mkdir(buf, 0777);
      *p = '/';
    }
  mkdir(buf, 0777);
}

typedef struct {
  const unsigned char *p;
  size_t n, at;
} png_reader;

static cairo_status_t read_png(void *closure, unsigned char *data, unsigned int len) {
  png_reader *r = closure;
  if (r->at + len > r->n) return CAIRO_STATUS_READ_ERROR;
  memcpy(data, r->p + r->at, len);
  r->at += len;
  return CAIRO_STATUS_SUCCESS;
}

/* Decodes PNG bytes with cairo's own reader (NULL if they are not a valid PNG). */
static cairo_surface_t *decode(const mf_png *png) {
  png_reader r = {png->data, png->size, 0};
  cairo_surface_t *s = cairo_image_surface_create_from_png_stream(read_png, &r);
  if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
    cairo_surface_destroy(s);
    return NULL;
  }
  return s;
}

static uint32_t pixel(cairo_surface_t *s, int x, int y) {
  const unsigned char *d = cairo_image_surface_get_data(s);
  return *(const uint32_t *)(d + (size_t)y * (size_t)cairo_image_surface_get_stride(s) +
                             (size_t)x * 4) &
         0xFFFFFFu;
}

static int color_dist(uint32_t a, uint32_t b) {
  int d = 0;
  for (int sh = 0; sh <= 16; sh += 8) d += abs((int)((a >> sh) & 255) - (int)((b >> sh) & 255));
  return d;
}

/* Whether a pixel of colour c (within tol) lies within r pixels of (x, y). */
static int color_near(cairo_surface_t *s, double x, double y, int r, uint32_t c, int tol) {
  for (int dy = -r; dy <= r; dy++)
    for (int dx = -r; dx <= r; dx++) {
      int px = (int)x + dx, py = (int)y + dy;
      if (px < 0 || py < 0 || px >= cairo_image_surface_get_width(s) ||
          py >= cairo_image_surface_get_height(s))
        continue;
      if (color_dist(pixel(s, px, py), c) <= tol) return 1;
    }
  return 0;
}

static double lum(uint32_t c) {
  return (0.2126 * ((c >> 16) & 255) + 0.7152 * ((c >> 8) & 255) + 0.0722 * (c & 255)) / 255.0;
}

/* ---- line charts ------------------------------------------------------------------------------
 */

#define LINE_COLOR 0x0072B2u

static mf_status one_line_chart(const double *x, const double *y, int n, double marker, mf_png *png,
                                mf_plot_geometry *g) {
  mf_plot_line line = {x, y, n, LINE_COLOR, 3, 0, 0};
  mf_plot_panel panel = {"Loss", "epoch", "loss", &line, 1, 1, marker, "best epoch 2"};
  mf_plot_figure fig = {640, 400, NULL, NULL, &panel, 1, NULL, 0};
  return mf_plot_lines(&fig, png, g);
}

TEST(test_line_chart_png_decodes_at_the_figure_size) {
  const double x[3] = {1, 2, 3}, y[3] = {0.5, 0.25, 0.75};
  mf_plot_line lines[2] = {{x, y, 3, 0x0072B2, 2, 0, 1}, {x, y, 3, 0xD55E00, 2, 1, 0}};
  mf_plot_panel panels[2] = {{"Loss", "epoch", "loss", lines, 2, 1, NAN, NULL},
                             {"Accuracy", "epoch", "accuracy", lines, 1, 1, 2, "best"}};
  mf_plot_legend legend[2] = {{"train", 0x0072B2, 0}, {"val", 0xD55E00, 1}};
  mf_plot_figure fig = {900, 420, "title", "subtitle", panels, 2, legend, 2};
  mf_png png;
  EXPECT(mf_plot_lines(&fig, &png, NULL) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(png.width, 900);
  EXPECT_EQ_INT(png.height, 420);
  EXPECT(png.size > 8 && !memcmp(png.data, "\x89PNG\r\n\x1a\n", 8), "no PNG signature");
  cairo_surface_t *s = decode(&png);
  EXPECT(s != NULL, "cairo cannot read the PNG back");
  if (s) {
    EXPECT_EQ_INT(cairo_image_surface_get_width(s), 900);
    EXPECT_EQ_INT(cairo_image_surface_get_height(s), 420);
    cairo_surface_destroy(s);
  }
  /* The same bytes through a file. */
  char *dir = temp_dir(), *file = path_of(dir, "chart.png");
  EXPECT(mf_png_write(&png, file) == MF_OK, "%s", mf_error());
  cairo_surface_t *f = cairo_image_surface_create_from_png(file);
  EXPECT(cairo_surface_status(f) == CAIRO_STATUS_SUCCESS, "the written file does not decode");
  EXPECT_EQ_INT(cairo_image_surface_get_width(f), 900);
  cairo_surface_destroy(f);
  free(file);
  remove_tree(dir);
  mf_png_free(&png);
}

TEST(test_line_chart_draws_each_point_where_the_axes_put_it) {
  const double x[5] = {1, 2, 3, 4, 5}, y[5] = {0.0, 1.0, 0.5, 0.8, 0.2};
  mf_png png;
  mf_plot_geometry g;
  EXPECT(one_line_chart(x, y, 5, NAN, &png, &g) == MF_OK, "%s", mf_error());
  cairo_surface_t *s = decode(&png);
  EXPECT(s != NULL, "PNG does not decode");
  if (!s) return;
  EXPECT_EQ_INT(g.n, 1);
  const mf_plot_rect a = g.area[0];
  EXPECT(a.x > 30 && a.y > 10 && a.x + a.w < 640 && a.y + a.h < 400 && a.w > 400 && a.h > 200,
         "plot area %g,%g %gx%g is not inside the image with room for the axes", a.x, a.y, a.w,
         a.h);
  /* The data fit inside the axis ranges, with a margin. */
  EXPECT(g.x0[0] < 1 && g.x1[0] > 5 && g.y0[0] < 0 && g.y1[0] > 1, "ranges do not hold the data");
  for (int i = 0; i < 5; i++) {
    double px = a.x + (x[i] - g.x0[0]) / (g.x1[0] - g.x0[0]) * a.w;
    double py = a.y + a.h - (y[i] - g.y0[0]) / (g.y1[0] - g.y0[0]) * a.h;
    EXPECT(color_near(s, px, py, 2, LINE_COLOR, 30), "no line at point %d (pixel %.0f, %.0f)", i,
           px, py);
  }
  /* Nothing of the line's colour outside the plot area (there is no legend). */
  int outside = 0, inside = 0;
  for (int py = 0; py < png.height; py++)
    for (int px = 0; px < png.width; px++) {
      if (color_dist(pixel(s, px, py), LINE_COLOR) > 30) continue;
      if (px >= a.x - 1 && px <= a.x + a.w + 1 && py >= a.y - 1 && py <= a.y + a.h + 1)
        inside++;
      else
        outside++;
    }
  EXPECT(inside > 400, "only %d line pixels in the plot area", inside);
  EXPECT_EQ_INT(outside, 0);
  cairo_surface_destroy(s);
  mf_png_free(&png);
}

TEST(test_line_chart_leaves_a_gap_at_missing_values) {
  const double x[6] = {1, 2, 3, 4, 5, 6}, y[6] = {0.2, 0.4, NAN, NAN, 0.6, 0.8};
  mf_png png;
  mf_plot_geometry g;
  EXPECT(one_line_chart(x, y, 6, NAN, &png, &g) == MF_OK, "%s", mf_error());
  cairo_surface_t *s = decode(&png);
  if (!s) return;
  const mf_plot_rect a = g.area[0];
  int column[3] = {0, 0, 0};
  const double at[3] = {1.5, 3.5, 5.5};
  for (int k = 0; k < 3; k++) {
    int px = (int)(a.x + (at[k] - g.x0[0]) / (g.x1[0] - g.x0[0]) * a.w);
    for (int py = (int)a.y; py < a.y + a.h; py++)
      column[k] += color_dist(pixel(s, px, py), LINE_COLOR) <= 60;
  }
  EXPECT(column[0] > 0, "no line between epochs 1 and 2");
  EXPECT_EQ_INT(column[1], 0);
  EXPECT(column[2] > 0, "no line between epochs 5 and 6");
  cairo_surface_destroy(s);
  mf_png_free(&png);
}

TEST(test_line_chart_marks_the_best_epoch_with_a_dashed_line) {
  const double x[4] = {1, 2, 3, 4}, y[4] = {0.9, 0.1, 0.9, 0.1};
  mf_png png;
  mf_plot_geometry g;
  EXPECT(one_line_chart(x, y, 4, 3, &png, &g) == MF_OK, "%s", mf_error());
  cairo_surface_t *s = decode(&png);
  if (!s) return;
  const mf_plot_rect a = g.area[0];
  int px = (int)(a.x + (3 - g.x0[0]) / (g.x1[0] - g.x0[0]) * a.w), grey = 0, gaps = 0;
  for (int py = (int)a.y + 30; py < a.y + a.h - 30; py++) {
    if (color_near(s, px, py, 1, 0x666666, 40))
      grey++;
    else
      gaps++;
  }
  /* Dashes of 5 pixels with gaps of 4 (the line passes the column too). */
  EXPECT(grey > 0.3 * (a.h - 60), "only %d grey pixels down the marker column", grey);
  EXPECT(gaps > 0.2 * (a.h - 60), "the marker is not dashed (%d gaps)", gaps);
  cairo_surface_destroy(s);
  mf_png_free(&png);
}

TEST(test_line_chart_rejects_a_figure_it_cannot_draw) {
  mf_png png;
  mf_plot_figure none = {640, 400, NULL, NULL, NULL, 0, NULL, 0};
  EXPECT(mf_plot_lines(&none, &png, NULL) == MF_EINVAL, "no panels accepted");
  EXPECT(strstr(mf_error(), "panels") != NULL, "message: %s", mf_error());
  mf_plot_line line = {NULL, NULL, 3, 0, 0, 0, 0};
  mf_plot_panel panel = {"t", "x", "y", &line, 1, 0, NAN, NULL};
  mf_plot_figure fig = {640, 400, NULL, NULL, &panel, 1, NULL, 0};
  EXPECT(mf_plot_lines(&fig, &png, NULL) == MF_EINVAL, "points without data accepted");
  fig.width = 20;
  line.n = 0;
  EXPECT(mf_plot_lines(&fig, &png, NULL) == MF_EINVAL, "a 20-pixel-wide figure accepted");
  EXPECT(png.data == NULL, "output left set after a failure");
}

/* ---- confusion matrices ---------------------------------------------------------------------- */

/* Colour of cell (r, c), read near its top-left corner, away from the centred count. */
static uint32_t cell_color(cairo_surface_t *s, const mf_plot_geometry *g, int C, int r, int c) {
  const double cell = g->area[0].w / C;
  return pixel(s, (int)(g->area[0].x + c * cell + 4), (int)(g->area[0].y + r * cell + 4));
}

TEST(test_confusion_diagonal_is_darker_than_every_off_diagonal_cell) {
  const int64_t m[16] = {20, 3, 1, 0, 2, 18, 4, 1, 0, 2, 25, 3, 1, 0, 5, 15};
  char *names[4] = {"blues", "classical", "jazz", "rock"};
  mf_png png;
  mf_plot_geometry g;
  EXPECT(mf_plot_confusion(m, 4, names, "Test confusion matrix", "sub", &png, &g) == MF_OK, "%s",
         mf_error());
  cairo_surface_t *s = decode(&png);
  EXPECT(s != NULL, "PNG does not decode");
  if (!s) return;
  EXPECT_EQ_INT(cairo_image_surface_get_width(s), png.width);
  EXPECT_NEAR(g.area[0].w, g.area[0].h, 0);
  double darkest_off = 1, lightest_diag = 0;
  for (int r = 0; r < 4; r++)
    for (int c = 0; c < 4; c++) {
      double l = lum(cell_color(s, &g, 4, r, c));
      if (r == c && l > lightest_diag) lightest_diag = l;
      if (r != c && l < darkest_off) darkest_off = l;
    }
  EXPECT(lightest_diag < darkest_off - 0.2,
         "lightest diagonal cell (luminance %.3f) not clearly darker than the darkest "
         "off-diagonal one (%.3f)",
         lightest_diag, darkest_off);
  cairo_surface_destroy(s);
  mf_png_free(&png);
}

TEST(test_confusion_colours_are_normalised_by_row) {
  /* Rows of very different sizes with the same shares get the same colours. */
  const int64_t m[9] = {5, 5, 0, 500, 500, 0, 0, 1, 9};
  mf_png png;
  mf_plot_geometry g;
  EXPECT(mf_plot_confusion(m, 3, NULL, "t", NULL, &png, &g) == MF_OK, "%s", mf_error());
  cairo_surface_t *s = decode(&png);
  if (!s) return;
  EXPECT(color_dist(cell_color(s, &g, 3, 0, 0), cell_color(s, &g, 3, 1, 0)) <= 3,
         "5 of 10 and 500 of 1000 differ in colour");
  EXPECT(color_dist(cell_color(s, &g, 3, 0, 1), cell_color(s, &g, 3, 1, 1)) <= 3,
         "5 of 10 and 500 of 1000 differ in colour");
  EXPECT(lum(cell_color(s, &g, 3, 2, 2)) < lum(cell_color(s, &g, 3, 0, 0)) - 0.1,
         "a 90%% cell is not darker than a 50%% cell");
  cairo_surface_destroy(s);
  mf_png_free(&png);
}

TEST(test_confusion_counts_contrast_with_their_cell) {
  const int64_t m[4] = {88, 0, 8, 8};
  mf_png png;
  mf_plot_geometry g;
  EXPECT(mf_plot_confusion(m, 2, NULL, "t", NULL, &png, &g) == MF_OK, "%s", mf_error());
  cairo_surface_t *s = decode(&png);
  if (!s) return;
  const double cell = g.area[0].w / 2;
  /* Around the centre of the dark cell (0, 0) the digits are light; of the light cell (1, 0)
   * (a share of 0.5 is mid-blue) the text must differ strongly from the background too. */
  for (int k = 0; k < 2; k++) {
    const int r = k, c = 0;
    const double cx = g.area[0].x + (c + 0.5) * cell, cy = g.area[0].y + (r + 0.5) * cell;
    const double bg = lum(cell_color(s, &g, 2, r, c));
    double far = 0;
    for (int dy = -8; dy <= 8; dy++)
      for (int dx = -12; dx <= 12; dx++) {
        double d = fabs(lum(pixel(s, (int)cx + dx, (int)cy + dy)) - bg);
        if (d > far) far = d;
      }
    EXPECT(far > 0.5, "cell (%d, %d): text differs from its background by %.2f in luminance", r, c,
           far);
  }
  cairo_surface_destroy(s);
  mf_png_free(&png);
}

TEST(test_confusion_image_grows_with_the_classes_and_takes_any_names) {
  int64_t m[144] = {0};
  for (int i = 0; i < 12; i++) m[i * 12 + i] = 10;
  char *names[12] = {"blues",
                     "classical",
                     "country",
                     "disco",
                     "hiphop",
                     "jazz",
                     "metal",
                     "pop",
                     "reggae",
                     "rock",
                     "a very long genre name indeed",
                     "bad \xff\xfe utf8"};
  mf_png small, big;
  mf_plot_geometry g;
  EXPECT(mf_plot_confusion(m, 2, names, "t", NULL, &small, NULL) == MF_OK, "%s", mf_error());
  EXPECT(mf_plot_confusion(m, 12, names, "t", "s", &big, &g) == MF_OK, "%s", mf_error());
  EXPECT(big.width > small.width && big.height > small.height, "%dx%d vs %dx%d", big.width,
         big.height, small.width, small.height);
  EXPECT(g.area[0].w >= 12 * 22, "cells smaller than 22 pixels");
  cairo_surface_t *s = decode(&big);
  EXPECT(s != NULL, "PNG with long and invalid names does not decode");
  if (s) cairo_surface_destroy(s);
  mf_png_free(&small);
  mf_png_free(&big);
  const int64_t neg[4] = {1, -1, 0, 1};
  EXPECT(mf_plot_confusion(neg, 2, NULL, "t", NULL, &small, NULL) == MF_EINVAL,
         "negative count accepted");
}

/* ---- run folders ------------------------------------------------------------------------------
 */

typedef struct fake {
  const char *experiment, *model, *dataset;
  unsigned seed;
  double accuracy, track, f1, seconds;
  long params;
} fake;

static const char *CLASSES[3] = {"blues", "jazz", "rock"};

static void write_summary(const char *dir, const fake *f, const char *class0) {
  char track[32];
  if (isnan(f->track))
    snprintf(track, sizeof track, "null");
  else
    snprintf(track, sizeof track, "%.10g", f->track);
  char *text;
  int n = asprintf(
      &text,
      "{\"experiment\": \"%s\", \"seed\": %u, \"model\": \"%s\",\n"
      " \"model_params\": {\"hidden\": [64, 32], \"dropout\": [0.2]},\n"
      " \"params_count\": %ld, \"dataset\": \"%s\", \"classes\": [\"%s\", \"jazz\", \"rock\"],\n"
      " \"split\": {\"train\": {\"segments\": 60, \"tracks\": 20}, \"val\": {\"segments\": 12, "
      "\"tracks\": 4}, \"test\": {\"segments\": 30, \"tracks\": 10}, \"grouped_by_track\": true},\n"
      " \"epochs_run\": 4, \"best_epoch\": 3, \"monitor\": \"val_accuracy\", \"stopped_early\": "
      "false, \"evaluated_weights\": \"best\", \"train_seconds\": %.10g, \"threads\": 2,\n"
      " \"test\": {\"accuracy\": %.10g, \"loss\": 0.61234, \"top_k\": 2, \"top_k_accuracy\": "
      "0.9667, \"macro_precision\": 0.7771, \"macro_recall\": 0.7666, \"macro_f1\": %.10g, "
      "\"weighted_precision\": 0.7772, \"weighted_recall\": 0.7667, \"weighted_f1\": 0.7561, "
      "\"track_accuracy\": %s, \"n\": 30, \"n_tracks\": 10,\n"
      "  \"confusion\": [[8, 1, 1], [2, 6, 2], [0, 1, 9]],\n"
      "  \"per_class\": {\"%s\": {\"precision\": 0.8123, \"recall\": 0.8, \"f1\": 0.8061, "
      "\"support\": 10}, \"jazz\": {\"precision\": 0.75, \"recall\": 0.6, \"f1\": 0.6667, "
      "\"support\": 10}, \"rock\": {\"precision\": 0.75, \"recall\": 0.9, \"f1\": 0.8182, "
      "\"support\": 10}}},\n"
      " \"val\": {\"accuracy\": 0.5833, \"loss\": 0.9, \"top_k\": 2, \"top_k_accuracy\": 1.0, "
      "\"macro_f1\": 0.55, \"track_accuracy\": 0.75, \"n\": 12, \"n_tracks\": 4, "
      "\"confusion\": [[3, 1, 0], [1, 2, 1], [0, 2, 2]], \"per_class\": {}}}\n",
      f->experiment, f->seed, f->model, f->params, f->dataset, class0, f->seconds, f->accuracy,
      f->f1, track, class0);
  EXPECT(n > 0, "asprintf");
  write_file(dir, "summary.json", text);
  free(text);
}

static const char *METRICS_CSV =
    "epoch,lr,train_loss,train_accuracy,val_loss,val_accuracy,val_macro_f1,val_track_accuracy,"
    "seconds,best\n"
    "1,0.001,1.1,0.4,1.0,0.5,0.4,0.5,0.1,1\n"
    "2,0.001,0.9,0.55,0.95,0.55,0.5,0.5,0.1,1\n"
    "3,0.001,0.7,0.7,0.9,0.6,0.55,0.75,0.1,1\n"
    "4,0.001,0.5,0.8,0.92,0.58,0.55,0.75,0.1,0\n";

/* A finished run folder at root/experiment/seed; returns its path. */
static char *make_run(const char *root, const fake *f) {
  char *dir;
  if (asprintf(&dir, "%s/%s/%u", root, f->experiment, f->seed) < 0) return NULL;
  mkdir_p(dir);
  write_summary(dir, f, CLASSES[0]);
  write_file(dir, "metrics.csv", METRICS_CSV);
  write_file(dir, "config.json", "{\n  \"name\": \"cfg-marker-42\",\n  \"epochs\": 4\n}\n");
  return dir;
}

/* test_predictions.csv: rows 100..100+n-1 (listed in reverse when reversed), label i % 3,
 * predicted right where right(i). */
static void write_predictions(const char *dir, int n, int row0, int reversed, const int *right,
                              int32_t *labels, int32_t *pred) {
  size_t cap = 64 + (size_t)n * 64, k = 0;
  char *t = malloc(cap);
  k += (size_t)snprintf(t + k, cap - k, "row,track,label,predicted,p_blues,p_jazz,p_rock\n");
  for (int j = 0; j < n; j++) {
    int i = reversed ? n - 1 - j : j;
    int label = i % 3, p = right[i] ? label : (label + 1) % 3;
    if (labels) labels[i] = label;
    if (pred) pred[i] = p;
    k += (size_t)snprintf(t + k, cap - k, "%d,%d,%d,%d,0.5,0.3,0.2\n", row0 + i, i / 3, label, p);
  }
  write_file(dir, "test_predictions.csv", t);
  free(t);
}

static int contains(const char *hay, const char *needle) { return hay && strstr(hay, needle); }

static int count_of(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; p && (p = strstr(p, needle)); p += strlen(needle)) n++;
  return n;
}

/* Decodes the base64 after the k-th data URI in html (malloc'd bytes). */
static unsigned char *data_uri(const char *html, int k, size_t *n) {
  const char *p = html;
  for (int i = 0; i <= k; i++) {
    p = strstr(p, "data:image/png;base64,");
    if (!p) return NULL;
    p += strlen("data:image/png;base64,");
  }
  size_t len = strcspn(p, "\"");
  unsigned char *out = malloc(len);
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < len && p[i] != '='; i++) {
    const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *q = strchr(a, p[i]);
    if (!q) {
      free(out);
      return NULL;
    }
    acc = acc << 6 | (uint32_t)(q - a);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (unsigned char)(acc >> bits);
    }
  }
  *n = o;
  return out;
}

/* ---- the run report ---------------------------------------------------------------------------
 */

TEST(test_run_report_writes_both_plots_and_a_self_contained_page) {
  char *root = temp_dir();
  fake f = {"tiny", "mlp", "data/tiny.h5", 7, 23.0 / 30, 0.8, 0.7637, 12.5, 12345};
  char *dir = make_run(root, &f);
  EXPECT(mf_report_run(dir, NULL) == MF_OK, "%s", mf_error());

  char *curves = path_of(dir, "curves.png"), *conf = path_of(dir, "confusion.png");
  cairo_surface_t *c = cairo_image_surface_create_from_png(curves);
  EXPECT(cairo_surface_status(c) == CAIRO_STATUS_SUCCESS, "curves.png does not decode");
  EXPECT_EQ_INT(cairo_image_surface_get_width(c), 1200);
  EXPECT_EQ_INT(cairo_image_surface_get_height(c), 480);
  cairo_surface_destroy(c);
  cairo_surface_t *m = cairo_image_surface_create_from_png(conf);
  EXPECT(cairo_surface_status(m) == CAIRO_STATUS_SUCCESS, "confusion.png does not decode");
  EXPECT(cairo_image_surface_get_width(m) > 200, "confusion.png is %d pixels wide",
         cairo_image_surface_get_width(m));
  cairo_surface_destroy(m);

  char *page = path_of(dir, "report.html");
  char *html = read_all(page, NULL);
  EXPECT(html != NULL, "no report.html");
  EXPECT(contains(html, "<!doctype html>") && contains(html, "</html>"), "not a whole page");
  /* Values as the tables print them. */
  EXPECT(contains(html, "0.767"), "test accuracy 23/30 missing");
  EXPECT(contains(html, "0.764"), "macro F1 missing");
  EXPECT(contains(html, "0.800"), "track accuracy missing");
  EXPECT(contains(html, "0.967"), "top-k accuracy missing");
  EXPECT(contains(html, "top-2 accuracy"), "top-k label missing");
  EXPECT(contains(html, "0.812"), "per-class precision of blues missing");
  EXPECT(contains(html, "macro avg") && contains(html, "weighted avg"), "averages missing");
  EXPECT(contains(html, "12,345"), "parameter count missing");
  EXPECT(contains(html, "12.5 s"), "training time missing");
  EXPECT(contains(html, "data/tiny.h5"), "dataset missing");
  EXPECT(contains(html, "train 60 / 20"), "split sizes missing");
  EXPECT(contains(html, "cfg-marker-42") && contains(html, "<details>"),
         "configuration not in a collapsed section");
  /* Self-contained: both images inline, nothing from a network. */
  EXPECT_EQ_INT(count_of(html, "src=\"data:image/png;base64,"), 2);
  EXPECT(!contains(html, "http://") && !contains(html, "https://"), "a network reference");
  EXPECT(!contains(html, "src=\"curves.png") && !contains(html, "<link"), "an external file");
  /* The embedded image is the file's bytes. */
  size_t n_file = 0, n_uri = 0;
  char *file = read_all(curves, &n_file);
  unsigned char *uri = data_uri(html, 0, &n_uri);
  EXPECT(uri && n_uri == n_file && !memcmp(uri, file, n_file),
         "the first data URI is not curves.png (%zu vs %zu bytes)", n_uri, n_file);
  free(uri);
  free(file);
  free(html);
  free(page);
  free(curves);
  free(conf);
  free(dir);
  remove_tree(root);
}

TEST(test_run_report_escapes_names_and_goes_where_asked) {
  char *root = temp_dir();
  fake f = {"x<script>", "mlp", "a&b.h5", 1, 0.5, 0.5, 0.5, 1, 10};
  char *dir;
  EXPECT(asprintf(&dir, "%s/run", root) > 0, "asprintf");
  mkdir_p(dir);
  write_summary(dir, &f, "<b>blues</b>");
  char *out = path_of(root, "elsewhere.html");
  EXPECT(mf_report_run(dir, out) == MF_OK, "%s", mf_error());
  char *html = read_all(out, NULL);
  EXPECT(html != NULL, "report not written to the path given");
  EXPECT(!contains(html, "<script>") && contains(html, "x&lt;script&gt;"), "title not escaped");
  EXPECT(!contains(html, "<b>blues") && contains(html, "&lt;b&gt;blues"), "class not escaped");
  EXPECT(contains(html, "a&amp;b.h5"), "dataset not escaped");
  /* No metrics.csv: the page says so instead of failing. */
  EXPECT(contains(html, "No curves") && contains(html, "metrics.csv"), "no note on the curves");
  EXPECT_EQ_INT(count_of(html, "data:image/png;base64,"), 1);
  free(html);
  free(out);
  free(dir);
  remove_tree(root);
}

TEST(test_run_report_needs_a_summary) {
  char *root = temp_dir();
  EXPECT(mf_report_run(root, NULL) == MF_ENOTFOUND, "a folder without summary.json accepted");
  EXPECT(strstr(mf_error(), "summary.json") != NULL, "message: %s", mf_error());
  write_file(root, "summary.json", "{\"experiment\": ");
  EXPECT(mf_report_run(root, NULL) == MF_EFORMAT, "broken JSON accepted");
  remove_tree(root);
}

TEST(test_find_runs_lists_every_run_folder_below_a_root) {
  char *root = temp_dir();
  fake a = {"exp_b", "cnn", "d.h5", 2, 0.5, 0.5, 0.5, 1, 1};
  fake b = {"exp_a", "mlp", "d.h5", 1, 0.5, 0.5, 0.5, 1, 1};
  fake c = {"exp_a", "mlp", "d.h5", 3, 0.5, 0.5, 0.5, 1, 1};
  free(make_run(root, &a));
  free(make_run(root, &b));
  char *third = make_run(root, &c);
  char *empty = path_of(root, "exp_c/9");
  mkdir_p(empty);
  char **dirs;
  int n;
  EXPECT(mf_report_find_runs(root, &dirs, &n) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(n, 3);
  if (n == 3) {
    EXPECT(
        strstr(dirs[0], "/exp_a/1") && strstr(dirs[1], "/exp_a/3") && strstr(dirs[2], "/exp_b/2"),
        "runs %s %s %s", dirs[0], dirs[1], dirs[2]);
  }
  mf_report_free_dirs(dirs, n);
  EXPECT(mf_report_find_runs(third, &dirs, &n) == MF_OK && n == 1 && !strcmp(dirs[0], third),
         "a run folder is not its own single run");
  mf_report_free_dirs(dirs, n);
  EXPECT(mf_report_find_runs(empty, &dirs, &n) == MF_OK && n == 0, "runs found in an empty folder");
  mf_report_free_dirs(dirs, n);
  EXPECT(mf_report_find_runs("/nonexistent/runs", &dirs, &n) == MF_ENOTFOUND, "missing root");
  free(third);
  free(empty);
  remove_tree(root);
}

/* ---- comparisons ------------------------------------------------------------------------------
 */

/* Two models x three seeds with hand-picked results:
 *   mlp accuracies 0.5, 0.6, 0.7 -> mean 0.6, sample std 0.1
 *   cnn accuracies 0.8, 0.8, 0.9 -> mean 0.833333, sample std 0.057735
 *   cnn track accuracy null for seed 3 -> n 2, mean of 0.9 and 0.7 = 0.8, std 0.141421
 * The paired test runs on 60 shared rows with known right/wrong patterns. */
static char **comparison_fixture(char **root_out, int *n_out) {
  char *root = temp_dir();
  static const fake runs[6] = {
      {"cmp_mlp", "mlp", "mfcc.h5", 1, 0.5, 0.6, 0.45, 10, 1000},
      {"cmp_mlp", "mlp", "mfcc.h5", 2, 0.6, 0.7, 0.55, 12, 1000},
      {"cmp_mlp", "mlp", "mfcc.h5", 3, 0.7, 0.8, 0.65, 14, 1000},
      {"cmp_cnn", "cnn", "data.h5", 1, 0.8, 0.9, 0.75, 100, 50000},
      {"cmp_cnn", "cnn", "data.h5", 2, 0.8, 0.7, 0.75, 110, 50000},
      {"cmp_cnn", "cnn", "data.h5", 3, 0.9, NAN, 0.85, 120, 50000},
  };
  char **dirs = malloc(sizeof(char *) * 6);
  for (int i = 0; i < 6; i++) dirs[i] = make_run(root, &runs[i]);
  *root_out = root;
  *n_out = 6;
  return dirs;
}

/* Right/wrong patterns: A (mlp) right where i % 3 != 0, B (cnn) right where i is even. On 60
 * rows they disagree on 30 (20 only A right, 10 only B right): McNemar's chi-square branch. */
static void patterns(int *ra, int *rb, int n) {
  for (int i = 0; i < n; i++) ra[i] = i % 3 != 0, rb[i] = i % 2 == 0;
}

TEST(test_comparison_groups_runs_with_mean_and_sample_std) {
  char *root;
  int n;
  char **dirs = comparison_fixture(&root, &n);
  mf_comparison c;
  EXPECT(mf_comparison_load(dirs, n, &c) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(c.n_runs, 6);
  EXPECT_EQ_INT(c.n_groups, 2);
  if (c.n_groups == 2) {
    /* Sorted by experiment: cmp_cnn first. */
    const mf_report_group *cnn = &c.groups[0], *mlp = &c.groups[1];
    EXPECT(!strcmp(cnn->model, "cnn") && !strcmp(mlp->model, "mlp"), "groups %s, %s", cnn->model,
           mlp->model);
    EXPECT(!strcmp(mlp->label, "mlp"), "label %s (the models tell the groups apart)", mlp->label);
    EXPECT_EQ_INT(mlp->n_runs, 3);
    EXPECT_NEAR(mlp->accuracy.mean, 0.6, 1e-12);
    EXPECT_NEAR(mlp->accuracy.std, 0.1, 1e-12);
    EXPECT_NEAR(cnn->accuracy.mean, 2.5 / 3, 1e-12);
    EXPECT_NEAR(
        cnn->accuracy.std,
        sqrt(((0.8 - 2.5 / 3) * (0.8 - 2.5 / 3) * 2 + (0.9 - 2.5 / 3) * (0.9 - 2.5 / 3)) / 2),
        1e-12);
    EXPECT_EQ_INT(cnn->track_accuracy.n, 2);
    EXPECT_NEAR(cnn->track_accuracy.mean, 0.8, 1e-12);
    EXPECT_NEAR(cnn->track_accuracy.std, sqrt(0.02), 1e-12);
    EXPECT_NEAR(mlp->macro_f1.mean, 0.55, 1e-12);
    EXPECT_NEAR(mlp->train_seconds.mean, 12, 1e-12);
    EXPECT_NEAR(mlp->train_seconds.std, 2, 1e-12);
    EXPECT_NEAR(cnn->params.mean, 50000, 0);
    EXPECT_NEAR(cnn->params.std, 0, 0);
  }
  char *text = mf_comparison_text(&c);
  EXPECT(text != NULL, "no text");
  if (text) {
    EXPECT(contains(text, "0.600 \xc2\xb1 0.100"), "text lacks the mlp mean +- std:\n%s", text);
    EXPECT(contains(text, "0.833 \xc2\xb1 0.058"), "text lacks the cnn mean +- std:\n%s", text);
    EXPECT(contains(text, "50,000"), "text lacks the parameter count:\n%s", text);
  }
  free(text);
  mf_comparison_free(&c);
  for (int i = 0; i < n; i++) free(dirs[i]);
  free(dirs);
  remove_tree(root);
}

TEST(test_comparison_paired_tests_equal_the_metrics_functions) {
  char *root;
  int n;
  char **dirs = comparison_fixture(&root, &n);
  enum { ROWS = 60 };
  int ra[ROWS], rb[ROWS];
  int32_t labels[ROWS], pa[ROWS], pb[ROWS];
  patterns(ra, rb, ROWS);
  /* Seed 1: same rows, the cnn file listed in reverse (pairs go by row index, not line). */
  write_predictions(dirs[0], ROWS, 100, 0, ra, labels, pa);
  write_predictions(dirs[3], ROWS, 100, 1, rb, NULL, pb);
  /* Seed 2: different test rows. Seed 3: no predictions for the cnn run. */
  write_predictions(dirs[1], ROWS, 100, 0, ra, NULL, NULL);
  write_predictions(dirs[4], ROWS, 200, 0, rb, NULL, NULL);
  write_predictions(dirs[2], ROWS, 100, 0, ra, NULL, NULL);

  mf_comparison c;
  EXPECT(mf_comparison_load(dirs, n, &c) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(c.n_pairs, 3);
  if (c.n_pairs == 3) {
    const mf_report_pair *p1 = &c.pairs[0], *p2 = &c.pairs[1], *p3 = &c.pairs[2];
    EXPECT(p1->seed == 1 && p2->seed == 2 && p3->seed == 3, "pairs out of seed order");
    EXPECT(p1->skipped == NULL, "seed 1 skipped: %s", p1->skipped);
    /* A is the cnn group (first by experiment name). */
    mf_mcnemar mc;
    mf_bootstrap bs;
    mf_rng rng = mf_rng_stream(1, MF_REPORT_BOOTSTRAP_STREAM);
    EXPECT(mf_mcnemar_test(pb, pa, labels, ROWS, &mc) == MF_OK, "%s", mf_error());
    EXPECT(mf_bootstrap_accuracy_diff(pb, pa, labels, ROWS, MF_REPORT_BOOTSTRAP_RESAMPLES,
                                      MF_REPORT_BOOTSTRAP_ALPHA, &rng, &bs) == MF_OK,
           "%s", mf_error());
    EXPECT_EQ_INT(p1->n, ROWS);
    EXPECT_EQ_INT(p1->mcnemar.b, mc.b);
    EXPECT_EQ_INT(p1->mcnemar.c, mc.c);
    EXPECT(mc.b + mc.c >= 25 && !mc.exact, "fixture should reach the chi-square branch");
    EXPECT_NEAR(p1->mcnemar.statistic, mc.statistic, 0);
    EXPECT_NEAR(p1->mcnemar.p_value, mc.p_value, 0);
    EXPECT_NEAR(p1->bootstrap.diff, bs.diff, 0);
    EXPECT_NEAR(p1->bootstrap.lo, bs.lo, 0);
    EXPECT_NEAR(p1->bootstrap.hi, bs.hi, 0);
    EXPECT_EQ_INT(p1->bootstrap.resamples, 2000);
    int right_a = 0, right_b = 0;
    for (int i = 0; i < ROWS; i++) right_a += rb[i], right_b += ra[i];
    EXPECT_NEAR(p1->accuracy_a, right_a / (double)ROWS, 1e-12);
    EXPECT_NEAR(p1->accuracy_b, right_b / (double)ROWS, 1e-12);
    EXPECT(p2->skipped && strstr(p2->skipped, "different test rows"), "seed 2: %s",
           p2->skipped ? p2->skipped : "(compared)");
    EXPECT(p3->skipped && strstr(p3->skipped, "test_predictions.csv"), "seed 3: %s",
           p3->skipped ? p3->skipped : "(compared)");

    /* The same numbers in the text and the page. */
    char ci[64], p[32], diff[32];
    snprintf(ci, sizeof ci, "[%+.3f, %+.3f]", bs.lo, bs.hi);
    snprintf(p, sizeof p, "%.3f", mc.p_value);
    snprintf(diff, sizeof diff, "%+.3f", bs.diff);
    char *text = mf_comparison_text(&c);
    EXPECT(contains(text, ci) && contains(text, p) && contains(text, diff),
           "text lacks %s / %s / %s:\n%s", ci, p, diff, text ? text : "(none)");
    EXPECT(contains(text, "different test rows"), "text does not say why seed 2 was skipped");
    free(text);
    char *page = path_of(root, "compare.html");
    EXPECT(mf_comparison_write_html(&c, page) == MF_OK, "%s", mf_error());
    char *html = read_all(page, NULL);
    EXPECT(contains(html, ci) && contains(html, p), "page lacks %s / %s", ci, p);
    char b_c[64];
    snprintf(b_c, sizeof b_c, "<td class=\"n\">%lld</td><td class=\"n\">%lld</td>", (long long)mc.b,
             (long long)mc.c);
    EXPECT(contains(html, b_c), "page lacks McNemar's b and c (%s)", b_c);
    EXPECT(contains(html, "not compared: different test rows"), "page lacks the skipped pair");
    /* The note of seed 1 (the runs read different files) is a footnote, given once. */
    EXPECT(p1->note && strstr(p1->note, "dataset files differ"), "seed 1 note: %s",
           p1->note ? p1->note : "(none)");
    EXPECT_EQ_INT(count_of(html, "dataset files differ"), 1);
    EXPECT(contains(html, "<sup>1</sup> dataset files differ"), "note is not footnote 1");
    free(html);
    free(page);
  }
  mf_comparison_free(&c);
  for (int i = 0; i < n; i++) free(dirs[i]);
  free(dirs);
  remove_tree(root);
}

TEST(test_comparison_skips_runs_whose_labels_differ) {
  char *root;
  int n;
  char **dirs = comparison_fixture(&root, &n);
  int ra[30], rb[30];
  patterns(ra, rb, 30);
  write_predictions(dirs[0], 30, 0, 0, ra, NULL, NULL);
  write_predictions(dirs[3], 30, 0, 0, rb, NULL, NULL);
  /* Same rows, one label changed: another dataset behind the same indices. */
  char *p = path_of(dirs[3], "test_predictions.csv");
  char *t = read_all(p, NULL);
  char *line = strstr(t, "\n4,1,1,");
  EXPECT(line != NULL, "fixture line missing");
  if (line) line[5] = '2';
  write_file(dirs[3], "test_predictions.csv", t);
  mf_comparison c;
  EXPECT(mf_comparison_load(dirs, n, &c) == MF_OK, "%s", mf_error());
  EXPECT(c.n_pairs >= 1 && c.pairs[0].skipped && strstr(c.pairs[0].skipped, "label"), "seed 1: %s",
         c.n_pairs && c.pairs[0].skipped ? c.pairs[0].skipped : "(compared)");
  mf_comparison_free(&c);
  free(t);
  free(p);
  for (int i = 0; i < n; i++) free(dirs[i]);
  free(dirs);
  remove_tree(root);
}

TEST(test_comparison_page_is_self_contained_and_links_run_reports) {
  char *root;
  int n;
  char **dirs = comparison_fixture(&root, &n);
  EXPECT(mf_report_run(dirs[0], NULL) == MF_OK, "%s", mf_error());
  mf_comparison c;
  EXPECT(mf_comparison_load(dirs, n, &c) == MF_OK, "%s", mf_error());
  char *page = path_of(root, "report.html");
  EXPECT(mf_comparison_write_html(&c, page) == MF_OK, "%s", mf_error());
  char *html = read_all(page, NULL);
  EXPECT(html != NULL, "no page");
  EXPECT_EQ_INT(count_of(html, "src=\"data:image/png;base64,"), 1);
  EXPECT(!contains(html, "http://") && !contains(html, "https://"), "a network reference");
  EXPECT(contains(html, "0.600 \xc2\xb1 0.100") && contains(html, "0.833 \xc2\xb1 0.058"),
         "means and stds missing");
  EXPECT(contains(html, "No pairs") || contains(html, "not compared"),
         "pairs without predictions not explained");
  /* Links relative to the page, to reports that exist only. */
  EXPECT(contains(html, "href=\"cmp_mlp/1/report.html\""), "no link to cmp_mlp/1's report");
  EXPECT(!contains(html, "href=\"cmp_mlp/2/report.html\""), "link to a report that does not exist");
  /* The embedded curves decode at their size. */
  size_t bytes;
  unsigned char *img = data_uri(html, 0, &bytes);
  mf_png png = {img, bytes, 0, 0};
  cairo_surface_t *s = img ? decode(&png) : NULL;
  EXPECT(s && cairo_image_surface_get_width(s) == 1200, "comparison curves do not decode");
  if (s) cairo_surface_destroy(s);
  free(img);
  free(html);
  free(page);
  mf_comparison_free(&c);
  for (int i = 0; i < n; i++) free(dirs[i]);
  free(dirs);
  remove_tree(root);
}
