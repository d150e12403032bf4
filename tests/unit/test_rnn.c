/* LSTM and GRU layers (ops_rnn.c): forward against hand-derived values and an independent
 * double-precision reference of PyTorch's formulas, direction handling, gradients against
 * finite differences, determinism.
 *
 * Forward tolerance: the op runs in float32 with ~1-ulp exp / tanh, and a few steps of a
 * small layer keep the error of every output a few float ulps of O(1) values, so 2e-6
 * absolute against the double reference (1e-5 for the larger layer, whose dot products run
 * over 150 terms).
 */
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "melforge/melforge.h"
#include "mftest.h"

/* ---- double-precision reference, written from the PyTorch documentation --------------- */

static double sigm(double v) { return 1.0 / (1.0 + exp(-v)); }

/* Pre-activation of gate row `row` (of w_ih / w_hh) for input xt and previous state h. */
static double preact(const mf_tensor *w_ih, const mf_tensor *w_hh, const mf_tensor *b_ih,
                     const mf_tensor *b_hh, int64_t row, const float *xt, const double *h,
                     int with_hidden) {
  const int64_t I = w_ih->shape[1], H = w_hh->shape[1];
  double v = b_ih ? b_ih->data[row] : 0.0;
  for (int64_t k = 0; k < I; k++) v += (double)w_ih->data[row * I + k] * xt[k];
  if (with_hidden) {
    v += b_hh ? b_hh->data[row] : 0.0;
    for (int64_t k = 0; k < H; k++) v += (double)w_hh->data[row * H + k] * h[k];
  }
  return v;
}

/* W_h? h + b_h? alone (the GRU's n gate needs the hidden part separately). */
static double hidden_part(const mf_tensor *w_hh, const mf_tensor *b_hh, int64_t row,
                          const double *h) {
  const int64_t H = w_hh->shape[1];
  double v = b_hh ? b_hh->data[row] : 0.0;
  for (int64_t k = 0; k < H; k++) v += (double)w_hh->data[row * H + k] * h[k];
  return v;
}

/* i = s(.), f = s(.), g = tanh(.), o = s(.); c' = f c + i g; h' = o tanh(c'). */
static void ref_lstm(const mf_tensor *x, const mf_tensor *w_ih, const mf_tensor *w_hh,
                     const mf_tensor *b_ih, const mf_tensor *b_hh, int reverse, double *out) {
  const int64_t N = x->shape[0], T = x->shape[1], I = x->shape[2], H = w_hh->shape[1];
  double *h = calloc((size_t)(4 * H), sizeof(double)), *c = h + H, *hn = c + H, *cn = hn + H;
  for (int64_t n = 0; n < N; n++) {
    memset(h, 0, (size_t)(2 * H) * sizeof(double));
    for (int64_t s = 0; s < T; s++) {
      const int64_t t = reverse ? T - 1 - s : s;
      const float *xt = x->data + (n * T + t) * I;
      for (int64_t k = 0; k < H; k++) {
        double ig = sigm(preact(w_ih, w_hh, b_ih, b_hh, 0 * H + k, xt, h, 1));
        double fg = sigm(preact(w_ih, w_hh, b_ih, b_hh, 1 * H + k, xt, h, 1));
        double gg = tanh(preact(w_ih, w_hh, b_ih, b_hh, 2 * H + k, xt, h, 1));
        double og = sigm(preact(w_ih, w_hh, b_ih, b_hh, 3 * H + k, xt, h, 1));
        cn[k] = fg * c[k] + ig * gg;
        hn[k] = og * tanh(cn[k]);
      }
      memcpy(h, hn, (size_t)H * sizeof(double));
      memcpy(c, cn, (size_t)H * sizeof(double));
      for (int64_t k = 0; k < H; k++) out[(n * T + t) * H + k] = h[k];
    }
  }
  free(h);
}

/* r = s(.), z = s(.), n = tanh(W_in x + b_in + r (W_hn h + b_hn)); h' = (1 - z) n + z h. */
static void ref_gru(const mf_tensor *x, const mf_tensor *w_ih, const mf_tensor *w_hh,
                    const mf_tensor *b_ih, const mf_tensor *b_hh, int reverse, double *out) {
  const int64_t N = x->shape[0], T = x->shape[1], I = x->shape[2], H = w_hh->shape[1];
  double *h = calloc((size_t)(2 * H), sizeof(double)), *hn = h + H;
  for (int64_t n = 0; n < N; n++) {
    memset(h, 0, (size_t)H * sizeof(double));
    for (int64_t s = 0; s < T; s++) {
      const int64_t t = reverse ? T - 1 - s : s;
      const float *xt = x->data + (n * T + t) * I;
      for (int64_t k = 0; k < H; k++) {
        double r = sigm(preact(w_ih, w_hh, b_ih, b_hh, 0 * H + k, xt, h, 1));
        double z = sigm(preact(w_ih, w_hh, b_ih, b_hh, 1 * H + k, xt, h, 1));
        double nn = tanh(preact(w_ih, w_hh, b_ih, b_hh, 2 * H + k, xt, h, 0) +
                         r * hidden_part(w_hh, b_hh, 2 * H + k, h));
        hn[k] = (1.0 - z) * nn + z * h[k];
      }
      memcpy(h, hn, (size_t)H * sizeof(double));
      for (int64_t k = 0; k < H; k++) out[(n * T + t) * H + k] = h[k];
    }
  }
  free(h);
}

/* ---- fixtures ----------------------------------------------------------------------------- */

typedef struct layer {
  int gru, reverse, bias;
  mf_tensor *x, *w_ih, *w_hh, *b_ih, *b_hh;
} layer;

static layer make_layer(int gru, int64_t N, int64_t T, int64_t I, int64_t H, int bias,
                        uint64_t seed) {
  const int64_t G = (gru ? 3 : 4) * H;
  layer l = {gru, 0, bias, NULL, NULL, NULL, NULL, NULL};
  l.x = mf_tensor_new(MF_SHAPE(N, T, I));
  l.w_ih = mf_tensor_new(MF_SHAPE(G, I));
  l.w_hh = mf_tensor_new(MF_SHAPE(G, H));
  fill_uniform(l.x, seed, -1.0f, 1.0f);
  /* PyTorch's init range 1/sqrt(H) would make small layers nearly linear; +-0.6 drives the
   * gates well into their curved range. */
  fill_uniform(l.w_ih, seed + 1, -0.6f, 0.6f);
  fill_uniform(l.w_hh, seed + 2, -0.6f, 0.6f);
  if (bias) {
    l.b_ih = mf_tensor_new(MF_SHAPE(G));
    l.b_hh = mf_tensor_new(MF_SHAPE(G));
    fill_uniform(l.b_ih, seed + 3, -0.5f, 0.5f);
    fill_uniform(l.b_hh, seed + 4, -0.5f, 0.5f);
  }
  return l;
}

static void free_layer(layer *l) {
  mf_tensor_free(l->x);
  mf_tensor_free(l->w_ih);
  mf_tensor_free(l->w_hh);
  mf_tensor_free(l->b_ih);
  mf_tensor_free(l->b_hh);
}

static mf_tensor *run(mf_ctx *ctx, const layer *l, mf_tensor *x, int reverse) {
  return l->gru ? mf_gru(ctx, x, l->w_ih, l->w_hh, l->b_ih, l->b_hh, reverse)
                : mf_lstm(ctx, x, l->w_ih, l->w_hh, l->b_ih, l->b_hh, reverse);
}

/* Largest |op - reference| over the output. */
static double max_err_vs_reference(const layer *l, int reverse) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *out = run(ctx, l, l->x, reverse);
  const int64_t N = l->x->shape[0], T = l->x->shape[1], H = l->w_hh->shape[1];
  EXPECT(out->ndim == 3 && out->shape[0] == N && out->shape[1] == T && out->shape[2] == H,
         "output shape [%lld, %lld, %lld]", (long long)out->shape[0], (long long)out->shape[1],
         (long long)out->shape[2]);
  double *want = malloc((size_t)out->numel * sizeof(double));
  if (l->gru)
    ref_gru(l->x, l->w_ih, l->w_hh, l->b_ih, l->b_hh, reverse, want);
  else
    ref_lstm(l->x, l->w_ih, l->w_hh, l->b_ih, l->b_hh, reverse, want);
  double worst = 0;
  for (int64_t i = 0; i < out->numel; i++) {
    double e = fabs(out->data[i] - want[i]);
    if (!(e <= worst)) worst = e; /* NaN counts as worst */
  }
  free(want);
  mf_ctx_free(ctx);
  return worst;
}

/* ---- forward values ----------------------------------------------------------------------- */

TEST(test_lstm_single_step_matches_hand_computation) {
  /* x = 1, H = 1, gate weights (i, f, g, o) = (ln 3, 0, ln 3 / 2, ln 3), no biases:
   * i = o = s(ln 3) = 3/4, g = tanh(ln 3 / 2) = (3 - 1) / (3 + 1) = 1/2, c = f * 0 + i g
   * = 3/8, h = o tanh(c) = 3/4 tanh(3/8). */
  mf_ctx *ctx = mf_ctx_new();
  const float l3 = (float)log(3.0);
  mf_tensor *x = mf_ctx_tensor_from(ctx, MF_SHAPE(1, 1, 1), (float[]){1});
  mf_tensor *w_ih = mf_ctx_tensor_from(ctx, MF_SHAPE(4, 1), (float[]){l3, 0, l3 / 2, l3});
  mf_tensor *w_hh = mf_ctx_tensor_from(ctx, MF_SHAPE(4, 1), (float[]){5, -7, 3, 2});
  mf_tensor *h = mf_lstm(ctx, x, w_ih, w_hh, NULL, NULL, 0);
  EXPECT_NEAR(h->data[0], 0.75 * tanh(0.375), 2e-7);
  mf_ctx_free(ctx);
}

TEST(test_gru_single_step_matches_hand_computation) {
  /* x = 1, H = 1, w_ih (r, z, n) = (0, ln 3, 0), b_hh = (0, 0, ln 3), b_ih absent, h0 = 0:
   * r = s(0) = 1/2, z = s(ln 3) = 3/4, n = tanh(0 + r * ln 3) = tanh(ln 3 / 2) = 1/2,
   * h = (1 - z) n + z * 0 = 1/8. The b_hn term only reaches n through r. */
  mf_ctx *ctx = mf_ctx_new();
  const float l3 = (float)log(3.0);
  mf_tensor *x = mf_ctx_tensor_from(ctx, MF_SHAPE(1, 1, 1), (float[]){1});
  mf_tensor *w_ih = mf_ctx_tensor_from(ctx, MF_SHAPE(3, 1), (float[]){0, l3, 0});
  mf_tensor *w_hh = mf_ctx_tensor_from(ctx, MF_SHAPE(3, 1), (float[]){5, -7, 3});
  mf_tensor *b_hh = mf_ctx_tensor_from(ctx, MF_SHAPE(3), (float[]){0, 0, l3});
  mf_tensor *h = mf_gru(ctx, x, w_ih, w_hh, NULL, b_hh, 0);
  EXPECT_NEAR(h->data[0], 0.125, 2e-7);
  mf_ctx_free(ctx);
}

TEST(test_lstm_second_step_matches_hand_computation) {
  /* Two steps, H = 1, x = (1, 0), all input weights 0 except through x: at t = 0 the gates
   * are those of the single-step case with w_ih = (ln 3, 0, ln 3 / 2, ln 3), so
   * c0 = 3/8, h0 = 3/4 tanh(3/8). At t = 1, x = 0 and w_hh = (0, ln 3 / h0, 0, 0) make the
   * pre-activations (0, ln 3, 0, 0): i = 1/2, f = 3/4, g = 0, o = 1/2, so
   * c1 = 3/4 * 3/8 = 9/32 and h1 = 1/2 tanh(9/32): the forget path alone carries c. */
  mf_ctx *ctx = mf_ctx_new();
  const float l3 = (float)log(3.0);
  const double h0 = 0.75 * tanh(0.375);
  mf_tensor *x = mf_ctx_tensor_from(ctx, MF_SHAPE(1, 2, 1), (float[]){1, 0});
  mf_tensor *w_ih = mf_ctx_tensor_from(ctx, MF_SHAPE(4, 1), (float[]){l3, 0, l3 / 2, l3});
  mf_tensor *w_hh =
      mf_ctx_tensor_from(ctx, MF_SHAPE(4, 1), (float[]){0, (float)(log(3.0) / h0), 0, 0});
  mf_tensor *h = mf_lstm(ctx, x, w_ih, w_hh, NULL, NULL, 0);
  EXPECT_NEAR(h->data[0], h0, 2e-7);
  EXPECT_NEAR(h->data[1], 0.5 * tanh(9.0 / 32.0), 5e-7);
  mf_ctx_free(ctx);
}

/* ---- gates are mf_sigmoid / mf_tanh exactly ----------------------------------------------
 *
 * One step from the zero state with I = 1, x in {1, 2, 1/2} and no biases: every
 * pre-activation is w * x, exact in float (a power-of-two scaling), so the gates can be
 * rebuilt from mf_sigmoid / mf_tanh of the same values. The layer must give these values
 * bit for bit, not merely within rounding: the ops share one per-CPU kernel, and an RNN that
 * evaluated its own inlined copy would differ in the last bit wherever the clone mf_sigmoid
 * runs fuses multiply-adds. */

#define GATE_N 3
#define GATE_H 100 /* not a multiple of the vector width: the kernels' tails run too */

/* pre [N, G H] = w_ih x for the G gates, then sig / th = mf_sigmoid / mf_tanh of it. */
static void gate_references(mf_ctx *ctx, const mf_tensor *x, const mf_tensor *w_ih, int64_t G,
                            mf_tensor **sig, mf_tensor **th) {
  mf_tensor *pre = mf_ctx_tensor(ctx, MF_SHAPE(GATE_N, G * GATE_H));
  for (int64_t n = 0; n < GATE_N; n++)
    for (int64_t r = 0; r < G * GATE_H; r++)
      pre->data[n * G * GATE_H + r] = w_ih->data[r] * x->data[n];
  *sig = mf_sigmoid(ctx, pre);
  *th = mf_tanh(ctx, pre);
}

static mf_tensor *gate_test_input(mf_ctx *ctx) {
  return mf_ctx_tensor_from(ctx, MF_SHAPE(GATE_N, 1, 1), (float[]){1.0f, 2.0f, 0.5f});
}

static mf_tensor *gate_test_weights(mf_ctx *ctx, int64_t rows, uint64_t seed) {
  mf_tensor *w = mf_ctx_tensor(ctx, MF_SHAPE(rows, 1));
  fill_uniform(w, seed, -5.0f, 5.0f); /* past the tanh polynomial's 0.625 and into the tails */
  return w;
}

TEST(test_lstm_gates_are_mf_sigmoid_and_mf_tanh_bit_for_bit) {
  mf_ctx *ctx = mf_ctx_new();
  const int64_t H = GATE_H;
  mf_tensor *x = gate_test_input(ctx), *w_ih = gate_test_weights(ctx, 4 * H, 41);
  mf_tensor *w_hh = mf_reshape(ctx, gate_test_weights(ctx, 4 * H * H, 42), MF_SHAPE(4 * H, H));
  mf_tensor *h = mf_lstm(ctx, x, w_ih, w_hh, NULL, NULL, 0);
  mf_tensor *sig, *th;
  gate_references(ctx, x, w_ih, 4, &sig, &th);
  /* c = f * 0 + i g = i g exactly (f is finite); h = o tanh(c). */
  mf_tensor *c = mf_ctx_tensor(ctx, MF_SHAPE(GATE_N, H));
  for (int64_t n = 0; n < GATE_N; n++)
    for (int64_t j = 0; j < H; j++) {
      const float *s = sig->data + n * 4 * H, *t = th->data + n * 4 * H;
      c->data[n * H + j] = s[j] * t[2 * H + j];
    }
  mf_tensor *tc = mf_tanh(ctx, c);
  int bad = 0;
  for (int64_t n = 0; n < GATE_N; n++)
    for (int64_t j = 0; j < H && bad < 3; j++) {
      const float want = sig->data[n * 4 * H + 3 * H + j] * tc->data[n * H + j];
      if (h->data[n * H + j] != want) {
        bad++;
        mftest_fail(__FILE__, __LINE__, "h[%lld, %lld] = %.9g, from mf_sigmoid / mf_tanh %.9g",
                    (long long)n, (long long)j, (double)h->data[n * H + j], (double)want);
      }
    }
  mf_ctx_free(ctx);
}

TEST(test_gru_gates_are_mf_sigmoid_and_mf_tanh_bit_for_bit) {
  mf_ctx *ctx = mf_ctx_new();
  const int64_t H = GATE_H;
  mf_tensor *x = gate_test_input(ctx), *w_ih = gate_test_weights(ctx, 3 * H, 43);
  mf_tensor *w_hh = mf_reshape(ctx, gate_test_weights(ctx, 3 * H * H, 44), MF_SHAPE(3 * H, H));
  mf_tensor *h = mf_gru(ctx, x, w_ih, w_hh, NULL, NULL, 0);
  mf_tensor *sig, *th;
  gate_references(ctx, x, w_ih, 3, &sig, &th);
  /* h_{-1} = 0 and no b_hn: n = tanh(w_in x + r * 0), h = (0 - n) z + n. */
  int bad = 0;
  for (int64_t n = 0; n < GATE_N; n++)
    for (int64_t j = 0; j < H && bad < 3; j++) {
      const float z = sig->data[n * 3 * H + H + j], nv = th->data[n * 3 * H + 2 * H + j];
      const float want = (0.0f - nv) * z + nv;
      if (h->data[n * H + j] != want) {
        bad++;
        mftest_fail(__FILE__, __LINE__, "h[%lld, %lld] = %.9g, from mf_sigmoid / mf_tanh %.9g",
                    (long long)n, (long long)j, (double)h->data[n * H + j], (double)want);
      }
    }
  mf_ctx_free(ctx);
}

TEST(test_lstm_forward_matches_double_reference) {
  for (int bias = 0; bias < 2; bias++)
    for (int rev = 0; rev < 2; rev++) {
      layer l = make_layer(0, 2, 3, 2, 2, bias, 10 + bias);
      double e = max_err_vs_reference(&l, rev);
      EXPECT(e <= 2e-6, "bias %d reverse %d: max error %g", bias, rev, e);
      free_layer(&l);
    }
}

TEST(test_gru_forward_matches_double_reference) {
  for (int bias = 0; bias < 2; bias++)
    for (int rev = 0; rev < 2; rev++) {
      layer l = make_layer(1, 2, 3, 2, 2, bias, 20 + bias);
      double e = max_err_vs_reference(&l, rev);
      EXPECT(e <= 2e-6, "bias %d reverse %d: max error %g", bias, rev, e);
      free_layer(&l);
    }
}

TEST(test_large_layers_match_double_reference_on_the_threaded_path) {
  /* N * H = 8704 cells per step is past the threading threshold; odd sizes everywhere. */
  for (int gru = 0; gru < 2; gru++) {
    layer l = make_layer(gru, 64, 3, 7, 136, 1, 30 + gru);
    /* Keep h's dot products O(1): 136 terms of +-0.6 would saturate every gate. */
    for (int64_t i = 0; i < l.w_hh->numel; i++) l.w_hh->data[i] *= 0.1f;
    for (int rev = 0; rev < 2; rev++) {
      double e = max_err_vs_reference(&l, rev);
      EXPECT(e <= 1e-5, "%s reverse %d: max error %g", gru ? "gru" : "lstm", rev, e);
    }
    free_layer(&l);
  }
}

/* ---- direction ---------------------------------------------------------------------------- */

/* y[n, t] = x[n, T - 1 - t] for [N, T, D] data. */
static void flip_time(const float *x, float *y, int64_t N, int64_t T, int64_t D) {
  for (int64_t n = 0; n < N; n++)
    for (int64_t t = 0; t < T; t++)
      memcpy(y + (n * T + t) * D, x + (n * T + T - 1 - t) * D, (size_t)D * sizeof(float));
}

static void check_reverse_is_flipped_forward(int gru) {
  const int64_t N = 2, T = 5, I = 3, H = 4;
  layer l = make_layer(gru, N, T, I, H, 1, 40 + gru);
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *xf = mf_ctx_tensor(ctx, MF_SHAPE(N, T, I));
  flip_time(l.x->data, xf->data, N, T, I);
  mf_tensor *rev = run(ctx, &l, l.x, 1);
  mf_tensor *fwd = run(ctx, &l, xf, 0);
  float *back = malloc((size_t)fwd->numel * sizeof(float));
  flip_time(fwd->data, back, N, T, H);
  /* The same arithmetic on the same rows; only the GEMM's row positions differ. */
  double worst = 0;
  for (int64_t i = 0; i < rev->numel; i++) {
    double e = fabs(rev->data[i] - back[i]);
    if (!(e <= worst)) worst = e;
  }
  EXPECT(worst <= 1e-6, "%s: reverse differs from the flipped forward run by %g",
         gru ? "gru" : "lstm", worst);
  /* And it is a different function of x than the forward direction. */
  mf_tensor *fwd_x = run(ctx, &l, l.x, 0);
  EXPECT(memcmp(fwd_x->data, rev->data, (size_t)rev->numel * sizeof(float)) != 0,
         "%s: reverse gave the forward result", gru ? "gru" : "lstm");
  free(back);
  mf_ctx_free(ctx);
  free_layer(&l);
}

TEST(test_lstm_reverse_equals_forward_on_time_reversed_input) {
  check_reverse_is_flipped_forward(0);
}

TEST(test_gru_reverse_equals_forward_on_time_reversed_input) {
  check_reverse_is_flipped_forward(1);
}

/* ---- gradients ---------------------------------------------------------------------------- */

typedef struct gc_case {
  int gru, reverse, bidir;
} gc_case;

static mf_tensor *f_rnn(mf_ctx *ctx, mf_tensor **in, void *user) {
  const gc_case *c = user;
  mf_tensor *b_ih = in[3], *b_hh = in[4];
  mf_tensor *(*op)(mf_ctx *, mf_tensor *, mf_tensor *, mf_tensor *, mf_tensor *, mf_tensor *, int) =
      c->gru ? mf_gru : mf_lstm;
  mf_tensor *y = op(ctx, in[0], in[1], in[2], b_ih, b_hh, c->reverse);
  if (c->bidir) /* the same weights twice: every gradient accumulates over two nodes */
    y = mf_add(ctx, y, op(ctx, in[0], in[1], in[2], b_ih, b_hh, !c->reverse));
  return y;
}

static void gradcheck_layer(int gru, int reverse, int bias, int bidir) {
  layer l = make_layer(gru, 2, 4, 3, 5, bias, 50 + 2 * gru + bias);
  mf_tensor *in[5] = {l.x, l.w_ih, l.w_hh, l.b_ih, l.b_hh};
  for (int i = 0; i < 5; i++)
    if (in[i]) mf_tensor_set_requires_grad(in[i], 1);
  gc_case c = {gru, reverse, bidir};
  char label[96];
  snprintf(label, sizeof label, "%s reverse %d bias %d bidir %d", gru ? "gru" : "lstm", reverse,
           bias, bidir);
  /* f ignores in[3], in[4] when they are NULL; gradcheck only looks at the first n_in. */
  if (bias) {
    gradcheck(label, f_rnn, 5, in, &c, NULL);
  } else {
    mf_tensor *three[5] = {l.x, l.w_ih, l.w_hh, NULL, NULL};
    gradcheck(label, f_rnn, 3, three, &c, NULL);
  }
  free_layer(&l);
}

TEST(test_lstm_backward_matches_finite_differences) {
  for (int rev = 0; rev < 2; rev++) gradcheck_layer(0, rev, 1, 0);
}

TEST(test_gru_backward_matches_finite_differences) {
  for (int rev = 0; rev < 2; rev++) gradcheck_layer(1, rev, 1, 0);
}

TEST(test_rnn_backward_without_biases_matches_finite_differences) {
  for (int gru = 0; gru < 2; gru++)
    for (int rev = 0; rev < 2; rev++) gradcheck_layer(gru, rev, 0, 0);
}

TEST(test_rnn_gradients_accumulate_over_both_directions) {
  for (int gru = 0; gru < 2; gru++) gradcheck_layer(gru, 0, 1, 1);
}

TEST(test_rnn_backward_with_only_weights_requiring_grad) {
  /* x and the biases need no gradient (a first layer): only the weight paths run. */
  for (int gru = 0; gru < 2; gru++) {
    layer l = make_layer(gru, 2, 4, 3, 5, 1, 70 + gru);
    mf_tensor_set_requires_grad(l.w_ih, 1);
    mf_tensor_set_requires_grad(l.w_hh, 1);
    mf_tensor *in[5] = {l.x, l.w_ih, l.w_hh, l.b_ih, l.b_hh};
    gc_case c = {gru, 1, 0};
    gradcheck(gru ? "gru weights only" : "lstm weights only", f_rnn, 5, in, &c, NULL);
    free_layer(&l);
  }
}

/* ---- modes and determinism ------------------------------------------------------------------ */

TEST(test_rnn_no_grad_forward_equals_recorded_forward) {
  for (int gru = 0; gru < 2; gru++) {
    layer l = make_layer(gru, 3, 4, 5, 6, 1, 80 + gru);
    mf_tensor_set_requires_grad(l.w_ih, 1);
    mf_ctx *ctx = mf_ctx_new();
    mf_tensor *a = run(ctx, &l, l.x, 0);
    EXPECT_EQ_INT(mf_ctx_stats_get(ctx).tape_nodes, 1);
    mf_ctx_set_grad_enabled(ctx, 0);
    mf_tensor *b = run(ctx, &l, l.x, 0);
    EXPECT_EQ_INT(mf_ctx_stats_get(ctx).tape_nodes, 1);
    EXPECT(b->node == NULL, "a node was recorded in no-grad mode");
    EXPECT(memcmp(a->data, b->data, (size_t)a->numel * sizeof(float)) == 0,
           "%s: no-grad forward differs", gru ? "gru" : "lstm");
    mf_ctx_free(ctx);
    free_layer(&l);
  }
}

/* Forward and backward of a layer big enough for the threaded loops; returns the output
 * followed by every gradient in one malloc'd array. */
static float *run_with_grads(layer *l, int reverse, int64_t *count) {
  mf_tensor *in[5] = {l->x, l->w_ih, l->w_hh, l->b_ih, l->b_hh};
  for (int i = 0; i < 5; i++) {
    mf_tensor_set_requires_grad(in[i], 1);
    in[i]->grad_state = 0;
  }
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *y = run(ctx, l, l->x, reverse);
  float *g = malloc((size_t)y->numel * sizeof(float));
  for (int64_t i = 0; i < y->numel; i++) g[i] = (float)((i * 7919) % 13) / 13.0f - 0.5f;
  EXPECT(mf_backward_with_grad(ctx, y, g) == MF_OK, "%s", mf_error());
  int64_t total = y->numel;
  for (int i = 0; i < 5; i++) total += in[i]->numel;
  float *r = malloc((size_t)total * sizeof(float)), *p = r;
  memcpy(p, y->data, (size_t)y->numel * sizeof(float));
  p += y->numel;
  for (int i = 0; i < 5; i++) {
    mf_tensor_read_grad(in[i], p);
    p += in[i]->numel;
  }
  free(g);
  mf_ctx_free(ctx);
  *count = total;
  return r;
}

TEST(test_rnn_results_are_bit_identical_across_runs) {
  for (int gru = 0; gru < 2; gru++) {
    layer l = make_layer(gru, 64, 5, 33, 136, 1, 90 + gru);
    for (int64_t i = 0; i < l.w_hh->numel; i++) l.w_hh->data[i] *= 0.1f;
    int64_t n1, n2;
    float *a = run_with_grads(&l, gru, &n1);
    float *b = run_with_grads(&l, gru, &n2);
    EXPECT(n1 == n2 && memcmp(a, b, (size_t)n1 * sizeof(float)) == 0, "%s: two runs differ",
           gru ? "gru" : "lstm");
    free(a);
    free(b);
    free_layer(&l);
  }
}

TEST(test_rnn_threaded_loops_agree_with_one_thread) {
  /* The per-step loops split the batch over threads when a step is large; one thread must
   * give the same numbers up to GEMM blocking (OpenBLAS may split differently), 1e-5
   * relative to the largest value. */
  const int threads = mf_num_threads();
  for (int gru = 0; gru < 2; gru++) {
    layer l = make_layer(gru, 64, 5, 33, 136, 1, 95 + gru);
    for (int64_t i = 0; i < l.w_hh->numel; i++) l.w_hh->data[i] *= 0.1f;
    int64_t n1, n2;
    mf_set_num_threads(1);
    float *a = run_with_grads(&l, !gru, &n1);
    mf_set_num_threads(threads > 1 ? threads : 2);
    float *b = run_with_grads(&l, !gru, &n2);
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < n1; i++) {
      double e = fabs(a[i] - b[i]);
      if (!(e <= worst)) worst = e;
      if (fabs(a[i]) > scale) scale = fabs(a[i]);
    }
    EXPECT(n1 == n2 && worst <= 1e-5 * scale, "%s: 1 vs %d threads differ by %g (scale %g)",
           gru ? "gru" : "lstm", threads > 1 ? threads : 2, worst, scale);
    free(a);
    free(b);
    free_layer(&l);
  }
  mf_set_num_threads(threads);
}

TEST(test_rnn_empty_sequence_gives_empty_output_and_zero_gradients) {
  /* T = 0: nothing to run; the weight gradients are empty sums and must read as zeros even
   * when the buffers held garbage. */
  for (int gru = 0; gru < 2; gru++) {
    layer l = make_layer(gru, 2, 0, 3, 4, 1, 99);
    mf_tensor_set_requires_grad(l.w_ih, 1);
    mf_tensor_set_requires_grad(l.b_hh, 1);
    for (int64_t i = 0; i < l.w_ih->numel; i++) l.w_ih->grad[i] = 123.0f;
    mf_ctx *ctx = mf_ctx_new();
    mf_tensor *y = run(ctx, &l, l.x, 0);
    EXPECT(y->ndim == 3 && y->numel == 0 && y->shape[2] == 4, "output is not [2, 0, 4]");
    EXPECT(mf_backward_with_grad(ctx, y, NULL) == MF_OK, "%s", mf_error());
    double s = 0;
    for (int64_t i = 0; i < l.w_ih->numel; i++) s += fabs(l.w_ih->grad[i]);
    for (int64_t i = 0; i < l.b_hh->numel; i++) s += fabs(l.b_hh->grad[i]);
    EXPECT(s == 0, "%s: gradients of an empty sequence sum to %g", gru ? "gru" : "lstm", s);
    mf_ctx_free(ctx);
    free_layer(&l);
  }
}
