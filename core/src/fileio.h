/* fileio.h — file helpers shared inside libmelforge (not installed). The atomic replacement
 * itself (mf_temp_path_for, mf_publish_file, mf_write_file_atomic) is public, in
 * melforge/dataset.h. */
#ifndef MF_FILEIO_H
#define MF_FILEIO_H

/* "dir/name" (one slash even when dir ends with one); malloc'd, NULL with the error set when
 * out of memory. */
char *mf__path_join(const char *dir, const char *name);

#endif
