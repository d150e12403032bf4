/* lua_internal.h — what the two halves of the Lua front end share: lua_config.c turns Lua
 * values into configurations (constructors, keys, overrides), lua_experiment.c runs them
 * (the state, `require "melforge"`, mf.run, reports). */
#ifndef MF_LUA_INTERNAL_H
#define MF_LUA_INTERNAL_H

#include <lua.h>

#include "melforge/experiment.h"

/* A schedule as the scripts describe it: the engine's settings plus whether the plateau
 * mode was given (otherwise it follows the monitored metric). */
typedef struct lsched {
  mf_schedule_config cfg;
  int mode_set;
} lsched;

/* mf.experiment{...}: a full userdata owning its configuration. */
typedef struct lexp {
  mf_train_config cfg; /* cfg.schedule is synced from sched by lcfg_finish */
  lsched sched;
  char *out_root; /* `out`: the runs root; NULL: the default */
  int ran;        /* passed to mf.run: not run again when the script returns it */
} lexp;

#define LEXP_META "melforge.experiment"
#define LDATA_META "melforge.dataset"
#define LCOMP_META "melforge.component"
#define LOPT_META "melforge.optimizer"
#define LSCHED_META "melforge.schedule"

/* mf.dataset{...}, mf.model(...) / feature / augment, mf.optimizer(...): userdata owning
 * what they hold. */
typedef struct ldata {
  mf_data_config d;
} ldata;
typedef struct lcomp {
  mf_choice c;
} lcomp;
typedef struct lopt {
  mf_optim_config cfg;
} lopt;

/* Registers the metatables of experiments, datasets, components, optimizers and
 * schedules: once per state, before any script runs (a script may return a plain table
 * without requiring melforge, and its experiment still needs its __gc). */
void lcfg_register_types(lua_State *L);
/* Adds the constructors (experiment, dataset, feature, model, augment, optimizer,
 * schedule) to the table on top of the stack. */
void lcfg_open(lua_State *L);

/* The experiment at idx: an mf.experiment value, or a plain table made into one (pushed
 * then; the returned pointer stays valid while it is on the stack). NULL for other values. */
lexp *lcfg_to_experiment(lua_State *L, int idx);
/* Pushes a new experiment holding a deep copy of src. */
lexp *lcfg_copy_experiment(lua_State *L, const lexp *src);
/* mf.run's second argument: keys (dotted ones too) merged into e. */
void lcfg_apply_table(lua_State *L, lexp *e, int idx);
/* One --set "key=value"; errors are prefixed with "--set key=value: ". */
void lcfg_apply_override(lua_State *L, lexp *e, const char *assignment);
/* Cross-key checks and the derived settings (schedule, plateau mode); raises a positioned
 * error naming the experiment. */
void lcfg_finish(lua_State *L, lexp *e);

/* Raises "file:line: message" at the innermost script line on the stack (or "file: "
 * when no script function is running). */
int lcfg_error(lua_State *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Deep copy of a configuration (strings and parameter values duplicated). */
void lcfg_config_copy(mf_train_config *dst, const mf_train_config *src);

/* Pushes a JSON text as Lua values (objects -> tables, arrays -> sequences); nil when the
 * text is not JSON. */
void lcfg_push_json(lua_State *L, const char *text);

/* ---- between lua_config.c, lua_keys.c and lua_objects.c ---------------------------------- */

#define MAX_KEYS 128 /* keys of one table */
#define MAX_LIST 64  /* elements of a list value (as plugin parameters allow) */

/* Where a value being applied comes from, for messages, and what a batch of keys gave. */
typedef struct cfgctx {
  const char *override; /* the --set assignment being applied, or NULL (a script value) */
  char path[256];       /* dotted prefix of the section being filled ("" at the top) */
  unsigned given;       /* keys given in the current batch, by field index */
} cfgctx;

/* How a --set value reads. */
typedef enum text_kind { TX_INT, TX_NUM, TX_BOOL, TX_STR, TX_NUMS, TX_NAMES, TX_SECTION } text_kind;

typedef void (*set_fn)(lua_State *L, cfgctx *c, void *obj, int idx, const char *key);

typedef struct section section;
/* One key of a section. */
typedef struct field {
  const char *name;
  set_fn set; /* from the Lua value at idx (absolute); key is the full dotted name */
  text_kind text;
  unsigned only;      /* variants the key applies to (optimizer / schedule kind bits); 0: all */
  const section *sub; /* dotted keys continue in this section */
  /* ... on this object */
  void *(*child)(lua_State *L, cfgctx *c, void *obj);
  /* or the rest of a dotted key names a parameter of this plugin component */
  mf_choice *(*choice)(lua_State *L, cfgctx *c, void *obj, const char *key);
} field;

struct section {
  const char *what; /* owner in messages: "experiment", "split", "dataset" */
  const char *noun; /* "key" or "parameter" */
  const field *fields;
  int name_first; /* field 0 picks the variant: applied before the others */
  unsigned (*variant)(const void *obj);
  void (*variant_owner)(const void *obj, char *buf, size_t n); /* "optimizer 'adam'" */
  void (*done)(lua_State *L, cfgctx *c, void *obj);            /* after a batch of keys */
};

extern const section lcfg_experiment_keys, lcfg_dataset_keys, lcfg_optimizer_keys,
    lcfg_schedule_keys;
extern const char *const lcfg_optim_names[], *const lcfg_sched_names[];

/* Errors: positioned at the script line, or prefixed "--set k=v: " for overrides. */
int lcfg_fail(lua_State *L, const cfgctx *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int lcfg_type_error(lua_State *L, const cfgctx *c, int idx, const char *key, const char *expects);
/* What a value is, for "expects X, got Y". */
const char *lcfg_describe(lua_State *L, int idx, char *buf, size_t n);

/* Typed reads of the value at idx, raising "key expects ..." otherwise. */
int64_t lcfg_want_int(lua_State *L, const cfgctx *c, int idx, const char *key, int64_t lo,
                      int64_t hi);
double lcfg_want_num(lua_State *L, const cfgctx *c, int idx, const char *key, double lo, double hi);
int lcfg_want_bool(lua_State *L, const cfgctx *c, int idx, const char *key);
const char *lcfg_want_str(lua_State *L, const cfgctx *c, int idx, const char *key);
const char *lcfg_want_opt_str(lua_State *L, const cfgctx *c, int idx, const char *key);
void lcfg_replace_str(char **dst, const char *s);

/* Whether --set text reads as the kind (msg says why not). */
int lcfg_text_ok(text_kind k, const char *key, const char *text, char *msg, size_t n);
/* A field's index, -1 when unknown (obj NULL: in any variant). */
int lcfg_find_field(const section *s, const void *obj, const char *name);
void lcfg_unknown_msg(const section *s, const void *obj, const char *prefix, const char *key,
                      char *buf, size_t n);

/* A table of keys applied to obj; the same under `key` as message prefix; one dotted key,
 * from text (--set) or the Lua value at idx. */
void lcfg_apply(lua_State *L, cfgctx *c, const section *s, void *obj, int idx);
void lcfg_apply_section(lua_State *L, cfgctx *c, const section *s, void *obj, int idx,
                        const char *key);
void lcfg_apply_path(lua_State *L, cfgctx *c, const section *s, void *obj, const char *path,
                     const char *text, int idx);

/* Plugin components and their parameters. */
const mf_component *lcfg_find_component(lua_State *L, const cfgctx *c, mf_kind kind,
                                        const char *name);
void lcfg_set_params(lua_State *L, cfgctx *c, mf_values *v, int idx);
void lcfg_choice_clear(mf_choice *ch);
void lcfg_choice_copy(mf_choice *dst, const mf_choice *src);
void lcfg_set_choice(lua_State *L, cfgctx *c, mf_choice *ch, mf_kind kind, int idx,
                     const char *key);
mf_choice *lcfg_existing_choice(lua_State *L, cfgctx *c, mf_choice *ch, mf_kind kind,
                                const char *key);

/* Datasets, optimizers, schedules. */
void lcfg_data_init(mf_data_config *d);
void lcfg_data_clear(mf_data_config *d);
void lcfg_data_copy(mf_data_config *dst, const mf_data_config *src);
mf_optim_kind lcfg_optim_kind(lua_State *L, cfgctx *c, const char *name, const char *key);
mf_schedule_kind lcfg_sched_kind(lua_State *L, cfgctx *c, const char *name, const char *key);
/* cfg.schedule from e->sched: base rate, plateau mode. */
void lcfg_sync_schedule(lexp *e);

#endif
