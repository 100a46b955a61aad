// f32 <-> bf16 on the CPU (math in kernels/cast.h and tensor/bf16.h).
#include "kernels/cast.h"
#include "tensor/bf16.h"

namespace cxr::cpu {

void f32_to_bf16(const float* x, std::uint16_t* y, std::int64_t n) {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (std::int64_t i = 0; i < n; ++i) y[i] = cxr::f32_to_bf16(x[i]);
}

void bf16_to_f32(const std::uint16_t* x, float* y, std::int64_t n) {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (std::int64_t i = 0; i < n; ++i) y[i] = cxr::bf16_to_f32(x[i]);
}

}  // namespace cxr::cpu
