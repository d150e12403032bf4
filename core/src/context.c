/* context.c — the step arena, the autograd tape and backward.
 *
 * The arena is a list of large chunks handed out by bumping a pointer. When a step needed
 * more than one chunk, the next reset replaces them by a single chunk sized for the
 * high-water mark, so from then on a step allocates nothing from the system. Blocks handed
 * back during the step (dead gradients in backward, op scratch) go on a small free list and
 * are reused best-fit before the bump pointer moves.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"
#include "melforge/context.h"
#include "melforge/error.h"

#define ALIGN 64
#define CHUNK_MIN ((size_t)8 << 20)
#define HUGE_PAGE ((size_t)2 << 20)
#define FREE_SLOTS 512

typedef struct chunk {
  char *base;
  size_t cap;
  size_t used;
} chunk;

typedef struct freeblk {
  char *p;
  size_t bytes;
} freeblk;

struct mf_ctx {
  chunk *chunks;
  int nchunks, cap_chunks;
  size_t step_used;  /* bytes bumped this step, all chunks */
  size_t high_water;
  size_t system_allocs;
  freeblk freel[FREE_SLOTS];
  int nfree;
  mf_node *tape;     /* last node; earlier ones via prev */
  size_t tape_nodes;
  int grad_enabled;
  mf_rng dropout_rng;
};

static size_t round_up(size_t x, size_t a) { return (x + a - 1) & ~(a - 1); }

static int add_chunk(mf_ctx *ctx, size_t cap) {
  if (ctx->nchunks == ctx->cap_chunks) {
    int nc = ctx->cap_chunks ? ctx->cap_chunks * 2 : 8;
    chunk *c = realloc(ctx->chunks, (size_t)nc * sizeof *c);
    if (!c) return 0;
    ctx->chunks = c;
    ctx->cap_chunks = nc;
  }
  cap = round_up(cap, HUGE_PAGE);
  void *p = NULL;
  if (posix_memalign(&p, HUGE_PAGE, cap) != 0) return 0;
#ifdef MADV_HUGEPAGE
  madvise(p, cap, MADV_HUGEPAGE); /* fewer page faults on first touch; a hint only */
#endif
  ctx->chunks[ctx->nchunks++] = (chunk){p, cap, 0};
  ctx->system_allocs++;
  return 1;
}

mf_ctx *mf_ctx_new(void) {
  mf_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx) {
    mf_set_error(MF_ENOMEM, "out of memory creating a context");
    return NULL;
  }
  ctx->grad_enabled = 1;
  ctx->dropout_rng = mf_rng_stream(0, MF_RNG_DROPOUT);
  return ctx;
}

void mf_ctx_free(mf_ctx *ctx) {
  if (!ctx) return;
  for (int i = 0; i < ctx->nchunks; i++) free(ctx->chunks[i].base);
  free(ctx->chunks);
  free(ctx);
}

void mf_ctx_reset(mf_ctx *ctx) {
  if (ctx->step_used > ctx->high_water) ctx->high_water = ctx->step_used;
  if (ctx->nchunks > 1) {
    /* Consolidate: one chunk that holds the whole step, with a little room to spare. */
    for (int i = 0; i < ctx->nchunks; i++) free(ctx->chunks[i].base);
    ctx->nchunks = 0;
    size_t want = ctx->high_water + ctx->high_water / 8;
    if (!add_chunk(ctx, want < CHUNK_MIN ? CHUNK_MIN : want)) ctx->nchunks = 0;
  } else if (ctx->nchunks == 1) {
    ctx->chunks[0].used = 0;
  }
  ctx->step_used = 0;
  ctx->nfree = 0;
  ctx->tape = NULL;
  ctx->tape_nodes = 0;
}

static void *bump(mf_ctx *ctx, size_t bytes) {
  if (ctx->nchunks > 0) {
    chunk *c = &ctx->chunks[ctx->nchunks - 1];
    if (c->cap - c->used >= bytes) {
      void *p = c->base + c->used;
      c->used += bytes;
      ctx->step_used += bytes;
      return p;
    }
  }
  size_t last = ctx->nchunks ? ctx->chunks[ctx->nchunks - 1].cap : 0;
  size_t cap = last * 2 > bytes ? last * 2 : bytes;
  if (cap < CHUNK_MIN) cap = CHUNK_MIN;
  if (!add_chunk(ctx, cap))
    mf_panic(__FILE__, __LINE__, "out of memory: the step arena could not grow by %zu bytes",
             cap);
  chunk *c = &ctx->chunks[ctx->nchunks - 1];
  void *p = c->base;
  c->used = bytes;
  ctx->step_used += bytes;
  return p;
}

void *mf_ctx_alloc(mf_ctx *ctx, size_t bytes) {
  bytes = round_up(bytes ? bytes : 1, ALIGN);
  /* Best fit from the free list; a block at most twice the request keeps waste bounded. */
  int best = -1;
  for (int i = 0; i < ctx->nfree; i++) {
    size_t b = ctx->freel[i].bytes;
    if (b >= bytes && b <= 2 * bytes && (best < 0 || b < ctx->freel[best].bytes)) best = i;
  }
  if (best >= 0) {
    void *p = ctx->freel[best].p;
    ctx->freel[best] = ctx->freel[--ctx->nfree];
    return p;
  }
  return bump(ctx, bytes);
}

void *mf__scratch(mf_ctx *ctx, size_t bytes) { return mf_ctx_alloc(ctx, bytes); }

void mf__release(mf_ctx *ctx, void *p, size_t bytes) {
  if (!p) return;
  bytes = round_up(bytes ? bytes : 1, ALIGN);
  /* A block handed back twice (a tensor and its alias) must not be listed twice. */
  for (int i = 0; i < ctx->nfree; i++)
    if (ctx->freel[i].p == p) return;
  if (ctx->nfree < FREE_SLOTS) ctx->freel[ctx->nfree++] = (freeblk){p, bytes};
  /* A full list just forgets the block until reset. */
}

void mf_ctx_release(mf_ctx *ctx, mf_tensor *t) {
  if (!t || ctx->grad_enabled || (t->flags & MF_HEAP) || !t->data) return;
  mf__release(ctx, t->data, (size_t)t->numel * sizeof(float));
  t->data = NULL;
}

static mf_tensor *new_struct(mf_ctx *ctx, mf_shape shape) {
  mf_tensor *t = mf_ctx_alloc(ctx, sizeof *t);
  memset(t, 0, sizeof *t);
  t->ndim = shape.ndim;
  for (int i = 0; i < MF_MAX_DIMS; i++) t->shape[i] = i < shape.ndim ? shape.d[i] : 1;
  t->numel = mf_shape_numel(shape);
  t->version = &t->version_own;
  return t;
}

mf_tensor *mf_ctx_tensor(mf_ctx *ctx, mf_shape shape) {
  for (int i = 0; i < shape.ndim; i++) {
    char b[96];
    MF_CHECK(shape.d[i] >= 0, "tensor shape %s has a negative dimension",
             mf_shape_str(shape, b, sizeof b));
  }
  mf_tensor *t = new_struct(ctx, shape);
  t->data = mf_ctx_alloc(ctx, (size_t)t->numel * sizeof(float));
  return t;
}

mf_tensor *mf_ctx_zeros(mf_ctx *ctx, mf_shape shape) {
  mf_tensor *t = mf_ctx_tensor(ctx, shape);
  memset(t->data, 0, (size_t)t->numel * sizeof(float));
  return t;
}

mf_tensor *mf_ctx_tensor_from(mf_ctx *ctx, mf_shape shape, const float *data) {
  mf_tensor *t = mf_ctx_tensor(ctx, shape);
  if (t->numel) memcpy(t->data, data, (size_t)t->numel * sizeof(float));
  return t;
}

mf_tensor *mf__alias(mf_ctx *ctx, mf_tensor *x, mf_shape shape) {
  mf_tensor *t = new_struct(ctx, shape);
  MF_SHAPE_CHECK(t->numel == x->numel, "alias", "element counts differ", t, x);
  t->data = x->data;
  t->version = x->version;
  t->flags = MF_VIEW;
  return t;
}

int mf_ctx_set_grad_enabled(mf_ctx *ctx, int enabled) {
  int prev = ctx->grad_enabled;
  ctx->grad_enabled = enabled != 0;
  return prev;
}

int mf_ctx_grad_enabled(const mf_ctx *ctx) { return ctx->grad_enabled; }

void mf_ctx_set_dropout_rng(mf_ctx *ctx, const mf_rng *rng) { ctx->dropout_rng = *rng; }
mf_rng mf_ctx_dropout_rng(const mf_ctx *ctx) { return ctx->dropout_rng; }
mf_rng *mf__dropout_rng(mf_ctx *ctx) { return &ctx->dropout_rng; }

mf_node *mf__tape_last(const mf_ctx *ctx) { return ctx->tape; }

mf_ctx_stats mf_ctx_stats_get(const mf_ctx *ctx) {
  mf_ctx_stats s = {0};
  for (int i = 0; i < ctx->nchunks; i++) s.arena_capacity += ctx->chunks[i].cap;
  s.step_high_water = ctx->high_water > ctx->step_used ? ctx->high_water : ctx->step_used;
  s.system_allocs = ctx->system_allocs;
  s.tape_nodes = ctx->tape_nodes;
  return s;
}

/* ---- tape ---------------------------------------------------------------------------- */

int mf__will_record(const mf_ctx *ctx, int n, mf_tensor *const *ts) {
  if (!ctx->grad_enabled) return 0;
  for (int i = 0; i < n; i++)
    if (ts[i] && (ts[i]->flags & MF_REQUIRES_GRAD)) return 1;
  return 0;
}

mf_node *mf__record(mf_ctx *ctx, const char *op, mf_backward_fn backward, mf_tensor *out,
                    int n_in, mf_tensor *const *in, uint32_t reads, size_t saved_bytes) {
  if (!mf__will_record(ctx, n_in, in)) return NULL;
  mf_node *n = mf_ctx_alloc(ctx, sizeof *n);
  memset(n, 0, sizeof *n);
  n->backward = backward;
  n->op = op;
  n->out = out;
  n->n_in = n_in;
  n->in = mf_ctx_alloc(ctx, (size_t)n_in * sizeof(mf_tensor *));
  n->in_version = mf_ctx_alloc(ctx, (size_t)n_in * sizeof(uint32_t));
  for (int i = 0; i < n_in; i++) {
    n->in[i] = in[i];
    n->in_version[i] = in[i] ? *in[i]->version : 0;
  }
  n->out_version = *out->version;
  n->reads = reads;
  if (saved_bytes) {
    n->saved = mf_ctx_alloc(ctx, saved_bytes);
    memset(n->saved, 0, saved_bytes);
  }
  n->prev = ctx->tape;
  ctx->tape = n;
  ctx->tape_nodes++;
  out->node = n;
  out->flags |= MF_REQUIRES_GRAD;
  return n;
}

/* ---- gradient buffers ------------------------------------------------------------------ */

static float *grad_buffer(mf_ctx *ctx, mf_tensor *t) {
  if (!t->grad) {
    MF_CHECK(!(t->flags & MF_HEAP), "heap tensor '%s' requires grad but has no grad buffer",
             t->name ? t->name : "?");
    t->grad = mf_ctx_alloc(ctx, (size_t)t->numel * sizeof(float));
  }
  return t->grad;
}

float *mf__gin(mf_ctx *ctx, mf_tensor *t, int *accumulate) {
  if (!t || !(t->flags & MF_REQUIRES_GRAD)) return NULL;
  float *g = grad_buffer(ctx, t);
  *accumulate = t->grad_state != 0;
  t->grad_state = 1;
  return g;
}

float *mf__gin_zeroed(mf_ctx *ctx, mf_tensor *t) {
  int acc;
  float *g = mf__gin(ctx, t, &acc);
  if (g && !acc) memset(g, 0, (size_t)t->numel * sizeof(float));
  return g;
}

float *mf__gin_inplace(mf_ctx *ctx, mf_node *n, mf_tensor *t, int *accumulate) {
  if (!t || !(t->flags & MF_REQUIRES_GRAD)) return NULL;
  mf_tensor *o = n->out;
  if (t->grad_state == 0 && !t->grad && !(t->flags & MF_HEAP) && o->grad &&
      !(o->flags & (MF_HEAP | MF_RETAIN_GRAD)) && o->numel == t->numel && o != t) {
    t->grad = o->grad;
    o->grad = NULL; /* handed over: backward will not recycle it */
    o->grad_state = 0;
    t->grad_state = 1;
    *accumulate = 0;
    return t->grad;
  }
  return mf__gin(ctx, t, accumulate);
}

/* ---- backward ---------------------------------------------------------------------------- */

static void check_versions(const mf_node *n) {
  for (int i = 0; i < n->n_in; i++) {
    if (!(n->reads & MF_READS_IN(i)) || !n->in[i]) continue;
    if (*n->in[i]->version != n->in_version[i])
      mf_panic(__FILE__, __LINE__,
               "backward of %s: its input %d was modified in place after the op ran "
               "(version %u, saved %u); use the out-of-place variant of the later op",
               n->op, i, *n->in[i]->version, n->in_version[i]);
  }
  if ((n->reads & MF_READS_OUT) && *n->out->version != n->out_version)
    mf_panic(__FILE__, __LINE__,
             "backward of %s: its output was modified in place after the op ran; use the "
             "out-of-place variant of the later op (e.g. mf_relu instead of mf_relu_)",
             n->op);
}

static mf_status run_backward(mf_ctx *ctx) {
  for (mf_node *n = ctx->tape; n; n = n->prev) {
    mf_tensor *o = n->out;
    if (!o->grad_state || !o->grad) continue; /* no gradient reached this node */
    check_versions(n);
    n->backward(ctx, n);
    if (!(o->flags & (MF_HEAP | MF_RETAIN_GRAD)) && o->grad) {
      /* The output's gradient is dead now: recycle its memory for the nodes below. */
      mf__release(ctx, o->grad, (size_t)o->numel * sizeof(float));
      o->grad = NULL;
      o->grad_state = 0;
    }
  }
  ctx->tape = NULL; /* the tape is consumed, as in PyTorch without retain_graph */
  return MF_OK;
}

static mf_status seed(mf_ctx *ctx, mf_tensor *out, const float *grad) {
  if (!(out->flags & MF_REQUIRES_GRAD))
    return mf_set_error(MF_ESTATE,
                        "backward: the tensor does not depend on anything that requires "
                        "gradients (was it computed in no-grad mode?)");
  int acc;
  float *g = mf__gin(ctx, out, &acc);
  for (int64_t i = 0; i < out->numel; i++) g[i] = (acc ? g[i] : 0.0f) + grad[i];
  return run_backward(ctx);
}

mf_status mf_backward(mf_ctx *ctx, mf_tensor *loss) {
  if (loss->numel != 1) {
    char s[96];
    return mf_set_error(MF_EINVAL,
                        "backward: the loss must be a scalar, got shape %s (reduce it with "
                        "mf_mean or pass a gradient to mf_backward_with_grad)",
                        mf_tensor_shape_str(loss, s, sizeof s));
  }
  const float one = 1.0f;
  return seed(ctx, loss, &one);
}

mf_status mf_backward_with_grad(mf_ctx *ctx, mf_tensor *out, const float *grad) {
  return seed(ctx, out, grad);
}
