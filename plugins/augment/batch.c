/* batch.c — see batch.h. */
#include "batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void shape_text(const mf_tensor *x, int from, char *buf, size_t size) {
  size_t k = (size_t)snprintf(buf, size, "[");
  for (int i = from; i < x->ndim && k < size; i++)
    k +=
        (size_t)snprintf(buf + k, size - k, "%s%lld", i > from ? ", " : "", (long long)x->shape[i]);
  if (k < size) snprintf(buf + k, size - k, "]");
}

mf_status sample_axis_of(const mf_api *mf, const mf_tensor *x, int axis, const char *who,
                         const char *param, sample_axis *out) {
  const int nd = x->ndim - 1; /* axes of one sample */
  const int a = axis < 0 ? nd + axis : axis;
  if (nd < 1 || a < 0 || a >= nd) {
    char s[128];
    shape_text(x, 1, s, sizeof s);
    return mf->set_error(MF_EINVAL,
                         "%s: %s = %d names no axis of the samples, which are %s (%d axes: 0 to "
                         "%d, or -1 to -%d from the end); set %s to the axis that holds it",
                         who, param, axis, s, nd, nd - 1, nd, param);
  }
  out->n = x->shape[0];
  out->axis = a;
  out->outer = 1;
  out->inner = 1;
  for (int i = 0; i < a; i++) out->outer *= x->shape[1 + i];
  out->len = x->shape[1 + a];
  for (int i = a + 1; i < nd; i++) out->inner *= x->shape[1 + i];
  out->size = out->outer * out->len * out->inner;
  return MF_OK;
}

void fill_frames(float *sample, const sample_axis *ax, int64_t start, int64_t width, float v) {
  if (width <= 0) return;
  const int64_t run = width * ax->inner;
  for (int64_t o = 0; o < ax->outer; o++) {
    float *p = sample + (o * ax->len + start) * ax->inner;
    for (int64_t k = 0; k < run; k++) p[k] = v;
  }
}

fill_kind fill_parse(const char *name) {
  if (!strcmp(name, "zero")) return FILL_ZERO;
  if (!strcmp(name, "min")) return FILL_MIN;
  if (!strcmp(name, "edge")) return FILL_EDGE;
  return FILL_MEAN;
}

float sample_fill(const float *s, int64_t size, fill_kind k) {
  if (k == FILL_MIN) {
    float m = s[0];
    for (int64_t i = 1; i < size; i++) m = s[i] < m ? s[i] : m;
    return m;
  }
  if (k == FILL_MEAN) {
    double acc = 0;
    for (int64_t i = 0; i < size; i++) acc += s[i];
    return (float)(acc / (double)size);
  }
  return 0.0f;
}

int coin(const mf_api *mf, mf_rng *rng, double p) {
  if (p >= 1) return 1;
  if (p <= 0) return 0;
  return mf->rng_uniform(rng) < p;
}

void *scratch_get(const mf_api *mf, scratch *s, size_t bytes, const char *who) {
  if (bytes <= s->cap) return s->p;
  void *p = realloc(s->p, bytes);
  if (!p) {
    mf->set_error(MF_ENOMEM, "%s: out of memory for a %zu-byte work buffer", who, bytes);
    return NULL;
  }
  s->p = p;
  s->cap = bytes;
  return p;
}

void scratch_free(scratch *s) {
  free(s->p);
  s->p = NULL;
  s->cap = 0;
}
