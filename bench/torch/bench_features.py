#!/usr/bin/python3
# Copied from shared/peers/torch/bench_features.py (the PyTorch CPU baseline written for melforge's
# comparison by the project's torch peer), unchanged below this header, so the comparison
# does not depend on files outside the repository. bench/compare_torch.sh runs it against
# `melforge bench`; bench/README.md says what both measure.
"""bench_features.py - log-mel spectrogram and MFCC throughput for 30 s tracks.

Parameters follow librosa's defaults as used by GTZAN-style pipelines:
sr 22050, n_fft 2048, hop 512, periodic Hann window, center=True with zero
('constant') padding (librosa >= 0.10 default), power 2, 128 Slaney mel bands
(htk=False, norm='slaney', fmin 0, fmax sr/2), power_to_db (ref 1.0,
amin 1e-10, top_db 80), MFCC = DCT-II (norm='ortho') of the log-mel, first 13.
librosa is not installed; its filters.mel / hz_to_mel / mel_to_hz are
re-implemented below in numpy, line for line.

Implementations timed (one 30 s track per call unless noted):
  torch : torch.stft (pocketfft in this build) + |X|^2 + mel matmul + log
  scipy : sliding-window frames * window -> scipy.fft.rfft (float32) + mel matmul (OpenBLAS)
  numpy : same with numpy.fft.rfft (always float64/complex128 inside)
with 1 and 2 threads (torch.set_num_threads / scipy workers / threadpoolctl for BLAS).
tracks/s = median of 3 repeats, each >= --seconds long; repeats during which
other processes used > 0.25 cores are retried and left out of the median
("clean" column = how many of the 3 wanted were clean).

Usage: /usr/bin/python3 bench_features.py [--out features.json] [--seconds 1.5]
"""
import argparse
import json
import os
import statistics
import time

import numpy as np
import scipy.fft

SR = 22050
N_FFT = 2048
HOP = 512
N_MELS = 128
N_MFCC = 13
DUR = 30.0
HERE = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------- librosa-equivalent mel
def hz_to_mel(f):
    f = np.asanyarray(f, dtype=np.float64)
    f_min, f_sp = 0.0, 200.0 / 3
    mels = (f - f_min) / f_sp
    min_log_hz = 1000.0
    min_log_mel = (min_log_hz - f_min) / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(f >= min_log_hz,
                    min_log_mel + np.log(np.maximum(f, 1e-300) / min_log_hz) / logstep, mels)


def mel_to_hz(m):
    m = np.asanyarray(m, dtype=np.float64)
    f_min, f_sp = 0.0, 200.0 / 3
    freqs = f_min + f_sp * m
    min_log_hz = 1000.0
    min_log_mel = (min_log_hz - f_min) / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


def slaney_mel_filterbank(sr=SR, n_fft=N_FFT, n_mels=N_MELS, fmin=0.0, fmax=None):
    """== librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, htk=False, norm='slaney')."""
    if fmax is None:
        fmax = sr / 2.0
    fftfreqs = np.linspace(0, sr / 2.0, 1 + n_fft // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float64)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels])
    weights *= enorm[:, np.newaxis]
    return weights.astype(np.float32)


def dct_ortho_matrix(n_out=N_MFCC, n_in=N_MELS):
    """Rows of scipy.fft.dct(type=2, norm='ortho') as a matrix (n_out x n_in)."""
    n = np.arange(n_in)
    k = np.arange(n_out)[:, None]
    m = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    m[0] *= 1.0 / np.sqrt(2.0)
    return m.astype(np.float32)


def hann_periodic(n=N_FFT):
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


def make_track(seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * DUR)) / SR
    y = 0.1 * rng.standard_normal(t.size)
    for f in (110.0, 220.0, 440.0, 880.0, 1760.0, 3520.0):
        y += 0.2 * np.sin(2 * np.pi * f * t) * (1 + np.sin(2 * np.pi * 0.5 * t))
    return (y / np.abs(y).max()).astype(np.float32)


# ---------------------------------------------------------------- numpy / scipy pipeline
MEL = slaney_mel_filterbank()
MEL_T = np.ascontiguousarray(MEL.T)        # 1025 x 128
DCT = dct_ortho_matrix()
DCT_T = np.ascontiguousarray(DCT.T)
WIN = hann_periodic()


def power_to_db_np(s, top_db=80.0):
    d = 10.0 * np.log10(np.maximum(s, 1e-10))
    return np.maximum(d, d.max() - top_db)


def logmel_np(y, fft="scipy", workers=1):
    yp = np.pad(y, (N_FFT // 2, N_FFT // 2))               # center=True, constant pad
    frames = np.lib.stride_tricks.sliding_window_view(yp, N_FFT)[::HOP] * WIN   # T x n_fft
    if fft == "scipy":
        x = scipy.fft.rfft(frames, axis=-1, workers=workers)    # complex64
    else:
        x = np.fft.rfft(frames, axis=-1)                        # complex128
    p = (x.real ** 2 + x.imag ** 2).astype(np.float32, copy=False)   # T x 1025
    return power_to_db_np(p @ MEL_T)                           # T x 128 (frames-major)


def mfcc_np(y, fft="scipy", workers=1):
    return logmel_np(y, fft, workers) @ DCT_T                   # T x 13


# ---------------------------------------------------------------- torch pipeline
def torch_funcs():
    import torch
    mel = torch.from_numpy(MEL)
    dct = torch.from_numpy(DCT)
    win = torch.hann_window(N_FFT, periodic=True)

    def logmel(y):                       # y: (n,) or (B, n) float32
        x = torch.stft(y, N_FFT, HOP, window=win, center=True, pad_mode="constant",
                       return_complex=True)                    # (..., 1025, T)
        p = torch.view_as_real(x).pow(2).sum(-1)
        s = torch.matmul(mel, p)                                # (..., 128, T)
        d = 10.0 * torch.log10(torch.clamp(s, min=1e-10))
        mx = d.amax(dim=(-2, -1), keepdim=True)
        return torch.maximum(d, mx - 80.0)

    def mfcc(y):
        return torch.matmul(dct, logmel(y))                     # (..., 13, T)

    return logmel, mfcc


# ---------------------------------------------------------------- timing
def rate(fn, n_tracks, seconds, repeats=3, max_extra=4, threshold=0.25):
    """Median tracks/s over repeats during which other processes used <= threshold
    cores; contaminated repeats are retried (up to max_extra) after a short wait."""
    from loadmon import LoadMon, wait_quiet
    for _ in range(2):
        fn()
    t0 = time.perf_counter()
    fn()
    one = time.perf_counter() - t0
    n = max(3, int(seconds / max(one, 1e-6)))
    rs, fr, clean = [], [], []
    attempts = 0
    while len(clean) < repeats and attempts < repeats + max_extra:
        if attempts >= repeats:
            wait_quiet(20, threshold=threshold / 2, probe_s=1.0)
            fn()
        attempts += 1
        with LoadMon() as lm:
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            r = n * n_tracks / (time.perf_counter() - t0)
        rs.append(r)
        fr.append(lm.foreign_cores)
        if lm.foreign_cores <= threshold:
            clean.append(r)
    return statistics.median(clean or rs), rs, fr, len(clean)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "features.json"))
    ap.add_argument("--seconds", type=float, default=1.5)
    args = ap.parse_args()

    import torch
    from threadpoolctl import threadpool_limits
    torch.set_num_interop_threads(1)
    y = make_track()
    logmel_t, mfcc_t = torch_funcs()
    yt = torch.from_numpy(y)
    yb = torch.from_numpy(np.stack([make_track(s) for s in range(8)]))

    # --- correctness cross-checks
    ref = logmel_np(y, "numpy")                                  # float64 FFT path
    d_scipy = np.abs(logmel_np(y, "scipy") - ref).max()
    with torch.no_grad():
        lt = logmel_t(yt).numpy().T
        mt = mfcc_t(yt).numpy().T
    d_torch = np.abs(lt - ref).max()
    mf_ref = scipy.fft.dct(ref.astype(np.float64), type=2, norm="ortho", axis=-1)[:, :N_MFCC]
    d_mfcc = np.abs(mt - mf_ref).max()
    checks = dict(frames=int(ref.shape[0]), logmel_shape=list(ref.T.shape),
                  max_abs_db_diff_scipy32_vs_numpy64=float(d_scipy),
                  max_abs_db_diff_torch_vs_numpy64=float(d_torch),
                  max_abs_diff_mfcc_torch_vs_scipy_dct=float(d_mfcc),
                  melfb_row_sum_first_last=[float(MEL[0].sum()), float(MEL[-1].sum())],
                  melfb_nonzero=int((MEL > 0).sum()))
    print("checks:", json.dumps(checks))

    rows = []
    for thr in (1, 2):
        torch.set_num_threads(thr)
        with torch.no_grad():
            for what, fn, n in (("logmel", lambda: logmel_t(yt), 1),
                                ("mfcc13", lambda: mfcc_t(yt), 1),
                                ("logmel", lambda: logmel_t(yb), 8)):
                med, rs, fr, nc = rate(fn, n, args.seconds)
                rows.append(dict(impl="torch.stft + mel matmul" + (" (batch 8)" if n > 1 else ""),
                                 feature=what, threads=thr, tracks_per_s=round(med, 1),
                                 foreign_cores=[round(x, 2) for x in fr], clean_repeats=nc,
                                 repeats=[round(r, 1) for r in rs]))
        with threadpool_limits(limits=thr, user_api="blas"):
            for fft in ("scipy", "numpy"):
                for what, fn in (("logmel", lambda: logmel_np(y, fft, thr)),
                                 ("mfcc13", lambda: mfcc_np(y, fft, thr))):
                    med, rs, fr, nc = rate(fn, 1, args.seconds)
                    impl = ("scipy.fft.rfft(f32, workers=%d)" % thr if fft == "scipy"
                            else "numpy.fft.rfft(f64)") + " + OpenBLAS mel matmul"
                    rows.append(dict(impl=impl, feature=what, threads=thr,
                                     tracks_per_s=round(med, 1),
                                     foreign_cores=[round(x, 2) for x in fr], clean_repeats=nc,
                                     repeats=[round(r, 1) for r in rs]))
    hdr = "%-58s %-7s %3s %10s %8s %6s" % ("impl", "feature", "thr", "tracks/s", "ms/track",
                                           "clean")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print("%-58s %-7s %3d %10.1f %8.2f %6s" % (r["impl"], r["feature"], r["threads"],
                                                 r["tracks_per_s"], 1000.0 / r["tracks_per_s"],
                                                 "%d/3" % r["clean_repeats"]))
    print("30 s track = %d samples -> %d frames; 3 s segment ~ 1/10 of the work."
          % (y.size, checks["frames"]))
    with open(args.out, "w") as f:
        json.dump(dict(torch=torch.__version__, scipy=scipy.__version__, numpy=np.__version__,
                       env_OPENBLAS_CORETYPE=os.environ.get("OPENBLAS_CORETYPE"),
                       checks=checks, rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
