/* gain.c — the `gain` augment plugin: a random loudness change of each sample.
 *
 * On log-mel features (dB) a gain is an additive offset: scaling the audio by g dB multiplies
 * every power by 10^(g / 10), which adds g to every 10 log10 value. Each sample draws g
 * uniformly in [db_min, db_max] dB and gets g added to all its values — in the units the model
 * sees, after scaling, so the offset is g / db_per_unit: db_per_unit is how many dB one unit of
 * the scaled features spans. The default, 80, fits the default pipeline (melspec with top_db
 * 80 under minmax scaling, where the unit range spans about 80 dB); use 1 with scaler "none"
 * (features still in dB) and the training set's dB standard deviation with standard scaling.
 * With per-band scaling each band has its own span, so the offset is uniform only roughly.
 * (On MFCC rows a gain moves only the 0-th coefficient; this plugin is meant for mel rows.)
 *
 * Draws per sample, in sample order: the p coin (only when 0 < p < 1), then the gain.
 */
#include <stdlib.h>

#include "batch.h"

static const mf_api *mf;

typedef struct gain {
  double db_min, db_max, db_per_unit, p;
  scratch offsets; /* per sample, in feature units */
} gain;

static const mf_param_spec params[] = {
    {"db_min", MF_PT_FLOAT, "-6", -120, 120, NULL, "lowest gain in dB"},
    {"db_max", MF_PT_FLOAT, "6", -120, 120, NULL, "highest gain in dB"},
    {"db_per_unit", MF_PT_FLOAT, "80", 1e-3, 1e6, NULL,
     "dB spanned by one unit of the scaled features: ~80 for melspec (top_db 80) with minmax "
     "scaling, 1 with scaler none"},
    AUG_P_PARAM("a sample's gain changes"),
    {0}};

static void *create(const mf_values *v) {
  gain *g = calloc(1, sizeof *g);
  if (!g) return NULL;
  g->db_min = mf->value_float(v, "db_min");
  g->db_max = mf->value_float(v, "db_max");
  g->db_per_unit = mf->value_float(v, "db_per_unit");
  g->p = mf->value_float(v, "p");
  if (g->db_min > g->db_max) {
    mf->set_error(MF_EINVAL, "gain: db_min = %g is above db_max = %g; swap them", g->db_min,
                  g->db_max);
    free(g);
    return NULL;
  }
  return g;
}

static mf_status apply(void *state, mf_tensor *x, mf_tensor *targets, mf_rng *rng) {
  (void)targets;
  gain *g = state;
  const int64_t n = x->shape[0], size = n ? x->numel / n : 0;
  float *off = scratch_get(mf, &g->offsets, sizeof(float) * (size_t)(n ? n : 1), "gain");
  if (!off) return MF_ENOMEM;
  for (int64_t i = 0; i < n; i++) {
    off[i] = 0;
    if (!coin(mf, rng, g->p)) continue;
    const double db = g->db_min + (g->db_max - g->db_min) * mf->rng_uniform(rng);
    off[i] = (float)(db / g->db_per_unit);
  }
  float *data = x->data;
#pragma omp parallel for schedule(static) if (n * size > AUG_PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    const float o = off[i];
    float *v = data + i * size;
    if (o != 0)
      for (int64_t k = 0; k < size; k++) v[k] += o;
  }
  return MF_OK;
}

static void destroy(void *state) {
  gain *g = state;
  scratch_free(&g->offsets);
  free(g);
}

static const mf_augment_vtable vtable = {create, apply, destroy};

static mf_status init(const mf_registrar *reg) {
  mf = reg->api;
  return reg->add_augment(
      reg,
      &(mf_component_desc){"gain",
                           "random gain per sample: an offset of U[db_min, db_max] dB on log-mel "
                           "features",
                           params},
      &vtable);
}

MF_PLUGIN_ENTRY(init)
