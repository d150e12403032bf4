/* tensor.c — shapes and heap tensors. Context tensors are made in context.c. */
#include "melforge/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "melforge/error.h"

int64_t mf_shape_numel(mf_shape s) {
  int64_t n = 1;
  for (int i = 0; i < s.ndim; i++) n *= s.d[i];
  return n;
}

int mf_shape_equal(mf_shape a, mf_shape b) {
  if (a.ndim != b.ndim) return 0;
  for (int i = 0; i < a.ndim; i++)
    if (a.d[i] != b.d[i]) return 0;
  return 1;
}

char *mf_shape_str(mf_shape s, char *buf, size_t size) {
  size_t k = 0;
  if (size == 0) return buf;
  buf[0] = '\0';
  k += (size_t)snprintf(buf + k, size - k, "[");
  for (int i = 0; i < s.ndim && k < size; i++)
    k += (size_t)snprintf(buf + k, size - k, i ? ", %lld" : "%lld", (long long)s.d[i]);
  if (k < size) snprintf(buf + k, size - k, "]");
  return buf;
}

char *mf_tensor_shape_str(const mf_tensor *t, char *buf, size_t size) {
  return mf_shape_str(mf_tensor_shape(t), buf, size);
}

int64_t mf_tensor_dim(const mf_tensor *t, int axis) {
  int a = axis < 0 ? axis + t->ndim : axis;
  MF_CHECK(a >= 0 && a < t->ndim, "axis %d out of range for a %d-d tensor", axis, t->ndim);
  return t->shape[a];
}

static void set_shape(mf_tensor *t, mf_shape s) {
  t->ndim = s.ndim;
  for (int i = 0; i < MF_MAX_DIMS; i++) t->shape[i] = i < s.ndim ? s.d[i] : 1;
  t->numel = mf_shape_numel(s);
}

mf_tensor *mf_tensor_new(mf_shape shape) {
  for (int i = 0; i < shape.ndim; i++)
    if (shape.d[i] < 0) {
      char b[96];
      mf_set_error(MF_EINVAL, "tensor shape %s has a negative dimension",
                   mf_shape_str(shape, b, sizeof b));
      return NULL;
    }
  mf_tensor *t = calloc(1, sizeof *t);
  if (!t) goto oom;
  set_shape(t, shape);
  size_t bytes = (size_t)(t->numel ? t->numel : 1) * sizeof(float);
  bytes = (bytes + 63) & ~(size_t)63;
  if (posix_memalign((void **)&t->data, 64, bytes) != 0) {
    free(t);
    goto oom;
  }
  memset(t->data, 0, bytes);
  t->flags = MF_HEAP;
  t->version = &t->version_own;
  return t;
oom:
  mf_set_error(MF_ENOMEM, "out of memory allocating a tensor of %lld floats",
               (long long)mf_shape_numel(shape));
  return NULL;
}

mf_tensor *mf_tensor_from_data(mf_shape shape, const float *data) {
  mf_tensor *t = mf_tensor_new(shape);
  if (t && t->numel) memcpy(t->data, data, (size_t)t->numel * sizeof(float));
  return t;
}

void mf_tensor_free(mf_tensor *t) {
  if (!t) return;
  MF_CHECK(t->flags & MF_HEAP, "mf_tensor_free on a context tensor (they are freed by reset)");
  free(t->data);
  free(t->grad);
  free(t);
}

void mf_tensor_fill(mf_tensor *t, float v) {
  for (int64_t i = 0; i < t->numel; i++) t->data[i] = v;
}

void mf_tensor_copy_data(mf_tensor *dst, const mf_tensor *src) {
  MF_SHAPE_CHECK(dst->numel == src->numel, "mf_tensor_copy_data", "element counts differ", dst,
                 src);
  if (dst->data != src->data) memcpy(dst->data, src->data, (size_t)src->numel * sizeof(float));
}

void mf_tensor_set_requires_grad(mf_tensor *t, int on) {
  if (!on) {
    t->flags &= ~MF_REQUIRES_GRAD;
    return;
  }
  MF_CHECK(t->node == NULL, "set_requires_grad on a tensor computed by an op (only leaves)");
  t->flags |= MF_REQUIRES_GRAD;
  if ((t->flags & MF_HEAP) && !t->grad) {
    size_t bytes = ((size_t)(t->numel ? t->numel : 1) * sizeof(float) + 63) & ~(size_t)63;
    MF_CHECK(posix_memalign((void **)&t->grad, 64, bytes) == 0, "out of memory for a gradient");
    t->grad_state = 0;
  }
}

void mf_tensor_read_grad(const mf_tensor *t, float *dst) {
  if (t->grad && t->grad_state)
    memcpy(dst, t->grad, (size_t)t->numel * sizeof(float));
  else
    memset(dst, 0, (size_t)t->numel * sizeof(float));
}

void mf__shape_panic(const char *op, const char *what, const mf_tensor *a, const mf_tensor *b) {
  char sa[96], sb[96];
  mf_tensor_shape_str(a, sa, sizeof sa);
  if (b)
    mf_panic(__FILE__, __LINE__, "%s: %s: %s vs %s", op, what, sa, mf_tensor_shape_str(b, sb, sizeof sb));
  mf_panic(__FILE__, __LINE__, "%s: %s: %s", op, what, sa);
}

int mf__axis(const char *op, const mf_tensor *t, int axis) {
  int a = axis < 0 ? axis + t->ndim : axis;
  if (a < 0 || a >= t->ndim) {
    char s[96];
    mf_panic(__FILE__, __LINE__, "%s: axis %d out of range for a tensor of shape %s", op, axis,
             mf_tensor_shape_str(t, s, sizeof s));
  }
  return a;
}
