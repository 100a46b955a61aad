// bf16.h: the part of CUDA's <cuda_bf16.h> the kernels of cxr use, on the emulated device.
//
// __nv_bfloat16 is 16 bits (the top half of an IEEE float) with the GPU's conversions:
// __float2bfloat16 / the float constructor round to nearest even, __bfloat162float is exact,
// __ushort_as_bfloat16 / __bfloat16_as_ushort reinterpret the bits. The rounding is the one of
// tensor/bf16.h, so host and device agree bit for bit.
#pragma once

#include <cstdint>

#include "tensor/bf16.h"

struct __nv_bfloat16 {
  unsigned short __x;
  __nv_bfloat16() = default;
  __nv_bfloat16(float v) : __x(cxr::f32_to_bf16(v)) {}  // NOLINT: implicit, as in cuda_bf16.h
  operator float() const { return cxr::bf16_to_f32(__x); }
};
static_assert(sizeof(__nv_bfloat16) == 2);

inline __nv_bfloat16 __float2bfloat16(float v) { return __nv_bfloat16(v); }
inline float __bfloat162float(__nv_bfloat16 h) { return cxr::bf16_to_f32(h.__x); }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short bits) {
  __nv_bfloat16 h;
  h.__x = bits;
  return h;
}
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.__x; }
