// CPU reference of scale_channels: y = x * s[plane]; dx = dy * s[plane], ds[plane] = sum dy * x.
// bf16 tensors never reach these loops: kernels/scale_channels.cpp widens them to f32 (exact) and rounds
// the result to bf16 once, which defines the bf16 op that the CUDA kernels must match.
#include "kernels/scale_channels.h"

namespace cxr::cpu {

template <typename T>
void scale_channels_forward(const T* x, const T* s, T* y, std::int64_t planes, std::int64_t hw) {
#pragma omp parallel for schedule(static) if (planes * hw > (1 << 16))
  for (std::int64_t p = 0; p < planes; ++p)
    for (std::int64_t i = 0; i < hw; ++i) y[p * hw + i] = x[p * hw + i] * s[p];
}

template <typename T>
void scale_channels_backward(const T* dy, const T* x, const T* s, T* dx, T* ds, std::int64_t planes, std::int64_t hw) {
#pragma omp parallel for schedule(static) if (planes * hw > (1 << 16))
  for (std::int64_t p = 0; p < planes; ++p) {
    double acc = 0.0;
    for (std::int64_t i = 0; i < hw; ++i) {
      dx[p * hw + i] = dy[p * hw + i] * s[p];
      acc += static_cast<double>(dy[p * hw + i]) * static_cast<double>(x[p * hw + i]);
    }
    ds[p] = static_cast<T>(acc);
  }
}

template void scale_channels_forward<float>(const float*, const float*, float*, std::int64_t, std::int64_t);
template void scale_channels_forward<double>(const double*, const double*, double*, std::int64_t, std::int64_t);
template void scale_channels_backward<float>(const float*, const float*, const float*, float*, float*, std::int64_t,
                                             std::int64_t);
template void scale_channels_backward<double>(const double*, const double*, const double*, double*, double*,
                                              std::int64_t, std::int64_t);

}  // namespace cxr::cpu
