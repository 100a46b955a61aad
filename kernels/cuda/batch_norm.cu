// 2-D batch norm on CUDA (math in kernels/batch_norm.h). x: (N, C, H, W), M = N*HW values
// per channel, channel c's values are N runs of HW contiguous elements.
// Element type T of x and y: float, or bf16 (std::uint16_t bits, mixed precision), a template
//   parameter of every kernel that reads x or writes y (bn_stats, bn_apply, bn_backward_reduce,
//   bn_backward_dx, bn_eval_backward) and of the entry points. load / store
//   (kernels/common/load_store.h) widen each bf16 value as it is loaded and round y once as it
//   is stored (f32_to_bf16), so the math is the f32 math on the bf16 values and no widened copy
//   of x is made; statistics, affine, dy and dx are f32 always. The byte counts below are for f32;
//   with bf16 x and y those passes move 2 bytes instead of 4 (training forward 6 bytes/element,
//   evaluation forward 4, backward 16 = x twice at 2 + dy twice and dx at 4, evaluation
//   backward 10).
//
// Training forward = 3 kernels:
//   bn_stats_kernel     grid (C, S): block (c, s) reduces chunk s of channel c's M values
//                       (flat index i -> n = i / HW, j = i % HW: consecutive threads read
//                       consecutive addresses). Each thread runs Welford's update (count,
//                       mean, M2) over its values; the block merges the 256 triples with
//                       Chan's pairwise formula (warp shuffles, then shared memory across the
//                       8 warps). Numerically robust: no E[x^2] - E[x]^2 in float.
//                       S = min(ceil(1024 / C), ceil(M / 2048)): enough blocks to fill an
//                       H100 when C is small (ResNet-50 stem: C = 64, M = 401k -> S = 16).
//   bn_finalize_kernel  one thread per channel merges the S partial triples; writes
//                       saved mean/invstd, updates the running statistics (unbiased variance),
//                       and the per-channel affine form y = x * scale + shift.
//   bn_apply_kernel     flat elementwise, c = (i / HW) % C; one FMA per element.
//   Traffic: read x twice + write y = 12 bytes/element (the floor with a stats pass).
//   ResNet-50 bn1 at N=32: 32x64x112x112 = 25.7M elements, 308 MB -> ~92 us on an H100.
// Evaluation forward: bn_eval_prepare_kernel (scale/shift from running stats) + bn_apply_kernel
//   (8 bytes/element).
// Backward = 3 kernels: bn_backward_reduce_kernel (grid (C, S): sums of dy and dy*(x - mean),
//   same chunking, warp-shuffle tree), bn_backward_finalize_kernel (dbias, dweight, and the
//   affine form dx = a*dy + b*x + d per channel), bn_backward_dx_kernel (elementwise).
//   Traffic: 2 reads of x and dy + write dx = 20 bytes/element.
// Evaluation backward (frozen running statistics; invstd = rsqrt(running_var + eps)):
//   dx = dy * weight * invstd,   dbias = sum dy,   dweight = invstd * sum dy (x - running_mean)
//   = 2 kernels: bn_eval_backward_kernel, grid (C, S) with the training backward's chunking:
//   each thread reads dy and x, writes dx (its scale is known before any reduction, so dx is
//   written in the same pass) and accumulates the two sums; the block reduces them (warp
//   shuffles, then shared memory across the 8 warps) into partial (C, S, 2).
//   bn_eval_backward_finalize_kernel: one thread per channel sums its S partials in order.
//   Traffic: read x and dy + write dx = 12 bytes/element (the floor), 3 FLOPs/element;
//   ResNet-50 bn1 at N=32 (25.7M elements): 308 MB, ~100 us at HBM speed. Not measured on a
//   GPU yet.
// Everything is deterministic (no atomics). Partial results live in a small workspace tensor
// from the caching allocator (stream-ordered, so freeing it after the launches is safe).
// The statistics, the eval affine form, the split and both backward finalize kernels are
// exposed (kernels/batch_norm.h) for the fused batch norm + activation
// (kernels/cuda/batch_norm_act.cu).
// Variants not done: a plane-per-block apply kernel without the division; a fused
// single-pass reduce+apply with a grid-wide sync (cooperative launch) when x fits in L2;
// bf16 loads of two values per thread (a warp reads 64 coalesced bytes per load now).
#include <algorithm>

#include "kernels/batch_norm.h"
#include "kernels/common/cuda.cuh"
#include "kernels/common/load_store.h"
#include "kernels/cuda/reduce.cuh"

namespace cxr::cuda {
namespace {

constexpr unsigned kThreads = 256;
constexpr unsigned kWarps = kThreads / 32;

// Address of value i of channel c.
__device__ __forceinline__ std::int64_t channel_offset(std::int64_t i, std::int64_t c, std::int64_t C,
                                                       std::int64_t HW) {
  const std::int64_t n = i / HW;
  return (n * C + c) * HW + (i - n * HW);
}

// partial: (C, S, 3) = (count, mean, M2) of chunk s of channel c.
template <typename T>
__global__ void bn_stats_kernel(const T* __restrict__ x, float* __restrict__ partial, std::int64_t C, std::int64_t HW,
                                std::int64_t M, std::int64_t chunk) {
  const std::int64_t c = blockIdx.x;
  const unsigned s = blockIdx.y, S = gridDim.y;
  const std::int64_t i0 = s * chunk, i1 = min(i0 + chunk, M);
  Welford w{0.f, 0.f, 0.f};
  for (std::int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) {
    const float v = load(x + channel_offset(i, c, C, HW));
    w.n += 1.f;
    const float d = v - w.mean;
    w.mean += d / w.n;
    w.m2 += d * (v - w.mean);
  }
  w = warp_welford(w);
  __shared__ Welford per_warp[kWarps];
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) per_warp[warp] = w;
  __syncthreads();
  if (warp == 0) {
    w = lane < kWarps ? per_warp[lane] : Welford{0.f, 0.f, 0.f};
    w = warp_welford(w);
    if (lane == 0) {
      float* p = partial + (c * S + s) * 3;
      p[0] = w.n;
      p[1] = w.mean;
      p[2] = w.m2;
    }
  }
}

// Channel c from its batch mean and biased variance: the saved statistics, the running-statistic
// update (with the unbiased variance) and affine (2, C) = scale, shift.
__device__ __forceinline__ void finalize_channel(std::int64_t c, float mean, float var, float unbiased_var,
                                                 const float* __restrict__ weight, const float* __restrict__ bias,
                                                 float* __restrict__ saved_mean, float* __restrict__ saved_invstd,
                                                 float* __restrict__ running_mean, float* __restrict__ running_var,
                                                 float* __restrict__ affine, std::int64_t C, float momentum,
                                                 float eps) {
  const float invstd = rsqrtf(var + eps);
  saved_mean[c] = mean;
  saved_invstd[c] = invstd;
  if (running_mean) {
    running_mean[c] = (1.f - momentum) * running_mean[c] + momentum * mean;
    running_var[c] = (1.f - momentum) * running_var[c] + momentum * unbiased_var;
  }
  const float scale = weight[c] * invstd;
  affine[c] = scale;
  affine[C + c] = bias[c] - mean * scale;
}

// affine: (2, C) = scale, shift.
__global__ void bn_finalize_kernel(const float* __restrict__ partial, const float* __restrict__ weight,
                                   const float* __restrict__ bias, float* __restrict__ saved_mean,
                                   float* __restrict__ saved_invstd, float* __restrict__ running_mean,
                                   float* __restrict__ running_var, float* __restrict__ affine, std::int64_t C, int S,
                                   float momentum, float eps) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  Welford w{0.f, 0.f, 0.f};
  for (int s = 0; s < S; ++s) {
    const float* p = partial + (c * S + s) * 3;
    w = welford_merge(w, Welford{p[0], p[1], p[2]});
  }
  finalize_channel(c, w.mean, w.m2 / w.n, w.m2 / (w.n - 1.f), weight, bias, saved_mean, saved_invstd, running_mean,
                   running_var, affine, C, momentum, eps);
}

// bn_finalize_kernel's outputs from a given mean and biased variance (M values per channel).
__global__ void bn_finalize_moments_kernel(const float* __restrict__ mean, const float* __restrict__ var,
                                           const float* __restrict__ weight, const float* __restrict__ bias,
                                           float* __restrict__ saved_mean, float* __restrict__ saved_invstd,
                                           float* __restrict__ running_mean, float* __restrict__ running_var,
                                           float* __restrict__ affine, std::int64_t C, float M, float momentum,
                                           float eps) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  finalize_channel(c, mean[c], var[c], var[c] * M / (M - 1.f), weight, bias, saved_mean, saved_invstd, running_mean,
                   running_var, affine, C, momentum, eps);
}

__global__ void bn_eval_prepare_kernel(const float* __restrict__ weight, const float* __restrict__ bias,
                                       const float* __restrict__ running_mean, const float* __restrict__ running_var,
                                       float* __restrict__ affine, std::int64_t C, float eps) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const float scale = weight[c] * rsqrtf(running_var[c] + eps);
  affine[c] = scale;
  affine[C + c] = bias[c] - running_mean[c] * scale;
}

template <typename T>
__global__ void bn_apply_kernel(const T* __restrict__ x, const float* __restrict__ affine, T* __restrict__ y,
                                std::int64_t n, std::int64_t C, std::int64_t HW) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const std::int64_t c = (i / HW) % C;
    store(y + i, fmaf(load(x + i), affine[c], affine[C + c]));
  }
}

// The block's two sums (sum dy, sum dy (x - mean)) reduced over its warps and written to
// out[0], out[1] by thread 0 (every thread of the block must call it).
__device__ __forceinline__ void store_block_sums(float sdy, float sdyx, float* out) {
  sdy = warp_sum(sdy);
  sdyx = warp_sum(sdyx);
  __shared__ float per_warp[2][kWarps];
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) {
    per_warp[0][warp] = sdy;
    per_warp[1][warp] = sdyx;
  }
  __syncthreads();
  if (warp == 0) {
    sdy = warp_sum(lane < kWarps ? per_warp[0][lane] : 0.f);
    sdyx = warp_sum(lane < kWarps ? per_warp[1][lane] : 0.f);
    if (lane == 0) {
      out[0] = sdy;
      out[1] = sdyx;
    }
  }
}

// partial: (C, S, 2) = sum dy, sum dy * (x - mean) over chunk s of channel c.
template <typename T>
__global__ void bn_backward_reduce_kernel(const float* __restrict__ dy, const T* __restrict__ x,
                                          const float* __restrict__ saved_mean, float* __restrict__ partial,
                                          std::int64_t C, std::int64_t HW, std::int64_t M, std::int64_t chunk) {
  const std::int64_t c = blockIdx.x;
  const unsigned s = blockIdx.y, S = gridDim.y;
  const std::int64_t i0 = s * chunk, i1 = min(i0 + chunk, M);
  const float mean = saved_mean[c];
  float sdy = 0.f, sdyx = 0.f;
  for (std::int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) {
    const std::int64_t k = channel_offset(i, c, C, HW);
    const float g = dy[k];
    sdy += g;
    sdyx += g * (load(x + k) - mean);
  }
  store_block_sums(sdy, sdyx, partial + (c * S + s) * 2);
}

// coef: (3, C) with dx = coef[0]*dy + coef[1]*x + coef[2].
__global__ void bn_backward_finalize_kernel(const float* __restrict__ partial, const float* __restrict__ weight,
                                            const float* __restrict__ saved_mean,
                                            const float* __restrict__ saved_invstd, float* __restrict__ dweight,
                                            float* __restrict__ dbias, float* __restrict__ coef, std::int64_t C, int S,
                                            float M) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float sdy = 0.f, sdyx = 0.f;
  for (int s = 0; s < S; ++s) {
    sdy += partial[(c * S + s) * 2 + 0];
    sdyx += partial[(c * S + s) * 2 + 1];
  }
  const float invstd = saved_invstd[c], mean = saved_mean[c];
  const float dw = sdyx * invstd;  // sum dy * xhat
  dbias[c] = sdy;
  dweight[c] = dw;
  // dx = a (dy - sdy/M - (x - mean) invstd dw / M),  a = weight invstd
  const float a = weight[c] * invstd;
  const float b = -a * invstd * dw / M;
  coef[c] = a;
  coef[C + c] = b;
  coef[2 * C + c] = -a * sdy / M - b * mean;
}

template <typename T>
__global__ void bn_backward_dx_kernel(const float* __restrict__ dy, const T* __restrict__ x,
                                      const float* __restrict__ coef, float* __restrict__ dx, std::int64_t n,
                                      std::int64_t C, std::int64_t HW) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const std::int64_t c = (i / HW) % C;
    dx[i] = fmaf(coef[c], dy[i], fmaf(coef[C + c], load(x + i), coef[2 * C + c]));
  }
}

// Evaluation backward, pass 1: dx = dy * weight * invstd, and per (channel, chunk) the sums
// partial (C, S, 2) = sum dy, sum dy * (x - running_mean).
template <typename T>
__global__ void bn_eval_backward_kernel(const float* __restrict__ dy, const T* __restrict__ x,
                                        const float* __restrict__ weight, const float* __restrict__ running_mean,
                                        const float* __restrict__ running_var, float* __restrict__ dx,
                                        float* __restrict__ partial, std::int64_t C, std::int64_t HW, std::int64_t M,
                                        std::int64_t chunk, float eps) {
  const std::int64_t c = blockIdx.x;
  const unsigned s = blockIdx.y, S = gridDim.y;
  const std::int64_t i0 = s * chunk, i1 = min(i0 + chunk, M);
  const float mean = running_mean[c];
  const float scale = weight[c] * rsqrtf(running_var[c] + eps);
  float sdy = 0.f, sdyx = 0.f;
  for (std::int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) {
    const std::int64_t k = channel_offset(i, c, C, HW);
    const float g = dy[k];
    dx[k] = g * scale;
    sdy += g;
    sdyx += g * (load(x + k) - mean);
  }
  store_block_sums(sdy, sdyx, partial + (c * S + s) * 2);
}

// Evaluation backward, pass 2: dbias = sum dy, dweight = invstd * sum dy (x - running_mean).
__global__ void bn_eval_backward_finalize_kernel(const float* __restrict__ partial,
                                                 const float* __restrict__ running_var, float* __restrict__ dweight,
                                                 float* __restrict__ dbias, std::int64_t C, int S, float eps) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float sdy = 0.f, sdyx = 0.f;
  for (int s = 0; s < S; ++s) {
    sdy += partial[(c * S + s) * 2 + 0];
    sdyx += partial[(c * S + s) * 2 + 1];
  }
  dbias[c] = sdy;
  dweight[c] = sdyx * rsqrtf(running_var[c] + eps);
}

// Chunking of a channel's M values over S blocks (exposed as batch_norm2d_split).
using Split = BatchNormSplit;
Split split_channel(std::int64_t C, std::int64_t M) {
  std::int64_t S = std::max<std::int64_t>(1, (1024 + C - 1) / C);
  S = std::min<std::int64_t>(S, std::max<std::int64_t>(1, (M + 2047) / 2048));
  S = std::min<std::int64_t>(S, 65535);
  const std::int64_t chunk = std::max<std::int64_t>(1, (M + S - 1) / S);
  S = std::max<std::int64_t>(1, (M + chunk - 1) / chunk);
  return {static_cast<unsigned>(S), chunk};
}

unsigned elementwise_blocks(std::int64_t n) {
  return std::min(blocks_for(n, kThreads), 65535u * 8u);
}

}  // namespace

BatchNormSplit batch_norm2d_split(std::int64_t C, std::int64_t M) { return split_channel(C, M); }

template <typename T>
void batch_norm2d_statistics(const T* x, const float* weight, const float* bias, float* saved_mean, float* saved_invstd,
                             float* running_mean, float* running_var, float* affine, std::int64_t N, std::int64_t C,
                             std::int64_t HW, float momentum, float eps) {
  if (C == 0) return;
  const std::int64_t M = N * HW;
  const Split sp = split_channel(C, M);
  Tensor partial = Tensor::empty({C, sp.S, 3}, DType::F32, Device::CUDA);
  launch_kernel(bn_stats_kernel<T>, dim3(static_cast<unsigned>(C), sp.S), kThreads, 0, x, partial.f32(), C, HW, M,
                sp.chunk);
  launch_kernel(bn_finalize_kernel, blocks_for(C, kThreads), kThreads, 0, partial.f32(), weight, bias, saved_mean,
                saved_invstd, running_mean, running_var, affine, C, static_cast<int>(sp.S), momentum, eps);
}

void batch_norm2d_statistics_from_moments(const float* mean, const float* var, const float* weight,
                                          const float* bias, float* saved_mean, float* saved_invstd,
                                          float* running_mean, float* running_var, float* affine, std::int64_t C,
                                          std::int64_t M, float momentum, float eps) {
  if (C == 0) return;
  launch_kernel(bn_finalize_moments_kernel, blocks_for(C, kThreads), kThreads, 0, mean, var, weight, bias, saved_mean,
                saved_invstd, running_mean, running_var, affine, C, static_cast<float>(M), momentum, eps);
}

void batch_norm2d_eval_affine(const float* weight, const float* bias, const float* running_mean,
                              const float* running_var, float* affine, std::int64_t C, float eps) {
  if (C == 0) return;
  launch_kernel(bn_eval_prepare_kernel, blocks_for(C, kThreads), kThreads, 0, weight, bias, running_mean, running_var,
                affine, C, eps);
}

void batch_norm2d_backward_finalize(const float* partial, unsigned S, const float* weight, const float* saved_mean,
                                   const float* saved_invstd, float* dweight, float* dbias, float* coef,
                                   std::int64_t C, std::int64_t M) {
  if (C == 0) return;
  launch_kernel(bn_backward_finalize_kernel, blocks_for(C, kThreads), kThreads, 0, partial, weight, saved_mean,
                saved_invstd, dweight, dbias, coef, C, static_cast<int>(S), static_cast<float>(M));
}

void batch_norm2d_eval_backward_finalize(const float* partial, unsigned S, const float* running_var, float* dweight,
                                         float* dbias, std::int64_t C, float eps) {
  if (C == 0) return;
  launch_kernel(bn_eval_backward_finalize_kernel, blocks_for(C, kThreads), kThreads, 0, partial, running_var, dweight,
                dbias, C, static_cast<int>(S), eps);
}

template <typename T>
void batch_norm2d_forward_train(const T* x, const float* weight, const float* bias, T* y, float* saved_mean,
                                float* saved_invstd, float* running_mean, float* running_var, std::int64_t N,
                                std::int64_t C, std::int64_t HW, float momentum, float eps) {
  if (C == 0) return;
  const std::int64_t M = N * HW;
  Tensor affine = Tensor::empty({2, C}, DType::F32, Device::CUDA);
  batch_norm2d_statistics(x, weight, bias, saved_mean, saved_invstd, running_mean, running_var, affine.f32(), N, C,
                          HW, momentum, eps);
  launch_kernel(bn_apply_kernel<T>, elementwise_blocks(M * C), kThreads, 0, x, affine.f32(), y, M * C, C, HW);
}

template <typename T>
void batch_norm2d_forward_eval(const T* x, const float* weight, const float* bias, const float* running_mean,
                               const float* running_var, T* y, std::int64_t N, std::int64_t C, std::int64_t HW,
                               float eps) {
  if (C == 0) return;
  Tensor affine = Tensor::empty({2, C}, DType::F32, Device::CUDA);
  batch_norm2d_eval_affine(weight, bias, running_mean, running_var, affine.f32(), C, eps);
  launch_kernel(bn_apply_kernel<T>, elementwise_blocks(N * C * HW), kThreads, 0, x, affine.f32(), y, N * C * HW, C, HW);
}

template <typename T>
void batch_norm2d_backward(const float* dy, const T* x, const float* weight, const float* saved_mean,
                           const float* saved_invstd, float* dx, float* dweight, float* dbias, std::int64_t N,
                           std::int64_t C, std::int64_t HW) {
  if (C == 0) return;
  const std::int64_t M = N * HW;
  const Split sp = split_channel(C, M);
  Tensor partial = Tensor::empty({C, sp.S, 2}, DType::F32, Device::CUDA);
  Tensor coef = Tensor::empty({3, C}, DType::F32, Device::CUDA);
  launch_kernel(bn_backward_reduce_kernel<T>, dim3(static_cast<unsigned>(C), sp.S), kThreads, 0, dy, x, saved_mean,
                partial.f32(), C, HW, M, sp.chunk);
  launch_kernel(bn_backward_finalize_kernel, blocks_for(C, kThreads), kThreads, 0, partial.f32(), weight, saved_mean,
                saved_invstd, dweight, dbias, coef.f32(), C, static_cast<int>(sp.S), static_cast<float>(M));
  launch_kernel(bn_backward_dx_kernel<T>, elementwise_blocks(M * C), kThreads, 0, dy, x, coef.f32(), dx, M * C, C, HW);
}

template <typename T>
void batch_norm2d_eval_backward(const float* dy, const T* x, const float* weight, const float* running_mean,
                                const float* running_var, float* dx, float* dweight, float* dbias, std::int64_t N,
                                std::int64_t C, std::int64_t HW, float eps) {
  if (C == 0) return;
  const std::int64_t M = N * HW;
  const Split sp = split_channel(C, M);
  Tensor partial = Tensor::empty({C, sp.S, 2}, DType::F32, Device::CUDA);
  launch_kernel(bn_eval_backward_kernel<T>, dim3(static_cast<unsigned>(C), sp.S), kThreads, 0, dy, x, weight,
                running_mean, running_var, dx, partial.f32(), C, HW, M, sp.chunk, eps);
  launch_kernel(bn_eval_backward_finalize_kernel, blocks_for(C, kThreads), kThreads, 0, partial.f32(), running_var,
                dweight, dbias, C, static_cast<int>(sp.S), eps);
}

// The entry points for both activation types: f32, and bf16 bits (mixed precision).
#define CXR_BATCH_NORM_ENTRY_POINTS(T)                                                                             \
  template void batch_norm2d_statistics<T>(const T*, const float*, const float*, float*, float*, float*, float*,   \
                                           float*, std::int64_t, std::int64_t, std::int64_t, float, float);        \
  template void batch_norm2d_forward_train<T>(const T*, const float*, const float*, T*, float*, float*, float*,    \
                                              float*, std::int64_t, std::int64_t, std::int64_t, float, float);     \
  template void batch_norm2d_forward_eval<T>(const T*, const float*, const float*, const float*, const float*, T*, \
                                             std::int64_t, std::int64_t, std::int64_t, float);                     \
  template void batch_norm2d_backward<T>(const float*, const T*, const float*, const float*, const float*, float*, \
                                         float*, float*, std::int64_t, std::int64_t, std::int64_t);                \
  template void batch_norm2d_eval_backward<T>(const float*, const T*, const float*, const float*, const float*,    \
                                              float*, float*, float*, std::int64_t, std::int64_t, std::int64_t,    \
                                              float);
CXR_BATCH_NORM_ENTRY_POINTS(float)
CXR_BATCH_NORM_ENTRY_POINTS(std::uint16_t)
#undef CXR_BATCH_NORM_ENTRY_POINTS

}  // namespace cxr::cuda
