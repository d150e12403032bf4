/* melforge/component.h — the core's side of plugins: loading, the component registry,
 * parameter values, and instances of models, features and augmentations.
 *
 * Life cycle:
 *   mf_plugins_load_search_path(cli_path, report, user);   // once, at start-up
 *   const mf_component *c = mf_component_find(MF_KIND_MODEL, "cnn");
 *   mf_values *v; mf_component_values(c, &v);             // the defaults
 *   mf_values_set_assignment(v, "dropout=0.3");           // validated overrides
 *   mf_model *m; mf_model_new(c, v, &io, &init_rng, &m);  // build (registers parameters)
 *   ... mf_model_forward(m, ctx, x, training) ...
 *   mf_model_free(m); mf_values_free(v);
 *
 * The registry is process-wide. Search order for plugins: the --plugin-path list, then
 * MELFORGE_PLUGIN_PATH, then the build tree, then the install prefix (each a ':'-separated
 * list of directories or .so files). A file whose name was already loaded from an earlier
 * directory is skipped (the earlier one shadows it, as with PATH); two different files
 * registering one component name is an error naming both.
 */
#ifndef MELFORGE_COMPONENT_H
#define MELFORGE_COMPONENT_H

#include <stddef.h>

#include "melforge/context.h"
#include "melforge/params.h"
#include "melforge/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- parameter values (schema-validated) ---------------------------------------------- */

/* Values holding each parameter's default. `what` names the owner in messages
 * ("model 'cnn'"). Fails when the schema itself is broken (duplicate name, bad default). */
mf_status mf_values_new(const char *what, const mf_param_spec *specs, mf_values **out);
void mf_values_free(mf_values *v);
mf_values *mf_values_clone(const mf_values *v);
/* Checks a schema (as registration does). */
mf_status mf_schema_check(const char *what, const mf_param_spec *specs);

/* Setters validate name, type and range; on error the old value stays. */
mf_status mf_values_set_text(mf_values *v, const char *name, const char *text);
mf_status mf_values_set_assignment(mf_values *v, const char *key_eq_value); /* "k=v" */
mf_status mf_values_set_int(mf_values *v, const char *name, int64_t x);
mf_status mf_values_set_float(mf_values *v, const char *name, double x);
mf_status mf_values_set_bool(mf_values *v, const char *name, int x);
mf_status mf_values_set_string(mf_values *v, const char *name, const char *x);
mf_status mf_values_set_ints(mf_values *v, const char *name, const int64_t *x, int n);
mf_status mf_values_set_floats(mf_values *v, const char *name, const double *x, int n);

/* Getters; reading an undeclared name or with the wrong type aborts (a plugin bug). */
int64_t mf_values_int(const mf_values *v, const char *name);
double mf_values_float(const mf_values *v, const char *name);
int mf_values_bool(const mf_values *v, const char *name);
const char *mf_values_string(const mf_values *v, const char *name);
int mf_values_ints(const mf_values *v, const char *name, const int64_t **out);
int mf_values_floats(const mf_values *v, const char *name, const double **out);

int mf_values_count(const mf_values *v);
const mf_param_spec *mf_values_spec_at(const mf_values *v, int i);
const char *mf_values_what(const mf_values *v);
/* Whether the value was set explicitly (not the default). */
int mf_values_is_set(const mf_values *v, const char *name);
/* The value as text ("{32, 64}", "0.25", "true"). */
char *mf_values_format(const mf_values *v, const char *name, char *buf, size_t size);
/* All values as a compact JSON object (malloc'd); and back (every key validated). */
char *mf_values_to_json(const mf_values *v);
mf_status mf_values_from_json(mf_values *v, const char *json);

const char *mf_param_type_name(mf_param_type t);
/* "an int in [1, 4096]", "one of lstm|gru", "a list of floats, each in [0, 1]": what a
 * parameter accepts. */
void mf_param_describe(const mf_param_spec *s, char *buf, size_t size);
/* The candidate closest to `name` by edit distance, or NULL if none is close. */
const char *mf_closest_name(const char *name, const char *const *candidates, int n);

/* ---- plugins and the registry --------------------------------------------------------- */

typedef struct mf_component mf_component;

/* Called for each plugin file that failed to load while scanning a search path. */
typedef void (*mf_plugin_report_fn)(const char *file, const char *message, void *user);

/* Loads one plugin file; on failure nothing it registered stays registered. */
mf_status mf_plugins_load_file(const char *path);
/* Loads every *.so in a ':'-separated list of directories and files; failures go to
 * report (may be NULL) and loading continues. Returns the number of failures. */
int mf_plugins_load_path(const char *path_list, mf_plugin_report_fn report, void *user);
/* The whole search order (cli_path may be NULL); loads at most once per process. */
int mf_plugins_load_search_path(const char *cli_path, mf_plugin_report_fn report, void *user);
/* The directories searched, in order, as one ':'-separated string (for messages). */
const char *mf_plugins_search_path(const char *cli_path);
/* Unloads everything (components, libraries); for tests and clean exits. */
void mf_plugins_unload_all(void);

int mf_component_count(void);
const mf_component *mf_component_at(int i);
/* NULL with an error naming the kind and a "did you mean" hint when not found. */
const mf_component *mf_component_find(mf_kind kind, const char *name);
const char *mf_kind_name(mf_kind kind);

const char *mf_component_name(const mf_component *c);
const char *mf_component_description(const mf_component *c);
const char *mf_component_file(const mf_component *c);
mf_kind mf_component_kind(const mf_component *c);
const mf_param_spec *mf_component_params(const mf_component *c);
/* The defaults of c's parameters. */
mf_status mf_component_values(const mf_component *c, mf_values **out);

/* The table of core functions handed to plugins. */
const mf_api *mf_api_table(void);

/* ---- instances ------------------------------------------------------------------------- */

typedef struct mf_model mf_model;
/* Builds the model: its parameters land in a new store, initialised from init_rng. */
mf_status mf_model_new(const mf_component *c, const mf_values *v, const mf_model_io *io,
                       mf_rng *init_rng, mf_model **out);
mf_tensor *mf_model_forward(mf_model *m, mf_ctx *ctx, mf_tensor *x, int training);
mf_params *mf_model_params(const mf_model *m);
const mf_model_io *mf_model_get_io(const mf_model *m);
const mf_component *mf_model_component(const mf_model *m);
const mf_values *mf_model_values(const mf_model *m);
void mf_model_free(mf_model *m);

typedef struct mf_feature mf_feature;
mf_status mf_feature_new(const mf_component *c, const mf_values *v, double sample_rate,
                         mf_feature **out);
mf_status mf_feature_layout_of(const mf_feature *f, int64_t n_samples, mf_feature_layout *out);
double mf_feature_sample_rate(const mf_feature *f);
/* Thread-safe: several threads may compute on one instance at once. */
mf_status mf_feature_compute(const mf_feature *f, const float *audio, int64_t n, float *out);
const mf_values *mf_feature_values(const mf_feature *f);
const mf_component *mf_feature_component(const mf_feature *f);
void mf_feature_free(mf_feature *f);

typedef struct mf_augment mf_augment;
mf_status mf_augment_new(const mf_component *c, const mf_values *v, mf_augment **out);
mf_status mf_augment_apply(mf_augment *a, mf_tensor *x, mf_tensor *targets, mf_rng *rng);
const mf_values *mf_augment_values(const mf_augment *a);
const mf_component *mf_augment_component(const mf_augment *a);
void mf_augment_free(mf_augment *a);

#ifdef __cplusplus
}
#endif
#endif
