/* Attention ops: multi-head self-attention, sinusoidal positional encoding, additive
 * attention pooling. Forward values are checked against plain double-precision loops
 * written from the formulas; gradients by finite differences. */
#include <stdlib.h>
#include <string.h>

#include "expect_abort.h"
#include "gradcheck.h"
#include "melforge/melforge.h"
#include "mftest.h"

/* ---- helpers --------------------------------------------------------------------------- */

static mf_tensor *rand_tensor(mf_shape shape, uint64_t seed, float lo, float hi) {
  mf_tensor *t = mf_tensor_new(shape);
  fill_uniform(t, seed, lo, hi);
  return t;
}

/* ---- self-attention reference ---------------------------------------------------------- */

/* The documented mask: element i of the [N, H, T, T] weights survives when word i % 4 of
 * Philox block base + i / 4 maps to a uniform >= p; survivors scale by 1 / (1 - p). */
static double *reference_mask(mf_rng r, int64_t n, double p) {
  double *m = malloc((size_t)n * sizeof(double));
  for (int64_t i = 0; i < n; i++) {
    uint32_t w[4];
    mf_philox4x32(r.key, r.counter + (uint64_t)(i / 4), w);
    m[i] = mf_u32_to_unit(w[i % 4]) >= p ? 1.0 / (1.0 - p) : 0.0;
  }
  return m;
}

/* nn.MultiheadAttention self-attention in double; mask NULL: no dropout. */
static void reference_mha(const float *x, const float *in_w, const float *in_b, const float *out_w,
                          const float *out_b, int N, int T, int E, int H, const double *mask,
                          double *out) {
  const int d = E / H;
  double *qkv = calloc((size_t)(N * T * 3 * E), sizeof(double));
  double *o = calloc((size_t)(N * T * E), sizeof(double));
  for (int r = 0; r < N * T; r++)
    for (int j = 0; j < 3 * E; j++) {
      double s = in_b ? in_b[j] : 0.0;
      for (int k = 0; k < E; k++) s += (double)x[r * E + k] * in_w[j * E + k];
      qkv[r * 3 * E + j] = s;
    }
  for (int n = 0; n < N; n++)
    for (int h = 0; h < H; h++)
      for (int t = 0; t < T; t++) {
        double sc[64], mx = -1e300, sum = 0;
        for (int u = 0; u < T; u++) {
          double s = 0;
          for (int k = 0; k < d; k++)
            s += qkv[(n * T + t) * 3 * E + h * d + k] * qkv[(n * T + u) * 3 * E + E + h * d + k];
          sc[u] = s / sqrt((double)d);
          if (sc[u] > mx) mx = sc[u];
        }
        for (int u = 0; u < T; u++) sum += (sc[u] = exp(sc[u] - mx));
        for (int u = 0; u < T; u++) {
          double p = sc[u] / sum;
          if (mask) p *= mask[((n * H + h) * T + t) * T + u];
          for (int k = 0; k < d; k++)
            o[(n * T + t) * E + h * d + k] += p * qkv[(n * T + u) * 3 * E + 2 * E + h * d + k];
        }
      }
  for (int r = 0; r < N * T; r++)
    for (int j = 0; j < E; j++) {
      double s = out_b ? out_b[j] : 0.0;
      for (int k = 0; k < E; k++) s += o[r * E + k] * out_w[j * E + k];
      out[r * E + j] = s;
    }
  free(qkv);
  free(o);
}

typedef struct mha_case {
  int N, T, E, H;
  int biases;
  float dropout;
  int training;
} mha_case;

typedef struct mha_inputs {
  mf_tensor *t[5]; /* x, in_w, in_b, out_w, out_b; biases NULL when absent */
} mha_inputs;

static mha_inputs make_mha(const mha_case *c, uint64_t seed) {
  mha_inputs m;
  m.t[0] = rand_tensor(MF_SHAPE(c->N, c->T, c->E), seed, -1, 1);
  m.t[1] = rand_tensor(MF_SHAPE(3 * c->E, c->E), seed + 1, -0.8f, 0.8f);
  m.t[2] = c->biases ? rand_tensor(MF_SHAPE(3 * c->E), seed + 2, -0.5f, 0.5f) : NULL;
  m.t[3] = rand_tensor(MF_SHAPE(c->E, c->E), seed + 3, -0.8f, 0.8f);
  m.t[4] = c->biases ? rand_tensor(MF_SHAPE(c->E), seed + 4, -0.5f, 0.5f) : NULL;
  return m;
}

static void free_mha(mha_inputs *m) {
  for (int i = 0; i < 5; i++) mf_tensor_free(m->t[i]);
}

static mf_tensor *run_mha(mf_ctx *ctx, const mha_case *c, const mha_inputs *m) {
  return mf_self_attention(ctx, m->t[0], m->t[1], m->t[2], m->t[3], m->t[4], c->H, c->dropout,
                           c->training);
}

/* Checks the op against reference_mha (with the documented mask when dropping). Tolerance
 * 1e-5 absolute on O(1) outputs: a handful of float roundings through two projections and a
 * softmax, far below any wrong term. */
static void check_mha_forward(const mha_case *c, uint64_t seed) {
  mha_inputs m = make_mha(c, seed);
  mf_ctx *ctx = mf_ctx_new();
  mf_rng before = mf_ctx_dropout_rng(ctx);
  mf_tensor *out = run_mha(ctx, c, &m);
  const int64_t nw = (int64_t)c->N * c->H * c->T * c->T;
  double *mask = c->training && c->dropout > 0 ? reference_mask(before, nw, c->dropout) : NULL;
  const int64_t n = (int64_t)c->N * c->T * c->E;
  double *want = malloc((size_t)n * sizeof(double));
  reference_mha(m.t[0]->data, m.t[1]->data, m.t[2] ? m.t[2]->data : NULL, m.t[3]->data,
                m.t[4] ? m.t[4]->data : NULL, c->N, c->T, c->E, c->H, mask, want);
  EXPECT(out->ndim == 3 && out->shape[0] == c->N && out->shape[1] == c->T && out->shape[2] == c->E,
         "output shape");
  int bad = 0;
  for (int64_t i = 0; i < n && bad < 5; i++)
    if (!(fabs(out->data[i] - want[i]) <= 1e-5)) {
      EXPECT_NEAR(out->data[i], want[i], 1e-5);
      bad++;
    }
  free(want);
  free(mask);
  mf_ctx_free(ctx);
  free_mha(&m);
}

/* ---- self-attention: forward ----------------------------------------------------------- */

TEST(test_self_attention_matches_double_reference_two_heads) {
  check_mha_forward(&(mha_case){2, 3, 4, 2, 1, 0.0f, 0}, 10);
}

TEST(test_self_attention_matches_double_reference_one_head) {
  check_mha_forward(&(mha_case){2, 3, 4, 1, 1, 0.0f, 0}, 20);
}

TEST(test_self_attention_matches_double_reference_without_biases) {
  check_mha_forward(&(mha_case){2, 3, 4, 2, 0, 0.0f, 0}, 30);
}

TEST(test_self_attention_matches_double_reference_at_larger_sizes) {
  check_mha_forward(&(mha_case){3, 17, 16, 4, 1, 0.0f, 0}, 40);
}

TEST(test_self_attention_dropout_uses_the_documented_philox_mask) {
  /* T = 3 makes every (n, h) slab start inside a Philox block; T = 9 spans whole groups. */
  check_mha_forward(&(mha_case){2, 3, 4, 2, 1, 0.4f, 1}, 50);
  check_mha_forward(&(mha_case){2, 9, 8, 2, 1, 0.25f, 1}, 60);
}

TEST(test_self_attention_equal_scores_average_the_values) {
  /* Keys projected to zero make every score equal, so each query attends uniformly; with
   * V and the output projection the identity, out[n, t] is the mean of x[n, :] over time. */
  const int N = 2, T = 3, E = 4;
  mf_tensor *x = rand_tensor(MF_SHAPE(N, T, E), 70, -2, 2);
  mf_tensor *in_w = mf_tensor_new(MF_SHAPE(3 * E, E));
  mf_tensor *out_w = mf_tensor_new(MF_SHAPE(E, E));
  for (int i = 0; i < E; i++) {
    in_w->data[i * E + i] = 0.7f;           /* queries: anything */
    in_w->data[(2 * E + i) * E + i] = 1.0f; /* values: identity; keys stay zero */
    out_w->data[i * E + i] = 1.0f;
  }
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *out = mf_self_attention(ctx, x, in_w, NULL, out_w, NULL, 2, 0.0f, 0);
  for (int n = 0; n < N; n++)
    for (int t = 0; t < T; t++)
      for (int k = 0; k < E; k++) {
        double mean = 0;
        for (int u = 0; u < T; u++) mean += x->data[(n * T + u) * E + k] / 3.0;
        EXPECT_NEAR(out->data[(n * T + t) * E + k], mean, 1e-6);
      }
  mf_ctx_free(ctx);
  mf_tensor_free(x);
  mf_tensor_free(in_w);
  mf_tensor_free(out_w);
}

TEST(test_self_attention_dropout_zero_in_training_equals_eval) {
  const mha_case train = {2, 5, 8, 2, 1, 0.0f, 1}, eval = {2, 5, 8, 2, 1, 0.3f, 0};
  mha_inputs m = make_mha(&train, 80);
  mf_ctx *ctx = mf_ctx_new();
  mf_rng before = mf_ctx_dropout_rng(ctx);
  mf_tensor *a = run_mha(ctx, &train, &m);
  mf_tensor *b = run_mha(ctx, &eval, &m);
  EXPECT(memcmp(a->data, b->data, (size_t)a->numel * sizeof(float)) == 0,
         "p = 0 in training differs from eval");
  mf_rng after = mf_ctx_dropout_rng(ctx);
  EXPECT(after.counter == before.counter, "no dropout should not draw from the stream");
  mf_ctx_free(ctx);
  free_mha(&m);
}

TEST(test_self_attention_advances_dropout_stream_past_its_mask) {
  const mha_case c = {2, 5, 8, 2, 1, 0.1f, 1};
  mha_inputs m = make_mha(&c, 90);
  mf_ctx *ctx = mf_ctx_new();
  mf_rng before = mf_ctx_dropout_rng(ctx);
  run_mha(ctx, &c, &m);
  mf_rng after = mf_ctx_dropout_rng(ctx);
  /* 2 * 2 * 5 * 5 = 100 weights -> 25 blocks. */
  EXPECT_EQ_INT(after.counter - before.counter, 25);
  EXPECT_EQ_INT(after.nbuf, 0);
  /* A second call draws a fresh mask, so the outputs differ. */
  mf_tensor *a = run_mha(ctx, &c, &m);
  mf_tensor *b = run_mha(ctx, &c, &m);
  EXPECT(memcmp(a->data, b->data, (size_t)a->numel * sizeof(float)) != 0,
         "two training calls reused the same mask");
  mf_ctx_free(ctx);
  free_mha(&m);
}

/* Forward + backward of a case; output and every gradient copied into one buffer. */
static float *mha_step(const mha_case *c, mha_inputs *m) {
  mf_ctx *ctx = mf_ctx_new();
  mf_rng drop = mf_rng_stream(7, MF_RNG_DROPOUT);
  mf_ctx_set_dropout_rng(ctx, &drop);
  for (int i = 0; i < 5; i++)
    if (m->t[i]) {
      mf_tensor_set_requires_grad(m->t[i], 1);
      m->t[i]->grad_state = 0;
    }
  mf_tensor *out = run_mha(ctx, c, m);
  int64_t total = out->numel;
  for (int i = 0; i < 5; i++)
    if (m->t[i]) total += m->t[i]->numel;
  float *buf = malloc((size_t)total * sizeof(float));
  memcpy(buf, out->data, (size_t)out->numel * sizeof(float));
  float *g = malloc((size_t)out->numel * sizeof(float));
  for (int64_t i = 0; i < out->numel; i++) g[i] = sinf((float)i * 0.37f);
  EXPECT(mf_backward_with_grad(ctx, out, g) == MF_OK, "%s", mf_error());
  int64_t off = out->numel;
  for (int i = 0; i < 5; i++)
    if (m->t[i]) {
      mf_tensor_read_grad(m->t[i], buf + off);
      off += m->t[i]->numel;
    }
  free(g);
  mf_ctx_free(ctx);
  return buf;
}

TEST(test_self_attention_is_bit_identical_when_run_twice) {
  /* Sizes past the parallel thresholds of the bias sums, with dropout. */
  const mha_case c = {4, 40, 64, 4, 1, 0.2f, 1};
  mha_inputs m = make_mha(&c, 100);
  int64_t total = (int64_t)c.N * c.T * c.E * 2 + 4 * c.E * c.E + 4 * c.E;
  float *a = mha_step(&c, &m), *b = mha_step(&c, &m);
  EXPECT(memcmp(a, b, (size_t)total * sizeof(float)) == 0, "two runs differ");
  free(a);
  free(b);
  free_mha(&m);
}

/* ---- self-attention: backward ---------------------------------------------------------- */

typedef struct mha_gc {
  mha_case c;
  int map[5]; /* gradcheck input index of x, in_w, in_b, out_w, out_b; -1: NULL */
  int twice;  /* apply the op twice to the same inputs and add: gradients accumulate */
} mha_gc;

static mf_tensor *f_mha(mf_ctx *ctx, mf_tensor **in, void *user) {
  const mha_gc *g = user;
  mf_tensor *t[5];
  for (int i = 0; i < 5; i++) t[i] = g->map[i] >= 0 ? in[g->map[i]] : NULL;
  mf_tensor *y =
      mf_self_attention(ctx, t[0], t[1], t[2], t[3], t[4], g->c.H, g->c.dropout, g->c.training);
  if (g->twice)
    y = mf_add(ctx, y, mf_self_attention(ctx, t[0], t[1], t[2], t[3], t[4], g->c.H, 0.0f, 0));
  return y;
}

static void gradcheck_mha(const char *label, const mha_case *c, int twice, uint64_t seed) {
  mha_inputs m = make_mha(c, seed);
  mha_gc g = {*c, {0}, twice};
  mf_tensor *in[5];
  int n = 0;
  for (int i = 0; i < 5; i++) {
    g.map[i] = m.t[i] ? n : -1;
    if (m.t[i]) {
      mf_tensor_set_requires_grad(m.t[i], 1);
      in[n++] = m.t[i];
    }
  }
  gradcheck(label, f_mha, n, in, &g, NULL);
  free_mha(&m);
}

TEST(test_self_attention_backward_matches_finite_differences_two_heads) {
  gradcheck_mha("mha heads 2", &(mha_case){2, 3, 4, 2, 1, 0.0f, 0}, 0, 110);
}

TEST(test_self_attention_backward_matches_finite_differences_one_head) {
  gradcheck_mha("mha heads 1", &(mha_case){2, 3, 4, 1, 1, 0.0f, 0}, 0, 120);
}

TEST(test_self_attention_backward_matches_finite_differences_without_biases) {
  gradcheck_mha("mha no biases", &(mha_case){2, 3, 4, 2, 0, 0.0f, 0}, 0, 130);
}

TEST(test_self_attention_backward_matches_finite_differences_with_dropout) {
  /* gradcheck resets the dropout stream before every evaluation, so each sees one mask. */
  gradcheck_mha("mha dropout heads 2", &(mha_case){2, 3, 4, 2, 1, 0.3f, 1}, 0, 140);
  gradcheck_mha("mha dropout heads 1", &(mha_case){2, 3, 4, 1, 0, 0.3f, 1}, 0, 150);
}

TEST(test_self_attention_backward_accumulates_over_two_uses) {
  gradcheck_mha("mha twice", &(mha_case){2, 3, 4, 2, 1, 0.2f, 1}, 1, 160);
}

TEST(test_self_attention_backward_only_into_the_weights) {
  /* x a constant: only the parameter gradients are computed. */
  const mha_case c = {2, 4, 4, 2, 1, 0.0f, 0};
  mha_inputs m = make_mha(&c, 170);
  mha_gc g = {c, {0, 1, 2, 3, 4}, 0};
  for (int i = 1; i < 5; i++) mf_tensor_set_requires_grad(m.t[i], 1);
  gradcheck("mha weights only", f_mha, 5, m.t, &g, NULL);
  free_mha(&m);
}

static void mha_bad_heads(void) {
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_ctx_zeros(ctx, MF_SHAPE(2, 3, 6));
  mf_tensor *in_w = mf_ctx_zeros(ctx, MF_SHAPE(18, 6)), *out_w = mf_ctx_zeros(ctx, MF_SHAPE(6, 6));
  mf_self_attention(ctx, x, in_w, NULL, out_w, NULL, 4, 0.0f, 0);
}

TEST(test_self_attention_aborts_when_heads_do_not_divide_embedding) {
  EXPECT(mftest_aborts_with(mha_bad_heads, "[2, 3, 6]"), "heads = 4 with E = 6 should abort");
}

/* ---- positional encoding --------------------------------------------------------------- */

TEST(test_positional_encoding_matches_the_formula) {
  /* PE[t, 2i] = sin(t w_i), PE[t, 2i + 1] = cos(t w_i), w_i = 10000^(-2i / D), in double.
   * The op rounds w_i and t w_i to float as PyTorch does, so the angle carries a relative
   * error up to ~2^-23: tolerance 2e-6 + 1.5e-7 t covers it at T = 60. */
  const int N = 2, T = 60, D = 16;
  mf_tensor *x = rand_tensor(MF_SHAPE(N, T, D), 200, -1, 1);
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *out = mf_positional_encoding(ctx, x);
  for (int n = 0; n < N; n++)
    for (int t = 0; t < T; t++)
      for (int i = 0; i < D / 2; i++) {
        const double w = pow(10000.0, -2.0 * i / D);
        const int r = (n * T + t) * D;
        const double tol = 2e-6 + 1.5e-7 * t;
        EXPECT_NEAR(out->data[r + 2 * i] - x->data[r + 2 * i], sin(t * w), tol);
        EXPECT_NEAR(out->data[r + 2 * i + 1] - x->data[r + 2 * i + 1], cos(t * w), tol);
      }
  mf_ctx_free(ctx);
  mf_tensor_free(x);
}

TEST(test_positional_encoding_hand_values) {
  /* D = 4: w_0 = 1, w_1 = 10000^(-1/2) = 0.01. */
  mf_tensor *x = mf_tensor_new(MF_SHAPE(1, 3, 4));
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *o = mf_positional_encoding(ctx, x);
  const double want[12] = {0,         1,         0,        1,        sin(1.0),  cos(1.0),
                           sin(0.01), cos(0.01), sin(2.0), cos(2.0), sin(0.02), cos(0.02)};
  for (int i = 0; i < 12; i++) EXPECT_NEAR(o->data[i], want[i], 1e-7);
  mf_ctx_free(ctx);
  mf_tensor_free(x);
}

static mf_tensor *f_pe(mf_ctx *ctx, mf_tensor **in, void *user) {
  mf_tensor *y = mf_positional_encoding(ctx, in[0]);
  /* A non-linear consumer so the identity gradient is tested against varying upstream. */
  return user ? mf_mul(ctx, y, mf_positional_encoding(ctx, in[0])) : y;
}

TEST(test_positional_encoding_backward_is_identity) {
  mf_tensor *x = rand_tensor(MF_SHAPE(2, 5, 6), 210, -1, 1);
  mf_tensor_set_requires_grad(x, 1);
  gradcheck("pe", f_pe, 1, &x, NULL, NULL);
  gradcheck("pe squared", f_pe, 1, &x, (void *)1, NULL);
  /* Exactly the upstream gradient. */
  mf_ctx *ctx = mf_ctx_new();
  x->grad_state = 0;
  mf_tensor *y = mf_positional_encoding(ctx, x);
  float g[60];
  for (int i = 0; i < 60; i++) g[i] = (float)i - 7.5f;
  EXPECT(mf_backward_with_grad(ctx, y, g) == MF_OK, "%s", mf_error());
  for (int i = 0; i < 60; i++) EXPECT_NEAR(x->grad[i], g[i], 0);
  mf_ctx_free(ctx);
  mf_tensor_free(x);
}

static void pe_odd(void) {
  mf_ctx *ctx = mf_ctx_new();
  mf_positional_encoding(ctx, mf_ctx_zeros(ctx, MF_SHAPE(2, 3, 5)));
}

TEST(test_positional_encoding_aborts_on_odd_dimension) {
  EXPECT(mftest_aborts_with(pe_odd, "[2, 3, 5]"), "D = 5 should abort naming the shape");
}

/* ---- additive attention pooling -------------------------------------------------------- */

static void reference_pool(const float *h, const float *w, const float *b, const float *v, int N,
                           int T, int D, int A, double *out) {
  for (int n = 0; n < N; n++) {
    double e[64], mx = -1e300, sum = 0;
    for (int t = 0; t < T; t++) {
      double s = 0;
      for (int k = 0; k < A; k++) {
        double u = b ? b[k] : 0.0;
        for (int j = 0; j < D; j++) u += (double)w[k * D + j] * h[(n * T + t) * D + j];
        s += v[k] * tanh(u);
      }
      e[t] = s;
      if (s > mx) mx = s;
    }
    for (int t = 0; t < T; t++) sum += (e[t] = exp(e[t] - mx));
    for (int j = 0; j < D; j++) {
      double o = 0;
      for (int t = 0; t < T; t++) o += e[t] / sum * h[(n * T + t) * D + j];
      out[n * D + j] = o;
    }
  }
}

static void check_pool_forward(int N, int T, int D, int A, int bias, uint64_t seed) {
  mf_tensor *h = rand_tensor(MF_SHAPE(N, T, D), seed, -2, 2);
  mf_tensor *w = rand_tensor(MF_SHAPE(A, D), seed + 1, -1, 1);
  mf_tensor *b = bias ? rand_tensor(MF_SHAPE(A), seed + 2, -1, 1) : NULL;
  mf_tensor *v = rand_tensor(MF_SHAPE(1, A), seed + 3, -2, 2);
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *out = mf_additive_attention_pool(ctx, h, w, b, v);
  EXPECT(out->ndim == 2 && out->shape[0] == N && out->shape[1] == D, "output shape");
  double *want = malloc((size_t)(N * D) * sizeof(double));
  reference_pool(h->data, w->data, b ? b->data : NULL, v->data, N, T, D, A, want);
  /* 1e-5: float tanh / exp (about 1 ulp each) and sums over at most a few dozen terms. */
  for (int i = 0; i < N * D; i++) EXPECT_NEAR(out->data[i], want[i], 1e-5);
  free(want);
  mf_ctx_free(ctx);
  mf_tensor_free(h);
  mf_tensor_free(w);
  mf_tensor_free(b);
  mf_tensor_free(v);
}

TEST(test_additive_attention_pool_matches_double_reference) {
  check_pool_forward(2, 3, 4, 3, 1, 300);
  check_pool_forward(2, 3, 4, 3, 0, 310);
  check_pool_forward(3, 37, 20, 9, 1, 320);
}

TEST(test_additive_attention_pool_equal_scores_average_over_time) {
  /* v = 0 makes every score 0: uniform weights, out[n] = mean_t h[n, t]. */
  const int N = 2, T = 4, D = 3;
  mf_tensor *h = rand_tensor(MF_SHAPE(N, T, D), 330, -3, 3);
  mf_tensor *w = rand_tensor(MF_SHAPE(5, D), 331, -1, 1);
  mf_tensor *v = mf_tensor_new(MF_SHAPE(1, 5));
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *out = mf_additive_attention_pool(ctx, h, w, NULL, v);
  for (int n = 0; n < N; n++)
    for (int j = 0; j < D; j++) {
      double mean = 0;
      for (int t = 0; t < T; t++) mean += h->data[(n * T + t) * D + j] / T;
      EXPECT_NEAR(out->data[n * D + j], mean, 1e-6);
    }
  mf_ctx_free(ctx);
  mf_tensor_free(h);
  mf_tensor_free(w);
  mf_tensor_free(v);
}

typedef struct pool_gc {
  int has_b;
  int twice;
} pool_gc;

static mf_tensor *f_pool(mf_ctx *ctx, mf_tensor **in, void *user) {
  const pool_gc *g = user;
  mf_tensor *b = g->has_b ? in[2] : NULL, *v = in[g->has_b ? 3 : 2];
  mf_tensor *y = mf_additive_attention_pool(ctx, in[0], in[1], b, v);
  if (g->twice) y = mf_add(ctx, y, mf_additive_attention_pool(ctx, in[0], in[1], b, v));
  return y;
}

static void gradcheck_pool(const char *label, int has_b, int twice, uint64_t seed) {
  const int N = 2, T = 3, D = 4, A = 3;
  mf_tensor *in[4];
  int n = 0;
  in[n++] = rand_tensor(MF_SHAPE(N, T, D), seed, -1, 1);
  in[n++] = rand_tensor(MF_SHAPE(A, D), seed + 1, -1, 1);
  if (has_b) in[n++] = rand_tensor(MF_SHAPE(A), seed + 2, -0.5f, 0.5f);
  in[n++] = rand_tensor(MF_SHAPE(1, A), seed + 3, -1.5f, 1.5f);
  for (int i = 0; i < n; i++) mf_tensor_set_requires_grad(in[i], 1);
  pool_gc g = {has_b, twice};
  gradcheck(label, f_pool, n, in, &g, NULL);
  for (int i = 0; i < n; i++) mf_tensor_free(in[i]);
}

TEST(test_additive_attention_pool_backward_matches_finite_differences) {
  gradcheck_pool("pool", 1, 0, 400);
}

TEST(test_additive_attention_pool_backward_matches_finite_differences_without_bias) {
  gradcheck_pool("pool no bias", 0, 0, 410);
}

TEST(test_additive_attention_pool_backward_accumulates_over_two_uses) {
  gradcheck_pool("pool twice", 1, 1, 420);
}

TEST(test_additive_attention_pool_is_bit_identical_when_run_twice) {
  const int N = 8, T = 130, D = 64, A = 32;
  float *res[2];
  for (int rep = 0; rep < 2; rep++) {
    mf_tensor *in[4] = {
        rand_tensor(MF_SHAPE(N, T, D), 430, -1, 1), rand_tensor(MF_SHAPE(A, D), 431, -1, 1),
        rand_tensor(MF_SHAPE(A), 432, -1, 1), rand_tensor(MF_SHAPE(1, A), 433, -1, 1)};
    int64_t total = N * D;
    for (int i = 0; i < 4; i++) {
      mf_tensor_set_requires_grad(in[i], 1);
      total += in[i]->numel;
    }
    mf_ctx *ctx = mf_ctx_new();
    mf_tensor *out = mf_additive_attention_pool(ctx, in[0], in[1], in[2], in[3]);
    res[rep] = malloc((size_t)total * sizeof(float));
    memcpy(res[rep], out->data, (size_t)out->numel * sizeof(float));
    float *g = malloc((size_t)out->numel * sizeof(float));
    for (int64_t i = 0; i < out->numel; i++) g[i] = cosf((float)i);
    EXPECT(mf_backward_with_grad(ctx, out, g) == MF_OK, "%s", mf_error());
    int64_t off = out->numel;
    for (int i = 0; i < 4; i++) {
      mf_tensor_read_grad(in[i], res[rep] + off);
      off += in[i]->numel;
      mf_tensor_free(in[i]);
    }
    free(g);
    mf_ctx_free(ctx);
  }
  int64_t total = N * D + N * T * D + A * D + A + A;
  EXPECT(memcmp(res[0], res[1], (size_t)total * sizeof(float)) == 0, "two runs differ");
  free(res[0]);
  free(res[1]);
}
