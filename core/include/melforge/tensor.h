/* melforge/tensor.h — float32 tensors.
 *
 * A tensor is a small struct pointing at contiguous row-major float32 data with up to
 * MF_MAX_DIMS dimensions (NCHW for images; PyTorch weight layouts: conv OIHW, linear
 * [out, in]). There are two kinds, and ownership shows in how they are made:
 *
 *  - heap tensors, mf_tensor_new()/mf_tensor_free(): parameters, buffers, optimizer state,
 *    datasets held in memory. They live until freed.
 *  - context tensors, mf_ctx_tensor() and every op in ops.h: activations, gradients and
 *    temporaries of one step, carved from the context's arena (context.h) and released all
 *    at once by mf_ctx_reset(). They are never freed one by one.
 *
 * Shapes are passed as mf_shape values, built with MF_SHAPE(2, 3, 4).
 */
#ifndef MELFORGE_TENSOR_H
#define MELFORGE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MF_MAX_DIMS 6

typedef struct mf_shape {
  int ndim;
  int64_t d[MF_MAX_DIMS];
} mf_shape;

/* MF_SHAPE(a, b, ...) builds an mf_shape from 1..6 integer dimensions. */
#define MF__NARGS(...) MF__NARGS_(__VA_ARGS__, 6, 5, 4, 3, 2, 1, 0)
#define MF__NARGS_(_1, _2, _3, _4, _5, _6, N, ...) N
#define MF_SHAPE(...) mf_shape_make(MF__NARGS(__VA_ARGS__), (const int64_t[]){__VA_ARGS__})

/* Inline so plugins, which see only the SDK headers, can build shapes without calling in. */
static inline mf_shape mf_shape_make(int ndim, const int64_t *dims) {
  mf_shape s;
  s.ndim = ndim < 0 ? 0 : ndim > MF_MAX_DIMS ? MF_MAX_DIMS : ndim;
  for (int i = 0; i < MF_MAX_DIMS; i++) s.d[i] = i < s.ndim ? dims[i] : 1;
  return s;
}
int64_t mf_shape_numel(mf_shape s);
int mf_shape_equal(mf_shape a, mf_shape b);
/* Writes "[2, 3, 4]" into buf (always NUL-terminated); returns buf. */
char *mf_shape_str(mf_shape s, char *buf, size_t size);

enum mf_tensor_flags {
  MF_REQUIRES_GRAD = 1 << 0, /* gradients flow into this tensor */
  MF_PARAM = 1 << 1,         /* a trainable parameter: grad buffer is persistent */
  MF_HEAP = 1 << 2,          /* data owned by the tensor (mf_tensor_new) */
  MF_RETAIN_GRAD = 1 << 3,   /* keep the gradient of a non-leaf after backward */
  MF_VIEW = 1 << 4           /* shares its data with another tensor */
};

struct mf_node;

typedef struct mf_tensor {
  float *data;
  float *grad;           /* gradient buffer, NULL until one is needed */
  int ndim;
  int flags;             /* mf_tensor_flags */
  int64_t shape[MF_MAX_DIMS];
  int64_t numel;
  struct mf_node *node;  /* the op that produced it (NULL for leaves and in no-grad mode) */
  uint32_t *version;     /* shared by every tensor on the same data; bumped by in-place ops,
                            checked by backward against the version it saved */
  uint32_t version_own;  /* the counter itself, for tensors that own their data */
  uint32_t grad_state;   /* 0: grad holds nothing yet (reads as zeros), 1: grad is valid */
  const char *name;      /* parameters: "features.0.weight"; NULL otherwise */
} mf_tensor;

/* Heap tensors, zero-filled. Returns NULL (with mf_error set) if memory runs out. */
mf_tensor *mf_tensor_new(mf_shape shape);
mf_tensor *mf_tensor_from_data(mf_shape shape, const float *data);
void mf_tensor_free(mf_tensor *t);

static inline mf_shape mf_tensor_shape(const mf_tensor *t) {
  mf_shape s;
  s.ndim = t->ndim;
  for (int i = 0; i < MF_MAX_DIMS; i++) s.d[i] = i < t->ndim ? t->shape[i] : 1;
  return s;
}
/* Size of dimension `axis` (negative counts from the end). */
int64_t mf_tensor_dim(const mf_tensor *t, int axis);
/* "[32, 1, 128, 130]" */
char *mf_tensor_shape_str(const mf_tensor *t, char *buf, size_t size);

void mf_tensor_fill(mf_tensor *t, float v);
void mf_tensor_copy_data(mf_tensor *dst, const mf_tensor *src); /* same numel */
/* Marks a leaf tensor as needing gradients (for inputs in gradient checks and the like). */
void mf_tensor_set_requires_grad(mf_tensor *t, int on);

#ifdef __cplusplus
}
#endif
#endif
