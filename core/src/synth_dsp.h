/* synth_dsp.h — the DSP pieces the demo-corpus generator (synth.c) builds its instruments
 * from: oscillators, envelopes, filters, drum and instrument voices, effects. Not installed.
 *
 * A voice adds one note into a track-long buffer out[0 .. n) starting at sample `pos`; pos
 * may be negative (a note struck before the excerpt starts still rings into it) and the
 * note may run past n: only the part inside the buffer is written. Voices keep all their
 * state on the stack except the audio-rate noise generator and the Karplus-Strong delay
 * line, which live in the track's syn_ctx, so rendering one track is sequential and
 * deterministic, and tracks render independently of each other on any number of threads.
 */
#ifndef MF_SYNTH_DSP_H
#define MF_SYNTH_DSP_H

#include <math.h>
#include <stdint.h>

#define SYN_PI 3.14159265358979f

typedef struct syn_ctx {
  float rate;
  int64_t n;      /* length of the buffers voices write into */
  uint32_t noise; /* xorshift32 state, never 0 */
  float *ks;      /* Karplus-Strong delay line of ks_cap floats (a power of two) */
  int ks_cap;
} syn_ctx;

/* ---- primitives ------------------------------------------------------------------------ */

/* White noise in [-1, 1): xorshift32, cheap enough to run per sample per voice. */
static inline float syn_noise(syn_ctx *c) {
  uint32_t x = c->noise;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  c->noise = x;
  return (float)(int32_t)x * (1.0f / 2147483648.0f);
}

static inline uint32_t syn_u32(syn_ctx *c) {
  (void)syn_noise(c);
  return c->noise;
}

/* Wraps a phase (in turns, |t| < 2^31) to [0, 1) without calling floorf, which is a libm
 * call on baseline x86-64. */
static inline float syn_wrap(float t) {
  float x = t - (float)(int32_t)t;
  return x < 0.0f ? x + 1.0f : x;
}

/* sin(2 pi ph) for ph in [0, 1): a parabola refined once (error < 0.1%, harmonics below
 * -60 dB), several times cheaper than sinf and branch-free. */
static inline float syn_sin(float ph) {
  float x = ph < 0.5f ? ph : ph - 1.0f; /* [-0.5, 0.5) */
  float y = 8.0f * x - 16.0f * x * fabsf(x);
  return 0.225f * (y * fabsf(y) - y) + y;
}

/* PolyBLEP residual: smooths the step of a naive saw/square over one sample each side of
 * the discontinuity, which removes most of the aliasing at the cost of a few flops. */
static inline float syn_blep(float t, float dt, float inv_dt) {
  if (t < dt) {
    t *= inv_dt;
    return t + t - t * t - 1.0f;
  }
  if (t > 1.0f - dt) {
    t = (t - 1.0f) * inv_dt;
    return t * t + t + t + 1.0f;
  }
  return 0.0f;
}

/* Saw (square = 0) to square (square = 1) blend of phase t, increment dt. */
static inline float syn_osc(float t, float dt, float inv_dt, float square) {
  float saw = 2.0f * t - 1.0f - syn_blep(t, dt, inv_dt);
  if (square == 0.0f) return saw;
  float t2 = t + 0.5f;
  if (t2 >= 1.0f) t2 -= 1.0f;
  float sq = (t < 0.5f ? 1.0f : -1.0f) + syn_blep(t, dt, inv_dt) - syn_blep(t2, dt, inv_dt);
  return saw + square * (sq - saw);
}

/* Soft saturation: tanh-like rational curve, clamped to [-1, 1]. */
static inline float syn_softclip(float x) {
  if (x > 3.0f) return 1.0f;
  if (x < -3.0f) return -1.0f;
  return x * (27.0f + x * x) / (27.0f + 9.0f * x * x);
}

/* Coefficient of a one-pole smoother reaching 1 - 1/e after tau seconds. */
static inline float syn_decay_coef(float tau, float rate) { return expf(-1.0f / (tau * rate)); }

/* One-pole low-pass coefficient for cutoff fc. */
static inline float syn_onepole_coef(float fc, float rate) {
  return 1.0f - expf(-2.0f * SYN_PI * fc / rate);
}

/* State-variable filter (Zavalishin's trapezoidal form): stays stable and in tune when the
 * cutoff moves, which filter envelopes need. */
typedef struct syn_svf {
  float a1, a2, a3, k, ic1, ic2;
} syn_svf;

static inline void syn_svf_set(syn_svf *f, float fc, float q, float rate) {
  float lo = 10.0f, hi = 0.45f * rate;
  fc = fc < lo ? lo : fc > hi ? hi : fc;
  float g = tanf(SYN_PI * fc / rate);
  f->k = 1.0f / q;
  f->a1 = 1.0f / (1.0f + g * (g + f->k));
  f->a2 = g * f->a1;
  f->a3 = g * f->a2;
}

/* One sample in; low-pass out, band-pass in *bp (high-pass = v0 - k bp - lp). */
static inline float syn_svf_tick(syn_svf *f, float v0, float *bp) {
  float v3 = v0 - f->ic2;
  float v1 = f->a1 * f->ic1 + f->a2 * v3;
  float v2 = f->ic2 + f->a2 * f->ic1 + f->a3 * v3;
  f->ic1 = 2.0f * v1 - f->ic1;
  f->ic2 = 2.0f * v2 - f->ic2;
  *bp = v1;
  return v2;
}

/* ADSR: linear attack, exponential decay to the sustain level while the gate is held,
 * exponential release after it. Times in seconds. */
typedef struct syn_adsr {
  float a, d, s, r;
} syn_adsr;

typedef struct syn_env {
  int64_t i, attack, gate;
  float level, inv_attack, sustain, dcoef, rcoef, dec; /* dec: level above sustain */
} syn_env;

static inline void syn_env_init(syn_env *e, const syn_adsr *p, float gate_s, float rate) {
  e->i = 0;
  e->attack = (int64_t)(p->a * rate) + 1;
  e->gate = (int64_t)(gate_s * rate);
  if (e->gate < 1) e->gate = 1;
  e->inv_attack = 1.0f / (float)e->attack;
  e->sustain = p->s;
  e->dcoef = syn_decay_coef(p->d > 1e-4f ? p->d : 1e-4f, rate);
  e->rcoef = syn_decay_coef(p->r > 1e-4f ? p->r : 1e-4f, rate);
  e->dec = 1.0f - p->s;
  e->level = 0.0f;
}

static inline float syn_env_next(syn_env *e) {
  int64_t i = e->i++;
  if (i < e->gate) {
    if (i < e->attack) {
      e->level = (float)i * e->inv_attack;
    } else {
      e->level = e->sustain + e->dec;
      e->dec *= e->dcoef;
    }
  } else {
    e->level *= e->rcoef;
  }
  return e->level;
}

/* Samples an ADSR note sounds for (gate + release to -40 dB, under the rest of the mix). */
static inline int64_t syn_env_length(const syn_adsr *p, float gate_s, float rate) {
  return (int64_t)((gate_s + 4.6f * p->r) * rate) + 1;
}

/* ---- voices ----------------------------------------------------------------------------- */

/* Bass drum: a sine swept from f_hi down to f_lo (time constant pitch_tau), exponential
 * amplitude decay, plus a short noise click. Also timpani and toms with a slower sweep. */
void mf__syn_kick(syn_ctx *c, float *out, int64_t pos, float amp, float f_hi, float f_lo,
                  float pitch_tau, float decay_tau, float click);

/* Snare / clap: a pitched body (tone_hz, weight tone) plus high-passed noise around
 * bright_hz decaying with decay_tau; clap = 1 turns the attack into three quick bursts. */
void mf__syn_snare(syn_ctx *c, float *out, int64_t pos, float amp, float tone_hz, float tone,
                   float decay_tau, float bright_hz, int clap);

/* Hi-hats and cymbals: six inharmonic square waves (the classic analogue recipe) mixed with
 * noise, high-passed at hp_hz; bell > 0 adds the pitched ping of a ride's bell. */
void mf__syn_metal(syn_ctx *c, float *out, int64_t pos, float amp, float decay_tau, float hp_hz,
                   float pitch, float noise, float bell);

/* Brush swish: band-passed noise around center_hz with a soft attack. */
void mf__syn_brush(syn_ctx *c, float *out, int64_t pos, float amp, float attack_s, float decay_tau,
                   float center_hz);

/* Karplus-Strong plucked string: a noise burst (darkened by 1 - bright) circulating in a
 * delay line tuned to freq, decaying with time constant decay_tau, damped after dur. */
void mf__syn_pluck(syn_ctx *c, float *out, int64_t pos, float amp, float freq, float dur,
                   float bright, float decay_tau);

/* Two-operator FM (electric piano at ratio 1, bells at non-integer ratios): the modulation
 * index starts at `index` and decays with index_tau, the amplitude with amp_tau; tine adds
 * a short high partial at 7x for the metallic attack of a tine piano. */
void mf__syn_fm(syn_ctx *c, float *out, int64_t pos, float amp, float freq, float dur, float ratio,
                float index, float index_tau, float amp_tau, float tine);

/* Piano-like tone: up to 12 partials with slight inharmonicity (stiff strings), higher ones
 * decaying faster, plus a hammer thump; bright (0..1) tilts the partial amplitudes. */
void mf__syn_piano(syn_ctx *c, float *out, int64_t pos, float amp, float freq, float dur,
                   float bright);

/* Subtractive voice: detuned saw/square oscillators through a resonant low-pass with its
 * own envelope, ADSR amplitude, optional vibrato. Pads, strings, basses, guitars, leads. */
typedef struct syn_patch {
  int osc;              /* 1 .. 4 oscillators */
  float detune;         /* cents between the outermost oscillators */
  float square;         /* 0 saw .. 1 square */
  float sub;            /* level of a sine an octave below */
  syn_adsr env;         /* amplitude */
  float cutoff, q;      /* low-pass at rest */
  float fenv, fenv_tau; /* cutoff added at the note's start, decaying with fenv_tau */
  float vib_rate, vib_cents;
} syn_patch;

void mf__syn_voice(syn_ctx *c, float *out, int64_t pos, float amp, float freq, float dur,
                   const syn_patch *p);
/* Several notes (up to 32 oscillators in all) through one filter and envelope: a chord
 * played as one, the same as separate voices but a fraction of the filter work. */
void mf__syn_chord(syn_ctx *c, float *out, int64_t pos, float amp, const float *freq, int n_freq,
                   float dur, const syn_patch *p);

/* ---- effects ----------------------------------------------------------------------------- */

/* Schroeder/Moorer reverb (four damped combs into two allpasses, Freeverb's tuning scaled to
 * the rate and by `size`): reads in[0 .. n), adds gain * wet into out. The wet signal has
 * about the input's power at gain 1. Returns 0, or -1 when out of memory. */
int mf__syn_reverb(const float *in, float *out, int64_t n, float rate, float size, float feedback,
                   float damp, float gain);

/* One-pole low-pass / high-pass in place. */
void mf__syn_lowpass(float *x, int64_t n, float fc, float rate);
void mf__syn_highpass(float *x, int64_t n, float fc, float rate);

/* Sampler grit: holds every `hold`-th sample and quantises to `bits` bits relative to the
 * peak `full` (an old 12-bit sampler). */
void mf__syn_crush(float *x, int64_t n, int hold, int bits, float full);

/* Vinyl surface: low-passed hiss plus clicks at about clicks_per_s, added into out. */
void mf__syn_vinyl(syn_ctx *c, float *out, int64_t n, float hiss, float clicks_per_s, float click);

#endif
