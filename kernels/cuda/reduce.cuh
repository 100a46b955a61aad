// Warp and block sums for CUDA kernels (used by kernels/cuda/reduce.cu, cxr_loss.cu).
//
// warp_sum: butterfly of __shfl_xor_sync over 32 lanes; every lane gets the total.
// block_sum: warp sums -> one value per warp in shared memory -> warp sum again. Every
// thread of the block must call it (it holds __syncthreads) with blockDim.x a multiple of
// 32 (at most 1024); every thread gets the total. The summation order is fixed by the
// thread layout, so results are bitwise reproducible for a fixed launch configuration.
#pragma once

#include "kernels/common/cuda.cuh"

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

}  // namespace cxr::cuda
