/* h5util.h — HDF5 plumbing shared by datasets and checkpoints (not installed).
 *
 * HDF5 prints its own error stack by default; mf__h5_quiet() silences it and
 * mf__h5_reason() folds its innermost description into our messages instead. Functions
 * returning int give 0 on success, -1 on an HDF5 failure (the reason is on HDF5's stack). */
#ifndef MF_H5UTIL_H
#define MF_H5UTIL_H

#include <hdf5.h>
#include <stdint.h>

#include "melforge/error.h"
#include "melforge/tensor.h"

void mf__h5_quiet(void);
/* The most specific description on HDF5's error stack ("" when none); clears the stack. */
const char *mf__h5_reason(char buf[256]);
/* Closes any HDF5 id (file, group, dataset, space, type, property list) and invalidates it. */
void mf__h5_close(hid_t *id);
/* Variable-length UTF-8 string type (close it). */
hid_t mf__h5_utf8_type(void);

/* Frees what HDF5 allocated for variable-length strings read into buf. */
void mf__h5_reclaim_vlen(hid_t type, hid_t space, void *buf);
/* Reads n strings (variable or fixed length, space- or NUL-padded) of file type ftype from
 * a dataset (is_attr 0) or attribute into malloc'd copies. */
int mf__h5_read_string_values(hid_t obj, int is_attr, hid_t ftype, size_t n, char **out);

int mf__h5_write_strings(hid_t loc, const char *name, char *const *s, int n);
/* Reads a 1-d string dataset (variable or fixed length) into malloc'd strings. */
int mf__h5_read_strings(hid_t loc, const char *name, char ***out, int *n_out);

int mf__h5_write_attr(hid_t loc, const char *name, hid_t type, const void *value);
int mf__h5_write_string_attr(hid_t loc, const char *name, const char *value);
int mf__h5_write_double_attr(hid_t loc, const char *name, double v);
int mf__h5_write_int64_attr(hid_t loc, const char *name, int64_t v);
/* Scalar string attribute (variable or fixed length) as a malloc'd string; NULL if absent. */
char *mf__h5_read_string_attr(hid_t loc, const char *name);
/* Numeric scalar attributes; return -1 when absent or not numeric. */
int mf__h5_read_double_attr(hid_t loc, const char *name, double *out);
int mf__h5_read_int64_attr(hid_t loc, const char *name, int64_t *out);

/* A float32 dataset of the given shape (ndim 0 is a scalar [1]). */
int mf__h5_write_floats(hid_t loc, const char *name, int ndim, const int64_t *dims,
                        const float *data);
/* Reads a float dataset: shape into *shape (at most MF_MAX_DIMS dims), data malloc'd. */
int mf__h5_read_floats(hid_t loc, const char *name, mf_shape *shape, float **data);
int mf__h5_write_u32(hid_t loc, const char *name, int64_t n, const uint32_t *data);
int mf__h5_read_u32(hid_t loc, const char *name, int64_t n, uint32_t *data);

#endif
