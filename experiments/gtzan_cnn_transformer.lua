-- gtzan_cnn_transformer.lua — conv blocks feeding a transformer encoder over time, on
-- log-mel spectrograms of GTZAN segments, the notebooks' attention model.
--
-- Expects GTZAN in the layout of its original archive, one folder per genre:
--   data/genres/blues/blues.00000.au ... data/genres/rock/rock.00099.au
--   (10 genres x 100 tracks of ~30 s, 22050 Hz mono; the Kaggle copy's genres_original/
--   with .wav files works too: point `audio` at it. Its jazz.00054.wav is broken and is
--   skipped with a warning.)
--
--   melforge run experiments/gtzan_cnn_transformer.lua
--
-- The recipe:
--   * the mel dataset of gtzan_cnn_mel.lua (10 segments of 3 s, 128 mel bands x 130 frames;
--     same recipe, so the cache data/gtzan_mel.h5 is shared)
--   * three conv blocks (32/64/128 filters; pooling 2x1 keeps the time resolution) project
--     to d_model 128 per frame; sinusoidal positional encoding; 2 encoder layers with 4
--     heads and a 256-wide feed-forward, dropout 0.1; mean over time -> the genres
--   * AdamW at 3e-4 with decoupled weight decay 0.01, 5 epochs of linear warm-up then
--     cosine annealing, gradients clipped at norm 1, label smoothing 0.1 — the usual
--     transformer training set-up
--   * a 64/16/20 % split of the tracks, stratified, grouped by track; min-max scaling fitted
--     on the training rows; early stopping with the best epoch's weights for the test set
local mf = require "melforge"

return mf.experiment {
  name = "gtzan_cnn_transformer", seed = 42,
  data = mf.dataset {
    audio = "data/genres", cache = "data/gtzan_mel.h5",
    feature = mf.feature("melspec", { n_mels = 128, n_fft = 2048, hop_length = 512 }),
    segments = 10, track_seconds = 30,
  },
  split = { train = 0.64, val = 0.16, test = 0.20, stratify = true, group = "track" },
  scaler = "minmax",
  model = mf.model("cnn_transformer", { filters = { 32, 64, 128 }, d_model = 128, heads = 4,
                                        layers = 2, ff = 256, dropout = 0.1,
                                        pooling = "mean", positional = true }),
  optimizer = mf.optimizer("adamw", { lr = 3e-4, weight_decay = 0.01 }),
  schedule = mf.schedule("cosine", { t_max = 50, eta_min = 1e-6, warmup = 5,
                                     warmup_start_factor = 0.1 }),
  epochs = 50, batch_size = 32, clip_grad_norm = 1.0, label_smoothing = 0.1,
  early_stopping = { monitor = "val_loss", patience = 10, restore_best = true },
  checkpoint = { monitor = "val_accuracy" },
}
