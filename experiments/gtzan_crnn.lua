-- gtzan_crnn.lua — a convolutional-recurrent network (CNN + bidirectional LSTM + additive
-- attention pooling) on log-mel spectrograms of GTZAN segments, the notebooks' hybrid.
--
-- Expects GTZAN in the layout of its original archive, one folder per genre:
--   data/genres/blues/blues.00000.au ... data/genres/rock/rock.00099.au
--   (10 genres x 100 tracks of ~30 s, 22050 Hz mono; the Kaggle copy's genres_original/
--   with .wav files works too: point `audio` at it. Its jazz.00054.wav is broken and is
--   skipped with a warning.)
--
--   melforge run experiments/gtzan_crnn.lua
--
-- The recipe:
--   * the mel dataset of gtzan_cnn_mel.lua (10 segments of 3 s, 128 mel bands x 130 frames;
--     same recipe, so the cache data/gtzan_mel.h5 is shared)
--   * three conv blocks (32/64/128 filters, conv3x3 -> batchnorm -> ReLU -> 2x2 max-pool)
--     turn the spectrogram into a sequence over time; a bidirectional LSTM of 128 units
--     per direction reads it; additive attention pools it into one vector; dense 64 with
--     dropout 0.3 -> the genres
--   * Adam 1e-3, gradients clipped at norm 1 (recurrent layers need it), learning rate
--     halved after 5 epochs without progress of the validation loss
--   * a 64/16/20 % split of the tracks, stratified, grouped by track; min-max scaling fitted
--     on the training rows; early stopping with the best epoch's weights for the test set
local mf = require "melforge"

return mf.experiment {
  name = "gtzan_crnn", seed = 42,
  data = mf.dataset {
    audio = "data/genres", cache = "data/gtzan_mel.h5",
    feature = mf.feature("melspec", { n_mels = 128, n_fft = 2048, hop_length = 512 }),
    segments = 10, track_seconds = 30,
  },
  split = { train = 0.64, val = 0.16, test = 0.20, stratify = true, group = "track" },
  scaler = "minmax",
  model = mf.model("crnn", { filters = { 32, 64, 128 }, rnn = "lstm", hidden = 128,
                             bidirectional = true, pooling = "attention", attention_dim = 128,
                             dense = { 64 }, head_dropout = 0.3 }),
  optimizer = mf.optimizer("adam", { lr = 1e-3 }),
  schedule = mf.schedule("plateau", { factor = 0.5, patience = 5 }),
  epochs = 50, batch_size = 32, clip_grad_norm = 1.0,
  early_stopping = { monitor = "val_loss", patience = 10, restore_best = true },
  checkpoint = { monitor = "val_accuracy" },
}
