// Batch norm + activation on CUDA (math in kernels/batch_norm.h); act = identity is the plain
// batch norm.
//
//   z = fmaf(x, scale_c, shift_c)   scale_c = weight_c invstd_c, shift_c = bias_c - mean_c scale_c
//   y = act(z), act in {identity, relu, silu} (a template parameter: no branch in the loops)
// x, y, dy, dx: (N, C, H, W) contiguous, M = N*H*W values per channel (N runs of HW
// contiguous elements); (C) vectors otherwise. x and y are float or bf16 (std::uint16_t bits,
// mixed precision): the element type T is a template parameter of every kernel that reads x or
// writes y and of the entry points; load / store (kernels/common/load_store.h) widen a bf16 x
// in registers and round y once, so no widened copy of x is made. dy, dx and every (C) vector
// are f32. The byte counts below are for f32; a bf16 x or y moves 2 bytes instead of 4:
// training forward 6 bytes/element, from given statistics 4, evaluation forward 4, training
// backward 16 (x twice at 2, dy twice and dx at 4), evaluation backward 10.
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
//   bn_finalize_kernel  one thread per channel merges the S partial triples; writes saved
//                       mean/invstd, updates the running statistics (unbiased variance), and
//                       the affine form (2, C) = scale, shift.
//   bn_apply_kernel<A>  flat elementwise, y = act(fmaf(x, scale, shift)), 16 bytes of x per
//                       thread and step (Pack below).
//   Traffic: read x twice + write y = 12 bytes/element (the floor with a statistics pass).
//   ResNet-50 bn1 at N=32: 32x64x112x112 = 25.7M elements, 308 MB -> ~92 us on an H100.
//   With a separate activation op after it: + read z, write y = 20 bytes/element.
// Training forward from given statistics (mean, biased var from the convolution's epilogue,
//   kernels/conv2d_bn.h) = bn_finalize_moments_kernel + bn_apply_kernel<A>: read x + write y =
//   8 bytes/element.
// Evaluation forward = bn_eval_affine_kernel (scale/shift from the running statistics) +
//   bn_apply_kernel<A>: 8 bytes/element (16 with a separate activation op).
// Training backward = bn_train_affine_kernel (the forward's scale/shift from the saved
//   statistics, so z is recomputed exactly) + 3 kernels:
//   bn_backward_reduce_kernel<A, false>  grid (C, S) with the statistics' chunking: each thread
//     recomputes z from x, g = dy act'(z), accumulates sum g and sum g (x - mean); block sums
//     (warp shuffles, shared memory) -> partial (C, S, 2).
//   bn_backward_finalize_kernel  one thread per channel: dbias, dweight and coef (3, C) with
//     dx = coef0 g + coef1 x + coef2.
//   bn_backward_dx_kernel<A>  flat elementwise, recomputes z and g, writes dx; 16 bytes of x
//     per thread and step.
//   Traffic: 2 reads of x and dy + write dx = 20 bytes/element, and no z tensor to keep.
//   With a separate activation op: + read z, dy, write g = 32 bytes/element.
// Evaluation backward (frozen running statistics; invstd = rsqrt(running_var + eps)) =
//   bn_eval_affine_kernel + 2 kernels: bn_backward_reduce_kernel<A, true>, grid (C, S): dx = g
//   scale written in the same pass as the sums of g and g (x - running_mean) (the scale is known
//   before any reduction), + bn_eval_backward_finalize_kernel (one thread per channel sums its S
//   partials in order). Traffic: read x, dy + write dx = 12 bytes/element (the floor), 24 with a
//   separate activation op.
// For ResNet-50's bn1 at N=32 (25.7M elements) a training step at a ReLU site moves 32 instead
// of 52 bytes/element: 0.82 GB instead of 1.34 GB, ~0.16 ms saved at 3.35 TB/s (estimate from
// the traffic, not measured on a GPU). SiLU costs one expf per element per pass; memory-bound
// still.
// Everything is deterministic (no atomics). Partial results live in small workspace tensors
// from the caching allocator (stream-ordered, so freeing them after the launches is safe).
// Variants: the apply and dx kernels took one element per thread and step (a warp read 64
// coalesced bytes of bf16 per load) until the 16-byte packs; plain batch norm kept that scalar
// version, with its own reduce, dx and evaluation-backward kernels computing the same
// arithmetic, until the two families were merged (git history). Neither was timed on a GPU.
// Not done: a plane-per-block apply kernel without the division; a single-pass reduce + apply
// with a grid-wide sync (cooperative launch) when x fits in L2.
#include <algorithm>

#include "kernels/batch_norm.h"
#include "kernels/common/cuda.cuh"
#include "kernels/common/load_store.h"
#include "kernels/cuda/batch_norm_common.cuh"
#include "kernels/cuda/reduce.cuh"

namespace cxr::cuda {
namespace {


// ---- statistics and affine forms ---------------------------------------------------------------

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

// Merges the S partial triples of each channel (in order) and finalizes it.
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

// The evaluation affine form (2, C) from the running statistics.
__global__ void bn_eval_affine_kernel(const float* __restrict__ weight, const float* __restrict__ bias,
                                      const float* __restrict__ running_mean, const float* __restrict__ running_var,
                                      float* __restrict__ affine, std::int64_t C, float eps) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const float scale = weight[c] * rsqrtf(running_var[c] + eps);
  affine[c] = scale;
  affine[C + c] = bias[c] - running_mean[c] * scale;
}

// The training affine form (2, C) from the saved statistics, as finalize_channel computes it
// (so backward recomputes the forward's z).
__global__ void bn_train_affine_kernel(const float* __restrict__ weight, const float* __restrict__ bias,
                                       const float* __restrict__ saved_mean, const float* __restrict__ saved_invstd,
                                       float* __restrict__ affine, std::int64_t C) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const float scale = weight[c] * saved_invstd[c];
  affine[c] = scale;
  affine[C + c] = bias[c] - saved_mean[c] * scale;
}

// ---- elementwise passes --------------------------------------------------------------------------

// The elementwise passes (apply, backward dx) move K = 16 / sizeof(T) elements per thread and
// step: 8 bf16 or 4 floats of x, one 16-byte load, so that enough bytes are in flight to fill
// the memory pipe (one load per thread and step keeps an eighth of those bytes in flight for
// bf16, a quarter for floats). `packed`: x, y (dy, dx) are 16-byte aligned, as tensors from the
// caching allocator are; a view at an unaligned offset takes the one-element loop for all of
// it. The elements past the last full pack (n % K) always take it.
template <typename E, int K>
struct alignas(16) Pack {
  E v[K];
};

// The channel of flat element i of an (N, C, HW) tensor, stepped one element at a time (one
// division for a pack instead of one per element).
struct ChannelWalk {
  std::int64_t c, r, C, HW;
  __device__ ChannelWalk(std::int64_t i, std::int64_t C_, std::int64_t HW_)
      : c((i / HW_) % C_), r(i % HW_), C(C_), HW(HW_) {}
  __device__ void next() {
    if (++r == HW) {
      r = 0;
      if (++c == C) c = 0;
    }
  }
};

// Grid-stride over n elements of an (N, C, HW) tensor: pack_f(p, ch) for pack p (elements
// p K .. p K + K - 1, ch at the first of them) when `packed`, then element_f(i, c) for each
// element i the packs did not cover, c its channel.
template <int K, class PackF, class ElementF>
__device__ __forceinline__ void for_each_channel_element(std::int64_t n, bool packed, const PackF& pack_f,
                                                         const ElementF& element_f, std::int64_t C, std::int64_t HW) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  const std::int64_t first = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const std::int64_t packs = packed ? n / K : 0;
  for (std::int64_t p = first; p < packs; p += stride) pack_f(p, ChannelWalk(p * K, C, HW));
  for (std::int64_t i = packs * K + first; i < n; i += stride) element_f(i, (i / HW) % C);
}

// y = act(x * scale + shift); affine (2, C) = scale, shift.
template <BnActivation A, typename T>
__global__ void bn_apply_kernel(const T* __restrict__ x, const float* __restrict__ affine, T* __restrict__ y,
                                std::int64_t n, std::int64_t C, std::int64_t HW, bool packed) {
  constexpr int K = 16 / sizeof(T);
  const auto value = [&](float v, std::int64_t c) { return bn_act_value<A>(fmaf(v, affine[c], affine[C + c])); };
  for_each_channel_element<K>(
      n, packed,
      [&](std::int64_t p, ChannelWalk ch) {
        const Pack<T, K> in = reinterpret_cast<const Pack<T, K>*>(x)[p];
        Pack<T, K> out;
        for (int j = 0; j < K; ++j, ch.next()) store(&out.v[j], value(load(&in.v[j]), ch.c));
        reinterpret_cast<Pack<T, K>*>(y)[p] = out;
      },
      [&](std::int64_t i, std::int64_t c) { store(y + i, value(load(x + i), c)); }, C, HW);
}

// ---- backward ------------------------------------------------------------------------------------

// partial (C, S, 2) = sum g, sum g (x - center_c) over chunk s of channel c, g = dy act'(z);
// center: the batch mean (training) or the running mean (evaluation). EvalDx: also writes
// dx = g scale in the same pass (the evaluation backward, whose scale is known before any sum).
template <BnActivation A, bool EvalDx, typename T>
__global__ void bn_backward_reduce_kernel(const float* __restrict__ dy, const T* __restrict__ x,
                                          const float* __restrict__ affine, const float* __restrict__ center_c,
                                          float* __restrict__ dx, float* __restrict__ partial, std::int64_t C,
                                          std::int64_t HW, std::int64_t M, std::int64_t chunk) {
  const std::int64_t c = blockIdx.x;
  const unsigned s = blockIdx.y, S = gridDim.y;
  const std::int64_t i0 = s * chunk, i1 = min(i0 + chunk, M);
  const float scale = affine[c], shift = affine[C + c], center = center_c[c];
  float sg = 0.f, sgx = 0.f;
  for (std::int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) {
    const std::int64_t k = channel_offset(i, c, C, HW);
    const float v = load(x + k);
    const float g = bn_act_grad<A>(dy[k], fmaf(v, scale, shift));
    if constexpr (EvalDx) dx[k] = g * scale;
    sg += g;
    sgx += g * (v - center);
  }
  sg = block_sum(sg);
  sgx = block_sum(sgx);
  if (threadIdx.x == 0) {
    partial[(c * S + s) * 2 + 0] = sg;
    partial[(c * S + s) * 2 + 1] = sgx;
  }
}

// dbias, dweight and coef (3, C) with dx = coef[0] g + coef[1] x + coef[2], from the partial
// sums (C, S, 2) of the training backward.
__global__ void bn_backward_finalize_kernel(const float* __restrict__ partial, const float* __restrict__ weight,
                                            const float* __restrict__ saved_mean,
                                            const float* __restrict__ saved_invstd, float* __restrict__ dweight,
                                            float* __restrict__ dbias, float* __restrict__ coef, std::int64_t C, int S,
                                            float M) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float sg = 0.f, sgx = 0.f;
  for (int s = 0; s < S; ++s) {
    sg += partial[(c * S + s) * 2 + 0];
    sgx += partial[(c * S + s) * 2 + 1];
  }
  const float invstd = saved_invstd[c], mean = saved_mean[c];
  const float dw = sgx * invstd;  // sum g * xhat
  dbias[c] = sg;
  dweight[c] = dw;
  // dx = a (g - sg/M - (x - mean) invstd dw / M),  a = weight invstd
  const float a = weight[c] * invstd;
  const float b = -a * invstd * dw / M;
  coef[c] = a;
  coef[C + c] = b;
  coef[2 * C + c] = -a * sg / M - b * mean;
}

// dx = coef0 g + coef1 x + coef2, g = dy act'(z): K elements of x, dy and dx per pack (dy and
// dx: 16 or 32 bytes).
template <BnActivation A, typename T>
__global__ void bn_backward_dx_kernel(const float* __restrict__ dy, const T* __restrict__ x,
                                      const float* __restrict__ affine, const float* __restrict__ coef,
                                      float* __restrict__ dx, std::int64_t n, std::int64_t C, std::int64_t HW,
                                      bool packed) {
  constexpr int K = 16 / sizeof(T);
  const auto grad = [&](float d, float v, std::int64_t c) {
    const float g = bn_act_grad<A>(d, fmaf(v, affine[c], affine[C + c]));
    return fmaf(coef[c], g, fmaf(coef[C + c], v, coef[2 * C + c]));
  };
  for_each_channel_element<K>(
      n, packed,
      [&](std::int64_t p, ChannelWalk ch) {
        const Pack<T, K> xs = reinterpret_cast<const Pack<T, K>*>(x)[p];
        const Pack<float, K> ds = reinterpret_cast<const Pack<float, K>*>(dy)[p];
        Pack<float, K> out;
        for (int j = 0; j < K; ++j, ch.next()) out.v[j] = grad(ds.v[j], load(&xs.v[j]), ch.c);
        reinterpret_cast<Pack<float, K>*>(dx)[p] = out;
      },
      [&](std::int64_t i, std::int64_t c) { dx[i] = grad(dy[i], load(x + i), c); }, C, HW);
}

// Evaluation backward: dbias = sum g, dweight = invstd * sum g (x - running_mean), from the
// partial sums (C, S, 2).
__global__ void bn_eval_backward_finalize_kernel(const float* __restrict__ partial,
                                                 const float* __restrict__ running_var, float* __restrict__ dweight,
                                                 float* __restrict__ dbias, std::int64_t C, int S, float eps) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float sg = 0.f, sgx = 0.f;
  for (int s = 0; s < S; ++s) {
    sg += partial[(c * S + s) * 2 + 0];
    sgx += partial[(c * S + s) * 2 + 1];
  }
  dbias[c] = sg;
  dweight[c] = sgx * rsqrtf(running_var[c] + eps);
}

// ---- launches ------------------------------------------------------------------------------------

unsigned elementwise_blocks(std::int64_t n) { return std::min(blocks_for(n, kThreads), 65535u * 8u); }

// Threads for n elements taken K at a time (the packed kernels above).
template <typename T>
unsigned packed_blocks(std::int64_t n) {
  return elementwise_blocks((n + 16 / sizeof(T) - 1) / (16 / sizeof(T)));
}

Tensor empty_affine(std::int64_t C) { return Tensor::empty({2, C}, DType::F32, Device::CUDA); }

// The launches with the activation A a compile-time constant (dispatch above picks A).
// y = act(fmaf(x, scale, shift)) over the n = N C HW values.
template <BnActivation A, typename T>
void apply(const T* x, const float* affine, T* y, std::int64_t n, std::int64_t C, std::int64_t HW) {
  launch_kernel(bn_apply_kernel<A, T>, packed_blocks<T>(n), kThreads, 0, x, affine, y, n, C, HW,
                aligned16(x) && aligned16(y));
}

template <typename T>
void apply_act(BnActivation act, const T* x, const float* affine, T* y, std::int64_t N, std::int64_t C,
               std::int64_t HW) {
  dispatch(act, [&]<BnActivation A>() { apply<A, T>(x, affine, y, N * C * HW, C, HW); });
}

// Training backward after bn_train_affine_kernel: the sums, the coefficients, dx.
template <BnActivation A, typename T>
void backward(const float* dy, const T* x, const float* weight, const float* affine, const float* saved_mean,
              const float* saved_invstd, float* dx, float* dweight, float* dbias, std::int64_t N, std::int64_t C,
              std::int64_t HW) {
  const std::int64_t M = N * HW;
  const Split sp = split_channel(C, M);
  Tensor partial = Tensor::empty({C, sp.S, 2}, DType::F32, Device::CUDA);
  Tensor coef = Tensor::empty({3, C}, DType::F32, Device::CUDA);
  launch_kernel(bn_backward_reduce_kernel<A, false, T>, dim3(static_cast<unsigned>(C), sp.S), kThreads, 0, dy, x,
                affine, saved_mean, static_cast<float*>(nullptr), partial.f32(), C, HW, M, sp.chunk);
  launch_kernel(bn_backward_finalize_kernel, blocks_for(C, kThreads), kThreads, 0, partial.f32(), weight, saved_mean,
                saved_invstd, dweight, dbias, coef.f32(), C, static_cast<int>(sp.S), static_cast<float>(M));
  launch_kernel(bn_backward_dx_kernel<A, T>, packed_blocks<T>(M * C), kThreads, 0, dy, x, affine, coef.f32(), dx,
                M * C, C, HW, aligned16(dy) && aligned16(x) && aligned16(dx));
}

// Evaluation backward after bn_eval_affine_kernel: dx and the sums in one pass, then the sums.
template <BnActivation A, typename T>
void eval_backward(const float* dy, const T* x, const float* affine, const float* running_mean,
                   const float* running_var, float* dx, float* dweight, float* dbias, std::int64_t N, std::int64_t C,
                   std::int64_t HW, float eps) {
  const std::int64_t M = N * HW;
  const Split sp = split_channel(C, M);
  Tensor partial = Tensor::empty({C, sp.S, 2}, DType::F32, Device::CUDA);
  launch_kernel(bn_backward_reduce_kernel<A, true, T>, dim3(static_cast<unsigned>(C), sp.S), kThreads, 0, dy, x,
                affine, running_mean, dx, partial.f32(), C, HW, M, sp.chunk);
  launch_kernel(bn_eval_backward_finalize_kernel, blocks_for(C, kThreads), kThreads, 0, partial.f32(), running_var,
                dweight, dbias, C, static_cast<int>(sp.S), eps);
}

}  // namespace

template <typename T>
void batch_norm2d_forward_train(BnActivation act, const T* x, const float* weight, const float* bias, T* y,
                                float* saved_mean, float* saved_invstd, float* running_mean, float* running_var,
                                std::int64_t N, std::int64_t C, std::int64_t HW, float momentum, float eps) {
  if (C == 0) return;
  const std::int64_t M = N * HW;
  const Split sp = split_channel(C, M);
  Tensor partial = Tensor::empty({C, sp.S, 3}, DType::F32, Device::CUDA);
  Tensor affine = empty_affine(C);
  launch_kernel(bn_stats_kernel<T>, dim3(static_cast<unsigned>(C), sp.S), kThreads, 0, x, partial.f32(), C, HW, M,
                sp.chunk);
  launch_kernel(bn_finalize_kernel, blocks_for(C, kThreads), kThreads, 0, partial.f32(), weight, bias, saved_mean,
                saved_invstd, running_mean, running_var, affine.f32(), C, static_cast<int>(sp.S), momentum, eps);
  apply_act(act, x, affine.f32(), y, N, C, HW);
}

template <typename T>
void batch_norm2d_forward_train_from_stats(BnActivation act, const T* x, const float* mean, const float* var,
                                           const float* weight, const float* bias, T* y, float* saved_mean,
                                           float* saved_invstd, float* running_mean, float* running_var,
                                           std::int64_t N, std::int64_t C, std::int64_t HW, float momentum,
                                           float eps) {
  if (C == 0) return;
  Tensor affine = empty_affine(C);
  launch_kernel(bn_finalize_moments_kernel, blocks_for(C, kThreads), kThreads, 0, mean, var, weight, bias, saved_mean,
                saved_invstd, running_mean, running_var, affine.f32(), C, static_cast<float>(N * HW), momentum, eps);
  apply_act(act, x, affine.f32(), y, N, C, HW);
}

template <typename T>
void batch_norm2d_forward_eval(BnActivation act, const T* x, const float* weight, const float* bias,
                               const float* running_mean, const float* running_var, T* y, std::int64_t N,
                               std::int64_t C, std::int64_t HW, float eps) {
  if (C == 0) return;
  Tensor affine = empty_affine(C);
  launch_kernel(bn_eval_affine_kernel, blocks_for(C, kThreads), kThreads, 0, weight, bias, running_mean, running_var,
                affine.f32(), C, eps);
  apply_act(act, x, affine.f32(), y, N, C, HW);
}

template <typename T>
void batch_norm2d_backward(BnActivation act, const float* dy, const T* x, const float* weight, const float* bias,
                           const float* saved_mean, const float* saved_invstd, float* dx, float* dweight,
                           float* dbias, std::int64_t N, std::int64_t C, std::int64_t HW) {
  if (C == 0) return;
  Tensor affine = empty_affine(C);
  launch_kernel(bn_train_affine_kernel, blocks_for(C, kThreads), kThreads, 0, weight, bias, saved_mean, saved_invstd,
                affine.f32(), C);
  dispatch(act, [&]<BnActivation A>() {
    backward<A, T>(dy, x, weight, affine.f32(), saved_mean, saved_invstd, dx, dweight, dbias, N, C, HW);
  });
}

template <typename T>
void batch_norm2d_eval_backward(BnActivation act, const float* dy, const T* x, const float* weight, const float* bias,
                                const float* running_mean, const float* running_var, float* dx, float* dweight,
                                float* dbias, std::int64_t N, std::int64_t C, std::int64_t HW, float eps) {
  if (C == 0) return;
  Tensor affine = empty_affine(C);
  launch_kernel(bn_eval_affine_kernel, blocks_for(C, kThreads), kThreads, 0, weight, bias, running_mean, running_var,
                affine.f32(), C, eps);
  dispatch(act, [&]<BnActivation A>() {
    eval_backward<A, T>(dy, x, affine.f32(), running_mean, running_var, dx, dweight, dbias, N, C, HW, eps);
  });
}

void batch_norm2d_recompute(const float* x, const float* weight, const float* bias, const float* saved_mean,
                            const float* saved_invstd, float* z, std::int64_t N, std::int64_t C, std::int64_t HW) {
  if (C == 0) return;
  Tensor affine = empty_affine(C);
  launch_kernel(bn_train_affine_kernel, blocks_for(C, kThreads), kThreads, 0, weight, bias, saved_mean, saved_invstd,
                affine.f32(), C);
  apply<BnActivation::Identity, float>(x, affine.f32(), z, N * C * HW, C, HW);
}

// The entry points for both activation types: f32, and bf16 bits (mixed precision).
#define CXR_BATCH_NORM_ENTRY_POINTS(T)                                                                           \
  template void batch_norm2d_forward_train<T>(BnActivation, const T*, const float*, const float*, T*, float*,    \
                                              float*, float*, float*, std::int64_t, std::int64_t, std::int64_t,  \
                                              float, float);                                                     \
  template void batch_norm2d_forward_train_from_stats<T>(                                                        \
      BnActivation, const T*, const float*, const float*, const float*, const float*, T*, float*, float*, float*, \
      float*, std::int64_t, std::int64_t, std::int64_t, float, float);                                           \
  template void batch_norm2d_forward_eval<T>(BnActivation, const T*, const float*, const float*, const float*,   \
                                             const float*, T*, std::int64_t, std::int64_t, std::int64_t, float); \
  template void batch_norm2d_backward<T>(BnActivation, const float*, const T*, const float*, const float*,       \
                                         const float*, const float*, float*, float*, float*, std::int64_t,       \
                                         std::int64_t, std::int64_t);                                            \
  template void batch_norm2d_eval_backward<T>(BnActivation, const float*, const T*, const float*, const float*,  \
                                              const float*, const float*, float*, float*, float*, std::int64_t,  \
                                              std::int64_t, std::int64_t, float);
CXR_BATCH_NORM_ENTRY_POINTS(float)
CXR_BATCH_NORM_ENTRY_POINTS(std::uint16_t)
#undef CXR_BATCH_NORM_ENTRY_POINTS

}  // namespace cxr::cuda
