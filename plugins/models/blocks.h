/* blocks.h — building blocks shared by the model plugins (compiled into each .so).
 *
 * A conv stack is the front end of the CNN, CRNN and CNN-Transformer models: blocks of
 * convolutions with batch norm and ReLU, a max-pool and dropout per block. Parameter names
 * follow the equivalent PyTorch nn.Sequential ("features.<index>.weight"), so weights port
 * between the two by name.
 */
#ifndef MF_PLUGIN_BLOCKS_H
#define MF_PLUGIN_BLOCKS_H

#include "melforge/plugin.h"

#define MAX_BLOCKS 16
#define MAX_LAYERS 64

typedef enum block_order {
  ORDER_CONV_BN_RELU = 0,     /* [conv -> bn -> relu] x n -> pool -> dropout */
  ORDER_CONV_RELU_POOL_BN = 1 /* [conv -> relu] x n -> pool -> bn -> dropout (Keras notebooks) */
} block_order;

typedef struct conv_stack_cfg {
  int nblocks;
  int64_t filters[MAX_BLOCKS];
  int convs_per_block;
  int kernel;
  int pool[MAX_BLOCKS][2]; /* per block (kh, kw); (1, 1) means no pooling */
  block_order order;
  int conv_bias;
  float dropout;      /* after each block, 0 for none */
  int spatial_dropout; /* Dropout2d instead of Dropout */
} conv_stack_cfg;

typedef struct conv_layer {
  mf_tensor *w, *b;                  /* conv */
  mf_tensor *bn_g, *bn_b, *bn_m, *bn_v; /* batch norm (after the conv, or after the pool) */
  int pool_after;                    /* index of the block whose pool follows, -1 if none */
} conv_layer;

typedef struct conv_stack {
  conv_stack_cfg cfg;
  conv_layer layer[MAX_LAYERS];
  int nlayers;
  int next_index; /* next nn.Sequential index (for callers that continue the numbering) */
  int64_t out_c, out_h, out_w;
} conv_stack;

/* Reads filters, convs_per_block, kernel, pool, order, conv_bias, spatial_dropout and the
 * block dropout (a float parameter named dropout_param) from the component's values. */
int conv_stack_cfg_read(const mf_api *mf, const mf_values *v, const char *dropout_param,
                        conv_stack_cfg *cfg);
/* Registers the parameters "<prefix>.<i>.*" for an input [c, h, w]; NULL-safe errors. */
int conv_stack_create(const mf_api *mf, conv_stack *cs, const char *prefix, mf_params *store,
                      int64_t c, int64_t h, int64_t w, mf_rng *rng);
/* y = op(x) in a chain: in evaluation, x's memory goes back to the arena once y exists
 * (mf_ctx_release) unless x is the caller's input (*owned == 0 at the chain's start) or y
 * shares its data. Returns y and marks it owned. */
mf_tensor *chain_step(const mf_api *mf, mf_ctx *ctx, mf_tensor *x, mf_tensor *y, int *owned);

mf_tensor *conv_stack_forward(const mf_api *mf, const conv_stack *cs, mf_ctx *ctx, mf_tensor *x,
                              int training);

/* A linear layer's parameters "<name>.weight" [out, in] and "<name>.bias" [out], PyTorch init. */
int linear_create(const mf_api *mf, mf_params *store, const char *name, int64_t in, int64_t out,
                  int bias, mf_rng *rng, mf_tensor **w, mf_tensor **b);
/* A batchnorm's "<name>.weight/.bias/.running_mean/.running_var" (1, 0, 0, 1). */
int batchnorm_create(const mf_api *mf, mf_params *store, const char *name, int64_t c,
                     mf_tensor **g, mf_tensor **b, mf_tensor **m, mf_tensor **v);

/* A classifier head: [dense -> ReLU (-> batchnorm) -> dropout] x n -> classes, named as the
 * equivalent nn.Sequential "<prefix>.<index>" starting at first_index (the indices before it
 * belong to pooling/flatten modules of the same Sequential). */
#define MAX_DENSE 8
typedef struct dense_head {
  int n;
  mf_tensor *w[MAX_DENSE + 1], *b[MAX_DENSE + 1];
  mf_tensor *bn_g[MAX_DENSE], *bn_b[MAX_DENSE], *bn_m[MAX_DENSE], *bn_v[MAX_DENSE];
  float dropout;
} dense_head;

int dense_head_create(const mf_api *mf, dense_head *h, mf_params *store, const char *prefix,
                      int first_index, int64_t in, const int64_t *units, int n, int n_classes,
                      int batchnorm, float dropout, mf_rng *rng);
mf_tensor *dense_head_forward(const mf_api *mf, const dense_head *h, mf_ctx *ctx, mf_tensor *x,
                              int training);

/* The input as [N, C, H, W]: [N, H, W] gets a channel axis; [N, C, H, W] passes through. */
mf_tensor *as_image(const mf_api *mf, mf_ctx *ctx, mf_tensor *x);
/* The sample shape as (C, H, W); fails for shapes that are not 2-d or 3-d. */
int image_dims(const mf_api *mf, const mf_model_io *io, int64_t *c, int64_t *h, int64_t *w);

#define BN_MOMENTUM 0.1f
#define BN_EPS 1e-5f

/* Parameter specs shared by the conv-stack models (part of each one's schema; the block
 * dropout is declared by each model under its own name). */
#define CONV_STACK_PARAMS(filters_def, convs_def, pool_def)                                       \
  {"filters", MF_PT_INT_LIST, filters_def, 1, 4096, NULL, "output channels of each conv block"},   \
  {"convs_per_block", MF_PT_INT, convs_def, 1, 8, NULL, "convolutions in each block"},             \
  {"kernel", MF_PT_INT, "3", 1, 15, NULL, "square kernel size of every convolution ('same' padding)"}, \
  {"pool", MF_PT_INT_LIST, pool_def, 1, 16, NULL,                                                  \
   "max-pool (h, w) after each block; 2 values for all blocks or 2 per block"},                    \
  {"order", MF_PT_STRING, "conv-bn-relu", 0, -1, "conv-bn-relu|conv-relu-pool-bn",                 \
   "block layout: conv-bn-relu per conv, or conv-relu per conv then pool then batchnorm"},        \
  {"conv_bias", MF_PT_BOOL, "false", 0, -1, NULL, "give convolutions a bias"},                    \
  {"spatial_dropout", MF_PT_BOOL, "false", 0, -1, NULL,                                            \
   "drop whole channels (Dropout2d) instead of single activations"}

#endif
