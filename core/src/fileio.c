/* fileio.c — atomic file replacement (datasets, checkpoints, WAV files): write under a
 * temporary name in the same folder, fsync, rename over the target, fsync the folder.
 * rename() within one file system is atomic, so readers see the old file or the new one,
 * never half of either; the fsyncs make that hold across a power loss too. When publishing
 * fails the temporary file is removed, so callers have nothing left to clean up. */
#define _GNU_SOURCE /* asprintf */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "melforge/dataset.h"

/* Two writers in one process (a checkpoint and a dataset, or two threads) must never share
 * a temporary name, hence a process-wide counter next to the pid. */
static atomic_uint g_temp_counter;

char *mf_temp_path_for(const char *path) {
  if (!path || !*path) {
    mf_set_error(MF_EINVAL, "mf_temp_path_for: empty path");
    return NULL;
  }
  const char *slash = strrchr(path, '/');
  size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0; /* keeps the '/' */
  const char *base = slash ? slash + 1 : path;
  if (!*base) {
    mf_set_error(MF_EINVAL, "%s: names a folder, expected a file name", path);
    return NULL;
  }
  unsigned counter = atomic_fetch_add(&g_temp_counter, 1u);
  size_t size = strlen(path) + 64;
  char *tmp = malloc(size);
  if (!tmp) {
    mf_set_error(MF_ENOMEM, "out of memory for a temporary file name next to %s", path);
    return NULL;
  }
  snprintf(tmp, size, "%.*s.%s.tmp-%ld-%u", (int)dir_len, path, base, (long)getpid(), counter);
  return tmp;
}

static int fsync_path(const char *path, int flags) {
  int fd = open(path, flags | O_CLOEXEC);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  int saved = errno;
  close(fd);
  errno = saved;
  return rc;
}

mf_status mf_publish_file(const char *tmp_path, const char *path) {
  if (fsync_path(tmp_path, O_RDONLY) != 0) {
    int e = errno;
    unlink(tmp_path);
    return mf_set_error(MF_EIO,
                        "%s: could not flush the new file to disk (%s); %s was left as it was",
                        tmp_path, strerror(e), path);
  }
  if (rename(tmp_path, path) != 0) {
    int e = errno;
    unlink(tmp_path);
    return mf_set_error(
        MF_EIO,
        "%s: could not move the new file into place (%s); the old file, if any, is untouched", path,
        strerror(e));
  }
  /* The rename lives in the folder's entries: without this a crash can forget it. */
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
  if (!dir) return mf_set_error(MF_ENOMEM, "out of memory after writing %s", path);
  int rc = fsync_path(dir, O_RDONLY | O_DIRECTORY);
  int e = errno;
  free(dir);
  /* Some file systems cannot sync a folder (EINVAL); the file itself is already durable. */
  if (rc != 0 && e != EINVAL && e != EROFS)
    return mf_set_error(MF_EIO, "%s: written, but its folder could not be flushed to disk (%s)",
                        path, strerror(e));
  return MF_OK;
}

mf_status mf_write_file_atomic(const char *path, const void *data, size_t size) {
  char *tmp = mf_temp_path_for(path);
  if (!tmp) return path && *path ? MF_ENOMEM : MF_EINVAL; /* message is set */
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    mf_status s = mf_set_error(MF_EIO, "cannot write %s: %s (is the folder writable?)", path,
                               strerror(errno));
    free(tmp);
    return s;
  }
  int ok = size == 0 || fwrite(data, 1, size, f) == size;
  ok &= fclose(f) == 0;
  if (!ok) {
    unlink(tmp);
    free(tmp);
    return mf_set_error(MF_EIO, "cannot write %s (disk full?)", path);
  }
  mf_status s = mf_publish_file(tmp, path);
  free(tmp);
  return s;
}

char *mf__path_join(const char *dir, const char *name) {
  char *p = NULL;
  size_t n = strlen(dir);
  int slash = n > 0 && dir[n - 1] == '/';
  if (asprintf(&p, "%s%s%s", dir, slash ? "" : "/", name) < 0) {
    mf_set_error(MF_ENOMEM, "out of memory for the path %s/%s", dir, name);
    return NULL;
  }
  return p;
}
