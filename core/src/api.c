/* api.c — the table of core functions handed to plugins (mf_api in plugin.h). */
#include "melforge/component.h"
#include "melforge/melforge.h"

static mf_tensor *param(mf_params *store, const char *name, mf_shape shape) {
  return mf_params_add(store, name, shape);
}
static mf_tensor *buffer(mf_params *store, const char *name, mf_shape shape) {
  return mf_params_add_buffer(store, name, shape);
}
static void kaiming_uniform(mf_tensor *t, mf_rng *rng, double a, int fan_mode, int nonlin) {
  mf_init_kaiming_uniform(t, rng, a, (mf_fan_mode)fan_mode, (mf_nonlinearity)nonlin);
}

static const mf_api g_api = {
    .abi_version = MF_PLUGIN_ABI_VERSION,
    .set_error = mf_set_error,
    .error = mf_error,
    .value_int = mf_values_int,
    .value_float = mf_values_float,
    .value_bool = mf_values_bool,
    .value_string = mf_values_string,
    .value_ints = mf_values_ints,
    .value_floats = mf_values_floats,
    .param = param,
    .buffer = buffer,
    .init_constant = mf_init_constant,
    .init_uniform = mf_init_uniform,
    .init_normal = mf_init_normal,
    .init_xavier_uniform = mf_init_xavier_uniform,
    .init_kaiming_uniform = kaiming_uniform,
    .init_linear_default = mf_init_linear_default,
    .init_conv_default = mf_init_conv_default,
    .rng_u32 = mf_rng_u32,
    .rng_uniform = mf_rng_uniform,
    .rng_normal = mf_rng_normal,
    .rng_below = mf_rng_below,
    .tensor = mf_ctx_tensor,
    .zeros = mf_ctx_zeros,
    .tensor_from = mf_ctx_tensor_from,
    .release = mf_ctx_release,
    .add = mf_add,
    .sub = mf_sub,
    .mul = mf_mul,
    .div = mf_div,
    .scale = mf_scale,
    .add_scalar = mf_add_scalar,
    .relu = mf_relu,
    .relu_ = mf_relu_,
    .gelu = mf_gelu,
    .tanh = mf_tanh,
    .sigmoid = mf_sigmoid,
    .softmax = mf_softmax,
    .log_softmax = mf_log_softmax,
    .matmul = mf_matmul,
    .matmul_ex = mf_matmul_ex,
    .linear = mf_linear,
    .conv2d = mf_conv2d,
    .max_pool2d = mf_max_pool2d,
    .avg_pool2d = mf_avg_pool2d,
    .global_avg_pool2d = mf_global_avg_pool2d,
    .batchnorm = mf_batchnorm,
    .layernorm = mf_layernorm,
    .dropout = mf_dropout,
    .dropout2d = mf_dropout2d,
    .reshape = mf_reshape,
    .flatten = mf_flatten,
    .permute = mf_permute,
    .transpose = mf_transpose,
    .concat = mf_concat,
    .slice = mf_slice,
    .sum = mf_sum,
    .mean = mf_mean,
    .lstm = mf_lstm,
    .gru = mf_gru,
    .self_attention = mf_self_attention,
    .positional_encoding = mf_positional_encoding,
    .additive_attention_pool = mf_additive_attention_pool,
};

const mf_api *mf_api_table(void) { return &g_api; }
