/* spectral.h — the STFT -> mel filterbank -> dB pipeline shared by the melspec and mfcc
 * feature plugins (compiled into each .so, and into the feature tests).
 *
 * It reproduces librosa (0.10 / 1.0): librosa.feature.melspectrogram with center=True and
 * zero padding, a periodic Hann window of win_length zero-padded to n_fft and centred, the
 * Slaney (or HTK) mel scale with optional Slaney area normalisation, then power_to_db.
 * Parameter names are librosa's; the sample rate comes from the feature's create().
 *
 * Life cycle, as aubio's: spectral_new() reads the configuration, builds the window, the
 * sparse filterbank and the FFTW plan once; spectral_mel() is then safe to call from several
 * threads at once (every call allocates its own buffers; FFTW's new-array execute functions
 * are thread-safe); spectral_free() releases it.
 *
 *   spectral_cfg cfg;
 *   if (spectral_read_cfg(mf, values, sr, "melspec", &cfg)) return NULL;
 *   spectral *s = spectral_new(mf, &cfg);
 *   int64_t frames = spectral_frames(s, n);              // 1 + n / hop_length (even n_fft)
 *   spectral_mel(s, audio, n, out);                      // [n_mels, frames]
 *
 * The dB reference and the top_db clipping are taken over whatever audio one call is given:
 * a whole track (per-track scope) or one segment (per-segment, the notebooks' behaviour).
 */
#ifndef MF_PLUGIN_SPECTRAL_H
#define MF_PLUGIN_SPECTRAL_H

#include <stdint.h>

#include "melforge/plugin.h"

/* Hot loops are compiled twice, for x86-64-v3 (AVX2 + FMA) and for the baseline the build
 * targets, and the loader picks one for the CPU (GCC function multi-versioning): 8-wide
 * vectors halve their time where AVX2 exists, and the plugin still runs everywhere. Each
 * clone is deterministic; the two may differ in the last bit (FMA contraction). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && \
    !defined(__AVX2__)
#define HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define HOT
#endif

/* The parameters of melspec, which mfcc accepts too (schema entries, in order). */
/* clang-format off */
#define SPECTRAL_PARAMS \
  {"n_fft", MF_PT_INT, "2048", 16, 65536, NULL, "FFT length in samples"}, \
  {"hop_length", MF_PT_INT, "512", 1, 1 << 24, NULL, "samples between successive frames"}, \
  {"win_length", MF_PT_INT, "0", 0, 65536, NULL, \
   "Hann window length, zero-padded to n_fft and centred; 0 = n_fft"}, \
  {"n_mels", MF_PT_INT, "128", 1, 4096, NULL, "mel bands"}, \
  {"fmin", MF_PT_FLOAT, "0", 0, 1e9, NULL, "lowest band edge in Hz"}, \
  {"fmax", MF_PT_FLOAT, "0", 1, 0, NULL, "highest band edge in Hz; 0 or negative = sr/2"}, \
  {"htk", MF_PT_BOOL, "false", 0, 1, NULL, "HTK mel scale instead of Slaney's"}, \
  {"norm", MF_PT_STRING, "slaney", 0, -1, "slaney|none", \
   "slaney: divide each triangle by its width in Hz (constant energy per band)"}, \
  {"power", MF_PT_FLOAT, "2", 0.01, 16, NULL, "exponent of the magnitude: 2 power, 1 magnitude"}, \
  {"db", MF_PT_BOOL, "true", 0, 1, NULL, \
   "output power_to_db: 10 log10(max(amin, S) / ref), clipped at max - top_db"}, \
  {"top_db", MF_PT_FLOAT, "80", 1, 0, NULL, \
   "dB range kept below the maximum; 0 or negative = no clipping"}, \
  {"amin", MF_PT_FLOAT, "1e-10", 1e-30, 1e30, NULL, "floor of S before the logarithm"}, \
  {"ref", MF_PT_FLOAT, "1", 0, 1e30, NULL, \
   "S that maps to 0 dB; 0 = the maximum of S (librosa's ref=np.max)"}
/* clang-format on */

typedef struct spectral_cfg {
  double sr;
  int n_fft, hop_length, win_length;
  int n_mels;
  double fmin, fmax; /* fmax resolved: sr/2 when the parameter is 0 or negative */
  int htk, norm_slaney;
  double power;
  int db;
  double top_db, amin, ref;
} spectral_cfg;

/* Reads the SPECTRAL_PARAMS values and checks what the schema cannot (win_length <= n_fft,
 * fmax <= sr/2, fmin < fmax); MF_EINVAL with a message naming `who` and the parameter. */
mf_status spectral_read_cfg(const mf_api *mf, const mf_values *v, double sr, const char *who,
                            spectral_cfg *cfg);

typedef struct spectral spectral;

/* NULL with the error set through mf when the configuration is invalid or memory runs out. */
spectral *spectral_new(const mf_api *mf, const spectral_cfg *cfg);
void spectral_free(spectral *s);
const spectral_cfg *spectral_config(const spectral *s);
int spectral_n_bins(const spectral *s); /* 1 + n_fft / 2 */

/* Frames of the centred STFT of n samples (librosa: 1 + n / hop_length for an even n_fft,
 * so n = 0 gives one frame of padding). 0 when there is none (only n = 0 with an odd n_fft). */
int64_t spectral_frames(const spectral *s, int64_t n);

/* The mel spectrogram [n_mels, frames] of n samples: S (cfg.power) or power_to_db(S) (cfg.db).
 * Thread-safe. MF_ENOMEM, or MF_EINVAL when n gives no frame. */
mf_status spectral_mel(const spectral *s, const float *audio, int64_t n, float *out);

/* |X_k|^2 of the STFT, [frames, n_bins]: what the filterbank is applied to (before the
 * cfg.power exponent). For tests and analysis; thread-safe. */
mf_status spectral_stft_power(const spectral *s, const float *audio, int64_t n, float *out);

/* The filterbank as used, dense [n_mels, n_bins] (float32 weights, as librosa.filters.mel). */
void spectral_filterbank(const spectral *s, float *out);

/* Hz <-> mel on the Slaney (htk = 0) or HTK (htk = 1) scale, as librosa's hz_to_mel. */
double spectral_hz_to_mel(double hz, int htk);
double spectral_mel_to_hz(double mel, int htk);

/* power_to_db in place over x[0, n): 10 log10(max(amin, x) / ref) clipped at max - top_db,
 * with cfg's amin, ref (0 = max of x) and top_db (<= 0: no clipping). */
void spectral_power_to_db(const spectral_cfg *cfg, float *x, int64_t n);

/* ---- deltas (librosa.feature.delta) -------------------------------------------------------- */

/* Savitzky-Golay derivative of `order` (1 or 2; polyorder = order) over `width` frames (odd,
 * > order), with scipy.signal.savgol_filter's mode 'interp' at the edges: the polynomial
 * fitted to the first / last `width` frames gives the derivative of the first / last
 * width / 2 frames. */
typedef struct delta_filter {
  int width, order;
  double *interior; /* [width], weight of x[t + j - width / 2] */
  double *edge;     /* [2 * (width / 2)][width]: rows for frames 0.. and for the last frames */
} delta_filter;

mf_status delta_filter_init(const mf_api *mf, int width, int order, delta_filter *f);
void delta_filter_release(delta_filter *f);
/* y[t * ys + c] = derivative along t of x[t * xs + c] for t < frames, c < n; frames must be
 * >= width. tmp: n doubles of scratch. */
void delta_filter_apply(const delta_filter *f, const float *x, int64_t xs, int64_t frames, int n,
                        float *y, int64_t ys, double *tmp);

#endif
