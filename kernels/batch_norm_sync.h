// The three pieces of a batch norm whose batch is split over processes (SyncBatchNorm), split as
// PyTorch splits them (batch_norm_stats / batch_norm_backward_reduce / batch_norm_backward_elemt).
// Math, activations and mixed precision as the batch_norm2d family (kernels/batch_norm.h): x is
// (N, C, H, W) contiguous, f32 or bf16; everything else f32; act in {identity, relu, silu}, z
// recomputed from x, never stored.
//
// Process p holds N_p images, M_p = N_p H W values per channel; the whole batch M = sum_p M_p.
// Forward:
//   1. batch_norm2d_batch_stats(x_p) -> mean_p, var_p (C), the part's mean and BIASED variance
//      per channel, the same statistics as batch_norm2d_train computes for its batch (CPU: two
//      passes in double; CUDA: Welford per thread, Chan merges, as the family's CUDA kernels).
//   2. (caller) gather (mean_p, var_p, M_p) and combine them with Chan's parallel formula:
//        mean = sum_p M_p mean_p / M
//        var  = (sum_p M_p var_p + sum_p M_p (mean_p - mean)^2) / M
//   3. (caller) batch_norm2d_train_from_stats(x_p, mean, var, ...), which also gives the saved
//      mean and invstd of the whole batch.
// Backward, with weight, bias, mean, invstd those of the forward (the whole batch's statistics):
//   g = dy act'(z),  z = (x - mean_c) invstd_c weight_c + bias_c,  xhat = (x - mean_c) invstd_c
//   1. batch_norm2d_backward_reduce(x_p, dy_p) -> sum_g_c = sum g, sum_gxhat_c = sum g xhat over
//      the part's values: the part's dbias and dweight (so their sums over p are the gradients of
//      weight and bias).
//   2. (caller) all-reduce (sum) sum_g and sum_gxhat over the processes.
//   3. batch_norm2d_backward_elemt(x_p, dy_p, global sums, M) -> the part's rows of
//        dx = weight_c invstd_c (g - sum_g_c / M - xhat sum_gxhat_c / M)
//      which with one process is batch_norm2d_backward's dx.
// Error messages name the ops as the family does: batch_norm2d_<op> with identity,
// batch_norm_act_<op>(relu|silu) with an activation ("batch_norm2d_backward_elemt: ...",
// "batch_norm_act_backward_reduce(silu): ...").
//
// Memory traffic, in passes over the part's N C H W values: batch_stats reads x (CPU: twice,
// CUDA: once); backward_reduce reads x, dy; backward_elemt reads x, dy, writes dx. So the
// forward (with train_from_stats: read x, write y) moves what batch_norm2d_train moves on CUDA
// (3 passes; CPU: 4, one more read of x), the backward what batch_norm2d_backward's kernels move
// on CUDA (5 passes; the CPU's backward keeps g in a buffer: 4). Kernels and byte counts:
// kernels/cuda/batch_norm_sync.cu.
// Deterministic: sums in a fixed order, no atomics; the CPU results do not depend on the OpenMP
// thread count.
#pragma once

#include <cstdint>

#include "kernels/batch_norm.h"
#include "tensor/tensor.h"

namespace cxr {

struct BatchStats {
  Tensor mean, var;  // (C) f32: batch mean and BIASED variance per channel
};
// x (N, C, H, W) contiguous, f32 or bf16, N H W >= 1.
BatchStats batch_norm2d_batch_stats(const Tensor& x);

struct BatchNormGradSums {
  Tensor sum_g, sum_gxhat;  // (C) f32; = the local dbias, dweight
};
// dy (f32) and x of x's shape; weight, bias, mean, invstd (C) f32 (mean, invstd: the whole
// batch's, as batch_norm2d_train_from_stats saved them).
//   sum_g_c = sum g,  sum_gxhat_c = sum g (x - mean_c) invstd_c     (over N, H, W of this part)
BatchNormGradSums batch_norm2d_backward_reduce(BnActivation act, const Tensor& dy, const Tensor& x,
                                               const Tensor& weight, const Tensor& bias, const Tensor& mean,
                                               const Tensor& invstd);
// dx = weight_c invstd_c (g - sum_g_c / count - xhat sum_gxhat_c / count)   (f32, x's shape)
// sum_g, sum_gxhat: (C) f32, the sums over the WHOLE batch (every process); count >= 1: the whole
// batch's N*H*W.
Tensor batch_norm2d_backward_elemt(BnActivation act, const Tensor& dy, const Tensor& x, const Tensor& weight,
                                   const Tensor& bias, const Tensor& mean, const Tensor& invstd,
                                   const Tensor& sum_g, const Tensor& sum_gxhat, std::int64_t count);

// Raw entry points: x is N groups of C channels of HW values.
// CPU: one type T for everything (float, or double for the test references); a bf16 x is widened
// to f32 before these are called (kernels/batch_norm_sync.cpp). Sums in double, channels in
// parallel, each channel's values in order.
namespace cpu {
// = channel_mean_var (kernels/batch_norm.h): the training forward's statistics.
template <typename T>
void batch_norm2d_batch_stats(const T* x, T* mean, T* var, std::int64_t N, std::int64_t C, std::int64_t HW);
template <typename T>
void batch_norm2d_backward_reduce(BnActivation act, const T* dy, const T* x, const T* weight, const T* bias,
                                  const T* mean, const T* invstd, T* sum_g, T* sum_gxhat, std::int64_t N,
                                  std::int64_t C, std::int64_t HW);
template <typename T>
void batch_norm2d_backward_elemt(BnActivation act, const T* dy, const T* x, const T* weight, const T* bias,
                                 const T* mean, const T* invstd, const T* sum_g, const T* sum_gxhat, T* dx,
                                 std::int64_t N, std::int64_t C, std::int64_t HW, std::int64_t count);
}  // namespace cpu

// CUDA: T, the element type of x: float (f32) or std::uint16_t (bf16 bits); instantiated for
// both. Everything else f32. All launch on the compute stream.
namespace cuda {
template <typename T>
void batch_norm2d_batch_stats(const T* x, float* mean, float* var, std::int64_t N, std::int64_t C, std::int64_t HW);
template <typename T>
void batch_norm2d_backward_reduce(BnActivation act, const float* dy, const T* x, const float* weight,
                                  const float* bias, const float* mean, const float* invstd, float* sum_g,
                                  float* sum_gxhat, std::int64_t N, std::int64_t C, std::int64_t HW);
template <typename T>
void batch_norm2d_backward_elemt(BnActivation act, const float* dy, const T* x, const float* weight,
                                 const float* bias, const float* mean, const float* invstd, const float* sum_g,
                                 const float* sum_gxhat, float* dx, std::int64_t N, std::int64_t C, std::int64_t HW,
                                 std::int64_t count);
}  // namespace cuda

}  // namespace cxr
