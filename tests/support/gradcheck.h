/* gradcheck.h — finite-difference gradient checks for ops.
 *
 * gradcheck() evaluates f on the given leaf inputs, back-propagates a fixed random
 * projection r of the output (loss L = sum_i r_i out_i), and compares every element of the
 * analytic gradient of each input that requires grad with the central difference
 * (L(x + eps) - L(x - eps)) / (2 eps), L accumulated in double.
 *
 * Tolerance: |analytic - numeric| <= atol + rtol * |numeric|. In float32 an element of f
 * carries a relative rounding error near 1e-7; divided by 2 eps (eps = 1e-3) and summed
 * over outputs this is ~1e-4 on O(1) values, so atol 2e-3 / rtol 1e-2 are the defaults:
 * tight enough to catch a wrong term, loose enough not to flake on rounding.
 *
 * f must be deterministic given its inputs; the dropout stream is reset before every
 * evaluation so dropout ops draw the same mask each time.
 */
#ifndef GRADCHECK_H
#define GRADCHECK_H

#include "melforge/melforge.h"

typedef mf_tensor *(*gradcheck_fn)(mf_ctx *ctx, mf_tensor **in, void *user);

typedef struct gradcheck_opts {
  double eps;  /* 0: 1e-3 */
  double atol; /* 0: 2e-3 */
  double rtol; /* 0: 1e-2 */
} gradcheck_opts;

/* Returns 1 when every checked element matches; prints the worst mismatch otherwise
 * (and records a test failure). Inputs are heap tensors; those with MF_REQUIRES_GRAD set
 * are checked. */
int gradcheck(const char *label, gradcheck_fn f, int n_in, mf_tensor **in, void *user,
              const gradcheck_opts *opts);

/* Fills t with uniform values in [lo, hi) from a seeded stream (test inputs). */
void fill_uniform(mf_tensor *t, uint64_t seed, float lo, float hi);

#endif
