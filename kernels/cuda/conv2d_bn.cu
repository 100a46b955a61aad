// The combine step of a convolution + batch norm on CUDA (math, shapes and traffic in
// kernels/conv2d_bn.h): the convolution's per-tile statistics (kernels/conv2d.h) -> the batch
// norm's mean and variance.
//
// conv2d_bn_stats_combine_kernel   grid K, 256 threads: block k merges the T tile summaries
//   (count_t = min(64, M - 64 t), mean_t, M2_t) of channel k with Chan's formula
//     n = na + nb, delta = mean_b - mean_a, mean = mean_a + delta nb / n,
//     M2 = M2_a + M2_b + delta^2 na nb / n
//   thread i over tiles i, i + 256, ... in order, then a fixed xor-butterfly over the lanes and
//   a fixed order over the 8 warps: deterministic. Writes mean_k and var_k = M2 / M.
//   Traffic: T K 2 floats read (2/64 of y's size).
#include "kernels/common/cuda.cuh"
#include "kernels/conv2d_bn.h"
#include "kernels/cuda/reduce.cuh"

namespace cxr::cuda {
namespace {

constexpr unsigned kCombineThreads = 256;
constexpr unsigned kCombineWarps = kCombineThreads / 32;

__global__ void __launch_bounds__(kCombineThreads)
    conv2d_bn_stats_combine_kernel(const float* __restrict__ partial, std::int64_t tiles, std::int64_t K,
                                   std::int64_t M, float* __restrict__ mean, float* __restrict__ var) {
  const std::int64_t k = blockIdx.x;
  Welford w{0.f, 0.f, 0.f};
  for (std::int64_t t = threadIdx.x; t < tiles; t += kCombineThreads) {
    const float* p = partial + (t * K + k) * 2;
    const std::int64_t left = M - t * kConv2dStatsTile;
    const float count = static_cast<float>(left < kConv2dStatsTile ? left : kConv2dStatsTile);
    w = welford_merge(w, Welford{count, p[0], p[1]});
  }
  w = warp_welford(w);
  __shared__ Welford per_warp[kCombineWarps];
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) per_warp[warp] = w;
  __syncthreads();
  if (threadIdx.x == 0) {
    Welford total = per_warp[0];
    for (unsigned i = 1; i < kCombineWarps; ++i) total = welford_merge(total, per_warp[i]);
    mean[k] = total.mean;
    var[k] = total.m2 / total.n;
  }
}

}  // namespace

void conv2d_bn_stats_combine(const float* partial, std::int64_t tiles, std::int64_t K, std::int64_t M, float* mean,
                             float* var) {
  if (K == 0) return;
  launch_kernel(conv2d_bn_stats_combine_kernel, dim3(static_cast<unsigned>(K)), dim3(kCombineThreads), 0, partial,
                tiles, K, M, mean, var);
}

}  // namespace cxr::cuda
