/* expect_abort.h — checks that code aborts with a given message (shape errors, misuse).
 *
 * An abort would end the whole suite, so the code runs in a forked child whose stderr is
 * captured:
 *
 *   static void child_bad_reshape(void) { ... mf_reshape(ctx, x, MF_SHAPE(5, 5)); }
 *   TEST(test_reshape_to_a_different_element_count_aborts) {
 *     EXPECT(mftest_aborts_with(child_bad_reshape, "[2, 3, 4]"), "mismatch accepted");
 *   }
 */
#ifndef EXPECT_ABORT_H
#define EXPECT_ABORT_H

/* Runs fn in a child process and returns 1 when the child died of SIGABRT having written
 * `needle` to stderr. Otherwise prints how the child ended and what it wrote, and returns 0.
 * A child still running after 30 s is killed (a hang fails instead of stalling the suite). */
int mftest_aborts_with(void (*fn)(void), const char *needle);

#endif
