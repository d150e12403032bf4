/* train_internal.h — what the training engine's files (train.c, train_data.c) and the Lua
 * runner (lua_experiment.c) share (not installed). */
#ifndef MF_TRAIN_INTERNAL_H
#define MF_TRAIN_INTERNAL_H

#include "melforge/train.h"

/* printf-style message to hooks->message (nothing without hooks or a message callback);
 * messages of any length are passed whole. */
void mf__say(const mf_train_hooks *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
