/* h5util.c — see h5util.h. */
#include "h5util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mf__h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static herr_t innermost(unsigned n, const H5E_error2_t *e, void *user) {
  if (n != 0 || !e->desc || !*e->desc) return 0;
  /* File errors carry the system's reason inside a long dump of flags; keep just that. */
  const char *m = strstr(e->desc, "error message = '");
  const char *end = m ? strchr(m + 17, '\'') : NULL;
  if (end)
    snprintf((char *)user, 256, "%.*s", (int)(end - m - 17), m + 17);
  else
    snprintf((char *)user, 256, "%s", e->desc);
  return 0;
}

const char *mf__h5_reason(char buf[256]) {
  buf[0] = '\0';
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, buf);
  H5Eclear2(H5E_DEFAULT);
  return buf;
}

void mf__h5_close(hid_t *id) {
  if (*id >= 0) H5Idec_ref(*id);
  *id = H5I_INVALID_HID;
}

hid_t mf__h5_utf8_type(void) {
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t < 0) return t;
  if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
    H5Tclose(t);
    return H5I_INVALID_HID;
  }
  return t;
}

int mf__h5_write_strings(hid_t loc, const char *name, char *const *s, int n) {
  hsize_t dim = (hsize_t)n;
  hid_t type = mf__h5_utf8_type(), space = H5Screate_simple(1, &dim, NULL), d = H5I_INVALID_HID;
  int ok = type >= 0 && space >= 0;
  if (ok) d = H5Dcreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  ok = ok && d >= 0;
  if (ok && n > 0) ok = H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, s) >= 0;
  mf__h5_close(&d);
  mf__h5_close(&space);
  mf__h5_close(&type);
  return ok ? 0 : -1;
}

/* H5Treclaim is declared by 1.10.8's headers but exported only from 1.12 on. */
void mf__h5_reclaim_vlen(hid_t type, hid_t space, void *buf) {
#if H5_VERSION_GE(1, 12, 0)
  H5Treclaim(type, space, H5P_DEFAULT, buf);
#else
  H5Dvlen_reclaim(type, space, H5P_DEFAULT, buf);
#endif
}

static char *dup_fixed(const char *s, size_t size, H5T_str_t pad) {
  size_t len = strnlen(s, size);
  if (pad == H5T_STR_SPACEPAD)
    while (len > 0 && s[len - 1] == ' ') len--;
  return strndup(s, len);
}

/* Reads n strings (variable or fixed length) from a dataset or attribute. */
int mf__h5_read_string_values(hid_t obj, int is_attr, hid_t ftype, size_t n, char **out) {
  hid_t mem = H5Tcopy(ftype);
  int ok = 0;
  if (mem < 0) return -1;
  if (H5Tis_variable_str(ftype) > 0) {
    char **tmp = calloc(n ? n : 1, sizeof *tmp);
    hsize_t dim = n;
    hid_t space = is_attr && n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dim, NULL);
    herr_t rc =
        is_attr ? H5Aread(obj, mem, tmp) : H5Dread(obj, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, tmp);
    if (tmp && space >= 0 && rc >= 0) {
      ok = 1;
      for (size_t i = 0; i < n; i++) {
        out[i] = strdup(tmp[i] ? tmp[i] : "");
        if (!out[i]) ok = 0;
      }
      mf__h5_reclaim_vlen(mem, space, tmp);
    }
    mf__h5_close(&space);
    free(tmp);
  } else {
    size_t size = H5Tget_size(ftype);
    H5T_str_t pad = H5Tget_strpad(ftype);
    char *buf = malloc(size * (n ? n : 1));
    herr_t rc = !buf      ? -1
                : is_attr ? H5Aread(obj, mem, buf)
                          : H5Dread(obj, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    if (rc >= 0) {
      ok = 1;
      for (size_t i = 0; i < n; i++) {
        out[i] = dup_fixed(buf + i * size, size, pad);
        if (!out[i]) ok = 0;
      }
    }
    free(buf);
  }
  mf__h5_close(&mem);
  return ok ? 0 : -1;
}

int mf__h5_read_strings(hid_t loc, const char *name, char ***out, int *n_out) {
  *out = NULL;
  *n_out = 0;
  hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
  if (d < 0) return -1;
  hid_t space = H5Dget_space(d), type = H5Dget_type(d);
  hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
  int rc = -1;
  if (n >= 0 && type >= 0 && H5Tget_class(type) == H5T_STRING) {
    char **v = calloc((size_t)n + 1, sizeof(char *));
    rc = mf__h5_read_string_values(d, 0, type, (size_t)n, v);
    *out = v;
    *n_out = (int)n;
  }
  mf__h5_close(&type);
  mf__h5_close(&space);
  mf__h5_close(&d);
  return rc;
}

int mf__h5_write_attr(hid_t loc, const char *name, hid_t type, const void *value) {
  if (H5Aexists(loc, name) > 0) H5Adelete(loc, name);
  hid_t space = H5Screate(H5S_SCALAR), a = H5I_INVALID_HID;
  int ok = space >= 0;
  if (ok) a = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  ok = ok && a >= 0 && H5Awrite(a, type, value) >= 0;
  mf__h5_close(&a);
  mf__h5_close(&space);
  return ok ? 0 : -1;
}

int mf__h5_write_string_attr(hid_t loc, const char *name, const char *value) {
  hid_t type = mf__h5_utf8_type();
  const char *v = value ? value : "";
  int rc = type >= 0 ? mf__h5_write_attr(loc, name, type, &v) : -1;
  mf__h5_close(&type);
  return rc;
}

int mf__h5_write_double_attr(hid_t loc, const char *name, double v) {
  return mf__h5_write_attr(loc, name, H5T_NATIVE_DOUBLE, &v);
}

int mf__h5_write_int64_attr(hid_t loc, const char *name, int64_t v) {
  return mf__h5_write_attr(loc, name, H5T_NATIVE_INT64, &v);
}

char *mf__h5_read_string_attr(hid_t loc, const char *name) {
  if (H5Aexists(loc, name) <= 0) return NULL;
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  hid_t type = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
  char *s = NULL;
  if (type >= 0 && H5Tget_class(type) == H5T_STRING) mf__h5_read_string_values(a, 1, type, 1, &s);
  mf__h5_close(&type);
  mf__h5_close(&a);
  return s;
}

static int read_num_attr(hid_t loc, const char *name, hid_t mem, void *out) {
  if (H5Aexists(loc, name) <= 0) return -1;
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  hid_t type = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
  H5T_class_t c = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
  int ok = (c == H5T_INTEGER || c == H5T_FLOAT) && H5Aread(a, mem, out) >= 0;
  mf__h5_close(&type);
  mf__h5_close(&a);
  return ok ? 0 : -1;
}

int mf__h5_read_double_attr(hid_t loc, const char *name, double *out) {
  return read_num_attr(loc, name, H5T_NATIVE_DOUBLE, out);
}

int mf__h5_read_int64_attr(hid_t loc, const char *name, int64_t *out) {
  return read_num_attr(loc, name, H5T_NATIVE_INT64, out);
}

int mf__h5_write_floats(hid_t loc, const char *name, int ndim, const int64_t *dims,
                        const float *data) {
  hsize_t d[MF_MAX_DIMS] = {1};
  int rank = ndim > 0 ? ndim : 1;
  for (int i = 0; i < ndim; i++) d[i] = (hsize_t)dims[i];
  hid_t space = H5Screate_simple(rank, d, NULL), ds = H5I_INVALID_HID;
  int ok = space >= 0;
  if (ok) ds = H5Dcreate2(loc, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  ok = ok && ds >= 0 && H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0;
  mf__h5_close(&ds);
  mf__h5_close(&space);
  return ok ? 0 : -1;
}

int mf__h5_read_floats(hid_t loc, const char *name, mf_shape *shape, float **data) {
  *data = NULL;
  hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
  if (ds < 0) return -1;
  hid_t space = H5Dget_space(ds);
  int rank = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
  hsize_t d[MF_MAX_DIMS];
  int ok = rank >= 1 && rank <= MF_MAX_DIMS && H5Sget_simple_extent_dims(space, d, NULL) >= 0;
  if (ok) {
    shape->ndim = rank;
    int64_t n = 1;
    for (int i = 0; i < MF_MAX_DIMS; i++) shape->d[i] = i < rank ? (int64_t)d[i] : 1;
    for (int i = 0; i < rank; i++) n *= (int64_t)d[i];
    *data = malloc(sizeof(float) * (size_t)(n ? n : 1));
    ok = *data && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, *data) >= 0;
    if (!ok) {
      free(*data);
      *data = NULL;
    }
  }
  mf__h5_close(&space);
  mf__h5_close(&ds);
  return ok ? 0 : -1;
}

int mf__h5_write_u32(hid_t loc, const char *name, int64_t n, const uint32_t *data) {
  hsize_t d = (hsize_t)n;
  hid_t space = H5Screate_simple(1, &d, NULL), ds = H5I_INVALID_HID;
  int ok = space >= 0;
  if (ok) ds = H5Dcreate2(loc, name, H5T_STD_U32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  ok = ok && ds >= 0 && H5Dwrite(ds, H5T_NATIVE_UINT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0;
  mf__h5_close(&ds);
  mf__h5_close(&space);
  return ok ? 0 : -1;
}

int mf__h5_read_u32(hid_t loc, const char *name, int64_t n, uint32_t *data) {
  hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
  if (ds < 0) return -1;
  hid_t space = H5Dget_space(ds);
  int ok = space >= 0 && H5Sget_simple_extent_npoints(space) == n &&
           H5Dread(ds, H5T_NATIVE_UINT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0;
  mf__h5_close(&space);
  mf__h5_close(&ds);
  return ok ? 0 : -1;
}
