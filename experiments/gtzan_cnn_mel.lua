-- gtzan_cnn_mel.lua — a CNN on log-mel spectrograms of GTZAN segments, the Keras/PyTorch
-- notebooks' second model, with an honest evaluation.
--
-- Expects GTZAN in the layout of its original archive, one folder per genre:
--   data/genres/blues/blues.00000.au ... data/genres/rock/rock.00099.au
--   (10 genres x 100 tracks of ~30 s, 22050 Hz mono; the Kaggle copy's genres_original/
--   with .wav files works too: point `audio` at it. Its jazz.00054.wav is broken and is
--   skipped with a warning.)
--
--   melforge run experiments/gtzan_cnn_mel.lua
--
-- The recipe:
--   * 10 segments of 3 s per track, 128 mel bands (n_fft 2048, hop 512, librosa's
--     melspectrogram + power_to_db) -> [128, 130] per segment; a segment running past the
--     end of a shorter file is padded with its spectrogram's floor
--   * three blocks of [conv3x3 -> batchnorm -> ReLU] x 2, max-pool and dropout 0.25,
--     filters 32/64/128, global average pooling, dense 128 with dropout 0.5
--   * Adam 1e-3 with weight decay 1e-4, gradients clipped at norm 1, learning rate halved
--     after 5 epochs without progress of the validation loss
--   * a 64/16/20 % split of the tracks, stratified by genre, grouped by track; min-max
--     scaling fitted on the training rows; early stopping with the best epoch's weights
--     evaluated on the test set, per segment and per track
--   * SpecAugment on training batches: two frequency masks of up to 15 mel bands and two
--     time masks of up to 25 frames, filled with the segment's mean (the notebooks' layers)
--
-- The features are extracted once into data/gtzan_mel.h5, shared with gtzan_crnn.lua and
-- gtzan_cnn_transformer.lua (same recipe).
local mf = require "melforge"

return mf.experiment {
  name = "gtzan_cnn_mel", seed = 42,
  data = mf.dataset {
    audio = "data/genres", cache = "data/gtzan_mel.h5",
    feature = mf.feature("melspec", { n_mels = 128, n_fft = 2048, hop_length = 512 }),
    segments = 10, track_seconds = 30,
  },
  split = { train = 0.64, val = 0.16, test = 0.20, stratify = true, group = "track" },
  scaler = "minmax",
  augment = { mf.augment("specaugment", { freq_masks = 2, freq_mask = 15, time_masks = 2,
                                          time_mask = 25, mask_value = "mean" }) },
  model = mf.model("cnn", { filters = { 32, 64, 128 }, dense = { 128 }, dropout = 0.25,
                            head_dropout = 0.5 }),
  optimizer = mf.optimizer("adam", { lr = 1e-3, weight_decay = 1e-4 }),
  schedule = mf.schedule("plateau", { factor = 0.5, patience = 5 }),
  epochs = 50, batch_size = 32, clip_grad_norm = 1.0,
  early_stopping = { monitor = "val_loss", patience = 10, restore_best = true },
  checkpoint = { monitor = "val_accuracy" },
}
