// 2-D batch normalisation (nn.BatchNorm2d), training and evaluation, with its backward.
//
// x: (N, C, H, W); per channel c the M = N*H*W values x[:, c, :, :] are normalised.
// Training forward:
//   mean_c = (1/M) sum x                var_c = (1/M) sum (x - mean_c)^2           (biased)
//   invstd_c = 1 / sqrt(var_c + eps)    y = (x - mean_c) invstd_c weight_c + bias_c
//   running_mean = (1 - momentum) running_mean + momentum mean_c
//   running_var  = (1 - momentum) running_var  + momentum var_c M / (M - 1)       (unbiased)
//   saved for backward: mean_c, invstd_c.  Requires M > 1 (as PyTorch).
// Evaluation forward: y = (x - running_mean) / sqrt(running_var + eps) weight + bias.
// Training backward (xhat = (x - mean) invstd):
//   dbias_c = sum dy      dweight_c = sum dy xhat
//   dx = weight_c invstd_c (dy - dbias_c / M - xhat dweight_c / M)
// Evaluation backward (frozen statistics: running_mean / running_var are constants, as in
// PyTorch's BatchNorm2d in eval mode), with invstd_c = 1 / sqrt(running_var_c + eps):
//   dbias_c = sum dy      dweight_c = sum dy (x - running_mean_c) invstd_c
//   dx = dy weight_c invstd_c
// Mixed precision: x may be bf16; y then is bf16, the f32 value above rounded once. Statistics,
// parameters, dy and the gradients are f32 whatever the dtype of x.
#pragma once

#include <cstdint>
#include <functional>

#include "tensor/tensor.h"

namespace cxr {

struct BatchNormOutput {
  Tensor y;             // (N, C, H, W)
  Tensor saved_mean;    // (C)
  Tensor saved_invstd;  // (C)
};
struct BatchNormGrads {
  Tensor dx;       // (N, C, H, W)
  Tensor dweight;  // (C)
  Tensor dbias;    // (C)
};

// The part every training forward shares (batch_norm2d_train, batch_norm_act_train and
// batch_norm_act_train_from_stats): checks that there is more than one value per channel and
// that running_mean / running_var are both given (and of C values) or both undefined, then
// allocates y (x's dtype) and the saved statistics (f32). running_mean / running_var: their
// data, or null.
struct TrainForwardBuffers {
  std::int64_t N = 0, C = 0, HW = 0;
  BatchNormOutput out;
  float* running_mean = nullptr;
  float* running_var = nullptr;
};
TrainForwardBuffers batch_norm_train_buffers(const char* op, const Tensor& x, Tensor& running_mean,
                                             Tensor& running_var);
// dx (x's shape), dweight and dbias (C), allocated on x's device for a backward.
BatchNormGrads empty_batch_norm_grads(const Tensor& x);
// x of every batch norm op: defined, f32 or bf16, contiguous, 4-D; a cxr::Error naming op and x
// otherwise.
void check_batch_norm_x(const char* op, const Tensor& x);
// The CPU path for either dtype of x (the definition of the bf16 ops): kernel(x32, y32), the
// f32 CPU kernel, on x widened to f32 (x itself when F32) into an f32 y32 (y itself when F32)
// that is then rounded once into y (f32_to_bf16) when y is BF16. y: x's shape and dtype.
void batch_norm_cpu_in_f32(const Tensor& x, Tensor& y, const std::function<void(const float* x32, float* y32)>& kernel);
// x: (N, C, H, W) contiguous, f32 or bf16 (mixed precision: y has x's dtype, all math in f32,
// y rounded once; on the CPU exactly to_bf16(op(to_f32(x)))); weight, bias and every statistic:
// (C) f32. running_mean / running_var: (C), updated in place; pass undefined tensors (both) to
// skip the update (track_running_stats=False). Backward: dy, dx, dweight, dbias f32 whatever
// the dtype of x.
BatchNormOutput batch_norm2d_train(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                                   Tensor& running_var, float momentum = 0.1f, float eps = 1e-5f);
Tensor batch_norm2d_eval(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                         const Tensor& running_var, float eps = 1e-5f);
// Backward of the training forward, from its saved statistics.
BatchNormGrads batch_norm2d_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& saved_mean,
                                     const Tensor& saved_invstd);
// Backward of the evaluation forward (running statistics frozen): the same x, weight,
// running_mean, running_var and eps as that forward.
BatchNormGrads batch_norm2d_eval_backward(const Tensor& dy, const Tensor& x, const Tensor& weight,
                                          const Tensor& running_mean, const Tensor& running_var, float eps = 1e-5f);

// Raw entry points: x is N planes-groups of C channels of HW elements.
// running_mean / running_var may be null (no update).
// CPU: one type T for everything (float, or double for the test references); a bf16 x is
// widened before these are called (batch_norm_cpu_in_f32).
namespace cpu {
template <typename T>
void batch_norm2d_forward_train(const T* x, const T* weight, const T* bias, T* y, T* saved_mean, T* saved_invstd,
                                T* running_mean, T* running_var, std::int64_t N, std::int64_t C, std::int64_t HW,
                                T momentum, T eps);
template <typename T>
void batch_norm2d_forward_eval(const T* x, const T* weight, const T* bias, const T* running_mean, const T* running_var,
                               T* y, std::int64_t N, std::int64_t C, std::int64_t HW, T eps);
template <typename T>
void batch_norm2d_backward(const T* dy, const T* x, const T* weight, const T* saved_mean, const T* saved_invstd, T* dx,
                           T* dweight, T* dbias, std::int64_t N, std::int64_t C, std::int64_t HW);
template <typename T>
void batch_norm2d_eval_backward(const T* dy, const T* x, const T* weight, const T* running_mean,
                                const T* running_var, T* dx, T* dweight, T* dbias, std::int64_t N, std::int64_t C,
                                std::int64_t HW, T eps);
// The statistics of the training forward for one channel c, shared with fused ops
// (kernels/batch_norm_act.*): saved_mean[c] = mean_c, saved_invstd[c] = invstd_c, and the
// running-statistic update of channel c (skipped when running_mean is null).
// batch_norm2d_forward_train runs, per channel, this and then the affine pass (while the
// channel's values are still in cache).
// The same for a channel whose batch mean and biased variance are given (computed elsewhere,
// e.g. in a convolution's epilogue); M = N*HW values. The same double expressions as above.
template <typename T>
void batch_norm2d_channel_statistics_from_moments(T mean, T var, T* saved_mean, T* saved_invstd, T* running_mean,
                                                  T* running_var, std::int64_t M, std::int64_t c, T momentum, T eps);
template <typename T>
void batch_norm2d_channel_statistics(const T* x, T* saved_mean, T* saved_invstd, T* running_mean, T* running_var,
                                     std::int64_t N, std::int64_t C, std::int64_t HW, std::int64_t c, T momentum,
                                     T eps);
// Under both: the mean of channel c of x (N, C, HW) and the sum of squared deviations from it,
// two passes in double (also the reference of kernels/conv2d_bn_stats.h).
struct ChannelMoments {
  double mean, ss;
};
template <typename T>
ChannelMoments batch_norm2d_channel_moments(const T* x, std::int64_t N, std::int64_t C, std::int64_t HW,
                                            std::int64_t c);
}  // namespace cpu

// T, the element type of x and y: float (f32) or std::uint16_t (bf16 bits); instantiated for
// both. Everything else is f32 (dy and dx too).
namespace cuda {
template <typename T>
void batch_norm2d_forward_train(const T* x, const float* weight, const float* bias, T* y, float* saved_mean,
                                float* saved_invstd, float* running_mean, float* running_var, std::int64_t N,
                                std::int64_t C, std::int64_t HW, float momentum, float eps);
template <typename T>
void batch_norm2d_forward_eval(const T* x, const float* weight, const float* bias, const float* running_mean,
                               const float* running_var, T* y, std::int64_t N, std::int64_t C, std::int64_t HW,
                               float eps);
template <typename T>
void batch_norm2d_backward(const float* dy, const T* x, const float* weight, const float* saved_mean,
                           const float* saved_invstd, float* dx, float* dweight, float* dbias, std::int64_t N,
                           std::int64_t C, std::int64_t HW);
template <typename T>
void batch_norm2d_eval_backward(const float* dy, const T* x, const float* weight, const float* running_mean,
                                const float* running_var, float* dx, float* dweight, float* dbias, std::int64_t N,
                                std::int64_t C, std::int64_t HW, float eps);

// Building blocks shared with fused ops (kernels/batch_norm_act.*); all launch on the compute
// stream. `affine` is (2, C): scale = weight * invstd, shift = bias - mean * scale, so that the
// normalised value is z = fmaf(x, scale, shift) exactly as batch_norm2d_forward_* compute it.
// Training statistics (bn_stats + bn_finalize): saved mean/invstd, running update (skipped when
// running_mean is null), affine.
template <typename T>
void batch_norm2d_statistics(const T* x, const float* weight, const float* bias, float* saved_mean, float* saved_invstd,
                             float* running_mean, float* running_var, float* affine, std::int64_t N, std::int64_t C,
                             std::int64_t HW, float momentum, float eps);
// The same outputs from a given batch mean and biased variance (C) of M values per channel
// (bn_finalize_kernel's arithmetic after its merge): no pass over x.
void batch_norm2d_statistics_from_moments(const float* mean, const float* var, const float* weight,
                                          const float* bias, float* saved_mean, float* saved_invstd,
                                          float* running_mean, float* running_var, float* affine, std::int64_t C,
                                          std::int64_t M, float momentum, float eps);
// Affine form of the evaluation forward, from the running statistics.
void batch_norm2d_eval_affine(const float* weight, const float* bias, const float* running_mean,
                              const float* running_var, float* affine, std::int64_t C, float eps);
// How a channel's M values are split over S blocks (chunk values each) by the reductions.
struct BatchNormSplit {
  unsigned S;
  std::int64_t chunk;
};
BatchNormSplit batch_norm2d_split(std::int64_t C, std::int64_t M);
// partial (C, S, 2) = (sum g, sum g (x - saved_mean)) per chunk, g the gradient at the BN
// output -> dbias, dweight and coef (3, C) with dx = coef[0] g + coef[1] x + coef[2].
void batch_norm2d_backward_finalize(const float* partial, unsigned S, const float* weight, const float* saved_mean,
                                   const float* saved_invstd, float* dweight, float* dbias, float* coef,
                                   std::int64_t C, std::int64_t M);
// partial (C, S, 2) = (sum g, sum g (x - running_mean)) -> dbias, dweight (evaluation backward).
void batch_norm2d_eval_backward_finalize(const float* partial, unsigned S, const float* running_var, float* dweight,
                                         float* dbias, std::int64_t C, float eps);
}  // namespace cuda

}  // namespace cxr
