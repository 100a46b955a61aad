// 2-D average pooling without padding (square kernel, floor output size), as
// nn.AvgPool2d(kernel_size=k, stride=s): DenseNet's transitions use k = s = 2.
//
//   OH = (H - kernel) / stride + 1, likewise OW
//   y[n,c,oh,ow] = (1 / kernel^2) sum over the window rows oh*stride + [0, kernel),
//                  cols ow*stride + [0, kernel)         (no padding, so every window is full)
//   backward: dx[n,c,h,w] = (1 / kernel^2) sum of dy[n,c,oh,ow] over the windows holding (h, w)
//             (none for the rows and columns the floor drops: their dx is 0)
// Mixed precision: x may be bf16; y is then bf16 (the mean in f32, rounded once). The backward
// is f32 (dy, dx) whatever the forward's dtype.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace cxr {

struct AvgPool2dParams {
  int kernel = 2;
  int stride = 2;
};

// x: (N, C, H, W) f32 or bf16, contiguous, H and W at least the kernel. y: (N, C, OH, OW).
Tensor avg_pool2d(const Tensor& x, AvgPool2dParams p);
// dy: (N, C, OH, OW) f32; input_shape: x's shape. Returns dx (N, C, H, W) f32.
Tensor avg_pool2d_backward(const Tensor& dy, const Shape& input_shape, AvgPool2dParams p);

inline std::int64_t avg_pool2d_out_size(std::int64_t in, const AvgPool2dParams& p) {
  return (in - p.kernel) / p.stride + 1;
}

// planes = N*C; each plane is H x W in, OH x OW out.
namespace cpu {
template <typename T>
void avg_pool2d_forward(const T* x, T* y, std::int64_t planes, int H, int W, int OH, int OW, AvgPool2dParams p);
template <typename T>
void avg_pool2d_backward(const T* dy, T* dx, std::int64_t planes, int H, int W, int OH, int OW, AvgPool2dParams p);
}  // namespace cpu

namespace cuda {
// T: float (f32) or std::uint16_t (bf16 bits).
template <typename T>
void avg_pool2d_forward(const T* x, T* y, std::int64_t planes, int H, int W, int OH, int OW, AvgPool2dParams p);
void avg_pool2d_backward(const float* dy, float* dx, std::int64_t planes, int H, int W, int OH, int OW,
                         AvgPool2dParams p);
}  // namespace cuda

}  // namespace cxr
