// CPU reference of transpose_nc: y[b, a, :] = x[a, b, :], row by row.
#include <algorithm>

#include "kernels/transpose_nc.h"

namespace cxr::cpu {

template <typename T>
void transpose_nc(const T* x, T* y, std::int64_t A, std::int64_t B, std::int64_t hw) {
#pragma omp parallel for schedule(static) if (A * B * hw > (1 << 16))
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t a = 0; a < A; ++a) {
      const T* src = x + (a * B + b) * hw;
      std::copy(src, src + hw, y + (b * A + a) * hw);
    }
}

template void transpose_nc<float>(const float*, float*, std::int64_t, std::int64_t, std::int64_t);
template void transpose_nc<double>(const double*, double*, std::int64_t, std::int64_t, std::int64_t);
template void transpose_nc<std::uint16_t>(const std::uint16_t*, std::uint16_t*, std::int64_t, std::int64_t,
                                          std::int64_t);
template void transpose_nc<std::uint32_t>(const std::uint32_t*, std::uint32_t*, std::int64_t, std::int64_t,
                                          std::int64_t);
template void transpose_nc<unsigned char>(const unsigned char*, unsigned char*, std::int64_t, std::int64_t,
                                          std::int64_t);

}  // namespace cxr::cpu
