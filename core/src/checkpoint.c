/* checkpoint.c — training checkpoints in HDF5 (layout in melforge/checkpoint.h). */
#define _GNU_SOURCE
#include "melforge/checkpoint.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5util.h"
#include "melforge/dataset.h"
#include "melforge/runtime.h"

/* Stream state words: key0, key1, counter low, counter high, buffered count, 4 buffered. */
#define RNG_WORDS 9

void mf_checkpoint_meta_clear(mf_checkpoint_meta *m) {
  free(m->model);
  free(m->model_params);
  for (int i = 0; m->classes && i < m->n_classes; i++) free(m->classes[i]);
  free(m->classes);
  free(m->feature);
  free(m->feature_params);
  free(m->segmenting);
  free(m->experiment);
  free(m->source);
  free(m->config);
  free(m->dataset);
  free(m->history);
  free(m->state);
  memset(m, 0, sizeof *m);
}

void mf_checkpoint_free(mf_checkpoint *c) {
  if (!c) return;
  mf_checkpoint_meta_clear(&c->meta);
  mf_params_free(c->model);
  mf_params_free(c->optim_state);
  mf_scaler_clear(&c->scaler);
  for (int i = 0; i < c->n_rng; i++) free(c->rng_names[i]);
  free(c);
}

/* ---- save ------------------------------------------------------------------------------- */

static int write_tensor(hid_t g, const mf_tensor *t) {
  return mf__h5_write_floats(g, t->name, t->ndim, t->shape, t->data);
}

static int write_meta(hid_t g, const mf_checkpoint_meta *m) {
  int rc = 0;
  rc |= mf__h5_write_string_attr(g, "model", m->model);
  rc |= mf__h5_write_string_attr(g, "model_params", m->model_params ? m->model_params : "{}");
  rc |= mf__h5_write_int64_attr(g, "n_classes", m->n_classes);
  rc |= mf__h5_write_string_attr(g, "feature", m->feature ? m->feature : "");
  rc |= mf__h5_write_string_attr(g, "feature_params", m->feature_params ? m->feature_params : "{}");
  rc |= mf__h5_write_string_attr(g, "segmenting", m->segmenting ? m->segmenting : "{}");
  rc |= mf__h5_write_double_attr(g, "sample_rate", m->sample_rate);
  rc |= mf__h5_write_string_attr(g, "experiment", m->experiment ? m->experiment : "");
  rc |= mf__h5_write_string_attr(g, "source", m->source ? m->source : "");
  rc |= mf__h5_write_string_attr(g, "config", m->config ? m->config : "{}");
  rc |= mf__h5_write_string_attr(g, "dataset", m->dataset ? m->dataset : "");
  rc |= mf__h5_write_int64_attr(g, "seed", (int64_t)m->seed);
  rc |= mf__h5_write_int64_attr(g, "epoch", m->epoch);
  rc |= mf__h5_write_int64_attr(g, "step", m->step);
  rc |= mf__h5_write_string_attr(g, "history", m->history ? m->history : "[]");
  rc |= mf__h5_write_string_attr(g, "state", m->state ? m->state : "{}");
  rc |= mf__h5_write_string_attr(g, "melforge_version", mf_version());
  uint32_t shape[MF_MAX_DIMS];
  for (int i = 0; i < m->input_shape.ndim; i++) shape[i] = (uint32_t)m->input_shape.d[i];
  rc |= mf__h5_write_u32(g, "input_shape", m->input_shape.ndim, shape);
  rc |= mf__h5_write_strings(g, "classes", m->classes, m->n_classes);
  return rc;
}

static int write_scaler(hid_t g, const mf_scaler *s) {
  int rc = 0;
  rc |= mf__h5_write_string_attr(g, "kind", mf_scaler_kind_name(s->kind));
  rc |= mf__h5_write_int64_attr(g, "per_band", s->per_band);
  rc |= mf__h5_write_int64_attr(g, "band_axis", s->band_axis);
  if (s->kind == MF_SCALER_NONE) return rc;
  uint32_t shape[MF_MAX_DIMS];
  for (int i = 0; i < s->row_shape.ndim; i++) shape[i] = (uint32_t)s->row_shape.d[i];
  rc |= mf__h5_write_u32(g, "row_shape", s->row_shape.ndim, shape);
  rc |= mf__h5_write_floats(g, "offset", 1, &s->n_bands, s->offset);
  rc |= mf__h5_write_floats(g, "scale", 1, &s->n_bands, s->scale);
  return rc;
}

mf_status mf_checkpoint_save(const char *path, const mf_checkpoint_meta *meta,
                             const mf_params *model, const mf_optim *optim,
                             const mf_scaler *scaler, int n_rng, const char *const *rng_names,
                             const mf_rng *rngs) {
  mf__h5_quiet();
  char *tmp = mf_temp_path_for(path);
  if (!tmp) return MF_ENOMEM;
  hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  char why[256];
  if (f < 0) {
    mf_status s = mf_set_error(MF_EIO, "cannot create %s (next to %s): %s", tmp, path,
                               mf__h5_reason(why));
    free(tmp);
    return s;
  }
  int rc = 0;
  hid_t gm = H5Gcreate2(f, "model", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hid_t gp = H5Gcreate2(gm, "params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hid_t gb = H5Gcreate2(gm, "buffers", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  rc |= gm < 0 || gp < 0 || gb < 0;
  for (int i = 0; !rc && i < mf_params_size(model); i++)
    rc |= write_tensor(mf_params_is_trainable(model, i) ? gp : gb, mf_params_at(model, i));
  if (optim) {
    hid_t go = H5Gcreate2(f, "optimizer", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    mf_params *st = mf_optim_state((mf_optim *)optim);
    rc |= go < 0;
    for (int i = 0; !rc && i < mf_params_size(st); i++) rc |= write_tensor(go, mf_params_at(st, i));
    rc |= mf__h5_write_int64_attr(go, "steps", mf_optim_steps(optim));
    mf__h5_close(&go);
  }
  if (n_rng > 0) {
    hid_t gr = H5Gcreate2(f, "rng", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    rc |= gr < 0;
    for (int i = 0; !rc && i < n_rng; i++) {
      const mf_rng *r = &rngs[i];
      uint32_t w[RNG_WORDS] = {r->key[0], r->key[1], (uint32_t)r->counter,
                               (uint32_t)(r->counter >> 32), (uint32_t)r->nbuf,
                               r->buf[0], r->buf[1], r->buf[2], r->buf[3]};
      rc |= mf__h5_write_u32(gr, rng_names[i], RNG_WORDS, w);
    }
    mf__h5_close(&gr);
  }
  if (scaler) {
    hid_t gs = H5Gcreate2(f, "scaler", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    rc |= gs < 0 || write_scaler(gs, scaler);
    mf__h5_close(&gs);
  }
  hid_t gt = H5Gcreate2(f, "meta", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  rc |= gt < 0 || write_meta(gt, meta);
  mf__h5_close(&gt);
  mf__h5_close(&gp);
  mf__h5_close(&gb);
  mf__h5_close(&gm);
  if (rc) mf__h5_reason(why);
  rc |= H5Fclose(f) < 0;
  if (rc) {
    unlink(tmp);
    free(tmp);
    return mf_set_error(MF_EIO, "writing checkpoint %s failed (%s); the previous file, if any, "
                        "is untouched", path, why[0] ? why : "disk full?");
  }
  mf_status s = mf_publish_file(tmp, path);
  free(tmp);
  return s;
}

/* ---- load ----------------------------------------------------------------------------- */

typedef struct load_ctx {
  mf_params *dst;
  int trainable;
  const char *path;
  int failed;
} load_ctx;

static herr_t load_member(hid_t g, const char *name, const H5L_info_t *info, void *user) {
  (void)info;
  load_ctx *lc = user;
  mf_shape shape;
  float *data;
  if (mf__h5_read_floats(g, name, &shape, &data) != 0) {
    char why[256];
    mf_set_error(MF_EFORMAT, "%s: cannot read tensor %s (%s)", lc->path, name, mf__h5_reason(why));
    lc->failed = 1;
    return -1;
  }
  mf_tensor *t = lc->trainable ? mf_params_add(lc->dst, name, shape) : mf_params_add_buffer(lc->dst, name, shape);
  if (!t) {
    free(data);
    lc->failed = 1;
    return -1;
  }
  memcpy(t->data, data, sizeof(float) * (size_t)t->numel);
  free(data);
  return 0;
}

static int load_group(hid_t f, const char *group, mf_params *dst, int trainable, const char *path) {
  if (H5Lexists(f, group, H5P_DEFAULT) <= 0) return 0;
  hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
  if (g < 0) return -1;
  load_ctx lc = {dst, trainable, path, 0};
  herr_t r = H5Literate(g, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, load_member, &lc);
  mf__h5_close(&g);
  return r < 0 || lc.failed ? -1 : 0;
}

static char *str_attr(hid_t g, const char *name) {
  char *s = mf__h5_read_string_attr(g, name);
  return s ? s : strdup("");
}

mf_status mf_checkpoint_load(const char *path, mf_checkpoint **out) {
  *out = NULL;
  mf__h5_quiet();
  if (access(path, R_OK) != 0)
    return mf_set_error(MF_ENOTFOUND, "checkpoint %s does not exist", path);
  if (H5Fis_hdf5(path) <= 0)
    return mf_set_error(MF_EFORMAT, "%s is not an HDF5 file (or is damaged)", path);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  char why[256];
  if (f < 0) return mf_set_error(MF_EIO, "cannot open %s: %s", path, mf__h5_reason(why));
  mf_checkpoint *c = calloc(1, sizeof *c);
  mf_status s = MF_OK;
  if (H5Lexists(f, "meta", H5P_DEFAULT) <= 0 || H5Lexists(f, "model", H5P_DEFAULT) <= 0) {
    s = mf_set_error(MF_EFORMAT, "%s has no /meta or /model group: is it a melforge checkpoint "
                     "(best.h5 / last.h5 of a run)?", path);
    goto done;
  }
  hid_t g = H5Gopen2(f, "meta", H5P_DEFAULT);
  mf_checkpoint_meta *m = &c->meta;
  m->model = str_attr(g, "model");
  m->model_params = str_attr(g, "model_params");
  m->feature = str_attr(g, "feature");
  m->feature_params = str_attr(g, "feature_params");
  m->segmenting = str_attr(g, "segmenting");
  m->experiment = str_attr(g, "experiment");
  m->source = str_attr(g, "source");
  m->config = str_attr(g, "config");
  m->dataset = str_attr(g, "dataset");
  m->history = str_attr(g, "history");
  m->state = str_attr(g, "state");
  int64_t v;
  if (mf__h5_read_int64_attr(g, "n_classes", &v) == 0) m->n_classes = (int)v;
  if (mf__h5_read_int64_attr(g, "seed", &v) == 0) m->seed = (uint64_t)v;
  if (mf__h5_read_int64_attr(g, "epoch", &v) == 0) m->epoch = (int)v;
  if (mf__h5_read_int64_attr(g, "step", &v) == 0) m->step = (int)v;
  mf__h5_read_double_attr(g, "sample_rate", &m->sample_rate);
  int nc = 0;
  if (mf__h5_read_strings(g, "classes", &m->classes, &nc) != 0 || nc != m->n_classes) {
    s = mf_set_error(MF_EFORMAT, "%s: /meta/classes is missing or does not hold %d names", path,
                     m->n_classes);
    mf__h5_close(&g);
    goto done;
  }
  uint32_t shape[MF_MAX_DIMS];
  hid_t d = H5Dopen2(g, "input_shape", H5P_DEFAULT);
  hid_t sp = d >= 0 ? H5Dget_space(d) : H5I_INVALID_HID;
  hssize_t nd = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
  mf__h5_close(&sp);
  mf__h5_close(&d);
  if (nd < 1 || nd > MF_MAX_DIMS || mf__h5_read_u32(g, "input_shape", nd, shape) != 0) {
    s = mf_set_error(MF_EFORMAT, "%s: /meta/input_shape is missing or malformed", path);
    mf__h5_close(&g);
    goto done;
  }
  m->input_shape.ndim = (int)nd;
  for (int i = 0; i < MF_MAX_DIMS; i++) m->input_shape.d[i] = i < nd ? shape[i] : 1;
  mf__h5_close(&g);

  c->model = mf_params_new();
  if (load_group(f, "model/params", c->model, 1, path) != 0 ||
      load_group(f, "model/buffers", c->model, 0, path) != 0) {
    s = mf_wrap_error(MF_EFORMAT, "%s: reading the weights", path);
    goto done;
  }
  if (H5Lexists(f, "optimizer", H5P_DEFAULT) > 0) {
    c->optim_state = mf_params_new();
    if (load_group(f, "optimizer", c->optim_state, 0, path) != 0) {
      s = mf_wrap_error(MF_EFORMAT, "%s: reading the optimizer state", path);
      goto done;
    }
    hid_t go = H5Gopen2(f, "optimizer", H5P_DEFAULT);
    if (mf__h5_read_int64_attr(go, "steps", &c->optim_steps) != 0) c->optim_steps = 0;
    mf__h5_close(&go);
  }
  if (H5Lexists(f, "rng", H5P_DEFAULT) > 0) {
    hid_t gr = H5Gopen2(f, "rng", H5P_DEFAULT);
    H5G_info_t gi;
    if (gr >= 0 && H5Gget_info(gr, &gi) >= 0) {
      for (hsize_t i = 0; i < gi.nlinks && c->n_rng < MF_CKPT_MAX_RNG; i++) {
        char name[128];
        if (H5Lget_name_by_idx(gr, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT) < 0)
          continue;
        uint32_t w[RNG_WORDS];
        if (mf__h5_read_u32(gr, name, RNG_WORDS, w) != 0) continue;
        mf_rng *r = &c->rng[c->n_rng];
        r->key[0] = w[0], r->key[1] = w[1];
        r->counter = (uint64_t)w[2] | ((uint64_t)w[3] << 32);
        r->nbuf = (int)w[4];
        for (int k = 0; k < 4; k++) r->buf[k] = w[5 + k];
        c->rng_names[c->n_rng++] = strdup(name);
      }
    }
    mf__h5_close(&gr);
  }
  if (H5Lexists(f, "scaler", H5P_DEFAULT) > 0) {
    hid_t gs = H5Gopen2(f, "scaler", H5P_DEFAULT);
    char *kind = str_attr(gs, "kind");
    mf_scaler_kind k;
    int64_t per = 0, axis = 0;
    mf__h5_read_int64_attr(gs, "per_band", &per);
    mf__h5_read_int64_attr(gs, "band_axis", &axis);
    if (mf_scaler_kind_parse(kind, &k) != MF_OK) {
      s = mf_wrap_error(MF_EFORMAT, "%s: /scaler", path);
    } else if (k != MF_SCALER_NONE) {
      mf_shape off_shape, sc_shape;
      float *off = NULL, *sc = NULL;
      uint32_t rs[MF_MAX_DIMS];
      hid_t dr = H5Dopen2(gs, "row_shape", H5P_DEFAULT);
      hid_t spr = dr >= 0 ? H5Dget_space(dr) : H5I_INVALID_HID;
      hssize_t rnd = spr >= 0 ? H5Sget_simple_extent_npoints(spr) : -1;
      mf__h5_close(&spr);
      mf__h5_close(&dr);
      mf_shape row = {0};
      if (rnd >= 1 && rnd <= MF_MAX_DIMS && mf__h5_read_u32(gs, "row_shape", rnd, rs) == 0 &&
          mf__h5_read_floats(gs, "offset", &off_shape, &off) == 0 &&
          mf__h5_read_floats(gs, "scale", &sc_shape, &sc) == 0) {
        row.ndim = (int)rnd;
        for (int i = 0; i < MF_MAX_DIMS; i++) row.d[i] = i < rnd ? rs[i] : 1;
        s = mf_scaler_restore(&c->scaler, k, (int)per, (int)axis, row, off, sc, off_shape.d[0]);
      } else {
        s = mf_set_error(MF_EFORMAT, "%s: /scaler is incomplete", path);
      }
      free(off);
      free(sc);
    } else {
      c->scaler.kind = MF_SCALER_NONE;
    }
    free(kind);
    mf__h5_close(&gs);
  }
done:
  H5Fclose(f);
  if (s != MF_OK) {
    mf_checkpoint_free(c);
    return s;
  }
  *out = c;
  return MF_OK;
}

mf_status mf_checkpoint_restore_params(const mf_checkpoint *c, mf_params *model) {
  for (int i = 0; i < mf_params_size(model); i++) {
    mf_tensor *t = mf_params_at(model, i);
    if (!mf_params_find(c->model, t->name))
      return mf_set_error(MF_EFORMAT,
                          "the checkpoint has no tensor '%s' that this model needs; was it "
                          "written for another model or other parameters?",
                          t->name);
  }
  return mf_params_copy_data(model, c->model);
}

mf_status mf_checkpoint_rng(const mf_checkpoint *c, const char *name, mf_rng *out) {
  for (int i = 0; i < c->n_rng; i++)
    if (!strcmp(c->rng_names[i], name)) {
      *out = c->rng[i];
      return MF_OK;
    }
  return mf_set_error(MF_ENOTFOUND, "the checkpoint holds no '%s' random stream", name);
}
