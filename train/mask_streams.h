// The random streams of a model's dropout and stochastic-depth masks, as a run sees them: each
// mask module draws from a counter-based stream seeded by (run seed, its position in the model),
// at an offset that advances with every training forward. The offsets are the whole state:
// last.safetensors keeps them, and --resume puts them back, so a resumed run draws the same masks.
#pragma once

#include <cstdint>
#include <vector>

#include "layers/module.h"

namespace cxr {

// Seeds every mask module from (seed, its position) at the given offsets (missing: 0).
void set_mask_streams(Module& model, std::uint64_t seed, const std::vector<std::uint64_t>& offsets);
// Puts every mask counter on `device`: on a CUDA device they advance in device memory, so replays
// of a captured step draw fresh masks (the capture itself must not upload them).
void place_mask_counters(Module& model, Device device);
// The offsets of the next training forward (read back from the device: a synchronisation).
std::vector<std::uint64_t> mask_offsets(Module& model);

}  // namespace cxr
