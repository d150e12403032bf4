-- demo_data.lua — the two feature datasets of the demo corpus, shared by quickstart.lua and
-- compare.lua (`require "demo_data"`): one recipe each, so both scripts reuse one cache.
--
-- The corpus comes from `melforge synth --out demo/genres` (6 genres x 20 tracks of 30 s at
-- 22050 Hz, the GTZAN layout). Each track is cut into 10 segments of 3 s, as the GTZAN
-- notebooks do; a segment gives 130 frames at hop 512.
local mf = require "melforge"

local function recipe(cache, feature)
  return mf.dataset {
    audio = "demo/genres", cache = cache, feature = feature,
    segments = 10, track_seconds = 30,
  }
end

return {
  -- 130 frames x 13 coefficients per segment
  mfcc = recipe("demo/mfcc.h5", mf.feature("mfcc", { n_mfcc = 13 })),
  -- 64 mel bands x 130 frames per segment (half the notebooks' 128: twice as fast)
  mel = recipe("demo/mel.h5", mf.feature("melspec", { n_mels = 64 })),
}
