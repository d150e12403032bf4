/* metrics.c — classification metrics, their text and JSON forms, and paired tests.
 *
 * Conventions follow scikit-learn so numbers can be checked against it: argmax ties go to
 * the lowest class index (numpy.argmax), undefined precision / recall / F1 are 0
 * (zero_division=0), F1 = 2 tp / (2 tp + fp + fn), and macro / weighted averages run over
 * all n_classes (classification_report with labels=range(n_classes)), so a class that
 * never occurs in the evaluated rows counts as 0 in the macro average.
 *
 * Top-k uses the same tie rule as argmax: a row counts when fewer than k classes rank above
 * its label, a class ranking above when its score is higher or equal with a lower index.
 * top-1 accuracy is therefore exactly the accuracy.
 */
#include "melforge/metrics.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mf_metrics_clear(mf_metrics *m) {
  if (!m) return;
  free(m->precision);
  free(m->recall);
  free(m->f1);
  free(m->support);
  free(m->confusion);
  free(m->predicted);
  memset(m, 0, sizeof *m);
}

static int argmax_row(const float *p, int c) {
  int best = 0;
  for (int j = 1; j < c; j++)
    if (p[j] > p[best]) best = j;
  return best;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Sums the rows of each track (in row order, in double) and compares the argmax with the
 * track's label. */
static mf_status track_accuracy(const float *probs, const int32_t *labels, const int32_t *tracks,
                                int64_t n, int c, int64_t *n_tracks, double *acc) {
  uint64_t *key = malloc((size_t)n * sizeof *key);
  double *sum = malloc((size_t)c * sizeof *sum);
  if (!key || !sum) {
    free(key), free(sum);
    return mf_set_error(MF_ENOMEM, "metrics: out of memory grouping %lld rows by track",
                        (long long)n);
  }
  /* (track, row) in one integer: sorting groups each track's rows, in row order. */
  for (int64_t i = 0; i < n; i++)
    key[i] = ((uint64_t)((uint32_t)tracks[i] ^ 0x80000000u) << 32) | (uint64_t)i;
  qsort(key, (size_t)n, sizeof *key, cmp_u64);
  int64_t tracks_seen = 0, right = 0;
  mf_status st = MF_OK;
  for (int64_t k = 0; k < n;) {
    int64_t first = (int64_t)(key[k] & 0xffffffffu);
    int32_t t = tracks[first];
    for (int j = 0; j < c; j++) sum[j] = 0;
    int64_t e = k;
    for (; e < n; e++) {
      int64_t row = (int64_t)(key[e] & 0xffffffffu);
      if (tracks[row] != t) break;
      if (labels[row] != labels[first]) {
        st = mf_set_error(MF_EINVAL,
                          "metrics: track %d has rows with different labels (row %lld: %d, row "
                          "%lld: %d); a track must carry one class",
                          (int)t, (long long)first, (int)labels[first], (long long)row,
                          (int)labels[row]);
        goto done;
      }
      for (int j = 0; j < c; j++) sum[j] += probs[row * c + j];
    }
    /* Argmax over sums: dividing by the row count could round two sums into a tie. */
    int best = 0;
    for (int j = 1; j < c; j++)
      if (sum[j] > sum[best]) best = j;
    right += best == labels[first];
    tracks_seen++;
    k = e;
  }
  *n_tracks = tracks_seen;
  *acc = tracks_seen ? (double)right / (double)tracks_seen : 0.0;
done:
  free(key), free(sum);
  return st;
}

mf_status mf_metrics_compute(const float *probs, const int32_t *labels, const int32_t *tracks,
                             int64_t n, int n_classes, int top_k, double loss, mf_metrics *out) {
  if (!out) return mf_set_error(MF_EINVAL, "mf_metrics_compute: no output given");
  memset(out, 0, sizeof *out);
  if (n < 1 || !probs || !labels)
    return mf_set_error(MF_EINVAL, "metrics: nothing to evaluate (%lld rows)", (long long)n);
  if (n > INT32_MAX)
    return mf_set_error(MF_EINVAL, "metrics: %lld rows is more than the %d supported", (long long)n,
                        INT32_MAX);
  if (n_classes < 1)
    return mf_set_error(MF_EINVAL, "metrics: n_classes = %d must be >= 1", n_classes);
  if (top_k < 1 || top_k > n_classes)
    return mf_set_error(MF_EINVAL, "metrics: top_k = %d must be in 1..%d (the number of classes)",
                        top_k, n_classes);
  for (int64_t i = 0; i < n; i++)
    if (labels[i] < 0 || labels[i] >= n_classes)
      return mf_set_error(MF_EINVAL, "metrics: row %lld has label %d, outside 0..%d", (long long)i,
                          (int)labels[i], n_classes - 1);
  const int c = n_classes;
  mf_metrics *m = out;
  m->n_classes = c;
  m->n = n;
  m->loss = loss;
  m->top_k = top_k;
  m->precision = calloc((size_t)c, sizeof(double));
  m->recall = calloc((size_t)c, sizeof(double));
  m->f1 = calloc((size_t)c, sizeof(double));
  m->support = calloc((size_t)c, sizeof(int64_t));
  m->confusion = calloc((size_t)c * (size_t)c, sizeof(int64_t));
  m->predicted = malloc((size_t)n * sizeof(int32_t));
  if (!m->precision || !m->recall || !m->f1 || !m->support || !m->confusion || !m->predicted) {
    mf_metrics_clear(m);
    return mf_set_error(MF_ENOMEM, "metrics: out of memory for %lld rows x %d classes",
                        (long long)n, c);
  }
  int64_t right = 0, right_k = 0;
  for (int64_t i = 0; i < n; i++) {
    const float *p = probs + i * c;
    int y = labels[i], pred = argmax_row(p, c);
    m->predicted[i] = pred;
    m->confusion[(int64_t)y * c + pred]++;
    right += pred == y;
    int above = 0;
    for (int j = 0; j < c; j++) above += p[j] > p[y] || (p[j] == p[y] && j < y);
    right_k += above < top_k;
  }
  m->accuracy = (double)right / (double)n;
  m->top_k_accuracy = (double)right_k / (double)n;
  for (int k = 0; k < c; k++) {
    int64_t tp = m->confusion[(int64_t)k * c + k], support = 0, predicted = 0;
    for (int j = 0; j < c; j++) {
      support += m->confusion[(int64_t)k * c + j];
      predicted += m->confusion[(int64_t)j * c + k];
    }
    int64_t fp = predicted - tp, fn = support - tp;
    m->support[k] = support;
    m->precision[k] = predicted ? (double)tp / (double)predicted : 0.0;
    m->recall[k] = support ? (double)tp / (double)support : 0.0;
    m->f1[k] = tp ? 2.0 * (double)tp / (double)(2 * tp + fp + fn) : 0.0;
    m->macro_precision += m->precision[k];
    m->macro_recall += m->recall[k];
    m->macro_f1 += m->f1[k];
    m->weighted_precision += m->precision[k] * (double)support;
    m->weighted_recall += m->recall[k] * (double)support;
    m->weighted_f1 += m->f1[k] * (double)support;
  }
  m->macro_precision /= c, m->macro_recall /= c, m->macro_f1 /= c;
  m->weighted_precision /= (double)n, m->weighted_recall /= (double)n, m->weighted_f1 /= (double)n;
  if (tracks) {
    mf_status st = track_accuracy(probs, labels, tracks, n, c, &m->n_tracks, &m->track_accuracy);
    if (st != MF_OK) {
      mf_metrics_clear(m);
      return st;
    }
  }
  return MF_OK;
}

/* ---- text ------------------------------------------------------------------------------ */

typedef struct strbuf {
  char *s;
  size_t len, cap;
  int failed;
} strbuf;

__attribute__((format(printf, 2, 3))) static void sb_printf(strbuf *b, const char *fmt, ...) {
  if (b->failed) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (k < 0) {
      b->failed = 1;
      return;
    }
    if (b->s && b->len + (size_t)k < b->cap) {
      b->len += (size_t)k;
      return;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap <= b->len + (size_t)k) cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
      b->failed = 1;
      return;
    }
    b->s = s, b->cap = cap;
  }
}

static char *sb_finish(strbuf *b) {
  if (b->failed || !b->s) {
    free(b->s);
    mf_set_error(MF_ENOMEM, "metrics: out of memory formatting text");
    return NULL;
  }
  return b->s;
}

/* Display width of UTF-8 text: code points, not bytes (genre names may be accented). */
static int u8_width(const char *s) {
  int w = 0;
  for (; *s; s++) w += ((unsigned char)*s & 0xC0) != 0x80;
  return w;
}

/* Bytes of the first k code points of s. */
static int u8_prefix(const char *s, int k) {
  int i = 0;
  while (s[i] && k > 0) {
    i++;
    while (((unsigned char)s[i] & 0xC0) == 0x80) i++;
    k--;
  }
  return i;
}

/* s left-aligned in `width` display columns. */
static void sb_left(strbuf *b, const char *s, int width) {
  sb_printf(b, "%s%*s", s, width > u8_width(s) ? width - u8_width(s) : 0, "");
}

/* s right-aligned in `width` display columns, cut to `bytes` bytes. */
static void sb_right(strbuf *b, const char *s, int bytes, int width) {
  char tmp[64];
  snprintf(tmp, sizeof tmp, "%.*s", bytes < 63 ? bytes : 63, s);
  int w = u8_width(tmp);
  sb_printf(b, "%*s%s", width > w ? width - w : 0, "", tmp);
}

/* Class names as given, or their indices when none were given. */
typedef struct names {
  const char **v;
  char *store;
} names;

static int names_make(names *nm, char *const *class_names, int c) {
  nm->v = malloc((size_t)c * sizeof *nm->v);
  nm->store = class_names ? NULL : malloc((size_t)c * 12);
  if (!nm->v || (!class_names && !nm->store)) {
    free(nm->v), free(nm->store);
    return 0;
  }
  for (int k = 0; k < c; k++) {
    if (class_names && class_names[k]) {
      nm->v[k] = class_names[k];
    } else if (class_names) {
      nm->v[k] = "?";
    } else {
      snprintf(nm->store + 12 * k, 12, "%d", k);
      nm->v[k] = nm->store + 12 * k;
    }
  }
  return 1;
}

static void names_free(names *nm) { free(nm->v), free(nm->store); }

char *mf_metrics_report(const mf_metrics *m, char *const *class_names) {
  names nm;
  if (!m || m->n_classes < 1) {
    mf_set_error(MF_EINVAL, "mf_metrics_report: no metrics given");
    return NULL;
  }
  if (!names_make(&nm, class_names, m->n_classes)) {
    mf_set_error(MF_ENOMEM, "metrics: out of memory formatting the report");
    return NULL;
  }
  const int c = m->n_classes;
  int width = (int)strlen("weighted avg");
  for (int k = 0; k < c; k++)
    if (u8_width(nm.v[k]) > width) width = u8_width(nm.v[k]);
  strbuf b = {0};
  /* sklearn's layout at digits=4: name column, then 10-character numeric columns. */
  sb_printf(&b, "%*s  %9s %9s %9s %9s\n\n", width, "", "precision", "recall", "f1-score",
            "support");
  for (int k = 0; k < c; k++) {
    sb_left(&b, nm.v[k], width);
    sb_printf(&b, "  %9.4f %9.4f %9.4f %9lld\n", m->precision[k], m->recall[k], m->f1[k],
              (long long)m->support[k]);
  }
  sb_printf(&b, "\n%-*s  %9s %9s %9.4f %9lld\n", width, "accuracy", "", "", m->accuracy,
            (long long)m->n);
  sb_printf(&b, "%-*s  %9.4f %9.4f %9.4f %9lld\n", width, "macro avg", m->macro_precision,
            m->macro_recall, m->macro_f1, (long long)m->n);
  sb_printf(&b, "%-*s  %9.4f %9.4f %9.4f %9lld\n", width, "weighted avg", m->weighted_precision,
            m->weighted_recall, m->weighted_f1, (long long)m->n);
  if (m->top_k > 1) sb_printf(&b, "\ntop-%d accuracy %.4f\n", m->top_k, m->top_k_accuracy);
  if (m->n_tracks > 0)
    sb_printf(&b, "%strack accuracy %.4f (%lld tracks)\n", m->top_k > 1 ? "" : "\n",
              m->track_accuracy, (long long)m->n_tracks);
  names_free(&nm);
  return sb_finish(&b);
}

/* Column headers are the first ABBR characters of the class names ("class" for classical);
 * when two names share those (or a name is empty) the columns are numbered instead and the
 * row labels carry the numbers, which serves as the legend. */
#define ABBR 5

char *mf_metrics_confusion_text(const mf_metrics *m, char *const *class_names) {
  if (!m || m->n_classes < 1 || !m->confusion) {
    mf_set_error(MF_EINVAL, "mf_metrics_confusion_text: no metrics given");
    return NULL;
  }
  const int c = m->n_classes;
  names nm;
  int *ab = malloc((size_t)c * sizeof *ab);
  if (!ab || !names_make(&nm, class_names, c)) {
    free(ab);
    mf_set_error(MF_ENOMEM, "metrics: out of memory formatting the confusion matrix");
    return NULL;
  }
  int numbered = 0;
  for (int k = 0; k < c; k++) {
    ab[k] = u8_prefix(nm.v[k], ABBR);
    if (ab[k] == 0) numbered = 1;
    for (int j = 0; j < k && !numbered; j++)
      if (ab[j] == ab[k] && memcmp(nm.v[j], nm.v[k], (size_t)ab[k]) == 0) numbered = 1;
  }
  int64_t most = 0;
  for (int64_t i = 0; i < (int64_t)c * c; i++)
    if (m->confusion[i] > most) most = m->confusion[i];
  int cell = snprintf(NULL, 0, "%lld", (long long)most);
  int num_w = snprintf(NULL, 0, "%d", c - 1);
  for (int k = 0; k < c; k++) {
    int w = numbered ? num_w : u8_width(nm.v[k]) < ABBR ? u8_width(nm.v[k]) : ABBR;
    if (w > cell) cell = w;
  }
  static const char corner[] = "true \\ pred";
  int label_w = (int)strlen(corner);
  for (int k = 0; k < c; k++) {
    int w = u8_width(nm.v[k]) + (numbered ? num_w + 1 : 0);
    if (w > label_w) label_w = w;
  }
  strbuf b = {0};
  sb_left(&b, corner, label_w);
  for (int k = 0; k < c; k++) {
    sb_printf(&b, "  ");
    if (numbered)
      sb_printf(&b, "%*d", cell, k);
    else
      sb_right(&b, nm.v[k], ab[k], cell);
  }
  sb_printf(&b, "\n");
  for (int k = 0; k < c; k++) {
    int w = label_w;
    if (numbered) {
      sb_printf(&b, "%*d ", num_w, k);
      w -= num_w + 1;
    }
    sb_left(&b, nm.v[k], w);
    for (int j = 0; j < c; j++)
      sb_printf(&b, "  %*lld", cell, (long long)m->confusion[(int64_t)k * c + j]);
    sb_printf(&b, "\n");
  }
  free(ab);
  names_free(&nm);
  return sb_finish(&b);
}

/* ---- JSON ------------------------------------------------------------------------------ */

/* JSON has no NaN or infinity (a loss that diverged): those become null. */
static json_t *real_or_null(double x) { return isfinite(x) ? json_real(x) : json_null(); }

char *mf_metrics_to_json(const mf_metrics *m, char *const *class_names) {
  if (!m || m->n_classes < 1 || !m->confusion) {
    mf_set_error(MF_EINVAL, "mf_metrics_to_json: no metrics given");
    return NULL;
  }
  const int c = m->n_classes;
  names nm;
  if (!names_make(&nm, class_names, c)) {
    mf_set_error(MF_ENOMEM, "metrics: out of memory writing JSON");
    return NULL;
  }
  json_t *o = json_object();
  json_t *conf = json_array();
  json_t *per = json_object();
  int ok = o && conf && per;
  ok = ok && !json_object_set_new(o, "accuracy", real_or_null(m->accuracy));
  ok = ok && !json_object_set_new(o, "loss", real_or_null(m->loss));
  ok = ok && !json_object_set_new(o, "top_k", json_integer(m->top_k));
  ok = ok && !json_object_set_new(o, "top_k_accuracy", real_or_null(m->top_k_accuracy));
  ok = ok && !json_object_set_new(o, "macro_precision", real_or_null(m->macro_precision));
  ok = ok && !json_object_set_new(o, "macro_recall", real_or_null(m->macro_recall));
  ok = ok && !json_object_set_new(o, "macro_f1", real_or_null(m->macro_f1));
  ok = ok && !json_object_set_new(o, "weighted_precision", real_or_null(m->weighted_precision));
  ok = ok && !json_object_set_new(o, "weighted_recall", real_or_null(m->weighted_recall));
  ok = ok && !json_object_set_new(o, "weighted_f1", real_or_null(m->weighted_f1));
  /* Undefined without track ids: null rather than a 0 that reads like a result. */
  ok = ok && !json_object_set_new(o, "track_accuracy",
                                  m->n_tracks > 0 ? real_or_null(m->track_accuracy) : json_null());
  ok = ok && !json_object_set_new(o, "n", json_integer(m->n));
  ok = ok && !json_object_set_new(o, "n_tracks", json_integer(m->n_tracks));
  /* Containers are attached first and filled through the borrowed pointer: *_set_new
   * releases its value on failure, so nothing is left to free by hand. */
  for (int k = 0; ok && k < c; k++) {
    json_t *row = json_array();
    ok = !json_array_append_new(conf, row);
    for (int j = 0; ok && j < c; j++)
      ok = !json_array_append_new(row, json_integer(m->confusion[(int64_t)k * c + j]));
  }
  for (int k = 0; ok && k < c; k++) {
    json_t *cls = json_object();
    ok = !json_object_set_new(per, nm.v[k], cls);
    ok = ok && !json_object_set_new(cls, "precision", real_or_null(m->precision[k]));
    ok = ok && !json_object_set_new(cls, "recall", real_or_null(m->recall[k]));
    ok = ok && !json_object_set_new(cls, "f1", real_or_null(m->f1[k]));
    ok = ok && !json_object_set_new(cls, "support", json_integer(m->support[k]));
  }
  ok = ok && !json_object_set(o, "confusion", conf) && !json_object_set(o, "per_class", per);
  /* 15 significant digits: 17/20 prints as 0.85, and no double loses more than rounding. */
  char *text = ok ? json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) : NULL;
  json_decref(conf);
  json_decref(per);
  json_decref(o);
  names_free(&nm);
  if (!text)
    mf_set_error(MF_ENOMEM,
                 "metrics: could not write JSON (out of memory, or a class name that is not "
                 "UTF-8)");
  return text;
}

/* ---- paired comparisons ---------------------------------------------------------------- */

static mf_status check_paired(const char *who, const int32_t *a, const int32_t *b,
                              const int32_t *labels, int64_t n) {
  if (!a || !b || !labels)
    return mf_set_error(MF_EINVAL, "%s: both models' predictions and the labels are required", who);
  if (n < 1) return mf_set_error(MF_EINVAL, "%s: no rows to compare (n = %lld)", who, (long long)n);
  return MF_OK;
}

mf_status mf_mcnemar_test(const int32_t *pred_a, const int32_t *pred_b, const int32_t *labels,
                          int64_t n, mf_mcnemar *out) {
  if (!out) return mf_set_error(MF_EINVAL, "mf_mcnemar_test: no output given");
  memset(out, 0, sizeof *out);
  mf_status st = check_paired("McNemar's test", pred_a, pred_b, labels, n);
  if (st != MF_OK) return st;
  int64_t b = 0, c = 0;
  for (int64_t i = 0; i < n; i++) {
    int ra = pred_a[i] == labels[i], rb = pred_b[i] == labels[i];
    b += ra && !rb;
    c += !ra && rb;
  }
  out->b = b, out->c = c;
  int64_t nd = b + c;
  if (nd == 0) {
    /* The models never disagree: no evidence of a difference. */
    out->statistic = 0, out->p_value = 1, out->exact = 1;
    return MF_OK;
  }
  double d = fabs((double)(b - c)) - 1.0;
  out->statistic = d * d / (double)nd;
  if (nd < 25) {
    /* Two-sided binomial test of min(b, c) under Binomial(b + c, 1/2); the binomial
     * coefficients are exact integers in double for n < 25. */
    int64_t k = b < c ? b : c;
    double coef = 1, tail = 0;
    for (int64_t i = 0; i <= k; i++) {
      tail += coef;
      coef = coef * (double)(nd - i) / (double)(i + 1);
    }
    double p = 2.0 * tail / ldexp(1.0, (int)nd);
    out->p_value = p < 1 ? p : 1;
    out->exact = 1;
  } else {
    /* Chi-square with one degree of freedom: P(X > s) = erfc(sqrt(s / 2)). */
    out->p_value = erfc(sqrt(out->statistic / 2.0));
    out->exact = 0;
  }
  return MF_OK;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* numpy.percentile's default (linear interpolation between order statistics). */
static double percentile(const double *sorted, int n, double q) {
  double pos = q * (double)(n - 1);
  int lo = (int)floor(pos);
  if (lo >= n - 1) return sorted[n - 1];
  double frac = pos - lo;
  return sorted[lo] + (sorted[lo + 1] - sorted[lo]) * frac;
}

mf_status mf_bootstrap_accuracy_diff(const int32_t *pred_a, const int32_t *pred_b,
                                     const int32_t *labels, int64_t n, int resamples, double alpha,
                                     mf_rng *rng, mf_bootstrap *out) {
  if (!out) return mf_set_error(MF_EINVAL, "mf_bootstrap_accuracy_diff: no output given");
  memset(out, 0, sizeof *out);
  mf_status st = check_paired("bootstrap", pred_a, pred_b, labels, n);
  if (st != MF_OK) return st;
  if (!rng) return mf_set_error(MF_EINVAL, "bootstrap: a random stream is required");
  if (n > (int64_t)UINT32_MAX)
    return mf_set_error(MF_EINVAL, "bootstrap: %lld rows is more than the %u supported",
                        (long long)n, UINT32_MAX);
  if (resamples < 1)
    return mf_set_error(MF_EINVAL, "bootstrap: resamples = %d must be >= 1 (1000 or more is usual)",
                        resamples);
  if (!(alpha > 0 && alpha < 1))
    return mf_set_error(MF_EINVAL,
                        "bootstrap: alpha = %g must be in (0, 1) (0.05: a 95%% interval)", alpha);
  int8_t *d = malloc((size_t)n);
  double *diffs = malloc((size_t)resamples * sizeof *diffs);
  if (!d || !diffs) {
    free(d), free(diffs);
    return mf_set_error(MF_ENOMEM, "bootstrap: out of memory for %lld rows", (long long)n);
  }
  int64_t total = 0;
  for (int64_t i = 0; i < n; i++) {
    d[i] = (int8_t)((pred_a[i] == labels[i]) - (pred_b[i] == labels[i]));
    total += d[i];
  }
  /* Resample r draws from its own sub-stream of one key taken from rng, so the resamples run
   * in parallel and still give the same numbers for any thread count. */
  uint64_t k = mf_rng_u64(rng);
  const mf_rng base = {{(uint32_t)k, (uint32_t)(k >> 32)}, 0, {0, 0, 0, 0}, 0};
  const uint32_t nn = (uint32_t)n;
#pragma omp parallel for schedule(static) if ((int64_t)resamples * n > 65536)
  for (int r = 0; r < resamples; r++) {
    mf_rng s = mf_rng_substream(&base, (uint64_t)r);
    int64_t sum = 0;
    for (int64_t i = 0; i < n; i++) sum += d[mf_rng_below(&s, nn)];
    diffs[r] = (double)sum / (double)n;
  }
  qsort(diffs, (size_t)resamples, sizeof *diffs, cmp_double);
  out->diff = (double)total / (double)n;
  out->lo = percentile(diffs, resamples, alpha / 2);
  out->hi = percentile(diffs, resamples, 1 - alpha / 2);
  out->alpha = alpha;
  out->resamples = resamples;
  free(d), free(diffs);
  return MF_OK;
}
