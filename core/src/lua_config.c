/* lua_config.c — the machinery that turns Lua values into configurations: positioned
 * errors, typed reads, --set text, sections of keys (apply a table, a dotted key), plugin
 * parameters, and JSON back to Lua. The keys themselves are in lua_keys.c, the userdata
 * types and constructors in lua_objects.c.
 *
 * Every key is a row of a section table (its name, its setter, how --set text reads), so a
 * script's table, a dotted override and the did-you-mean hint all take one path. Errors are
 * Lua errors positioned at the script line that made the call.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_internal.h"
#include "textparse.h"

/* ---- errors -------------------------------------------------------------------------------- */

/* "file:line: " of the innermost script function on the stack; "file: " when none runs
 * (the experiment a script returned is run after the script ended). */
static void push_where(lua_State *L) {
  lua_Debug ar;
  for (int level = 0; lua_getstack(L, level, &ar); level++)
    if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
      lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
      return;
    }
  if (lua_getfield(L, LUA_REGISTRYINDEX, "melforge.script") == LUA_TSTRING) {
    lua_pushliteral(L, ": ");
    lua_concat(L, 2);
    return;
  }
  lua_pop(L, 1);
  lua_pushliteral(L, "");
}

static int raisev(lua_State *L, const cfgctx *c, const char *fmt, va_list ap) {
  char msg[3072];
  vsnprintf(msg, sizeof msg, fmt, ap);
  if (c && c->override) {
    lua_pushfstring(L, "--set %s: %s", c->override, msg);
  } else {
    push_where(L);
    lua_pushstring(L, msg);
    lua_concat(L, 2);
  }
  return lua_error(L);
}

int lcfg_fail(lua_State *L, const cfgctx *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  return raisev(L, c, fmt, ap);
}

int lcfg_error(lua_State *L, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  return raisev(L, NULL, fmt, ap);
}

/* What a value is, for "expects X, got Y". */
const char *lcfg_describe(lua_State *L, int idx, char *buf, size_t n) {
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      return "nil";
    case LUA_TBOOLEAN:
      return lua_toboolean(L, idx) ? "true" : "false";
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx))
        snprintf(buf, n, "%lld", (long long)lua_tointeger(L, idx));
      else
        snprintf(buf, n, "%g", (double)lua_tonumber(L, idx));
      return buf;
    case LUA_TSTRING:
      snprintf(buf, n, "the string \"%.80s\"", lua_tostring(L, idx));
      return buf;
    case LUA_TTABLE:
      return "a table";
    case LUA_TUSERDATA: {
      lcomp *k = luaL_testudata(L, idx, LCOMP_META);
      if (k && k->c.component) {
        snprintf(buf, n, "the %s '%s'", mf_kind_name(mf_component_kind(k->c.component)),
                 mf_component_name(k->c.component));
        return buf;
      }
      if (luaL_testudata(L, idx, LEXP_META)) return "an experiment";
      if (luaL_testudata(L, idx, LDATA_META)) return "a dataset";
      if (luaL_testudata(L, idx, LOPT_META)) return "an optimizer";
      if (luaL_testudata(L, idx, LSCHED_META)) return "a schedule";
      return "a userdata";
    }
    default:
      return lua_typename(L, lua_type(L, idx));
  }
}

int lcfg_type_error(lua_State *L, const cfgctx *c, int idx, const char *key, const char *expects) {
  char buf[160];
  return lcfg_fail(L, c, "%s expects %s, got %s", key, expects,
                   lcfg_describe(L, idx, buf, sizeof buf));
}

/* ---- typed reads ----------------------------------------------------------------------------- */

int64_t lcfg_want_int(lua_State *L, const cfgctx *c, int idx, const char *key, int64_t lo,
                      int64_t hi) {
  char want[96];
  if (hi == INT64_MAX)
    snprintf(want, sizeof want, "an integer >= %lld", (long long)lo);
  else
    snprintf(want, sizeof want, "an integer in [%lld, %lld]", (long long)lo, (long long)hi);
  int64_t v;
  if (lua_isinteger(L, idx)) {
    v = (int64_t)lua_tointeger(L, idx);
  } else if (lua_type(L, idx) == LUA_TNUMBER) {
    double x = (double)lua_tonumber(L, idx);
    if (x != floor(x) || !(fabs(x) < 9e15)) lcfg_type_error(L, c, idx, key, want);
    v = (int64_t)x;
  } else {
    return lcfg_type_error(L, c, idx, key, want);
  }
  if (v < lo || v > hi) lcfg_type_error(L, c, idx, key, want);
  return v;
}

double lcfg_want_num(lua_State *L, const cfgctx *c, int idx, const char *key, double lo,
                     double hi) {
  char want[96];
  if (lo > -HUGE_VAL && hi < HUGE_VAL)
    snprintf(want, sizeof want, "a number in [%g, %g]", lo, hi);
  else if (lo > -HUGE_VAL)
    snprintf(want, sizeof want, "a number >= %g", lo);
  else
    snprintf(want, sizeof want, "a number");
  if (lua_type(L, idx) != LUA_TNUMBER) lcfg_type_error(L, c, idx, key, want);
  double x = (double)lua_tonumber(L, idx);
  if (!isfinite(x) || x < lo || x > hi) lcfg_type_error(L, c, idx, key, want);
  return x;
}

int lcfg_want_bool(lua_State *L, const cfgctx *c, int idx, const char *key) {
  if (lua_type(L, idx) != LUA_TBOOLEAN) lcfg_type_error(L, c, idx, key, "true or false");
  return lua_toboolean(L, idx);
}

const char *lcfg_want_str(lua_State *L, const cfgctx *c, int idx, const char *key) {
  if (lua_type(L, idx) != LUA_TSTRING) lcfg_type_error(L, c, idx, key, "a string");
  return lua_tostring(L, idx);
}

/* A string, or false / nil for none. */
const char *lcfg_want_opt_str(lua_State *L, const cfgctx *c, int idx, const char *key) {
  if (lua_isnil(L, idx) || (lua_type(L, idx) == LUA_TBOOLEAN && !lua_toboolean(L, idx)))
    return NULL;
  if (lua_type(L, idx) != LUA_TSTRING)
    lcfg_type_error(L, c, idx, key, "a string (or false for none)");
  return lua_tostring(L, idx);
}

void lcfg_replace_str(char **dst, const char *s) {
  char *d = s ? strdup(s) : NULL;
  free(*dst);
  *dst = d;
}

/* The string keys of the table at idx, sorted (Lua's iteration order changes from run to
 * run; messages and the order settings apply in must not). */
static int sorted_keys(lua_State *L, const cfgctx *c, int idx, const char **keys,
                       const char *what) {
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      char buf[160];
      const char *k = lcfg_describe(L, -1, buf, sizeof buf);
      lua_pop(L, 1);
      lcfg_fail(L, c, "%s takes name = value pairs, got a list item or a non-string key [%s]", what,
                k);
    }
    if (n == MAX_KEYS) {
      lua_pop(L, 1);
      lcfg_fail(L, c, "%s has more than %d keys", what, MAX_KEYS);
    }
    keys[n++] = lua_tostring(L, -1);
  }
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
      const char *t = keys[j];
      keys[j] = keys[j - 1];
      keys[j - 1] = t;
    }
  return n;
}

/* ---- text (--set values), read the way plugin parameters are on the command line ---------- */

/* Checks that text reads as the kind; fills msg when it does not. */
int lcfg_text_ok(text_kind k, const char *key, const char *text, char *msg, size_t n) {
  int64_t i;
  double d;
  int b;
  char items[MAX_LIST][MF_TEXT_ITEM];
  switch (k) {
    case TX_INT:
      if (mf__text_int(text, &i)) return 1;
      snprintf(msg, n, "%s expects an integer, got '%s'", key, text);
      return 0;
    case TX_NUM:
      if (mf__text_float(text, &d)) return 1;
      snprintf(msg, n, "%s expects a number, got '%s'", key, text);
      return 0;
    case TX_BOOL:
      if (mf__text_bool(text, &b)) return 1;
      snprintf(msg, n, "%s expects true or false, got '%s'", key, text);
      return 0;
    case TX_STR:
      return 1;
    case TX_NUMS: {
      int m = mf__text_list(text, items, MAX_LIST);
      for (int j = 0; j < m; j++)
        if (!mf__text_float(items[j], &d)) m = -1;
      if (m >= 0) return 1;
      snprintf(msg, n, "%s expects a list of numbers like {0.9, 0.999}, got '%s'", key, text);
      return 0;
    }
    case TX_NAMES:
      if (mf__text_list(text, items, MAX_LIST) >= 0) return 1;
      snprintf(msg, n, "%s expects a list of names like {a, b}, got '%s'", key, text);
      return 0;
    case TX_SECTION:
      snprintf(msg, n, "%s is a group of keys: set one of them (%s.<key>=value)", key, key);
      return 0;
  }
  return 0;
}

/* Pushes text as the Lua value a script would have written. */
static void push_text(lua_State *L, const cfgctx *c, text_kind k, const char *key,
                      const char *text) {
  char msg[512];
  if (!lcfg_text_ok(k, key, text, msg, sizeof msg)) lcfg_fail(L, c, "%s", msg);
  int64_t i = 0;
  double d = 0;
  int b = 0;
  char items[MAX_LIST][MF_TEXT_ITEM];
  switch (k) {
    case TX_INT:
      mf__text_int(text, &i);
      lua_pushinteger(L, (lua_Integer)i);
      break;
    case TX_NUM:
      mf__text_float(text, &d);
      lua_pushnumber(L, d);
      break;
    case TX_BOOL:
      mf__text_bool(text, &b);
      lua_pushboolean(L, b);
      break;
    case TX_STR:
      lua_pushstring(L, text);
      break;
    case TX_NUMS:
    case TX_NAMES: {
      int m = mf__text_list(text, items, MAX_LIST);
      lua_createtable(L, m, 0);
      for (int j = 0; j < m; j++) {
        if (k == TX_NUMS) {
          mf__text_float(items[j], &d);
          lua_pushnumber(L, d);
        } else {
          lua_pushstring(L, items[j]);
        }
        lua_rawseti(L, -2, j + 1);
      }
      break;
    }
    case TX_SECTION:
      break; /* rejected by lcfg_text_ok */
  }
}

/* ---- sections ------------------------------------------------------------------------------ */

static int applies(const section *s, const void *obj, const field *f) {
  return !f->only || !s->variant || (f->only & s->variant(obj));
}

int lcfg_find_field(const section *s, const void *obj, const char *name) {
  for (int i = 0; s->fields[i].name; i++)
    if (!strcmp(s->fields[i].name, name) && (!obj || applies(s, obj, &s->fields[i]))) return i;
  return -1;
}

/* "<owner> has no key 'x'; did you mean 'y'? (keys: ...)"; obj NULL lists every variant's. */
void lcfg_unknown_msg(const section *s, const void *obj, const char *prefix, const char *key,
                      char *buf, size_t n) {
  const char *names[64];
  int k = 0;
  char list[1024] = "";
  size_t len = 0;
  for (int i = 0; s->fields[i].name && k < 64; i++) {
    if (obj && !applies(s, obj, &s->fields[i])) continue;
    names[k++] = s->fields[i].name;
    len += (size_t)snprintf(list + len, len < sizeof list ? sizeof list - len : 0, "%s%s",
                            k > 1 ? ", " : "", s->fields[i].name);
  }
  char owner[160];
  if (obj && s->variant_owner)
    s->variant_owner(obj, owner, sizeof owner);
  else
    snprintf(owner, sizeof owner, "%s", prefix && *prefix ? prefix : s->what);
  const char *hint = mf_closest_name(key, names, k);
  if (hint)
    snprintf(buf, n, "%s has no %s '%s'; did you mean '%s'? (%ss: %s)", owner, s->noun, key, hint,
             s->noun, list);
  else
    snprintf(buf, n, "%s has no %s '%s' (%ss: %s)", owner, s->noun, key, s->noun, list);
}

/* Sets the section prefix (keys are short; a pathological one is cut, never overrun). */
static void set_path(cfgctx *c, const char *key) {
  size_t n = strnlen(key, sizeof c->path - 1);
  memcpy(c->path, key, n);
  c->path[n] = '\0';
}

static void full_key(const cfgctx *c, const char *name, char *buf, size_t n) {
  if (c->path[0])
    snprintf(buf, n, "%s.%s", c->path, name);
  else
    snprintf(buf, n, "%s", name);
}

static void set_field(lua_State *L, cfgctx *c, const section *s, void *obj, int i, int idx) {
  char key[512];
  full_key(c, s->fields[i].name, key, sizeof key);
  c->given |= 1u << i;
  s->fields[i].set(L, c, obj, lua_absindex(L, idx), key);
}

/* Applies the keys of the table at idx to obj: plain keys in the section's order, then
 * dotted ones ("model.dropout"), then the section's cross-key rule. */
void lcfg_apply(lua_State *L, cfgctx *c, const section *s, void *obj, int idx) {
  idx = lua_absindex(L, idx);
  const unsigned saved = c->given;
  c->given = 0;
  const char *keys[MAX_KEYS];
  char what[sizeof c->path];
  snprintf(what, sizeof what, "%s", c->path[0] ? c->path : s->what);
  const int n = sorted_keys(L, c, idx, keys, what);
  int first = 0;
  if (s->name_first) {
    if (lua_getfield(L, idx, s->fields[0].name) != LUA_TNIL) set_field(L, c, s, obj, 0, -1);
    lua_pop(L, 1);
    first = 1;
  }
  for (int k = 0; k < n; k++)
    if (!strchr(keys[k], '.') && lcfg_find_field(s, obj, keys[k]) < 0) {
      char msg[2048];
      lcfg_unknown_msg(s, obj, c->path, keys[k], msg, sizeof msg);
      lcfg_fail(L, c, "%s", msg);
    }
  for (int i = first; s->fields[i].name; i++) {
    if (lua_getfield(L, idx, s->fields[i].name) != LUA_TNIL && applies(s, obj, &s->fields[i]))
      set_field(L, c, s, obj, i, -1);
    lua_pop(L, 1);
  }
  for (int k = 0; k < n; k++)
    if (strchr(keys[k], '.')) {
      lua_getfield(L, idx, keys[k]);
      const unsigned g = c->given;
      lcfg_apply_path(L, c, s, obj, keys[k], NULL, -1);
      c->given = g;
      lua_pop(L, 1);
    }
  if (s->done) s->done(L, c, obj);
  c->given = saved;
}

/* Fills the section `s` of obj from a table, with `key` as the path prefix of messages. */
void lcfg_apply_section(lua_State *L, cfgctx *c, const section *s, void *obj, int idx,
                        const char *key) {
  char saved[sizeof c->path];
  memcpy(saved, c->path, sizeof saved);
  set_path(c, key);
  lcfg_apply(L, c, s, obj, idx);
  memcpy(c->path, saved, sizeof saved);
}

static void set_param(lua_State *L, cfgctx *c, mf_values *v, const char *name, int idx);

/* One dotted key: from text (--set) when text is given, else from the Lua value at idx. */
void lcfg_apply_path(lua_State *L, cfgctx *c, const section *s, void *obj, const char *path,
                     const char *text, int idx) {
  if (!text) idx = lua_absindex(L, idx);
  const char *dot = strchr(path, '.');
  char head[96];
  size_t hl = dot ? (size_t)(dot - path) : strlen(path);
  if (hl >= sizeof head) hl = sizeof head - 1;
  memcpy(head, path, hl);
  head[hl] = '\0';
  const int i = lcfg_find_field(s, obj, head);
  if (i < 0) {
    char msg[2048];
    lcfg_unknown_msg(s, obj, c->path, head, msg, sizeof msg);
    lcfg_fail(L, c, "%s", msg);
  }
  const field *f = &s->fields[i];
  char key[512];
  full_key(c, head, key, sizeof key);
  if (dot) {
    const char *rest = dot + 1;
    if (f->choice) {
      mf_choice *ch = f->choice(L, c, obj, key);
      if (strchr(rest, '.'))
        lcfg_fail(L, c, "%s.%s: plugin parameters have no keys of their own", key, rest);
      if (text) {
        if (mf_values_set_text(ch->values, rest, text) != MF_OK) lcfg_fail(L, c, "%s", mf_error());
      } else {
        set_param(L, c, ch->values, rest, idx);
      }
      return;
    }
    if (!f->sub)
      lcfg_fail(L, c, "%s has no keys of its own ('%s.%s' does not exist)", key, key, rest);
    void *child = f->child(L, c, obj);
    char saved[sizeof c->path];
    memcpy(saved, c->path, sizeof saved);
    const unsigned g = c->given;
    set_path(c, key);
    c->given = 0;
    lcfg_apply_path(L, c, f->sub, child, rest, text, idx);
    memcpy(c->path, saved, sizeof saved);
    c->given = g;
    return;
  }
  c->given = 0;
  if (text) {
    push_text(L, c, f->text, key, text);
    set_field(L, c, s, obj, i, -1);
    lua_pop(L, 1);
  } else {
    set_field(L, c, s, obj, i, idx);
  }
  if (s->done) s->done(L, c, obj);
}

/* ---- plugin components --------------------------------------------------------------------- */

const mf_component *lcfg_find_component(lua_State *L, const cfgctx *c, mf_kind kind,
                                        const char *name) {
  if (mf_component_count() == 0) mf_plugins_load_search_path(NULL, NULL, NULL);
  const mf_component *comp = mf_component_find(kind, name);
  if (!comp) lcfg_fail(L, c, "%s", mf_error());
  return comp;
}

/* One plugin parameter from a Lua value: integers and floats as math.type tells them,
 * lists from sequences of numbers. The schema decides the rest (mf_values_set_*). */
static void set_param(lua_State *L, cfgctx *c, mf_values *v, const char *name, int idx) {
  idx = lua_absindex(L, idx);
  mf_status st = MF_OK;
  char buf[160];
  switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
      st = lua_isinteger(L, idx) ? mf_values_set_int(v, name, (int64_t)lua_tointeger(L, idx))
                                 : mf_values_set_float(v, name, (double)lua_tonumber(L, idx));
      break;
    case LUA_TBOOLEAN:
      st = mf_values_set_bool(v, name, lua_toboolean(L, idx));
      break;
    case LUA_TSTRING:
      st = mf_values_set_string(v, name, lua_tostring(L, idx));
      break;
    case LUA_TTABLE: {
      int64_t ints[MAX_LIST];
      double nums[MAX_LIST];
      const lua_Unsigned n = lua_rawlen(L, idx);
      int all_int = 1, count = 0;
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        lua_pop(L, 1);
        count++;
      }
      if ((lua_Unsigned)count != n || n > MAX_LIST)
        lcfg_fail(L, c,
                  "%s: parameter '%s' expects a list (at most %d numbers, like {32, 64}), got a "
                  "table with %d keys",
                  mf_values_what(v), name, MAX_LIST, count);
      for (lua_Unsigned k = 0; k < n; k++) {
        lua_rawgeti(L, idx, (lua_Integer)k + 1);
        if (lua_type(L, -1) != LUA_TNUMBER)
          lcfg_fail(L, c, "%s: parameter '%s' expects a list of numbers, got %s at position %d",
                    mf_values_what(v), name, lcfg_describe(L, -1, buf, sizeof buf), (int)k + 1);
        if (lua_isinteger(L, -1))
          ints[k] = (int64_t)lua_tointeger(L, -1), nums[k] = (double)ints[k];
        else
          all_int = 0, nums[k] = (double)lua_tonumber(L, -1);
        lua_pop(L, 1);
      }
      st = all_int ? mf_values_set_ints(v, name, ints, (int)n)
                   : mf_values_set_floats(v, name, nums, (int)n);
      break;
    }
    default: {
      /* The name first, so a typo gets its hint whatever the value. */
      int known = 0;
      for (int i = 0; i < mf_values_count(v); i++)
        known |= !strcmp(mf_values_spec_at(v, i)->name, name);
      if (!known && mf_values_set_text(v, name, "") != MF_OK) lcfg_fail(L, c, "%s", mf_error());
      lcfg_fail(L, c, "%s: parameter '%s' cannot be %s", mf_values_what(v), name,
                lcfg_describe(L, idx, buf, sizeof buf));
    }
  }
  if (st != MF_OK) lcfg_fail(L, c, "%s", mf_error());
}

void lcfg_set_params(lua_State *L, cfgctx *c, mf_values *v, int idx) {
  idx = lua_absindex(L, idx);
  const char *keys[MAX_KEYS];
  const int n = sorted_keys(L, c, idx, keys, mf_values_what(v));
  for (int k = 0; k < n; k++) {
    lua_getfield(L, idx, keys[k]);
    set_param(L, c, v, keys[k], -1);
    lua_pop(L, 1);
  }
}

void lcfg_choice_clear(mf_choice *ch) {
  mf_values_free(ch->values);
  ch->values = NULL;
  ch->component = NULL;
}

void lcfg_choice_copy(mf_choice *dst, const mf_choice *src) {
  dst->component = src->component;
  dst->values = src->values ? mf_values_clone(src->values) : NULL;
}

/* A component value: mf.model(...) and friends, a name (defaults), or a table of parameters
 * merged into the current one. */
void lcfg_set_choice(lua_State *L, cfgctx *c, mf_choice *ch, mf_kind kind, int idx,
                     const char *key) {
  const char *kn = mf_kind_name(kind);
  lcomp *k = luaL_testudata(L, idx, LCOMP_META);
  if (k) {
    if (mf_component_kind(k->c.component) != kind) {
      char buf[160], want[64];
      snprintf(want, sizeof want, "a %s", kn);
      lcfg_fail(L, c, "%s expects %s, got %s", key, want, lcfg_describe(L, idx, buf, sizeof buf));
    }
    mf_choice copy;
    lcfg_choice_copy(&copy, &k->c);
    lcfg_choice_clear(ch);
    *ch = copy;
    return;
  }
  if (lua_type(L, idx) == LUA_TSTRING) {
    const mf_component *comp = lcfg_find_component(L, c, kind, lua_tostring(L, idx));
    mf_values *v;
    if (mf_component_values(comp, &v) != MF_OK) lcfg_fail(L, c, "%s", mf_error());
    lcfg_choice_clear(ch);
    ch->component = comp;
    ch->values = v;
    return;
  }
  if (lua_istable(L, idx)) {
    if (!ch->component)
      lcfg_fail(L, c,
                "%s: there is no %s yet to set parameters on; use %s = mf.%s(\"name\", { ... })",
                key, kn, key, kn);
    lcfg_set_params(L, c, ch->values, idx);
    return;
  }
  char want[160];
  snprintf(want, sizeof want,
           "a %s (mf.%s(\"name\", { ... })), a %s name or a table of its "
           "parameters",
           kn, kn, kn);
  lcfg_type_error(L, c, idx, key, want);
}

mf_choice *lcfg_existing_choice(lua_State *L, cfgctx *c, mf_choice *ch, mf_kind kind,
                                const char *key) {
  if (!ch->component)
    lcfg_fail(L, c, "%s: there is no %s to set parameters on; choose one first (%s = \"name\")",
              key, mf_kind_name(kind), key);
  return ch;
}

/* ---- JSON to Lua ---------------------------------------------------------------------------- */

static void push_json_value(lua_State *L, json_t *v, int depth) {
  if (depth > 64) {
    lua_pushnil(L);
    return;
  }
  switch (json_typeof(v)) {
    case JSON_OBJECT: {
      lua_createtable(L, 0, (int)json_object_size(v));
      const char *k;
      json_t *x;
      json_object_foreach(v, k, x) {
        if (json_is_null(x)) continue;
        push_json_value(L, x, depth + 1);
        lua_setfield(L, -2, k);
      }
      break;
    }
    case JSON_ARRAY: {
      lua_createtable(L, (int)json_array_size(v), 0);
      size_t i;
      json_t *x;
      json_array_foreach(v, i, x) {
        /* A sequence cannot hold nil: a missing value reads as NaN. */
        if (json_is_null(x))
          lua_pushnumber(L, NAN);
        else
          push_json_value(L, x, depth + 1);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
      }
      break;
    }
    case JSON_STRING:
      lua_pushlstring(L, json_string_value(v), json_string_length(v));
      break;
    case JSON_INTEGER:
      lua_pushinteger(L, (lua_Integer)json_integer_value(v));
      break;
    case JSON_REAL:
      lua_pushnumber(L, json_real_value(v));
      break;
    case JSON_TRUE:
      lua_pushboolean(L, 1);
      break;
    case JSON_FALSE:
      lua_pushboolean(L, 0);
      break;
    case JSON_NULL:
      lua_pushnil(L);
      break;
  }
}

void lcfg_push_json(lua_State *L, const char *text) {
  json_t *v = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
  if (!v) {
    lua_pushnil(L);
    return;
  }
  /* Lua errors cannot happen below except out of memory, where Lua would abort anyway. */
  push_json_value(L, v, 0);
  json_decref(v);
}
