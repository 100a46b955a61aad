// 2-D max pooling (square kernel, dilation 1, floor output size), as nn.MaxPool2d.
//
//   OH = (H + 2 pad - kernel) / stride + 1, likewise OW
//   y[n,c,oh,ow] = max over the window rows oh*stride - pad + [0, kernel), cols likewise,
//                  clipped to the image (padding never wins: it acts as -inf)
//   indices[n,c,oh,ow] = h * W + w of the maximum: the flat index inside the (H, W) plane, as
//                  PyTorch returns it. Stored as I32. Ties: the first maximum in row-major
//                  window order wins (PyTorch's rule); a NaN wins over any number.
//   backward: dx[n,c,h,w] = sum of dy[n,c,oh,ow] over the outputs whose argmax is (h, w)
//             (windows overlap when stride < kernel, e.g. ResNet's 3x3 s2 p1 stem pool).
// Mixed precision: x may be bf16; y is then bf16 too (a maximum is one of the inputs, so no
// rounding happens). The backward is f32 (dy, dx) whatever the forward's dtype.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace cxr {

struct MaxPool2dParams {
  int kernel = 3;
  int stride = 2;
  int padding = 1;  // at most kernel / 2
};

struct MaxPool2dOutput {
  Tensor y;        // (N, C, OH, OW) x's dtype (f32 or bf16)
  Tensor indices;  // (N, C, OH, OW) I32, h * W + w in the input plane
};

// x: (N, C, H, W) f32 or bf16, contiguous, with OH, OW >= 1.
MaxPool2dOutput max_pool2d(const Tensor& x, MaxPool2dParams p);
// dy (f32), indices: (N, C, OH, OW); input_shape: x's shape. Returns dx (N, C, H, W) f32.
Tensor max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Shape& input_shape, MaxPool2dParams p);

// Output size along one dimension.
inline std::int64_t max_pool2d_out_size(std::int64_t in, const MaxPool2dParams& p) {
  return (in + 2 * p.padding - p.kernel) / p.stride + 1;
}

// planes = N*C; each plane is H x W in, OH x OW out.
namespace cpu {
template <typename T>
void max_pool2d_forward(const T* x, T* y, std::int32_t* indices, std::int64_t planes, int H, int W, int OH, int OW,
                        MaxPool2dParams p);
template <typename T>
void max_pool2d_backward(const T* dy, const std::int32_t* indices, T* dx, std::int64_t planes, int H, int W, int OH,
                         int OW);
// The f32 forward that max_pool2d runs: the reference's y and indices bit for bit, separably.
// For each output row, each input row h of its windows (in order) gives every window's row
// maximum and its column (the scan's rule along the row), merged into the running maximum by
// the same rule: the scan in row-major order is a scan of rows, each a scan of columns, so the
// first maximum and the last NaN come out the same. The row pass reads the row once for all
// the windows, with no bounds checks inside the row (the edge windows are clipped apart) and
// selects instead of branches, compiled for 3x3 stride 2 (ResNet's and DenseNet's stem pools)
// so that it vectorises. Traffic: x read kernel / stride times (from cache), y and indices
// written kernel times (one output row, in L1).
void max_pool2d_forward_rows(const float* x, float* y, std::int32_t* indices, std::int64_t planes, int H, int W,
                             int OH, int OW, MaxPool2dParams p);
}  // namespace cpu

namespace cuda {
// T: float (f32) or std::uint16_t (bf16 bits).
template <typename T>
void max_pool2d_forward(const T* x, T* y, std::int32_t* indices, std::int64_t planes, int H, int W, int OH, int OW,
                        MaxPool2dParams p);
void max_pool2d_backward(const float* dy, const std::int32_t* indices, float* dx, std::int64_t planes, int H, int W,
                         int OH, int OW, MaxPool2dParams p);
}  // namespace cuda

}  // namespace cxr
