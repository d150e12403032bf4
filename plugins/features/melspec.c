/* melspec.c — the `melspec` feature plugin: librosa.feature.melspectrogram followed by
 * librosa.power_to_db, output [n_mels, frames] (time on axis 1, as librosa returns it and as
 * the CNN notebooks feed it, one channel of n_mels x frames).
 *
 * Defaults are librosa's: n_fft 2048, hop_length 512, periodic Hann, center=True with zero
 * padding, power 2, 128 Slaney-normalised Slaney-scale bands from 0 Hz to sr/2, then
 * 10 log10(max(1e-10, S) / 1) clipped at max - 80 dB over the whole output of one call.
 * n_samples = 0 gives one frame (librosa pads an empty signal to one frame of zeros).
 */
#include <stdlib.h>

#include "spectral.h"

static const mf_api *mf;

static const mf_param_spec params[] = {SPECTRAL_PARAMS, {0}};

static void *create(const mf_values *v, double sample_rate) {
  spectral_cfg cfg;
  if (spectral_read_cfg(mf, v, sample_rate, "melspec", &cfg)) return NULL;
  return spectral_new(mf, &cfg);
}

static mf_status layout(void *state, int64_t n_samples, mf_feature_layout *out) {
  const spectral *s = state;
  const int64_t frames = spectral_frames(s, n_samples);
  if (frames <= 0)
    return mf->set_error(MF_EINVAL, "melspec: %lld samples give no frame (n_fft %d)",
                         (long long)n_samples, spectral_config(s)->n_fft);
  out->shape = MF_SHAPE(spectral_config(s)->n_mels, frames);
  out->time_axis = 1;
  out->hop = spectral_config(s)->hop_length;
  return MF_OK;
}

static mf_status compute(void *state, const float *audio, int64_t n_samples, float *out) {
  return spectral_mel(state, audio, n_samples, out);
}

static void destroy(void *state) { spectral_free(state); }

static const mf_feature_vtable vtable = {create, layout, compute, destroy};

static mf_status init(const mf_registrar *reg) {
  mf = reg->api;
  return reg->add_feature(
      reg,
      &(mf_component_desc){"melspec",
                           "log-mel spectrogram [n_mels, frames] (librosa melspectrogram + "
                           "power_to_db)",
                           params},
      &vtable);
}

MF_PLUGIN_ENTRY(init)
