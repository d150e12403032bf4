#!/usr/bin/env bash
# Runs ctest in the given build directories (normal, then sanitizer) and prints one summary.
# Usage: scripts/run-tests.sh BUILD_DIR [ASAN_BUILD_DIR]   (an empty argument is skipped)
set -uo pipefail
status=0
summary=()
run() {
  local dir=$1 label=$2
  [ -n "$dir" ] || return 0
  echo "== ctest ($label build: $dir)"
  local t0=$SECONDS
  # ASan: leaks are reported at exit; OpenMP/OpenBLAS thread pools stay alive until then.
  if (cd "$dir" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        LSAN_OPTIONS=suppressions=$(cd "$(dirname "$0")/.." && pwd)/scripts/lsan.supp \
        ctest --output-on-failure -j 2); then
    summary+=("$label: all tests passed ($((SECONDS - t0)) s)")
  else
    summary+=("$label: FAILURES ($((SECONDS - t0)) s)")
    status=1
  fi
}
run "${1:-}" "release"
run "${2:-}" "asan+ubsan"
echo
echo "== summary"
printf '  %s\n' "${summary[@]}"
exit $status
