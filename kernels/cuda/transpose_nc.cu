// transpose_nc on CUDA: y[b, a, i] = x[a, b, i], x: A x B rows of hw elements.
//
// transpose_nc_kernel: one thread per output element, grid-stride over the flat output, so
//   consecutive threads write consecutive elements of a row and read consecutive elements of
//   the matching input row (both coalesced whenever a row holds a warp or more; DenseNet-121's
//   rows are 56x56 .. 7x7 at 224 px). The element is moved as its bits (u16 for bf16, u32 for
//   f32), never converted. Traffic: 2 x bytes of x (one read, one write), no arithmetic.
//   DenseNet-121, batch 32 at 224 px, f32: one layer of block 1 moves 32 channels of
//   32x56x56 in (12.8 MB) and 128 channels out to the 3x3 convolution (51 MB): ~19 us at
//   3.35 TB/s.
#include <algorithm>
#include <cstdint>

#include "kernels/common/cuda.cuh"
#include "kernels/transpose_nc.h"

namespace cxr::cuda {
namespace {

constexpr unsigned kThreads = 256;

template <typename T>
__global__ void transpose_nc_kernel(const T* __restrict__ x, T* __restrict__ y, std::int64_t A, std::int64_t B,
                                    std::int64_t hw, std::int64_t n) {
  const std::int64_t gstride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t o = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < n; o += gstride) {
    const std::int64_t i = o % hw;
    const std::int64_t row = o / hw;  // b * A + a
    const std::int64_t a = row % A, b = row / A;
    y[o] = x[(a * B + b) * hw + i];
  }
}

template <typename T>
void launch(const void* x, void* y, std::int64_t A, std::int64_t B, std::int64_t hw) {
  const std::int64_t n = A * B * hw;
  const unsigned blocks = std::min(blocks_for(n, kThreads), 65535u * 8u);
  launch_kernel(transpose_nc_kernel<T>, blocks, kThreads, 0, static_cast<const T*>(x), static_cast<T*>(y), A, B, hw,
                n);
}

}  // namespace

void transpose_nc(const void* x, void* y, std::int64_t A, std::int64_t B, std::int64_t hw, std::size_t elem_bytes) {
  if (elem_bytes == 2) launch<std::uint16_t>(x, y, A, B, hw);
  else if (elem_bytes == 4) launch<std::uint32_t>(x, y, A, B, hw);
  else launch<unsigned char>(x, y, A, B, hw * static_cast<std::int64_t>(elem_bytes));
}

}  // namespace cxr::cuda
