/* values.c — parameter values of a component, validated against its schema.
 *
 * Every value a component sees passed through here: defaults parsed from the schema's text,
 * then overrides from the command line (text) or Lua (typed). Unknown names, wrong types
 * and out-of-range values are errors naming the component, the parameter and what is
 * accepted, with a "did you mean" hint for near-miss names.
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melforge/component.h"
#include "melforge/error.h"
#include "textparse.h"

typedef struct value {
  int64_t i;
  double f;
  int b;
  char *s;
  int n;          /* list length */
  int64_t *il;
  double *fl;
} value;

struct mf_values {
  char *what;      /* "model 'cnn'" for messages */
  const mf_param_spec *specs;
  int n;
  value *v;
  unsigned char *explicit_set;
};

const char *mf_param_type_name(mf_param_type t) {
  switch (t) {
    case MF_PT_INT: return "int";
    case MF_PT_FLOAT: return "float";
    case MF_PT_BOOL: return "bool";
    case MF_PT_STRING: return "string";
    case MF_PT_INT_LIST: return "int list";
    case MF_PT_FLOAT_LIST: return "float list";
  }
  return "?";
}

/* ---- did you mean ---------------------------------------------------------------------- */

/* Optimal string alignment distance (Damerau-Levenshtein with adjacent transpositions). */
static int edit_distance(const char *a, const char *b) {
  int la = (int)strlen(a), lb = (int)strlen(b);
  if (la > 63 || lb > 63) return 99;
  int d[64][64];
  for (int i = 0; i <= la; i++) d[i][0] = i;
  for (int j = 0; j <= lb; j++) d[0][j] = j;
  for (int i = 1; i <= la; i++)
    for (int j = 1; j <= lb; j++) {
      int cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
      int m = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < m) m = d[i][j - 1] + 1;
      if (d[i - 1][j - 1] + cost < m) m = d[i - 1][j - 1] + cost;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < m)
        m = d[i - 2][j - 2] + 1;
      d[i][j] = m;
    }
  return d[la][lb];
}

const char *mf_closest_name(const char *name, const char *const *candidates, int n) {
  const char *best = NULL;
  int best_d = 1 << 30;
  int len = (int)strlen(name);
  for (int i = 0; i < n; i++) {
    int d = edit_distance(name, candidates[i]);
    /* A prefix or suffix match ("drop" for "dropout") counts as close too. */
    if (len >= 3 && (strncmp(candidates[i], name, (size_t)len) == 0 || strstr(candidates[i], name)))
      d = d < 2 ? d : 2;
    if (d < best_d) best_d = d, best = candidates[i];
  }
  int limit = len <= 3 ? 1 : len <= 6 ? 2 : 3;
  return best_d <= limit ? best : NULL;
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static void clear_value(value *v) {
  free(v->s);
  free(v->il);
  free(v->fl);
  memset(v, 0, sizeof *v);
}

static int find(const mf_values *vs, const char *name) {
  for (int i = 0; i < vs->n; i++)
    if (strcmp(vs->specs[i].name, name) == 0) return i;
  return -1;
}

static mf_status unknown(const mf_values *vs, const char *name) {
  const char *names[256] = {0};
  int n = vs->n < 256 ? vs->n : 256;
  char list[1024] = "";
  size_t k = 0;
  for (int i = 0; i < n; i++) {
    names[i] = vs->specs[i].name;
    k += (size_t)snprintf(list + k, k < sizeof list ? sizeof list - k : 0, "%s%s", i ? ", " : "",
                          names[i]);
  }
  const char *hint = mf_closest_name(name, names, n);
  if (hint)
    return mf_set_error(MF_EINVAL, "%s has no parameter '%s'; did you mean '%s'? (parameters: %s)",
                        vs->what, name, hint, n ? list : "none");
  return mf_set_error(MF_EINVAL, "%s has no parameter '%s' (parameters: %s)", vs->what, name,
                      n ? list : "none");
}

static int has_range(const mf_param_spec *s) { return s->min <= s->max; }

static int is_int_type(mf_param_type t) { return t == MF_PT_INT || t == MF_PT_INT_LIST; }

void mf_param_describe(const mf_param_spec *s, char *buf, size_t size) {
  int list = s->type == MF_PT_INT_LIST || s->type == MF_PT_FLOAT_LIST;
  const char *elem = is_int_type(s->type) ? "int" : "float";
  int k;
  if (s->type == MF_PT_STRING && s->choices)
    k = snprintf(buf, size, "one of %s", s->choices);
  else if (list)
    k = snprintf(buf, size, "a list of %ss%s", elem, has_range(s) ? ", each" : "");
  else
    k = snprintf(buf, size, "%s %s", is_int_type(s->type) ? "an" : "a", mf_param_type_name(s->type));
  if (k < 0 || (size_t)k >= size || !has_range(s) || s->type == MF_PT_BOOL || s->type == MF_PT_STRING)
    return;
  if (is_int_type(s->type))
    snprintf(buf + k, size - (size_t)k, " in [%lld, %lld]", (long long)s->min, (long long)s->max);
  else
    snprintf(buf + k, size - (size_t)k, " in [%g, %g]", s->min, s->max);
}

static mf_status range_error(const mf_values *vs, const mf_param_spec *s, const char *got) {
  char want[256];
  mf_param_describe(s, want, sizeof want);
  return mf_set_error(MF_EINVAL, "%s: parameter '%s' expects %s, got %s", vs->what, s->name, want,
                      got);
}

static int in_range(const mf_param_spec *s, double x) {
  return !has_range(s) || (x >= s->min && x <= s->max);
}

static int choice_ok(const mf_param_spec *s, const char *str) {
  if (!s->choices) return 1;
  size_t len = strlen(str);
  for (const char *c = s->choices; *c;) {
    const char *bar = strchr(c, '|');
    size_t l = bar ? (size_t)(bar - c) : strlen(c);
    if (l == len && strncmp(c, str, l) == 0) return 1;
    if (!bar) break;
    c = bar + 1;
  }
  return 0;
}

/* ---- text parsing (defaults, command line) ------------------------------------------------ */

#define MAX_LIST 64

static mf_status set_from_text(mf_values *vs, int i, const char *text) {
  const mf_param_spec *s = &vs->specs[i];
  value nv = {0};
  char got[160];
  snprintf(got, sizeof got, "'%s'", text);
  switch (s->type) {
    case MF_PT_INT:
      if (!mf__text_int(text, &nv.i) || !in_range(s, (double)nv.i)) return range_error(vs, s, got);
      break;
    case MF_PT_FLOAT:
      if (!mf__text_float(text, &nv.f) || !in_range(s, nv.f)) return range_error(vs, s, got);
      break;
    case MF_PT_BOOL:
      if (!mf__text_bool(text, &nv.b))
        return mf_set_error(MF_EINVAL, "%s: parameter '%s' expects a bool (true/false), got %s",
                            vs->what, s->name, got);
      break;
    case MF_PT_STRING:
      if (!choice_ok(s, text))
        return mf_set_error(MF_EINVAL, "%s: parameter '%s' must be one of %s, got %s", vs->what,
                            s->name, s->choices, got);
      nv.s = strdup(text);
      break;
    case MF_PT_INT_LIST:
    case MF_PT_FLOAT_LIST: {
      char items[MAX_LIST][MF_TEXT_ITEM];
      int n = mf__text_list(text, items, MAX_LIST);
      if (n < 0) return range_error(vs, s, got);
      nv.n = n;
      if (s->type == MF_PT_INT_LIST) {
        nv.il = calloc((size_t)(n ? n : 1), sizeof(int64_t));
        for (int k = 0; k < n; k++)
          if (!mf__text_int(items[k], &nv.il[k]) || !in_range(s, (double)nv.il[k])) {
            free(nv.il);
            return range_error(vs, s, got);
          }
      } else {
        nv.fl = calloc((size_t)(n ? n : 1), sizeof(double));
        for (int k = 0; k < n; k++)
          if (!mf__text_float(items[k], &nv.fl[k]) || !in_range(s, nv.fl[k])) {
            free(nv.fl);
            return range_error(vs, s, got);
          }
      }
      break;
    }
  }
  clear_value(&vs->v[i]);
  vs->v[i] = nv;
  return MF_OK;
}

mf_status mf_schema_check(const char *what, const mf_param_spec *specs) {
  mf_values *vs = NULL;
  mf_status st = mf_values_new(what, specs, &vs);
  mf_values_free(vs);
  return st;
}

mf_status mf_values_new(const char *what, const mf_param_spec *specs, mf_values **out) {
  *out = NULL;
  mf_values *vs = calloc(1, sizeof *vs);
  if (!vs) return mf_set_error(MF_ENOMEM, "out of memory");
  vs->what = strdup(what);
  vs->specs = specs;
  while (specs && specs[vs->n].name) vs->n++;
  vs->v = calloc((size_t)(vs->n ? vs->n : 1), sizeof(value));
  vs->explicit_set = calloc((size_t)(vs->n ? vs->n : 1), 1);
  for (int i = 0; i < vs->n; i++) {
    const mf_param_spec *s = &specs[i];
    for (int j = 0; j < i; j++)
      if (strcmp(specs[j].name, s->name) == 0) {
        mf_values_free(vs);
        return mf_set_error(MF_EINVAL, "%s declares parameter '%s' twice", what, s->name);
      }
    if (s->type < MF_PT_INT || s->type > MF_PT_FLOAT_LIST) {
      mf_values_free(vs);
      return mf_set_error(MF_EINVAL, "%s: parameter '%s' has an unknown type %d", what, s->name,
                          (int)s->type);
    }
    if (!s->def) {
      mf_values_free(vs);
      return mf_set_error(MF_EINVAL, "%s: parameter '%s' has no default", what, s->name);
    }
    if (set_from_text(vs, i, s->def) != MF_OK) {
      char want[256];
      mf_param_describe(s, want, sizeof want);
      mf_set_error(MF_EINVAL, "%s: the default '%s' of parameter '%s' is invalid: it expects %s",
                   what, s->def, s->name, want);
      mf_values_free(vs);
      return MF_EINVAL;
    }
  }
  *out = vs;
  return MF_OK;
}

void mf_values_free(mf_values *vs) {
  if (!vs) return;
  for (int i = 0; i < vs->n; i++) clear_value(&vs->v[i]);
  free(vs->v);
  free(vs->explicit_set);
  free(vs->what);
  free(vs);
}

mf_values *mf_values_clone(const mf_values *vs) {
  mf_values *c = NULL;
  if (mf_values_new(vs->what, vs->specs, &c) != MF_OK) return NULL;
  for (int i = 0; i < vs->n; i++) {
    value *d = &c->v[i];
    const value *s = &vs->v[i];
    clear_value(d);
    *d = *s;
    d->s = s->s ? strdup(s->s) : NULL;
    if (s->il) {
      d->il = malloc(sizeof(int64_t) * (size_t)(s->n ? s->n : 1));
      memcpy(d->il, s->il, sizeof(int64_t) * (size_t)s->n);
    }
    if (s->fl) {
      d->fl = malloc(sizeof(double) * (size_t)(s->n ? s->n : 1));
      memcpy(d->fl, s->fl, sizeof(double) * (size_t)s->n);
    }
    c->explicit_set[i] = vs->explicit_set[i];
  }
  return c;
}

int mf_values_count(const mf_values *vs) { return vs->n; }
const mf_param_spec *mf_values_spec_at(const mf_values *vs, int i) { return &vs->specs[i]; }
const char *mf_values_what(const mf_values *vs) { return vs->what; }
int mf_values_is_set(const mf_values *vs, const char *name) {
  int i = find(vs, name);
  return i >= 0 && vs->explicit_set[i];
}

/* ---- setters ------------------------------------------------------------------------------- */

mf_status mf_values_set_text(mf_values *vs, const char *name, const char *text) {
  int i = find(vs, name);
  if (i < 0) return unknown(vs, name);
  mf_status st = set_from_text(vs, i, text);
  if (st == MF_OK) vs->explicit_set[i] = 1;
  return st;
}

mf_status mf_values_set_assignment(mf_values *vs, const char *assignment) {
  const char *eq = strchr(assignment, '=');
  if (!eq || eq == assignment)
    return mf_set_error(MF_EINVAL, "%s: expected key=value, got '%s'", vs->what, assignment);
  char key[128];
  size_t kl = (size_t)(eq - assignment);
  if (kl >= sizeof key) kl = sizeof key - 1;
  memcpy(key, assignment, kl);
  key[kl] = '\0';
  return mf_values_set_text(vs, key, eq + 1);
}

static mf_status typed_guard(mf_values *vs, const char *name, int *idx) {
  *idx = find(vs, name);
  if (*idx < 0) return unknown(vs, name);
  return MF_OK;
}

static mf_status type_error(const mf_values *vs, const mf_param_spec *s, const char *got_type) {
  return range_error(vs, s, got_type);
}

mf_status mf_values_set_int(mf_values *vs, const char *name, int64_t x) {
  int i;
  if (typed_guard(vs, name, &i)) return MF_EINVAL;
  const mf_param_spec *s = &vs->specs[i];
  char got[64];
  snprintf(got, sizeof got, "%lld", (long long)x);
  if (s->type == MF_PT_FLOAT) return mf_values_set_float(vs, name, (double)x);
  if (s->type == MF_PT_INT_LIST || s->type == MF_PT_FLOAT_LIST) return mf_values_set_text(vs, name, got);
  if (s->type != MF_PT_INT) return type_error(vs, s, "an integer");
  if (!in_range(s, (double)x)) return range_error(vs, s, got);
  clear_value(&vs->v[i]);
  vs->v[i].i = x;
  vs->explicit_set[i] = 1;
  return MF_OK;
}

mf_status mf_values_set_float(mf_values *vs, const char *name, double x) {
  int i;
  if (typed_guard(vs, name, &i)) return MF_EINVAL;
  const mf_param_spec *s = &vs->specs[i];
  char got[64];
  snprintf(got, sizeof got, "%.17g", x);
  if (s->type == MF_PT_INT) {
    if (x != floor(x) || fabs(x) > 9e15) return type_error(vs, s, got);
    return mf_values_set_int(vs, name, (int64_t)x);
  }
  if (s->type == MF_PT_FLOAT_LIST || s->type == MF_PT_INT_LIST) return mf_values_set_text(vs, name, got);
  if (s->type != MF_PT_FLOAT) return type_error(vs, s, "a number");
  if (!isfinite(x) || !in_range(s, x)) return range_error(vs, s, got);
  clear_value(&vs->v[i]);
  vs->v[i].f = x;
  vs->explicit_set[i] = 1;
  return MF_OK;
}

mf_status mf_values_set_bool(mf_values *vs, const char *name, int x) {
  int i;
  if (typed_guard(vs, name, &i)) return MF_EINVAL;
  const mf_param_spec *s = &vs->specs[i];
  if (s->type != MF_PT_BOOL) return type_error(vs, s, x ? "true" : "false");
  clear_value(&vs->v[i]);
  vs->v[i].b = x != 0;
  vs->explicit_set[i] = 1;
  return MF_OK;
}

mf_status mf_values_set_string(mf_values *vs, const char *name, const char *x) {
  int i;
  if (typed_guard(vs, name, &i)) return MF_EINVAL;
  const mf_param_spec *s = &vs->specs[i];
  if (s->type != MF_PT_STRING) {
    char got[160];
    snprintf(got, sizeof got, "the string \"%s\"", x);
    return type_error(vs, s, got);
  }
  return mf_values_set_text(vs, name, x);
}

mf_status mf_values_set_ints(mf_values *vs, const char *name, const int64_t *x, int n) {
  int i;
  if (typed_guard(vs, name, &i)) return MF_EINVAL;
  const mf_param_spec *s = &vs->specs[i];
  if (s->type == MF_PT_FLOAT_LIST) {
    double tmp[MAX_LIST];
    if (n > MAX_LIST) return range_error(vs, s, "a list longer than 64");
    for (int k = 0; k < n; k++) tmp[k] = (double)x[k];
    return mf_values_set_floats(vs, name, tmp, n);
  }
  if (s->type != MF_PT_INT_LIST) return type_error(vs, s, "a list of integers");
  if (n > MAX_LIST) return range_error(vs, s, "a list longer than 64");
  for (int k = 0; k < n; k++)
    if (!in_range(s, (double)x[k])) {
      char got[64];
      snprintf(got, sizeof got, "%lld at position %d", (long long)x[k], k + 1);
      return range_error(vs, s, got);
    }
  value nv = {0};
  nv.n = n;
  nv.il = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
  memcpy(nv.il, x, sizeof(int64_t) * (size_t)n);
  clear_value(&vs->v[i]);
  vs->v[i] = nv;
  vs->explicit_set[i] = 1;
  return MF_OK;
}

mf_status mf_values_set_floats(mf_values *vs, const char *name, const double *x, int n) {
  int i;
  if (typed_guard(vs, name, &i)) return MF_EINVAL;
  const mf_param_spec *s = &vs->specs[i];
  if (s->type == MF_PT_INT_LIST) {
    int64_t tmp[MAX_LIST];
    if (n > MAX_LIST) return range_error(vs, s, "a list longer than 64");
    for (int k = 0; k < n; k++) {
      if (x[k] != floor(x[k])) return type_error(vs, s, "a list with a non-integer element");
      tmp[k] = (int64_t)x[k];
    }
    return mf_values_set_ints(vs, name, tmp, n);
  }
  if (s->type != MF_PT_FLOAT_LIST) return type_error(vs, s, "a list of numbers");
  if (n > MAX_LIST) return range_error(vs, s, "a list longer than 64");
  for (int k = 0; k < n; k++)
    if (!isfinite(x[k]) || !in_range(s, x[k])) {
      char got[64];
      snprintf(got, sizeof got, "%g at position %d", x[k], k + 1);
      return range_error(vs, s, got);
    }
  value nv = {0};
  nv.n = n;
  nv.fl = malloc(sizeof(double) * (size_t)(n ? n : 1));
  memcpy(nv.fl, x, sizeof(double) * (size_t)n);
  clear_value(&vs->v[i]);
  vs->v[i] = nv;
  vs->explicit_set[i] = 1;
  return MF_OK;
}

/* ---- getters (for components; a wrong name or type is a plugin bug) ------------------------ */

static const value *get(const mf_values *vs, const char *name, mf_param_type t) {
  int i = find(vs, name);
  MF_CHECK(i >= 0, "%s reads parameter '%s', which its schema does not declare", vs->what, name);
  MF_CHECK(vs->specs[i].type == t, "%s reads parameter '%s' as %s but declares it %s", vs->what,
           name, mf_param_type_name(t), mf_param_type_name(vs->specs[i].type));
  return &vs->v[i];
}

int64_t mf_values_int(const mf_values *vs, const char *name) { return get(vs, name, MF_PT_INT)->i; }
double mf_values_float(const mf_values *vs, const char *name) { return get(vs, name, MF_PT_FLOAT)->f; }
int mf_values_bool(const mf_values *vs, const char *name) { return get(vs, name, MF_PT_BOOL)->b; }
const char *mf_values_string(const mf_values *vs, const char *name) {
  return get(vs, name, MF_PT_STRING)->s;
}
int mf_values_ints(const mf_values *vs, const char *name, const int64_t **out) {
  const value *v = get(vs, name, MF_PT_INT_LIST);
  *out = v->il;
  return v->n;
}
int mf_values_floats(const mf_values *vs, const char *name, const double **out) {
  const value *v = get(vs, name, MF_PT_FLOAT_LIST);
  *out = v->fl;
  return v->n;
}

/* ---- text and JSON ---------------------------------------------------------------------- */

char *mf_values_format(const mf_values *vs, const char *name, char *buf, size_t size) {
  int i = find(vs, name);
  buf[0] = '\0';
  if (i < 0) return buf;
  const value *v = &vs->v[i];
  size_t k = 0;
  switch (vs->specs[i].type) {
    case MF_PT_INT: snprintf(buf, size, "%lld", (long long)v->i); break;
    case MF_PT_FLOAT: snprintf(buf, size, "%g", v->f); break;
    case MF_PT_BOOL: snprintf(buf, size, "%s", v->b ? "true" : "false"); break;
    case MF_PT_STRING: snprintf(buf, size, "%s", v->s ? v->s : ""); break;
    case MF_PT_INT_LIST:
    case MF_PT_FLOAT_LIST:
      k += (size_t)snprintf(buf + k, size - k, "{");
      for (int j = 0; j < v->n && k < size; j++) {
        if (vs->specs[i].type == MF_PT_INT_LIST)
          k += (size_t)snprintf(buf + k, size - k, j ? ", %lld" : "%lld", (long long)v->il[j]);
        else
          k += (size_t)snprintf(buf + k, size - k, j ? ", %g" : "%g", v->fl[j]);
      }
      if (k < size) snprintf(buf + k, size - k, "}");
      break;
  }
  return buf;
}

char *mf_values_to_json(const mf_values *vs) {
  json_t *o = json_object();
  for (int i = 0; i < vs->n; i++) {
    const value *v = &vs->v[i];
    json_t *j = NULL;
    switch (vs->specs[i].type) {
      case MF_PT_INT: j = json_integer(v->i); break;
      case MF_PT_FLOAT: j = json_real(v->f); break;
      case MF_PT_BOOL: j = json_boolean(v->b); break;
      case MF_PT_STRING: j = json_string(v->s ? v->s : ""); break;
      case MF_PT_INT_LIST:
        j = json_array();
        for (int k = 0; k < v->n; k++) json_array_append_new(j, json_integer(v->il[k]));
        break;
      case MF_PT_FLOAT_LIST:
        j = json_array();
        for (int k = 0; k < v->n; k++) json_array_append_new(j, json_real(v->fl[k]));
        break;
    }
    json_object_set_new(o, vs->specs[i].name, j);
  }
  char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17));
  json_decref(o);
  return s;
}

mf_status mf_values_from_json(mf_values *vs, const char *text) {
  json_error_t err;
  json_t *o = json_loads(text, 0, &err);
  if (!o || !json_is_object(o)) {
    json_decref(o);
    return mf_set_error(MF_EFORMAT, "%s: parameters are not a JSON object (line %d, column %d: %s)",
                        vs->what, err.line, err.column, err.text);
  }
  const char *key;
  json_t *val;
  mf_status st = MF_OK;
  json_object_foreach(o, key, val) {
    if (json_is_integer(val))
      st = mf_values_set_int(vs, key, json_integer_value(val));
    else if (json_is_real(val))
      st = mf_values_set_float(vs, key, json_real_value(val));
    else if (json_is_boolean(val))
      st = mf_values_set_bool(vs, key, json_is_true(val));
    else if (json_is_string(val))
      st = mf_values_set_string(vs, key, json_string_value(val));
    else if (json_is_array(val)) {
      size_t n = json_array_size(val);
      double tmp[MAX_LIST];
      int all_int = 1;
      if (n > MAX_LIST) {
        st = mf_set_error(MF_EINVAL, "%s: parameter '%s' has more than 64 elements", vs->what, key);
        break;
      }
      for (size_t k = 0; k < n; k++) {
        json_t *e = json_array_get(val, k);
        if (!json_is_number(e)) {
          st = mf_set_error(MF_EINVAL, "%s: parameter '%s' has a non-numeric element", vs->what, key);
          break;
        }
        all_int &= json_is_integer(e);
        tmp[k] = json_number_value(e);
      }
      if (st) break;
      st = mf_values_set_floats(vs, key, tmp, (int)n);
      (void)all_int;
    } else {
      st = mf_set_error(MF_EINVAL, "%s: parameter '%s' has an unsupported JSON type", vs->what, key);
    }
    if (st) break;
  }
  json_decref(o);
  return st;
}
