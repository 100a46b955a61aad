// Fused batch norm + activation on CUDA (math in kernels/batch_norm_act.h).
//
//   z = fmaf(x, scale_c, shift_c)   scale_c = weight_c invstd_c, shift_c = bias_c - mean_c scale_c
//   y = act(z), act in {identity, relu, silu} (a template parameter: no branch in the loops)
// x, y, dy, dx: (N, C, H, W) contiguous, M = N*H*W values per channel; (C) vectors otherwise.
// x and y are float or bf16 (std::uint16_t bits, mixed precision): the element type T is a
// template parameter of the kernels and entry points, as in batch_norm.cu (load widens a
// bf16 x in registers, store rounds y once; no widened copy of x); dy, dx and every (C)
// vector are f32. The byte counts below are for f32; a bf16 x or y moves 2 bytes instead of 4:
// training forward 6 bytes/element, from given statistics 4, evaluation forward 4, training
// backward 16 (x twice at 2, dy twice and dx at 4), evaluation backward 10.
// z is computed exactly as bn_apply_kernel computes batch norm's output, so with act =
// identity the forward equals batch_norm2d_* bit for bit, and with relu/silu it equals the
// batch norm op followed by the activation op.
//
// Training forward = the batch norm statistics (cuda::batch_norm2d_statistics: bn_stats_kernel
//   + bn_finalize_kernel of batch_norm.cu, saved mean/invstd, running update, affine (2, C))
//   + bna_apply_kernel<A>: flat elementwise, y = act(fmaf(x, scale, shift)), 16 bytes of x per
//   thread and step (see Pack below).
//   Traffic: read x twice + write y = 12 bytes/element.
//   Unfused: batch norm 12 bytes/element + activation (read z, write y) 8 = 20 bytes/element.
// Training forward from given statistics (mean, biased var from the convolution's epilogue,
//   kernels/conv2d_bn_stats.h) = bn_finalize_moments_kernel (batch_norm.cu) + bna_apply_kernel<A>:
//   read x + write y = 8 bytes/element.
// Evaluation forward = batch_norm2d_eval_affine + bna_apply_kernel<A>: 8 bytes/element
//   (unfused 16).
// Training backward = 3 kernels:
//   bna_backward_reduce_kernel<A, false>  grid (C, S) with batch norm's chunking (batch_norm2d_split):
//     each thread recomputes z from x, g = dy act'(z), accumulates sum g and sum g (x - mean);
//     block sums (warp shuffles, shared memory) -> partial (C, S, 2).
//   batch_norm2d_backward_finalize (batch_norm.cu): dbias, dweight and coef (3, C) with
//     dx = coef0 g + coef1 x + coef2.
//   bna_backward_dx_kernel<A>: flat elementwise, recomputes z and g, writes dx.
//   Traffic: 2 reads of x and dy + write dx = 20 bytes/element, and no z tensor to keep.
//   Unfused: activation backward (read z, dy, write g: 12) + batch norm backward (20) = 32.
// Evaluation backward = 2 kernels: bna_backward_reduce_kernel<A, true>, grid (C, S): dx = g scale
//   written in the same pass as the sums of g and g (x - running_mean) (the scale is known
//   before any reduction), + batch_norm2d_eval_backward_finalize. Traffic: read x, dy + write
//   dx = 12 bytes/element (unfused 12 + 12 = 24).
// For ResNet-50's bn1 at N=32 (25.7M elements) a training step moves 32 instead of 52
// bytes/element: 0.82 GB instead of 1.34 GB, ~0.16 ms saved at 3.35 TB/s per fused site
// (estimate from the traffic, not measured on a GPU). SiLU costs one expf per element per
// pass; memory-bound still.
// Deterministic (no atomics): partial sums in a workspace from the caching allocator.
#include <algorithm>

#include "kernels/batch_norm_act.h"
#include "kernels/common/cuda.cuh"
#include "kernels/common/load_store.h"
#include "kernels/cuda/reduce.cuh"

namespace cxr::cuda {
namespace {

constexpr unsigned kThreads = 256;

// Address of value i (0 <= i < M) of channel c.
__device__ __forceinline__ std::int64_t channel_offset(std::int64_t i, std::int64_t c, std::int64_t C,
                                                       std::int64_t HW) {
  const std::int64_t n = i / HW;
  return (n * C + c) * HW + (i - n * HW);
}

// The elementwise passes (apply, backward dx) move K = 16 / sizeof(T) elements per thread and
// step: 8 bf16 or 4 floats of x, one 16-byte load, so that enough bytes are in flight to fill
// the memory pipe (one load per thread and step keeps an eighth of those bytes in flight for
// bf16, a quarter for floats). `packed`: x, y (dy, dx) are 16-byte aligned, as tensors from the caching allocator are;
// a view at an unaligned offset takes the one-element loop for all of it. The elements past the
// last full pack (n % K) always take it.
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
__global__ void bna_apply_kernel(const T* __restrict__ x, const float* __restrict__ affine, T* __restrict__ y,
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

// partial (C, S, 2) = sum g, sum g (x - center_c) over chunk s of channel c, g = dy act'(z);
// center: the batch mean (training) or the running mean (evaluation). EvalDx: also writes
// dx = g scale in the same pass (the evaluation backward, whose scale is known before any sum).
template <BnActivation A, bool EvalDx, typename T>
__global__ void bna_backward_reduce_kernel(const float* __restrict__ dy, const T* __restrict__ x,
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

// dx = coef0 g + coef1 x + coef2, g = dy act'(z): K elements of x, dy and dx per pack (dy and
// dx: 16 or 32 bytes).
template <BnActivation A, typename T>
__global__ void bna_backward_dx_kernel(const float* __restrict__ dy, const T* __restrict__ x,
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

unsigned elementwise_blocks(std::int64_t n) { return std::min(blocks_for(n, kThreads), 65535u * 8u); }

// Threads for n elements taken K at a time (the packed kernels above).
template <typename T>
unsigned packed_blocks(std::int64_t n) {
  return elementwise_blocks((n + 16 / sizeof(T) - 1) / (16 / sizeof(T)));
}

template <BnActivation A, typename T>
void apply(const T* x, const float* affine, T* y, std::int64_t n, std::int64_t C, std::int64_t HW) {
  launch_kernel(bna_apply_kernel<A, T>, packed_blocks<T>(n), kThreads, 0, x, affine, y, n, C, HW,
                aligned16(x) && aligned16(y));
}

template <BnActivation A, typename T>
void backward(const float* dy, const T* x, const float* weight, const float* affine, const float* saved_mean,
              const float* saved_invstd, float* dx, float* dweight, float* dbias, std::int64_t N, std::int64_t C,
              std::int64_t HW) {
  const std::int64_t M = N * HW;
  const BatchNormSplit sp = batch_norm2d_split(C, M);
  Tensor partial = Tensor::empty({C, sp.S, 2}, DType::F32, Device::CUDA);
  Tensor coef = Tensor::empty({3, C}, DType::F32, Device::CUDA);
  launch_kernel(bna_backward_reduce_kernel<A, false, T>, dim3(static_cast<unsigned>(C), sp.S), kThreads, 0, dy, x,
                affine, saved_mean, static_cast<float*>(nullptr), partial.f32(), C, HW, M, sp.chunk);
  batch_norm2d_backward_finalize(partial.f32(), sp.S, weight, saved_mean, saved_invstd, dweight, dbias, coef.f32(), C,
                                 M);
  launch_kernel(bna_backward_dx_kernel<A, T>, packed_blocks<T>(M * C), kThreads, 0, dy, x, affine, coef.f32(), dx,
                M * C, C, HW, aligned16(dy) && aligned16(x) && aligned16(dx));
}

template <BnActivation A, typename T>
void eval_backward(const float* dy, const T* x, const float* affine, const float* running_mean,
                   const float* running_var, float* dx, float* dweight, float* dbias, std::int64_t N, std::int64_t C,
                   std::int64_t HW, float eps) {
  const std::int64_t M = N * HW;
  const BatchNormSplit sp = batch_norm2d_split(C, M);
  Tensor partial = Tensor::empty({C, sp.S, 2}, DType::F32, Device::CUDA);
  launch_kernel(bna_backward_reduce_kernel<A, true, T>, dim3(static_cast<unsigned>(C), sp.S), kThreads, 0, dy, x,
                affine, running_mean, dx, partial.f32(), C, HW, M, sp.chunk);
  batch_norm2d_eval_backward_finalize(partial.f32(), sp.S, running_var, dweight, dbias, C, eps);
}

// Calls f.template operator()<A>() with the activation as a compile-time constant.
template <typename F>
void dispatch(BnActivation act, F&& f) {
  switch (act) {
    case BnActivation::Identity: return f.template operator()<BnActivation::Identity>();
    case BnActivation::ReLU: return f.template operator()<BnActivation::ReLU>();
    case BnActivation::SiLU: return f.template operator()<BnActivation::SiLU>();
  }
}

// The training affine form (2, C) from the saved statistics: scale = weight invstd, shift =
// bias - mean scale, as bn_finalize_kernel computes it (so backward recomputes the forward's z).
__global__ void bna_train_affine_kernel(const float* __restrict__ weight, const float* __restrict__ bias,
                                        const float* __restrict__ saved_mean, const float* __restrict__ saved_invstd,
                                        float* __restrict__ affine, std::int64_t C) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const float scale = weight[c] * saved_invstd[c];
  affine[c] = scale;
  affine[C + c] = bias[c] - saved_mean[c] * scale;
}

}  // namespace

template <typename T>
void batch_norm_act_forward_train(BnActivation act, const T* x, const float* weight, const float* bias, T* y,
                                  float* saved_mean, float* saved_invstd, float* running_mean, float* running_var,
                                  std::int64_t N, std::int64_t C, std::int64_t HW, float momentum, float eps) {
  if (C == 0) return;
  Tensor affine = Tensor::empty({2, C}, DType::F32, Device::CUDA);
  batch_norm2d_statistics(x, weight, bias, saved_mean, saved_invstd, running_mean, running_var, affine.f32(), N, C,
                          HW, momentum, eps);
  dispatch(act, [&]<BnActivation A>() { apply<A, T>(x, affine.f32(), y, N * C * HW, C, HW); });
}

template <typename T>
void batch_norm_act_forward_train_from_stats(BnActivation act, const T* x, const float* mean, const float* var,
                                             const float* weight, const float* bias, T* y, float* saved_mean,
                                             float* saved_invstd, float* running_mean, float* running_var,
                                             std::int64_t N, std::int64_t C, std::int64_t HW, float momentum,
                                             float eps) {
  if (C == 0) return;
  Tensor affine = Tensor::empty({2, C}, DType::F32, Device::CUDA);
  batch_norm2d_statistics_from_moments(mean, var, weight, bias, saved_mean, saved_invstd, running_mean, running_var,
                                       affine.f32(), C, N * HW, momentum, eps);
  dispatch(act, [&]<BnActivation A>() { apply<A, T>(x, affine.f32(), y, N * C * HW, C, HW); });
}

template <typename T>
void batch_norm_act_forward_eval(BnActivation act, const T* x, const float* weight, const float* bias,
                                 const float* running_mean, const float* running_var, T* y, std::int64_t N,
                                 std::int64_t C, std::int64_t HW, float eps) {
  if (C == 0) return;
  Tensor affine = Tensor::empty({2, C}, DType::F32, Device::CUDA);
  batch_norm2d_eval_affine(weight, bias, running_mean, running_var, affine.f32(), C, eps);
  dispatch(act, [&]<BnActivation A>() { apply<A, T>(x, affine.f32(), y, N * C * HW, C, HW); });
}

template <typename T>
void batch_norm_act_backward(BnActivation act, const float* dy, const T* x, const float* weight, const float* bias,
                             const float* saved_mean, const float* saved_invstd, float* dx, float* dweight,
                             float* dbias, std::int64_t N, std::int64_t C, std::int64_t HW) {
  if (C == 0) return;
  Tensor affine = Tensor::empty({2, C}, DType::F32, Device::CUDA);
  launch_kernel(bna_train_affine_kernel, blocks_for(C, kThreads), kThreads, 0, weight, bias, saved_mean, saved_invstd,
                affine.f32(), C);
  dispatch(act, [&]<BnActivation A>() {
    backward<A, T>(dy, x, weight, affine.f32(), saved_mean, saved_invstd, dx, dweight, dbias, N, C, HW);
  });
}

template <typename T>
void batch_norm_act_eval_backward(BnActivation act, const float* dy, const T* x, const float* weight, const float* bias,
                                  const float* running_mean, const float* running_var, float* dx, float* dweight,
                                  float* dbias, std::int64_t N, std::int64_t C, std::int64_t HW, float eps) {
  if (C == 0) return;
  Tensor affine = Tensor::empty({2, C}, DType::F32, Device::CUDA);
  batch_norm2d_eval_affine(weight, bias, running_mean, running_var, affine.f32(), C, eps);
  dispatch(act, [&]<BnActivation A>() {
    eval_backward<A, T>(dy, x, affine.f32(), running_mean, running_var, dx, dweight, dbias, N, C, HW, eps);
  });
}

// The entry points for both activation types: f32, and bf16 bits (mixed precision).
#define CXR_BATCH_NORM_ACT_ENTRY_POINTS(T)                                                                         \
  template void batch_norm_act_forward_train<T>(BnActivation, const T*, const float*, const float*, T*, float*,    \
                                                float*, float*, float*, std::int64_t, std::int64_t, std::int64_t,  \
                                                float, float);                                                     \
  template void batch_norm_act_forward_train_from_stats<T>(                                                        \
      BnActivation, const T*, const float*, const float*, const float*, const float*, T*, float*, float*, float*,  \
      float*, std::int64_t, std::int64_t, std::int64_t, float, float);                                             \
  template void batch_norm_act_forward_eval<T>(BnActivation, const T*, const float*, const float*, const float*,   \
                                               const float*, T*, std::int64_t, std::int64_t, std::int64_t, float); \
  template void batch_norm_act_backward<T>(BnActivation, const float*, const T*, const float*, const float*,       \
                                           const float*, const float*, float*, float*, float*, std::int64_t,       \
                                           std::int64_t, std::int64_t);                                            \
  template void batch_norm_act_eval_backward<T>(BnActivation, const float*, const T*, const float*, const float*,  \
                                                const float*, const float*, float*, float*, float*, std::int64_t,  \
                                                std::int64_t, std::int64_t, float);
CXR_BATCH_NORM_ACT_ENTRY_POINTS(float)
CXR_BATCH_NORM_ACT_ENTRY_POINTS(std::uint16_t)
#undef CXR_BATCH_NORM_ACT_ENTRY_POINTS

}  // namespace cxr::cuda
