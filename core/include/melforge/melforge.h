/* melforge/melforge.h — the whole public C API of libmelforge in one include.
 *
 * Modules, from the bottom up: error (status codes, messages), tensor (float32 tensors),
 * rng (counter-based streams), context (arena, autograd tape, grad mode), ops
 * (differentiable operations), params (named parameters), init (initialisers), optim
 * (optimizers, gradient clipping), schedule (learning-rate schedules), runtime (threads).
 */
#ifndef MELFORGE_MELFORGE_H
#define MELFORGE_MELFORGE_H

#include "melforge/error.h"
#include "melforge/tensor.h"
#include "melforge/rng.h"
#include "melforge/context.h"
#include "melforge/ops.h"
#include "melforge/params.h"
#include "melforge/init.h"
#include "melforge/optim.h"
#include "melforge/schedule.h"
#include "melforge/runtime.h"

#endif
