#!/usr/bin/env bash
# The main job on the built-in demo data: synthesize the demo corpus (once), extract MFCC and
# mel datasets (cached), train the MLP on MFCC and the CNN on mel, and print the results.
# usage: scripts/quickstart.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
mf="$build/melforge"
"$mf" version | head -n 3
if [ ! -d demo/genres ]; then
  echo
  "$mf" synth --out demo/genres
fi
echo
"$mf" run experiments/quickstart.lua
