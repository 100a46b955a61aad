// Global average pooling: (N, C, H, W) -> (N, C).
//
//   y[n,c] = (1 / HW) sum_{h,w} x[n,c,h,w]          dx[n,c,h,w] = dy[n,c] / HW
// Mixed precision: x may be bf16; y is then bf16 (the mean computed in f32 or wider, rounded
// once). The backward is f32 (dy, dx) whatever the forward's dtype.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace cxr {

// x: (N, C, H, W) f32 or bf16, with H*W > 0. Returns y: (N, C) in x's dtype.
Tensor global_avg_pool(const Tensor& x);
// dy: (N, C); input_shape: x's shape. Returns dx: (N, C, H, W).
Tensor global_avg_pool_backward(const Tensor& dy, const Shape& input_shape);

// planes = N*C rows of hw = H*W contiguous elements.
namespace cpu {
template <typename T>
void global_avg_pool_forward(const T* x, T* y, std::int64_t planes, std::int64_t hw);
template <typename T>
void global_avg_pool_backward(const T* dy, T* dx, std::int64_t planes, std::int64_t hw);
}  // namespace cpu

namespace cuda {
// T: float (f32) or std::uint16_t (bf16 bits).
template <typename T>
void global_avg_pool_forward(const T* x, T* y, std::int64_t planes, std::int64_t hw);
void global_avg_pool_backward(const float* dy, float* dx, std::int64_t planes, std::int64_t hw);
}  // namespace cuda

}  // namespace cxr
