// Residual add on CUDA: y[i] = a[i] + b[i], flat, n elements (y may alias a).
//
// Traffic 12n bytes, n FLOPs: memory bound; floor = 12n / bandwidth (H100 SXM: 3.35 TB/s,
// ResNet-50 layer1 add at N=32: 32x256x56x56 = 25.7M elements, 308 MB -> ~92 us).
// bf16 operands (mixed precision): a and b are each float or std::uint16_t (bf16 bits); the
// sum is f32, stored in a's type (rounded once). All bf16: 6n bytes, half the f32 floor.
// Variants:
//   add_kernel      one element per thread (any n, any alignment), templated on the storage
//                   types of a (and y) and b (kernels/common/load_store.h)
//   add_kernel_v4   f32 only: float4 per thread, grid-stride; used when n % 4 == 0 and the
//                   three pointers are 16-byte aligned (always true for tensors from the
//                   caching allocator at offset 0). Fewer instructions per byte; same floor.
#include <algorithm>
#include <type_traits>

#include "kernels/add.h"
#include "kernels/common/cuda.cuh"
#include "kernels/common/load_store.h"

namespace cxr::cuda {
namespace {

// No __restrict__: y may alias a.
template <typename TA, typename TB>
__global__ void add_kernel(const TA* a, const TB* b, TA* y, std::int64_t n) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) store(y + i, load(a + i) + load(b + i));
}

// n4 = n / 4 float4 items; grid-stride so the grid can be capped.
__global__ void add_kernel_v4(const float4* a, const float4* b, float4* y, std::int64_t n4) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n4; i += stride) {
    const float4 u = a[i], v = b[i];
    y[i] = make_float4(u.x + v.x, u.y + v.y, u.z + v.z, u.w + v.w);
  }
}

constexpr unsigned kThreads = 256;

}  // namespace

template <typename TA, typename TB>
void add(const TA* a, const TB* b, TA* y, std::int64_t n) {
  if constexpr (std::is_same_v<TA, float> && std::is_same_v<TB, float>) {
    if (n % 4 == 0 && aligned16(a) && aligned16(b) && aligned16(y)) {
      const std::int64_t n4 = n / 4;
      const unsigned blocks = std::min(blocks_for(n4, kThreads), 65535u * 8u);
      launch_kernel(add_kernel_v4, blocks, kThreads, 0, reinterpret_cast<const float4*>(a),
                    reinterpret_cast<const float4*>(b), reinterpret_cast<float4*>(y), n4);
      return;
    }
  }
  launch_kernel(add_kernel<TA, TB>, blocks_for(n, kThreads), kThreads, 0, a, b, y, n);
}

template void add<float, float>(const float*, const float*, float*, std::int64_t);
template void add<float, std::uint16_t>(const float*, const std::uint16_t*, float*, std::int64_t);
template void add<std::uint16_t, float>(const std::uint16_t*, const float*, std::uint16_t*, std::int64_t);
template void add<std::uint16_t, std::uint16_t>(const std::uint16_t*, const std::uint16_t*, std::uint16_t*,
                                                std::int64_t);

}  // namespace cxr::cuda
