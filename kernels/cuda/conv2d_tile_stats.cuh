// The per-tile statistics of a convolution's output (for a batch norm after it; kernels/conv2d.h),
// shared by the implicit-GEMM forward kernel's epilogue and the stand-alone statistics pass of
// the convolutions without that epilogue (both in kernels/cuda/conv2d.cu).
//
// A tile is rows m0 .. m0+63 (output channels of one group) x columns n0 .. n0+63 of the
// flattened (n, p, q) output index, the block tile of the implicit GEMM (gemm_tile.cuh).
// For each channel row inside the tile, with count = min(64, NPQ - n0) values v_j:
//   mean = (sum v_j) / count,   M2 = sum (v_j - mean)^2   (two passes over the 64 values held
//   in registers, not sum / sum of squares, so no cancellation)
// written to partial[(tile * K + k) * 2 + {0, 1}], tile = n0 / 64, k the channel.
// Warp w of the block takes rows w, w + 8, ...; lane l holds columns l and l + 32; the sums are
// xor-butterfly warp sums (every lane gets the same value: float addition is commutative), so
// the result is deterministic. Every thread of the block must call it, after the tile of y is
// written and a __syncthreads (the block then reads its own writes: L1/L2-hot).
#pragma once

#include "kernels/cuda/gemm_tile.cuh"
#include "kernels/cuda/reduce.cuh"

namespace cxr::cuda {

// y_at(m, col): the value of row m (0 <= m < rows), column col (0 <= col < cols); k_of(m) the
// channel of row m.
template <class YAt, class KOf>
__device__ __forceinline__ void tile_channel_stats(const YAt& y_at, const KOf& k_of, int rows, int cols, int m0, int n0,
                                                   int K, float* __restrict__ partial) {
  static_assert(tile::kBN == 64, "two columns per lane");
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  const int count = min(tile::kBN, cols - n0);
  const std::int64_t column_tile = n0 / tile::kBN;
  for (int r = warp; r < tile::kBM; r += warps) {
    const int m = m0 + r;
    if (m >= rows) break;  // the same for every lane of the warp
    const bool in0 = lane < count, in1 = lane + 32 < count;
    const float v0 = in0 ? y_at(m, n0 + lane) : 0.f;
    const float v1 = in1 ? y_at(m, n0 + lane + 32) : 0.f;
    const float mean = warp_sum(v0 + v1) / static_cast<float>(count);
    const float d0 = in0 ? v0 - mean : 0.f, d1 = in1 ? v1 - mean : 0.f;
    const float m2 = warp_sum(d0 * d0 + d1 * d1);
    if (lane == 0) {
      float* p = partial + (column_tile * K + k_of(m)) * 2;
      p[0] = mean;
      p[1] = m2;
    }
  }
}

}  // namespace cxr::cuda
