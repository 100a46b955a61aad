// request_cost.cpp: sectors and bank wavefronts of one warp request (see request_cost.h).
#include "cuda_emu/counting/request_cost.h"

#include <algorithm>
#include <array>

namespace cuda_emu::counting {

namespace {

// Distinct bytes covered by the lanes' [address, address + bytes) ranges.
std::uint32_t distinct_bytes(const lane_access* lanes, std::uint32_t mask) {
  std::array<std::pair<std::uint64_t, std::uint64_t>, 32> ranges;
  unsigned n = 0;
  for (unsigned l = 0; l < 32; ++l)
    if ((mask >> l) & 1u) ranges[n++] = {lanes[l].address, lanes[l].address + lanes[l].bytes};
  std::sort(ranges.begin(), ranges.begin() + n);
  std::uint64_t total = 0, covered_to = 0;
  for (unsigned i = 0; i < n; ++i) {
    const auto [lo, hi] = ranges[i];
    const std::uint64_t start = std::max(lo, covered_to);
    if (hi > start) total += hi - start;
    covered_to = std::max(covered_to, hi);
  }
  return static_cast<std::uint32_t>(total);
}

}  // namespace

request_cost global_request_cost(const lane_access* lanes, std::uint32_t mask) {
  // Sector indices of all lanes (a lane's bytes may straddle sectors).
  std::uint64_t sectors[32 * 4];
  unsigned n = 0;
  for (unsigned l = 0; l < 32; ++l) {
    if (!((mask >> l) & 1u) || lanes[l].bytes == 0) continue;
    const std::uint64_t first = lanes[l].address >> 5, last = (lanes[l].address + lanes[l].bytes - 1) >> 5;
    for (std::uint64_t s = first; s <= last && n < std::size(sectors); ++s) sectors[n++] = s;
  }
  std::sort(sectors, sectors + n);
  request_cost c;
  c.units = static_cast<std::uint32_t>(std::unique(sectors, sectors + n) - sectors);
  c.distinct_bytes = distinct_bytes(lanes, mask);
  c.ideal_units = (c.distinct_bytes + 31) / 32;
  return c;
}

request_cost shared_request_cost(const lane_access* lanes, std::uint32_t mask) {
  std::uint32_t widest = 0;
  for (unsigned l = 0; l < 32; ++l)
    if ((mask >> l) & 1u) widest = std::max(widest, lanes[l].bytes);
  // Lanes per phase: at most 128 bytes pass the banks at once.
  const unsigned per_phase = widest <= 4 ? 32 : widest <= 8 ? 16 : 8;
  request_cost c;
  std::uint64_t all_words[32 * 4];
  unsigned all_n = 0;
  for (unsigned first = 0; first < 32; first += per_phase) {
    std::uint64_t words[32 * 4];
    unsigned n = 0;
    for (unsigned l = first; l < first + per_phase; ++l) {
      if (!((mask >> l) & 1u) || lanes[l].bytes == 0) continue;
      const std::uint64_t w0 = lanes[l].address >> 2, w1 = (lanes[l].address + lanes[l].bytes - 1) >> 2;
      for (std::uint64_t w = w0; w <= w1 && n < std::size(words); ++w) words[n++] = w;
    }
    if (n == 0) continue;
    std::sort(words, words + n);
    n = static_cast<unsigned>(std::unique(words, words + n) - words);
    unsigned per_bank[32] = {};
    unsigned deepest = 0;
    for (unsigned i = 0; i < n; ++i) deepest = std::max(deepest, ++per_bank[words[i] % 32]);
    c.units += deepest;
    for (unsigned i = 0; i < n && all_n < std::size(all_words); ++i) all_words[all_n++] = words[i];
  }
  std::sort(all_words, all_words + all_n);
  const unsigned distinct_words = static_cast<unsigned>(std::unique(all_words, all_words + all_n) - all_words);
  c.ideal_units = (distinct_words + 31) / 32;
  c.distinct_bytes = distinct_bytes(lanes, mask);
  return c;
}

}  // namespace cuda_emu::counting
