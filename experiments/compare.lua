-- compare.lua — MLP vs CNN vs CRNN vs CNN-Transformer on the demo corpus, three seeds each:
-- the mean and standard deviation of test accuracy (per 3 s segment) and track accuracy
-- (a track's segment probabilities averaged) per model, from the summaries mf.run returns,
-- and the comparison report runs/compare.html (curves of every run, McNemar's test and a
-- bootstrap interval of the accuracy difference between models on the same test rows).
--
--   melforge synth --out demo/genres        # once (make quickstart does it too)
--   melforge run experiments/compare.lua
--
-- Twelve short runs (small versions of each architecture, 8 epochs at most): about four
-- minutes on two cores. The seed changes the split, the initial weights, the
-- shuffling and dropout together, so the spread is what a reader of one number should
-- expect. Every run keeps its folder in runs/compare_<model>/<seed>; --resume skips the
-- finished ones after an interruption. Datasets come from demo_data.lua (shared caches).
local mf = require "melforge"
local data = require "demo_data"

local SEEDS = { 1, 2, 3 }

local common = {
  scaler = "minmax",
  optimizer = mf.optimizer("adam", { lr = 1e-3 }),
  epochs = 8, batch_size = 32,
  early_stopping = { monitor = "val_loss", patience = 3, restore_best = true },
}

local function experiment(keys)
  for k, v in pairs(common) do
    if keys[k] == nil then keys[k] = v end
  end
  return mf.experiment(keys)
end

local candidates = {
  experiment {
    name = "compare_mlp", data = data.mfcc,
    scaler = "standard", -- see quickstart.lua: MFCC 0 dwarfs the other coefficients
    model = mf.model("mlp", { hidden = { 512, 256, 64 }, dropout = { 0.3 } }),
  },
  experiment {
    name = "compare_cnn", data = data.mel,
    model = mf.model("cnn", { filters = { 16, 32, 64 }, dense = { 64 } }),
  },
  experiment {
    name = "compare_crnn", data = data.mel,
    model = mf.model("crnn", { filters = { 16, 32, 64 }, hidden = 64, attention_dim = 64,
                               dense = { 32 } }),
  },
  experiment {
    name = "compare_cnn_transformer", data = data.mel,
    model = mf.model("cnn_transformer", { filters = { 16, 32, 64 }, d_model = 64, heads = 4,
                                          layers = 2, ff = 128 }),
  },
}

-- Sample mean and standard deviation (n - 1, as pandas and R report it).
local function mean_std(xs)
  local n, sum, sq = #xs, 0, 0
  for _, x in ipairs(xs) do sum = sum + x end
  local mean = sum / n
  for _, x in ipairs(xs) do sq = sq + (x - mean) ^ 2 end
  return mean, n > 1 and math.sqrt(sq / (n - 1)) or 0
end

local rows, summaries = {}, {}
for _, e in ipairs(candidates) do
  local acc, track, seconds, params = {}, {}, 0, 0
  for _, seed in ipairs(SEEDS) do
    local s = mf.run(e, { seed = seed })
    summaries[#summaries + 1] = s
    acc[#acc + 1] = s.test.accuracy
    track[#track + 1] = s.test.track_accuracy
    seconds = seconds + s.train_seconds
    params = s.params_count
  end
  local am, as = mean_std(acc)
  local tm, ts = mean_std(track)
  rows[#rows + 1] = { e.model.name, params, am, as, tm, ts, seconds / #SEEDS }
end

print(string.format("\ncomparison over seeds %s (mean +- sample std)", table.concat(SEEDS, ", ")))
print(string.format("  %-16s %10s   %-14s   %-14s   %s", "model", "params", "test accuracy",
                    "track accuracy", "train time per run"))
for _, r in ipairs(rows) do
  print(string.format("  %-16s %10d   %.3f +- %.3f   %.3f +- %.3f   %.0f s", table.unpack(r)))
end

print("\ncomparison report: " .. mf.report(summaries, "runs/compare.html"))
