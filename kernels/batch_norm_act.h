// Batch norm fused with the activation after it: y = act(BatchNorm2d(x)), act in {identity,
// relu, silu}. The math of the batch norm is kernels/batch_norm.h's, of the activations
// kernels/activation.h's; this op only avoids the memory passes between them.
//
// x: (N, C, H, W) contiguous, f32 or bf16 (y then has x's dtype: as batch_norm2d_*, see
// kernels/batch_norm.h); weight, bias, running statistics, dy, dx: f32; (C); M = N*H*W.
//   z = (x - mean_c) invstd_c weight_c + bias_c      (the batch norm output, never stored)
//   y = act(z)
// Training forward: mean_c, invstd_c and the running-statistic update exactly as
//   batch_norm2d_train (the same statistics function / kernels are called), then one pass
//   x -> y. Saved for backward: mean_c, invstd_c (and the caller keeps x, as BatchNorm2d does).
// Training forward from given statistics (batch_norm_act_train_from_stats): mean_c and the
//   biased var_c of x were computed elsewhere (by the convolution before it, in its epilogue:
//   kernels/conv2d_bn_stats.h), so the statistics pass over x is skipped:
//   invstd_c = 1 / sqrt(var_c + eps), running_var updated with var_c M / (M - 1); saved
//   statistics and the apply pass as the training forward. Traffic: read x + write y = 2
//   passes (instead of 3).
// Evaluation forward: mean = running_mean, invstd = 1 / sqrt(running_var + eps).
// Training backward, from x and the saved statistics (z is recomputed, not saved):
//   g = dy act'(z)       relu'(z) = [z > 0],  silu'(z) = s(z) (1 + z (1 - s(z))),  identity' = 1
//   xhat = (x - mean) invstd
//   dbias_c = sum g      dweight_c = sum g xhat
//   dx = weight_c invstd_c (g - dbias_c / M - xhat dweight_c / M)
// Evaluation backward (running statistics are constants, as batch_norm2d_eval_backward):
//   dbias_c = sum g      dweight_c = sum g xhat      dx = g weight_c invstd_c
//
// Memory traffic, in passes over N*C*H*W floats (each read or write of a full tensor is one):
//                       unfused (BN op, then activation op)          fused
//   training forward    BN: x, x, write z; act: z, write y     = 5   x, x, write y      = 3
//     from given stats  (statistics from the conv's epilogue)          x, write y         = 2
//   training backward   act: z, dy, write g; BN: g, x, g, x,         dy, x, dy, x,
//                       write dx                               = 8   write dx           = 5
//   eval forward        BN: x, write z; act: z, write y        = 4   x, write y         = 2
//   eval backward       act: z, dy, write g; BN: g, x, write dx= 6   dy, x, write dx    = 3
//   saved between the passes: x and z (two tensors)                  x only
// (GPU: z and g are recomputed in each pass. CPU: g of one channel is kept in a per-thread
// buffer between its two backward passes, so the second reads x and that buffer: 4 passes.)
// A pass over a bf16 x or y (mixed precision) moves 2 bytes per element instead of 4 (dy and dx
// are f32 always); the CUDA kernels read and write bf16 directly, while the CPU, the reference,
// runs its f32 loops on a widened copy of x and rounds y from an f32 buffer.
// Measured on the CPU and the expected gain on a GPU: docs/models.md.
#pragma once

#include <cstdint>
#include <optional>

#include "kernels/activation.h"
#include "kernels/batch_norm.h"
#include "kernels/common/host_device.h"
#include "tensor/tensor.h"

namespace cxr {

enum class BnActivation { Identity, ReLU, SiLU };
const char* bn_activation_name(BnActivation a);  // "identity", "relu", "silu"
// The fused form of an activation after a batch norm: ReLU and SiLU; nullopt for the others
// (sigmoid, GELU), which stay separate ops.
std::optional<BnActivation> fusable_activation(Activation a);

// Training forward: y = act(z); running_mean / running_var updated as batch_norm2d_train
// (undefined, both: no update). Returns y and the saved statistics.
BatchNormOutput batch_norm_act_train(BnActivation act, const Tensor& x, const Tensor& weight, const Tensor& bias,
                                     Tensor& running_mean, Tensor& running_var, float momentum = 0.1f,
                                     float eps = 1e-5f);
// The training forward with the batch statistics given: mean, var (C) f32, the batch mean and
// the biased batch variance of x per channel. Everything else (outputs, running-statistic
// update, saved statistics for batch_norm_act_backward) as batch_norm_act_train.
BatchNormOutput batch_norm_act_train_from_stats(BnActivation act, const Tensor& x, const Tensor& mean,
                                                const Tensor& var, const Tensor& weight, const Tensor& bias,
                                                Tensor& running_mean, Tensor& running_var, float momentum = 0.1f,
                                                float eps = 1e-5f);
Tensor batch_norm_act_eval(BnActivation act, const Tensor& x, const Tensor& weight, const Tensor& bias,
                           const Tensor& running_mean, const Tensor& running_var, float eps = 1e-5f);
// Backward of the training forward: the same x, weight and bias as that forward, its saved
// statistics, and dy = dL/dy.
BatchNormGrads batch_norm_act_backward(BnActivation act, const Tensor& dy, const Tensor& x, const Tensor& weight,
                                       const Tensor& bias, const Tensor& saved_mean, const Tensor& saved_invstd);
// Backward of the evaluation forward (frozen statistics), with that forward's arguments.
BatchNormGrads batch_norm_act_eval_backward(BnActivation act, const Tensor& dy, const Tensor& x, const Tensor& weight,
                                            const Tensor& bias, const Tensor& running_mean, const Tensor& running_var,
                                            float eps = 1e-5f);

// The scalar math, shared by the CPU loops and the CUDA kernels; the activation is a
// compile-time constant so that every loop is branch-free. The values are those of
// kernels/activation.h.
template <BnActivation A, typename T>
CXR_HD T bn_act_value(T z) {
  if constexpr (A == BnActivation::Identity) return z;
  else if constexpr (A == BnActivation::ReLU) return z > T(0) ? z : T(0);
  else return activation_value<T>(Activation::SiLU, z);
}
// dy act'(z). relu: a select, z > 0 ? dy : 0, as PyTorch's threshold_backward (GCC turns the
// product dy [z > 0] into a branch that is mispredicted half the time; the select vectorises).
// The same value as activation_backward's dy * [z > 0] except for the sign of a zero (dy < 0,
// z <= 0) and a non-finite dy where z <= 0 (0 here, NaN there).
template <BnActivation A, typename T>
CXR_HD T bn_act_grad(T dy, T z) {
  if constexpr (A == BnActivation::Identity) return dy;
  else if constexpr (A == BnActivation::ReLU) return z > T(0) ? dy : T(0);
  else return dy * activation_derivative<T>(Activation::SiLU, z);
}

// Raw entry points (x: N groups of C channels of HW values). running_mean / running_var may
// be null (no update).
namespace cpu {
template <typename T>
void batch_norm_act_forward_train(BnActivation act, const T* x, const T* weight, const T* bias, T* y, T* saved_mean,
                                  T* saved_invstd, T* running_mean, T* running_var, std::int64_t N, std::int64_t C,
                                  std::int64_t HW, T momentum, T eps);
template <typename T>
void batch_norm_act_forward_train_from_stats(BnActivation act, const T* x, const T* mean, const T* var,
                                             const T* weight, const T* bias, T* y, T* saved_mean, T* saved_invstd,
                                             T* running_mean, T* running_var, std::int64_t N, std::int64_t C,
                                             std::int64_t HW, T momentum, T eps);
template <typename T>
void batch_norm_act_forward_eval(BnActivation act, const T* x, const T* weight, const T* bias, const T* running_mean,
                                 const T* running_var, T* y, std::int64_t N, std::int64_t C, std::int64_t HW, T eps);
template <typename T>
void batch_norm_act_backward(BnActivation act, const T* dy, const T* x, const T* weight, const T* bias,
                             const T* saved_mean, const T* saved_invstd, T* dx, T* dweight, T* dbias, std::int64_t N,
                             std::int64_t C, std::int64_t HW);
template <typename T>
void batch_norm_act_eval_backward(BnActivation act, const T* dy, const T* x, const T* weight, const T* bias,
                                  const T* running_mean, const T* running_var, T* dx, T* dweight, T* dbias,
                                  std::int64_t N, std::int64_t C, std::int64_t HW, T eps);
}  // namespace cpu

// T, the element type of x and y: float (f32) or std::uint16_t (bf16 bits); instantiated for
// both. Everything else is f32 (dy and dx too).
namespace cuda {
template <typename T>
void batch_norm_act_forward_train(BnActivation act, const T* x, const float* weight, const float* bias, T* y,
                                  float* saved_mean, float* saved_invstd, float* running_mean, float* running_var,
                                  std::int64_t N, std::int64_t C, std::int64_t HW, float momentum, float eps);
template <typename T>
void batch_norm_act_forward_train_from_stats(BnActivation act, const T* x, const float* mean, const float* var,
                                             const float* weight, const float* bias, T* y, float* saved_mean,
                                             float* saved_invstd, float* running_mean, float* running_var,
                                             std::int64_t N, std::int64_t C, std::int64_t HW, float momentum,
                                             float eps);
template <typename T>
void batch_norm_act_forward_eval(BnActivation act, const T* x, const float* weight, const float* bias,
                                 const float* running_mean, const float* running_var, T* y, std::int64_t N,
                                 std::int64_t C, std::int64_t HW, float eps);
template <typename T>
void batch_norm_act_backward(BnActivation act, const float* dy, const T* x, const float* weight, const float* bias,
                             const float* saved_mean, const float* saved_invstd, float* dx, float* dweight,
                             float* dbias, std::int64_t N, std::int64_t C, std::int64_t HW);
template <typename T>
void batch_norm_act_eval_backward(BnActivation act, const float* dy, const T* x, const float* weight, const float* bias,
                                  const float* running_mean, const float* running_var, float* dx, float* dweight,
                                  float* dbias, std::int64_t N, std::int64_t C, std::int64_t HW, float eps);
}  // namespace cuda

}  // namespace cxr
