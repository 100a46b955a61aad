// The batch norm's pieces for a batch split over processes (SyncBatchNorm) on CUDA; math in
// kernels/batch_norm_sync.h.
//
//   batch_stats      mean_c, var_c (biased) of this part's M = N*H*W values per channel
//   backward_reduce  g = dy act'(z), z = fmaf(x, scale_c, shift_c) (scale = weight invstd,
//                    shift = bias - mean scale: the forward's z, as batch_norm2d_backward's)
//                    sum_g_c = sum g,  sum_gxhat_c = invstd_c sum g (x - mean_c)
//   backward_elemt   dx = c0_c g + c1_c x + c2_c with a = weight invstd, c0 = a,
//                    c1 = -a invstd sum_gxhat / count, c2 = -a sum_g / count - c1 mean
//                    (= a (g - sum_g / count - xhat sum_gxhat / count))
// x, dy, dx: (N, C, H, W) contiguous; x float or bf16 (std::uint16_t bits, widened in registers by
// load(), kernels/common/load_store.h), everything else f32; (C) vectors otherwise.
//
// The reductions use the batch-norm family's tiling and arithmetic (kernels/cuda/batch_norm.cu),
// so that on the whole batch the pieces give batch_norm2d_train's / batch_norm2d_backward's values:
// grid (C, S), block (c, s) reduces chunk s of channel c's M values (flat index i -> n = i / HW,
// j = i % HW: consecutive threads read consecutive addresses), S = min(ceil(1024 / C),
// ceil(M / 2048)) blocks per channel (split_channel, the same rule), partial results (C, S, k) in
// a workspace, then one thread per channel combines its S partials in order. Block reductions
// with kernels/cuda/reduce.cuh: Welford per thread + warp_welford + Chan merges (statistics;
// no E[x^2] - E[x]^2 in float), block_sum (gradient sums). No atomics: deterministic for a
// launch configuration.
//
// Kernels:
//   bn_stats_kernel (batch_norm_common.cuh) grid (C, S): (count, mean, M2) of a chunk -> partial (C, S, 3)
//   sync_stats_finalize_kernel one thread per channel: Chan merge of the S partials in order,
//                              mean = mean, var = M2 / count
//   sync_reduce_kernel<A>      grid (C, S): sum g, sum g (x - mean) of a chunk -> partial (C, S, 2)
//   sync_reduce_finalize_kernel one thread per channel: sum_g, sum_gxhat = invstd sum g (x - mean)
//   sync_elemt_coef_kernel     one thread per channel: (5, C) = scale, shift, c0, c1, c2
//   sync_elemt_kernel<A>       flat grid-stride, one element per thread and step: dx
// Memory traffic per element of the part (f32 x; bf16 x: 2 bytes less per read of x):
//   batch_stats      read x                       = 4 bytes   (the training forward: 12)
//   backward_reduce  read x, dy                   = 8 bytes
//   backward_elemt   read x, dy, write dx         = 12 bytes
// With batch_norm2d_train_from_stats (read x, write y: 8) the forward moves 12 bytes/element,
// as batch_norm2d_train; the backward 20, as batch_norm2d_backward; the (C) all-reduces between
// them are the caller's. ResNet-50's bn1 at 32 images per GPU (25.7M elements): ~31 us for
// batch_stats, ~61 us for backward_reduce, ~92 us for backward_elemt at 3.35 TB/s (estimates
// from the traffic, not measured on a GPU).
// Variants: none timed. Not done: backward_elemt with the family's 16-byte packs
// (bn_backward_dx_kernel); it takes one element per thread and step, as the family's scalar dx
// kernel did before them.
#include <algorithm>

#include "kernels/batch_norm_sync.h"
#include "kernels/common/cuda.cuh"
#include "kernels/common/load_store.h"
#include "kernels/cuda/batch_norm_common.cuh"
#include "kernels/cuda/reduce.cuh"

namespace cxr::cuda {
namespace {

// ---- batch_stats -------------------------------------------------------------------------------

// Merges the S partial triples of each channel in order: mean and biased variance.
__global__ void sync_stats_finalize_kernel(const float* __restrict__ partial, float* __restrict__ mean,
                                           float* __restrict__ var, std::int64_t C, int S) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  Welford w{0.f, 0.f, 0.f};
  for (int s = 0; s < S; ++s) {
    const float* p = partial + (c * S + s) * 3;
    w = welford_merge(w, Welford{p[0], p[1], p[2]});
  }
  mean[c] = w.mean;
  var[c] = w.m2 / w.n;
}

// ---- backward_reduce ---------------------------------------------------------------------------

// The forward's affine form of channel c: z = fmaf(x, scale, shift).
struct Affine {
  float scale, shift;
};
__device__ __forceinline__ Affine affine_of(const float* __restrict__ weight, const float* __restrict__ bias,
                                            const float* __restrict__ mean, const float* __restrict__ invstd,
                                            std::int64_t c) {
  const float scale = weight[c] * invstd[c];
  return {scale, bias[c] - mean[c] * scale};
}

// partial (C, S, 2) = sum g, sum g (x - mean_c) over chunk s of channel c, g = dy act'(z).
template <BnActivation A, typename T>
__global__ void sync_reduce_kernel(const float* __restrict__ dy, const T* __restrict__ x,
                                   const float* __restrict__ weight, const float* __restrict__ bias,
                                   const float* __restrict__ mean_c, const float* __restrict__ invstd_c,
                                   float* __restrict__ partial, std::int64_t C, std::int64_t HW, std::int64_t M,
                                   std::int64_t chunk) {
  const std::int64_t c = blockIdx.x;
  const unsigned s = blockIdx.y, S = gridDim.y;
  const std::int64_t i0 = s * chunk, i1 = min(i0 + chunk, M);
  const Affine af = affine_of(weight, bias, mean_c, invstd_c, c);
  const float mean = mean_c[c];
  float sg = 0.f, sgx = 0.f;
  for (std::int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) {
    const std::int64_t k = channel_offset(i, c, C, HW);
    const float v = load(x + k);
    const float g = bn_act_grad<A>(dy[k], fmaf(v, af.scale, af.shift));
    sg += g;
    sgx += g * (v - mean);
  }
  sg = block_sum(sg);
  sgx = block_sum(sgx);
  if (threadIdx.x == 0) {
    partial[(c * S + s) * 2 + 0] = sg;
    partial[(c * S + s) * 2 + 1] = sgx;
  }
}

// sum_g, sum_gxhat from the partial sums (C, S, 2), in order.
__global__ void sync_reduce_finalize_kernel(const float* __restrict__ partial, const float* __restrict__ invstd,
                                            float* __restrict__ sum_g, float* __restrict__ sum_gxhat,
                                            std::int64_t C, int S) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float sg = 0.f, sgx = 0.f;
  for (int s = 0; s < S; ++s) {
    sg += partial[(c * S + s) * 2 + 0];
    sgx += partial[(c * S + s) * 2 + 1];
  }
  sum_g[c] = sg;
  sum_gxhat[c] = sgx * invstd[c];
}

// ---- backward_elemt ----------------------------------------------------------------------------

// coef (5, C) = scale, shift (the forward's z), c0, c1, c2 (dx = c0 g + c1 x + c2); M = count.
__global__ void sync_elemt_coef_kernel(const float* __restrict__ weight, const float* __restrict__ bias,
                                       const float* __restrict__ mean, const float* __restrict__ invstd,
                                       const float* __restrict__ sum_g, const float* __restrict__ sum_gxhat,
                                       float* __restrict__ coef, std::int64_t C, float M) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const Affine af = affine_of(weight, bias, mean, invstd, c);
  // dx = a (g - sg/M - (x - mean) invstd dw / M),  a = weight invstd
  const float a = weight[c] * invstd[c];
  const float b = -a * invstd[c] * sum_gxhat[c] / M;
  coef[c] = af.scale;
  coef[C + c] = af.shift;
  coef[2 * C + c] = a;
  coef[3 * C + c] = b;
  coef[4 * C + c] = -a * sum_g[c] / M - b * mean[c];
}

template <BnActivation A, typename T>
__global__ void sync_elemt_kernel(const float* __restrict__ dy, const T* __restrict__ x,
                                  const float* __restrict__ coef, float* __restrict__ dx, std::int64_t n,
                                  std::int64_t C, std::int64_t HW) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const std::int64_t c = (i / HW) % C;
    const float v = load(x + i);
    const float g = bn_act_grad<A>(dy[i], fmaf(v, coef[c], coef[C + c]));
    dx[i] = fmaf(coef[2 * C + c], g, fmaf(coef[3 * C + c], v, coef[4 * C + c]));
  }
}

// ---- launches ----------------------------------------------------------------------------------

}  // namespace

template <typename T>
void batch_norm2d_batch_stats(const T* x, float* mean, float* var, std::int64_t N, std::int64_t C, std::int64_t HW) {
  if (C == 0) return;
  const std::int64_t M = N * HW;
  const Split sp = split_channel(C, M);
  Tensor partial = Tensor::empty({C, sp.S, 3}, DType::F32, Device::CUDA);
  launch_kernel(bn_stats_kernel<T>, dim3(static_cast<unsigned>(C), sp.S), kThreads, 0, x, partial.f32(), C, HW, M,
                sp.chunk);
  launch_kernel(sync_stats_finalize_kernel, blocks_for(C, kThreads), kThreads, 0, partial.f32(), mean, var, C,
                static_cast<int>(sp.S));
}

template <typename T>
void batch_norm2d_backward_reduce(BnActivation act, const float* dy, const T* x, const float* weight,
                                  const float* bias, const float* mean, const float* invstd, float* sum_g,
                                  float* sum_gxhat, std::int64_t N, std::int64_t C, std::int64_t HW) {
  if (C == 0) return;
  const std::int64_t M = N * HW;
  const Split sp = split_channel(C, M);
  const unsigned S = sp.S;
  const std::int64_t chunk = sp.chunk;
  Tensor partial = Tensor::empty({C, S, 2}, DType::F32, Device::CUDA);
  dispatch(act, [&]<BnActivation A>() {
    launch_kernel(sync_reduce_kernel<A, T>, dim3(static_cast<unsigned>(C), S), kThreads, 0, dy, x, weight, bias, mean,
                  invstd, partial.f32(), C, HW, M, chunk);
  });
  launch_kernel(sync_reduce_finalize_kernel, blocks_for(C, kThreads), kThreads, 0, partial.f32(), invstd, sum_g,
                sum_gxhat, C, static_cast<int>(S));
}

template <typename T>
void batch_norm2d_backward_elemt(BnActivation act, const float* dy, const T* x, const float* weight,
                                 const float* bias, const float* mean, const float* invstd, const float* sum_g,
                                 const float* sum_gxhat, float* dx, std::int64_t N, std::int64_t C, std::int64_t HW,
                                 std::int64_t count) {
  const std::int64_t n = N * C * HW;
  if (n == 0) return;
  Tensor coef = Tensor::empty({5, C}, DType::F32, Device::CUDA);
  launch_kernel(sync_elemt_coef_kernel, blocks_for(C, kThreads), kThreads, 0, weight, bias, mean, invstd, sum_g,
                sum_gxhat, coef.f32(), C, static_cast<float>(count));
  const unsigned blocks = std::min(blocks_for(n, kThreads), 65535u * 8u);
  dispatch(act, [&]<BnActivation A>() {
    launch_kernel(sync_elemt_kernel<A, T>, blocks, kThreads, 0, dy, x, coef.f32(), dx, n, C, HW);
  });
}

// The entry points for both types of x: f32, and bf16 bits (mixed precision).
#define CXR_BATCH_NORM_SYNC_ENTRY_POINTS(T)                                                                      \
  template void batch_norm2d_batch_stats<T>(const T*, float*, float*, std::int64_t, std::int64_t, std::int64_t); \
  template void batch_norm2d_backward_reduce<T>(BnActivation, const float*, const T*, const float*, const float*, \
                                                const float*, const float*, float*, float*, std::int64_t,        \
                                                std::int64_t, std::int64_t);                                     \
  template void batch_norm2d_backward_elemt<T>(BnActivation, const float*, const T*, const float*, const float*,  \
                                               const float*, const float*, const float*, const float*, float*,  \
                                               std::int64_t, std::int64_t, std::int64_t, std::int64_t);
CXR_BATCH_NORM_SYNC_ENTRY_POINTS(float)
CXR_BATCH_NORM_SYNC_ENTRY_POINTS(std::uint16_t)
#undef CXR_BATCH_NORM_SYNC_ENTRY_POINTS

}  // namespace cxr::cuda
