// CPU reference of dropout / drop-path: y_i = x_i * [u(seed, offset + i / group) >= p] * scale.
// bf16 tensors never reach these loops: kernels/dropout.cpp widens them to f32 (exact) and rounds
// the result to bf16 once, which defines the bf16 op that the CUDA kernels must match.
#include "kernels/dropout.h"

#include <algorithm>

namespace cxr::cpu {

template <typename T>
void dropout_apply(const T* x, T* y, std::int64_t n, std::int64_t group, float p, T scale, std::uint64_t seed,
                   std::uint64_t offset) {
  // Chunks of the elements over the threads; within a chunk one decision per run of a group
  // (drop-path: a whole sample), then a plain loop over the run. (One hash and one 64-bit
  // division per element were 2.5 % of a ConvNeXt-Tiny training step.)
  constexpr std::int64_t kChunk = 1 << 14;
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (std::int64_t c0 = 0; c0 < n; c0 += kChunk) {
    const std::int64_t c1 = std::min(n, c0 + kChunk);
    for (std::int64_t i = c0; i < c1;) {
      const std::int64_t g = i / group, end = std::min(c1, (g + 1) * group);
      if (dropout_keep(seed, offset + static_cast<std::uint64_t>(g), p))
        for (; i < end; ++i) y[i] = x[i] * scale;
      else
        for (; i < end; ++i) y[i] = T(0);
    }
  }
}

template void dropout_apply<float>(const float*, float*, std::int64_t, std::int64_t, float, float, std::uint64_t,
                                   std::uint64_t);
template void dropout_apply<double>(const double*, double*, std::int64_t, std::int64_t, float, double, std::uint64_t,
                                    std::uint64_t);

}  // namespace cxr::cpu
