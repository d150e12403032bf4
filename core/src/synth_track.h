/* synth_track.h — what the genre sequencers (synth_beats.c, synth_acoustic.c) share with the
 * track renderer
 * (synth.c) and the shared parts (synth_parts.c): one track's random streams, time grid,
 * harmony and mix buses. Not installed.
 *
 * A genre function draws the track's character first (tempo, key, patterns, instrument
 * settings) from t->param, then writes its parts one layer at a time: layer_begin() clears
 * the layer buffer and switches the event draws to a stream of that layer's own, the voices
 * add notes into t->layer, and layer_end() mixes the layer into the dry bus and the reverb
 * send. Because every layer has its own stream, how many notes one part draws never moves
 * the notes of another, and a short render plays the opening bars of the long one (its level
 * and noise, normalised over the whole render, differ).
 */
#ifndef MF_SYNTH_TRACK_H
#define MF_SYNTH_TRACK_H

#include <math.h>
#include <stdint.h>

#include "melforge/rng.h"
#include "synth_dsp.h"

typedef struct track {
  syn_ctx v;
  mf_rng base;  /* the track's root stream; parameters and layers are sub-streams of it */
  mf_rng param; /* draws of the track's character */
  mf_rng ev;    /* draws of the current layer's events */
  mf_rng *r;    /* the stream the helpers below draw from */
  float rate;
  int64_t n;
  float *mix, *send, *layer; /* n floats each */
  float *aux;                /* arena of aux_n floats for parts rendered once and pasted */
  int64_t aux_n, aux_used;

  /* Time: beat b sounds at (60 / bpm) (b - rubato terms) seconds into the piece; the
   * excerpt starts `start` seconds in, so bar lines fall anywhere in the file. */
  double bpm, start;
  int meter;                /* beats per bar */
  double swing, swing_unit; /* swung fraction of a pair of `swing_unit`-beat steps */
  double rubato, rubato_period, rubato_phase; /* rubato: relative beat-length wobble */
  double rubato2, rubato2_period;
  double jitter; /* humanising: std of onset times, seconds */

  /* Harmony: key (pitch class of the tonic) and scale (semitones of the seven degrees). */
  int key;
  const int *scale;

  /* Reverb and master settings the genre chooses. */
  float rev_size, rev_fb, rev_damp;
  float tone_hz;               /* master low-pass (0: none) */
  float eq_low_db, eq_high_db; /* master shelves below ~250 Hz and above ~4 kHz */
  float eq_mid_db, eq_mid_hz;  /* a master bell */
  float limit;                 /* master saturation drive (0: none), a loud master */

  /* Arrangement: in bars [brk_start, brk_start + brk_len) the rhythm section rests. */
  int brk_start, brk_len;
  float snr_db;                                /* background noise (0: none) */
  float noise_hz;                              /* its colour: low-pass cutoff */
  float vinyl_hiss, vinyl_clicks, vinyl_click; /* vinyl surface (hiss 0: none) */
} track;

/* ---- draws ------------------------------------------------------------------------------ */

static inline float uni(track *t, float lo, float hi) {
  return lo + (hi - lo) * mf_rng_uniform(t->r);
}
static inline int chance(track *t, float p) { return mf_rng_uniform(t->r) < p; }
static inline int pick(track *t, int n) { return (int)mf_rng_below(t->r, (uint32_t)n); }
/* A velocity around v, +- spread (relative). */
static inline float vary(track *t, float v, float spread) {
  return v * (1.0f + spread * (2.0f * mf_rng_uniform(t->r) - 1.0f));
}

/* ---- time ------------------------------------------------------------------------------- */

/* Seconds from the piece's start to (unswung) beat b. */
static inline double beat_seconds(const track *t, double b) {
  double s = b;
  if (t->rubato != 0.0) {
    /* Beat length (60 / bpm) (1 + r sin(2 pi b / P + phi) + ...) integrated in closed form. */
    const double w = 2.0 * 3.141592653589793 / t->rubato_period;
    s -= t->rubato / w * (cos(w * b + t->rubato_phase) - cos(t->rubato_phase));
    const double w2 = 2.0 * 3.141592653589793 / t->rubato2_period;
    s -= t->rubato2 / w2 * (cos(w2 * b) - 1.0);
  }
  return s * 60.0 / t->bpm;
}

/* Beat position with swing: the off-step of every pair of swing_unit steps moves from
 * halfway to `swing` of the pair (0.5 straight, 2/3 triplet feel). */
static inline double swung(const track *t, double b) {
  if (t->swing == 0.5) return b;
  const double u = 2.0 * t->swing_unit, q = b / u, pair = floor(q), f = q - pair;
  const double g = f < 0.5 ? f * 2.0 * t->swing : t->swing + (f - 0.5) * 2.0 * (1.0 - t->swing);
  return (pair + g) * u;
}

/* Sample index of beat b of the piece (swung, humanised with the current stream). */
static inline int64_t at(track *t, double b) {
  double s = beat_seconds(t, swung(t, b)) - t->start;
  if (t->jitter > 0.0) s += t->jitter * mf_rng_normal(t->r);
  return (int64_t)llround(s * t->rate);
}

/* Seconds between beats b and b + len. */
static inline float dur(const track *t, double b, double len) {
  return (float)(beat_seconds(t, swung(t, b + len)) - beat_seconds(t, swung(t, b)));
}

/* Bars that cover the excerpt (from the piece's start). */
static inline int bars(const track *t) {
  const double end = t->start + (double)t->n / t->rate;
  int k = 0;
  while (beat_seconds(t, (double)(k * t->meter)) < end) k++;
  return k;
}

/* ---- harmony ---------------------------------------------------------------------------- */

extern const int SYN_MAJOR[7], SYN_MINOR[7], SYN_DORIAN[7], SYN_MIXOLYDIAN[7];
/* Chord progressions as scale degrees, one chord per step, four of each kind. */
extern const int SYN_PROG_MAJOR[4][4], SYN_PROG_MINOR[4][4], SYN_PROG_JAZZ[4][4],
    SYN_PROG_SLOW[4][4];

static inline float hz(float midi) { return 440.0f * exp2f((midi - 69.0f) / 12.0f); }

/* MIDI note of scale degree d (any integer; 0 is the tonic at MIDI base + key). */
static inline int degree_note(const track *t, int base, int d) {
  int o = d >= 0 ? d / 7 : -((6 - d) / 7);
  return base + t->key + 12 * o + t->scale[d - 7 * o];
}

/* The n notes of the chord on degree d stacked in thirds (3 triad, 4 seventh, 5 ninth). */
static inline void chord_notes(const track *t, int base, int d, int n, int *out) {
  for (int i = 0; i < n; i++) out[i] = degree_note(t, base, d + 2 * i);
}

/* Degree of the chord under bar `bar` when each chord lasts bars_per_chord bars. */
static inline int chord_at(const int *prog, int bars_per_chord, int bar) {
  return prog[(bar / bars_per_chord) % 4];
}

/* Moves a MIDI note by octaves into [lo, lo + 12). */
static inline int into(int note, int lo) {
  while (note < lo) note += 12;
  while (note >= lo + 12) note -= 12;
  return note;
}

static inline void pick_key(track *t, const int *scale) {
  t->scale = scale;
  t->key = pick(t, 12);
}

/* ---- arrangement and master ------------------------------------------------------------- */

/* With probability p, a break of min_len .. max_len bars in the first 16 bars. */
void mf__syn_draw_break(track *t, float p, int min_len, int max_len);
static inline int in_break(const track *t, int bar) {
  return bar >= t->brk_start && bar < t->brk_start + t->brk_len;
}

/* Draws the master settings every track has: mastering EQ, loudness, tone, noise, with the
 * given chances of a loud (limited) master, a dull mix, background noise and a vinyl
 * surface. */
void mf__syn_master_defaults(track *t, float p_loud, float p_dull, float p_noise, float p_vinyl);

/* Swells and fades a layer over period_s seconds, by up to `depth`. */
void mf__syn_swell(track *t, float depth, float period_s, float phase);

/* ---- layers ----------------------------------------------------------------------------- */

/* Clears the layer buffer and draws this layer's events from sub-stream `id`. */
void mf__syn_layer_begin(track *t, int id);
/* Mixes the layer into the dry bus at `gain` and into the reverb send at gain * send. */
void mf__syn_layer_end(track *t, float gain, float send);

/* A one-shot rendered once into the aux arena and pasted at every hit, as a drum machine
 * plays samples: a repeated hit then costs one multiply-add per sample. */
typedef struct shot {
  const float *x;
  int64_t len;
} shot;

/* Reserves `seconds` of zeroed aux space; *sc is a voice context writing into it. */
float *mf__syn_shot_begin(track *t, float seconds, syn_ctx *sc);
/* Takes back the noise state from *sc and returns the rendered shot. */
shot mf__syn_shot_end(track *t, const syn_ctx *sc, float *x);
/* Adds gain * s into the layer from sample pos on. */
void mf__syn_paste(track *t, shot s, int64_t pos, float gain);

/* Drum one-shots (parameters as the voices in synth_dsp.h). */
shot mf__syn_kick_shot(track *t, float f_hi, float f_lo, float pitch_tau, float decay_tau,
                       float click);
shot mf__syn_snare_shot(track *t, float tone_hz, float tone, float decay_tau, float bright_hz,
                        int clap);
shot mf__syn_metal_shot(track *t, float decay_tau, float hp_hz, float pitch, float noise,
                        float bell);

static inline void hit(track *t, shot s, double beat, float gain) {
  mf__syn_paste(t, s, at(t, beat), gain);
}

/* Keyboard-like chord instruments several genres share, so that no instrument belongs to
 * one class alone. */
typedef enum keys_kind { KEYS_EPIANO, KEYS_PIANO, KEYS_VIBES, KEYS_ORGAN, KEYS_STRINGS } keys_kind;
typedef struct keys {
  keys_kind kind;
  float bright, index, index_tau, tau, tine;
  syn_patch patch;
} keys;

/* Draws a `kind` instrument's settings for this track. */
keys mf__syn_keys(track *t, keys_kind kind);
/* Plays n notes together (a chord, or one note) for dur seconds into out (a voice). */
void mf__syn_keys_play(syn_ctx *c, float *out, const keys *k, int64_t pos, float amp,
                       const float *freq, int n, float dur);

/* The genres (synth_beats.c, synth_acoustic.c): each sets the track's tempo, key, reverb
 * and master settings and fills t->mix and t->send. */
void mf__syn_electronic(track *t);
void mf__syn_jazz(track *t);
void mf__syn_orchestral(track *t);
void mf__syn_rock(track *t);
void mf__syn_piano_genre(track *t);
void mf__syn_hiphop(track *t);

#endif
