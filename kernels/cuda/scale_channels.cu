// scale_channels on CUDA (squeeze-and-excitation): x (N, C, H, W) viewed as planes = N*C rows
// of hw = H*W contiguous elements, s (planes).
//
// scale_channels_forward_kernel:  y[p, i] = x[p, i] * s[p]
//   one thread per element, grid-stride; 8 bytes/element + s (cached): memory bound.
// scale_channels_backward_kernel: dx[p, i] = dy[p, i] * s[p];  ds[p] = sum_i dy[p, i] x[p, i]
//   one warp per plane (8 warps per 256-thread block): the lanes stride the plane (coalesced),
//   write dx and accumulate dy*x, then a shuffle tree gives ds. 12 bytes/element, 3 FLOPs.
//   Deterministic (no atomics). EfficientNet-B0 planes have hw from 49 (7x7) to 12544
//   (112x112); at hw = 49 a warp is 2 iterations long, which is fine: there are N*C (>= 10^4)
//   planes to spread over the SMs. A plane much longer than ~10^5 would want a block per
//   plane, which no network here has.
#include <algorithm>

#include "kernels/common/cuda.cuh"
#include "kernels/scale_channels.h"

namespace cxr::cuda {
namespace {

__device__ __forceinline__ float warp_sum(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

__global__ void scale_channels_forward_kernel(const float* __restrict__ x, const float* __restrict__ s,
                                              float* __restrict__ y, std::int64_t n, std::int64_t hw) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    y[i] = x[i] * s[i / hw];
}

constexpr unsigned kThreads = 256;
constexpr unsigned kWarps = kThreads / 32;

__global__ void scale_channels_backward_kernel(const float* __restrict__ dy, const float* __restrict__ x,
                                               const float* __restrict__ s, float* __restrict__ dx,
                                               float* __restrict__ ds, std::int64_t planes, std::int64_t hw) {
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const std::int64_t p = static_cast<std::int64_t>(blockIdx.x) * kWarps + warp;
  if (p >= planes) return;  // whole warp leaves together: the shuffles below stay full-warp
  const float sp = s[p];
  const float* dyp = dy + p * hw;
  const float* xp = x + p * hw;
  float* dxp = dx + p * hw;
  float acc = 0.f;
  for (std::int64_t i = lane; i < hw; i += 32) {
    const float g = dyp[i];
    dxp[i] = g * sp;
    acc += g * xp[i];
  }
  acc = warp_sum(acc);
  if (lane == 0) ds[p] = acc;
}

}  // namespace

void scale_channels_forward(const float* x, const float* s, float* y, std::int64_t planes, std::int64_t hw) {
  const std::int64_t n = planes * hw;
  const unsigned blocks = std::min(blocks_for(n, kThreads), 65535u * 8u);
  launch_kernel(scale_channels_forward_kernel, blocks, kThreads, 0, x, s, y, n, hw);
}

void scale_channels_backward(const float* dy, const float* x, const float* s, float* dx, float* ds, std::int64_t planes,
                             std::int64_t hw) {
  launch_kernel(scale_channels_backward_kernel, blocks_for(planes, kWarps), kThreads, 0, dy, x, s, dx, ds, planes, hw);
}

}  // namespace cxr::cuda
