// Warp and block sums for CUDA kernels (kernels/cuda/reduce.cu, cxr_loss.cu, the norms), and the
// merge of (count, mean, M2) summaries for means and variances (batch norm, conv2d_bn).
//
// warp_sum: butterfly of __shfl_xor_sync over 32 lanes; every lane gets the total.
// block_sum: warp sums -> one value per warp in shared memory -> warp sum again. Every
// thread of the block must call it (it holds __syncthreads) with blockDim.x a multiple of
// 32 (at most 1024); every thread gets the total. The summation order is fixed by the
// thread layout, so results are bitwise reproducible for a fixed launch configuration.
// welford_merge (Chan et al.): n = na + nb, delta = mean_b - mean_a, mean = mean_a + delta nb / n,
//   M2 = M2_a + M2_b + delta^2 na nb / n; no sum / sum-of-squares cancellation.
// warp_welford: the same butterfly over the summaries, the lower lane's first in every pair
//   (the merge is not symmetric), so every lane gets lane 0's result.
#pragma once

#include "kernels/common/cuda.cuh"
#include "tensor/bf16.h"

namespace cxr::cuda {

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ float block_sum(float v) {
  __shared__ float warp_totals[32];
  const unsigned lane = threadIdx.x & 31u;
  const unsigned warp = threadIdx.x >> 5;
  const unsigned warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // a previous block_sum of this block may still be reading warp_totals
  if (lane == 0) warp_totals[warp] = v;
  __syncthreads();
  v = lane < warps ? warp_totals[lane] : 0.0f;
  return warp_sum(v);
}

struct Welford {
  float n, mean, m2;
};

__device__ __forceinline__ Welford welford_merge(Welford a, Welford b) {
  const float n = a.n + b.n;
  if (n == 0.f) return a;
  const float delta = b.mean - a.mean;
  const float fb = b.n / n;
  return Welford{n, a.mean + delta * fb, a.m2 + b.m2 + delta * delta * a.n * fb};
}

__device__ __forceinline__ Welford warp_welford(Welford w) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    const Welford o{__shfl_xor_sync(0xffffffffu, w.n, offset), __shfl_xor_sync(0xffffffffu, w.mean, offset),
                    __shfl_xor_sync(0xffffffffu, w.m2, offset)};
    w = (threadIdx.x & offset) ? welford_merge(o, w) : welford_merge(w, o);
  }
  return w;
}

}  // namespace cxr::cuda
