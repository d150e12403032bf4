/* synth_acoustic.c — the classes of the demo corpus played by (imitated) acoustic
 * instruments: jazz, orchestral (ambient string pads), solo piano.
 *
 * As in synth_beats.c, each class draws its details per track and sometimes borrows from
 * another (a straight-eighths jazz take or a piano comping, a pizzicato ostinato or a piano
 * arpeggio in the orchestra, a string pad or a dusty record under the piano).
 */
#include "synth_track.h"

/* ---- jazz ------------------------------------------------------------------------------- */

void mf__syn_jazz(track *t) {
  t->bpm = uni(t, 90.0f, 160.0f);
  t->meter = chance(t, 0.15f) ? 3 : 4;
  t->swing_unit = 0.5;
  t->swing = chance(t, 0.2f) ? uni(t, 0.5f, 0.56f) : uni(t, 0.6f, 0.7f);
  t->jitter = uni(t, 0.004f, 0.012f);
  t->start = uni(t, 0.0f, 2.0f * t->meter) * 60.0 / t->bpm;
  pick_key(t, chance(t, 0.6f) ? SYN_MAJOR : SYN_DORIAN);
  const int *prog = SYN_PROG_JAZZ[pick(t, 4)];
  const int m = t->meter, nb = bars(t);
  t->rev_size = uni(t, 0.6f, 0.9f), t->rev_fb = uni(t, 0.7f, 0.8f), t->rev_damp = 0.5f;
  mf__syn_master_defaults(t, 0.1f, 0.4f, 0.6f, 0.15f);

  const float r_dec = uni(t, 0.5f, 1.2f), r_hp = uni(t, 2500, 5000), r_pitch = uni(t, 1.2f, 2.0f),
              r_noise = uni(t, 0.2f, 0.5f), r_bell = uni(t, 0.1f, 0.4f);
  const int brushes = chance(t, 0.6f), feather = chance(t, 0.5f), two_feel = chance(t, 0.2f);
  const int solo = chance(t, 0.5f), solo_kind = pick(t, 5);
  const float b_bright = uni(t, 0.15f, 0.4f), b_decay = uni(t, 0.4f, 0.9f);
  static const keys_kind COMP[20] = {
      KEYS_EPIANO, KEYS_EPIANO, KEYS_EPIANO, KEYS_EPIANO, KEYS_EPIANO, KEYS_EPIANO, KEYS_EPIANO,
      KEYS_EPIANO, KEYS_EPIANO, KEYS_PIANO,  KEYS_PIANO,  KEYS_PIANO,  KEYS_PIANO,  KEYS_PIANO,
      KEYS_VIBES,  KEYS_VIBES,  KEYS_VIBES,  KEYS_ORGAN,  KEYS_ORGAN,  KEYS_ORGAN};
  const keys comp = mf__syn_keys(t, COMP[pick(t, 20)]), solo_piano = mf__syn_keys(t, KEYS_PIANO);
  mf__syn_draw_break(t, 0.3f, 2, 4); /* the drums drop out, the trio plays on */
  const float g_ride = uni(t, 0.1f, 0.4f), g_kit = vary(t, 0.3f, 0.5f),
              g_bass = vary(t, 0.85f, 0.4f), g_comp = vary(t, 0.42f, 0.5f),
              g_solo = vary(t, 0.38f, 0.5f);
  syn_patch horn = {.osc = 1,
                    .env = {0.03f, 0.2f, 0.8f, 0.06f},
                    .cutoff = uni(t, 1200, 2400),
                    .q = 0.9f,
                    .fenv = uni(t, 500, 1500),
                    .fenv_tau = 0.08f,
                    .vib_rate = 5.0f,
                    .vib_cents = uni(t, 5, 15)};

  mf__syn_layer_begin(t, 1); /* ride "ding, ding-ga", hi-hat foot on 2 and 4 */
  static const double RIDE4[6] = {0, 1, 1.5, 2, 3, 3.5}, RIDE3[4] = {0, 1, 1.5, 2};
  const shot ride[2] = {mf__syn_metal_shot(t, r_dec, r_hp, r_pitch, r_noise, r_bell),
                        mf__syn_metal_shot(t, r_dec, r_hp, r_pitch * 1.01f, r_noise, r_bell)};
  const shot foot = mf__syn_metal_shot(t, 0.04f, 5000, 1.3f, 0.5f, 0);
  for (int bar = 0; bar < nb; bar++) {
    if (in_break(t, bar)) continue;
    const double *slots = m == 4 ? RIDE4 : RIDE3;
    for (int k = 0; k < (m == 4 ? 6 : 4); k++) {
      if (slots[k] != floor(slots[k]) && chance(t, 0.1f)) continue;
      float v = slots[k] == floor(slots[k]) ? ((int)slots[k] % 2 ? 1.0f : 0.8f) : 0.6f;
      hit(t, ride[pick(t, 2)], bar * m + slots[k], vary(t, v, 0.15f));
    }
    if (chance(t, 0.1f)) hit(t, ride[0], bar * m + 2.5, 0.5f);
    for (int b = 1; b < m; b += 2) hit(t, foot, bar * m + b, vary(t, 0.35f, 0.2f));
  }
  mf__syn_layer_end(t, g_ride, 0.15f);

  mf__syn_layer_begin(t, 2); /* brushes or sticks, a feathered kick */
  const shot tap = mf__syn_snare_shot(t, 200, 0.1f, 0.1f, 3500, 0),
             stick = mf__syn_snare_shot(t, 220, 0.3f, 0.12f, 2500, 0);
  const shot soft_kick = mf__syn_kick_shot(t, 80, 50, 0.03f, 0.2f, 0.1f),
             bomb = mf__syn_kick_shot(t, 90, 50, 0.03f, 0.3f, 0.2f);
  for (int bar = 0; bar < nb; bar++) {
    if (in_break(t, bar)) continue;
    for (int b = 0; b < m; b++) {
      const double beat = bar * m + b;
      if (brushes) {
        mf__syn_brush(&t->v, t->layer, at(t, beat), vary(t, 0.5f, 0.2f), uni(t, 0.05f, 0.12f),
                      uni(t, 0.1f, 0.25f), uni(t, 2500, 5000));
        if (b % 2) hit(t, tap, beat, vary(t, 0.45f, 0.2f));
      } else {
        for (int h = 0; h < 2; h++)
          if (chance(t, 0.15f)) hit(t, stick, beat + 0.5 * h, uni(t, 0.15f, 0.3f));
        if (chance(t, 0.05f)) hit(t, stick, beat + 0.5, 0.7f);
      }
      if (feather) hit(t, soft_kick, beat, vary(t, 0.25f, 0.2f));
    }
    if (chance(t, 0.1f)) hit(t, bomb, bar * m + 0.5 * pick(t, 2 * m), 0.7f);
  }
  mf__syn_layer_end(t, g_kit, 0.2f);

  mf__syn_layer_begin(t, 3); /* walking bass: roots on one, chord tones, an approach note */
  for (int bar = 0; bar < nb; bar++) {
    const int d = chord_at(prog, 1, bar), next = chord_at(prog, 1, bar + 1);
    const int root = into(degree_note(t, 36, d), 33), target = into(degree_note(t, 36, next), 33);
    int prev = root;
    for (int b = 0; b < m; b++) {
      if (two_feel && b % 2) continue;
      int note = root;
      if (b == m - 1 && !two_feel) {
        note = chance(t, 0.6f) ? target + (chance(t, 0.5f) ? 1 : -1)
                               : degree_note(t, 36, next + (chance(t, 0.5f) ? 1 : -1));
      } else if (b > 0) {
        note = degree_note(t, 36, d + 2 * (1 + pick(t, 3)));
      }
      note = into(note, prev - 6);
      if (note < 28) note += 12;
      if (note > 55) note -= 12;
      prev = note;
      const double beat = bar * m + b;
      mf__syn_pluck(&t->v, t->layer, at(t, beat), vary(t, 1, 0.15f), hz((float)note),
                    dur(t, beat, two_feel ? 1.9 : 0.95), b_bright, b_decay);
    }
  }
  mf__syn_layer_end(t, g_bass, 0.05f);

  mf__syn_layer_begin(t, 4); /* comping: rootless 7th/9th voicings on the keys */
  for (int bar = 0; bar < nb; bar++) {
    const int d = chord_at(prog, 1, bar);
    int voicing[4];
    for (int k = 0; k < 4; k++)
      voicing[k] = into(degree_note(t, 48, d + 2 + 2 * k), 52 + 4 * (k % 2));
    double hits[8];
    int n_hits = 0;
    if (m == 4 && chance(t, 0.3f)) {
      hits[n_hits++] = 0, hits[n_hits++] = 1.5; /* the Charleston */
    } else {
      for (int s = 0; s < 2 * m; s++)
        if (chance(t, 0.2f)) hits[n_hits++] = 0.5 * s;
      if (!n_hits) hits[n_hits++] = 0.5 * pick(t, 2 * m);
    }
    for (int h = 0; h < n_hits; h++) {
      const double beat = bar * m + hits[h];
      const float len = dur(t, beat, uni(t, 0.4f, 1.5f)), v = vary(t, 0.3f, 0.2f);
      float f[4];
      for (int k = 0; k < 4; k++) f[k] = hz((float)voicing[k]);
      mf__syn_keys_play(&t->v, t->layer, &comp, at(t, beat), v, f, 4, len);
    }
  }
  mf__syn_layer_end(t, g_comp, 0.2f);

  if (solo) {
    mf__syn_layer_begin(t, 5); /* an improvised eighth-note line in two-bar phrases */
    int deg = 7 + pick(t, 5);
    for (int bar = 0; bar < nb; bar++) {
      if (chance(t, 0.35f)) continue;
      for (int s = 0; s < 2 * m; s++) {
        if (!chance(t, 0.65f)) continue;
        deg += pick(t, 5) - 2;
        deg = deg < 5 ? 5 : deg > 16 ? 16 : deg;
        const double beat = bar * m + 0.5 * s;
        const float f = hz((float)degree_note(t, 60, deg)), len = dur(t, beat, 0.45);
        if (solo_kind < 2)
          mf__syn_voice(&t->v, t->layer, at(t, beat), vary(t, 0.5f, 0.2f), f, len, &horn);
        else if (solo_kind == 2)
          mf__syn_keys_play(&t->v, t->layer, &solo_piano, at(t, beat), vary(t, 0.5f, 0.2f), &f, 1,
                            len);
        else
          mf__syn_fm(&t->v, t->layer, at(t, beat), vary(t, 0.5f, 0.2f), f, 0.8f, 4.0f, 0.8f, 0.1f,
                     uni(t, 0.8f, 1.6f), 0.0f);
      }
    }
    mf__syn_layer_end(t, g_solo, 0.25f);
  }
}

/* ---- orchestral (ambient pads) ---------------------------------------------------------- */

void mf__syn_orchestral(track *t) {
  t->bpm = uni(t, 60.0f, 80.0f);
  t->meter = chance(t, 0.2f) ? 3 : 4;
  t->swing = 0.5, t->swing_unit = 0.5;
  t->jitter = 0.01;
  t->start = uni(t, 0.0f, 2.0f * t->meter) * 60.0 / t->bpm;
  const int minor = chance(t, 0.5f);
  pick_key(t, minor ? SYN_MINOR : SYN_MAJOR);
  const int *prog = minor ? SYN_PROG_MINOR[pick(t, 4)] : SYN_PROG_SLOW[pick(t, 4)];
  const int m = t->meter, bpc = 1 + pick(t, 2), nb = bars(t);
  t->rev_size = uni(t, 1.1f, 1.4f), t->rev_fb = uni(t, 0.86f, 0.92f);
  t->rev_damp = uni(t, 0.3f, 0.5f);
  mf__syn_master_defaults(t, 0.05f, 0.4f, 0.5f, 0.05f);

  syn_patch strings = {.osc = 2 + pick(t, 2),
                       .detune = uni(t, 8, 20),
                       .env = {uni(t, 0.4f, 1.5f), 1.0f, 0.85f, uni(t, 0.8f, 2.0f)},
                       .cutoff = uni(t, 1000, 3000),
                       .q = 0.7f,
                       .vib_rate = uni(t, 4.5f, 6.0f),
                       .vib_cents = uni(t, 5, 15)};
  syn_patch lead = {.osc = 1 + pick(t, 2),
                    .detune = 6,
                    .square = chance(t, 0.3f) ? 0.5f : 0.0f,
                    .env = {uni(t, 0.1f, 0.3f), 0.5f, 0.9f, 0.4f},
                    .cutoff = uni(t, 2000, 4000),
                    .q = 0.7f,
                    .vib_rate = uni(t, 4.5f, 6.0f),
                    .vib_cents = uni(t, 10, 25)};
  const int melody = chance(t, 0.6f), timpani = chance(t, 0.3f), piano = chance(t, 0.2f);
  const int pizz = chance(t, 0.3f);
  const float g_str = vary(t, 0.5f, 0.3f), g_low = vary(t, 0.4f, 0.5f),
              g_mel = vary(t, 0.35f, 0.5f), g_timp = vary(t, 0.4f, 0.5f),
              g_piano = vary(t, 0.25f, 0.5f);
  const float depth = uni(t, 0.0f, 0.6f), period = uni(t, 6.0f, 20.0f), phase = uni(t, 0, 1);

  mf__syn_layer_begin(t, 1); /* sustained string chords */
  for (int bar = 0; bar < nb; bar += bpc) {
    int notes[4];
    const int k_n = 3 + pick(t, 2);
    chord_notes(t, 55, chord_at(prog, bpc, bar), k_n, notes);
    float f[4];
    for (int k = 0; k < k_n; k++) f[k] = hz((float)notes[k]);
    mf__syn_chord(&t->v, t->layer, at(t, bar * m), vary(t, 0.4f, 0.1f), f, k_n,
                  dur(t, bar * m, (double)m * bpc), &strings);
  }
  mf__syn_swell(t, depth, period, phase);
  mf__syn_layer_end(t, g_str, 0.8f);

  mf__syn_layer_begin(t, 2); /* cellos and basses on the roots */
  for (int bar = 0; bar < nb; bar += bpc) {
    const int root = into(degree_note(t, 36, chord_at(prog, bpc, bar)), 36);
    const float len = dur(t, bar * m, (double)m * bpc);
    const float f[2] = {hz((float)root), hz((float)root - 12.0f)};
    mf__syn_chord(&t->v, t->layer, at(t, bar * m), vary(t, 0.4f, 0.1f), f, 2, len, &strings);
  }
  mf__syn_swell(t, depth, period, phase);
  mf__syn_layer_end(t, g_low, 0.6f);

  if (melody) {
    mf__syn_layer_begin(t, 3); /* a slow singing line over the chords */
    int deg = 7 + pick(t, 5);
    for (int bar = 0; bar < nb; bar++) {
      for (int b = 0; b < m;) {
        const int len = 1 + pick(t, m);
        if (chance(t, 0.75f)) {
          deg += pick(t, 5) - 2;
          deg = deg < 5 ? 5 : deg > 14 ? 14 : deg;
          const double beat = bar * m + b;
          mf__syn_voice(&t->v, t->layer, at(t, beat), vary(t, 0.5f, 0.2f),
                        hz((float)degree_note(t, 60, deg)), dur(t, beat, len), &lead);
        }
        b += len;
      }
    }
    mf__syn_layer_end(t, g_mel, 0.7f);
  }

  if (timpani) {
    mf__syn_layer_begin(t, 4); /* soft timpani at phrase starts */
    const float f = hz((float)into(degree_note(t, 36, 0), 40));
    for (int bar = 0; bar < nb; bar += 2)
      if (chance(t, 0.7f))
        mf__syn_kick(&t->v, t->layer, at(t, bar * m), vary(t, 0.6f, 0.3f), f * 1.15f, f, 0.08f,
                     uni(t, 0.6f, 1.0f), 0.05f);
    mf__syn_layer_end(t, g_timp, 0.7f);
  }

  if (pizz) {
    mf__syn_layer_begin(t, 6); /* a pizzicato ostinato under the sustained chords */
    const float bright = uni(t, 0.3f, 0.6f), g = vary(t, 0.35f, 0.3f);
    for (int bar = 0; bar < nb; bar++) {
      int notes[3];
      chord_notes(t, 48, chord_at(prog, bpc, bar), 3, notes);
      for (int s = 0; s < 2 * m; s++) {
        const double beat = bar * m + 0.5 * s;
        if (s % 2 && chance(t, 0.5f)) continue;
        mf__syn_pluck(&t->v, t->layer, at(t, beat), vary(t, 0.6f, 0.2f),
                      hz((float)notes[(s / 2) % 3]), 0.3f, bright, 0.25f);
      }
    }
    mf__syn_layer_end(t, g, 0.6f);
  }

  if (piano) {
    mf__syn_layer_begin(t, 5); /* a soft piano arpeggio, as film scores like */
    const float bright = uni(t, 0.2f, 0.5f);
    for (int bar = 0; bar < nb; bar++) {
      int notes[4];
      chord_notes(t, 60, chord_at(prog, bpc, bar), 3, notes);
      notes[3] = notes[0] + 12;
      for (int s = 0; s < 2 * m; s++) {
        const double beat = bar * m + 0.5 * s;
        mf__syn_piano(&t->v, t->layer, at(t, beat), vary(t, 0.35f, 0.2f), hz((float)notes[s % 4]),
                      dur(t, beat, 2.0), bright);
      }
    }
    mf__syn_layer_end(t, g_piano, 0.6f);
  }
}

/* ---- piano (sparse, classical-ish) ------------------------------------------------------- */

void mf__syn_piano_genre(track *t) {
  t->bpm = uni(t, 60.0f, 100.0f);
  t->meter = chance(t, 0.3f) ? 3 : 4;
  t->swing = 0.5, t->swing_unit = 0.5;
  t->rubato = uni(t, 0.05f, 0.2f), t->rubato_period = uni(t, 4.0f, 12.0f);
  t->rubato_phase = uni(t, 0.0f, 6.28f);
  t->rubato2 = uni(t, 0.0f, 0.08f), t->rubato2_period = uni(t, 1.5f, 3.5f);
  t->jitter = uni(t, 0.008f, 0.02f);
  t->start = uni(t, 0.0f, 2.0f * t->meter) * 60.0 / t->bpm;
  const int minor = chance(t, 0.45f);
  pick_key(t, minor ? SYN_MINOR : SYN_MAJOR);
  const int *prog = minor ? SYN_PROG_MINOR[pick(t, 4)] : SYN_PROG_SLOW[pick(t, 4)];
  const int m = t->meter, nb = bars(t), bpc = chance(t, 0.6f) ? 1 : 2;
  t->rev_size = uni(t, 0.9f, 1.2f), t->rev_fb = uni(t, 0.8f, 0.88f);
  t->rev_damp = uni(t, 0.3f, 0.5f);
  mf__syn_master_defaults(t, 0.05f, 0.3f, 0.5f, 0.12f);

  const int pattern = pick(t, 5), pedal = chance(t, 0.6f), melody = chance(t, 0.8f);
  const int lh_base = chance(t, 0.5f) ? 36 : 45;
  const int pad = chance(t, 0.15f);
  const float bright = uni(t, 0.2f, 0.7f), density = uni(t, 0.3f, 0.7f);
  const float dyn_depth = uni(t, 0.1f, 0.4f), dyn_period = uni(t, 4.0f, 10.0f);
  const float g_lh = vary(t, 0.5f, 0.4f), g_rh = vary(t, 0.7f, 0.4f), g_pad = vary(t, 0.15f, 0.5f);

  /* Left hand: Alberti bass, broken chords, triplets, blocks or running sixteenths. */
  mf__syn_layer_begin(t, 1);
  for (int bar = 0; bar < nb; bar++) {
    int c[4];
    chord_notes(t, 48, chord_at(prog, bpc, bar), 3, c);
    c[0] = into(c[0], lh_base);
    c[1] = into(c[1], c[0]);
    c[2] = into(c[2], c[0]);
    const int n4[4] = {c[0], c[2], c[1], c[2]}, up[4] = {c[0], c[2], c[0] + 12, c[1] + 12};
    const int run[8] = {c[0], c[1], c[2], c[0] + 12, c[1] + 12, c[0] + 12, c[2], c[1]};
    const float dyn = 1.0f - dyn_depth * 0.5f * (1.0f + sinf(6.283f * (float)bar / dyn_period));
    const int steps = pattern == 2 ? 3 * m : pattern == 4 ? 4 * m : 2 * m;
    const double step = pattern == 2 ? 1.0 / 3.0 : pattern == 4 ? 0.25 : 0.5;
    for (int s = 0; s < steps; s++) {
      const double beat = bar * m + s * step;
      if (pattern == 3) { /* block chords on the strong beats */
        if (s % 4) continue;
        for (int k = 0; k < 3; k++)
          mf__syn_piano(&t->v, t->layer, at(t, beat), dyn * vary(t, 0.3f, 0.15f), hz((float)c[k]),
                        dur(t, beat, pedal ? 2.0 : 1.8), bright);
        continue;
      }
      const int note = pattern == 0   ? n4[s % 4]
                       : pattern == 1 ? up[s % 4]
                       : pattern == 4 ? run[s % 8]
                                      : c[s % 3];
      const float len =
          pedal ? dur(t, beat, (double)m - (double)(s * step) + 0.2) : dur(t, beat, step);
      mf__syn_piano(&t->v, t->layer, at(t, beat), dyn * vary(t, s % 2 ? 0.3f : 0.4f, 0.15f),
                    hz((float)note), len, bright);
    }
  }
  mf__syn_layer_end(t, g_lh, 0.5f);

  if (melody) {
    mf__syn_layer_begin(t, 2); /* right hand: a sparse melody, mostly chord tones */
    int deg = 7 + pick(t, 5);
    for (int bar = 0; bar < nb; bar++) {
      const int d = chord_at(prog, bpc, bar);
      for (int b = 0; b < m;) {
        const int len = 1 + (chance(t, 0.4f) ? 1 : 0);
        if (chance(t, density)) {
          deg += pick(t, 5) - 2;
          if (chance(t, 0.6f)) deg = d + 2 * ((deg - d + 14) / 2) - 14; /* snap to a chord tone */
          deg = deg < 7 ? 7 : deg > 16 ? 16 : deg;
          const double beat = bar * m + b;
          mf__syn_piano(&t->v, t->layer, at(t, beat), vary(t, 0.5f, 0.2f),
                        hz((float)degree_note(t, 60, deg)), dur(t, beat, len + (pedal ? 1.0 : 0.0)),
                        bright);
        }
        b += len;
      }
    }
    mf__syn_layer_end(t, g_rh, 0.5f);
  }

  if (pad) {
    mf__syn_layer_begin(t, 3); /* a soft string pad underneath */
    syn_patch strings = {.osc = 2,
                         .detune = 12,
                         .env = {1.0f, 1.0f, 0.85f, 1.5f},
                         .cutoff = 1500,
                         .q = 0.7f,
                         .vib_rate = 5.0f,
                         .vib_cents = 8};
    for (int bar = 0; bar < nb; bar += bpc) {
      int c[3];
      chord_notes(t, 55, chord_at(prog, bpc, bar), 3, c);
      const float f[3] = {hz((float)c[0]), hz((float)c[1]), hz((float)c[2])};
      mf__syn_chord(&t->v, t->layer, at(t, bar * m), 0.3f, f, 3, dur(t, bar * m, m * bpc),
                    &strings);
    }
    mf__syn_layer_end(t, g_pad, 0.7f);
  }
}
