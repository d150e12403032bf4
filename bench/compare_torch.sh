#!/usr/bin/env bash
# compare_torch.sh — melforge against PyTorch (CPU) on the five reference models and on
# log-mel / MFCC extraction, each side measured by its own harness the same way:
# `melforge bench` and bench/torch/bench_models.py, `melforge bench features` and
# bench/torch/bench_features.py (see bench/README.md for what is measured).
#
# The model runs alternate A B A B (melforge, PyTorch, melforge, PyTorch) so a change in the
# machine's load hits both sides; each side's throughput is the median of its two runs (the
# mean of two medians), its peak RSS the larger of its two runs. Targets: throughput >= 1.5x
# PyTorch's for training and inference, peak RSS <= PyTorch's, log-mel tracks/s >= 5x the
# numpy/scipy path (the faster of the two) at the same thread count.
#
# Usage: bench/compare_torch.sh [--install] [--melforge PATH] [--torch-dir DIR] [--out DIR]
#                               [--models a,b,c,d,e] [--threads N] [--wait-quiet S]
#                               [--no-features] [--quick]
#   --install      apt-get install Debian's PyTorch, SciPy and threadpoolctl first (root)
#   --melforge P   the melforge binary (default: build/melforge, then melforge on PATH)
#   --torch-dir D  where bench_models.py, bench_features.py, loadmon.py are (bench/torch)
#   --out D        folder for the JSON files and logs (default: a new /tmp/mf_vs_torch.*)
#   --wait-quiet S both harnesses first wait up to S s for other processes to go idle
#   --quick        one short repeat per side: checks the pipeline, the numbers mean nothing
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PY=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ inside the source tree
MELFORGE=""
TORCH_DIR=$HERE/torch
OUT=""
MODELS=a,b,c,d,e
THREADS=2
WAIT_QUIET=0
FEATURES=1
QUICK=0
INSTALL=0

die() {
  echo "compare_torch.sh: $*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case "$1" in
    --install) INSTALL=1 ;;
    --melforge) MELFORGE=${2:?--melforge needs a path}; shift ;;
    --torch-dir) TORCH_DIR=${2:?--torch-dir needs a folder}; shift ;;
    --out) OUT=${2:?--out needs a folder}; shift ;;
    --models) MODELS=${2:?--models needs a list such as a,c}; shift ;;
    --threads) THREADS=${2:?--threads needs a number}; shift ;;
    --wait-quiet) WAIT_QUIET=${2:?--wait-quiet needs seconds}; shift ;;
    --no-features) FEATURES=0 ;;
    --quick) QUICK=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (--help lists them)" ;;
  esac
  shift
done

COMMANDS=()
# Prints and runs a command, its output also kept in $OUT/<log>.
run() {
  local log=$1
  shift
  COMMANDS+=("$*")
  echo "+ $*" >&2
  "$@" 2>&1 | tee "$OUT/$log"
  return "${PIPESTATUS[0]}"
}

if [ "$INSTALL" = 1 ]; then
  [ "$(id -u)" = 0 ] || die "--install runs apt-get and needs root"
  COMMANDS+=("apt-get update" "apt-get install -y python3-torch python3-numpy python3-scipy python3-threadpoolctl")
  echo "+ apt-get update" >&2
  apt-get update -qq
  echo "+ apt-get install -y python3-torch python3-numpy python3-scipy python3-threadpoolctl" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch python3-numpy python3-scipy \
    python3-threadpoolctl
fi

"$PY" -c "import torch" 2>/dev/null ||
  die "PyTorch is not importable by $PY: run with --install (Debian's python3-torch)"
for f in bench_models.py loadmon.py; do
  [ -f "$TORCH_DIR/$f" ] || die "$TORCH_DIR/$f is missing (--torch-dir names the folder)"
done
if [ -z "$MELFORGE" ]; then
  if [ -x "$ROOT/build/melforge" ]; then
    MELFORGE=$ROOT/build/melforge
  elif command -v melforge >/dev/null; then
    MELFORGE=$(command -v melforge)
  else
    die "no melforge binary: build it (cmake -S . -B build && cmake --build build -j) or pass --melforge"
  fi
fi
[ -x "$MELFORGE" ] || die "$MELFORGE is not an executable"
if [ -z "$OUT" ]; then OUT=$(mktemp -d /tmp/mf_vs_torch.XXXXXX); fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
echo "results in $OUT" >&2

MF_ARGS=(--threads "$THREADS" --wait-quiet "$WAIT_QUIET")
TORCH_ARGS=(--models "$MODELS" --threads "$THREADS" --wait-quiet "$WAIT_QUIET")
FEAT_MF_ARGS=(--threads "$THREADS")
FEAT_TORCH_ARGS=()
if [ "$QUICK" = 1 ]; then
  SHORT=(--warmup 1 --min-steps 2 --infer-min-steps 2 --min-seconds 0 --repeats 1)
  MF_ARGS+=("${SHORT[@]}" --max-extra 0)
  TORCH_ARGS+=("${SHORT[@]}")
  FEAT_MF_ARGS+=(--quick)
  FEAT_TORCH_ARGS+=(--seconds 0.05)
fi

for i in 1 2; do
  run "melforge_$i.log" "$MELFORGE" bench "$MODELS" "${MF_ARGS[@]}" --json "$OUT/melforge_$i.json"
  run "torch_$i.log" "$PY" "$TORCH_DIR/bench_models.py" "${TORCH_ARGS[@]}" --out "$OUT/torch_$i.json"
done
if [ "$FEATURES" = 1 ]; then
  run melforge_features.log "$MELFORGE" bench features "${FEAT_MF_ARGS[@]}" --json "$OUT/melforge_features.json"
  run torch_features.log "$PY" "$TORCH_DIR/bench_features.py" "${FEAT_TORCH_ARGS[@]}" --out "$OUT/torch_features.json"
fi

echo
"$PY" - "$OUT" "$FEATURES" <<'EOF'
import json, os, sys

out, features = sys.argv[1], sys.argv[2] == "1"
load = lambda name: json.load(open(os.path.join(out, name)))
mf = [load("melforge_%d.json" % i) for i in (1, 2)]
pt = [load("torch_%d.json" % i) for i in (1, 2)]

def rows(runs):
    by = {}
    for run in runs:
        for r in run["rows"]:
            by.setdefault(r["key"], []).append(r)
    return by

def med(xs):  # median of the runs' medians; with two runs, their mean
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])

def clean(rs, phase):
    return "%d/%d" % (sum(r[phase + "_clean_repeats"] for r in rs),
                      sum(len(r[phase + "_samples_per_s_repeats"]) for r in rs))

m_rows, t_rows = rows(mf), rows(pt)
print("melforge %s (BLAS %s) vs torch %s, %d threads; throughput = median of 2 runs per side,"
      " RSS = larger of 2 runs" % (mf[0]["meta"]["melforge"], mf[0]["meta"]["blas_corename"],
                                   pt[0]["meta"]["torch"], mf[0]["meta"]["threads"]))
hdr = ("%-3s %9s %9s %6s %4s  %9s %9s %6s %4s  %7s %7s %4s  %7s %7s %4s  %11s %11s" %
       ("", "mf tr/s", "pt tr/s", "ratio", "", "mf in/s", "pt in/s", "ratio", "",
        "mf RSSi", "pt RSSi", "", "mf RSSt", "pt RSSt", "", "clean mf", "clean pt"))
print(hdr)
print("-" * len(hdr))
verdicts = []
for key in sorted(m_rows):
    if key not in t_rows:
        continue
    m, t = m_rows[key], t_rows[key]
    tr = med([r["train_samples_per_s"] for r in m]) / med([r["train_samples_per_s"] for r in t])
    inf = med([r["infer_samples_per_s"] for r in m]) / med([r["infer_samples_per_s"] for r in t])
    peak = lambda rs, k: max((r[k] or 0) for r in rs)
    ri = (peak(m, "rss_peak_infer_mib"), peak(t, "rss_peak_infer_mib"))
    rt = (peak(m, "rss_peak_train_mib"), peak(t, "rss_peak_train_mib"))
    ok = [tr >= 1.5, inf >= 1.5, ri[0] <= ri[1], rt[0] <= rt[1]]
    verdicts += ok
    pf = lambda b: "PASS" if b else "FAIL"
    print("%-3s %9.1f %9.1f %5.2fx %4s  %9.1f %9.1f %5.2fx %4s  %7.0f %7.0f %4s  %7.0f %7.0f %4s  %11s %11s" % (
        key, med([r["train_samples_per_s"] for r in m]), med([r["train_samples_per_s"] for r in t]),
        tr, pf(ok[0]), med([r["infer_samples_per_s"] for r in m]),
        med([r["infer_samples_per_s"] for r in t]), inf, pf(ok[1]), ri[0], ri[1], pf(ok[2]),
        rt[0], rt[1], pf(ok[3]), clean(m, "train") + " " + clean(m, "infer"),
        clean(t, "train") + " " + clean(t, "infer")))
print("targets: train and infer throughput >= 1.5x PyTorch; peak RSS (inference, training) <= "
      "PyTorch's.\nclean = repeats (train, infer; both runs) during which other processes used "
      "<= 0.25 cores, of all repeats run;\nforeign loads per repeat are in the JSON files.")

if features:
    fm, ft = load("melforge_features.json"), load("torch_features.json")
    print()
    print("%-8s %3s %12s %12s %-16s %7s %4s %12s" % ("feature", "thr", "melforge/s", "np/scipy/s",
                                                     "(path)", "ratio", "", "torch/s"))
    for r in fm["rows"]:
        if r["feature"] != "logmel":
            continue
        thr = r["threads"]
        same = [x for x in ft["rows"] if x["feature"] == "logmel" and x["threads"] == thr]
        npsp = [x for x in same if x["impl"].startswith(("scipy", "numpy"))]
        tor = [x for x in same if x["impl"].startswith("torch") and "batch" not in x["impl"]]
        if not npsp:
            continue
        best = max(npsp, key=lambda x: x["tracks_per_s"])
        ratio = r["tracks_per_s"] / best["tracks_per_s"]
        verdicts.append(ratio >= 5)
        print("%-8s %3d %12.1f %12.1f %-16s %6.1fx %4s %12s" % (
            "logmel", thr, r["tracks_per_s"], best["tracks_per_s"], best["impl"].split("(")[0],
            ratio, "PASS" if ratio >= 5 else "FAIL",
            "%.1f" % tor[0]["tracks_per_s"] if tor else "-"))
    print("target: log-mel tracks/s >= 5x the faster numpy/scipy path at the same thread count "
          "(melforge: N tracks at once on N threads)")
print()
print("overall: %d of %d targets met" % (sum(verdicts), len(verdicts)))
EOF

echo
echo "commands run:"
for c in "${COMMANDS[@]}"; do echo "  $c"; done
echo "JSON files and logs: $OUT"
