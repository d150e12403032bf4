/* synth_parts.c — what the genre sequencers share: scales and progressions, the master
 * settings every track draws, arrangement breaks, drum one-shots and the keyboard-like
 * instruments that several classes play. */
#include <string.h>

#include "melforge/error.h"
#include "synth_track.h"

const int SYN_MAJOR[7] = {0, 2, 4, 5, 7, 9, 11};
const int SYN_MINOR[7] = {0, 2, 3, 5, 7, 8, 10};
const int SYN_DORIAN[7] = {0, 2, 3, 5, 7, 9, 10};
const int SYN_MIXOLYDIAN[7] = {0, 2, 4, 5, 7, 9, 10};

const int SYN_PROG_MAJOR[4][4] = {{0, 4, 5, 3}, {5, 3, 0, 4}, {0, 3, 4, 3}, {0, 5, 3, 4}};
const int SYN_PROG_MINOR[4][4] = {{0, 5, 2, 6}, {0, 6, 5, 6}, {0, 3, 5, 4}, {0, 3, 0, 4}};
const int SYN_PROG_JAZZ[4][4] = {{1, 4, 0, 0}, {1, 4, 0, 5}, {0, 5, 1, 4}, {2, 5, 1, 4}};
const int SYN_PROG_SLOW[4][4] = {{0, 3, 0, 4}, {0, 5, 3, 4}, {3, 0, 4, 5}, {0, 2, 3, 0}};

/* Recordings differ in their overall tilt, loudness and noise, so the average spectrum alone
 * cannot tell the classes apart: every track draws a mastering EQ, sometimes a loud master
 * (the rule in rock and electronic music, rare in jazz and classical),
 * sometimes a duller mix, often background noise, sometimes the surface of a record (most
 * often in hip-hop, which samples records, but old jazz and piano recordings have it too). */
void mf__syn_master_defaults(track *t, float p_loud, float p_dull, float p_noise, float p_vinyl) {
  t->eq_low_db = uni(t, -8.0f, 6.0f);
  t->eq_high_db = uni(t, -9.0f, 6.0f);
  t->eq_mid_db = uni(t, -6.0f, 6.0f);
  t->eq_mid_hz = 300.0f * powf(10.0f, uni(t, 0.0f, 1.0f));
  t->limit = chance(t, p_loud) ? uni(t, 1.5f, 4.0f) : 0.0f;
  t->tone_hz = chance(t, p_dull) ? uni(t, 3000.0f, 9000.0f) : 0.0f;
  t->snr_db = chance(t, p_noise) ? uni(t, 10.0f, 40.0f) : 0.0f;
  t->noise_hz = uni(t, 800.0f, 9000.0f);
  if (chance(t, p_vinyl)) {
    t->vinyl_hiss = uni(t, 0.002f, 0.015f);
    t->vinyl_clicks = uni(t, 2.0f, 25.0f);
    t->vinyl_click = uni(t, 0.03f, 0.3f);
  }
}

void mf__syn_draw_break(track *t, float p, int min_len, int max_len) {
  t->brk_start = -1000, t->brk_len = 0;
  if (!chance(t, p)) return;
  /* Somewhere in the first 16 bars (about 30 s) whatever the length of the render, so a
   * short render is not all break. */
  t->brk_start = pick(t, 16);
  t->brk_len = min_len + pick(t, max_len - min_len + 1);
}

void mf__syn_swell(track *t, float depth, float period_s, float phase) {
  const float inc = 1.0f / (period_s * t->rate);
  float ph = phase;
  for (int64_t i = 0; i < t->n; i++) {
    t->layer[i] *= 1.0f - depth * 0.5f * (1.0f + syn_sin(ph));
    ph += inc;
    if (ph >= 1.0f) ph -= 1.0f;
  }
}

/* ---- one-shots -------------------------------------------------------------------------- */

float *mf__syn_shot_begin(track *t, float seconds, syn_ctx *sc) {
  const int64_t len = (int64_t)(seconds * t->rate) + 1;
  MF_CHECK(t->aux_used + len <= t->aux_n, "synth: aux arena of %lld samples full (%lld + %lld)",
           (long long)t->aux_n, (long long)t->aux_used, (long long)len);
  float *x = t->aux + t->aux_used;
  t->aux_used += len;
  memset(x, 0, (size_t)len * sizeof *x);
  *sc = t->v;
  sc->n = len;
  return x;
}

shot mf__syn_shot_end(track *t, const syn_ctx *sc, float *x) {
  t->v.noise = sc->noise;
  shot s = {x, sc->n};
  return s;
}

void mf__syn_paste(track *t, shot s, int64_t pos, float gain) {
  if (pos >= t->n || pos + s.len <= 0) return;
  const int64_t i0 = pos < 0 ? -pos : 0, i1 = pos + s.len > t->n ? t->n - pos : s.len;
  float *restrict layer = t->layer;
  const float *restrict src = s.x;
  for (int64_t i = i0; i < i1; i++) layer[pos + i] += gain * src[i];
}

shot mf__syn_kick_shot(track *t, float f_hi, float f_lo, float pitch_tau, float decay_tau,
                       float click) {
  syn_ctx sc;
  float *x = mf__syn_shot_begin(t, 6.9f * decay_tau + 0.01f, &sc);
  mf__syn_kick(&sc, x, 0, 1.0f, f_hi, f_lo, pitch_tau, decay_tau, click);
  return mf__syn_shot_end(t, &sc, x);
}

shot mf__syn_snare_shot(track *t, float tone_hz, float tone, float decay_tau, float bright_hz,
                        int clap) {
  syn_ctx sc;
  float *x = mf__syn_shot_begin(t, 6.9f * (decay_tau > 0.05f ? decay_tau : 0.05f) + 0.05f, &sc);
  mf__syn_snare(&sc, x, 0, 1.0f, tone_hz, tone, decay_tau, bright_hz, clap);
  return mf__syn_shot_end(t, &sc, x);
}

shot mf__syn_metal_shot(track *t, float decay_tau, float hp_hz, float pitch, float noise,
                        float bell) {
  syn_ctx sc;
  float *x = mf__syn_shot_begin(t, 6.0f * decay_tau + 0.01f, &sc);
  mf__syn_metal(&sc, x, 0, 1.0f, decay_tau, hp_hz, pitch, noise, bell);
  return mf__syn_shot_end(t, &sc, x);
}

/* ---- keys ------------------------------------------------------------------------------- */

keys mf__syn_keys(track *t, keys_kind kind) {
  keys k;
  memset(&k, 0, sizeof k);
  k.kind = kind;
  switch (kind) {
    case KEYS_EPIANO: /* two-operator FM at 1:1 with a tine */
      k.index = uni(t, 1.2f, 2.8f), k.index_tau = uni(t, 0.2f, 0.5f), k.tau = uni(t, 0.8f, 1.5f);
      k.tine = uni(t, 0.1f, 0.3f);
      break;
    case KEYS_PIANO:
      k.bright = uni(t, 0.3f, 0.8f);
      break;
    case KEYS_VIBES: /* FM at 1:4, a soft mallet */
      k.index = uni(t, 0.5f, 1.2f), k.index_tau = 0.1f, k.tau = uni(t, 0.8f, 1.6f);
      break;
    case KEYS_ORGAN: { /* square waves, a little Leslie wobble */
      syn_patch p = {.osc = 2,
                     .detune = uni(t, 4, 10),
                     .square = uni(t, 0.6f, 1.0f),
                     .env = {0.01f, 0.1f, 0.9f, 0.08f},
                     .cutoff = uni(t, 2000, 4500),
                     .q = 0.7f,
                     .vib_rate = uni(t, 5.5f, 7.0f),
                     .vib_cents = uni(t, 5, 12)};
      k.patch = p;
      break;
    }
    case KEYS_STRINGS: {
      syn_patch p = {.osc = 2,
                     .detune = uni(t, 10, 20),
                     .env = {uni(t, 0.02f, 0.15f), 0.5f, 0.8f, uni(t, 0.15f, 0.4f)},
                     .cutoff = uni(t, 1500, 3500),
                     .q = 0.8f,
                     .vib_rate = 5.0f,
                     .vib_cents = uni(t, 4, 10)};
      k.patch = p;
      break;
    }
  }
  return k;
}

void mf__syn_keys_play(syn_ctx *c, float *out, const keys *k, int64_t pos, float amp,
                       const float *freq, int n, float dur) {
  switch (k->kind) {
    case KEYS_EPIANO:
      for (int i = 0; i < n; i++)
        mf__syn_fm(c, out, pos, amp, freq[i], dur, 1.0f, k->index, k->index_tau, k->tau, k->tine);
      break;
    case KEYS_PIANO:
      for (int i = 0; i < n; i++) mf__syn_piano(c, out, pos, amp, freq[i], dur, k->bright);
      break;
    case KEYS_VIBES:
      for (int i = 0; i < n; i++)
        mf__syn_fm(c, out, pos, amp, freq[i], dur + 0.5f, 4.0f, k->index, k->index_tau, k->tau,
                   0.0f);
      break;
    case KEYS_ORGAN:
    case KEYS_STRINGS:
      mf__syn_chord(c, out, pos, amp, freq, n, dur, &k->patch);
      break;
  }
}
