// Element loads and stores for kernels templated on how their tensors are stored: float (f32)
// or std::uint16_t (bf16 bits, tensor/bf16.h). The math between them is always f32:
// a bf16 load widens exactly, a bf16 store rounds once (to nearest, ties to even), so a kernel
// instantiated for bf16 computes what the CPU reference computes on the widened tensor.
//
//   const float v = load(x + i);      // float or std::uint16_t* x
//   store(y + i, f(v));               // float or std::uint16_t* y
#pragma once

#include <cstdint>

#include "tensor/bf16.h"
#include "tensor/host_device.h"

namespace cxr {

CXR_HD float load(const float* p) {
  return *p;
}
CXR_HD float load(const std::uint16_t* p) {
  return bf16_to_f32(*p);
}

CXR_HD void store(float* p, float v) {
  *p = v;
}
CXR_HD void store(std::uint16_t* p, float v) {
  *p = f32_to_bf16(v);
}

}  // namespace cxr
