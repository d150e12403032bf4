/* lua_objects.c — the values scripts hold: experiments, datasets, plugin components,
 * optimizers and schedules as userdata (each owning what it built, freed by __gc, so an
 * error never leaks it), their constructors in `require "melforge"`, experiment methods,
 * and the entry points lua_experiment.c uses (copies, overrides). */
#define _GNU_SOURCE
#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_internal.h"

/* ---- the userdata types ------------------------------------------------------------------- */

static lexp *new_experiment(lua_State *L) {
  lexp *e = lua_newuserdatauv(L, sizeof *e, 0);
  memset(e, 0, sizeof *e);
  luaL_setmetatable(L, LEXP_META);
  mf_train_config_init(&e->cfg);
  e->sched.cfg = e->cfg.schedule;
  return e;
}

lexp *lcfg_copy_experiment(lua_State *L, const lexp *src) {
  lexp *e = lua_newuserdatauv(L, sizeof *e, 0);
  memset(e, 0, sizeof *e);
  luaL_setmetatable(L, LEXP_META);
  lcfg_config_copy(&e->cfg, &src->cfg);
  e->sched = src->sched;
  e->out_root = src->out_root ? strdup(src->out_root) : NULL;
  return e;
}

lexp *lcfg_to_experiment(lua_State *L, int idx) {
  lexp *e = luaL_testudata(L, idx, LEXP_META);
  if (e) return e;
  if (!lua_istable(L, idx)) return NULL;
  idx = lua_absindex(L, idx);
  e = new_experiment(L);
  cfgctx c = {0};
  lcfg_apply(L, &c, &lcfg_experiment_keys, e, idx);
  lcfg_finish(L, e);
  return e;
}

void lcfg_apply_table(lua_State *L, lexp *e, int idx) {
  if (!lua_istable(L, idx)) {
    char buf[160];
    lcfg_error(L, "mf.run's overrides must be a table { key = value, [\"a.b\"] = value }, got %s",
               lcfg_describe(L, idx, buf, sizeof buf));
  }
  cfgctx c = {0};
  lcfg_apply(L, &c, &lcfg_experiment_keys, e, idx);
}

void lcfg_apply_override(lua_State *L, lexp *e, const char *assignment) {
  cfgctx c = {0};
  c.override = assignment;
  const char *eq = strchr(assignment, '=');
  if (!eq || eq == assignment) lcfg_fail(L, &c, "expected key=value");
  char key[256];
  size_t kl = (size_t)(eq - assignment);
  if (kl >= sizeof key) lcfg_fail(L, &c, "the key is too long");
  memcpy(key, assignment, kl);
  key[kl] = '\0';
  lcfg_apply_path(L, &c, &lcfg_experiment_keys, e, key, eq + 1, 0);
}

/* Structural check of an override against the sections (any optimizer or schedule kind;
 * plugin parameter names are checked when applied). */
static mf_status check_path(const section *s, const char *prefix, const char *path,
                            const char *text, const char *assignment) {
  const char *dot = strchr(path, '.');
  char head[96], key[512], msg[2048];
  size_t hl = dot ? (size_t)(dot - path) : strlen(path);
  if (hl >= sizeof head) hl = sizeof head - 1;
  memcpy(head, path, hl);
  head[hl] = '\0';
  int i = lcfg_find_field(s, NULL, head);
  if (i < 0) {
    lcfg_unknown_msg(s, NULL, prefix, head, msg, sizeof msg);
    return mf_set_error(MF_EINVAL, "--set %s: %s", assignment, msg);
  }
  if (*prefix)
    snprintf(key, sizeof key, "%s.%s", prefix, head);
  else
    snprintf(key, sizeof key, "%s", head);
  const field *f = &s->fields[i];
  if (dot) {
    if (f->choice) {
      if (!dot[1] || strchr(dot + 1, '.'))
        return mf_set_error(MF_EINVAL, "--set %s: %s.<parameter> names one plugin parameter",
                            assignment, key);
      return MF_OK;
    }
    if (!f->sub)
      return mf_set_error(MF_EINVAL, "--set %s: %s has no keys of its own", assignment, key);
    return check_path(f->sub, key, dot + 1, text, assignment);
  }
  if (!lcfg_text_ok(f->text, key, text, msg, sizeof msg))
    return mf_set_error(MF_EINVAL, "--set %s: %s", assignment, msg);
  return MF_OK;
}

mf_status mf_lua_check_override(const char *assignment) {
  const char *eq = strchr(assignment, '=');
  if (!eq || eq == assignment)
    return mf_set_error(MF_EINVAL, "--set %s: expected key=value (e.g. --set epochs=5)",
                        assignment);
  char key[256];
  size_t kl = (size_t)(eq - assignment);
  if (kl >= sizeof key) return mf_set_error(MF_EINVAL, "--set %s: the key is too long", assignment);
  memcpy(key, assignment, kl);
  key[kl] = '\0';
  return check_path(&lcfg_experiment_keys, "", key, eq + 1, assignment);
}

/* experiment: __gc, __index (fields as the resolved JSON shows them, and :with), __newindex,
 * __tostring. */
static int exp_gc(lua_State *L) {
  lexp *e = luaL_checkudata(L, 1, LEXP_META);
  mf_train_config_clear(&e->cfg);
  free(e->out_root);
  e->out_root = NULL;
  return 0;
}

static int exp_with(lua_State *L) {
  lexp *e = luaL_testudata(L, 1, LEXP_META);
  if (!e) lcfg_error(L, "with is a method: call it as experiment:with { ... }");
  if (!lua_istable(L, 2)) {
    char buf[160];
    lcfg_error(L, "experiment:with expects a table of keys, got %s",
               lcfg_describe(L, 2, buf, sizeof buf));
  }
  lexp *n = lcfg_copy_experiment(L, e);
  cfgctx c = {0};
  lcfg_apply(L, &c, &lcfg_experiment_keys, n, 2);
  lcfg_finish(L, n);
  return 1;
}

static int exp_index(lua_State *L) {
  lexp *e = luaL_checkudata(L, 1, LEXP_META);
  const char *k = lua_tostring(L, 2);
  if (k && !strcmp(k, "with")) {
    lua_pushcfunction(L, exp_with);
    return 1;
  }
  if (k && !strcmp(k, "out")) {
    lua_pushstring(L, e->out_root);
    return 1;
  }
  lcfg_sync_schedule(e);
  char *json = mf_train_config_to_json(&e->cfg);
  lcfg_push_json(L, json);
  free(json);
  if (!lua_istable(L, -1)) return 1;
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

static int exp_newindex(lua_State *L) {
  lexp *e = luaL_checkudata(L, 1, LEXP_META);
  const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
  if (!k) lcfg_error(L, "experiment keys are strings");
  cfgctx c = {0};
  lcfg_apply_path(L, &c, &lcfg_experiment_keys, e, k, NULL, 3);
  lcfg_sync_schedule(e);
  return 0;
}

static int exp_tostring(lua_State *L) {
  lexp *e = luaL_checkudata(L, 1, LEXP_META);
  lua_pushfstring(L, "experiment '%s' (seed %I, model %s)", e->cfg.name ? e->cfg.name : "?",
                  (lua_Integer)e->cfg.seed,
                  e->cfg.model.component ? mf_component_name(e->cfg.model.component) : "none");
  return 1;
}

static int data_gc(lua_State *L) {
  ldata *u = luaL_checkudata(L, 1, LDATA_META);
  lcfg_data_clear(&u->d);
  return 0;
}

static int data_index(lua_State *L) {
  ldata *u = luaL_checkudata(L, 1, LDATA_META);
  const char *k = luaL_checkstring(L, 2);
  if (!strcmp(k, "path") || !strcmp(k, "cache"))
    lua_pushstring(L, u->d.path);
  else if (!strcmp(k, "audio"))
    lua_pushstring(L, u->d.audio_dir);
  else if (!strcmp(k, "feature") && u->d.feature.component)
    lua_pushstring(L, mf_component_name(u->d.feature.component));
  else
    lua_pushnil(L);
  return 1;
}

static int data_tostring(lua_State *L) {
  ldata *u = luaL_checkudata(L, 1, LDATA_META);
  if (u->d.audio_dir)
    lua_pushfstring(L, "dataset %s (from %s, feature %s)", u->d.path ? u->d.path : "?",
                    u->d.audio_dir,
                    u->d.feature.component ? mf_component_name(u->d.feature.component) : "?");
  else
    lua_pushfstring(L, "dataset %s", u->d.path ? u->d.path : "?");
  return 1;
}

static int comp_gc(lua_State *L) {
  lcomp *u = luaL_checkudata(L, 1, LCOMP_META);
  lcfg_choice_clear(&u->c);
  return 0;
}

static int comp_index(lua_State *L) {
  lcomp *u = luaL_checkudata(L, 1, LCOMP_META);
  const char *k = luaL_checkstring(L, 2);
  if (!strcmp(k, "name")) {
    lua_pushstring(L, mf_component_name(u->c.component));
    return 1;
  }
  if (!strcmp(k, "kind")) {
    lua_pushstring(L, mf_kind_name(mf_component_kind(u->c.component)));
    return 1;
  }
  char *json = mf_values_to_json(u->c.values);
  lcfg_push_json(L, json);
  free(json);
  if (strcmp(k, "params") && lua_istable(L, -1)) lua_getfield(L, -1, k);
  return 1;
}

static int comp_tostring(lua_State *L) {
  lcomp *u = luaL_checkudata(L, 1, LCOMP_META);
  char *json = mf_values_to_json(u->c.values);
  lua_pushfstring(L, "%s '%s' %s", mf_kind_name(mf_component_kind(u->c.component)),
                  mf_component_name(u->c.component), json ? json : "{}");
  free(json);
  return 1;
}

static int opt_tostring(lua_State *L) {
  lopt *u = luaL_checkudata(L, 1, LOPT_META);
  lua_pushfstring(L, "optimizer '%s' (lr %f)", lcfg_optim_names[u->cfg.kind],
                  (lua_Number)u->cfg.lr);
  return 1;
}

static int sched_tostring(lua_State *L) {
  lsched *u = luaL_checkudata(L, 1, LSCHED_META);
  lua_pushfstring(L, "schedule '%s'", lcfg_sched_names[u->cfg.kind]);
  return 1;
}

/* ---- constructors --------------------------------------------------------------------------- */

static int l_experiment(lua_State *L) {
  if (!lua_istable(L, 1) || lua_gettop(L) > 1) {
    char buf[160];
    lcfg_error(L,
               "mf.experiment expects one table { name = ..., data = ..., model = ..., ... }, "
               "got %s",
               lcfg_describe(L, lua_istable(L, 1) ? 2 : 1, buf, sizeof buf));
  }
  lcfg_to_experiment(L, 1);
  return 1;
}

static int l_dataset(lua_State *L) {
  if (!lua_istable(L, 1)) {
    char buf[160];
    lcfg_error(L,
               "mf.dataset expects a table { path = \"x.h5\" } or { audio = ..., feature = ..., "
               "cache = ... }, got %s",
               lcfg_describe(L, 1, buf, sizeof buf));
  }
  ldata *u = lua_newuserdatauv(L, sizeof *u, 0);
  lcfg_data_init(&u->d);
  luaL_setmetatable(L, LDATA_META);
  cfgctx c = {0};
  lcfg_apply(L, &c, &lcfg_dataset_keys, &u->d, 1);
  if (!u->d.path)
    lcfg_error(L,
               "mf.dataset needs path = \"x.h5\" (a ready dataset) or audio = \"folder\" with "
               "feature = mf.feature(...) and cache = \"x.h5\"");
  if (u->d.audio_dir && !u->d.feature.component)
    lcfg_error(L, "dataset: the recipe for %s needs feature = mf.feature(\"name\", { ... })",
               u->d.audio_dir);
  return 1;
}

/* mf.model / mf.feature / mf.augment (name [, params]). */
static int l_component(lua_State *L, mf_kind kind) {
  const char *kn = mf_kind_name(kind);
  char buf[160];
  if (lua_type(L, 1) != LUA_TSTRING)
    lcfg_error(L, "mf.%s expects a plugin name first (mf.%s(\"name\", { ... })), got %s", kn, kn,
               lcfg_describe(L, 1, buf, sizeof buf));
  if (!lua_isnoneornil(L, 2) && !lua_istable(L, 2))
    lcfg_error(L, "mf.%s(\"%s\", ...) expects a table of parameters second, got %s", kn,
               lua_tostring(L, 1), lcfg_describe(L, 2, buf, sizeof buf));
  cfgctx c = {0};
  const mf_component *comp = lcfg_find_component(L, &c, kind, lua_tostring(L, 1));
  lcomp *u = lua_newuserdatauv(L, sizeof *u, 0);
  memset(u, 0, sizeof *u);
  luaL_setmetatable(L, LCOMP_META);
  u->c.component = comp;
  if (mf_component_values(comp, &u->c.values) != MF_OK) lcfg_fail(L, &c, "%s", mf_error());
  if (lua_istable(L, 2)) lcfg_set_params(L, &c, u->c.values, 2);
  return 1;
}
static int l_model(lua_State *L) { return l_component(L, MF_KIND_MODEL); }
static int l_feature(lua_State *L) { return l_component(L, MF_KIND_FEATURE); }
static int l_augment(lua_State *L) { return l_component(L, MF_KIND_AUGMENT); }

static int l_optimizer(lua_State *L) {
  char buf[160];
  if (lua_type(L, 1) != LUA_TSTRING)
    lcfg_error(L, "mf.optimizer expects a name first (sgd, adam or adamw), got %s",
               lcfg_describe(L, 1, buf, sizeof buf));
  if (!lua_isnoneornil(L, 2) && !lua_istable(L, 2))
    lcfg_error(L, "mf.optimizer(\"%s\", ...) expects a table of parameters second, got %s",
               lua_tostring(L, 1), lcfg_describe(L, 2, buf, sizeof buf));
  lopt *u = lua_newuserdatauv(L, sizeof *u, 0);
  luaL_setmetatable(L, LOPT_META);
  cfgctx c = {0};
  snprintf(c.path, sizeof c.path, "optimizer");
  u->cfg = mf_optim_defaults(lcfg_optim_kind(L, &c, lua_tostring(L, 1), "optimizer"));
  if (lua_istable(L, 2)) lcfg_apply(L, &c, &lcfg_optimizer_keys, &u->cfg, 2);
  return 1;
}

static int l_schedule(lua_State *L) {
  char buf[160];
  if (lua_type(L, 1) != LUA_TSTRING)
    lcfg_error(L, "mf.schedule expects a name first (constant, step, cosine or plateau), got %s",
               lcfg_describe(L, 1, buf, sizeof buf));
  if (!lua_isnoneornil(L, 2) && !lua_istable(L, 2))
    lcfg_error(L, "mf.schedule(\"%s\", ...) expects a table of parameters second, got %s",
               lua_tostring(L, 1), lcfg_describe(L, 2, buf, sizeof buf));
  lsched *u = lua_newuserdatauv(L, sizeof *u, 0);
  memset(u, 0, sizeof *u);
  luaL_setmetatable(L, LSCHED_META);
  cfgctx c = {0};
  snprintf(c.path, sizeof c.path, "schedule");
  u->cfg = mf_schedule_defaults(lcfg_sched_kind(L, &c, lua_tostring(L, 1), "schedule"), 0);
  if (lua_istable(L, 2)) lcfg_apply(L, &c, &lcfg_schedule_keys, u, 2);
  return 1;
}

static void new_meta(lua_State *L, const char *name, const luaL_Reg *fns) {
  luaL_newmetatable(L, name);
  luaL_setfuncs(L, fns, 0);
  lua_pop(L, 1);
}

void lcfg_register_types(lua_State *L) {
  static const luaL_Reg exp_meta[] = {{"__gc", exp_gc},
                                      {"__index", exp_index},
                                      {"__newindex", exp_newindex},
                                      {"__tostring", exp_tostring},
                                      {NULL, NULL}};
  static const luaL_Reg data_meta[] = {
      {"__gc", data_gc}, {"__index", data_index}, {"__tostring", data_tostring}, {NULL, NULL}};
  static const luaL_Reg comp_meta[] = {
      {"__gc", comp_gc}, {"__index", comp_index}, {"__tostring", comp_tostring}, {NULL, NULL}};
  static const luaL_Reg opt_meta[] = {{"__tostring", opt_tostring}, {NULL, NULL}};
  static const luaL_Reg sched_meta[] = {{"__tostring", sched_tostring}, {NULL, NULL}};
  new_meta(L, LEXP_META, exp_meta);
  new_meta(L, LDATA_META, data_meta);
  new_meta(L, LCOMP_META, comp_meta);
  new_meta(L, LOPT_META, opt_meta);
  new_meta(L, LSCHED_META, sched_meta);
}

void lcfg_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"experiment", l_experiment}, {"dataset", l_dataset},
                                 {"feature", l_feature},       {"model", l_model},
                                 {"augment", l_augment},       {"optimizer", l_optimizer},
                                 {"schedule", l_schedule},     {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
