/* train_data.c — dataset recipes: build the cached HDF5 file from an audio folder when it is
 * missing or when the recipe changed. */
#define _GNU_SOURCE
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "melforge/dataset.h"
#include "train_internal.h"
#include "melforge/train.h"

/* Whether two JSON texts hold equal values (formatting and key order aside). */
static int json_same(const char *a, const char *b) {
  if (!a || !b) return a == b;
  json_t *x = json_loads(a, 0, NULL), *y = json_loads(b, 0, NULL);
  int same = x && y && json_equal(x, y);
  json_decref(x);
  json_decref(y);
  return same;
}

static char *real_or_copy(const char *p) {
  char buf[PATH_MAX];
  return strdup(realpath(p, buf) ? buf : p);
}

/* Why the cache at data->path does not match the recipe (NULL when it does). */
static char *stale_reason(const mf_data_config *data, const mf_dataset_info *info, double rate,
                          const char *params_json, const char *seg_json) {
  char buf[1024];
  const char *want_feature = mf_component_name(data->feature.component);
  if (!info->feature || strcmp(info->feature, want_feature) != 0) {
    snprintf(buf, sizeof buf, "its feature is %s, the recipe asks for %s",
             info->feature ? info->feature : "(none)", want_feature);
    return strdup(buf);
  }
  if (!json_same(info->feature_params, params_json)) {
    snprintf(buf, sizeof buf, "the feature parameters changed (cached %s, recipe %s)",
             info->feature_params ? info->feature_params : "{}", params_json);
    return strdup(buf);
  }
  if (!json_same(info->segmenting, seg_json)) {
    snprintf(buf, sizeof buf, "the segmenting changed (cached %s, recipe %s)",
             info->segmenting ? info->segmenting : "{}", seg_json);
    return strdup(buf);
  }
  if (info->sample_rate != rate) {
    snprintf(buf, sizeof buf, "the sample rate changed (cached %g Hz, recipe %g Hz)",
             info->sample_rate, rate);
    return strdup(buf);
  }
  char *a = real_or_copy(data->audio_dir), *b = real_or_copy(info->source ? info->source : "");
  int same = !strcmp(a, b);
  if (!same) snprintf(buf, sizeof buf, "it was built from %s, the recipe reads %s", b, a);
  free(a);
  free(b);
  return same ? NULL : strdup(buf);
}

static void warn_file(const char *file, const char *reason, void *user) {
  const mf_train_hooks *h = user;
  mf__say(h, "warning: skipped %s: %s", file, reason);
}

mf_status mf_train_prepare_data(const mf_data_config *data, const mf_train_hooks *hooks) {
  if (!data->audio_dir) {
    if (access(data->path, R_OK) != 0)
      return mf_set_error(MF_ENOTFOUND,
                          "dataset %s does not exist; build it with melforge extract, or give "
                          "the dataset an audio folder and a feature so it is built on demand",
                          data->path);
    return MF_OK;
  }
  const double rate = data->sample_rate > 0 ? data->sample_rate : 22050.0;
  mf_values *defaults = NULL;
  const mf_values *params = data->feature.values;
  if (!params) {
    if (mf_component_values(data->feature.component, &defaults) != MF_OK) return MF_EINVAL;
    params = defaults;
  }
  char *params_json = mf_values_to_json(params);
  char *seg_json = mf_segmenting_to_json(&data->seg);
  char *why = NULL;
  if (access(data->path, F_OK) == 0) {
    mf_dataset_info info = {0};
    if (mf_dataset_read_info(data->path, &info) != MF_OK) {
      why = strdup(mf_error());
    } else {
      why = stale_reason(data, &info, rate, params_json, seg_json);
      mf_dataset_info_clear(&info);
    }
  }
  mf_status s = MF_OK;
  if (why || access(data->path, F_OK) != 0) {
    if (why)
      mf__say(hooks, "rebuilding the dataset cache %s: %s", data->path, why);
    else
      mf__say(hooks, "building the dataset cache %s from %s", data->path, data->audio_dir);
    /* The cache's folder may not exist yet. */
    char *dir = strdup(data->path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
      *slash = '\0';
      char cmd_dir[PATH_MAX];
      snprintf(cmd_dir, sizeof cmd_dir, "%s", dir);
      for (char *p = cmd_dir + 1; *p; p++)
        if (*p == '/') {
          *p = '\0';
          mkdir(cmd_dir, 0777);
          *p = '/';
        }
      mkdir(cmd_dir, 0777);
    }
    free(dir);
    mf_extract_config ec = {data->audio_dir, data->feature.component,
                            params,          rate,
                            data->seg,       0,
                            data->path,      NULL,
                            warn_file,       (void *)hooks};
    mf_extract_summary sum;
    s = mf_extract_dataset(&ec, &sum);
    if (s == MF_OK)
      mf__say(hooks, "extracted %lld segments from %d tracks (%d classes) in %.1f s%s",
              (long long)sum.rows, sum.tracks, sum.classes, sum.seconds,
              sum.skipped ? "; some files were skipped" : "");
    else
      s = mf_wrap_error(s, "building %s", data->path);
  }
  free(why);
  free(params_json);
  free(seg_json);
  mf_values_free(defaults);
  return s;
}
