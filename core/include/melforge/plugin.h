/* melforge/plugin.h — the plugin SDK: everything a model, feature or augmentation plugin
 * needs, and nothing else.
 *
 * A plugin is a shared object exporting one symbol, melforge_plugin_init, best written with
 * MF_PLUGIN_ENTRY. The core calls it with its ABI version and a registrar; the plugin checks
 * the version (the macro does) and registers its components: each a kind, a name, a
 * one-line description, a parameter schema and a table of functions.
 *
 *     static const mf_api *mf;   // the core's functions, handed in at init
 *
 *     static const mf_param_spec cnn_params[] = {
 *       {"filters", MF_PT_INT_LIST, "{32, 64, 128}", 1, 4096, NULL, "output channels per block"},
 *       {"dropout", MF_PT_FLOAT, "0.25", 0, 0.999, NULL, "dropout after each block"},
 *       {0}};
 *
 *     static int init(const mf_registrar *reg) {
 *       mf = reg->api;
 *       return reg->add_model(reg, &(mf_component_desc){"cnn", "conv blocks + dense head",
 *                             cnn_params}, &cnn_vtable);
 *     }
 *     MF_PLUGIN_ENTRY(init)
 *
 * A plugin never calls the core through symbols it happens to find: every core function
 * it uses comes from the mf_api table (mf->conv2d(ctx, ...)). Plugins are linked without
 * libmelforge and with -Wl,--no-undefined, which turns a direct call into a link error.
 *
 * Parameters are declared with their type, default (as text, parsed by the core with the
 * same rules as the command line), range and doc. The core validates every value coming
 * from Lua or the command line against the schema before a component sees it: unknown
 * names get a "did you mean" hint, wrong types and out-of-range values name the parameter,
 * the component and the accepted range.
 */
#ifndef MELFORGE_PLUGIN_H
#define MELFORGE_PLUGIN_H

#include <stdint.h>

#include "melforge/error.h"
#include "melforge/op_types.h"
#include "melforge/rng.h"
#include "melforge/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever a struct below or the mf_api table changes incompatibly. */
#ifndef MF_PLUGIN_ABI_VERSION
#define MF_PLUGIN_ABI_VERSION 1
#endif

typedef struct mf_ctx mf_ctx;
typedef struct mf_params mf_params;

/* ---- parameter schema ---------------------------------------------------------------- */

typedef enum mf_param_type {
  MF_PT_INT = 1,
  MF_PT_FLOAT = 2,
  MF_PT_BOOL = 3,
  MF_PT_STRING = 4,
  MF_PT_INT_LIST = 5,
  MF_PT_FLOAT_LIST = 6
} mf_param_type;

typedef struct mf_param_spec {
  const char *name;
  mf_param_type type;
  const char *def;     /* default as text: "512", "0.3", "true", "{32, 64}", "lstm" */
  double min, max;     /* accepted range of numbers / list elements; min > max: unbounded */
  const char *choices; /* strings: accepted values separated by '|' ("lstm|gru"), or NULL */
  const char *doc;     /* one line */
} mf_param_spec;       /* arrays of specs end with an entry whose name is NULL */

/* Validated parameter values of one component instance (opaque; read through mf_api). */
typedef struct mf_values mf_values;

/* ---- components -------------------------------------------------------------------- */

typedef enum mf_kind { MF_KIND_MODEL = 1, MF_KIND_FEATURE = 2, MF_KIND_AUGMENT = 3 } mf_kind;

typedef struct mf_component_desc {
  const char *name;        /* unique across all plugins: "cnn", "melspec", "specaugment" */
  const char *description; /* one line */
  const mf_param_spec *params;
} mf_component_desc;

/* What a model is built for. */
typedef struct mf_model_io {
  mf_shape input; /* one sample, without the batch dimension: [130, 13] or [1, 128, 130] */
  int n_classes;
} mf_model_io;

/* A model registers its parameters in `store` under PyTorch-style names and initialises
 * them with the init functions and `init_rng`; the core owns the store (optimizer state,
 * checkpoints). forward builds logits [N, n_classes] from x [N, ...input] with core ops;
 * training selects dropout / batch statistics. Errors: return NULL after mf->set_error. */
typedef struct mf_model_vtable {
  void *(*create)(const mf_values *params, const mf_model_io *io, mf_params *store,
                  mf_rng *init_rng);
  mf_tensor *(*forward)(void *state, mf_ctx *ctx, mf_tensor *x, int training);
  void (*destroy)(void *state);
} mf_model_vtable;

/* How a feature lays out its output for n samples of audio: the shape, which axis is time
 * (frames; -1 when there is none) and how many samples one frame advances (hop). The core
 * uses the time axis to pad or cut segments to a fixed number of frames and, for per-track
 * extraction, to cut a whole track's features into segments. */
typedef struct mf_feature_layout {
  mf_shape shape;
  int time_axis;
  int64_t hop;
} mf_feature_layout;

/* A feature turns mono audio at sample_rate into a float array. layout() describes the
 * output for n samples; compute() must be safe to call from several threads at once on one
 * instance (keep per-call buffers on the stack or per thread). Plans are made in create. */
typedef struct mf_feature_vtable {
  void *(*create)(const mf_values *params, double sample_rate);
  mf_status (*layout)(void *state, int64_t n_samples, mf_feature_layout *out);
  mf_status (*compute)(void *state, const float *audio, int64_t n_samples, float *out);
  void (*destroy)(void *state);
} mf_feature_vtable;

/* An augmentation changes a training batch in place: x [N, ...] and, for label-mixing
 * augmentations, targets [N, n_classes] (soft labels). Draws only from rng. */
typedef struct mf_augment_vtable {
  void *(*create)(const mf_values *params);
  mf_status (*apply)(void *state, mf_tensor *x, mf_tensor *targets, mf_rng *rng);
  void (*destroy)(void *state);
} mf_augment_vtable;

/* ---- the core's functions, as handed to plugins ----------------------------------------- */

typedef struct mf_api {
  int abi_version;

  /* errors */
  mf_status (*set_error)(mf_status code, const char *fmt, ...);
  const char *(*error)(void);

  /* parameter values */
  int64_t (*value_int)(const mf_values *v, const char *name);
  double (*value_float)(const mf_values *v, const char *name);
  int (*value_bool)(const mf_values *v, const char *name);
  const char *(*value_string)(const mf_values *v, const char *name);
  /* Lists: returns the element count, *out points at values owned by v. */
  int (*value_ints)(const mf_values *v, const char *name, const int64_t **out);
  int (*value_floats)(const mf_values *v, const char *name, const double **out);

  /* parameters and initialisation */
  mf_tensor *(*param)(mf_params *store, const char *name, mf_shape shape);
  mf_tensor *(*buffer)(mf_params *store, const char *name, mf_shape shape);
  void (*init_constant)(mf_tensor *t, float v);
  void (*init_uniform)(mf_tensor *t, mf_rng *rng, float lo, float hi);
  void (*init_normal)(mf_tensor *t, mf_rng *rng, float mean, float std);
  void (*init_xavier_uniform)(mf_tensor *t, mf_rng *rng, double gain);
  void (*init_kaiming_uniform)(mf_tensor *t, mf_rng *rng, double a, int fan_mode, int nonlin);
  void (*init_linear_default)(mf_tensor *w, mf_tensor *b, mf_rng *rng);
  void (*init_conv_default)(mf_tensor *w, mf_tensor *b, mf_rng *rng);

  /* random numbers */
  uint32_t (*rng_u32)(mf_rng *r);
  float (*rng_uniform)(mf_rng *r);
  double (*rng_normal)(mf_rng *r);
  uint32_t (*rng_below)(mf_rng *r, uint32_t n);

  /* context tensors */
  mf_tensor *(*tensor)(mf_ctx *ctx, mf_shape shape);
  mf_tensor *(*zeros)(mf_ctx *ctx, mf_shape shape);
  mf_tensor *(*tensor_from)(mf_ctx *ctx, mf_shape shape, const float *data);
  void (*release)(mf_ctx *ctx, mf_tensor *t); /* see mf_ctx_release in context.h */

  /* ops (see ops.h for each one's contract) */
  mf_tensor *(*add)(mf_ctx *ctx, mf_tensor *a, mf_tensor *b);
  mf_tensor *(*sub)(mf_ctx *ctx, mf_tensor *a, mf_tensor *b);
  mf_tensor *(*mul)(mf_ctx *ctx, mf_tensor *a, mf_tensor *b);
  mf_tensor *(*div)(mf_ctx *ctx, mf_tensor *a, mf_tensor *b);
  mf_tensor *(*scale)(mf_ctx *ctx, mf_tensor *a, float s);
  mf_tensor *(*add_scalar)(mf_ctx *ctx, mf_tensor *a, float s);
  mf_tensor *(*relu)(mf_ctx *ctx, mf_tensor *x);
  mf_tensor *(*relu_)(mf_ctx *ctx, mf_tensor *x);
  mf_tensor *(*gelu)(mf_ctx *ctx, mf_tensor *x);
  mf_tensor *(*tanh)(mf_ctx *ctx, mf_tensor *x);
  mf_tensor *(*sigmoid)(mf_ctx *ctx, mf_tensor *x);
  mf_tensor *(*softmax)(mf_ctx *ctx, mf_tensor *x, int axis);
  mf_tensor *(*log_softmax)(mf_ctx *ctx, mf_tensor *x, int axis);
  mf_tensor *(*matmul)(mf_ctx *ctx, mf_tensor *a, mf_tensor *b);
  mf_tensor *(*matmul_ex)(mf_ctx *ctx, mf_tensor *a, mf_tensor *b, int trans_a, int trans_b);
  mf_tensor *(*linear)(mf_ctx *ctx, mf_tensor *x, mf_tensor *w, mf_tensor *b);
  mf_tensor *(*conv2d)(mf_ctx *ctx, mf_tensor *x, mf_tensor *w, mf_tensor *b,
                       const mf_conv2d_opts *opts);
  mf_tensor *(*max_pool2d)(mf_ctx *ctx, mf_tensor *x, const mf_pool2d_opts *opts);
  mf_tensor *(*avg_pool2d)(mf_ctx *ctx, mf_tensor *x, const mf_pool2d_opts *opts);
  mf_tensor *(*global_avg_pool2d)(mf_ctx *ctx, mf_tensor *x);
  mf_tensor *(*batchnorm)(mf_ctx *ctx, mf_tensor *x, mf_tensor *gamma, mf_tensor *beta,
                          mf_tensor *running_mean, mf_tensor *running_var, int training,
                          float momentum, float eps);
  mf_tensor *(*layernorm)(mf_ctx *ctx, mf_tensor *x, mf_tensor *gamma, mf_tensor *beta,
                          float eps);
  mf_tensor *(*dropout)(mf_ctx *ctx, mf_tensor *x, float p, int training);
  mf_tensor *(*dropout2d)(mf_ctx *ctx, mf_tensor *x, float p, int training);
  mf_tensor *(*reshape)(mf_ctx *ctx, mf_tensor *x, mf_shape shape);
  mf_tensor *(*flatten)(mf_ctx *ctx, mf_tensor *x);
  mf_tensor *(*permute)(mf_ctx *ctx, mf_tensor *x, const int *perm);
  mf_tensor *(*transpose)(mf_ctx *ctx, mf_tensor *x, int axis0, int axis1);
  mf_tensor *(*concat)(mf_ctx *ctx, mf_tensor *const *xs, int n, int axis);
  mf_tensor *(*slice)(mf_ctx *ctx, mf_tensor *x, int axis, int64_t start, int64_t end);
  mf_tensor *(*sum)(mf_ctx *ctx, mf_tensor *x, const int *axes, int naxes, int keepdim);
  mf_tensor *(*mean)(mf_ctx *ctx, mf_tensor *x, const int *axes, int naxes, int keepdim);
  mf_tensor *(*lstm)(mf_ctx *ctx, mf_tensor *x, mf_tensor *w_ih, mf_tensor *w_hh, mf_tensor *b_ih,
                     mf_tensor *b_hh, int reverse);
  mf_tensor *(*gru)(mf_ctx *ctx, mf_tensor *x, mf_tensor *w_ih, mf_tensor *w_hh, mf_tensor *b_ih,
                    mf_tensor *b_hh, int reverse);
  mf_tensor *(*self_attention)(mf_ctx *ctx, mf_tensor *x, mf_tensor *in_w, mf_tensor *in_b,
                               mf_tensor *out_w, mf_tensor *out_b, int heads, float dropout,
                               int training);
  mf_tensor *(*positional_encoding)(mf_ctx *ctx, mf_tensor *x);
  mf_tensor *(*additive_attention_pool)(mf_ctx *ctx, mf_tensor *h, mf_tensor *w, mf_tensor *b,
                                        mf_tensor *v);
} mf_api;

/* ---- registration ------------------------------------------------------------------- */

typedef struct mf_registrar mf_registrar;
struct mf_registrar {
  const mf_api *api;
  /* Each returns MF_OK, or an error (duplicate name, invalid schema) the plugin passes on. */
  mf_status (*add_model)(const mf_registrar *reg, const mf_component_desc *desc,
                         const mf_model_vtable *vt);
  mf_status (*add_feature)(const mf_registrar *reg, const mf_component_desc *desc,
                           const mf_feature_vtable *vt);
  mf_status (*add_augment)(const mf_registrar *reg, const mf_component_desc *desc,
                           const mf_augment_vtable *vt);
  /* Called by MF_PLUGIN_ENTRY when the versions differ; records both for the message. */
  mf_status (*abi_mismatch)(const mf_registrar *reg, int plugin_abi);
  void *core; /* the core's bookkeeping */
};

typedef mf_status (*mf_plugin_init_fn)(const mf_registrar *reg, int core_abi_version);
#define MF_PLUGIN_ENTRY_SYMBOL "melforge_plugin_init"

/* Defines the entry symbol: checks the ABI version, then calls fn(reg). */
#define MF_PLUGIN_ENTRY(fn)                                                                        \
  __attribute__((visibility("default"))) mf_status melforge_plugin_init(const mf_registrar *reg,   \
                                                                        int core_abi_version);     \
  mf_status melforge_plugin_init(const mf_registrar *reg, int core_abi_version) {                  \
    if (core_abi_version != MF_PLUGIN_ABI_VERSION) return reg->abi_mismatch(reg, MF_PLUGIN_ABI_VERSION); \
    return fn(reg);                                                                                \
  }

#ifdef __cplusplus
}
#endif
#endif
