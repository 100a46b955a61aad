// CPU reference of dropout / drop-path: y_i = x_i * [u(seed, offset + i / group) >= p] * scale.
// bf16 tensors never reach these loops: kernels/dropout.cpp widens them to f32 (exact) and rounds
// the result to bf16 once, which defines the bf16 op that the CUDA kernels must match.
#include "kernels/dropout.h"

namespace cxr::cpu {

template <typename T>
void dropout_apply(const T* x, T* y, std::int64_t n, std::int64_t group, float p, T scale, std::uint64_t seed,
                   std::uint64_t offset) {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (std::int64_t i = 0; i < n; ++i) {
    const bool keep = dropout_keep(seed, offset + static_cast<std::uint64_t>(i / group), p);
    y[i] = keep ? x[i] * scale : T(0);
  }
}

template void dropout_apply<float>(const float*, float*, std::int64_t, std::int64_t, float, float, std::uint64_t,
                                   std::uint64_t);
template void dropout_apply<double>(const double*, double*, std::int64_t, std::int64_t, float, double, std::uint64_t,
                                    std::uint64_t);

}  // namespace cxr::cpu
