// Per-(sample, channel) scaling, the "excitation" of squeeze-and-excitation blocks.
//
//   y[n,c,h,w] = x[n,c,h,w] * s[n,c]
//   dx[n,c,h,w] = dy[n,c,h,w] * s[n,c]          ds[n,c] = sum_{h,w} dy[n,c,h,w] * x[n,c,h,w]
// Mixed precision: x and s may each be f32 or bf16; y has x's dtype (the product in f32,
// rounded once). The backward takes x and s of either dtype, dy f32, and returns f32 dx, ds.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace cxr {

// x: (N, C, H, W); s: (N, C) or (N, C, 1, 1); each f32 or bf16. Returns y: (N, C, H, W) in x's dtype.
Tensor scale_channels(const Tensor& x, const Tensor& s);

struct ScaleChannelsGrads {
  Tensor dx;  // (N, C, H, W)
  Tensor ds;  // s's shape
};
ScaleChannelsGrads scale_channels_backward(const Tensor& dy, const Tensor& x, const Tensor& s);

// planes = N*C rows of hw = H*W contiguous elements each; s has one value per plane.
namespace cpu {
template <typename T>
void scale_channels_forward(const T* x, const T* s, T* y, std::int64_t planes, std::int64_t hw);
template <typename T>
void scale_channels_backward(const T* dy, const T* x, const T* s, T* dx, T* ds, std::int64_t planes, std::int64_t hw);
}  // namespace cpu

namespace cuda {
// TX, TS: float (f32) or std::uint16_t (bf16 bits), independently.
template <typename TX, typename TS>
void scale_channels_forward(const TX* x, const TS* s, TX* y, std::int64_t planes, std::int64_t hw);
template <typename TX, typename TS>
void scale_channels_backward(const float* dy, const TX* x, const TS* s, float* dx, float* ds, std::int64_t planes,
                             std::int64_t hw);
}  // namespace cuda

}  // namespace cxr
