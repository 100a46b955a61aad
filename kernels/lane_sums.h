// Double sums in four interleaved lanes, for the CPU references' per-channel and per-row sums
// (batch norm, layer norm):
//
//   value i of a span goes to lane i % 4, in order; the sum is (lane 0 + lane 1) + (lane 2 + lane 3)
//
// A single running double sum is a chain of dependent additions, one per 4 cycles: batch norm's
// statistics and gradient sums were 9 % of a ResNet-50 training step on the CPU, layer norm's
// row sums 3 % of ConvNeXt-Tiny's. Four chains pipeline, and GCC packs them into vector
// additions. A sum over several spans (a channel's planes, one image after another) must start
// each span at a multiple of 4 of the whole (whole planes, or chunks of a multiple of 4), so that
// every traversal makes the same additions in the same order, at any thread count.
#pragma once

#include <cstdint>

namespace cxr::cpu {

struct LaneSums {
  double lane[4] = {0.0, 0.0, 0.0, 0.0};
  double total() const { return (lane[0] + lane[1]) + (lane[2] + lane[3]); }
  // lane[i % 4] += f(i) for i in [0, len).
  template <typename F>
  void add(std::int64_t len, F&& f) {
    std::int64_t i = 0;
    for (; i + 4 <= len; i += 4)
      for (int l = 0; l < 4; ++l) lane[l] += f(i + l);
    for (; i < len; ++i) lane[i % 4] += f(i);
  }
};

}  // namespace cxr::cpu
