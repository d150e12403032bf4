/* melforge/error.h — how the library reports failure.
 *
 * Functions that can fail because of their input (a file, a parameter, a user's script)
 * return an mf_status and leave a message in a thread-local buffer, read with mf_error().
 * The message names what failed, the offending value and what to do about it.
 *
 * Programming errors inside the core (two tensors of incompatible shapes handed to an op,
 * an axis out of range) are not recoverable: MF_CHECK aborts with a message that prints
 * both shapes. The library never calls exit().
 */
#ifndef MELFORGE_ERROR_H
#define MELFORGE_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mf_status {
  MF_OK = 0,
  MF_EINVAL = 1,    /* bad argument or parameter value */
  MF_EIO = 2,       /* file could not be read or written */
  MF_ENOMEM = 3,    /* allocation failed */
  MF_ENOTFOUND = 4, /* a named thing (file, plugin, parameter) does not exist */
  MF_EFORMAT = 5,   /* a file exists but its content is not what was expected */
  MF_ESTATE = 6,    /* the call is not valid in the object's current state */
  MF_EINTERRUPT = 7 /* the user interrupted (Ctrl-C) */
} mf_status;

/* The last error message set on this thread ("" when none). */
const char *mf_error(void);

/* Sets the thread's error message (printf-style) and returns `code`, so a failing
 * function can end with `return mf_set_error(MF_EINVAL, "...", ...);`. */
mf_status mf_set_error(mf_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepends context to the current message: "reading x.h5: " + previous message. */
mf_status mf_wrap_error(mf_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void mf_clear_error(void);

/* Aborts the process with a message naming the source location. For programming errors. */
_Noreturn void mf_panic(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define MF_CHECK(cond, ...)                                                                        \
  do {                                                                                             \
    if (__builtin_expect(!(cond), 0)) mf_panic(__FILE__, __LINE__, __VA_ARGS__);                    \
  } while (0)

#ifdef __cplusplus
}
#endif
#endif
