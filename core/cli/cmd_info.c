/* cmd_info.c — `melforge info FILE.h5`: what a dataset holds, where it came from and how its
 * rows spread over the classes. Loading it in full also checks the whole file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "melforge/dataset.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: melforge info FILE.h5\n"
          "\nprints a dataset's source, feature and its parameters, sample rate, segmenting,\n"
          "sample shape, rows and tracks, and the segments and tracks of every class\n");
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Distinct tracks per class: a track counts once for each class its rows carry. */
static int count_tracks(const mf_dataset *ds, int64_t *tracks_per_class) {
  int64_t *keys = malloc((size_t)ds->n * sizeof *keys);
  if (!keys) return -1;
  int64_t t = ds->info.n_tracks > 0 ? ds->info.n_tracks : 1;
  for (int64_t i = 0; i < ds->n; i++) keys[i] = (int64_t)ds->labels[i] * t + ds->track[i];
  qsort(keys, (size_t)ds->n, sizeof *keys, cmp_i64);
  for (int64_t i = 0; i < ds->n; i++)
    if (i == 0 || keys[i] != keys[i - 1]) tracks_per_class[keys[i] / t]++;
  free(keys);
  return 0;
}

static void human_bytes(double b, char *buf, size_t n) {
  if (b < 1024)
    snprintf(buf, n, "%.0f bytes", b);
  else if (b < 1024 * 1024)
    snprintf(buf, n, "%.1f KB", b / 1024);
  else if (b < 1024.0 * 1024 * 1024)
    snprintf(buf, n, "%.1f MB", b / (1024 * 1024));
  else
    snprintf(buf, n, "%.2f GB", b / (1024.0 * 1024 * 1024));
}

static void print_info(const char *path, const mf_dataset *ds) {
  const mf_dataset_info *in = &ds->info;
  char shape[96];
  mf_shape_str(in->sample_shape, shape, sizeof shape);
  char row_bytes[32], all_bytes[32];
  human_bytes((double)ds->row_size * sizeof(float), row_bytes, sizeof row_bytes);
  human_bytes((double)ds->row_size * sizeof(float) * (double)ds->n, all_bytes, sizeof all_bytes);
  printf("%s\n", path);
  printf("  source        %s\n", in->source[0] ? in->source : "(not recorded)");
  printf("  feature       %s %s\n", in->feature[0] ? in->feature : "(not recorded)",
         in->feature_params);
  if (in->sample_rate > 0)
    printf("  sample rate   %g Hz\n", in->sample_rate);
  else
    printf("  sample rate   (not recorded)\n");
  printf("  segmenting    %s\n", in->segmenting);
  printf("  sample shape  %s (%lld floats, %s per row)\n", shape, (long long)ds->row_size,
         row_bytes);
  printf("  rows          %lld (%s of features)\n", (long long)ds->n, all_bytes);
  printf("  tracks        %d", in->n_tracks);
  if (in->n_tracks > 0) printf(" (%.1f rows per track)", (double)ds->n / in->n_tracks);
  printf("\n");
  /* Imports from formats without track ids mark every row as its own track. */
  if (strstr(in->segmenting, "\"grouped_by_track\": false"))
    printf(
        "  note          no track ids in the source: every row is its own track, so splits "
        "cannot be grouped by track\n");

  int c = in->n_classes;
  int64_t *rows = calloc((size_t)c, sizeof *rows), *tracks = calloc((size_t)c, sizeof *tracks);
  if (!rows || !tracks || count_tracks(ds, tracks)) {
    free(rows);
    free(tracks);
    printf("  (out of memory counting the classes)\n");
    return;
  }
  for (int64_t i = 0; i < ds->n; i++) rows[ds->labels[i]]++;
  int w = 5;
  for (int k = 0; k < c; k++)
    if ((int)strlen(in->classes[k]) > w) w = (int)strlen(in->classes[k]);
  int64_t total_tracks = 0;
  printf("\n  %-*s  %10s  %8s  %6s\n", w, "class", "segments", "tracks", "share");
  for (int k = 0; k < c; k++) {
    printf("  %-*s  %10lld  %8lld  %5.1f%%\n", w, in->classes[k], (long long)rows[k],
           (long long)tracks[k], 100.0 * (double)rows[k] / (double)ds->n);
    total_tracks += tracks[k];
  }
  printf("  %-*s  %10lld  %8lld  %5.1f%%\n", w, "total", (long long)ds->n, (long long)total_tracks,
         100.0);
  free(rows);
  free(tracks);
}

int cmd_info(int argc, char **argv) {
  cli_common common;
  int rc = cli_common_options(&argc, argv, &common);
  if (rc) return rc;
  if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    usage(stdout);
    return MF_EXIT_OK;
  }
  if (argc != 2 || argv[1][0] == '-') {
    if (argc >= 2 && argv[1][0] == '-') cli_error("info", "unknown option '%s'", argv[1]);
    usage(stderr);
    return MF_EXIT_USAGE;
  }
  mf_dataset *ds;
  if (mf_dataset_load(argv[1], &ds)) {
    cli_error("info", "%s", mf_error());
    return MF_EXIT_FAIL;
  }
  print_info(argv[1], ds);
  mf_dataset_free(ds);
  return MF_EXIT_OK;
}
