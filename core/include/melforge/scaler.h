/* melforge/scaler.h — feature scaling fitted on the training rows only.
 *
 *   minmax     x' = (x - min) / (max - min), to [0, 1] on the training data (the notebooks'
 *              MinMaxScaler); a constant feature maps to 0
 *   standard   x' = (x - mean) / std (population std); a constant feature maps to 0
 *
 * either over all values at once (global) or per band: per mel band or per MFCC
 * coefficient, i.e. one (offset, scale) pair per index along band_axis of a row. Statistics
 * are accumulated in double in row order, so they do not depend on the thread count. The
 * fitted parameters are two float arrays saved in checkpoints and applied at eval and
 * predict time.
 */
#ifndef MELFORGE_SCALER_H
#define MELFORGE_SCALER_H

#include <stdint.h>

#include "melforge/error.h"
#include "melforge/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mf_scaler_kind { MF_SCALER_NONE = 0, MF_SCALER_MINMAX = 1, MF_SCALER_STANDARD = 2 } mf_scaler_kind;

typedef struct mf_scaler {
  mf_scaler_kind kind;
  int per_band;      /* 0: global */
  int band_axis;     /* axis of a row (without N) that indexes bands */
  mf_shape row_shape;
  int64_t n_bands;   /* 1 when global */
  float *offset;     /* n_bands: x' = (x - offset) * scale */
  float *scale;
} mf_scaler;

/* "minmax", "standard", "none" (NULL: none) -> kind; MF_EINVAL naming the accepted values. */
mf_status mf_scaler_kind_parse(const char *name, mf_scaler_kind *out);
const char *mf_scaler_kind_name(mf_scaler_kind k);

/* Fits on rows[idx[i]] (each row_shape, contiguous in `rows`). */
mf_status mf_scaler_fit(mf_scaler *s, mf_scaler_kind kind, int per_band, int band_axis,
                        mf_shape row_shape, const float *rows, const int64_t *idx, int64_t n_idx);
/* x' in place for n_rows rows; parallel over rows. */
void mf_scaler_apply(const mf_scaler *s, float *rows, int64_t n_rows);
/* Restores a fitted scaler from saved arrays (copies them). */
mf_status mf_scaler_restore(mf_scaler *s, mf_scaler_kind kind, int per_band, int band_axis,
                            mf_shape row_shape, const float *offset, const float *scale,
                            int64_t n_bands);
void mf_scaler_clear(mf_scaler *s);

#ifdef __cplusplus
}
#endif
#endif
