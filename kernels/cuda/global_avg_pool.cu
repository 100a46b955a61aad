// Global average pooling on CUDA: x viewed as planes = N*C rows of hw = H*W elements.
//
// global_avg_pool_forward_kernel: y[p] = (1/hw) sum_i x[p, i]
//   one warp per plane, 8 warps per block; lanes stride the plane (coalesced), shuffle-tree
//   sum. 4 bytes/element read, 1 FLOP: memory bound. ResNet-50 head at N=32:
//   32x2048x7x7 = 3.2M elements, 12.8 MB -> ~4 us at 3.35 TB/s; with hw = 49 each warp does
//   2 loads per lane, the 65536 planes keep every SM busy. EfficientNet-B0: 32x1280x7x7.
//   bf16 x and y (mixed precision): templated on the storage type (float or std::uint16_t,
//   kernels/common/load_store.h): loads widen, the sum and the mean are f32, y is rounded
//   once. 2 bytes/element read (half). The CPU reference sums in double, so the two can
//   differ by the f32 summation error, which bf16 rounding turns into at most 1 bf16 ulp.
// global_avg_pool_backward_kernel: dx[p, i] = dy[p] / hw; one thread per element,
//   grid-stride. 4 bytes/element written.
#include <algorithm>

#include "kernels/common/cuda.cuh"
#include "kernels/common/load_store.h"
#include "kernels/global_avg_pool.h"

namespace cxr::cuda {
namespace {

constexpr unsigned kThreads = 256;
constexpr unsigned kWarps = kThreads / 32;

__device__ __forceinline__ float warp_sum(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

template <typename T>
__global__ void global_avg_pool_forward_kernel(const T* __restrict__ x, T* __restrict__ y, std::int64_t planes,
                                               std::int64_t hw) {
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const std::int64_t p = static_cast<std::int64_t>(blockIdx.x) * kWarps + warp;
  if (p >= planes) return;  // the whole warp leaves together
  const T* xp = x + p * hw;
  float acc = 0.f;
  for (std::int64_t i = lane; i < hw; i += 32) acc += load(xp + i);
  acc = warp_sum(acc);
  if (lane == 0) store(y + p, acc / static_cast<float>(hw));
}

__global__ void global_avg_pool_backward_kernel(const float* __restrict__ dy, float* __restrict__ dx, std::int64_t n,
                                                std::int64_t hw) {
  const float inv = 1.f / static_cast<float>(hw);
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    dx[i] = dy[i / hw] * inv;
}

}  // namespace

template <typename T>
void global_avg_pool_forward(const T* x, T* y, std::int64_t planes, std::int64_t hw) {
  launch_kernel(global_avg_pool_forward_kernel<T>, blocks_for(planes, kWarps), kThreads, 0, x, y, planes, hw);
}

void global_avg_pool_backward(const float* dy, float* dx, std::int64_t planes, std::int64_t hw) {
  const std::int64_t n = planes * hw;
  const unsigned blocks = std::min(blocks_for(n, kThreads), 65535u * 8u);
  launch_kernel(global_avg_pool_backward_kernel, blocks, kThreads, 0, dy, dx, n, hw);
}

template void global_avg_pool_forward<float>(const float*, float*, std::int64_t, std::int64_t);
template void global_avg_pool_forward<std::uint16_t>(const std::uint16_t*, std::uint16_t*, std::int64_t, std::int64_t);

}  // namespace cxr::cuda
