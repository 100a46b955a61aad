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
// bf16 x and/or s (mixed precision): both kernels are templated on the storage types of x and
// s (float or std::uint16_t, kernels/common/load_store.h), independently; products and sums
// are f32, y (x's type) is rounded once; dy, dx, ds stay f32. A bf16 x halves its traffic:
// forward 4 bytes/element, backward 10.
#include <algorithm>

#include "kernels/common/cuda.cuh"
#include "kernels/common/load_store.h"
#include "kernels/scale_channels.h"

namespace cxr::cuda {
namespace {

__device__ __forceinline__ float warp_sum(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

template <typename TX, typename TS>
__global__ void scale_channels_forward_kernel(const TX* __restrict__ x, const TS* __restrict__ s, TX* __restrict__ y,
                                              std::int64_t n, std::int64_t hw) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    store(y + i, load(x + i) * load(s + i / hw));
}

constexpr unsigned kThreads = 256;
constexpr unsigned kWarps = kThreads / 32;

template <typename TX, typename TS>
__global__ void scale_channels_backward_kernel(const float* __restrict__ dy, const TX* __restrict__ x,
                                               const TS* __restrict__ s, float* __restrict__ dx, float* __restrict__ ds,
                                               std::int64_t planes, std::int64_t hw) {
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const std::int64_t p = static_cast<std::int64_t>(blockIdx.x) * kWarps + warp;
  if (p >= planes) return;  // whole warp leaves together: the shuffles below stay full-warp
  const float sp = load(s + p);
  const float* dyp = dy + p * hw;
  const TX* xp = x + p * hw;
  float* dxp = dx + p * hw;
  float acc = 0.f;
  for (std::int64_t i = lane; i < hw; i += 32) {
    const float g = dyp[i];
    dxp[i] = g * sp;
    acc += g * load(xp + i);
  }
  acc = warp_sum(acc);
  if (lane == 0) ds[p] = acc;
}

}  // namespace

template <typename TX, typename TS>
void scale_channels_forward(const TX* x, const TS* s, TX* y, std::int64_t planes, std::int64_t hw) {
  const std::int64_t n = planes * hw;
  const unsigned blocks = std::min(blocks_for(n, kThreads), 65535u * 8u);
  launch_kernel(scale_channels_forward_kernel<TX, TS>, blocks, kThreads, 0, x, s, y, n, hw);
}

template <typename TX, typename TS>
void scale_channels_backward(const float* dy, const TX* x, const TS* s, float* dx, float* ds, std::int64_t planes,
                             std::int64_t hw) {
  launch_kernel(scale_channels_backward_kernel<TX, TS>, blocks_for(planes, kWarps), kThreads, 0, dy, x, s, dx, ds,
                planes, hw);
}

// The four (x, s) storage-type pairs.
#define CXR_SCALE_CHANNELS_INSTANTIATE(TX, TS)                                                                    \
  template void scale_channels_forward<TX, TS>(const TX*, const TS*, TX*, std::int64_t, std::int64_t);            \
  template void scale_channels_backward<TX, TS>(const float*, const TX*, const TS*, float*, float*, std::int64_t, \
                                                std::int64_t);
CXR_SCALE_CHANNELS_INSTANTIATE(float, float)
CXR_SCALE_CHANNELS_INSTANTIATE(float, std::uint16_t)
CXR_SCALE_CHANNELS_INSTANTIATE(std::uint16_t, float)
CXR_SCALE_CHANNELS_INSTANTIATE(std::uint16_t, std::uint16_t)
#undef CXR_SCALE_CHANNELS_INSTANTIATE

}  // namespace cxr::cuda
