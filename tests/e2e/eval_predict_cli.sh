#!/usr/bin/env bash
# `melforge eval` and `melforge predict` from the command line, on a checkpoint the engine
# writes here: synth 3 genres x 4 tracks x 4 s, extract mel spectrograms, train a tiny MLP
# with `melforge run`; then eval on the run's test split (text and --json: the metrics equal
# summary.json's test metrics), eval on other datasets (all rows; a subset of the classes; an
# unknown class, another sample shape and other feature settings are reported), predict genres
# of audio files (text and --json in argument order; files that cannot be used are reported
# and give exit 1), a checkpoint trained on imported features refusing audio, and usage
# errors (exit 2).
# usage: eval_predict_cli.sh BUILD_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # fail, expect, has, lacks
mf=$(cd "$1" && pwd)/melforge
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "SKIP: $PY is not installed"; exit 77; }
tmp=$(mktemp -d /tmp/mf_e2e_eval.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

# ---- data and a run ------------------------------------------------------------------------
expect 0 "$mf" synth --out audio --genres 3 --tracks 4 --seconds 4 --seed 1
mel=(--feature melspec --set n_mels=32 --segments 2 --track-seconds 4)
expect 0 "$mf" extract --audio audio "${mel[@]}" --out mel.h5

# restore_best: the test metrics in summary.json are of best.h5.
cat >tiny.lua <<'EOF'
local mf = require "melforge"
return mf.experiment {
  name = "tiny", seed = 3,
  data = mf.dataset { path = "mel.h5" },
  model = mf.model("mlp", { hidden = { 16 } }),
  optimizer = mf.optimizer("adam", { lr = 3e-3 }),
  epochs = 4, batch_size = 8,
  split = { train = 0.5, val = 0.25, test = 0.25 },
  early_stopping = { enabled = false, restore_best = true },
}
EOF
expect 0 "$mf" run tiny.lua
run=runs/tiny/3
ckpt=$run/best.h5
[ -f "$ckpt" ] && [ -f "$run/summary.json" ] || fail "the run wrote no best.h5 / summary.json"
"$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); assert s["evaluated_weights"] == "best", s["evaluated_weights"]' \
  "$run/summary.json" || fail "the run did not test the best weights"

# ---- eval on the run's test split ------------------------------------------------------------
expect 0 "$mf" eval "$ckpt"
for s in "precision    recall  f1-score   support" "macro avg" "weighted avg" "top-3 accuracy" \
         "track accuracy" "(3 tracks)" "confusion matrix" "true \\ pred" "electronic" "jazz" \
         "orchestral" "the run's test split: 6 segments of 3 tracks" "seed 3" "dataset     mel.h5"; do
  has out "$s"
done
# The report's accuracy line is summary.json's test accuracy.
acc=$("$PY" -c 'import json,sys; print("%.4f" % json.load(open(sys.argv[1]))["test"]["accuracy"])' "$run/summary.json")
grep -qE "^accuracy +$acc +6$" out || { cat out >&2; fail "the report's accuracy is not summary.json's $acc"; }

expect 0 "$mf" eval "$ckpt" --json
"$PY" - "$run/summary.json" out <<'EOF' || fail "eval --json does not reproduce summary.json's test metrics"
import json, sys
want = json.load(open(sys.argv[1]))["test"]
got = json.load(open(sys.argv[2]))
for k in ("accuracy", "track_accuracy", "macro_f1", "weighted_f1", "top_k_accuracy", "loss"):
    assert abs(got[k] - want[k]) <= 1e-9 * max(1.0, abs(want[k])), (k, got[k], want[k])
for k in ("n", "n_tracks", "confusion", "top_k"):
    assert got[k] == want[k], (k, got[k], want[k])
assert got["rows"] == "test" and got["checkpoint"].endswith("best.h5"), got
EOF

# last.h5 holds other weights than the ones summary.json tested: said so.
expect 0 "$mf" eval "$run/last.h5" --top 1 --batch 2
has out "summary.json's test metrics are of the best weights"
lacks out "top-1 accuracy"

# From another folder the dataset is found above the checkpoint.
(cd runs && "$mf" eval tiny/3/best.h5 --json >../out 2>../err) || fail "eval from runs/ failed"
"$PY" -c 'import json,sys; assert json.load(open("out"))["n"] == 6' || fail "eval from runs/: wrong rows"

# ---- eval on other datasets ----------------------------------------------------------------
expect 0 "$mf" synth --out audio2 --genres 3 --tracks 2 --seconds 4 --seed 9
expect 0 "$mf" extract --audio audio2 "${mel[@]}" --out other.h5
expect 0 "$mf" eval "$ckpt" other.h5
has out "all: 12 segments of 6 tracks"
has out "dataset     other.h5"
lacks err "warning"
expect 0 "$mf" eval "$ckpt" other.h5 --json
"$PY" -c 'import json; o=json.load(open("out")); assert o["n"] == 12 and o["n_tracks"] == 6 and o["rows"] == "all", o' \
  || fail "eval other.h5 --json: wrong rows"

# Two of the three classes: evaluated, the missing one has support 0.
expect 0 "$mf" synth --out audio_two --genres 2 --tracks 2 --seconds 4 --seed 4
expect 0 "$mf" extract --audio audio_two "${mel[@]}" --out two.h5
expect 0 "$mf" eval "$ckpt" two.h5
has out "the dataset lacks 1 of the checkpoint's 3 classes"

# A class the checkpoint does not know.
expect 0 "$mf" synth --out audio_four --genres 4 --tracks 1 --seconds 4 --seed 4
expect 0 "$mf" extract --audio audio_four "${mel[@]}" --out four.h5
expect 1 "$mf" eval "$ckpt" four.h5
has err "class 'rock' is not one the checkpoint"

# Another sample shape: both shapes and the difference named.
expect 0 "$mf" extract --audio audio2 --feature melspec --set n_mels=16 --segments 2 --track-seconds 4 --out mel16.h5
expect 1 "$mf" eval "$ckpt" mel16.h5
has err "[16, 87]"
has err "[32, 87]"
has err "n_mels: 16 in the dataset, 32 in the checkpoint"

# Same shape, other settings: evaluated with a warning naming the difference.
expect 0 "$mf" extract --audio audio2 "${mel[@]}" --pad zero --out padzero.h5
expect 0 "$mf" eval "$ckpt" padzero.h5
has err "warning"
has err 'segmenting pad: "zero" in the dataset, "min" in the checkpoint'

# ---- predict --------------------------------------------------------------------------------
some=audio/jazz/jazz.00001.wav
other=audio2/orchestral/orchestral.00000.wav
expect 0 "$mf" predict "$ckpt" "$some" "$other" --top 2 --json
"$PY" -c 'import json,sys; json.load(sys.stdin)' <out || fail "predict --json is not JSON"
"$PY" - "$some" "$other" <<'EOF' || fail "predict --json has the wrong content"
import json, sys
res = json.load(open("out"))
assert [r["file"] for r in res] == sys.argv[1:3], res
for r in res:
    assert r["segments"] == 2, r
    assert len(r["top"]) == 2, r
    p = r["probabilities"]
    assert sorted(p) == ["electronic", "jazz", "orchestral"], p
    assert abs(sum(p.values()) - 1) < 1e-4, p
    ranked = sorted(p, key=lambda c: -p[c])
    assert [t["class"] for t in r["top"]] == ranked[:2], r
    assert all(abs(t["probability"] - p[t["class"]]) < 1e-9 for t in r["top"]), r
EOF

expect 0 "$mf" predict "$ckpt" "$some" "$other"
[ "$(wc -l <out)" -eq 2 ] || { cat out >&2; fail "predict: expected one line per file"; }
grep -qE "^$some: [a-z]+ [01]\.[0-9]{2}, [a-z]+ [01]\.[0-9]{2}, [a-z]+ [01]\.[0-9]{2}   \(2 segments\)$" out \
  || { cat out >&2; fail "predict: unexpected line format"; }
[ "$(sed -n 2p out | cut -d: -f1)" = "$other" ] || { cat out >&2; fail "predict: output not in argument order"; }

# A missing file and one too short: reported, skipped, the others done, exit 1.
"$PY" -c '
import struct, wave
w = wave.open("short.wav", "wb"); w.setnchannels(1); w.setsampwidth(2); w.setframerate(22050)
w.writeframes(struct.pack("<h", 0) * 22050); w.close()'
expect 1 "$mf" predict "$ckpt" missing.wav "$some" short.wav
has err "missing.wav"
has err "short.wav: shorter than one segment (1.00 s < 2.00 s)"
has err "2 of 3 files could not be classified"
has out "$some: "
expect 1 "$mf" predict "$ckpt" missing.wav --json
"$PY" -c 'import json,sys; assert json.load(sys.stdin) == []' <out || fail "predict --json with no usable file"

# A checkpoint trained on imported features cannot read audio.
"$PY" - <<'EOF'
import json, random
random.seed(1)
labels = [c for c in range(3) for _ in range(8)]
mfcc = [[[random.gauss(c, 1) for _ in range(4)] for _ in range(5)] for c in labels]
json.dump({"mapping": ["blues", "classical", "country"], "labels": labels, "mfcc": mfcc},
          open("data.json", "w"))
EOF
expect 0 "$mf" import json data.json mfcc.h5
sed -e 's/mel.h5/mfcc.h5/' -e 's/"tiny"/"imported"/' -e 's/restore_best = true/restore_best = false/' \
  -e 's/split = {.*}/split = { train = 0.5, val = 0.25, test = 0.25, group = "none" }/' tiny.lua >imported.lua
expect 0 "$mf" run imported.lua
expect 0 "$mf" eval runs/imported/3/last.h5 --json
"$PY" - runs/imported/3/summary.json <<'EOF' || fail "eval of the imported run does not reproduce its summary"
import json, sys
want = json.load(open(sys.argv[1]))["test"]
got = json.load(open("out"))
assert got["n"] == want["n"] and got["confusion"] == want["confusion"], (got, want)
assert abs(got["accuracy"] - want["accuracy"]) < 1e-9, (got["accuracy"], want["accuracy"])
EOF
expect 1 "$mf" predict runs/imported/3/last.h5 "$some"
has err "imported from json"
has err "cannot classify audio files"

# ---- usage and runtime errors ---------------------------------------------------------------
expect 2 "$mf" eval
expect 2 "$mf" eval "$ckpt" --bogus
has err "unknown option '--bogus'"
expect 2 "$mf" eval "$ckpt" --top 4
has err "at most 3"
expect 2 "$mf" eval "$ckpt" --batch 0
expect 2 "$mf" eval "$ckpt" a.h5 b.h5
expect 1 "$mf" eval nope.h5
has err "nope.h5"
expect 1 "$mf" eval "$ckpt" nope.h5
has err "nope.h5"
expect 2 "$mf" predict
expect 2 "$mf" predict "$ckpt"
has err "no audio files given"
expect 2 "$mf" predict "$ckpt" "$some" --top 0
expect 2 "$mf" predict "$ckpt" "$some" --jsn
has err "did you mean '--json'"
expect 0 "$mf" eval --help
has out "usage: melforge eval"
expect 0 "$mf" predict --help
has out "usage: melforge predict"
echo "eval_predict_cli: ok"
