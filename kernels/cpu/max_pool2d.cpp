// CPU reference of 2-D max pooling: scan each window in row-major order, keep the first
// maximum (a NaN wins over numbers; among NaNs the last, as PyTorch's CPU kernel);
// backward scatters dy to the recorded argmax. max_pool2d_forward_rows: the same result, row
// by row (see kernels/max_pool2d.h).
// bf16 tensors never reach these loops: kernels/max_pool2d.cpp widens them to f32 (exact) and rounds
// the result to bf16 once, which defines the bf16 op that the CUDA kernels must match.
#include "kernels/max_pool2d.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/lanes8.h"

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

namespace {

// Whether v replaces the running maximum b: the scan's rule (a greater value, or any NaN), as
// one expression without a branch.
inline bool takes(float v, float b) { return (v > b) | (v != v); }

// One row of the windows: for output columns [0, OW), the maximum over the row's taps of each
// window (value and column), by the scan's rule in column order. K, S > 0: the kernel and stride
// known at compile time (3 and 2 for ResNet's and DenseNet's stem pools), so that the interior
// loop (windows inside the row) vectorises; K = 0: p's. Columns outside the row act as -inf
// (the clipped windows at the edges, taken one by one).
template <int K, int S>
inline void row_maxima(const float* __restrict__ row, int W, int OW, MaxPool2dParams p, float* __restrict__ value,
                       std::int32_t* __restrict__ column) {
  const int k = K > 0 ? K : p.kernel, s = S > 0 ? S : p.stride;
  // interior: ow with 0 <= ow s - pad and ow s - pad + k <= W
  const int lo = std::min(OW, (p.padding + s - 1) / s);
  const int hi = std::max(lo, std::min(OW, W + p.padding - k < 0 ? 0 : (W + p.padding - k) / s + 1));
  const auto edge = [&](int ow) {
    const int w0 = ow * s - p.padding, ws = std::max(w0, 0), we = std::min(w0 + k, W);
    float b = -std::numeric_limits<float>::infinity();
    int c = ws;
    for (int w = ws; w < we; ++w)
      if (takes(row[w], b)) b = row[w], c = w;
    value[ow] = b;
    column[ow] = c;
  };
  for (int ow = 0; ow < lo; ++ow) edge(ow);
  for (int ow = lo; ow < hi; ++ow) {
    const int w0 = ow * s - p.padding;
    float b = row[w0];
    int c = w0;
    for (int t = 1; t < k; ++t) {
      const float v = row[w0 + t];
      const bool take = takes(v, b);
      b = take ? v : b;
      c = take ? w0 + t : c;
    }
    value[ow] = b;
    column[ow] = c;
  }
  for (int ow = hi; ow < OW; ++ow) edge(ow);
}

// One output row: the rows of its windows in order, each merged by the same rule.
template <int K, int S>
CXR_CLONES void pool_row(const float* xp, int H, int W, int OW, int oh, MaxPool2dParams p, float* __restrict__ best,
                         std::int32_t* __restrict__ arg, float* __restrict__ value,
                         std::int32_t* __restrict__ column) {
  const int h0 = oh * p.stride - p.padding, hs = std::max(h0, 0), he = std::min(h0 + p.kernel, H);
  for (int ow = 0; ow < OW; ++ow) {  // the scan's start: -inf at the window's first element
    best[ow] = -std::numeric_limits<float>::infinity();
    arg[ow] = hs * W + std::max(ow * p.stride - p.padding, 0);
  }
  for (int h = hs; h < he; ++h) {
    row_maxima<K, S>(xp + h * W, W, OW, p, value, column);
    for (int ow = 0; ow < OW; ++ow) {
      const bool take = takes(value[ow], best[ow]);
      best[ow] = take ? value[ow] : best[ow];
      arg[ow] = take ? h * W + column[ow] : arg[ow];
    }
  }
}

}  // namespace

void max_pool2d_forward_rows(const float* x, float* y, std::int32_t* indices, std::int64_t planes, int H, int W,
                             int OH, int OW, MaxPool2dParams p) {
  const auto row = p.kernel == 3 && p.stride == 2 ? pool_row<3, 2> : pool_row<0, 0>;
#pragma omp parallel if (planes * OH * OW > (1 << 14))
  {
    std::vector<float> value(static_cast<std::size_t>(OW));
    std::vector<std::int32_t> column(static_cast<std::size_t>(OW));
#pragma omp for schedule(static)
    for (std::int64_t pl = 0; pl < planes; ++pl)
      for (int oh = 0; oh < OH; ++oh) {
        const std::int64_t o = (pl * OH + oh) * OW;
        row(x + pl * H * W, H, W, OW, oh, p, y + o, indices + o, value.data(), column.data());
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
