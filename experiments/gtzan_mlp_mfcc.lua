-- gtzan_mlp_mfcc.lua — the GTZAN MFCC + MLP notebook recipe (Valerio Velardo's "Deep
-- Learning for Audio with Python" series), with an honest evaluation.
--
-- Expects GTZAN in the layout of its original archive, one folder per genre:
--   data/genres/blues/blues.00000.au ... data/genres/rock/rock.00099.au
--   (10 genres x 100 tracks of ~30 s, 22050 Hz mono; the Kaggle copy's genres_original/
--   with .wav files works too: point `audio` at it. Its jazz.00054.wav is broken and is
--   skipped with a warning.)
--
--   melforge run experiments/gtzan_mlp_mfcc.lua
--
-- The recipe, as in the notebook:
--   * each track cut into 10 segments of 3 s; 13 MFCCs (n_fft 2048, hop 512) give 130
--     frames per segment; segments running past the end of a shorter file are dropped
--   * an MLP 512-256-64 with ReLU and dropout 0.3, Adam at 1e-4, batches of 32
-- and what the notebook left out:
--   * a 64/16/20 % train/validation/test split of the tracks, stratified by genre and
--     grouped by track: the notebook's per-segment split puts segments of one song on both
--     sides and inflates test accuracy (--set split.group=none reproduces it)
--   * min-max scaling fitted on the training rows only, per MFCC coefficient (coefficient 0
--     is far larger than the rest; one global range would flatten them)
--   * early stopping on the validation loss, test metrics from the best epoch's weights,
--     track-level accuracy (majority vote of the segments) next to the segment accuracy
--
-- The features are extracted once into data/gtzan_mfcc.h5 and reused.
local mf = require "melforge"

return mf.experiment {
  name = "gtzan_mlp_mfcc", seed = 42,
  data = mf.dataset {
    audio = "data/genres", cache = "data/gtzan_mfcc.h5",
    feature = mf.feature("mfcc", { n_mfcc = 13, n_fft = 2048, hop_length = 512 }),
    segments = 10, track_seconds = 30, pad = "drop",
  },
  split = { train = 0.64, val = 0.16, test = 0.20, stratify = true, group = "track" },
  scaler = { kind = "minmax", per_band = true },
  model = mf.model("mlp", { hidden = { 512, 256, 64 }, dropout = { 0.3 } }),
  optimizer = mf.optimizer("adam", { lr = 1e-4 }),
  epochs = 100, batch_size = 32,
  early_stopping = { monitor = "val_loss", patience = 10, restore_best = true },
  checkpoint = { monitor = "val_accuracy" },
}
