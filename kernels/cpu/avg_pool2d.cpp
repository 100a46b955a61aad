// CPU reference of 2-D average pooling: each window summed and divided by its size; backward
// spreads dy / kernel^2 over the window. bf16 tensors never reach these loops:
// kernels/avg_pool2d.cpp widens them to f32 and rounds the result once, which defines the
// bf16 op that the CUDA kernels must match.
#include <algorithm>

#include "kernels/avg_pool2d.h"

namespace cxr::cpu {

template <typename T>
void avg_pool2d_forward(const T* x, T* y, std::int64_t planes, int H, int W, int OH, int OW, AvgPool2dParams p) {
  const T inv = T(1) / static_cast<T>(p.kernel * p.kernel);
#pragma omp parallel for schedule(static) if (planes * OH * OW > (1 << 14))
  for (std::int64_t pl = 0; pl < planes; ++pl) {
    const T* xp = x + pl * H * W;
    for (int oh = 0; oh < OH; ++oh)
      for (int ow = 0; ow < OW; ++ow) {
        T sum = 0;
        for (int h = oh * p.stride; h < oh * p.stride + p.kernel; ++h)
          for (int w = ow * p.stride; w < ow * p.stride + p.kernel; ++w) sum += xp[h * W + w];
        y[(pl * OH + oh) * OW + ow] = sum * inv;
      }
  }
}

template <typename T>
void avg_pool2d_backward(const T* dy, T* dx, std::int64_t planes, int H, int W, int OH, int OW, AvgPool2dParams p) {
  const T inv = T(1) / static_cast<T>(p.kernel * p.kernel);
#pragma omp parallel for schedule(static) if (planes * H * W > (1 << 14))
  for (std::int64_t pl = 0; pl < planes; ++pl) {
    T* dxp = dx + pl * H * W;
    std::fill(dxp, dxp + static_cast<std::int64_t>(H) * W, T(0));
    for (int oh = 0; oh < OH; ++oh)
      for (int ow = 0; ow < OW; ++ow) {
        const T g = dy[(pl * OH + oh) * OW + ow] * inv;
        for (int h = oh * p.stride; h < oh * p.stride + p.kernel; ++h)
          for (int w = ow * p.stride; w < ow * p.stride + p.kernel; ++w) dxp[h * W + w] += g;
      }
  }
}

template void avg_pool2d_forward<float>(const float*, float*, std::int64_t, int, int, int, int, AvgPool2dParams);
template void avg_pool2d_forward<double>(const double*, double*, std::int64_t, int, int, int, int, AvgPool2dParams);
template void avg_pool2d_backward<float>(const float*, float*, std::int64_t, int, int, int, int, AvgPool2dParams);
template void avg_pool2d_backward<double>(const double*, double*, std::int64_t, int, int, int, int, AvgPool2dParams);

}  // namespace cxr::cpu
