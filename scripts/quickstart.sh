#!/usr/bin/env bash
# The main job on the built-in demo data: synthesize the demo corpus (once), extract MFCC and
# mel datasets (cached), train the MLP on MFCC and the CNN on mel, print the results and
# write the comparison report.
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
echo
"$mf" report runs/quickstart_mlp runs/quickstart_cnn --out runs/quickstart.html
cat <<TXT

Open runs/quickstart.html (and each run's report.html) in a browser.
Next: melforge run experiments/compare.lua   (MLP, CNN, CRNN, CNN-Transformer x 3 seeds,
      about 4 minutes; its comparison report is written to runs/compare.html)
TXT
