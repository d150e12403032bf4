/* melforge/experiment.h — experiments written in Lua (DESIGN.md section 6): load a script,
 * run what it defines, collect the results.
 *
 * A script gets the experiment API with `local mf = require "melforge"`:
 *
 *   mf.experiment { name = ..., seed = ..., data = ..., model = ..., ... }  -> experiment
 *   mf.dataset { path = "x.h5" }  or  mf.dataset { audio = DIR, feature = ..., cache = "x.h5" }
 *   mf.feature(name, params)  mf.model(name, params)  mf.augment(name, params)
 *   mf.optimizer(name, params)  mf.schedule(name, params)
 *   mf.run(experiment [, overrides])  -> the run's summary.json as a Lua table (+ run_dir)
 *   mf.version
 *
 * Every constructor validates its arguments when it is called: an unknown key or plugin
 * parameter (with a "did you mean" hint), a wrong type or a missing required key is an
 * error that names the script file and the line of the call. An experiment is a value:
 * exp:with { ... } and mf.run(exp, { ... }) work on copies, so one base experiment serves a
 * whole sweep.
 *
 * Life cycle, from C (the `melforge run` command):
 *
 *   mf_lua_options opt = {.set = sets, .n_set = n, .resume = 0, .hooks = &hooks};
 *   mf_lua_report report = {0};
 *   mf_status s = mf_lua_run_file("experiments/quickstart.lua", &opt, &report);
 *   ... report.runs[i]: every run the script started, finished or not ...
 *   mf_lua_report_clear(&report);
 *
 * mf_lua_run_file creates a fresh Lua 5.4 state, runs the script, then runs the experiment
 * the script returned unless mf.run already ran it (a script may also return a list of
 * experiments, or only call mf.run). The state is closed before it returns. Plugins must be
 * loaded beforehand (the default search path is loaded when no component is registered).
 *
 * Run folders: <root>/<experiment name>/<seed>, where root is opt->runs_root (--out), else
 * the experiment's `out` key, else "runs"; relative paths are relative to the working
 * directory. With opt->resume, a run whose folder holds summary.json is not run again (its
 * summary is read back), one with last.h5 continues from it, any other starts afresh.
 * Without it, a folder holding an earlier run is reused and its summary.json removed first
 * (so a later --resume cannot mistake it for this run's).
 *
 * Overrides (opt->set, "key=value" as given to --set) apply to every run, after the
 * script's own settings: dotted keys reach into sections and plugin parameters
 * ("epochs=5", "optimizer.lr=1e-4", "model.dropout=0.3", "data.cache=x.h5",
 * "split.group=none"); values are read like plugin parameters on the command line
 * (numbers, true/false, {1, 2} lists, bare strings).
 *
 * Interruption: when *opt->hooks->interrupt becomes non-zero the running training stops
 * after its step and writes last.h5, and the script is stopped (Lua code too, between
 * runs): the call returns MF_EINTERRUPT and the report marks the run interrupted.
 */
#ifndef MELFORGE_EXPERIMENT_H
#define MELFORGE_EXPERIMENT_H

#include <stdint.h>

#include "melforge/error.h"
#include "melforge/train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One run a script asked for, in the order they ran. */
typedef struct mf_lua_run {
  char *experiment; /* the experiment's name */
  char *model;      /* the model plugin */
  uint64_t seed;
  int epochs;           /* as configured */
  char *run_dir;        /* <root>/<name>/<seed> */
  int64_t params_count; /* trainable parameters; -1 when the run did not get that far */
  mf_status status;     /* MF_OK, MF_EINTERRUPT, or why it failed */
  int resumed;          /* continued from last.h5 */
  int skipped;          /* --resume found a finished run: nothing was trained */
  mf_run_result result; /* metrics; result.summary_json is NULL unless the run finished */
} mf_lua_run;

typedef struct mf_lua_report {
  mf_lua_run *runs;
  int n_runs;
} mf_lua_report;

typedef struct mf_lua_options {
  const char *const *set; /* "key=value" overrides for every run, applied in order */
  int n_set;
  int resume;                  /* continue runs from their last.h5 (see above) */
  const char *runs_root;       /* NULL: the experiment's `out`, else "runs" */
  const mf_train_hooks *hooks; /* messages, progress, interrupt flag (may be NULL) */
  /* Called when a run is about to start (run->resumed / run->skipped already set). */
  void (*run_begin)(const mf_lua_run *run, void *user);
  void *user; /* for run_begin */
} mf_lua_options;

/* Runs the script at `path` and every experiment it runs or returns. Returns MF_OK when all
 * runs finished; MF_EINTERRUPT when interrupted; otherwise the first failure, with
 * mf_error() naming the script position ("experiments/x.lua:12: ..."). The report holds
 * every run started, also when the call fails (clear it in every case). */
mf_status mf_lua_run_file(const char *path, const mf_lua_options *opt, mf_lua_report *report);
/* The same for a script given as text; `name` stands for its file in messages. */
mf_status mf_lua_run_source(const char *name, const char *text, const mf_lua_options *opt,
                            mf_lua_report *report);
void mf_lua_report_clear(mf_lua_report *report);

/* Evaluates a script that returns one experiment and resolves it into *cfg, as a run would
 * (overrides from opt->set applied, out_dir and source filled in), without training: for
 * tests and tools. text NULL reads `name` as a file. mf.run is an error in such a script.
 * On success the caller owns *cfg (mf_train_config_clear). */
mf_status mf_lua_load_config(const char *name, const char *text, const mf_lua_options *opt,
                             mf_train_config *cfg);

/* Checks one "key=value" override's key against the experiment's keys (plugin parameter
 * names are checked when the override meets the plugin). For early usage errors. */
mf_status mf_lua_check_override(const char *assignment);

#ifdef __cplusplus
}
#endif
#endif
