#!/usr/bin/env bash
# End-to-end test of `melforge run` on a tiny dataset written with h5py: the run folder and
# summary.json keys (DESIGN.md section 5), exit codes (0 / 1 script error / 2 usage error /
# 130 interrupted), --resume of finished runs, a sweep script using mf.run's results, the
# determinism requirement (same experiment and seed -> identical metrics and weights) and an
# interrupted run resumed with --resume ending bit-identical to an uninterrupted one.
#
# The interruption uses the test hook MELFORGE_TEST_INTERRUPT_AFTER_STEPS=N (cmd_run.c: it
# raises the same flag as a first Ctrl-C, after the N-th step), so the point is exact; a
# real SIGINT is checked too.
#
# Usage: run_cli.sh BUILD_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # fail, mf, expect_rc

BUILD=$(cd "$1" && pwd)
MF=$BUILD/melforge
PY=/usr/bin/python3
if ! "$PY" -c 'import h5py, numpy' 2>/dev/null; then
  echo "SKIP: python3-h5py / python3-numpy are not installed (scripts/install-deps.sh)"
  exit 77
fi

T=$(mktemp -d /tmp/mf_e2e_run.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T"

# ---- a tiny dataset: 3 classes x 10 tracks x 4 segments of [10, 6] ----------------------------
"$PY" - <<'EOF'
import h5py, numpy as np
rng = np.random.default_rng(0)
classes = ["blues", "jazz", "rock"]
feats, labels, track, seg, tracks = [], [], [], [], []
for c in range(3):
    for t in range(10):
        tracks.append(f"{classes[c]}/{classes[c]}.{t:05d}.au")
        for s in range(4):
            feats.append(rng.normal(0, 1, (10, 6)).astype(np.float32)
                         + c * np.linspace(0.2, 1.0, 6, dtype=np.float32))
            labels.append(c); track.append(len(tracks) - 1); seg.append(s)
with h5py.File("tiny.h5", "w") as f:
    f["features"] = np.stack(feats)
    f["labels"] = np.array(labels, np.int32)
    f["track"] = np.array(track, np.int32)
    f["segment"] = np.array(seg, np.int32)
    st = h5py.string_dtype()
    f.create_dataset("classes", data=np.array(classes, dtype=object), dtype=st)
    f.create_dataset("tracks", data=np.array(tracks, dtype=object), dtype=st)
    f.attrs["feature"] = "mfcc"
    f.attrs["feature_params"] = "{}"
    f.attrs["sample_rate"] = 22050.0
    f.attrs["segmenting"] = "{}"
    f.attrs["source"] = "run_cli.sh"
EOF

# Dropout, a stepped schedule and early stopping: everything resume has to restore.
cat >tiny.lua <<'EOF'
local mf = require "melforge"
return mf.experiment {
  name = "tiny", seed = 7,
  data = "tiny.h5",
  model = mf.model("mlp", { hidden = { 32, 16 }, dropout = { 0.2 } }),
  optimizer = mf.optimizer("adam", { lr = 3e-3 }),
  schedule = mf.schedule("step", { step_size = 1, gamma = 0.8 }),
  early_stopping = { monitor = "val_loss", patience = 10, restore_best = true },
  epochs = 4, batch_size = 8,
}
EOF

# ---- a run and its folder -------------------------------------------------------------------
mf run tiny.lua --out a
expect_rc 0 "run"
R=a/tiny/7
for f in metrics.csv summary.json config.json best.h5 last.h5; do
  [ -s "$R/$f" ] || fail "$R/$f is missing"
done
[ "$(wc -l <"$R/metrics.csv")" -eq 5 ] || fail "metrics.csv should hold a header and 4 epochs"
grep -q "^epoch 4/4 " out.txt || fail "no per-epoch line in the output"
grep -q "^results" out.txt || fail "no results table"
"$PY" - "$R" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
want = ["best_epoch", "epochs_run", "seed", "model", "params_count", "train_seconds", "test", "val"]
missing = [k for k in want if k not in s]
for part in ("test", "val"):
    for k in ("accuracy", "loss", "macro_f1", "track_accuracy", "confusion", "per_class"):
        if k not in (s.get(part) or {}):
            missing.append(part + "." + k)
assert not missing, "summary.json lacks " + ", ".join(missing)
assert s["seed"] == 7 and s["model"] == "mlp" and s["epochs_run"] == 4, s
c = json.load(open(sys.argv[1] + "/config.json"))
assert c["name"] == "tiny" and c["epochs"] == 4 and c["model"]["name"] == "mlp", c
EOF

# Same experiment and seed, again: identical metrics and weights.
compare() {
  "$PY" - "$1" "$2" <<'EOF'
import csv, json, sys
import h5py, numpy as np
a, b = sys.argv[1], sys.argv[2]
sa, sb = (json.load(open(d + "/summary.json")) for d in (a, b))
for k in ("test", "val", "best_epoch", "epochs_run", "params_count", "stopped_early"):
    assert sa[k] == sb[k], f"summary.json {k} differs: {sa[k]} vs {sb[k]}"
def rows(d):  # metrics.csv without the wall-clock column
    r = list(csv.DictReader(open(d + "/metrics.csv")))
    for x in r:
        x.pop("seconds", None)
    return r
assert rows(a) == rows(b), "metrics.csv differs"
for f in ("best.h5", "last.h5"):
    with h5py.File(f"{a}/{f}") as x, h5py.File(f"{b}/{f}") as y:
        names = []
        x.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        weights = [n for n in names if n.startswith(("model/", "optimizer/"))]
        assert weights, f"{f} holds no weights"
        for n in weights:
            assert n in y, f"{f}: {n} missing in {b}"
            assert x[n][()].tobytes() == y[n][()].tobytes(), f"{f}: {n} differs"
EOF
}

mf run tiny.lua --out b
expect_rc 0 "second run"
compare a/tiny/7 b/tiny/7 || fail "two runs of the same experiment and seed differ"

# ---- interrupted, then resumed: bit-identical to the uninterrupted run -----------------------
# 18 training tracks x 4 segments / batch 8 = 9 steps per epoch: step 13 is inside epoch 2.
set +e
MELFORGE_TEST_INTERRUPT_AFTER_STEPS=13 "$MF" run tiny.lua --out c >out.txt 2>err.txt
RC=$?
set -e
expect_rc 130 "interrupted run"
[ -s c/tiny/7/last.h5 ] || fail "the interrupted run left no last.h5"
[ ! -e c/tiny/7/summary.json ] || fail "the interrupted run wrote summary.json"
grep -q -- "--resume" err.txt || fail "no resume hint after the interruption"
mf run tiny.lua --out c --resume
expect_rc 0 "resumed run"
grep -q "resuming" out.txt || fail "the resumed run did not say it resumed"
compare a/tiny/7 c/tiny/7 || fail "interrupted + resumed differs from the uninterrupted run"

# A real Ctrl-C while training: exit 130 with last.h5 written.
"$MF" run tiny.lua --out d --set epochs=100000 --set early_stopping=false >out.txt 2>err.txt &
PID=$!
for _ in $(seq 1 600); do
  [ -s d/tiny/7/metrics.csv ] && break
  sleep 0.1
done
kill -INT "$PID"
set +e
wait "$PID"
RC=$?
set -e
expect_rc 130 "run stopped by SIGINT"
[ -s d/tiny/7/last.h5 ] || fail "SIGINT left no last.h5"

# ---- --resume skips finished runs -----------------------------------------------------------
cp a/tiny/7/summary.json before.json
mf run tiny.lua --out a --resume
expect_rc 0 "resume of a finished run"
grep -q "skipped" out.txt || fail "a finished run was not reported as skipped"
cmp -s before.json a/tiny/7/summary.json || fail "a finished run was run again"

# ---- a sweep script that reads mf.run's results -------------------------------------------------
cat >sweep.lua <<'EOF'
local mf = require "melforge"
local base = mf.experiment { name = "sweep", data = "tiny.h5", epochs = 2, batch_size = 16,
                             model = mf.model("mlp", { hidden = { 16 } }) }
local sum = 0
for seed = 1, 2 do
  local s = mf.run(base, { seed = seed })
  assert(s.seed == seed and s.test.accuracy >= 0, "bad summary")
  sum = sum + s.test.accuracy
end
print(string.format("mean test accuracy %.4f", sum / 2))
EOF
mf run sweep.lua --out s
expect_rc 0 "sweep"
grep -q "mean test accuracy" out.txt || fail "the sweep did not print its mean"
[ -s s/sweep/1/summary.json ] && [ -s s/sweep/2/summary.json ] || fail "sweep run folders missing"

# ---- usage errors (2) and script errors (1) ------------------------------------------------
mf run
expect_rc 2 "no script"
mf run tiny.lua --bogus
expect_rc 2 "unknown option"
mf run nothere.lua
expect_rc 2 "missing script"
mf run tiny.lua --set epoch=3
expect_rc 2 "misspelt override key"
grep -q "did you mean 'epochs'" err.txt || fail "no hint for --set epoch=3: $(cat err.txt)"
mf run tiny.lua --set epochs=three
expect_rc 2 "override value of the wrong type"

cat >bad.lua <<'EOF'
local mf = require "melforge"
return mf.experiment {
  name = "bad", data = "tiny.h5",
  model = mf.model("mlp", { hiden = { 32 } }),
}
EOF
mf run bad.lua
expect_rc 1 "script error"
grep -q "bad.lua:4: model 'mlp' has no parameter 'hiden'; did you mean 'hidden'?" err.txt ||
  fail "the script error does not point at bad.lua:4 with a hint: $(cat err.txt)"
mf run tiny.lua --set model.hiden=3 --out e
expect_rc 1 "misspelt plugin parameter in an override"
grep -q "did you mean 'hidden'" err.txt || fail "no hint for model.hiden: $(cat err.txt)"

echo "run_cli: all checks passed"
