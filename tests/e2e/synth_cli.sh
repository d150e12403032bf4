#!/usr/bin/env bash
# `melforge synth`: writes the corpus in GTZAN's layout, the same seed twice gives
# byte-identical files (another seed other files), a file in the way fails with its path,
# and bad arguments exit 2 with a message.
# usage: synth_cli.sh MELFORGE_BINARY
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # fail
mf=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run=(synth --genres 3 --tracks 2 --seconds 2 --seed 7)
"$mf" "${run[@]}" --out "$tmp/a" >"$tmp/out" 2>"$tmp/err"
grep -q "^wrote 6 tracks (3 genres x 2) to $tmp/a in [0-9.]* s$" "$tmp/out" ||
  fail "unexpected summary: $(cat "$tmp/out")"
"$mf" "${run[@]}" --out="$tmp/b" >/dev/null 2>&1

want="electronic/electronic.00000.wav electronic/electronic.00001.wav jazz/jazz.00000.wav
jazz/jazz.00001.wav orchestral/orchestral.00000.wav orchestral/orchestral.00001.wav"
got=$(cd "$tmp/a" && find . -type f | sed 's|^\./||' | sort | tr '\n' ' ')
[ "$got" = "$(echo $want | tr ' ' '\n' | sort | tr '\n' ' ')" ] || fail "layout: $got"
for f in $want; do
  cmp -s "$tmp/a/$f" "$tmp/b/$f" || fail "$f differs between two runs with seed 7"
  # 2 s of 16-bit mono at 22050 Hz after a 44-byte header.
  [ "$(stat -c %s "$tmp/a/$f")" -ge $((44 + 2 * 44100)) ] || fail "$f is too short"
done
"$mf" "${run[@]}" --seed 8 --out "$tmp/c" >/dev/null 2>&1
! cmp -s "$tmp/a/jazz/jazz.00000.wav" "$tmp/c/jazz/jazz.00000.wav" || fail "seed 8 gave seed 7's file"

# A file the corpus did not write is never replaced.
echo "not audio" >"$tmp/a/jazz/jazz.00001.wav"
if "$mf" "${run[@]}" --out "$tmp/a" >/dev/null 2>"$tmp/err"; then fail "overwrote a non-WAV file"; fi
grep -q "$tmp/a/jazz/jazz.00001.wav" "$tmp/err" || fail "message lacks the path: $(cat "$tmp/err")"
grep -q "not audio" "$tmp/a/jazz/jazz.00001.wav" || fail "the file was changed"

"$mf" synth --help | grep -q "usage: melforge synth" || fail "--help"

# Usage errors: exit code 2 and a message naming the problem.
bad() {
  local expect=$1
  shift
  local rc=0
  "$mf" synth "$@" >/dev/null 2>"$tmp/err" || rc=$?
  [ "$rc" -eq 2 ] || fail "synth $*: exit $rc, expected 2"
  grep -qi -- "$expect" "$tmp/err" || fail "synth $*: message lacks '$expect': $(cat "$tmp/err")"
}
bad "--out DIR is required" --genres 2
bad "--out needs a value" --out
bad "--genres expects" --out "$tmp/x" --genres 0
bad "--genres expects" --out "$tmp/x" --genres 99
bad "--tracks expects" --out "$tmp/x" --tracks 0
bad "--seconds expects" --out "$tmp/x" --seconds 0
bad "--seconds expects" --out "$tmp/x" --seconds 601
bad "--seconds expects" --out "$tmp/x" --seconds abc
bad "--seed expects" --out "$tmp/x" --seed -1
bad "--rate expects" --out "$tmp/x" --rate 100
bad "did you mean '--tracks'" --out "$tmp/x" --track 3
[ ! -e "$tmp/x" ] || fail "a rejected command created its output folder"
echo "synth cli: ok"
