/* synth_beats.c — the drum-driven classes of the demo corpus: electronic, rock, hip-hop.
 *
 * Each has its tempo range, groove, kit and instruments, and draws the details per track.
 * Some choices deliberately borrow from another class (a broken beat or house piano in an
 * electronic track, a quiet clean rock take, hip-hop over jazz chords or a ride cymbal) and
 * every class has breaks where the drums rest, so no single statistic separates the classes
 * and a 3-second excerpt is not always typical of its track.
 */
#include "synth_track.h"

/* ---- electronic ------------------------------------------------------------------------- */

void mf__syn_electronic(track *t) {
  t->bpm = uni(t, 120.0f, 130.0f);
  t->swing_unit = 0.25;
  t->swing = chance(t, 0.15f) ? uni(t, 0.53f, 0.58f) : 0.5;
  t->start = uni(t, 0.0f, 8.0f) * 60.0 / t->bpm;
  const int minor = chance(t, 0.7f);
  pick_key(t, minor ? (chance(t, 0.3f) ? SYN_DORIAN : SYN_MINOR) : SYN_MAJOR);
  const int *prog = minor ? SYN_PROG_MINOR[pick(t, 4)] : SYN_PROG_MAJOR[pick(t, 4)];
  const int bpc = 1 + pick(t, 2), nb = bars(t);
  t->rev_size = uni(t, 0.8f, 1.1f), t->rev_fb = uni(t, 0.75f, 0.85f);
  t->rev_damp = uni(t, 0.3f, 0.5f);
  mf__syn_master_defaults(t, 0.6f, 0.3f, 0.5f, 0.08f);
  mf__syn_draw_break(t, 0.35f, 2, 6); /* a breakdown: drums and bass out */

  const float k_hi = uni(t, 110, 170), k_lo = uni(t, 42, 58), k_pt = uni(t, 0.02f, 0.05f),
              k_dec = uni(t, 0.18f, 0.4f), k_click = uni(t, 0.1f, 0.5f);
  const float h_dec = uni(t, 0.05f, 0.14f), h_hp = uni(t, 6500, 9000), h_pitch = uni(t, 1, 1.6f),
              h_noise = uni(t, 0.3f, 0.7f);
  const int sixteenths = chance(t, 0.5f), clap = chance(t, 0.75f), crash = chance(t, 0.5f);
  const int breakbeat = chance(t, 0.15f), ride_offbeats = chance(t, 0.2f);
  const int bass_style = pick(t, 4), arp = chance(t, 0.45f);
  const int chords = pick(t, 10); /* 0-4 saw pad, 5-6 off-beat stabs, 7-8 house piano, 9 organ */
  const float pump = chance(t, 0.2f) ? uni(t, 0.0f, 0.2f) : uni(t, 0.35f, 0.85f);
  const float pump_release = uni(t, 0.15f, 0.35f);
  syn_patch bass = {.osc = 1 + pick(t, 2),
                    .detune = uni(t, 8, 16),
                    .square = uni(t, 0, 0.6f),
                    .sub = uni(t, 0.2f, 0.6f),
                    .env = {0.003f, uni(t, 0.12f, 0.25f), uni(t, 0.4f, 0.7f), 0.04f},
                    .cutoff = uni(t, 180, 700),
                    .q = uni(t, 0.9f, 2.5f),
                    .fenv = uni(t, 300, 1800),
                    .fenv_tau = uni(t, 0.04f, 0.12f)};
  syn_patch pad = {.osc = 2 + pick(t, 2),
                   .detune = uni(t, 12, 30),
                   .square = uni(t, 0, 0.8f),
                   .env = {uni(t, 0.02f, 0.4f), 0.6f, 0.8f, uni(t, 0.3f, 0.6f)},
                   .cutoff = uni(t, 600, 3500),
                   .q = uni(t, 0.7f, 1.1f),
                   .fenv = uni(t, 0, 800),
                   .fenv_tau = 0.3f};
  if (chords >= 5 && chords <= 6) pad.env.r = uni(t, 0.05f, 0.15f); /* stabs are short */
  syn_patch lead = {.osc = 1,
                    .square = uni(t, 0.3f, 1.0f),
                    .env = {0.002f, uni(t, 0.08f, 0.2f), uni(t, 0, 0.2f), 0.05f},
                    .cutoff = uni(t, 800, 2500),
                    .q = uni(t, 1, 3),
                    .fenv = uni(t, 1500, 4000),
                    .fenv_tau = 0.05f};
  const keys piano = mf__syn_keys(t, KEYS_PIANO), organ = mf__syn_keys(t, KEYS_ORGAN);
  const int pad_notes = 3 + pick(t, 2), arp_step = chance(t, 0.4f) ? 2 : 1, arp_phase = pick(t, 2);
  const float g_kick = vary(t, 1.0f, 0.2f), g_clap = vary(t, 0.5f, 0.5f),
              g_hat = vary(t, 0.3f, 0.5f), g_bass = vary(t, 0.6f, 0.5f),
              g_pad = vary(t, 0.4f, 0.5f), g_arp = vary(t, 0.22f, 0.5f);

  mf__syn_layer_begin(t, 1); /* kick: four on the floor (or a broken beat) */
  const shot kick = mf__syn_kick_shot(t, k_hi, k_lo, k_pt, k_dec, k_click);
  for (int bar = 0; bar < nb; bar++) {
    if (in_break(t, bar)) continue;
    if (breakbeat) {
      hit(t, kick, bar * 4, 1.0f);
      hit(t, kick, bar * 4 + 2.5, vary(t, 0.9f, 0.1f));
      if (chance(t, 0.5f)) hit(t, kick, bar * 4 + 1.75, 0.7f);
      continue;
    }
    for (int b = 0; b < 4; b++) hit(t, kick, bar * 4 + b, vary(t, 1, 0.04f));
    if (bar % 8 == 7 && chance(t, 0.4f)) hit(t, kick, bar * 4 + 3.5, 0.7f);
  }
  mf__syn_layer_end(t, g_kick, 0.0f);

  mf__syn_layer_begin(t, 2); /* hats on the off-beats, optional sixteenths and ride; crashes */
  const shot open = mf__syn_metal_shot(t, h_dec, h_hp, h_pitch, h_noise, 0);
  const shot closed = mf__syn_metal_shot(t, 0.03f, h_hp, h_pitch, h_noise, 0);
  const shot cymbal = mf__syn_metal_shot(t, uni(t, 1.0f, 1.5f), 4000, 1.2f, 0.7f, 0);
  const shot ride = mf__syn_metal_shot(t, uni(t, 0.4f, 0.8f), uni(t, 3000, 5000),
                                       uni(t, 1.2f, 2.0f), 0.3f, uni(t, 0.1f, 0.3f));
  for (int bar = 0; bar < nb; bar++) {
    if (in_break(t, bar)) continue;
    for (int s = 0; s < 16; s++) {
      const double b = bar * 4 + s * 0.25;
      if (s % 4 == 2)
        hit(t, ride_offbeats ? ride : open, b, vary(t, 1, 0.1f));
      else if (sixteenths)
        hit(t, closed, b, vary(t, s % 2 ? 0.3f : 0.45f, 0.2f));
    }
    if (crash && (bar % 8 == 0 || bar == t->brk_start + t->brk_len)) hit(t, cymbal, bar * 4, 0.8f);
  }
  mf__syn_layer_end(t, g_hat, 0.1f);

  if (clap) {
    mf__syn_layer_begin(t, 3);
    const shot c =
        mf__syn_snare_shot(t, uni(t, 200, 260), 0.1f, uni(t, 0.08f, 0.18f), uni(t, 1200, 2500), 1);
    for (int bar = 0; bar < nb; bar++)
      for (int b = (breakbeat ? 2 : 1); b < 4 && !in_break(t, bar); b += 2)
        hit(t, c, bar * 4 + b, vary(t, 1, 0.08f));
    mf__syn_layer_end(t, g_clap, 0.25f);
  }

  mf__syn_layer_begin(t, 4); /* bass on the chord roots */
  for (int bar = 0; bar < nb; bar++) {
    if (in_break(t, bar)) continue;
    const int root = into(degree_note(t, 36, chord_at(prog, bpc, bar)), 33);
    for (int s = 0; s < 16; s++) {
      const double b = bar * 4 + s * 0.25;
      int note = root;
      float len = 0.2f;
      if (bass_style == 0) { /* off-beat eighths */
        if (s % 4 != 2) continue;
        len = 0.4f;
      } else if (bass_style == 1) { /* rolling sixteenths around the kick */
        if (s % 4 == 0) continue;
      } else if (bass_style == 2) { /* octave bounce */
        if (s % 2) continue;
        note = s % 4 ? root + 12 : root;
        len = 0.35f;
      } else { /* long notes */
        if (s % 8) continue;
        len = 1.8f;
      }
      mf__syn_voice(&t->v, t->layer, at(t, b), vary(t, 1, 0.1f), hz((float)note), dur(t, b, len),
                    &bass);
    }
  }
  mf__syn_layer_end(t, g_bass, 0.0f);

  mf__syn_layer_begin(t, 5); /* chords: pads, stabs, house piano or organ, pumping */
  for (int bar = 0; bar < nb; bar++) {
    int notes[5];
    chord_notes(t, 52, chord_at(prog, bpc, bar), pad_notes, notes);
    float f[5];
    for (int k = 0; k < pad_notes; k++) f[k] = hz((float)notes[k]);
    if (chords >= 5) {
      for (int b = 0; b < 4; b++) {
        const double beat = bar * 4 + b + 0.5;
        const float len = dur(t, beat, 0.35);
        if (chords <= 6)
          mf__syn_chord(&t->v, t->layer, at(t, beat), 0.5f, f, pad_notes, len, &pad);
        else
          mf__syn_keys_play(&t->v, t->layer, chords <= 8 ? &piano : &organ, at(t, beat), 0.35f, f,
                            pad_notes, len);
      }
    } else if (bar % bpc == 0) {
      mf__syn_chord(&t->v, t->layer, at(t, bar * 4), 0.5f, f, pad_notes,
                    dur(t, bar * 4, 4.0 * bpc) - 0.05f, &pad);
    }
  }
  {
    /* The duck follows the beat (the kick), recovering over pump_release seconds. */
    const double beat_s = 60.0 / t->bpm, step = 1.0 / (beat_s * t->rate);
    const float inv_rel = (float)beat_s / pump_release;
    double ph = t->start / beat_s;
    ph -= floor(ph);
    for (int64_t i = 0; i < t->n; i++) {
      float x = (float)ph * inv_rel;
      x = x < 1.0f ? 1.0f - x : 0.0f;
      t->layer[i] *= 1.0f - pump * x * x;
      ph += step;
      if (ph >= 1.0) ph -= 1.0;
    }
  }
  mf__syn_layer_end(t, g_pad, 0.35f);

  if (arp) {
    mf__syn_layer_begin(t, 6); /* a sixteenth-note arpeggio in every other 8-bar section */
    for (int bar = 0; bar < nb; bar++) {
      if ((bar / 8) % 2 != arp_phase) continue;
      int notes[4];
      chord_notes(t, 64, chord_at(prog, bpc, bar), 4, notes);
      for (int s = 0; s < 16; s += arp_step) {
        const double b = bar * 4 + s * 0.25;
        mf__syn_voice(&t->v, t->layer, at(t, b), vary(t, 1, 0.15f),
                      hz((float)notes[(s / arp_step) % 4]), dur(t, b, 0.2), &lead);
      }
    }
    mf__syn_layer_end(t, g_arp, 0.3f);
  }
}

/* ---- rock ------------------------------------------------------------------------------- */

void mf__syn_rock(track *t) {
  t->bpm = uni(t, 100.0f, 140.0f);
  t->swing_unit = 0.5;
  t->swing = chance(t, 0.15f) ? uni(t, 0.56f, 0.62f) : 0.5;
  t->jitter = uni(t, 0.003f, 0.008f);
  t->start = uni(t, 0.0f, 8.0f) * 60.0 / t->bpm;
  const int mode = pick(t, 3);
  pick_key(t, mode == 0 ? SYN_MAJOR : mode == 1 ? SYN_MIXOLYDIAN : SYN_MINOR);
  const int *prog = mode == 2 ? SYN_PROG_MINOR[pick(t, 4)] : SYN_PROG_MAJOR[pick(t, 4)];
  const int nb = bars(t), bpc = chance(t, 0.7f) ? 1 : 2;
  t->rev_size = uni(t, 0.7f, 1.0f), t->rev_fb = 0.75f, t->rev_damp = 0.5f;
  mf__syn_master_defaults(t, 0.7f, 0.35f, 0.5f, 0.05f);
  mf__syn_draw_break(t, 0.25f, 2, 4); /* the guitar alone for a few bars */

  const int quiet = chance(t, 0.25f); /* a clean, soft ballad-like take */
  const int arpeggio = quiet && chance(t, 0.6f);
  const float drive = quiet             ? uni(t, 1.0f, 2.2f)
                      : chance(t, 0.3f) ? uni(t, 2.0f, 4.0f)
                                        : uni(t, 4.0f, 14.0f);
  const float cab = uni(t, 1800, 5500), a_bright = uni(t, 0.5f, 0.8f);
  const int rhythm = pick(t, 3), open_hat = chance(t, 0.3f), ghosts = chance(t, 0.3f);
  const int fills = chance(t, 0.6f), crash_every = chance(t, 0.5f) ? 4 : 8;
  const int on_ride = chance(t, 0.3f), organ_layer = chance(t, 0.2f);
  const float k_hi = uni(t, 90, 130), k_lo = uni(t, 50, 65), k_dec = uni(t, 0.15f, 0.3f),
              k_click = uni(t, 0.5f, 1.0f);
  const float s_hz = uni(t, 180, 240), s_tone = uni(t, 0.3f, 0.5f), s_dec = uni(t, 0.12f, 0.22f),
              s_bright = uni(t, 2000, 4000);
  syn_patch gtr = {.osc = 2,
                   .detune = uni(t, 6, 14),
                   .square = uni(t, 0.2f, 0.7f),
                   .env = {0.003f, uni(t, 0.3f, 0.6f), uni(t, 0.5f, 0.8f), 0.08f},
                   .cutoff = uni(t, 1800, 4000),
                   .q = 0.8f,
                   .fenv = 1000,
                   .fenv_tau = 0.1f};
  syn_patch bass = {.osc = 1,
                    .square = uni(t, 0.0f, 0.6f),
                    .sub = 0.3f,
                    .env = {0.003f, 0.2f, 0.7f, 0.05f},
                    .cutoff = uni(t, 400, 1000),
                    .q = 0.9f,
                    .fenv = 500,
                    .fenv_tau = 0.06f};
  const keys organ = mf__syn_keys(t, KEYS_ORGAN);
  const float dk = quiet ? uni(t, 0.3f, 0.7f) : 1.0f;
  const float g_kick = dk * vary(t, 0.8f, 0.3f), g_snare = dk * vary(t, 0.7f, 0.4f),
              g_hat = dk * vary(t, 0.25f, 0.5f), g_gtr = vary(t, quiet ? 0.45f : 0.6f, 0.4f),
              g_bass = vary(t, 0.5f, 0.5f), g_organ = vary(t, 0.25f, 0.4f);

  mf__syn_layer_begin(t, 1); /* kick on 1 and 3, toms in the fills */
  const shot kick = mf__syn_kick_shot(t, k_hi, k_lo, 0.03f, k_dec, k_click);
  for (int bar = 0; bar < nb; bar++) {
    if (in_break(t, bar)) continue;
    for (int b = 0; b < 4; b += 2) hit(t, kick, bar * 4 + b, vary(t, 1, 0.08f));
    if (chance(t, 0.5f)) hit(t, kick, bar * 4 + 2.5, vary(t, 0.8f, 0.1f));
    if (fills && (bar % 8 == 7 || bar + 1 == t->brk_start))
      for (int s = 0; s < 4; s++)
        mf__syn_kick(&t->v, t->layer, at(t, bar * 4 + 3 + 0.25 * s), 0.7f, 240.0f - 40.0f * s,
                     200.0f - 35.0f * s, 0.05f, 0.25f, 0.3f);
  }
  mf__syn_layer_end(t, g_kick, 0.05f);

  mf__syn_layer_begin(t, 2); /* backbeat snare on 2 and 4, ghost notes */
  const shot snare = mf__syn_snare_shot(t, s_hz, s_tone, s_dec, s_bright, 0);
  const shot ghost = mf__syn_snare_shot(t, s_hz, s_tone, 0.06f, s_bright, 0);
  for (int bar = 0; bar < nb; bar++) {
    if (in_break(t, bar)) continue;
    for (int b = 1; b < 4; b += 2) hit(t, snare, bar * 4 + b, vary(t, 1, 0.08f));
    for (int s = 0; s < 16 && ghosts; s++)
      if (s % 4 && chance(t, 0.12f)) hit(t, ghost, bar * 4 + 0.25 * s, uni(t, 0.1f, 0.25f));
  }
  mf__syn_layer_end(t, g_snare, 0.3f);

  mf__syn_layer_begin(t, 3); /* eighths on the hats (or the ride), a crash at each phrase */
  const float h_pitch = uni(t, 1.0f, 1.5f), h_hp = uni(t, 5000, 8000);
  const shot hats[2] = {mf__syn_metal_shot(t, uni(t, 0.04f, 0.07f), h_hp, h_pitch, 0.5f, 0),
                        mf__syn_metal_shot(t, uni(t, 0.04f, 0.07f), h_hp, h_pitch, 0.5f, 0)};
  const shot open = mf__syn_metal_shot(t, 0.25f, h_hp, h_pitch, 0.5f, 0);
  const shot cymbal = mf__syn_metal_shot(t, uni(t, 1.2f, 2.0f), 3500, 1.1f, 0.6f, 0);
  const shot ride = mf__syn_metal_shot(t, uni(t, 0.6f, 1.2f), uni(t, 2500, 5000),
                                       uni(t, 1.2f, 2.0f), 0.3f, uni(t, 0.1f, 0.4f));
  for (int bar = 0; bar < nb; bar++) {
    if (in_break(t, bar)) continue;
    for (int s = 0; s < 8; s++)
      hit(t,
          on_ride              ? ride
          : open_hat && s == 7 ? open
                               : hats[pick(t, 2)],
          bar * 4 + 0.5 * s, vary(t, s % 2 ? 0.6f : 1.0f, 0.15f) * (on_ride ? 0.6f : 1.0f));
    if (!quiet && (bar % crash_every == 0 || bar == t->brk_start + t->brk_len))
      hit(t, cymbal, bar * 4, 1.5f);
  }
  mf__syn_layer_end(t, g_hat, 0.15f);

  /* Guitar: power chords distorted as a whole, like a real amp, or a clean picked arpeggio. */
  mf__syn_layer_begin(t, 4);
  static const double RHYTHM[3][8] = {{0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5},
                                      {0, 2, 3.5, -1, -1, -1, -1, -1},
                                      {0, 1.5, 2.5, 3, 3.5, -1, -1, -1}};
  for (int bar = 0; bar < nb; bar++) {
    const int d = chord_at(prog, bpc, bar), root = into(degree_note(t, 40, d), 40);
    if (arpeggio) {
      const int notes[4] = {root, root + 7, root + 12, into(degree_note(t, 40, d + 2), root + 12)};
      for (int s = 0; s < 8; s++) {
        const double beat = bar * 4 + 0.5 * s;
        mf__syn_pluck(&t->v, t->layer, at(t, beat), vary(t, 0.8f, 0.15f), hz((float)notes[s % 4]),
                      dur(t, beat, 1.0), a_bright, 0.8f);
      }
      continue;
    }
    const float f[3] = {hz((float)root), hz((float)root + 7.0f), hz((float)root + 12.0f)};
    for (int h = 0; h < 8 && RHYTHM[rhythm][h] >= 0; h++) {
      const double beat = bar * 4 + RHYTHM[rhythm][h];
      const double next = h + 1 < 8 && RHYTHM[rhythm][h + 1] >= 0 ? RHYTHM[rhythm][h + 1] : 4.0;
      const float len = dur(t, beat, rhythm == 0 ? 0.3 : 0.9 * (next - RHYTHM[rhythm][h]));
      const float v = vary(t, rhythm == 0 && h % 2 ? 0.7f : 1.0f, 0.1f);
      mf__syn_chord(&t->v, t->layer, at(t, beat), v * 0.35f, f, 3, len, &gtr);
    }
  }
  if (!arpeggio)
    for (int64_t i = 0; i < t->n; i++) t->layer[i] = syn_softclip(drive * t->layer[i]);
  mf__syn_lowpass(t->layer, t->n, cab, t->rate);
  mf__syn_lowpass(t->layer, t->n, cab * 1.3f, t->rate);
  mf__syn_layer_end(t, g_gtr, 0.15f);

  mf__syn_layer_begin(t, 5); /* bass in eighths on the roots */
  for (int bar = 0; bar < nb; bar++) {
    if (in_break(t, bar)) continue;
    const int root = into(degree_note(t, 28, chord_at(prog, bpc, bar)), 28);
    for (int s = 0; s < 8; s++) {
      const double beat = bar * 4 + 0.5 * s;
      mf__syn_voice(&t->v, t->layer, at(t, beat), vary(t, 1, 0.1f), hz((float)root),
                    dur(t, beat, 0.45), &bass);
    }
  }
  mf__syn_layer_end(t, g_bass, 0.0f);

  if (organ_layer) {
    mf__syn_layer_begin(t, 6); /* a sustained organ behind the guitars */
    for (int bar = 0; bar < nb; bar += bpc) {
      int notes[3];
      chord_notes(t, 55, chord_at(prog, bpc, bar), 3, notes);
      const float f[3] = {hz((float)notes[0]), hz((float)notes[1]), hz((float)notes[2])};
      mf__syn_keys_play(&t->v, t->layer, &organ, at(t, bar * 4), 0.4f, f, 3,
                        dur(t, bar * 4, 4.0 * bpc));
    }
    mf__syn_layer_end(t, g_organ, 0.3f);
  }
}

/* ---- hip-hop (boom bap) ----------------------------------------------------------------- */

/* Kick steps (sixteenths of a bar) of a few boom-bap patterns; -1 ends a list. */
static const int BOOM_KICK[4][5] = {
    {0, 7, 10, -1, -1}, {0, 3, 10, -1, -1}, {0, 8, 10, 14, -1}, {0, 6, 9, 14, -1}};
static const int STAB_STEPS[4][4] = {
    {0, 3, 6, -1}, {0, 6, 11, -1}, {2, 8, 14, -1}, {0, 10, -1, -1}};

void mf__syn_hiphop(track *t) {
  t->bpm = uni(t, 80.0f, 100.0f);
  t->swing_unit = 0.25;
  t->swing = chance(t, 0.75f) ? uni(t, 0.54f, 0.64f) : 0.5;
  t->jitter = uni(t, 0.002f, 0.006f);
  t->start = uni(t, 0.0f, 8.0f) * 60.0 / t->bpm;
  const int mode = pick(t, 20);
  pick_key(t, mode < 12 ? SYN_MINOR : mode < 17 ? SYN_DORIAN : SYN_MAJOR);
  const int *prog = chance(t, 0.3f) ? SYN_PROG_JAZZ[pick(t, 4)]
                    : mode < 17     ? SYN_PROG_MINOR[pick(t, 4)]
                                    : SYN_PROG_MAJOR[pick(t, 4)];
  const int nb = bars(t), bpc = chance(t, 0.5f) ? 1 : 2;
  t->rev_size = uni(t, 0.6f, 0.9f), t->rev_fb = 0.75f, t->rev_damp = 0.5f;
  mf__syn_master_defaults(t, 0.5f, 0.6f, 0.4f, 0.6f);
  mf__syn_draw_break(t, 0.3f, 1, 4); /* the loop alone, drums out */
  const int clean = chance(t, 0.2f); /* a modern, clean production */
  if (clean)
    t->tone_hz = t->vinyl_hiss = 0.0f;
  else if (t->tone_hz > 0.0f)
    t->tone_hz *= 0.6f; /* lo-fi: a dull mix is the rule, not the exception */

  const int *kicks = BOOM_KICK[pick(t, 4)], *stab_steps = STAB_STEPS[pick(t, 4)];
  const float k_hi = uni(t, 80, 120), k_lo = uni(t, 45, 60), k_pt = uni(t, 0.03f, 0.06f),
              k_dec = uni(t, 0.25f, 0.45f), k_click = uni(t, 0.2f, 0.5f);
  const float s_hz = uni(t, 160, 220), s_tone = uni(t, 0.3f, 0.5f), s_dec = uni(t, 0.15f, 0.3f),
              s_bright = uni(t, 1500, 3000), lazy = uni(t, 0.0f, 0.02f);
  const int sixteenths = chance(t, 0.4f), open_hat = chance(t, 0.3f), on_ride = chance(t, 0.15f);
  const int loop = chance(t, 0.3f);
  static const keys_kind STABS[10] = {KEYS_EPIANO, KEYS_EPIANO,  KEYS_EPIANO,  KEYS_PIANO,
                                      KEYS_PIANO,  KEYS_STRINGS, KEYS_STRINGS, KEYS_ORGAN,
                                      KEYS_VIBES,  KEYS_EPIANO};
  const keys stab_keys = mf__syn_keys(t, STABS[pick(t, 10)]);
  const float crush_lp = clean ? 8000.0f : uni(t, 1800, 4000);
  const int crush_hold = clean ? 1 : 1 + pick(t, 3), crush_bits = clean ? 16 : 8 + pick(t, 5);
  const float b_tau = uni(t, 0.4f, 1.0f);
  const float g_kick = vary(t, 1.0f, 0.2f), g_snare = vary(t, 0.8f, 0.3f),
              g_hat = vary(t, 0.27f, 0.5f), g_bass = vary(t, 0.75f, 0.4f),
              g_stab = vary(t, 0.45f, 0.5f);

  mf__syn_layer_begin(t, 1); /* kick */
  const shot kick = mf__syn_kick_shot(t, k_hi, k_lo, k_pt, k_dec, k_click);
  for (int bar = 0; bar < nb; bar++) {
    if (in_break(t, bar)) continue;
    for (int k = 0; k < 5 && kicks[k] >= 0; k++)
      hit(t, kick, bar * 4 + 0.25 * kicks[k], vary(t, 1, 0.08f));
    if (chance(t, 0.3f)) hit(t, kick, bar * 4 + 0.25 * (chance(t, 0.5f) ? 15 : 6), 0.7f);
  }
  mf__syn_layer_end(t, g_kick, 0.0f);

  mf__syn_layer_begin(t, 2); /* a fat, slightly late snare on 2 and 4 */
  const int64_t late = (int64_t)(lazy * t->rate);
  const shot snare = mf__syn_snare_shot(t, s_hz, s_tone, s_dec, s_bright, 0);
  const shot ghost = mf__syn_snare_shot(t, s_hz, s_tone, 0.08f, s_bright, 0);
  for (int bar = 0; bar < nb; bar++) {
    if (in_break(t, bar)) continue;
    for (int b = 1; b < 4; b += 2)
      mf__syn_paste(t, snare, at(t, bar * 4 + b) + late, vary(t, 1, 0.08f));
    if (chance(t, 0.2f))
      hit(t, ghost, bar * 4 + 0.25 * (chance(t, 0.5f) ? 7 : 15), uni(t, 0.15f, 0.3f));
  }
  mf__syn_layer_end(t, g_snare, 0.35f);

  mf__syn_layer_begin(t, 3); /* swung hats, or a jazz ride sampled into the loop */
  const float h_hp = uni(t, 5000, 8000), h_pitch = uni(t, 1.0f, 1.5f);
  const shot closed = mf__syn_metal_shot(t, uni(t, 0.03f, 0.06f), h_hp, h_pitch, 0.6f, 0);
  const shot open = mf__syn_metal_shot(t, 0.2f, h_hp, h_pitch, 0.6f, 0);
  const shot ride = mf__syn_metal_shot(t, uni(t, 0.5f, 1.0f), uni(t, 2500, 5000),
                                       uni(t, 1.2f, 2.0f), 0.3f, uni(t, 0.1f, 0.4f));
  for (int bar = 0; bar < nb; bar++)
    for (int s = 0; s < 16 && !in_break(t, bar); s += sixteenths && !on_ride ? 1 : 2)
      hit(t,
          on_ride                           ? ride
          : open_hat && (s == 6 || s == 14) ? open
                                            : closed,
          bar * 4 + 0.25 * s, vary(t, s % 4 ? 0.55f : 1.0f, 0.2f) * (on_ride ? 0.6f : 1.0f));
  mf__syn_layer_end(t, g_hat, 0.1f);

  mf__syn_layer_begin(t, 4); /* sub bass under the kicks */
  for (int bar = 0; bar < nb; bar++) {
    const int root = into(degree_note(t, 28, chord_at(prog, bpc, bar)), 28);
    for (int k = 0; k < 5 && kicks[k] >= 0; k++) {
      const double beat = bar * 4 + 0.25 * kicks[k];
      const int note = k > 0 && chance(t, 0.2f) ? root + 7 : root;
      mf__syn_fm(&t->v, t->layer, at(t, beat), vary(t, 1, 0.1f), hz((float)note),
                 dur(t, beat, 0.25 * (1 + pick(t, 4))), 1.0f, 0.4f, 0.1f, b_tau, 0.0f);
    }
  }
  for (int64_t i = 0; i < t->n; i++) t->layer[i] = syn_softclip(1.5f * t->layer[i]);
  mf__syn_layer_end(t, g_bass, 0.0f);

  /* Chord stabs: each chord is rendered once as a "sample", degraded like an old sampler,
   * then chopped and pasted on the grid. */
  mf__syn_layer_begin(t, 5);
  shot stab[4];
  for (int c = 0; c < 4; c++) {
    syn_ctx sc;
    float *smp = mf__syn_shot_begin(t, 3.0f, &sc);
    int notes[4];
    float f[4];
    chord_notes(t, 55, prog[c], 4, notes);
    for (int k = 0; k < 4; k++) f[k] = hz((float)notes[k]);
    mf__syn_keys_play(&sc, smp, &stab_keys, 0, 0.3f, f, 4, 2.5f);
    stab[c] = mf__syn_shot_end(t, &sc, smp);
    mf__syn_lowpass(smp, stab[c].len, crush_lp, t->rate);
    mf__syn_crush(smp, stab[c].len, crush_hold, crush_bits, 1.0f);
  }
  const int64_t fade = (int64_t)(0.01f * t->rate) + 1; /* a chop, not a click */
  for (int bar = 0; bar < nb; bar++) {
    const shot smp = stab[(bar / bpc) % 4];
    for (int h = 0; h < 4 && (loop ? h < 1 : stab_steps[h] >= 0); h++) {
      const double beat = bar * 4 + (loop ? 0.0 : 0.25 * stab_steps[h]);
      const int64_t p = at(t, beat);
      int64_t len = (int64_t)(dur(t, beat, loop ? 4.0 : 0.25 * (1 + pick(t, 3))) * t->rate);
      if (len > smp.len) len = smp.len;
      const float v = vary(t, 1, 0.15f);
      const int64_t i0 = p < 0 ? -p : 0, i1 = p + len > t->n ? t->n - p : len;
      for (int64_t i = i0; i < i1; i++) {
        const float g = i > len - fade ? (float)(len - i) / (float)fade : 1.0f;
        t->layer[p + i] += v * g * smp.x[i];
      }
    }
  }
  mf__syn_layer_end(t, g_stab, 0.25f);
}
