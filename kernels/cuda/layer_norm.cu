// Layer norm over the last dimension on CUDA: x is M rows of C (ConvNeXt-T: C = 96..768,
// M = N*56*56 .. N*7*7). Math in kernels/layer_norm.h.
//
// layer_norm_forward_kernel: one warp per row, 8 rows per 256-thread block. Two passes over
//   the row (sum -> mean, then sum of centred squares -> rstd; numerically robust, no
//   E[x^2] - E[x]^2), then a third pass writes y. The re-reads hit L1 (a row is <= 3 KB);
//   DRAM traffic 8 bytes/element + 8 bytes/row. Floor at N=32, stage 1 (100352 x 96,
//   9.6M elements): 77 MB -> ~23 us on an H100.
// layer_norm_backward_dx_kernel: one warp per row: sums of g = dy*w and g*xhat (shuffle
//   tree), then dx. 12 bytes/element.
// layer_norm_backward_param_kernel: dweight/dbias are column sums over M rows. Block of
//   32 x 8 threads covers 32 columns (threadIdx.x -> column: coalesced) and a slice of rows
//   (blockIdx.y of `splits` slices, threadIdx.y strides it); the 8 row-partials reduce in
//   shared memory and each block writes one partial per column to a workspace
//   (splits x C x 2 floats); layer_norm_param_finalize_kernel sums the splits. No atomics:
//   deterministic. Reads dy and x again (8 bytes/element): a fused dx+param kernel
//   (llm.c style) would save that second read; not done yet.
// bf16 x (and y) (mixed precision): the three kernels that read x are templated on its
// storage type (float or std::uint16_t, kernels/common/load_store.h); loads widen, all the
// statistics are f32, y is rounded once; weight, bias, mean, rstd and every gradient stay
// f32. Traffic per element: forward 4 bytes (half), backward 10 + 6 (x at 2 bytes).
#include <algorithm>

#include "kernels/common/cuda.cuh"
#include "kernels/common/load_store.h"
#include "kernels/layer_norm.h"

namespace cxr::cuda {
namespace {

constexpr unsigned kThreads = 256;
constexpr unsigned kWarps = kThreads / 32;

__device__ __forceinline__ float warp_sum(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

template <typename T>
__global__ void layer_norm_forward_kernel(const T* __restrict__ x, const float* __restrict__ weight,
                                          const float* __restrict__ bias, T* __restrict__ y, float* __restrict__ mean,
                                          float* __restrict__ rstd, std::int64_t M, std::int64_t C, float eps) {
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const std::int64_t m = static_cast<std::int64_t>(blockIdx.x) * kWarps + warp;
  if (m >= M) return;  // whole warp
  const T* xr = x + m * C;
  float s = 0.f;
  for (std::int64_t c = lane; c < C; c += 32) s += load(xr + c);
  const float mu = warp_sum(s) / static_cast<float>(C);
  float ss = 0.f;
  for (std::int64_t c = lane; c < C; c += 32) {
    const float d = load(xr + c) - mu;
    ss += d * d;
  }
  const float r = rsqrtf(warp_sum(ss) / static_cast<float>(C) + eps);
  T* yr = y + m * C;
  for (std::int64_t c = lane; c < C; c += 32) store(yr + c, (load(xr + c) - mu) * r * weight[c] + bias[c]);
  if (lane == 0) {
    mean[m] = mu;
    rstd[m] = r;
  }
}

template <typename TX>
__global__ void layer_norm_backward_dx_kernel(const float* __restrict__ dy, const TX* __restrict__ x,
                                              const float* __restrict__ weight, const float* __restrict__ mean,
                                              const float* __restrict__ rstd, float* __restrict__ dx, std::int64_t M,
                                              std::int64_t C) {
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const std::int64_t m = static_cast<std::int64_t>(blockIdx.x) * kWarps + warp;
  if (m >= M) return;  // whole warp
  const TX* xr = x + m * C;
  const float* gr = dy + m * C;
  const float mu = mean[m], r = rstd[m];
  float sg = 0.f, sgx = 0.f;
  for (std::int64_t c = lane; c < C; c += 32) {
    const float g = gr[c] * weight[c];
    sg += g;
    sgx += g * (load(xr + c) - mu) * r;
  }
  const float mg = warp_sum(sg) / static_cast<float>(C);
  const float mgx = warp_sum(sgx) / static_cast<float>(C);
  float* dxr = dx + m * C;
  for (std::int64_t c = lane; c < C; c += 32) {
    const float g = gr[c] * weight[c];
    const float xh = (load(xr + c) - mu) * r;
    dxr[c] = r * (g - mg - xh * mgx);
  }
}

constexpr unsigned kRowsPerBlock = 8;  // threadIdx.y

// partial: (splits, 2, C): [s][0][c] = sum dy*xhat, [s][1][c] = sum dy over the slice.
template <typename TX>
__global__ void layer_norm_backward_param_kernel(const float* __restrict__ dy, const TX* __restrict__ x,
                                                 const float* __restrict__ mean, const float* __restrict__ rstd,
                                                 float* __restrict__ partial, std::int64_t M, std::int64_t C,
                                                 std::int64_t rows_per_split) {
  __shared__ float sw[kRowsPerBlock][33];
  __shared__ float sb[kRowsPerBlock][33];
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * 32 + threadIdx.x;
  const std::int64_t r0 = static_cast<std::int64_t>(blockIdx.y) * rows_per_split;
  const std::int64_t r1 = min(r0 + rows_per_split, M);
  float aw = 0.f, ab = 0.f;
  if (c < C) {
    for (std::int64_t m = r0 + threadIdx.y; m < r1; m += kRowsPerBlock) {
      const float g = dy[m * C + c];
      aw += g * (load(x + m * C + c) - mean[m]) * rstd[m];
      ab += g;
    }
  }
  sw[threadIdx.y][threadIdx.x] = aw;
  sb[threadIdx.y][threadIdx.x] = ab;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    float tw = 0.f, tb = 0.f;
    for (unsigned k = 0; k < kRowsPerBlock; ++k) {
      tw += sw[k][threadIdx.x];
      tb += sb[k][threadIdx.x];
    }
    partial[(blockIdx.y * 2 + 0) * C + c] = tw;
    partial[(blockIdx.y * 2 + 1) * C + c] = tb;
  }
}

__global__ void layer_norm_param_finalize_kernel(const float* __restrict__ partial, float* __restrict__ dweight,
                                                 float* __restrict__ dbias, std::int64_t C, int splits) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float tw = 0.f, tb = 0.f;
  for (int s = 0; s < splits; ++s) {
    tw += partial[(s * 2 + 0) * C + c];
    tb += partial[(s * 2 + 1) * C + c];
  }
  dweight[c] = tw;
  dbias[c] = tb;
}

}  // namespace

template <typename T>
void layer_norm_forward(const T* x, const float* weight, const float* bias, T* y, float* mean, float* rstd,
                        std::int64_t M, std::int64_t C, float eps) {
  launch_kernel(layer_norm_forward_kernel<T>, blocks_for(M, kWarps), kThreads, 0, x, weight, bias, y, mean, rstd, M, C,
                eps);
}

template <typename TX>
void layer_norm_backward(const float* dy, const TX* x, const float* weight, const float* mean, const float* rstd,
                         float* dx, float* dweight, float* dbias, std::int64_t M, std::int64_t C) {
  launch_kernel(layer_norm_backward_dx_kernel<TX>, blocks_for(M, kWarps), kThreads, 0, dy, x, weight, mean, rstd, dx, M,
                C);
  // Enough row slices for ~512 blocks in all, each slice at least 64 rows.
  const std::int64_t col_blocks = (C + 31) / 32;
  std::int64_t splits = std::max<std::int64_t>(1, 512 / col_blocks);
  splits = std::min<std::int64_t>(splits, std::max<std::int64_t>(1, (M + 63) / 64));
  const std::int64_t rows_per_split = std::max<std::int64_t>(1, (M + splits - 1) / splits);
  splits = std::max<std::int64_t>(1, (M + rows_per_split - 1) / rows_per_split);
  Tensor partial = Tensor::empty({splits, 2, C}, DType::F32, Device::CUDA);
  launch_kernel(layer_norm_backward_param_kernel<TX>,
                dim3(static_cast<unsigned>(col_blocks), static_cast<unsigned>(splits)), dim3(32, kRowsPerBlock), 0, dy,
                x, mean, rstd, partial.f32(), M, C, rows_per_split);
  launch_kernel(layer_norm_param_finalize_kernel, blocks_for(C, kThreads), kThreads, 0, partial.f32(), dweight, dbias,
                C, static_cast<int>(splits));
}

#define CXR_LAYER_NORM_INSTANTIATE(T)                                                                            \
  template void layer_norm_forward<T>(const T*, const float*, const float*, T*, float*, float*, std::int64_t,    \
                                      std::int64_t, float);                                                      \
  template void layer_norm_backward<T>(const float*, const T*, const float*, const float*, const float*, float*, \
                                       float*, float*, std::int64_t, std::int64_t);
CXR_LAYER_NORM_INSTANTIATE(float)
CXR_LAYER_NORM_INSTANTIATE(std::uint16_t)
#undef CXR_LAYER_NORM_INSTANTIATE

}  // namespace cxr::cuda
