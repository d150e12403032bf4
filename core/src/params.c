/* params.c — the named store of parameters and buffers. */
#include "melforge/params.h"

#include <stdlib.h>
#include <string.h>

#include "melforge/error.h"

typedef struct entry {
  mf_tensor *t;
  char *name;
  int trainable;
} entry;

struct mf_params {
  entry *e;
  int n, cap;
};

mf_params *mf_params_new(void) {
  mf_params *ps = calloc(1, sizeof *ps);
  if (!ps) mf_set_error(MF_ENOMEM, "out of memory creating a parameter store");
  return ps;
}

void mf_params_free(mf_params *ps) {
  if (!ps) return;
  for (int i = 0; i < ps->n; i++) {
    mf_tensor_free(ps->e[i].t);
    free(ps->e[i].name);
  }
  free(ps->e);
  free(ps);
}

static mf_tensor *add(mf_params *ps, const char *name, mf_shape shape, int trainable) {
  if (!name || !*name) {
    mf_set_error(MF_EINVAL, "a parameter needs a non-empty name");
    return NULL;
  }
  if (mf_params_find(ps, name)) {
    mf_set_error(MF_EINVAL, "parameter name '%s' is registered twice; names must be unique",
                 name);
    return NULL;
  }
  if (ps->n == ps->cap) {
    int nc = ps->cap ? ps->cap * 2 : 16;
    entry *e = realloc(ps->e, (size_t)nc * sizeof *e);
    if (!e) {
      mf_set_error(MF_ENOMEM, "out of memory registering parameter '%s'", name);
      return NULL;
    }
    ps->e = e;
    ps->cap = nc;
  }
  mf_tensor *t = mf_tensor_new(shape);
  char *nm = strdup(name);
  if (!t || !nm) {
    mf_tensor_free(t);
    free(nm);
    mf_set_error(MF_ENOMEM, "out of memory registering parameter '%s'", name);
    return NULL;
  }
  t->name = nm;
  if (trainable) {
    t->flags |= MF_PARAM;
    mf_tensor_set_requires_grad(t, 1);
  }
  ps->e[ps->n++] = (entry){t, nm, trainable};
  return t;
}

mf_tensor *mf_params_add(mf_params *ps, const char *name, mf_shape shape) {
  return add(ps, name, shape, 1);
}

mf_tensor *mf_params_add_buffer(mf_params *ps, const char *name, mf_shape shape) {
  return add(ps, name, shape, 0);
}

mf_tensor *mf_params_find(const mf_params *ps, const char *name) {
  for (int i = 0; i < ps->n; i++)
    if (strcmp(ps->e[i].name, name) == 0) return ps->e[i].t;
  return NULL;
}

int mf_params_size(const mf_params *ps) { return ps->n; }

mf_tensor *mf_params_at(const mf_params *ps, int i) {
  MF_CHECK(i >= 0 && i < ps->n, "parameter index %d out of range (%d entries)", i, ps->n);
  return ps->e[i].t;
}

int mf_params_is_trainable(const mf_params *ps, int i) {
  MF_CHECK(i >= 0 && i < ps->n, "parameter index %d out of range (%d entries)", i, ps->n);
  return ps->e[i].trainable;
}

int64_t mf_params_count_trainable(const mf_params *ps) {
  int64_t n = 0;
  for (int i = 0; i < ps->n; i++)
    if (ps->e[i].trainable) n += ps->e[i].t->numel;
  return n;
}

void mf_params_zero_grad(mf_params *ps) {
  for (int i = 0; i < ps->n; i++) ps->e[i].t->grad_state = 0;
}

int mf_params_copy_data(mf_params *dst, const mf_params *src) {
  for (int i = 0; i < src->n; i++) {
    mf_tensor *d = mf_params_find(dst, src->e[i].name);
    if (!d)
      return mf_set_error(MF_ENOTFOUND, "parameter '%s' is missing in the destination",
                          src->e[i].name);
    if (!mf_shape_equal(mf_tensor_shape(d), mf_tensor_shape(src->e[i].t))) {
      char a[96], b[96];
      return mf_set_error(MF_EINVAL, "parameter '%s' has shape %s here but %s in the source",
                          src->e[i].name, mf_tensor_shape_str(d, a, sizeof a),
                          mf_tensor_shape_str(src->e[i].t, b, sizeof b));
    }
    mf_tensor_copy_data(d, src->e[i].t);
  }
  return MF_OK;
}
