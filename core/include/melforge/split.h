/* melforge/split.h — train / validation / test splits of a dataset's rows.
 *
 * Honest evaluation first: by default the split is grouped by track, so all segments of a
 * track land in the same set (segments of one song are near-duplicates; splitting them
 * across sets inflates test accuracy). Splits are stratified by class at the level they
 * split (tracks, or rows when not grouped). group = none reproduces the notebooks' leaky
 * per-segment split, for comparison.
 *
 * A split depends only on the labels, the groups and the random stream given (the
 * experiment's split stream): changing the model, the augmentation or the thread count
 * never moves it.
 *
 * Ratios: per class, round(test * n) groups go to test, round(val * n) to validation, the
 * rest to training (at least one to training when the class has any). K-fold: groups of each
 * class are shuffled and dealt round-robin into k folds; fold i is the test set and the
 * other folds are shared between training and validation in the train : val proportion.
 */
#ifndef MELFORGE_SPLIT_H
#define MELFORGE_SPLIT_H

#include <stdint.h>

#include "melforge/error.h"
#include "melforge/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mf_split_config {
  double train, val, test; /* ratios; must sum to 1 (within 1e-6); val or test may be 0 */
  int stratify;            /* 1: per class (default) */
  int group_by_track;      /* 1: whole tracks (default); 0: rows (leaky) */
  int kfold;               /* 0 or 1: plain split; k >= 2: k-fold, test = fold `fold` */
  int fold;                /* 0 .. kfold - 1 */
} mf_split_config;

typedef struct mf_split {
  int64_t *train, *val, *test; /* row indices, ascending */
  int64_t n_train, n_val, n_test;
} mf_split;

/* 0.64 / 0.16 / 0.20, stratified, grouped by track. */
mf_split_config mf_split_defaults(void);
mf_status mf_split_check(const mf_split_config *cfg);

/* labels[n] in [0, n_classes), groups[n] track ids (ignored when not grouping; may be NULL
 * then). A track whose rows carry different labels is an error naming it. */
mf_status mf_split_make(const int32_t *labels, const int32_t *groups, int64_t n, int n_classes,
                        const mf_split_config *cfg, mf_rng *rng, mf_split *out);

/* Fixed splits from text files (published splits): one track path per line as stored in the
 * dataset's /tracks (blank lines and lines starting with '#' ignored; a path may also match
 * by its file name alone when that is unique). Rows of tracks in no list are left out.
 * val_file / test_file may be NULL. A path that matches no track is an error naming the
 * file and line; a track listed in two files is an error too. */
mf_status mf_split_from_lists(const int32_t *groups, int64_t n, char *const *tracks,
                              int n_tracks, const char *train_file, const char *val_file,
                              const char *test_file, mf_split *out);

void mf_split_free(mf_split *s);

#ifdef __cplusplus
}
#endif
#endif
