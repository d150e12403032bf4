/* scaler.c — min-max and standard scaling, fitted on the training rows only.
 *
 * A row of shape row_shape is viewed as [outer, bands, inner] around band_axis (global
 * scaling: one band, [1, 1, row size]). Each band's statistics are summed in double over the
 * rows in the order of idx and, inside a row, in memory order; threads own disjoint ranges
 * of bands, so every sum is taken in the same order whatever the thread count. The standard
 * deviation takes two passes (mean, then squared deviations): the one-pass sum of squares
 * loses the variance of features with a large mean, such as log-mel energies.
 *
 * Applying is element-wise, (x - offset) * scale in float, so it is parallel over rows and
 * bit-identical for any thread count.
 */
#include "melforge/scaler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "internal.h"
#include "melforge/component.h"

static const char *const KIND_NAMES[] = {"none", "minmax", "standard"};

const char *mf_scaler_kind_name(mf_scaler_kind k) {
  return k >= MF_SCALER_NONE && k <= MF_SCALER_STANDARD ? KIND_NAMES[k] : "unknown";
}

mf_status mf_scaler_kind_parse(const char *name, mf_scaler_kind *out) {
  if (!name) {
    *out = MF_SCALER_NONE;
    return MF_OK;
  }
  for (int k = 0; k < 3; k++)
    if (strcasecmp(name, KIND_NAMES[k]) == 0) {
      *out = (mf_scaler_kind)k;
      return MF_OK;
    }
  const char *hint = mf_closest_name(name, KIND_NAMES, 3);
  if (hint)
    return mf_set_error(MF_EINVAL,
                        "unknown scaler '%s'; did you mean '%s'? (accepted: minmax, "
                        "standard, none)",
                        name, hint);
  return mf_set_error(MF_EINVAL, "unknown scaler '%s' (accepted: minmax, standard, none)", name);
}

void mf_scaler_clear(mf_scaler *s) {
  if (!s) return;
  free(s->offset);
  free(s->scale);
  memset(s, 0, sizeof *s);
}

/* [outer, bands, inner] view of a row. */
typedef struct layout {
  int64_t outer, bands, inner, row_size;
} layout;

static mf_status make_layout(const char *who, int per_band, int *band_axis, mf_shape row_shape,
                             layout *L) {
  char buf[96];
  if (row_shape.ndim < 1 || row_shape.ndim > MF_MAX_DIMS)
    return mf_set_error(MF_EINVAL, "%s: a row needs 1..%d dimensions, got %d", who, MF_MAX_DIMS,
                        row_shape.ndim);
  for (int i = 0; i < row_shape.ndim; i++)
    if (row_shape.d[i] < 1)
      return mf_set_error(MF_EINVAL, "%s: row shape %s has an empty dimension", who,
                          mf_shape_str(row_shape, buf, sizeof buf));
  L->row_size = mf_shape_numel(row_shape);
  if (!per_band) {
    L->outer = 1, L->bands = 1, L->inner = L->row_size;
    return MF_OK;
  }
  int a = *band_axis;
  if (a < -row_shape.ndim || a >= row_shape.ndim)
    return mf_set_error(MF_EINVAL, "%s: band_axis = %d is outside the row shape %s (axes 0..%d)",
                        who, a, mf_shape_str(row_shape, buf, sizeof buf), row_shape.ndim - 1);
  if (a < 0) a += row_shape.ndim;
  *band_axis = a;
  L->outer = 1, L->inner = 1;
  for (int i = 0; i < a; i++) L->outer *= row_shape.d[i];
  for (int i = a + 1; i < row_shape.ndim; i++) L->inner *= row_shape.d[i];
  L->bands = row_shape.d[a];
  return MF_OK;
}

enum { PASS_MINMAX, PASS_SUM, PASS_SQDEV };

/* One pass over the fitted rows for bands [b0, b1): min/max into a/b, sums into a, or
 * squared deviations from mean into a. */
static void pass_bands(int pass, const layout *L, const float *rows, const int64_t *idx,
                       int64_t n_idx, int64_t b0, int64_t b1, const double *mean, double *a,
                       double *b) {
  const int64_t B = L->bands, inner = L->inner;
  for (int64_t r = 0; r < n_idx; r++) {
    const float *row = rows + idx[r] * L->row_size;
    for (int64_t o = 0; o < L->outer; o++) {
      const float *q = row + o * B * inner;
      for (int64_t band = b0; band < b1; band++) {
        const float *p = q + band * inner;
        if (pass == PASS_MINMAX) {
          float lo = (float)a[band], hi = (float)b[band];
          for (int64_t i = 0; i < inner; i++) {
            lo = p[i] < lo ? p[i] : lo;
            hi = p[i] > hi ? p[i] : hi;
          }
          a[band] = lo, b[band] = hi;
        } else if (pass == PASS_SUM) {
          double s = a[band];
          for (int64_t i = 0; i < inner; i++) s += p[i];
          a[band] = s;
        } else {
          double s = a[band], m = mean[band];
          for (int64_t i = 0; i < inner; i++) {
            double d = p[i] - m;
            s += d * d;
          }
          a[band] = s;
        }
      }
    }
  }
}

/* Runs a pass with the bands shared among the threads (each band summed by one thread). */
static void run_pass(int pass, const layout *L, const float *rows, const int64_t *idx,
                     int64_t n_idx, const double *mean, double *a, double *b) {
  int64_t work = n_idx * L->row_size;
  int par = L->bands > 1 && work > MF_PAR_MIN;
#pragma omp parallel if (par)
  {
    int64_t nt = 1, t = 0;
#ifdef _OPENMP
    nt = omp_get_num_threads(), t = omp_get_thread_num();
#endif
    int64_t b0 = L->bands * t / nt, b1 = L->bands * (t + 1) / nt;
    if (b1 > b0) pass_bands(pass, L, rows, idx, n_idx, b0, b1, mean, a, b);
  }
}

/* Row of the first non-finite value among the fitted rows, for the error message. */
static int64_t first_bad_row(const layout *L, const float *rows, const int64_t *idx,
                             int64_t n_idx) {
  for (int64_t r = 0; r < n_idx; r++) {
    const float *row = rows + idx[r] * L->row_size;
    for (int64_t i = 0; i < L->row_size; i++)
      if (!isfinite(row[i])) return idx[r];
  }
  return -1;
}

mf_status mf_scaler_fit(mf_scaler *s, mf_scaler_kind kind, int per_band, int band_axis,
                        mf_shape row_shape, const float *rows, const int64_t *idx, int64_t n_idx) {
  if (!s) return mf_set_error(MF_EINVAL, "mf_scaler_fit: no scaler given");
  memset(s, 0, sizeof *s);
  if (kind != MF_SCALER_NONE && kind != MF_SCALER_MINMAX && kind != MF_SCALER_STANDARD)
    return mf_set_error(MF_EINVAL, "scaler: unknown kind %d (minmax, standard or none)", (int)kind);
  layout L = {0, 0, 0, 0};
  mf_status st = make_layout("scaler", per_band, &band_axis, row_shape, &L);
  if (st != MF_OK) return st;
  if (kind != MF_SCALER_NONE && (n_idx < 1 || !rows || !idx))
    return mf_set_error(MF_EINVAL, "scaler: fitting needs at least one training row (got %lld)",
                        (long long)n_idx);
  for (int64_t r = 0; r < n_idx && kind != MF_SCALER_NONE; r++)
    if (idx[r] < 0)
      return mf_set_error(MF_EINVAL, "scaler: row index idx[%lld] = %lld is negative", (long long)r,
                          (long long)idx[r]);
  const int64_t B = L.bands;
  double *a = malloc((size_t)B * sizeof *a), *b = malloc((size_t)B * sizeof *b);
  s->offset = malloc((size_t)B * sizeof *s->offset);
  s->scale = malloc((size_t)B * sizeof *s->scale);
  if (!a || !b || !s->offset || !s->scale) {
    free(a), free(b);
    mf_scaler_clear(s);
    return mf_set_error(MF_ENOMEM, "scaler: out of memory for %lld bands", (long long)B);
  }
  s->kind = kind;
  s->per_band = per_band ? 1 : 0;
  s->band_axis = band_axis;
  s->row_shape = row_shape;
  s->n_bands = B;
  if (kind == MF_SCALER_NONE) {
    /* Identity parameters, so a checkpoint stores the same arrays for every kind. */
    for (int64_t k = 0; k < B; k++) s->offset[k] = 0.0f, s->scale[k] = 1.0f;
  } else if (kind == MF_SCALER_MINMAX) {
    for (int64_t k = 0; k < B; k++) a[k] = INFINITY, b[k] = -INFINITY;
    run_pass(PASS_MINMAX, &L, rows, idx, n_idx, NULL, a, b);
    for (int64_t k = 0; k < B; k++) {
      double range = b[k] - a[k];
      s->offset[k] = (float)a[k];
      s->scale[k] = range > 0 ? (float)(1.0 / range) : 0.0f;
    }
  } else {
    double count = (double)n_idx * (double)(L.outer * L.inner);
    for (int64_t k = 0; k < B; k++) a[k] = 0;
    run_pass(PASS_SUM, &L, rows, idx, n_idx, NULL, a, NULL);
    for (int64_t k = 0; k < B; k++) b[k] = a[k] / count, a[k] = 0;
    run_pass(PASS_SQDEV, &L, rows, idx, n_idx, b, a, NULL);
    for (int64_t k = 0; k < B; k++) {
      double sd = sqrt(a[k] / count);
      s->offset[k] = (float)b[k];
      s->scale[k] = sd > 0 ? (float)(1.0 / sd) : 0.0f;
    }
  }
  free(a), free(b);
  for (int64_t k = 0; k < B; k++)
    if (!isfinite(s->offset[k]) || !isfinite(s->scale[k])) {
      int64_t row = first_bad_row(&L, rows, idx, n_idx);
      mf_scaler_clear(s);
      if (row >= 0)
        return mf_set_error(MF_EINVAL,
                            "scaler: training row %lld holds a NaN or infinite value; fix the "
                            "features before fitting",
                            (long long)row);
      return mf_set_error(MF_EINVAL,
                          "scaler: the %s statistics of band %lld overflow float (values too "
                          "large to scale)",
                          mf_scaler_kind_name(kind), (long long)k);
    }
  return MF_OK;
}

void mf_scaler_apply(const mf_scaler *s, float *rows, int64_t n_rows) {
  if (!s || s->kind == MF_SCALER_NONE || n_rows <= 0) return;
  const int64_t row_size = mf_shape_numel(s->row_shape);
  int64_t outer = 1, inner = row_size, B = 1;
  if (s->per_band) {
    outer = 1, inner = 1, B = s->row_shape.d[s->band_axis];
    for (int i = 0; i < s->band_axis; i++) outer *= s->row_shape.d[i];
    for (int i = s->band_axis + 1; i < s->row_shape.ndim; i++) inner *= s->row_shape.d[i];
  }
  MF_CHECK(B == s->n_bands, "mf_scaler_apply: scaler has %lld bands but its row shape gives %lld",
           (long long)s->n_bands, (long long)B);
  const float *off = s->offset, *sc = s->scale;
#pragma omp parallel for schedule(static) if (n_rows * row_size > MF_PAR_MIN)
  for (int64_t r = 0; r < n_rows; r++) {
    float *row = rows + r * row_size;
    for (int64_t o = 0; o < outer; o++) {
      float *q = row + o * B * inner;
      if (inner == 1) {
        for (int64_t k = 0; k < B; k++) q[k] = (q[k] - off[k]) * sc[k];
      } else {
        for (int64_t k = 0; k < B; k++) {
          const float ok = off[k], sk = sc[k];
          float *p = q + k * inner;
          for (int64_t i = 0; i < inner; i++) p[i] = (p[i] - ok) * sk;
        }
      }
    }
  }
}

mf_status mf_scaler_restore(mf_scaler *s, mf_scaler_kind kind, int per_band, int band_axis,
                            mf_shape row_shape, const float *offset, const float *scale,
                            int64_t n_bands) {
  if (!s) return mf_set_error(MF_EINVAL, "mf_scaler_restore: no scaler given");
  memset(s, 0, sizeof *s);
  if (kind != MF_SCALER_NONE && kind != MF_SCALER_MINMAX && kind != MF_SCALER_STANDARD)
    return mf_set_error(MF_EINVAL, "saved scaler: unknown kind %d (minmax, standard or none)",
                        (int)kind);
  layout L = {0, 0, 0, 0};
  mf_status st = make_layout("saved scaler", per_band, &band_axis, row_shape, &L);
  if (st != MF_OK) return st;
  if (n_bands != L.bands)
    return mf_set_error(MF_EFORMAT,
                        "saved scaler: %lld (offset, scale) pairs, but a %s scaler of this row "
                        "shape needs %lld",
                        (long long)n_bands, per_band ? "per-band" : "global", (long long)L.bands);
  if (!offset || !scale)
    return mf_set_error(MF_EINVAL, "saved scaler: the offset and scale arrays are required");
  for (int64_t k = 0; k < n_bands; k++)
    if (!isfinite(offset[k]) || !isfinite(scale[k]))
      return mf_set_error(MF_EFORMAT, "saved scaler: band %lld has a non-finite offset or scale",
                          (long long)k);
  s->offset = malloc((size_t)n_bands * sizeof *s->offset);
  s->scale = malloc((size_t)n_bands * sizeof *s->scale);
  if (!s->offset || !s->scale) {
    mf_scaler_clear(s);
    return mf_set_error(MF_ENOMEM, "saved scaler: out of memory for %lld bands",
                        (long long)n_bands);
  }
  memcpy(s->offset, offset, (size_t)n_bands * sizeof *offset);
  memcpy(s->scale, scale, (size_t)n_bands * sizeof *scale);
  s->kind = kind;
  s->per_band = per_band ? 1 : 0;
  s->band_axis = band_axis;
  s->row_shape = row_shape;
  s->n_bands = n_bands;
  return MF_OK;
}
