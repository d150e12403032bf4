/* synth_dsp.c — drum and instrument voices and the effects of the demo-corpus generator.
 *
 * Every voice runs its oscillators from the note's first sample even when the excerpt
 * starts later, so a note sounds the same wherever the excerpt cuts it; the clip helper
 * decides which of its samples land in the buffer.
 */
#include <stdlib.h>

#include "synth_dsp.h"

/* The samples [*i0, *i1) of a note of len samples struck at pos that fall inside [0, n).
 * Returns 0 when none do. */
static int clip(int64_t pos, int64_t len, int64_t n, int64_t *i0, int64_t *i1) {
  if (pos >= n || pos + len <= 0) return 0;
  *i0 = pos < 0 ? -pos : 0;
  *i1 = pos + len > n ? n - pos : len;
  return 1;
}

static float maxf(float a, float b) { return a > b ? a : b; }
static float minf(float a, float b) { return a < b ? a : b; }

void mf__syn_kick(syn_ctx *c, float *out, int64_t pos, float amp, float f_hi, float f_lo,
                  float pitch_tau, float decay_tau, float click) {
  const float rate = c->rate, inv_rate = 1.0f / rate;
  int64_t len = (int64_t)(6.9f * decay_tau * rate) + 1, i0, i1;
  if (!clip(pos, len, c->n, &i0, &i1)) return;
  const float pc = syn_decay_coef(pitch_tau, rate), ac = syn_decay_coef(decay_tau, rate);
  const float cc = syn_decay_coef(0.004f, rate), lpc = syn_onepole_coef(3000.0f, rate);
  float sweep = f_hi - f_lo, ph = 0.0f, env = amp, cenv = amp * click, lp = 0.0f;
  for (int64_t i = 0; i < i1; i++) {
    lp += lpc * (syn_noise(c) - lp);
    float y = syn_sin(ph) * env + lp * cenv;
    ph += (f_lo + sweep) * inv_rate;
    if (ph >= 1.0f) ph -= 1.0f;
    sweep *= pc;
    env *= ac;
    cenv *= cc;
    if (i >= i0) out[pos + i] += y;
  }
}

void mf__syn_snare(syn_ctx *c, float *out, int64_t pos, float amp, float tone_hz, float tone,
                   float decay_tau, float bright_hz, int clap) {
  const float rate = c->rate, inv_rate = 1.0f / rate, tone_tau = 0.05f;
  const int64_t burst = (int64_t)(0.011f * rate); /* a clap is three hands, ~11 ms apart */
  int64_t len = (int64_t)(6.9f * maxf(decay_tau, tone_tau) * rate) + (clap ? 3 * burst : 0) + 1;
  int64_t i0, i1;
  if (!clip(pos, len, c->n, &i0, &i1)) return;
  syn_svf f = {0};
  syn_svf_set(&f, bright_hz, 0.8f, rate);
  const float nc = syn_decay_coef(decay_tau, rate), tc = syn_decay_coef(tone_tau, rate);
  const float bc = syn_decay_coef(0.006f, rate), pc = syn_decay_coef(0.012f, rate);
  float nenv = amp * (1.0f - tone), tenv = amp * tone, ph = 0.0f, bend = 0.6f;
  for (int64_t i = 0; i < i1; i++) {
    float bp, x = syn_noise(c);
    float lp = syn_svf_tick(&f, x, &bp);
    float hp = x - f.k * bp - lp;
    float y = (hp + 0.5f * bp) * nenv + syn_sin(ph) * tenv;
    ph += tone_hz * (1.0f + bend) * inv_rate;
    if (ph >= 1.0f) ph -= 1.0f;
    bend *= pc;
    tenv *= tc;
    if (clap && i < 3 * burst) {
      nenv *= bc;
      if (i % burst == burst - 1) nenv = amp * (1.0f - tone);
    } else {
      nenv *= nc;
    }
    if (i >= i0) out[pos + i] += y;
  }
}

/* Frequencies of the six square waves of an analogue cymbal, relative to 205.3 Hz. */
static const float METAL_RATIO[6] = {1.0f, 1.4827f, 1.8003f, 2.546f, 2.6303f, 3.8967f};

void mf__syn_metal(syn_ctx *c, float *out, int64_t pos, float amp, float decay_tau, float hp_hz,
                   float pitch, float noise, float bell) {
  const float rate = c->rate, inv_rate = 1.0f / rate;
  int64_t len = (int64_t)(6.0f * decay_tau * rate) + 1, i0, i1;
  if (!clip(pos, len, c->n, &i0, &i1)) return;
  float ph[6], inc[6];
  for (int k = 0; k < 6; k++) {
    ph[k] = 0.5f * (syn_noise(c) + 1.0f);
    inc[k] = 205.3f * pitch * METAL_RATIO[k] * inv_rate;
  }
  float bph = 0.0f, bph2 = 0.0f;
  const float binc = 820.0f * pitch * inv_rate, binc2 = 2.31f * binc;
  syn_svf f = {0};
  syn_svf_set(&f, hp_hz, 0.9f, rate);
  const float ac = syn_decay_coef(decay_tau, rate), bc = syn_decay_coef(0.6f * decay_tau, rate);
  float env = amp, benv = amp * bell;
  const float square = (1.0f - noise) / 6.0f;
  for (int64_t i = 0; i < i1; i++) {
    float s = 0.0f;
    for (int k = 0; k < 6; k++) {
      s += ph[k] < 0.5f ? 1.0f : -1.0f;
      ph[k] += inc[k];
      if (ph[k] >= 1.0f) ph[k] -= 1.0f;
    }
    float x = s * square + noise * syn_noise(c), bp;
    float lp = syn_svf_tick(&f, x, &bp);
    float y = (x - f.k * bp - lp) * env;
    if (bell > 0.0f) {
      y += (syn_sin(bph) + 0.5f * syn_sin(bph2)) * benv;
      bph += binc;
      if (bph >= 1.0f) bph -= 1.0f;
      bph2 += binc2;
      if (bph2 >= 1.0f) bph2 -= 1.0f;
      benv *= bc;
    }
    env *= ac;
    if (i >= i0) out[pos + i] += y;
  }
}

void mf__syn_brush(syn_ctx *c, float *out, int64_t pos, float amp, float attack_s, float decay_tau,
                   float center_hz) {
  const float rate = c->rate;
  const int64_t att = (int64_t)(attack_s * rate) + 1;
  int64_t len = att + (int64_t)(6.9f * decay_tau * rate), i0, i1;
  if (!clip(pos, len, c->n, &i0, &i1)) return;
  syn_svf f = {0};
  syn_svf_set(&f, center_hz, 0.7f, rate);
  const float dc = syn_decay_coef(decay_tau, rate), inv_att = 1.0f / (float)att;
  float env = 0.0f;
  for (int64_t i = 0; i < i1; i++) {
    float bp;
    (void)syn_svf_tick(&f, syn_noise(c), &bp);
    if (i < att)
      env = amp * (float)i * inv_att;
    else
      env *= dc;
    if (i >= i0) out[pos + i] += bp * env;
  }
}

void mf__syn_pluck(syn_ctx *c, float *out, int64_t pos, float amp, float freq, float dur,
                   float bright, float decay_tau) {
  const float rate = c->rate;
  /* Loop filter: two taps (a, 1 - a) whose group delay 1 - a is taken off the line. */
  const float a = 0.5f + 0.5f * minf(maxf(bright, 0.0f), 0.98f);
  const float delay = rate / freq - (1.0f - a);
  if (delay < 2.0f || delay + 3.0f > (float)c->ks_cap) return;
  const float ring = minf(dur, 6.9f * decay_tau);
  int64_t len = (int64_t)((ring + 0.3f) * rate) + 1, i0, i1;
  if (!clip(pos, len, c->n, &i0, &i1)) return;
  const int di = (int)delay;
  const float df = delay - (float)di, g = expf(-1.0f / (decay_tau * freq));
  const int64_t mask = c->ks_cap - 1, gate = (int64_t)(ring * rate);
  float *d = c->ks;
  /* Excitation: the string's shape when released, a triangle peaking a fifth of the way
   * along (strong low harmonics, as a finger gives), blended with noise for a pick's
   * brightness. */
  const int p = di + 2;
  const float lpc = syn_onepole_coef(300.0f + 5000.0f * bright * bright, rate);
  const float apex = 0.2f * (float)p;
  float lp = 0.0f, mean = 0.0f;
  for (int j = 0; j < p; j++) {
    lp += lpc * (syn_noise(c) - lp);
    const float x = (float)j;
    const float tri = x < apex ? x / apex : ((float)p - x) / ((float)p - apex);
    d[j] = (1.0f - bright) * tri + bright * 2.0f * lp;
    mean += d[j];
  }
  mean /= (float)p;
  for (int j = 0; j < p; j++) d[j] -= mean;
  int64_t w = p;
  float prev = 0.0f, rel = amp;
  const float rc = syn_decay_coef(0.03f, rate);
  for (int64_t i = 0; i < i1; i++, w++) {
    float r = d[(w - di - 1) & mask] * df + d[(w - di) & mask] * (1.0f - df);
    d[w & mask] = g * (a * r + (1.0f - a) * prev);
    prev = r;
    if (i >= gate) rel *= rc;
    if (i >= i0) out[pos + i] += r * rel;
  }
}

void mf__syn_fm(syn_ctx *c, float *out, int64_t pos, float amp, float freq, float dur, float ratio,
                float index, float index_tau, float amp_tau, float tine) {
  const float rate = c->rate, inv_rate = 1.0f / rate;
  const float ring = minf(dur, 6.9f * amp_tau);
  int64_t len = (int64_t)((ring + 0.5f) * rate) + 1, i0, i1;
  if (!clip(pos, len, c->n, &i0, &i1)) return;
  const int64_t att = (int64_t)(0.003f * rate) + 1, gate = (int64_t)(ring * rate);
  const float dc = inv_rate * freq, dm = dc * ratio, dt = 7.0f * dc;
  if (7.0f * freq > 0.45f * rate) tine = 0.0f;
  const float ac = syn_decay_coef(amp_tau, rate), rc = syn_decay_coef(0.07f, rate);
  const float ic = syn_decay_coef(index_tau, rate), tc = syn_decay_coef(0.03f, rate);
  float pc = 0.0f, pm = 0.0f, pt = 0.0f, env = 0.0f, top = amp, idx = index / (2.0f * SYN_PI);
  float tenv = amp * tine;
  const int64_t tine_len = tine > 0.0f ? (int64_t)(0.25f * rate) : 0;
  for (int64_t i = 0; i < i1; i++) {
    if (i < att)
      env = top * (float)i / (float)att;
    else if (i < gate)
      env = top, top *= ac;
    else
      env *= rc;
    float y = syn_sin(syn_wrap(pc + idx * syn_sin(pm))) * env;
    pc += dc;
    if (pc >= 1.0f) pc -= 1.0f;
    pm += dm;
    if (pm >= 1.0f) pm -= 1.0f;
    idx *= ic;
    if (i < tine_len) { /* the tine rings for a few tens of milliseconds */
      y += syn_sin(pt) * tenv;
      pt += dt;
      if (pt >= 1.0f) pt -= 1.0f;
      tenv *= tc;
    }
    if (i >= i0) out[pos + i] += y;
  }
}

/* Twelve partials as three 4-lane vectors: one damped-resonator step of all of them is a
 * few vector instructions, and the three lanes groups are independent chains. */
typedef float v4f __attribute__((vector_size(16)));
#define PIANO_VECS 3
#define PIANO_BLOCK 32

void mf__syn_piano(syn_ctx *c, float *out, int64_t pos, float amp, float freq, float dur,
                   float bright) {
  const float rate = c->rate;
  /* Low strings ring longer; the higher partials of every string die sooner. */
  const float tau1 = minf(maxf(2.6f * sqrtf(220.0f / freq), 0.5f), 5.0f);
  const float ring = minf(dur, 5.0f * tau1);
  int64_t len = (int64_t)((ring + 0.6f) * rate) + 1, i0, i1;
  if (!clip(pos, len, c->n, &i0, &i1)) return;
  const float b = 0.0004f; /* inharmonicity of a stiff string: f_k = k f sqrt(1 + b k^2) */
  float w[4 * PIANO_VECS] = {0}, wsum = 0.0f;
  for (int k = 1; k <= 4 * PIANO_VECS; k++) {
    float fk = (float)k * freq * sqrtf(1.0f + b * (float)(k * k));
    if (fk > 0.45f * rate) break;
    w[k - 1] = powf((float)k, -(1.7f - 0.9f * bright));
    wsum += w[k - 1];
  }
  v4f c1[PIANO_VECS], c2[PIANO_VECS], p1[PIANO_VECS], p2[PIANO_VECS];
  for (int v = 0; v < PIANO_VECS; v++) {
    for (int l = 0; l < 4; l++) {
      const int k = 4 * v + l + 1;
      float fk = (float)k * freq * sqrtf(1.0f + b * (float)(k * k));
      float tau = tau1 / minf(1.0f + 0.3f * (float)(k - 1) * (1.0f + freq / 700.0f), 6.0f);
      float om = 2.0f * SYN_PI * minf(fk, 0.45f * rate) / rate, r = syn_decay_coef(tau, rate);
      /* Damped resonator y[n] = 2 r cos(om) y[n-1] - r^2 y[n-2] rings as A r^n sin(om n). */
      c1[v][l] = w[k - 1] > 0.0f ? 2.0f * r * cosf(om) : 0.0f;
      c2[v][l] = w[k - 1] > 0.0f ? r * r : 0.0f;
      p1[v][l] = 0.0f;
      p2[v][l] = -(w[k - 1] / wsum) * sinf(om) / r;
    }
  }
  const int64_t gate = (int64_t)(ring * rate), thump = (int64_t)(0.03f * rate);
  const float rc = syn_decay_coef(0.12f, rate), hc = syn_decay_coef(0.004f, rate);
  const float lpc = syn_onepole_coef(1000.0f + 2500.0f * bright, rate);
  float rel = amp, henv = amp * 0.08f * (0.5f + bright), lp = 0.0f;
  for (int64_t b0 = 0; b0 < i1; b0 += PIANO_BLOCK) {
    v4f acc[PIANO_BLOCK];
    for (int i = 0; i < PIANO_BLOCK; i++) {
      v4f sum = {0, 0, 0, 0};
      for (int v = 0; v < PIANO_VECS; v++) {
        v4f y = c1[v] * p1[v] - c2[v] * p2[v];
        p2[v] = p1[v];
        p1[v] = y;
        sum += y;
      }
      acc[i] = sum;
    }
    const int64_t b1 = b0 + PIANO_BLOCK < i1 ? b0 + PIANO_BLOCK : i1;
    for (int64_t i = b0; i < b1; i++) {
      const v4f a = acc[i - b0];
      float s = ((a[0] + a[1]) + (a[2] + a[3])) * rel;
      if (i < thump) { /* the hammer's thump is over in a few milliseconds */
        lp += lpc * (syn_noise(c) - lp);
        s += lp * henv;
        henv *= hc;
      }
      if (i >= gate) rel *= rc;
      if (i >= i0) out[pos + i] += s;
    }
  }
}

#define VOICE_BLOCK 32
#define VOICE_MAX_OSC 32

/* Adds the block of one oscillator, phase ph, increment dt, into acc[0 .. VOICE_BLOCK):
 * branch-free (the PolyBLEP corrections are selects), so it vectorises. Returns the phase
 * after the block. */
static float osc_block(float *restrict acc, float ph, float dt, float square) {
  const float inv_dt = 1.0f / dt, gain = 1.0f - square;
  for (int i = 0; i < VOICE_BLOCK; i++) {
    float t = ph + (float)i * dt;
    t -= (float)(int32_t)t;
    float x1 = t * inv_dt, x2 = (t - 1.0f) * inv_dt;
    float b1 = t < dt ? x1 + x1 - x1 * x1 - 1.0f : 0.0f;
    float b2 = t > 1.0f - dt ? x2 * x2 + x2 + x2 + 1.0f : 0.0f;
    acc[i] += gain * (2.0f * t - 1.0f - b1 - b2);
  }
  if (square > 0.0f) {
    for (int i = 0; i < VOICE_BLOCK; i++) {
      float t = ph + (float)i * dt;
      t -= (float)(int32_t)t;
      float t2 = t + 0.5f;
      t2 -= (float)(int32_t)t2;
      float x1 = t * inv_dt, x2 = (t - 1.0f) * inv_dt;
      float y1 = t2 * inv_dt, y2 = (t2 - 1.0f) * inv_dt;
      float b = (t < dt ? x1 + x1 - x1 * x1 - 1.0f : 0.0f) +
                (t > 1.0f - dt ? x2 * x2 + x2 + x2 + 1.0f : 0.0f);
      float b2 = (t2 < dt ? y1 + y1 - y1 * y1 - 1.0f : 0.0f) +
                 (t2 > 1.0f - dt ? y2 * y2 + y2 + y2 + 1.0f : 0.0f);
      acc[i] += square * ((t < 0.5f ? 1.0f : -1.0f) + b - b2);
    }
  }
  ph += (float)VOICE_BLOCK * dt;
  return ph - (float)(int32_t)ph;
}

void mf__syn_chord(syn_ctx *c, float *out, int64_t pos, float amp, const float *freq, int n_freq,
                   float dur, const syn_patch *p) {
  const float rate = c->rate, inv_rate = 1.0f / rate;
  int64_t len = syn_env_length(&p->env, dur, rate), i0, i1;
  if (!clip(pos, len, c->n, &i0, &i1)) return;
  const int n_osc = p->osc < 1 ? 1 : p->osc > 4 ? 4 : p->osc;
  if (n_freq > VOICE_MAX_OSC / n_osc) n_freq = VOICE_MAX_OSC / n_osc;
  float ph[VOICE_MAX_OSC], ratio[VOICE_MAX_OSC], sub_ph[VOICE_MAX_OSC] = {0};
  for (int j = 0; j < n_freq * n_osc; j++) {
    const int o = j % n_osc;
    ph[j] = 0.5f * (syn_noise(c) + 1.0f);
    float cents = n_osc > 1 ? p->detune * ((float)o / (float)(n_osc - 1) - 0.5f) : 0.0f;
    ratio[j] = freq[j / n_osc] * exp2f(cents / 1200.0f);
  }
  syn_env env;
  syn_env_init(&env, &p->env, dur, rate);
  syn_svf f = {0};
  const float fcoef = syn_decay_coef(p->fenv_tau > 1e-4f ? p->fenv_tau : 1e-4f, rate);
  const float fblock = powf(fcoef, (float)VOICE_BLOCK), vinc = p->vib_rate * inv_rate * VOICE_BLOCK;
  const float norm = 1.0f / (float)n_osc, sq = p->square, sub = p->sub;
  float fenv = p->fenv, vph = 0.0f;
  for (int64_t b0 = 0; b0 < i1; b0 += VOICE_BLOCK) {
    /* Cutoff and pitch move slowly: update them per block, not per sample. */
    syn_svf_set(&f, p->cutoff + fenv, p->q, rate);
    fenv *= fblock;
    float bend = p->vib_cents != 0.0f ? exp2f(p->vib_cents * syn_sin(vph) / 1200.0f) : 1.0f;
    vph += vinc;
    vph -= (float)(int32_t)vph;
    float acc[VOICE_BLOCK] = {0};
    for (int j = 0; j < n_freq * n_osc; j++)
      ph[j] = osc_block(acc, ph[j], minf(ratio[j] * bend * inv_rate, 0.45f), sq);
    if (sub != 0.0f) {
      for (int k = 0; k < n_freq; k++) {
        const float sdt = 0.5f * freq[k] * bend * inv_rate;
        for (int i = 0; i < VOICE_BLOCK; i++) {
          float t = sub_ph[k] + (float)i * sdt;
          acc[i] += sub * n_osc * syn_sin(t - (float)(int32_t)t);
        }
        sub_ph[k] += (float)VOICE_BLOCK * sdt;
        sub_ph[k] -= (float)(int32_t)sub_ph[k];
      }
    }
    const int64_t b1 = b0 + VOICE_BLOCK < i1 ? b0 + VOICE_BLOCK : i1;
    for (int64_t i = b0; i < b1; i++) {
      float bp, y = syn_svf_tick(&f, acc[i - b0] * norm, &bp);
      float e = syn_env_next(&env);
      if (i >= i0) out[pos + i] += amp * e * y;
    }
  }
}

void mf__syn_voice(syn_ctx *c, float *out, int64_t pos, float amp, float freq, float dur,
                   const syn_patch *p) {
  mf__syn_chord(c, out, pos, amp, &freq, 1, dur, p);
}

int mf__syn_reverb(const float *in, float *out, int64_t n, float rate, float size, float feedback,
                   float damp, float gain) {
  static const int COMB[4] = {1116, 1188, 1277, 1356}, ALLPASS[2] = {556, 441};
  const float scale = rate / 44100.0f * size;
  int len[6], total = 0;
  for (int j = 0; j < 6; j++) {
    len[j] = (int)((float)(j < 4 ? COMB[j] : ALLPASS[j - 4]) * scale);
    if (len[j] < 1) len[j] = 1;
    total += len[j];
  }
  float *mem = calloc((size_t)total, sizeof *mem);
  if (!mem) return -1;
  float *buf[6];
  int idx[6] = {0};
  buf[0] = mem;
  for (int j = 1; j < 6; j++) buf[j] = buf[j - 1] + len[j - 1];
  /* Four combs at feedback g carry about 4 / (1 - g^2) times the input power. */
  const float in_gain = gain * sqrtf((1.0f - feedback * feedback) / 4.0f);
  float store[4] = {0};
  for (int64_t i = 0; i < n; i++) {
    /* The tiny offset keeps the recirculating tails out of denormal range in silences. */
    float x = in[i] * in_gain + 1e-18f, acc = 0.0f;
    for (int j = 0; j < 4; j++) {
      float y = buf[j][idx[j]];
      store[j] = y * (1.0f - damp) + store[j] * damp;
      buf[j][idx[j]] = x + store[j] * feedback;
      if (++idx[j] == len[j]) idx[j] = 0;
      acc += y;
    }
    for (int j = 4; j < 6; j++) {
      float b = buf[j][idx[j]];
      buf[j][idx[j]] = acc + 0.5f * b;
      acc = b - acc;
      if (++idx[j] == len[j]) idx[j] = 0;
    }
    out[i] += acc;
  }
  free(mem);
  return 0;
}

void mf__syn_lowpass(float *x, int64_t n, float fc, float rate) {
  const float a = syn_onepole_coef(fc, rate);
  float y = 0.0f;
  for (int64_t i = 0; i < n; i++) x[i] = y += a * (x[i] - y);
}

void mf__syn_highpass(float *x, int64_t n, float fc, float rate) {
  const float a = syn_onepole_coef(fc, rate);
  float y = 0.0f;
  for (int64_t i = 0; i < n; i++) {
    y += a * (x[i] - y);
    x[i] -= y;
  }
}

void mf__syn_crush(float *x, int64_t n, int hold, int bits, float full) {
  const float q = full / (float)(1 << (bits - 1)), inv = 1.0f / q;
  float held = 0.0f;
  for (int64_t i = 0; i < n; i++) {
    if (i % hold == 0) {
      float v = x[i] * inv;
      held = (float)(int32_t)(v + (v >= 0.0f ? 0.5f : -0.5f)) * q;
    }
    x[i] = held;
  }
}

void mf__syn_vinyl(syn_ctx *c, float *out, int64_t n, float hiss, float clicks_per_s, float click) {
  const float rate = c->rate, lpc = syn_onepole_coef(2500.0f, rate);
  const uint32_t thresh = (uint32_t)minf(clicks_per_s / rate * 4294967296.0f, 4.0e9f);
  float lp = 0.0f, hp = 0.0f, ck = 0.0f;
  const float hpc = syn_onepole_coef(200.0f, rate);
  for (int64_t i = 0; i < n; i++) {
    lp += lpc * (syn_noise(c) - lp);
    hp += hpc * (lp - hp);
    if (syn_u32(c) < thresh) {
      float u = 0.5f * (syn_noise(c) + 1.0f);
      ck = click * (0.15f + 0.85f * u * u * u) * (syn_noise(c) < 0.0f ? -1.0f : 1.0f);
    }
    out[i] += hiss * (lp - hp) + ck;
    ck *= -0.55f; /* a crackle is a few alternating samples, mostly high frequency */
  }
}
