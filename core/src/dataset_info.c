/* dataset_info.c — reading a dataset's description without its rows. */
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5util.h"
#include "melforge/dataset.h"

mf_status mf_dataset_read_info(const char *path, mf_dataset_info *info) {
  memset(info, 0, sizeof *info);
  info->time_axis = -1;
  mf__h5_quiet();
  if (access(path, R_OK) != 0) return mf_set_error(MF_ENOTFOUND, "dataset %s does not exist", path);
  if (H5Fis_hdf5(path) <= 0)
    return mf_set_error(MF_EFORMAT, "%s is not an HDF5 file (or is damaged)", path);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  char why[256];
  if (f < 0) return mf_set_error(MF_EIO, "cannot open %s: %s", path, mf__h5_reason(why));
  mf_status s = MF_OK;
  hid_t d = H5Dopen2(f, "features", H5P_DEFAULT);
  hid_t sp = d >= 0 ? H5Dget_space(d) : H5I_INVALID_HID;
  int rank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
  hsize_t dims[MF_MAX_DIMS + 1];
  if (rank < 2 || rank > MF_MAX_DIMS + 1 || H5Sget_simple_extent_dims(sp, dims, NULL) < 0) {
    s = mf_set_error(MF_EFORMAT, "%s: missing or malformed /features — is this a melforge dataset?",
                     path);
  } else {
    info->sample_shape.ndim = rank - 1;
    for (int i = 0; i < MF_MAX_DIMS; i++)
      info->sample_shape.d[i] = i < rank - 1 ? (int64_t)dims[i + 1] : 1;
  }
  mf__h5_close(&sp);
  mf__h5_close(&d);
  if (s == MF_OK && (mf__h5_read_strings(f, "classes", &info->classes, &info->n_classes) != 0 ||
                     mf__h5_read_strings(f, "tracks", &info->tracks, &info->n_tracks) != 0))
    s = mf_set_error(MF_EFORMAT, "%s: /classes or /tracks is missing or unreadable", path);
  if (s == MF_OK) {
    info->feature = mf__h5_read_string_attr(f, "feature");
    info->feature_params = mf__h5_read_string_attr(f, "feature_params");
    info->segmenting = mf__h5_read_string_attr(f, "segmenting");
    info->source = mf__h5_read_string_attr(f, "source");
    mf__h5_read_double_attr(f, "sample_rate", &info->sample_rate);
    int64_t ta;
    if (mf__h5_read_int64_attr(f, "time_axis", &ta) == 0) info->time_axis = (int)ta;
  }
  H5Fclose(f);
  if (s != MF_OK) mf_dataset_info_clear(info);
  return s;
}
