/* melforge/op_types.h — option structs of ops, shared by ops.h and the plugin SDK. */
#ifndef MELFORGE_OP_TYPES_H
#define MELFORGE_OP_TYPES_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mf_conv2d_opts {
  int stride[2];   /* (h, w); 0 means 1 */
  int padding[2];  /* zero padding per side (h, w); ignored when same != 0 */
  int dilation[2]; /* 0 means 1 */
  int same;        /* 1: padding 'same' (stride must be 1); odd total padding puts the extra
                      row/column at the bottom/right, as PyTorch and TensorFlow do */
} mf_conv2d_opts;
typedef struct mf_pool2d_opts {
  int kernel[2];  /* (kh, kw) */
  int stride[2];  /* 0 means the kernel size (PyTorch's default) */
  int padding[2]; /* implicit -inf (max) or zero (avg, counted: count_include_pad=True) */
  int ceil_mode;  /* 1: round the output size up, windows may hang over the edge */
} mf_pool2d_opts;
#ifdef __cplusplus
}
#endif
#endif
