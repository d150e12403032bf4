#!/usr/bin/env bash
# End-to-end test of the reports: a tiny corpus (melforge synth + extract), two models x two
# seeds trained with `melforge run` (each run folder gets report.html, curves.png and
# confusion.png from the engine), then `melforge report` on the runs folder: the comparison
# page and its text table, one run's page, --out, and the usage errors. Last, when chromium
# is installed, a headless browser renders the comparison page (skipped with a notice
# otherwise; chromium is not a dependency).
#
# Set REPORT_E2E_KEEP=DIR to keep the pages and the screenshot there for a look.
# Usage: report_cli.sh BUILD_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # fail, mf, expect_rc

BUILD=$(cd "$1" && pwd)
MF=$BUILD/melforge
T=$(mktemp -d /tmp/mf_e2e_report.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T"

# PNG signature and IHDR width x height of a file, as "WxH" (empty when not a PNG).
png_size() {
  [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || return 0
  local w h
  w=$(od -An -tu1 -j16 -N4 "$1" | awk '{print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4}')
  h=$(od -An -tu1 -j20 -N4 "$1" | awk '{print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4}')
  echo "${w}x${h}"
}

# ---- a tiny corpus: 3 genres x 6 tracks of 3 s, 3 MFCC segments per track -----------------
mf synth --out genres --genres 3 --tracks 6 --seconds 3 --seed 5
expect_rc 0 "synth"
mf extract --audio genres --feature mfcc --set n_mfcc=13 --segments 3 --track-seconds 3 --out mfcc.h5
expect_rc 0 "extract"

# Two models, two seeds each: the same seed gives both models the same split (paired tests).
cat >compare.lua <<'EOF'
local mf = require "melforge"
local function e(name, model)
  return mf.experiment { name = name, data = "mfcc.h5", scaler = "standard", model = model,
                         optimizer = mf.optimizer("adam", { lr = 3e-3 }), epochs = 3,
                         batch_size = 8 }
end
for seed = 1, 2 do
  mf.run(e("e2e_mlp", mf.model("mlp", { hidden = { 32 } })), { seed = seed })
  mf.run(e("e2e_cnn", mf.model("cnn", { filters = { 4 }, dense = { 8 } })), { seed = seed })
end
EOF
mf run compare.lua --out runs
expect_rc 0 "melforge run"

# ---- every run folder got its report from the engine ------------------------------------------
for r in runs/e2e_mlp/1 runs/e2e_mlp/2 runs/e2e_cnn/1 runs/e2e_cnn/2; do
  for f in report.html curves.png confusion.png; do
    [ -s "$r/$f" ] || fail "$r/$f is missing after melforge run"
  done
  [ "$(png_size "$r/curves.png")" = "1200x480" ] || fail "$r/curves.png: $(png_size "$r/curves.png")"
  [ -n "$(png_size "$r/confusion.png")" ] || fail "$r/confusion.png is not a PNG"
  grep -q 'src="data:image/png;base64,' "$r/report.html" || fail "$r/report.html has no images"
  ! grep -Eq 'https?://' "$r/report.html" || fail "$r/report.html refers to the network"
done

# ---- the comparison ---------------------------------------------------------------------------
rm runs/e2e_cnn/2/report.html # a run without a page gets one back
mf report runs
expect_rc 0 "melforge report runs"
grep -q "^wrote runs/report.html$" out.txt || fail "no 'wrote runs/report.html': $(cat out.txt)"
grep -q "wrote report.html in 1 run folder" out.txt || fail "the missing run page was not rewritten"
[ -s runs/e2e_cnn/2/report.html ] || fail "runs/e2e_cnn/2/report.html not written back"
grep -q "4 runs, 2 models" out.txt || fail "text table header: $(cat out.txt)"
grep -Eq "^  e2e_cnn +cnn +2 +0\.[0-9]{3} ± 0\.[0-9]{3}" out.txt || fail "no cnn row: $(cat out.txt)"
grep -Eq "^  e2e_mlp +mlp +2 +0\.[0-9]{3} ± 0\.[0-9]{3}" out.txt || fail "no mlp row: $(cat out.txt)"
grep -Eq "^  cnn +mlp +1 +[0-9]+ .*\[[-+]0\.[0-9]{3}, [-+]0\.[0-9]{3}\]" out.txt ||
  fail "no paired test for seed 1: $(cat out.txt)"
H=runs/report.html
[ -s "$H" ] || fail "no comparison page"
[ "$(grep -o 'src="data:image/png;base64,' "$H" | wc -l)" -eq 1 ] || fail "comparison curves not embedded"
! grep -Eq 'https?://' "$H" || fail "the comparison page refers to the network"
grep -q "McNemar" "$H" || fail "no paired tests on the page"
grep -q 'href="e2e_mlp/1/report.html"' "$H" || fail "no link to a run's page"

# One run folder: its own page; --out elsewhere.
mf report runs/e2e_mlp/1 --out one.html
expect_rc 0 "report of one run"
grep -q "^wrote one.html$" out.txt || fail "one run: $(cat out.txt)"
grep -q "Classification report" one.html || fail "one.html is not a run page"
mf report runs/e2e_mlp --out=mlp.html
expect_rc 0 "report of one experiment's runs"
grep -q "2 runs, 1 model" out.txt || fail "one experiment: $(cat out.txt)"
[ -s mlp.html ] || fail "--out=mlp.html not written"

# ---- usage errors (2) and failures (1) ----------------------------------------------------------
mf report
expect_rc 2 "no folder"
mf report nothere
expect_rc 2 "missing folder"
grep -q "nothere is not a folder" err.txt || fail "missing folder message: $(cat err.txt)"
mf report runs --bogus
expect_rc 2 "unknown option"
mf report runs --out
expect_rc 2 "--out without a value"
mkdir empty
mf report empty
expect_rc 1 "a folder without runs"
grep -q "no finished runs below empty" err.txt || fail "no-runs message: $(cat err.txt)"
mf report --help
expect_rc 0 "--help"
grep -q "usage: melforge report" out.txt || fail "--help prints no usage"

# ---- a headless browser renders the page --------------------------------------------------------
BROWSER=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$BROWSER" ]; then
  echo "NOTICE: chromium is not installed; skipped the headless rendering check"
else
  PROFILE=$(mktemp -d "$T/profile.XXXXXX")
  set +e
  timeout 120 "$BROWSER" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$PROFILE" --screenshot="$T/shot.png" --window-size=1280,2000 \
    "file://$T/$H" >browser.txt 2>&1
  RC=$?
  set -e
  [ "$RC" -eq 0 ] || { cat browser.txt >&2; fail "chromium exited $RC"; }
  [ "$(png_size shot.png)" = "1280x2000" ] || fail "screenshot: $(png_size shot.png)"
  # A blank page compresses to a few KB; tables and the embedded plot take far more.
  [ "$(stat -c %s shot.png)" -gt 60000 ] || fail "the screenshot looks empty ($(stat -c %s shot.png) bytes)"
fi

if [ -n "${REPORT_E2E_KEEP:-}" ]; then
  mkdir -p "$REPORT_E2E_KEEP"
  cp -r runs "$REPORT_E2E_KEEP/"
  [ -f shot.png ] && cp shot.png "$REPORT_E2E_KEEP/"
fi
echo "report_cli: all checks passed"
