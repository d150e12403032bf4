/* internal.h — what op implementations need from the context and the tape.
 *
 * Not installed. Ops (core/src/ops_*.c) follow one pattern:
 *
 *   mf_tensor *mf_foo(mf_ctx *ctx, mf_tensor *x) {
 *     mf_tensor *out = mf_ctx_tensor(ctx, shape);
 *     ... compute forward ...
 *     mf_node *n = mf__record(ctx, "foo", foo_backward, out, 1, &x, MF_READS_IN(0),
 *                             sizeof(struct foo_saved));
 *     if (n) { struct foo_saved *s = n->saved; ... }   // NULL: nothing to record
 *     return out;
 *   }
 *
 *   static void foo_backward(mf_ctx *ctx, mf_node *n) {
 *     const float *go = n->out->grad;                  // always valid here
 *     int acc;
 *     float *gx = mf__gin(ctx, n->in[0], &acc);         // NULL: x needs no gradient
 *     if (gx) for (i...) gx[i] = (acc ? gx[i] : 0) + ...;
 *   }
 */
#ifndef MF_INTERNAL_H
#define MF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "melforge/context.h"
#include "melforge/error.h"
#include "melforge/tensor.h"

typedef struct mf_node mf_node;
typedef void (*mf_backward_fn)(mf_ctx *ctx, mf_node *n);

/* Bits of mf__record's `reads`: which tensors the backward reads the data of. Their
 * versions are saved and checked, so an in-place op in between is caught. */
#define MF_READS_IN(i) (1u << (i))
#define MF_READS_OUT (1u << 31)

struct mf_node {
  mf_backward_fn backward;
  const char *op;
  mf_tensor *out;
  mf_tensor **in;
  uint32_t *in_version;
  uint32_t out_version;
  uint32_t reads;
  int n_in;
  void *saved; /* op-specific, zeroed, in the arena */
  mf_node *prev;
};

/* Appends a node when grad mode is on and any input requires gradients; marks `out` as
 * requiring gradients. Returns NULL (and records nothing) otherwise. */
mf_node *mf__record(mf_ctx *ctx, const char *op, mf_backward_fn backward, mf_tensor *out,
                    int n_in, mf_tensor *const *in, uint32_t reads, size_t saved_bytes);

/* Whether any of the tensors requires gradients and grad mode is on (op would record). */
int mf__will_record(const mf_ctx *ctx, int n, mf_tensor *const *ts);

/* The step's last tape node (earlier ones via prev), NULL when nothing was recorded: for
 * tools that inspect what a step computed (bench counts multiply-accumulates from it). */
mf_node *mf__tape_last(const mf_ctx *ctx);

/* Gradient destination of t for a backward function. NULL when t needs no gradient.
 * *accumulate = 0: the buffer holds garbage, overwrite it; 1: add into it. */
float *mf__gin(mf_ctx *ctx, mf_tensor *t, int *accumulate);
/* Same, but zero-filled first when empty, for scatter-style backward (+= only). */
float *mf__gin_zeroed(mf_ctx *ctx, mf_tensor *t);
/* For element-wise backward (gin[i] depends on gout[i] only, same numel): when t has no
 * gradient yet, hands over the output's gradient buffer to be overwritten in place
 * (returns n->out->grad, *accumulate = 0); otherwise like mf__gin. */
float *mf__gin_inplace(mf_ctx *ctx, mf_node *n, mf_tensor *t, int *accumulate);

/* C [M x N] = alpha op(A) op(B) + beta C, row-major with leading dimensions, op = transpose
 * when ta / tb. Shares the work among the threads when called outside a parallel region;
 * never allocates; handles K == 0 (C = beta C). All core GEMMs go through here (gemm.c). */
void mf__sgemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *a,
               int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

/* Arena scratch space for one op; mf__release hands it back for reuse in this step. */
void *mf__scratch(mf_ctx *ctx, size_t bytes);
void mf__release(mf_ctx *ctx, void *p, size_t bytes);

/* The context's dropout stream (advanced by dropout ops). */
mf_rng *mf__dropout_rng(mf_ctx *ctx);

/* A context tensor sharing x's data with another shape (reshape, in-place ops). */
mf_tensor *mf__alias(mf_ctx *ctx, mf_tensor *x, mf_shape shape);

/* Aborts: "<op>: <what>: a [..] vs b [..]". b may be NULL. */
_Noreturn void mf__shape_panic(const char *op, const char *what, const mf_tensor *a,
                               const mf_tensor *b);
#define MF_SHAPE_CHECK(cond, op, what, a, b)                                                       \
  do {                                                                                             \
    if (__builtin_expect(!(cond), 0)) mf__shape_panic(op, what, a, b);                              \
  } while (0)

/* Normalises a possibly negative axis; aborts when out of range. */
int mf__axis(const char *op, const mf_tensor *t, int axis);

/* Loops with at least this many elements run in parallel. */
#define MF_PAR_MIN 32768

#endif
