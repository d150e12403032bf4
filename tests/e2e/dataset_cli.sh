#!/usr/bin/env bash
# `melforge import` and `melforge info` from the command line: import a small MFCC notebook
# JSON and a small tree of .npy spectrograms, describe both, read them back with h5py, and
# check the exit codes and messages for bad input (2 usage errors, 1 runtime failures).
# usage: dataset_cli.sh BUILD_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # fail, expect, has, lacks
mf=$(cd "$1" && pwd)/melforge
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

# --- the MFCC notebook's data.json: 3 genres, 2 segments each, 5 frames x 4 coefficients
{
  printf '{"mapping": ["blues", "classical", "country"],\n "labels": [0, 0, 1, 1, 2, 2],\n "mfcc": ['
  for s in 0 1 2 3 4 5; do
    [ "$s" -gt 0 ] && printf ','
    printf '['
    for t in 0 1 2 3 4; do
      [ "$t" -gt 0 ] && printf ','
      printf '[%d.5, %d, -%d, 0.25]' "$s" "$t" "$s"
    done
    printf ']'
  done
  printf ']}\n'
} > data.json

expect 0 "$mf" import json data.json mfcc.h5
has out "imported 6 segments of shape [5, 4] in 3 classes (6 tracks) from data.json into mfcc.h5"
has out "splits cannot be grouped by track"
expect 0 "$mf" info mfcc.h5
cat out
has out "source        data.json"
has out 'feature       json {"n_mfcc": 4}'
has out "sample rate   22050 Hz"
has out "sample shape  [5, 4]"
has out "rows          6"
has out "tracks        6"
grep -Eq '^  classical +2 +2 ' out || fail "class table lacks 'classical 2 2'"
grep -Eq '^  total +6 +6 ' out || fail "class table lacks the total"

# --- .npy spectrograms: DIR/<genre>/*.npy, float32 [4, 3], every value the file's number
npy() { # npy PATH HEXFLOAT: a v1 .npy of shape (4, 3) filled with one little-endian float
  local dict="{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }"
  local hlen=$(( (10 + ${#dict} + 1 + 63) / 64 * 64 - 10 ))
  {
    printf '\x93NUMPY\x01\x00'
    printf "\\x$(printf %02x $((hlen & 255)))\\x$(printf %02x $((hlen >> 8)))"
    printf '%s%*s\n' "$dict" $((hlen - ${#dict} - 1)) ''
    for _ in $(seq 12); do printf "$2"; done
  } > "$1"
}
mkdir -p spec/rock spec/blues
npy spec/rock/r0.npy '\x00\x00\x40\x40'  # 3.0
npy spec/blues/b1.npy '\x00\x00\x00\x40' # 2.0
npy spec/blues/b0.npy '\x00\x00\x80\x3f' # 1.0
expect 0 "$mf" import npy spec mel.h5
has out "imported 3 arrays of shape [4, 3] in 2 classes (3 tracks) from spec into mel.h5"
expect 0 "$mf" info mel.h5
cat out
has out "feature       npy {}"
has out "sample shape  [4, 3]"
has out "tracks        3 (1.0 rows per track)"
grep -Eq '^  blues +2 +2 ' out || fail "class table lacks 'blues 2 2'"

# --- both read back with h5py as plain arrays
if /usr/bin/python3 -c 'import h5py, numpy' 2>/dev/null; then
  /usr/bin/python3 - <<'EOF'
import h5py, numpy as np
with h5py.File("mfcc.h5", "r") as f:
    x = f["features"][()]
    assert x.dtype == np.float32 and x.shape == (6, 5, 4), (x.dtype, x.shape)
    assert np.array_equal(x[3, 2], np.float32([3.5, 2, -3, 0.25])), x[3, 2]
    assert f["labels"][()].tolist() == [0, 0, 1, 1, 2, 2]
    assert f["track"][()].tolist() == list(range(6))
    assert list(f["classes"].asstr()[()]) == ["blues", "classical", "country"]
    assert f.attrs["feature"] == "json" and float(f.attrs["sample_rate"]) == 22050
with h5py.File("mel.h5", "r") as f:
    x = f["features"][()]
    assert x.shape == (3, 4, 3) and x.dtype == np.float32
    assert [float(v) for v in x[:, 0, 0]] == [1.0, 2.0, 3.0], x[:, 0, 0]
    assert list(f["tracks"].asstr()[()]) == ["blues/b0.npy", "blues/b1.npy", "rock/r0.npy"]
    assert f["labels"][()].tolist() == [0, 0, 1]
EOF
else
  echo "dataset_cli: notice: /usr/bin/python3 with h5py and numpy missing; h5py checks skipped"
fi

# --- usage errors exit 2
expect 2 "$mf" import
expect 2 "$mf" import json data.json
expect 2 "$mf" import yaml data.json x.h5
has err "unknown format 'yaml'"
expect 2 "$mf" import json data.json x.h5 --bogus
expect 2 "$mf" import json data.json x.h5 --sample-rate fast
expect 2 "$mf" info
expect 2 "$mf" info a.h5 b.h5
expect 0 "$mf" info --help
has out "usage: melforge info FILE.h5"
expect 0 "$mf" import --help
has out "usage: melforge import json"

# --- runtime failures exit 1 with what, where and what to do
expect 1 "$mf" import json missing.json x.h5
has err "missing.json: no such file"
printf '{\n  "mapping": ["a",\n     oops]\n}\n' > bad.json
expect 1 "$mf" import json bad.json x.h5
has err "bad.json:3:"
expect 1 "$mf" info missing.h5
has err "missing.h5: no such file"
expect 1 "$mf" info data.json
has err "data.json: not an HDF5 file (or damaged)"
npy spec/rock/r1.npy '\x00\x00\x40\x40'
printf 'garbage' >> spec/rock/r1.npy
expect 1 "$mf" import npy spec mel.h5
has err "spec/rock/r1.npy: the header says [4, 3] float32"

# A failed import leaves the previous output as it was, and no temporary files.
printf '{"mapping": ["a"], "labels": [0, 0], "mfcc": [[[1, 2]], [[1]]]}' > short.json
expect 1 "$mf" import json short.json mfcc.h5
has err "mfcc[1][0] has 1 values but mfcc[0][0] has 2"
expect 0 "$mf" info mfcc.h5
has out "rows          6"
if ls -a | grep -q '\.tmp-'; then ls -a >&2; fail "temporary files left behind"; fi
[ ! -e x.h5 ] || fail "a failed import created x.h5"
echo "dataset cli: ok"
