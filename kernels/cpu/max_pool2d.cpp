// CPU reference of 2-D max pooling: scan each window in row-major order, keep the first
// maximum (a NaN wins over numbers; among NaNs the last, as PyTorch's CPU kernel);
// backward scatters dy to the recorded argmax.
// bf16 tensors never reach these loops: kernels/max_pool2d.cpp widens them to f32 (exact) and rounds
// the result to bf16 once, which defines the bf16 op that the CUDA kernels must match.
#include "kernels/max_pool2d.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace cxr::cpu {

template <typename T>
void max_pool2d_forward(const T* x, T* y, std::int32_t* indices, std::int64_t planes, int H, int W, int OH, int OW,
                        MaxPool2dParams p) {
#pragma omp parallel for schedule(static) if (planes * OH * OW > (1 << 14))
  for (std::int64_t pl = 0; pl < planes; ++pl) {
    const T* xp = x + pl * H * W;
    for (int oh = 0; oh < OH; ++oh) {
      for (int ow = 0; ow < OW; ++ow) {
        const int h0 = oh * p.stride - p.padding, w0 = ow * p.stride - p.padding;
        const int hs = std::max(h0, 0), he = std::min(h0 + p.kernel, H);
        const int ws = std::max(w0, 0), we = std::min(w0 + p.kernel, W);
        T best = -std::numeric_limits<T>::infinity();
        int arg = hs * W + ws;
        for (int h = hs; h < he; ++h)
          for (int w = ws; w < we; ++w) {
            const T v = xp[h * W + w];
            if (v > best || std::isnan(v)) {
              best = v;
              arg = h * W + w;
            }
          }
        const std::int64_t o = (pl * OH + oh) * OW + ow;
        y[o] = best;
        indices[o] = arg;
      }
    }
  }
}

template <typename T>
void max_pool2d_backward(const T* dy, const std::int32_t* indices, T* dx, std::int64_t planes, int H, int W, int OH,
                         int OW) {
#pragma omp parallel for schedule(static) if (planes * H * W > (1 << 14))
  for (std::int64_t pl = 0; pl < planes; ++pl) {
    T* dxp = dx + pl * H * W;
    std::fill(dxp, dxp + static_cast<std::int64_t>(H) * W, T(0));
    for (std::int64_t o = 0; o < static_cast<std::int64_t>(OH) * OW; ++o)
      dxp[indices[pl * OH * OW + o]] += dy[pl * OH * OW + o];
  }
}

template void max_pool2d_forward<float>(const float*, float*, std::int32_t*, std::int64_t, int, int, int, int,
                                        MaxPool2dParams);
template void max_pool2d_forward<double>(const double*, double*, std::int32_t*, std::int64_t, int, int, int, int,
                                         MaxPool2dParams);
template void max_pool2d_backward<float>(const float*, const std::int32_t*, float*, std::int64_t, int, int, int, int);
template void max_pool2d_backward<double>(const double*, const std::int32_t*, double*, std::int64_t, int, int, int,
                                          int);

}  // namespace cxr::cpu
