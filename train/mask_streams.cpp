// The random streams of the dropout and stochastic-depth masks (see mask_streams.h).
#include "train/mask_streams.h"

#include "layers/dropout.h"

namespace cxr {
namespace {

struct MaskModules {
  std::vector<Dropout*> dropouts;
  std::vector<StochasticDepth*> depths;
};

void collect(Module& m, MaskModules& out) {
  if (auto* d = dynamic_cast<Dropout*>(&m)) out.dropouts.push_back(d);
  if (auto* s = dynamic_cast<StochasticDepth*>(&m)) out.depths.push_back(s);
  for (auto& [name, child] : m.named_children()) collect(*child, out);
}

MaskModules mask_modules(Module& model) {
  MaskModules mm;
  collect(model, mm);
  return mm;
}

// splitmix64 of (seed, k): the seed of mask module k.
std::uint64_t mask_seed(std::uint64_t seed, std::uint64_t k) {
  std::uint64_t z = seed * 0x9E3779B97F4A7C15ull + (k + 1) * 0xBF58476D1CE4E5B9ull;
  z ^= z >> 31;
  z *= 0x94D049BB133111EBull;
  return z ^ (z >> 29);
}

}  // namespace

void set_mask_streams(Module& model, std::uint64_t seed, const std::vector<std::uint64_t>& offsets) {
  const MaskModules mm = mask_modules(model);
  std::size_t k = 0;
  auto offset = [&](std::size_t i) { return i < offsets.size() ? offsets[i] : 0; };
  for (auto* d : mm.dropouts) d->set_rng(mask_seed(seed, k), offset(k)), ++k;
  for (auto* s : mm.depths) s->set_rng(mask_seed(seed, k), offset(k)), ++k;
}

void place_mask_counters(Module& model, Device device) {
  const MaskModules mm = mask_modules(model);
  for (auto* d : mm.dropouts) d->place_counter(device);
  for (auto* s : mm.depths) s->place_counter(device);
}

std::vector<std::uint64_t> mask_offsets(Module& model) {
  const MaskModules mm = mask_modules(model);
  std::vector<std::uint64_t> o;
  for (auto* d : mm.dropouts) o.push_back(d->offset());
  for (auto* s : mm.depths) o.push_back(s->offset());
  return o;
}

}  // namespace cxr
