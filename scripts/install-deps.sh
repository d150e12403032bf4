#!/usr/bin/env bash
# Installs the Debian 12 packages melforge needs to build, test and plot.
# Idempotent: when everything is present it prints nothing and exits 0.
# Usage: scripts/install-deps.sh [--bench]   (--bench adds python3-torch for bench/compare_torch.sh)
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config
  libopenblas-openmp-dev   # CBLAS sgemm; the OpenMP build so our parallel loops and BLAS share one pool
  libfftw3-dev             # spectra (fftw3f)
  libsndfile1-dev          # audio input
  libsoxr-dev              # resampling
  libhdf5-dev              # datasets and checkpoints
  liblua5.4-dev            # experiments
  libcairo2-dev            # plots
  fonts-dejavu-core        # the plots' text font (DejaVu Sans)
  libjansson-dev           # JSON
  python3-h5py             # tests: datasets must open in h5py as plain arrays
)
if [ "${1:-}" = "--bench" ]; then
  pkgs+=(python3-torch python3-numpy python3-scipy python3-threadpoolctl)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "install-deps: missing packages (${missing[*]}) and not root, no sudo; install them as root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# A stale package list makes installs fail with 404s; refresh when older than a day.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -n1)" ]; then
  "${SUDO[@]}" apt-get update -qq >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
fi
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1 || {
  cat "$log" >&2
  echo "install-deps: apt-get install failed (output above)" >&2
  exit 1
}
echo "install-deps: done"
