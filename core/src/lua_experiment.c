/* lua_experiment.c — running experiment scripts: the Lua state with `require "melforge"`,
 * mf.run (copy, overrides, run folder, resume, the engine), what happens to the value a
 * script returns, and the report of every run (melforge/experiment.h).
 *
 * Failures inside the state are Lua errors; the C entry points run everything in protected
 * mode and turn the error back into an mf_status and mf_error() text. The engine's own
 * status (an I/O error, divergence, an interruption) is remembered in the state so the
 * caller sees it rather than a generic script error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lua_internal.h"
#include "melforge/report.h"
#include "melforge/runtime.h"
#include "train_internal.h"

typedef struct lstate {
  const mf_lua_options *opt;
  mf_lua_report *report;
  const char *script; /* its path, as given */
  const char *text;   /* its source */
  int config_only;    /* mf_lua_load_config: resolve, never train */
  mf_train_config *config_out;
  int runs; /* mf.run calls so far (skipped ones included) */
  int interrupted;
  mf_status status; /* the engine's status behind the Lua error being raised */
} lstate;

static lstate *state_of(lua_State *L) { return *(lstate **)lua_getextraspace(L); }

static char *read_text_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  for (size_t got; buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
    n += got;
    if (n + 1 == cap) {
      char *grown = realloc(buf, cap *= 2);
      if (!grown) {
        free(buf);
        buf = NULL;
      }
      buf = grown;
    }
  }
  int bad = ferror(f);
  fclose(f);
  if (!buf || bad) {
    free(buf);
    return NULL;
  }
  buf[n] = '\0';
  return buf;
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

/* ---- results ------------------------------------------------------------------------------ */

static double json_num_at(json_t *o, const char *a, const char *b) {
  json_t *v = json_object_get(o, a);
  if (b) v = json_object_get(v, b);
  return json_is_number(v) ? json_number_value(v) : NAN;
}

/* The report's numbers from a summary.json text (runs skipped by --resume have nothing
 * else). */
static void fill_from_summary(mf_lua_run *run, const char *text) {
  json_t *o = json_loads(text, 0, NULL);
  if (!o) return;
  json_t *pc = json_object_get(o, "params_count");
  if (json_is_integer(pc)) run->params_count = (int64_t)json_integer_value(pc);
  mf_run_result *r = &run->result;
  double v = json_num_at(o, "epochs_run", NULL);
  if (!isnan(v)) r->epochs_run = (int)v;
  v = json_num_at(o, "best_epoch", NULL);
  if (!isnan(v)) r->best_epoch = (int)v;
  r->stopped_early = json_is_true(json_object_get(o, "stopped_early"));
  r->train_seconds = json_num_at(o, "train_seconds", NULL);
  r->test_accuracy = json_num_at(o, "test", "accuracy");
  r->test_track_accuracy = json_num_at(o, "test", "track_accuracy");
  r->test_macro_f1 = json_num_at(o, "test", "macro_f1");
  json_decref(o);
}

static mf_lua_run *report_add(lua_State *L, lstate *ls, const lexp *e) {
  mf_lua_report *rep = ls->report;
  mf_lua_run *grown = realloc(rep->runs, sizeof *grown * (size_t)(rep->n_runs + 1));
  if (!grown) lcfg_error(L, "out of memory");
  rep->runs = grown;
  mf_lua_run *run = &rep->runs[rep->n_runs++];
  memset(run, 0, sizeof *run);
  run->experiment = strdup(e->cfg.name);
  run->model = strdup(mf_component_name(e->cfg.model.component));
  run->seed = e->cfg.seed;
  run->epochs = e->cfg.epochs;
  run->run_dir = strdup(e->cfg.out_dir);
  run->params_count = -1;
  run->status = MF_OK;
  return run;
}

/* Pushes a summary as a table, with run_dir added. */
static void push_summary(lua_State *L, const char *json, const char *run_dir) {
  lcfg_push_json(L, json);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
  }
  lua_pushstring(L, run_dir);
  lua_setfield(L, -2, "run_dir");
}

/* ---- running one experiment ------------------------------------------------------------- */

static void replace_str(char **dst, const char *s) {
  char *d = s ? strdup(s) : NULL;
  free(*dst);
  *dst = d;
}

/* The run folder (<root>/<name>/<seed>) and the script's text go into the configuration. */
static void resolve_run(lstate *ls, lexp *e) {
  const char *root = ls->opt->runs_root ? ls->opt->runs_root : e->out_root ? e->out_root : "runs";
  size_t rl = strlen(root);
  while (rl > 1 && root[rl - 1] == '/') rl--;
  size_t n = rl + strlen(e->cfg.name) + 32;
  char *dir = malloc(n);
  snprintf(dir, n, "%.*s/%s/%llu", (int)rl, root, e->cfg.name, (unsigned long long)e->cfg.seed);
  free(e->cfg.out_dir);
  e->cfg.out_dir = dir;
  replace_str(&e->cfg.source_name, ls->script);
  replace_str(&e->cfg.source_text, ls->text);
}

/* Copies base, applies the overrides (mf.run's table at overrides_idx, then --set) and
 * checks the result; the copy is pushed. */
static lexp *prepare(lua_State *L, lstate *ls, lexp *base, int overrides_idx) {
  base->ran = 1;
  lexp *e = lcfg_copy_experiment(L, base);
  if (overrides_idx) lcfg_apply_table(L, e, overrides_idx);
  for (int i = 0; i < ls->opt->n_set; i++) lcfg_apply_override(L, e, ls->opt->set[i]);
  lcfg_finish(L, e);
  resolve_run(ls, e);
  return e;
}

/* Trains e (or, with --resume, continues or skips it) and pushes its summary table. */
static int run_experiment(lua_State *L, lstate *ls, lexp *e) {
  const mf_lua_options *opt = ls->opt;
  const char *dir = e->cfg.out_dir;
  ls->runs++;
  mf_lua_run *run = report_add(L, ls, e);
  size_t pn = strlen(dir) + 32;
  char *summary_path = malloc(pn), *last_path = malloc(pn);
  snprintf(summary_path, pn, "%s/summary.json", dir);
  snprintf(last_path, pn, "%s/last.h5", dir);
  int resume = 0;
  char *done_text = NULL;
  if (opt->resume) {
    if (exists(summary_path) && (done_text = read_text_file(summary_path))) {
      run->skipped = 1;
    } else if (exists(last_path)) {
      resume = run->resumed = 1;
    } else {
      mf__say(ls->opt->hooks,
              "%s has no last.h5: experiment '%s' seed %llu starts from the beginning", dir,
              e->cfg.name, (unsigned long long)e->cfg.seed);
    }
  } else if (exists(summary_path) || exists(last_path)) {
    /* A stale summary.json would make a later --resume skip this run. */
    unlink(summary_path);
    mf__say(ls->opt->hooks,
            "%s holds an earlier run: it is replaced (--resume continues a run instead)", dir);
  }
  free(summary_path);
  free(last_path);
  if (opt->run_begin) opt->run_begin(run, opt->user);
  if (run->skipped) {
    mf__say(ls->opt->hooks, "%s finished before (summary.json): not run again", dir);
    fill_from_summary(run, done_text);
    run->result.summary_json = done_text;
    push_summary(L, done_text, dir);
    return 1;
  }
  mf_run_result res;
  mf_status s = mf_train_run(&e->cfg, resume, opt->hooks, &res);
  run->status = s;
  run->result = res;
  if (s == MF_OK) {
    if (res.summary_json) fill_from_summary(run, res.summary_json);
    push_summary(L, res.summary_json, dir);
    return 1;
  }
  char msg[3072];
  snprintf(msg, sizeof msg, "%s", mf_error());
  if (s == MF_EINTERRUPT) {
    /* Not a script error: the engine's message says where the run stopped. */
    ls->interrupted = 1;
    lua_pushstring(L, msg);
    return lua_error(L);
  }
  ls->status = s;
  return lcfg_error(L, "experiment '%s' (seed %llu) failed: %s", e->cfg.name,
                    (unsigned long long)e->cfg.seed, msg);
}

/* mf.run(experiment [, overrides]) -> summary table. */
static int l_run(lua_State *L) {
  lstate *ls = state_of(L);
  if (ls->config_only)
    lcfg_error(L,
               "mf.run cannot be used while only the configuration is read; return the "
               "experiment instead");
  if (ls->interrupted) lcfg_error(L, "interrupted");
  if (!lua_isnoneornil(L, 2) && !lua_istable(L, 2))
    lcfg_error(L, "mf.run's second argument must be a table of overrides, got a %s",
               luaL_typename(L, 2));
  const int has_overrides = lua_istable(L, 2);
  lexp *base = lcfg_to_experiment(L, 1);
  if (!base)
    lcfg_error(L, "mf.run expects an experiment (mf.experiment { ... }), got a %s",
               luaL_typename(L, 1));
  ls->status = MF_OK;
  lexp *e = prepare(L, ls, base, has_overrides ? 2 : 0);
  return run_experiment(L, ls, e);
}

/* After the script: run the experiment(s) it returned that mf.run has not run. */
static int run_returned(lua_State *L) {
  lstate *ls = state_of(L);
  const int had_runs = ls->runs > 0;
  lexp *e = luaL_testudata(L, 1, LEXP_META);
  if (e) {
    if (!e->ran) run_experiment(L, ls, prepare(L, ls, e, 0));
    return 0;
  }
  if (lua_istable(L, 1)) {
    const int is_list = lua_rawgeti(L, 1, 1) != LUA_TNIL;
    lua_pop(L, 1);
    if (!is_list) {
      /* A plain table is an experiment unless the script ran things and returns results. */
      if (!had_runs) run_experiment(L, ls, prepare(L, ls, lcfg_to_experiment(L, 1), 0));
      return 0;
    }
    const lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    for (lua_Integer i = 1; i <= n; i++) {
      const int top = lua_gettop(L);
      lua_rawgeti(L, 1, i);
      lexp *x = luaL_testudata(L, -1, LEXP_META);
      if (x && !x->ran)
        run_experiment(L, ls, prepare(L, ls, x, 0));
      else if (!x && !had_runs && lua_istable(L, -1))
        run_experiment(L, ls, prepare(L, ls, lcfg_to_experiment(L, -1), 0));
      else if (!x && !had_runs)
        lcfg_error(L, "item %lld of the list the script returns is a %s, not an experiment",
                   (long long)i, luaL_typename(L, -1));
      lua_settop(L, top);
    }
    return 0;
  }
  if (!had_runs)
    lcfg_error(L,
               "the script neither returns an experiment nor calls mf.run; end it with "
               "`return mf.experiment { ... }`");
  return 0;
}

/* mf_lua_load_config: the returned experiment, resolved into ls->config_out. */
static int resolve_returned(lua_State *L) {
  lstate *ls = state_of(L);
  lexp *e = lcfg_to_experiment(L, 1);
  if (!e)
    lcfg_error(L,
               "the script returns a %s; it must return an experiment "
               "(`return mf.experiment { ... }`)",
               luaL_typename(L, 1));
  e = prepare(L, ls, e, 0);
  lcfg_config_copy(ls->config_out, &e->cfg);
  return 0;
}

/* mf.report(run_dirs, html_path): the comparison report of runs (mf.run's summaries carry
 * run_dir), as `melforge report` writes it. Returns the path. */
static int l_report(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *out = luaL_checkstring(L, 2);
  int n = (int)luaL_len(L, 1);
  if (n < 1) return luaL_error(L, "mf.report needs at least one run folder");
  char **dirs = calloc((size_t)n, sizeof(char *));
  for (int i = 0; i < n; i++) {
    lua_geti(L, 1, i + 1);
    /* A run folder, or a summary table from mf.run. */
    if (lua_istable(L, -1)) lua_getfield(L, -1, "run_dir");
    const char *d = lua_tostring(L, -1);
    dirs[i] = d ? strdup(d) : NULL;
    lua_settop(L, 2);
    if (!dirs[i]) {
      for (int k = 0; k < i; k++) free(dirs[k]);
      free(dirs);
      return luaL_error(L, "mf.report: entry %d is neither a run folder nor a summary of mf.run",
                        i + 1);
    }
  }
  mf_comparison cmp;
  mf_status st = mf_comparison_load(dirs, n, &cmp);
  if (st == MF_OK) {
    st = mf_comparison_write_html(&cmp, out);
    mf_comparison_free(&cmp);
  }
  for (int i = 0; i < n; i++) free(dirs[i]);
  free(dirs);
  if (st != MF_OK) return luaL_error(L, "mf.report: %s", mf_error());
  lua_pushstring(L, out);
  return 1;
}

/* ---- the state ---------------------------------------------------------------------------- */

static int open_melforge(lua_State *L) {
  lua_newtable(L);
  lcfg_open(L);
  lua_pushcfunction(L, l_run);
  lua_setfield(L, -2, "run");
  lua_pushcfunction(L, l_report);
  lua_setfield(L, -2, "report");
  lua_pushstring(L, mf_version());
  lua_setfield(L, -2, "version");
  return 1;
}

/* Stops a script busy in Lua code (between or after runs) once the interrupt flag is up. */
static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lstate *ls = state_of(L);
  if (*ls->opt->hooks->interrupt) {
    ls->interrupted = 1;
    luaL_error(L, "interrupted");
  }
}

static int setup_state(lua_State *L) {
  lstate *ls = state_of(L);
  luaL_openlibs(L);
  lcfg_register_types(L);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, open_melforge);
  lua_setfield(L, -2, "melforge");
  lua_pop(L, 1);
  /* Modules next to the script come first: experiments/common.lua is `require "common"`. */
  const char *slash = strrchr(ls->script, '/');
  if (slash)
    lua_pushlstring(L, ls->script, (size_t)(slash - ls->script));
  else
    lua_pushliteral(L, ".");
  lua_pushliteral(L, "/?.lua;");
  lua_getfield(L, -3, "path");
  lua_concat(L, 3);
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
  lua_pushstring(L, ls->script);
  lua_setfield(L, LUA_REGISTRYINDEX, "melforge.script");
  return 0;
}

static mf_status run_script(lstate *ls, lua_CFunction after) {
  lua_State *L = luaL_newstate();
  if (!L) return mf_set_error(MF_ENOMEM, "out of memory creating the Lua state");
  *(lstate **)lua_getextraspace(L) = ls;
  const mf_train_hooks *h = ls->opt->hooks;
  if (h && h->interrupt) lua_sethook(L, interrupt_hook, LUA_MASKCOUNT, 1000);
  size_t cn = strlen(ls->script) + 2;
  char *chunk = malloc(cn);
  snprintf(chunk, cn, "@%s", ls->script);
  lua_pushcfunction(L, setup_state);
  int rc = lua_pcall(L, 0, 0, 0);
  if (rc == LUA_OK) rc = luaL_loadbufferx(L, ls->text, strlen(ls->text), chunk, "t");
  free(chunk);
  if (rc == LUA_OK) rc = lua_pcall(L, 0, 1, 0);
  if (rc == LUA_OK) {
    lua_pushcfunction(L, after);
    lua_insert(L, -2);
    rc = lua_pcall(L, 1, 0, 0);
  }
  mf_status s = MF_OK;
  if (rc != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    s = ls->interrupted    ? MF_EINTERRUPT
        : ls->status       ? ls->status
        : rc == LUA_ERRMEM ? MF_ENOMEM
                           : MF_EINVAL;
    mf_set_error(s, "%s", msg ? msg : "(the script raised an error that is not a string)");
  } else if (ls->interrupted) {
    s = mf_set_error(MF_EINTERRUPT, "interrupted");
  }
  lua_close(L);
  return s;
}

static const mf_lua_options NO_OPTIONS = {0};

static mf_status check_overrides(const mf_lua_options *opt) {
  for (int i = 0; i < opt->n_set; i++)
    if (mf_lua_check_override(opt->set[i]) != MF_OK) return MF_EINVAL;
  return MF_OK;
}

mf_status mf_lua_run_source(const char *name, const char *text, const mf_lua_options *opt,
                            mf_lua_report *report) {
  if (!opt) opt = &NO_OPTIONS;
  mf_lua_report local = {0};
  if (!report) report = &local;
  if (check_overrides(opt) != MF_OK) return MF_EINVAL;
  mf_runtime_init();
  lstate ls = {0};
  ls.opt = opt;
  ls.report = report;
  ls.script = name;
  ls.text = text;
  mf_status s = run_script(&ls, run_returned);
  mf_lua_report_clear(&local);
  return s;
}

mf_status mf_lua_run_file(const char *path, const mf_lua_options *opt, mf_lua_report *report) {
  char *text = read_text_file(path);
  if (!text)
    return mf_set_error(errno == ENOENT ? MF_ENOTFOUND : MF_EIO,
                        "cannot read the experiment script %s: %s", path, strerror(errno));
  mf_status s = mf_lua_run_source(path, text, opt, report);
  free(text);
  return s;
}

mf_status mf_lua_load_config(const char *name, const char *text, const mf_lua_options *opt,
                             mf_train_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  if (!opt) opt = &NO_OPTIONS;
  if (check_overrides(opt) != MF_OK) return MF_EINVAL;
  char *owned = NULL;
  if (!text) {
    if (!(owned = read_text_file(name)))
      return mf_set_error(errno == ENOENT ? MF_ENOTFOUND : MF_EIO,
                          "cannot read the experiment script %s: %s", name, strerror(errno));
    text = owned;
  }
  mf_lua_report report = {0};
  lstate ls = {0};
  ls.opt = opt;
  ls.report = &report;
  ls.script = name;
  ls.text = text;
  ls.config_only = 1;
  ls.config_out = cfg;
  mf_status s = run_script(&ls, resolve_returned);
  if (s != MF_OK) mf_train_config_clear(cfg);
  mf_lua_report_clear(&report);
  free(owned);
  return s;
}

void mf_lua_report_clear(mf_lua_report *report) {
  for (int i = 0; i < report->n_runs; i++) {
    mf_lua_run *r = &report->runs[i];
    free(r->experiment);
    free(r->model);
    free(r->run_dir);
    mf_run_result_clear(&r->result);
  }
  free(report->runs);
  memset(report, 0, sizeof *report);
}
