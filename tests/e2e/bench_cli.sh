#!/usr/bin/env bash
# Smoke test of `melforge bench`: model a and the feature benchmark run in --quick mode, and
# their JSON files have the schema compare_torch.sh and bench/torch/bench_models.py share.
# Never asserts on times or rates (the machine may be loaded); it checks the deterministic
# parts: parameter and MAC counts of model a equal PyTorch's, and the usage errors.
# Usage: bench_cli.sh MELFORGE_BINARY
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # fail, mf, expect_rc

MF=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
T=$(mktemp -d /tmp/mf_e2e_bench.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T"

mf bench a --quick --json a.json
expect_rc 0 "bench a --quick"
grep -q "^melforge .*threads=2, BLAS " out.txt || fail "no header line with threads and BLAS"
grep -q "^a  *MLP" out.txt || fail "no table row for model a"

/usr/bin/python3 - a.json <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
meta, rows = d["meta"], d["rows"]
for k in ("melforge", "threads", "blas_corename", "blas_config", "cpu_model", "env",
          "loadavg_start", "foreign_cores_at_start", "total_wall_s"):
    assert k in meta, "meta lacks " + k
for k in ("OPENBLAS_CORETYPE", "OMP_NUM_THREADS", "MELFORGE_THREADS"):
    assert k in meta["env"], "meta.env lacks " + k
assert meta["threads"] == 2, meta["threads"]
assert len(rows) == 1, len(rows)
r = rows[0]
num = (int, float)
schema = {"key": str, "name": str, "input_shape": list, "params": int,
          "fwd_mmacs_per_sample": num, "train_batch": int, "train_steps_per_repeat": int,
          "train_samples_per_s": num, "train_samples_per_s_repeats": list,
          "train_gflops_est": num, "train_foreign_cores": list, "train_clean_repeats": int,
          "infer_batch": int, "infer_steps_per_repeat": int, "infer_samples_per_s": num,
          "infer_samples_per_s_repeats": list, "infer_gflops_est": num,
          "infer_foreign_cores": list, "infer_clean_repeats": int, "rss_base_mib": num,
          "rss_peak_infer_mib": num, "rss_peak_train_mib": num, "rss_peak_process_mib": num,
          "threads": int, "cpu_time_s": num, "wall_s": num}
for k, t in schema.items():
    assert k in r, "row lacks " + k
    assert isinstance(r[k], t), "%s is %r" % (k, r[k])
assert r["key"] == "a" and r["input_shape"] == [130, 13], r
# bench/torch/bench_models.py: 1,014,218 parameters, 1,013,376 forward MACs per sample.
assert r["params"] == 1014218, r["params"]
assert r["fwd_macs_per_sample"] == 1013376, r["fwd_macs_per_sample"]
assert r["train_batch"] == 32 and r["infer_batch"] == 64
assert len(r["train_samples_per_s_repeats"]) == len(r["train_foreign_cores"]) >= 1
assert all(x > 0 for x in r["train_samples_per_s_repeats"] + r["infer_samples_per_s_repeats"])
assert r["rss_peak_train_mib"] >= r["rss_base_mib"] > 0
EOF

mf bench features --quick --json f.json
expect_rc 0 "bench features --quick"
/usr/bin/python3 - f.json <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
rows = d["rows"]
got = sorted((r["feature"], r["threads"]) for r in rows)
assert got == [("logmel", 1), ("logmel", 2), ("mfcc13", 1), ("mfcc13", 2)], got
for r in rows:
    for k in ("impl", "tracks_per_s", "foreign_cores", "clean_repeats", "repeats"):
        assert k in r, "feature row lacks " + k
    assert r["tracks_per_s"] > 0
assert d["meta"]["frames"] == 1292, d["meta"]["frames"]
EOF

# Usage errors: exit 2 with a message naming the problem.
mf bench z
expect_rc 2 "unknown model"
grep -q "no benchmark architecture 'z'" err.txt || fail "unknown model: $(cat err.txt)"
mf bench --repeat 2
expect_rc 2 "misspelt option"
grep -q "did you mean '--repeats'" err.txt || fail "misspelt option: $(cat err.txt)"
mf bench a --json "$T/missing/dir/x.json"
expect_rc 1 "unwritable --json"
mf bench --help
expect_rc 0 "--help"
grep -q "usage: melforge bench" out.txt || fail "--help prints no usage"
echo "bench_cli: ok"
