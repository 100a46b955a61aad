// CPU reference of the residual add: y[i] = a[i] + b[i] (y may alias a).
// bf16 tensors never reach these loops: kernels/add.cpp widens them to f32 (exact) and rounds
// the result to bf16 once, which defines the bf16 op that the CUDA kernels must match.
#include "kernels/add.h"

namespace cxr::cpu {

template <typename T>
void add(const T* a, const T* b, T* y, std::int64_t n) {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (std::int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

template void add<float>(const float*, const float*, float*, std::int64_t);
template void add<double>(const double*, const double*, double*, std::int64_t);

}  // namespace cxr::cpu
