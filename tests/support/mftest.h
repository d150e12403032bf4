/* mftest.h — the tiny test harness every suite in tests/ uses.
 *
 * A suite is one .c file of TEST(name) { ... } blocks; tests register themselves and
 * mftest_main.c runs them all (or those whose names contain argv[1]). Checks report and
 * continue; a test with a failed check fails, and the suite exits 1.
 *
 *   TEST(test_add_broadcasts_rows) {
 *     ...
 *     EXPECT_NEAR(out->data[3], 5.0, 1e-6);
 *   }
 */
#ifndef MFTEST_H
#define MFTEST_H

#include <math.h>
#include <stdio.h>

typedef void (*mftest_fn)(void);
void mftest_register(const char *name, mftest_fn fn);
void mftest_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The directory holding the test data files (tests/data), set by CMake. */
const char *mftest_data_dir(void);

#define TEST(name)                                                                                 \
  static void name(void);                                                                          \
  __attribute__((constructor)) static void mftest_reg_##name(void) {                               \
    mftest_register(#name, name);                                                                  \
  }                                                                                                \
  static void name(void)

#define EXPECT(cond, ...)                                                                          \
  do {                                                                                             \
    if (!(cond)) mftest_fail(__FILE__, __LINE__, __VA_ARGS__);                                     \
  } while (0)

#define EXPECT_NEAR(a, b, tol)                                                                     \
  do {                                                                                             \
    double mft_a_ = (double)(a), mft_b_ = (double)(b);                                             \
    if (!(fabs(mft_a_ - mft_b_) <= (tol)))                                                         \
      mftest_fail(__FILE__, __LINE__, "%s = %.9g, expected %s = %.9g (tolerance %g)", #a, mft_a_,  \
                  #b, mft_b_, (double)(tol));                                                      \
  } while (0)

#define EXPECT_EQ_INT(a, b)                                                                        \
  do {                                                                                             \
    long long mft_a_ = (long long)(a), mft_b_ = (long long)(b);                                    \
    if (mft_a_ != mft_b_)                                                                          \
      mftest_fail(__FILE__, __LINE__, "%s = %lld, expected %lld", #a, mft_a_, mft_b_);             \
  } while (0)

#endif
