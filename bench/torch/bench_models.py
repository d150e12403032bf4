#!/usr/bin/python3
# Copied from shared/peers/torch/bench_models.py (the PyTorch CPU baseline written for melforge's
# comparison by the project's torch peer), unchanged below this header, so the comparison
# does not depend on files outside the repository. bench/compare_torch.sh runs it against
# `melforge bench`; bench/README.md says what both measure.
"""bench_models.py - PyTorch CPU baselines for the five reference genre classifiers.

For each model: parameter count, forward MACs/sample (counted with hooks),
training throughput (forward + backward + Adam step, batch 32, model.train()),
inference throughput (batch 64, model.eval(), torch.no_grad()), peak RSS.

Each model runs in its own child process so its peak RSS is not mixed with
the others'. Peak RSS is read from /proc/self/status VmHWM; the high-water
mark is reset between phases by writing "5" to /proc/self/clear_refs, so the
inference and training peaks are separate. 'base' is the RSS after import
torch + model construction + input allocation.

Timing: 3 warm-up steps, then each repeat times max(20 training steps (10
inference batches of 64), enough steps to fill --min-seconds); the reported
number is the median of 3 repeats (all kept in the JSON). For every repeat
the CPU used by *other* processes is recorded (loadmon.py); a repeat during
which they used > 0.25 cores is flagged and retried (up to 4 extra), and the
median is taken over the clean repeats.

Usage:
  /usr/bin/python3 bench_models.py [--models a,b,c,d,e] [--threads 2] [--wait-quiet 300]
                                   [--out models.json] [--tf-pool 2x1]
"""
import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
N_CLASSES = 10
MFCC_SHAPE = (130, 13)        # frames x coefficients, 3 s segment
MEL_SHAPE = (1, 128, 130)     # 1 x n_mels x frames, 3 s at sr 22050 hop 512

MODEL_INFO = {
    "a": ("MLP (MFCC-segment MLP), MFCC 130x13", 3),
    "b": ("SmallCNN (small MFCC CNN), MFCC 1x130x13", 1),
    "c": ("CNN 3x[2conv] (mel CNN, GAP head), mel 1x128x130", 0),
    "d": ("CNN-BiLSTM-attn (CNN + BiLSTM + attention), mel 1x128x130", 2),
    "e": ("CNN-Transformer (CNN + Transformer encoder), mel 1x128x130", 4),
}


def build_model(key, tf_pool="2x1"):
    import torch
    import torch.nn as nn

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            d = MFCC_SHAPE[0] * MFCC_SHAPE[1]
            self.net = nn.Sequential(
                nn.Flatten(),
                nn.Linear(d, 512), nn.ReLU(), nn.Dropout(0.3),
                nn.Linear(512, 256), nn.ReLU(), nn.Dropout(0.3),
                nn.Linear(256, 64), nn.ReLU(), nn.Dropout(0.3),
                nn.Linear(64, N_CLASSES))

        def forward(self, x):          # x: B x 130 x 13
            return self.net(x)

    class SmallCNN(nn.Module):
        def __init__(self):
            super().__init__()
            t, f = MFCC_SHAPE
            self.features = nn.Sequential(
                nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.BatchNorm2d(32), nn.Dropout2d(0.35),
                nn.Conv2d(32, 48, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.BatchNorm2d(48), nn.Dropout2d(0.35))
            flat = 48 * (t // 2 // 2) * (f // 2 // 2)   # 48*32*3 = 4608
            self.head = nn.Sequential(
                nn.Flatten(), nn.Linear(flat, 64), nn.ReLU(), nn.BatchNorm1d(64),
                nn.Dropout(0.7), nn.Linear(64, N_CLASSES))

        def forward(self, x):          # x: B x 1 x 130 x 13
            return self.head(self.features(x))

    def conv_bn_relu(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True)]

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            layers, cin = [], 1
            for cout in (32, 64, 128):
                layers += conv_bn_relu(cin, cout) + conv_bn_relu(cout, cout)
                layers += [nn.MaxPool2d(2), nn.Dropout(0.25)]
                cin = cout
            self.features = nn.Sequential(*layers)
            self.head = nn.Sequential(
                nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                nn.Linear(128, 128), nn.ReLU(inplace=True), nn.Dropout(0.5),
                nn.Linear(128, N_CLASSES))

        def forward(self, x):          # x: B x 1 x 128 x 130
            return self.head(self.features(x))

    class AdditiveAttention(nn.Module):
        """Bahdanau pooling: e_t = v^T tanh(W h_t + b); a = softmax_t(e); sum_t a_t h_t."""
        def __init__(self, dim, att_dim=128):
            super().__init__()
            self.w = nn.Linear(dim, att_dim)
            self.v = nn.Linear(att_dim, 1, bias=False)

        def forward(self, h):          # h: B x T x D
            a = torch.softmax(self.v(torch.tanh(self.w(h))).squeeze(-1), dim=1)
            return torch.bmm(a.unsqueeze(1), h).squeeze(1)

    class CNNBiLSTMAttn(nn.Module):
        def __init__(self):
            super().__init__()
            layers, cin = [], 1
            for cout in (32, 64, 128):
                layers += conv_bn_relu(cin, cout) + [nn.MaxPool2d(2)]
                cin = cout
            self.features = nn.Sequential(*layers)
            f = MEL_SHAPE[1] // 8                      # 16 mel bands left
            self.lstm = nn.LSTM(128 * f, 128, batch_first=True, bidirectional=True)
            self.att = AdditiveAttention(256)
            self.head = nn.Sequential(nn.Linear(256, 64), nn.ReLU(inplace=True),
                                      nn.Dropout(0.3), nn.Linear(64, N_CLASSES))

        def forward(self, x):          # x: B x 1 x 128 x 130
            z = self.features(x)                       # B x 128 x 16 x 16
            b, c, f, t = z.shape
            z = z.permute(0, 3, 1, 2).reshape(b, t, c * f)   # B x T x (C*F)
            h, _ = self.lstm(z)                        # B x T x 256
            return self.head(self.att(h))

    class SinusoidalPE(nn.Module):
        def __init__(self, d_model, max_len=1024):
            super().__init__()
            pos = torch.arange(max_len).unsqueeze(1)
            div = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
            pe = torch.zeros(max_len, d_model)
            pe[:, 0::2] = torch.sin(pos * div)
            pe[:, 1::2] = torch.cos(pos * div)
            self.register_buffer("pe", pe)

        def forward(self, x):          # x: B x T x d
            return x + self.pe[: x.size(1)]

    class CNNTransformer(nn.Module):
        def __init__(self, pool):
            super().__init__()
            pools = {"2x1": [(2, 1)] * 3, "2x2": [(2, 2)] * 3,
                     "mixed": [(2, 2), (2, 2), (2, 1)]}[pool]
            layers, cin = [], 1
            for cout, p in zip((32, 64, 128), pools):
                layers += conv_bn_relu(cin, cout) + [nn.MaxPool2d(p)]
                cin = cout
            self.features = nn.Sequential(*layers)
            f = MEL_SHAPE[1] // 8
            self.proj = nn.Linear(128 * f, 128)
            self.pe = SinusoidalPE(128)
            layer = nn.TransformerEncoderLayer(d_model=128, nhead=4, dim_feedforward=256,
                                               dropout=0.1, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, num_layers=2)
            self.fc = nn.Linear(128, N_CLASSES)

        def forward(self, x):          # x: B x 1 x 128 x 130
            z = self.features(x)                       # B x 128 x 16 x T'
            b, c, f, t = z.shape
            z = z.permute(0, 3, 1, 2).reshape(b, t, c * f)
            z = self.encoder(self.pe(self.proj(z)))
            return self.fc(z.mean(dim=1))

    seed = MODEL_INFO[key][1]
    torch.manual_seed(seed)
    if key == "a":
        return MLP(), MFCC_SHAPE
    if key == "b":
        return SmallCNN(), (1,) + MFCC_SHAPE
    if key == "c":
        return CNN(), MEL_SHAPE
    if key == "d":
        return CNNBiLSTMAttn(), MEL_SHAPE
    if key == "e":
        return CNNTransformer(tf_pool), MEL_SHAPE
    raise KeyError(key)


def count_fwd_macs(model, in_shape):
    """Forward multiply-accumulates per sample: Conv2d, Linear, LSTM, MHA (matmul parts only)."""
    import torch
    import torch.nn as nn
    macs = [0]

    def conv_hook(m, inp, out):
        macs[0] += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def lin_hook(m, inp, out):
        macs[0] += out.numel() * m.in_features

    def lstm_hook(m, inp, out):
        x = inp[0]
        t = x.shape[1] if m.batch_first else x.shape[0]
        b = x.shape[0] if m.batch_first else x.shape[1]
        dirs = 2 if m.bidirectional else 1
        macs[0] += b * t * dirs * 4 * m.hidden_size * (m.input_size + m.hidden_size)

    def mha_hook(m, inp, out):
        q = inp[0]                                  # batch_first: B x T x d
        b, t, d = q.shape
        macs[0] += b * (4 * t * d * d + 2 * t * t * d)   # in/out proj + QK^T + AV

    hs = []
    for mod in model.modules():
        if isinstance(mod, nn.Conv2d):
            hs.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, nn.MultiheadAttention):
            hs.append(mod.register_forward_hook(mha_hook))
        elif isinstance(mod, nn.Linear) and not isinstance(
                mod, nn.modules.linear.NonDynamicallyQuantizableLinear):
            hs.append(mod.register_forward_hook(lin_hook))
        elif isinstance(mod, nn.LSTM):
            hs.append(mod.register_forward_hook(lstm_hook))
    model.train()           # train mode: no fused transformer fast path, all hooks fire
    with torch.no_grad():
        model(torch.zeros((2,) + tuple(in_shape)))
    for h in hs:
        h.remove()
    return macs[0] // 2


def rss_status():
    d = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                k, v = line.split(":")
                d[k] = int(v.split()[0]) / 1024.0          # MiB
    return d


def reset_hwm():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def timed_repeats(step, warmup, min_steps, min_seconds, repeats, batch, max_extra=4,
                  threshold=0.25):
    """Returns (rates, n_steps, foreign, clean_rates).

    A repeat during which other processes used more than `threshold` cores is
    kept in `rates` but not in `clean_rates`, and retried (up to max_extra
    extra repeats, each preceded by a short wait for the machine to go quiet).
    """
    from loadmon import LoadMon, wait_quiet
    for _ in range(warmup):
        step()
    # size one repeat: at least min_steps, and at least min_seconds
    t0 = time.perf_counter()
    step()
    one = time.perf_counter() - t0
    n = max(min_steps, int(math.ceil(min_seconds / max(one, 1e-6))))
    rates, foreign, clean = [], [], []
    attempts = 0
    while len(clean) < repeats and attempts < repeats + max_extra:
        if attempts >= repeats:
            wait_quiet(30, threshold=threshold / 2, probe_s=1.0)
            step()                                   # re-warm after waiting
        attempts += 1
        with LoadMon() as lm:
            t0 = time.perf_counter()
            for _ in range(n):
                step()
            dt = time.perf_counter() - t0
        rates.append(n * batch / dt)
        foreign.append(round(lm.foreign_cores, 2))
        if lm.foreign_cores <= threshold:
            clean.append(n * batch / dt)
    return rates, n, foreign, clean


def child(key, args):
    import torch
    import torch.nn as nn
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    model, in_shape = build_model(key, args.tf_pool)
    n_params = sum(p.numel() for p in model.parameters())
    macs = count_fwd_macs(model, in_shape)

    g = torch.Generator().manual_seed(1234)
    xb_tr = torch.randn((args.train_batch,) + tuple(in_shape), generator=g)
    yb_tr = torch.randint(0, N_CLASSES, (args.train_batch,), generator=g)
    xb_in = torch.randn((args.infer_batch,) + tuple(in_shape), generator=g)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3,
                           weight_decay=(1e-4 if key == "c" else 0.0))
    loss_fn = nn.CrossEntropyLoss()
    base = rss_status()

    # inference first (its own peak), then training
    reset_ok = reset_hwm()
    model.eval()

    def infer_step():
        with torch.no_grad():
            model(xb_in)

    infer_rates, infer_n, infer_foreign, infer_clean = timed_repeats(
        infer_step, args.warmup, args.infer_min_steps, args.min_seconds, args.repeats,
        args.infer_batch)
    rss_inf = rss_status()

    reset_hwm()
    model.train()

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb_tr), yb_tr)
        loss.backward()
        opt.step()

    train_rates, train_n, train_foreign, train_clean = timed_repeats(
        train_step, args.warmup, args.min_steps, args.min_seconds, args.repeats,
        args.train_batch)
    rss_tr = rss_status()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    # median over clean repeats (other processes < 0.25 cores); all repeats if none was clean
    tr = statistics.median(train_clean or train_rates)
    inf = statistics.median(infer_clean or infer_rates)
    out = dict(
        key=key, name=MODEL_INFO[key][0], seed=MODEL_INFO[key][1], input_shape=list(in_shape),
        params=n_params, fwd_mmacs_per_sample=round(macs / 1e6, 2),
        train_batch=args.train_batch, train_steps_per_repeat=train_n,
        train_samples_per_s=round(tr, 1), train_samples_per_s_repeats=[round(r, 1) for r in train_rates],
        train_gflops_est=round(3 * 2 * macs * tr / 1e9, 1),
        train_foreign_cores=train_foreign, train_clean_repeats=len(train_clean),
        infer_batch=args.infer_batch, infer_steps_per_repeat=infer_n,
        infer_samples_per_s=round(inf, 1), infer_samples_per_s_repeats=[round(r, 1) for r in infer_rates],
        infer_gflops_est=round(2 * macs * inf / 1e9, 1),
        infer_foreign_cores=infer_foreign, infer_clean_repeats=len(infer_clean),
        rss_base_mib=round(base["VmRSS"], 1),
        rss_peak_infer_mib=round(rss_inf["VmHWM"], 1) if reset_ok else None,
        rss_peak_train_mib=round(rss_tr["VmHWM"], 1) if reset_ok else None,
        rss_peak_process_mib=round(ru.ru_maxrss / 1024.0, 1),
        torch_threads=torch.get_num_threads(),
        cpu_time_s=round(ru.ru_utime + ru.ru_stime, 1),
    )
    print("JSON " + json.dumps(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="a,b,c,d,e")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-batch", type=int, default=32)
    ap.add_argument("--infer-batch", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--min-steps", type=int, default=20)
    ap.add_argument("--infer-min-steps", type=int, default=10)
    ap.add_argument("--min-seconds", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tf-pool", default="2x1", choices=["2x1", "2x2", "mixed"])
    ap.add_argument("--out", default=os.path.join(HERE, "models.json"))
    ap.add_argument("--child", default=None)
    ap.add_argument("--wait-quiet", type=float, default=0,
                    help="wait up to N s for other processes to go idle before starting")
    args = ap.parse_args()
    if args.child:
        child(args.child, args)
        return

    import torch
    from loadmon import wait_quiet
    f0 = wait_quiet(args.wait_quiet, log=lambda m: print("  " + m, file=sys.stderr, flush=True))
    meta = dict(foreign_cores_at_start=round(f0, 2),torch=torch.__version__, threads=args.threads, interop_threads=1,
                torch_default_threads=torch.get_num_threads(),
                cpu_capability=torch.backends.cpu.get_cpu_capability()
                if hasattr(torch.backends, "cpu") else None,
                mkldnn=torch.backends.mkldnn.is_available(),
                env={k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                     "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                     "DNNL_MAX_CPU_ISA")},
                tf_pool=args.tf_pool, loadavg_start=open("/proc/loadavg").read().split()[:3])
    rows = []
    t_all = time.perf_counter()
    for key in args.models.split(","):
        cmd = [sys.executable, os.path.abspath(__file__), "--child", key]
        for k in ("threads", "train_batch", "infer_batch", "warmup", "min_steps", "infer_min_steps",
                  "min_seconds", "repeats", "tf_pool"):
            cmd += ["--" + k.replace("_", "-"), str(getattr(args, k))]
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            sys.stderr.write(p.stdout + p.stderr)
            raise SystemExit("child %s failed" % key)
        line = [l for l in p.stdout.splitlines() if l.startswith("JSON ")][-1]
        r = json.loads(line[5:])
        r["wall_s"] = round(time.perf_counter() - t0, 1)
        r["loadavg_after"] = open("/proc/loadavg").read().split()[:3]
        rows.append(r)
        print("  [%s] done in %.0f s (load %s)" % (key, r["wall_s"], " ".join(r["loadavg_after"])),
              file=sys.stderr, flush=True)
    meta["total_wall_s"] = round(time.perf_counter() - t_all, 1)
    print("torch %s, threads=%d, env OPENBLAS_CORETYPE=%s" %
          (meta["torch"], args.threads, meta["env"]["OPENBLAS_CORETYPE"]))
    hdr = ("%-3s %-44s %10s %9s %10s %8s %10s %8s %8s %8s %8s %6s" %
           ("", "model", "params", "fwdMMAC", "train/s", "trGF/s", "infer/s", "inGF/s",
            "RSSbase", "RSSinf", "RSStrn", "clean"))
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        clean = "%d/%d" % (r["train_clean_repeats"], r["infer_clean_repeats"])
        print("%-3s %-44s %10d %9.1f %10.1f %8.1f %10.1f %8.1f %8.0f %8.0f %8.0f %6s" % (
            r["key"], r["name"], r["params"], r["fwd_mmacs_per_sample"], r["train_samples_per_s"],
            r["train_gflops_est"], r["infer_samples_per_s"], r["infer_gflops_est"],
            r["rss_base_mib"], r["rss_peak_infer_mib"] or 0, r["rss_peak_train_mib"] or 0, clean))
    print("train/infer = median samples/s of 3 repeats; GF/s estimated as (3x|1x) * 2 * fwd MACs * rate;"
          " RSS in MiB;\nclean = train/infer repeats (of 3 wanted) during which other processes used"
          " < 0.25 cores; the median is over clean repeats only (over all if none was clean)")
    with open(args.out, "w") as f:
        json.dump(dict(meta=meta, rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
