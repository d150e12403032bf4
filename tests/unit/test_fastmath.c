/* fastmath (core/src/fastmath.{h,c}): the shared Philox generator against the scalar
 * reference, and the properties of the cloned array kernels that the ops sharing them rely
 * on. Their accuracy is tested through the ops (test_activation.c, test_rnn.c).
 */
#include <stdlib.h>
#include <string.h>

#include "fastmath.h"
#include "melforge/melforge.h"
#include "mftest.h"

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* Values across every branch of the kernels: the tanh polynomial and exp ranges, the
 * sigmoid's two signs, GELU's far tails, exp underflow, and the special values. */
static float *test_values(int64_t n) {
  float *x = malloc((size_t)n * sizeof(float));
  mf_rng r = mf_rng_stream(7, MF_RNG_USER);
  for (int64_t i = 0; i < n; i++) {
    const float u = mf_rng_uniform(&r) * 2.0f - 1.0f;
    x[i] = i % 3 == 0 ? u * 0.7f : i % 3 == 1 ? u * 12.0f : u * 120.0f;
  }
  const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 0.625f, -0.625f, 88.0f, -88.0f};
  for (int k = 0; k < (int)(sizeof special / sizeof special[0]) && 5 * k < n; k++)
    x[5 * k] = special[k];
  return x;
}

/* ---- Philox -------------------------------------------------------------------------------- */

static int philox_fill_matches_reference(const uint32_t key[2], uint64_t ctr, int64_t nblocks) {
  uint32_t *w = malloc((size_t)(4 * nblocks + 1) * sizeof(uint32_t));
  w[4 * nblocks] = 0xA5A5A5A5u; /* guard: nothing written past the blocks asked for */
  mf__philox_fill(key, ctr, nblocks, w);
  int ok = w[4 * nblocks] == 0xA5A5A5A5u;
  for (int64_t b = 0; b < nblocks && ok; b++) {
    uint32_t ref[4];
    mf_philox4x32(key, ctr + (uint64_t)b, ref);
    ok = memcmp(ref, w + 4 * b, sizeof ref) == 0;
    if (!ok) mftest_fail(__FILE__, __LINE__, "block %llu differs", (unsigned long long)(ctr + b));
  }
  free(w);
  return ok;
}

TEST(test_philox_fill_gives_the_words_of_mf_philox4x32_for_any_start_and_count) {
  const uint32_t key[2] = {0x243F6A88u, 0x85A308D3u};
  /* Counts around the vector widths; starts whose low word carries into the high word
   * within the run, and one that wraps the 64-bit counter. */
  const uint64_t starts[] = {0, 1, 12345, 0xFFFFFFF9ull, 0x1FFFFFFFEull, 0xFFFFFFFFFFFFFFFCull};
  for (size_t s = 0; s < sizeof starts / sizeof starts[0]; s++)
    for (int64_t n = 0; n <= 70; n++)
      EXPECT(philox_fill_matches_reference(key, starts[s], n), "start %llu, %lld blocks",
             (unsigned long long)starts[s], (long long)n);
}

TEST(test_philox_fill_of_a_long_run_matches_mf_philox4x32) {
  const uint32_t key[2] = {1u, 0xFFFFFFFFu};
  EXPECT(philox_fill_matches_reference(key, 987654321ull, 5000), "5000 blocks");
}

TEST(test_philox_keep_threshold_agrees_with_the_unit_float_compare) {
  /* Dropout's integer test must keep exactly the words with mf_u32_to_unit(w) >= p. */
  const float ps[] = {0.0f, 1e-7f, 0.1f, 0.3f, 0.5f, 0.999f, 1.0f - 0x1p-24f, 1.0f};
  for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
    const int32_t thr = philox_keep_threshold(ps[k]);
    /* Words at and next to the threshold, the extremes, and a sweep. */
    uint32_t words[3 + 3 + 64];
    int nw = 0;
    for (int d = -1; d <= 1; d++) {
      const int64_t u = (int64_t)thr + d;
      if (u >= 0 && u < (1 << 24)) words[nw++] = (uint32_t)u << 8 | 0xFFu;
    }
    words[nw++] = 0, words[nw++] = 0xFFFFFFFFu, words[nw++] = 0x80000000u;
    for (int i = 0; i < 64; i++) words[nw++] = (uint32_t)i * 0x04000001u;
    for (int i = 0; i < nw; i++)
      EXPECT(philox_keeps(words[i], thr) == (mf_u32_to_unit(words[i]) >= ps[k]),
             "p = %.9g, word 0x%08x", (double)ps[k], words[i]);
  }
  EXPECT(philox_keeps(0u, philox_keep_threshold(0.0f)), "p = 0 must keep everything");
  EXPECT(!philox_keeps(0xFFFFFFFFu, philox_keep_threshold(1.0f)), "p = 1 must keep nothing");
}

/* ---- array kernels -------------------------------------------------------------------------- */

typedef void (*kernel)(const float *x, float *y, int64_t n);

/* Ops call the kernels on pieces (activation chunks, one RNN row of H gates), so an element's
 * result must not depend on where a piece starts or how long it is: vector body, peeled
 * head and scalar tail must agree bit for bit. */
static void check_piecewise_equals_whole(const char *name, kernel k) {
  const int64_t n = 1000;
  float *x = test_values(n), *whole = malloc((size_t)n * sizeof(float));
  float *piece = malloc((size_t)n * sizeof(float));
  k(x, whole, n);
  const int64_t cuts[] = {0, 1, 3, 16, 17, 100, 127, 500, 999, n};
  for (size_t c = 0; c + 1 < sizeof cuts / sizeof cuts[0]; c++)
    k(x + cuts[c], piece + cuts[c], cuts[c + 1] - cuts[c]);
  int bad = 0;
  for (int64_t i = 0; i < n && bad < 3; i++)
    if (!same_bits(whole[i], piece[i])) {
      bad++;
      mftest_fail(__FILE__, __LINE__, "%s(%.9g): %.9g whole vs %.9g in pieces", name, (double)x[i],
                  (double)whole[i], (double)piece[i]);
    }
  free(piece);
  free(whole);
  free(x);
}

TEST(test_activation_kernels_do_not_depend_on_how_the_array_is_cut) {
  check_piecewise_equals_whole("gelu", mf__vgelu);
  check_piecewise_equals_whole("tanh", mf__vtanh);
  check_piecewise_equals_whole("sigmoid", mf__vsigmoid);
}

static void check_in_place_equals_out_of_place(const char *name, kernel k) {
  const int64_t n = 333;
  float *x = test_values(n), *y = malloc((size_t)n * sizeof(float));
  k(x, y, n);
  k(x, x, n);
  for (int64_t i = 0; i < n; i++)
    if (!same_bits(x[i], y[i])) {
      mftest_fail(__FILE__, __LINE__, "%s at %lld: %.9g in place vs %.9g", name, (long long)i,
                  (double)x[i], (double)y[i]);
      break;
    }
  free(y);
  free(x);
}

TEST(test_activation_kernels_work_in_place) {
  /* The RNN ops turn gate rows into activations in place. */
  check_in_place_equals_out_of_place("gelu", mf__vgelu);
  check_in_place_equals_out_of_place("tanh", mf__vtanh);
  check_in_place_equals_out_of_place("sigmoid", mf__vsigmoid);
}

TEST(test_activation_kernels_saturate_and_pass_nan) {
  const float x[] = {INFINITY, -INFINITY, NAN, 200.0f, -200.0f};
  float t[5], s[5];
  mf__vtanh(x, t, 5);
  mf__vsigmoid(x, s, 5);
  EXPECT(t[0] == 1.0f && t[1] == -1.0f && isnan(t[2]) && t[3] == 1.0f && t[4] == -1.0f,
         "tanh: %g %g %g %g %g", (double)t[0], (double)t[1], (double)t[2], (double)t[3],
         (double)t[4]);
  EXPECT(s[0] == 1.0f && s[1] == 0.0f && isnan(s[2]) && s[3] == 1.0f && s[4] == 0.0f,
         "sigmoid: %g %g %g %g %g", (double)s[0], (double)s[1], (double)s[2], (double)s[3],
         (double)s[4]);
}

TEST(test_gelu_backward_kernel_overwrites_or_accumulates) {
  const int64_t n = 77;
  float *x = test_values(n), go[77], g0[77], g1[77];
  for (int64_t i = 0; i < n; i++) {
    x[i] = isfinite(x[i]) ? x[i] * 0.05f : 0.5f; /* finite derivatives */
    go[i] = 0.25f * (float)(i % 7) - 0.5f;
    g1[i] = 1.0f;
  }
  memset(g0, 0xFF, sizeof g0); /* garbage: acc = 0 must not read it */
  mf__vgelu_backward(x, go, g0, n, 0);
  mf__vgelu_backward(x, go, g1, n, 1);
  /* The clones may fuse the accumulation into one FMA (a single rounding instead of two):
   * agreement to 1 ulp of the sum. */
  for (int64_t i = 0; i < n; i++)
    EXPECT_NEAR(g1[i], 1.0 + (double)g0[i], 1.2e-7 * (1.0 + fabs((double)g0[i])));
  free(x);
}

/* ---- softmax row ---------------------------------------------------------------------------- */

TEST(test_softmax_row_in_place_equals_out_of_place_and_sums_to_one) {
  /* Attention normalises its score rows in place. */
  const int64_t n = 130;
  float x[130], y[130];
  mf_rng r = mf_rng_stream(3, MF_RNG_USER);
  for (int64_t i = 0; i < n; i++) x[i] = 20.0f * mf_rng_uniform(&r) - 10.0f;
  mf__softmax_row(x, y, n, 0);
  mf__softmax_row(x, x, n, 0);
  double sum = 0.0;
  for (int64_t i = 0; i < n; i++) {
    EXPECT(same_bits(x[i], y[i]), "at %lld: %.9g in place vs %.9g", (long long)i, (double)x[i],
           (double)y[i]);
    sum += y[i];
  }
  /* 130 terms each within a few ulps, scaled by a correctly rounded 1 / sum. */
  EXPECT_NEAR(sum, 1.0, 1e-5);
}

TEST(test_softmax_row_is_what_mf_softmax_gives_on_the_last_axis) {
  /* The row kernel is shared: attention weights equal mf_softmax of the scores exactly. */
  const int64_t rows = 3, n = 45;
  mf_ctx *ctx = mf_ctx_new();
  mf_tensor *x = mf_ctx_tensor(ctx, MF_SHAPE(rows, n));
  mf_rng r = mf_rng_stream(4, MF_RNG_USER);
  for (int64_t i = 0; i < x->numel; i++) x->data[i] = 30.0f * mf_rng_uniform(&r) - 15.0f;
  mf_tensor *s = mf_softmax(ctx, x, -1), *ls = mf_log_softmax(ctx, x, -1);
  float y[45];
  for (int64_t k = 0; k < rows; k++) {
    mf__softmax_row(x->data + k * n, y, n, 0);
    EXPECT(memcmp(y, s->data + k * n, sizeof y) == 0, "softmax row %lld differs", (long long)k);
    mf__softmax_row(x->data + k * n, y, n, 1);
    EXPECT(memcmp(y, ls->data + k * n, sizeof y) == 0, "log-softmax row %lld differs",
           (long long)k);
  }
  mf_ctx_free(ctx);
}

/* ---- fixed-order reductions ------------------------------------------------------------------ */

TEST(test_lane_sums_match_a_double_sum_and_ignore_alignment) {
  float a[203], b[203];
  mf_rng r = mf_rng_stream(5, MF_RNG_USER);
  for (int i = 0; i < 203; i++) a[i] = mf_rng_uniform(&r) - 0.5f, b[i] = mf_rng_uniform(&r);
  for (int off = 0; off < 3; off++) {
    const int64_t n = 200;
    double s = 0.0, d = 0.0;
    for (int64_t i = 0; i < n; i++) s += a[off + i], d += (double)a[off + i] * b[off + i];
    /* 200 terms of magnitude <= 0.5: float rounding stays far below 1e-5. */
    EXPECT_NEAR(sum_lanes(a + off, n), s, 1e-5);
    EXPECT_NEAR(dot_lanes(a + off, b + off, n), d, 1e-5);
  }
  EXPECT(sum_lanes(a, 0) == 0.0f && row_max(a, 0) == -INFINITY, "empty rows");
  float m[5] = {1.0f, NAN, 3.0f, -2.0f, 2.5f};
  EXPECT(row_max(m, 5) == 3.0f, "row_max skips NaN: got %g", (double)row_max(m, 5));
}
