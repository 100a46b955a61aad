// bfloat16 as stored by cxr: the top 16 bits of an IEEE-754 float (sign, 8 exponent bits, 7
// mantissa bits), kept in a std::uint16_t. Shared by the CPU code and the CUDA kernels, so both
// round identically.
//
//   f32_to_bf16(v)   round to nearest, ties to even (what torch's .to(torch.bfloat16) and
//                    __float2bfloat16 do); NaN stays a (quiet) NaN; overflow rounds to +-inf
//   bf16_to_f32(h)   exact: the 16 bits become the top half of a float
//   round_bf16(v)    bf16_to_f32(f32_to_bf16(v))
// Any product of two bf16 values is exact in f32 (8 + 8 significant bits <= 24), so "bf16
// operands, f32 accumulation" can be computed by an f32 GEMM on the widened operands: that is
// how the CPU paths of the bf16 ops work, and what the tensor-core kernels must match.
#pragma once

#include <cstdint>
#include <cstring>

#include "tensor/host_device.h"

namespace cxr {

CXR_HD std::uint32_t f32_bits(float v) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(v);
#else
  std::uint32_t u;
  std::memcpy(&u, &v, 4);
  return u;
#endif
}

CXR_HD float f32_from_bits(std::uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float v;
  std::memcpy(&v, &u, 4);
  return v;
#endif
}

CXR_HD std::uint16_t f32_to_bf16(float v) {
  const std::uint32_t u = f32_bits(v);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x0040u);  // NaN
  const std::uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);  // ties to even
  return static_cast<std::uint16_t>((u + rounding) >> 16);
}

CXR_HD float bf16_to_f32(std::uint16_t h) { return f32_from_bits(static_cast<std::uint32_t>(h) << 16); }

CXR_HD float round_bf16(float v) { return bf16_to_f32(f32_to_bf16(v)); }

}  // namespace cxr
