// Element-type conversion between f32 and bf16 (tensor/bf16.h has the scalar math).
//
//   to_bf16(x): y[i] = f32_to_bf16(x[i])   f32 -> bf16, round to nearest even
//   to_f32(x):  y[i] = bf16_to_f32(x[i])   bf16 -> f32, exact
// Any shape, either device; a tensor that already has the asked type is returned as it is
// (shared, like torch's .to(dtype)). Memory traffic: 6 bytes per element (4 read + 2 written,
// or 2 + 4), one pass.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace cxr {

Tensor to_bf16(const Tensor& x);
Tensor to_f32(const Tensor& x);

namespace cpu {
void f32_to_bf16(const float* x, std::uint16_t* y, std::int64_t n);
void bf16_to_f32(const std::uint16_t* x, float* y, std::int64_t n);
}  // namespace cpu

namespace cuda {
void f32_to_bf16(const float* x, std::uint16_t* y, std::int64_t n);
void bf16_to_f32(const std::uint16_t* x, float* y, std::int64_t n);
}  // namespace cuda

}  // namespace cxr
