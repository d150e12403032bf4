/* plugins.c — loading plugin files, the component registry, component instances. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "melforge/component.h"
#include "melforge/error.h"
#include "mf_config.h"

struct mf_component {
  mf_kind kind;
  char *name;
  char *description;
  char *file; /* plugin path */
  const mf_param_spec *params;
  union {
    mf_model_vtable model;
    mf_feature_vtable feature;
    mf_augment_vtable augment;
  } vt;
};

typedef struct library {
  char *path;
  char *base; /* file name, for shadowing */
  void *handle;
} library;

static struct {
  mf_component **comp;
  int n, cap;
  library *libs;
  int nlibs, caplibs;
  int search_loaded;
} g_reg;

/* Per-load bookkeeping handed to the plugin through mf_registrar.core. */
typedef struct load_state {
  const char *path;
  int first_component; /* index in g_reg.comp where this file's components start */
  int plugin_abi;      /* set by abi_mismatch */
} load_state;

const char *mf_kind_name(mf_kind kind) {
  switch (kind) {
    case MF_KIND_MODEL: return "model";
    case MF_KIND_FEATURE: return "feature";
    case MF_KIND_AUGMENT: return "augment";
  }
  return "component";
}

static void free_component(mf_component *c) {
  if (!c) return;
  free(c->name);
  free(c->description);
  free(c->file);
  free(c);
}

static mf_status add_component(const mf_registrar *reg, mf_kind kind, const mf_component_desc *d,
                               const void *vt, size_t vt_size) {
  load_state *ls = reg->core;
  if (!d || !d->name || !*d->name)
    return mf_set_error(MF_EINVAL, "%s: registers a %s without a name", ls->path, mf_kind_name(kind));
  for (int i = 0; i < g_reg.n; i++)
    if (strcmp(g_reg.comp[i]->name, d->name) == 0)
      return mf_set_error(MF_EINVAL,
                          "%s: registers %s '%s', but that name is already taken by a %s from %s; "
                          "rename one of them or remove one file from the plugin path",
                          ls->path, mf_kind_name(kind), d->name, mf_kind_name(g_reg.comp[i]->kind),
                          g_reg.comp[i]->file);
  char what[160];
  snprintf(what, sizeof what, "%s '%s' (%s)", mf_kind_name(kind), d->name, ls->path);
  if (mf_schema_check(what, d->params) != MF_OK) return MF_EINVAL;
  mf_component *c = calloc(1, sizeof *c);
  if (!c) return mf_set_error(MF_ENOMEM, "out of memory");
  c->kind = kind;
  c->name = strdup(d->name);
  c->description = strdup(d->description ? d->description : "");
  c->file = strdup(ls->path);
  c->params = d->params;
  memcpy(&c->vt, vt, vt_size);
  if (g_reg.n == g_reg.cap) {
    int nc = g_reg.cap ? 2 * g_reg.cap : 32;
    mf_component **p = realloc(g_reg.comp, (size_t)nc * sizeof *p);
    if (!p) {
      free_component(c);
      return mf_set_error(MF_ENOMEM, "out of memory");
    }
    g_reg.comp = p;
    g_reg.cap = nc;
  }
  g_reg.comp[g_reg.n++] = c;
  return MF_OK;
}

static mf_status reg_model(const mf_registrar *r, const mf_component_desc *d, const mf_model_vtable *vt) {
  load_state *ls = r->core;
  if (!vt || !vt->create || !vt->forward || !vt->destroy)
    return mf_set_error(MF_EINVAL, "%s: model '%s' lacks create, forward or destroy", ls->path,
                        d && d->name ? d->name : "?");
  return add_component(r, MF_KIND_MODEL, d, vt, sizeof *vt);
}

static mf_status reg_feature(const mf_registrar *r, const mf_component_desc *d,
                             const mf_feature_vtable *vt) {
  load_state *ls = r->core;
  if (!vt || !vt->create || !vt->layout || !vt->compute || !vt->destroy)
    return mf_set_error(MF_EINVAL, "%s: feature '%s' lacks create, layout, compute or destroy",
                        ls->path, d && d->name ? d->name : "?");
  return add_component(r, MF_KIND_FEATURE, d, vt, sizeof *vt);
}

static mf_status reg_augment(const mf_registrar *r, const mf_component_desc *d,
                             const mf_augment_vtable *vt) {
  load_state *ls = r->core;
  if (!vt || !vt->create || !vt->apply || !vt->destroy)
    return mf_set_error(MF_EINVAL, "%s: augment '%s' lacks create, apply or destroy", ls->path,
                        d && d->name ? d->name : "?");
  return add_component(r, MF_KIND_AUGMENT, d, vt, sizeof *vt);
}

static mf_status reg_abi_mismatch(const mf_registrar *r, int plugin_abi) {
  load_state *ls = r->core;
  ls->plugin_abi = plugin_abi;
  return mf_set_error(MF_EINVAL,
                      "%s was built for plugin ABI version %d, this melforge has version %d; "
                      "rebuild the plugin against this melforge's SDK (pkg-config melforge)",
                      ls->path, plugin_abi, MF_PLUGIN_ABI_VERSION);
}

static void rollback(int first) {
  for (int i = first; i < g_reg.n; i++) free_component(g_reg.comp[i]);
  g_reg.n = first;
}

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

mf_status mf_plugins_load_file(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0)
    return mf_set_error(MF_ENOTFOUND, "plugin %s does not exist", path);
  if (!S_ISREG(st.st_mode)) return mf_set_error(MF_EINVAL, "plugin %s is not a regular file", path);
  char real[PATH_MAX];
  if (!realpath(path, real)) snprintf(real, sizeof real, "%s", path);
  for (int i = 0; i < g_reg.nlibs; i++)
    if (strcmp(g_reg.libs[i].path, real) == 0) return MF_OK; /* already loaded */

  dlerror();
  void *h = dlopen(real, RTLD_NOW | RTLD_LOCAL);
  if (!h)
    return mf_set_error(MF_EFORMAT,
                        "%s is not a loadable plugin (a shared object built for this machine): %s",
                        path, dlerror());
  mf_plugin_init_fn init;
  *(void **)&init = dlsym(h, MF_PLUGIN_ENTRY_SYMBOL);
  if (!init) {
    dlclose(h);
    return mf_set_error(MF_EFORMAT,
                        "%s has no entry symbol '%s'; a plugin defines it with "
                        "MF_PLUGIN_ENTRY(init_function) from <melforge/plugin.h>",
                        path, MF_PLUGIN_ENTRY_SYMBOL);
  }
  load_state ls = {real, g_reg.n, 0};
  mf_registrar reg = {mf_api_table(), reg_model, reg_feature, reg_augment, reg_abi_mismatch, &ls};
  mf_clear_error();
  mf_status s = init(&reg, MF_PLUGIN_ABI_VERSION);
  if (s != MF_OK) {
    if (!mf_error()[0])
      mf_set_error(s, "%s: its init function failed (status %d) without a message", path, (int)s);
    else if (!strstr(mf_error(), path) && !strstr(mf_error(), real))
      mf_wrap_error(s, "%s: plugin init failed", path);
    rollback(ls.first_component);
    dlclose(h);
    return s;
  }
  if (g_reg.nlibs == g_reg.caplibs) {
    int nc = g_reg.caplibs ? 2 * g_reg.caplibs : 16;
    library *l = realloc(g_reg.libs, (size_t)nc * sizeof *l);
    if (!l) {
      rollback(ls.first_component);
      dlclose(h);
      return mf_set_error(MF_ENOMEM, "out of memory");
    }
    g_reg.libs = l;
    g_reg.caplibs = nc;
  }
  g_reg.libs[g_reg.nlibs++] = (library){strdup(real), strdup(base_name(real)), h};
  return MF_OK;
}

static int is_shadowed(const char *path) {
  const char *b = base_name(path);
  for (int i = 0; i < g_reg.nlibs; i++)
    if (strcmp(g_reg.libs[i].base, b) == 0) return 1;
  return 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_one(const char *path, mf_plugin_report_fn report, void *user) {
  if (is_shadowed(path)) return 0;
  if (mf_plugins_load_file(path) == MF_OK) return 0;
  if (report) report(path, mf_error(), user);
  return 1;
}

int mf_plugins_load_path(const char *path_list, mf_plugin_report_fn report, void *user) {
  if (!path_list || !*path_list) return 0;
  int failures = 0;
  char *copy = strdup(path_list), *save = NULL;
  for (char *item = strtok_r(copy, ":", &save); item; item = strtok_r(NULL, ":", &save)) {
    struct stat st;
    if (stat(item, &st) != 0) continue; /* a missing directory on a search path is normal */
    if (S_ISREG(st.st_mode)) {
      failures += load_one(item, report, user);
      continue;
    }
    DIR *d = opendir(item);
    if (!d) continue;
    /* Sorted, so the load order (and the order plugins list in) is the same everywhere. */
    char **names = NULL;
    int n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
      size_t l = strlen(e->d_name);
      if (l < 4 || strcmp(e->d_name + l - 3, ".so") != 0) continue;
      if (n == cap) {
        cap = cap ? 2 * cap : 16;
        names = realloc(names, (size_t)cap * sizeof *names);
      }
      names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, by_name);
    for (int i = 0; i < n; i++) {
      char full[PATH_MAX];
      snprintf(full, sizeof full, "%s/%s", item, names[i]);
      failures += load_one(full, report, user);
      free(names[i]);
    }
    free(names);
  }
  free(copy);
  return failures;
}

/* <directory of the loaded libmelforge>/melforge/plugins: the install prefix as it is,
 * wherever the tree was installed or moved to. */
static const char *installed_plugin_dir(void) {
  static char dir[PATH_MAX];
  Dl_info info;
  if (!dir[0] && dladdr((void *)installed_plugin_dir, &info) && info.dli_fname) {
    char real[PATH_MAX];
    if (realpath(info.dli_fname, real)) {
      char *slash = strrchr(real, '/');
      if (slash) *slash = '\0';
      snprintf(dir, sizeof dir, "%.*s/melforge/plugins", (int)(sizeof dir - 20), real);
    }
  }
  return dir;
}

const char *mf_plugins_search_path(const char *cli_path) {
  static char buf[8192];
  const char *env = getenv("MELFORGE_PLUGIN_PATH");
  snprintf(buf, sizeof buf, "%s%s%s%s%s:%s:%s", cli_path && *cli_path ? cli_path : "",
           cli_path && *cli_path ? ":" : "", env && *env ? env : "", env && *env ? ":" : "",
           MF_BUILD_PLUGIN_DIR, installed_plugin_dir(), MF_INSTALL_PLUGIN_DIR);
  return buf;
}

int mf_plugins_load_search_path(const char *cli_path, mf_plugin_report_fn report, void *user) {
  if (g_reg.search_loaded) return 0;
  g_reg.search_loaded = 1;
  return mf_plugins_load_path(mf_plugins_search_path(cli_path), report, user);
}

void mf_plugins_unload_all(void) {
  rollback(0);
  free(g_reg.comp);
  for (int i = 0; i < g_reg.nlibs; i++) {
    dlclose(g_reg.libs[i].handle);
    free(g_reg.libs[i].path);
    free(g_reg.libs[i].base);
  }
  free(g_reg.libs);
  memset(&g_reg, 0, sizeof g_reg);
}

/* ---- registry queries ---------------------------------------------------------------- */

int mf_component_count(void) { return g_reg.n; }

const mf_component *mf_component_at(int i) {
  MF_CHECK(i >= 0 && i < g_reg.n, "component index %d out of range (%d registered)", i, g_reg.n);
  return g_reg.comp[i];
}

const mf_component *mf_component_find(mf_kind kind, const char *name) {
  const char *names[512];
  int n = 0;
  for (int i = 0; i < g_reg.n; i++) {
    if (g_reg.comp[i]->kind != kind) continue;
    if (strcmp(g_reg.comp[i]->name, name) == 0) return g_reg.comp[i];
    if (n < 512) names[n++] = g_reg.comp[i]->name;
  }
  for (int i = 0; i < g_reg.n; i++)
    if (strcmp(g_reg.comp[i]->name, name) == 0) {
      mf_set_error(MF_EINVAL, "'%s' is a %s, not a %s", name, mf_kind_name(g_reg.comp[i]->kind),
                   mf_kind_name(kind));
      return NULL;
    }
  char list[1024] = "";
  size_t k = 0;
  for (int i = 0; i < n && k < sizeof list; i++)
    k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", names[i]);
  const char *hint = mf_closest_name(name, names, n);
  if (hint)
    mf_set_error(MF_ENOTFOUND, "no %s named '%s'; did you mean '%s'? (available: %s)",
                 mf_kind_name(kind), name, hint, list);
  else if (n)
    mf_set_error(MF_ENOTFOUND, "no %s named '%s' (available: %s)", mf_kind_name(kind), name, list);
  else
    mf_set_error(MF_ENOTFOUND,
                 "no %s named '%s': no %s plugins were found on the plugin path (%s); set "
                 "MELFORGE_PLUGIN_PATH or pass --plugin-path",
                 mf_kind_name(kind), name, mf_kind_name(kind), mf_plugins_search_path(NULL));
  return NULL;
}

const char *mf_component_name(const mf_component *c) { return c->name; }
const char *mf_component_description(const mf_component *c) { return c->description; }
const char *mf_component_file(const mf_component *c) { return c->file; }
mf_kind mf_component_kind(const mf_component *c) { return c->kind; }
const mf_param_spec *mf_component_params(const mf_component *c) { return c->params; }

mf_status mf_component_values(const mf_component *c, mf_values **out) {
  char what[160];
  snprintf(what, sizeof what, "%s '%s'", mf_kind_name(c->kind), c->name);
  return mf_values_new(what, c->params, out);
}

/* ---- instances ------------------------------------------------------------------------- */

struct mf_model {
  const mf_component *c;
  mf_values *v;
  mf_model_io io;
  mf_params *store;
  void *state;
};

static mf_status check_kind(const mf_component *c, mf_kind k) {
  if (c->kind != k)
    return mf_set_error(MF_EINVAL, "'%s' is a %s, not a %s", c->name, mf_kind_name(c->kind),
                        mf_kind_name(k));
  return MF_OK;
}

mf_status mf_model_new(const mf_component *c, const mf_values *v, const mf_model_io *io,
                       mf_rng *init_rng, mf_model **out) {
  *out = NULL;
  if (check_kind(c, MF_KIND_MODEL)) return MF_EINVAL;
  if (io->n_classes < 2)
    return mf_set_error(MF_EINVAL, "model '%s' needs at least 2 classes, got %d", c->name,
                        io->n_classes);
  mf_model *m = calloc(1, sizeof *m);
  m->c = c;
  m->io = *io;
  m->store = mf_params_new();
  if (v)
    m->v = mf_values_clone(v);
  else
    mf_component_values(c, &m->v);
  mf_clear_error();
  m->state = c->vt.model.create(m->v, &m->io, m->store, init_rng);
  if (!m->state) {
    if (!mf_error()[0]) mf_set_error(MF_EINVAL, "model '%s' could not be created", c->name);
    else mf_wrap_error(MF_EINVAL, "model '%s' (%s)", c->name, c->file);
    mf_params_free(m->store);
    mf_values_free(m->v);
    free(m);
    return MF_EINVAL;
  }
  *out = m;
  return MF_OK;
}

mf_tensor *mf_model_forward(mf_model *m, mf_ctx *ctx, mf_tensor *x, int training) {
  return m->c->vt.model.forward(m->state, ctx, x, training);
}
mf_params *mf_model_params(const mf_model *m) { return m->store; }
const mf_model_io *mf_model_get_io(const mf_model *m) { return &m->io; }
const mf_component *mf_model_component(const mf_model *m) { return m->c; }
const mf_values *mf_model_values(const mf_model *m) { return m->v; }

void mf_model_free(mf_model *m) {
  if (!m) return;
  m->c->vt.model.destroy(m->state);
  mf_params_free(m->store);
  mf_values_free(m->v);
  free(m);
}

struct mf_feature {
  const mf_component *c;
  mf_values *v;
  double sample_rate;
  void *state;
};

mf_status mf_feature_new(const mf_component *c, const mf_values *v, double sample_rate,
                         mf_feature **out) {
  *out = NULL;
  if (check_kind(c, MF_KIND_FEATURE)) return MF_EINVAL;
  mf_feature *f = calloc(1, sizeof *f);
  f->c = c;
  f->sample_rate = sample_rate;
  if (v)
    f->v = mf_values_clone(v);
  else
    mf_component_values(c, &f->v);
  mf_clear_error();
  f->state = c->vt.feature.create(f->v, sample_rate);
  if (!f->state) {
    if (!mf_error()[0]) mf_set_error(MF_EINVAL, "feature '%s' could not be created", c->name);
    mf_values_free(f->v);
    free(f);
    return MF_EINVAL;
  }
  *out = f;
  return MF_OK;
}

mf_status mf_feature_layout_of(const mf_feature *f, int64_t n, mf_feature_layout *out) {
  return f->c->vt.feature.layout(f->state, n, out);
}
double mf_feature_sample_rate(const mf_feature *f) { return f->sample_rate; }
mf_status mf_feature_compute(const mf_feature *f, const float *audio, int64_t n, float *out) {
  return f->c->vt.feature.compute(f->state, audio, n, out);
}
const mf_values *mf_feature_values(const mf_feature *f) { return f->v; }
const mf_component *mf_feature_component(const mf_feature *f) { return f->c; }
void mf_feature_free(mf_feature *f) {
  if (!f) return;
  f->c->vt.feature.destroy(f->state);
  mf_values_free(f->v);
  free(f);
}

struct mf_augment {
  const mf_component *c;
  mf_values *v;
  void *state;
};

mf_status mf_augment_new(const mf_component *c, const mf_values *v, mf_augment **out) {
  *out = NULL;
  if (check_kind(c, MF_KIND_AUGMENT)) return MF_EINVAL;
  mf_augment *a = calloc(1, sizeof *a);
  a->c = c;
  if (v)
    a->v = mf_values_clone(v);
  else
    mf_component_values(c, &a->v);
  mf_clear_error();
  a->state = c->vt.augment.create(a->v);
  if (!a->state) {
    if (!mf_error()[0]) mf_set_error(MF_EINVAL, "augment '%s' could not be created", c->name);
    mf_values_free(a->v);
    free(a);
    return MF_EINVAL;
  }
  *out = a;
  return MF_OK;
}

mf_status mf_augment_apply(mf_augment *a, mf_tensor *x, mf_tensor *targets, mf_rng *rng) {
  return a->c->vt.augment.apply(a->state, x, targets, rng);
}
const mf_values *mf_augment_values(const mf_augment *a) { return a->v; }
const mf_component *mf_augment_component(const mf_augment *a) { return a->c; }
void mf_augment_free(mf_augment *a) {
  if (!a) return;
  a->c->vt.augment.destroy(a->state);
  mf_values_free(a->v);
  free(a);
}
