// CPU reference of global average pooling: y[p] = mean of plane p; dx[p, i] = dy[p] / hw.
// bf16 tensors never reach these loops: kernels/global_avg_pool.cpp widens them to f32 (exact) and rounds
// the result to bf16 once, which defines the bf16 op that the CUDA kernels must match.
#include "kernels/global_avg_pool.h"

namespace cxr::cpu {

template <typename T>
void global_avg_pool_forward(const T* x, T* y, std::int64_t planes, std::int64_t hw) {
#pragma omp parallel for schedule(static) if (planes * hw > (1 << 16))
  for (std::int64_t p = 0; p < planes; ++p) {
    double sum = 0.0;
    for (std::int64_t i = 0; i < hw; ++i) sum += static_cast<double>(x[p * hw + i]);
    y[p] = static_cast<T>(sum / static_cast<double>(hw));
  }
}

template <typename T>
void global_avg_pool_backward(const T* dy, T* dx, std::int64_t planes, std::int64_t hw) {
#pragma omp parallel for schedule(static) if (planes * hw > (1 << 16))
  for (std::int64_t p = 0; p < planes; ++p) {
    const T g = dy[p] / static_cast<T>(hw);
    for (std::int64_t i = 0; i < hw; ++i) dx[p * hw + i] = g;
  }
}

template void global_avg_pool_forward<float>(const float*, float*, std::int64_t, std::int64_t);
template void global_avg_pool_forward<double>(const double*, double*, std::int64_t, std::int64_t);
template void global_avg_pool_backward<float>(const float*, float*, std::int64_t, std::int64_t);
template void global_avg_pool_backward<double>(const double*, double*, std::int64_t, std::int64_t);

}  // namespace cxr::cpu
