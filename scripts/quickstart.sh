#!/usr/bin/env bash
# The main job on the built-in demo data. Until the demo corpus and the training engine
# exist (issues 4 and 5), it shows what the build can do: version, BLAS kernels, and a
# smoke run of the core (the two-spirals MLP trained with Adam).
set -euo pipefail
build=${1:-build}
"$build/melforge" version
echo
"$build/tests/test_training" test_mlp_learns_two_spirals_with_adam
