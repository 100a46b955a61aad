// 2-D batch normalisation (nn.BatchNorm2d) with the activation after it: one op family.
//
//   z = (x - mean_c) invstd_c weight_c + bias_c        (the batch norm's output)
//   y = act(z),  act in {identity, relu, silu}
// Identity is the plain BatchNorm2d. ReLU and SiLU are the activation that follows it, fused:
// z is never stored, and backward recomputes it from x (the activations' math is
// kernels/activation.h's).
//
// x: (N, C, H, W) contiguous; per channel c the M = N*H*W values x[:, c, :, :] are normalised.
// weight, bias, the running and the saved statistics: (C).
// Training forward:
//   mean_c = (1/M) sum x                var_c = (1/M) sum (x - mean_c)^2            (biased)
//   invstd_c = 1 / sqrt(var_c + eps)
//   running_mean = (1 - momentum) running_mean + momentum mean_c
//   running_var  = (1 - momentum) running_var  + momentum var_c M / (M - 1)        (unbiased)
//   saved for backward: mean_c, invstd_c (the caller keeps x).  Requires M > 1 (as PyTorch).
// Training forward from given statistics (batch_norm2d_train_from_stats): mean_c and the
//   biased var_c of x computed elsewhere (by the convolution before it, in its epilogue:
//   kernels/conv2d_bn.h), so there is no statistics pass over x; the rest as above.
// Evaluation forward: mean = running_mean, invstd = 1 / sqrt(running_var + eps).
// Training backward, from x and the saved statistics (z recomputed, not saved):
//   g = dy act'(z)       relu'(z) = [z > 0],  silu'(z) = s(z) (1 + z (1 - s(z))),  identity' = 1
//   xhat = (x - mean) invstd
//   dbias_c = sum g      dweight_c = sum g xhat
//   dx = weight_c invstd_c (g - dbias_c / M - xhat dweight_c / M)
// Evaluation backward (frozen statistics: running_mean / running_var are constants, as in
// PyTorch's BatchNorm2d in eval mode), with invstd_c = 1 / sqrt(running_var_c + eps):
//   dbias_c = sum g      dweight_c = sum g (x - running_mean_c) invstd_c      dx = g weight_c invstd_c
// Mixed precision: x may be bf16; y then is bf16, the f32 value above rounded once (on the CPU
// exactly to_bf16(op(to_f32(x)))). Statistics, parameters, dy and the gradients are f32
// whatever the dtype of x.
//
// Memory traffic, in passes over the N*C*H*W values (each read or write of a full tensor is
// one), against a batch norm followed by a separate activation op:
//                       batch norm, then the activation op            one op
//   training forward    BN: x, x, write z; act: z, write y     = 5   x, x, write y      = 3
//     from given stats  (statistics from the conv's epilogue)          x, write y         = 2
//   training backward   act: z, dy, write g; BN: g, x, g, x,         dy, x, dy, x,
//                       write dx                               = 8   write dx           = 5
//   eval forward        BN: x, write z; act: z, write y        = 4   x, write y         = 2
//   eval backward       act: z, dy, write g; BN: g, x, write dx= 6   dy, x, write dx    = 3
//   kept between forward and backward: x and z                        x only
// (GPU: z and g are recomputed in each pass. CPU: g of one channel is kept in a per-thread
// buffer between its two backward passes, so the second reads x and that buffer: 4 passes.)
// With identity the one-op column is the plain batch norm's traffic. Per-kernel byte counts:
// kernels/cuda/batch_norm.cu; measured on the CPU, expected on a GPU: docs/models.md.
//
// Implementations: cpu:: (kernels/cpu/batch_norm.cpp) is the reference, float and double;
// cuda:: (kernels/cuda/batch_norm.cu). The activation is a compile-time constant inside both,
// so every loop is branch-free.
// Error messages name the op as batch_norm2d_<op> with identity and as
// batch_norm_act_<op>(relu|silu) with an activation ("batch_norm2d_train: ...",
// "batch_norm_act_eval(silu): ..."), the names the two forms had when they were separate ops.
#pragma once

#include <cstdint>
#include <optional>

#include "kernels/activation.h"
#include "kernels/lane_sums.h"
#include "tensor/host_device.h"
#include "tensor/tensor.h"

namespace cxr {

enum class BnActivation { Identity, ReLU, SiLU };
const char* bn_activation_name(BnActivation a);  // "identity", "relu", "silu"
// The fused form of an activation after a batch norm: ReLU and SiLU; nullopt for the others
// (sigmoid, GELU), which stay separate ops.
std::optional<BnActivation> fusable_activation(Activation a);
// The other way: ReLU or SiLU as the activation op's Activation (act not Identity).
Activation activation_of(BnActivation act);

struct BatchNormOutput {
  Tensor y;             // (N, C, H, W), x's dtype
  Tensor saved_mean;    // (C)
  Tensor saved_invstd;  // (C)
};
struct BatchNormGrads {
  Tensor dx;       // (N, C, H, W) f32
  Tensor dweight;  // (C)
  Tensor dbias;    // (C)
};

// A batch norm's arguments as one value, for ops that run it after something else
// (kernels/conv2d_bn.h): its parameters and buffers (C) f32, the fused activation, and whether
// it is training. running_mean / running_var are updated in place (the handles share the
// module's storage); both undefined: no update.
struct BatchNormArgs {
  Tensor weight, bias, running_mean, running_var;
  BnActivation act = BnActivation::Identity;
  float momentum = 0.1f, eps = 1e-5f;
  bool training = true;
};

// x: (N, C, H, W) contiguous, f32 or bf16; weight, bias and every statistic: (C) f32.
// running_mean / running_var: (C), updated in place; pass undefined tensors (both) to skip the
// update (track_running_stats=False). Returns y and the saved statistics.
BatchNormOutput batch_norm2d_train(BnActivation act, const Tensor& x, const Tensor& weight, const Tensor& bias,
                                   Tensor& running_mean, Tensor& running_var, float momentum = 0.1f,
                                   float eps = 1e-5f);
// The training forward with the batch statistics given: mean, var (C) f32, the batch mean and
// the biased batch variance of x per channel. Everything else (outputs, running-statistic
// update, saved statistics for batch_norm2d_backward) as batch_norm2d_train.
BatchNormOutput batch_norm2d_train_from_stats(BnActivation act, const Tensor& x, const Tensor& mean,
                                              const Tensor& var, const Tensor& weight, const Tensor& bias,
                                              Tensor& running_mean, Tensor& running_var, float momentum = 0.1f,
                                              float eps = 1e-5f);
Tensor batch_norm2d_eval(BnActivation act, const Tensor& x, const Tensor& weight, const Tensor& bias,
                         const Tensor& running_mean, const Tensor& running_var, float eps = 1e-5f);
// Backward of the training forward: the same x, weight and bias as that forward (bias: z is
// recomputed), its saved statistics, and dy = dL/dy (f32). dx, dweight, dbias f32.
BatchNormGrads batch_norm2d_backward(BnActivation act, const Tensor& dy, const Tensor& x, const Tensor& weight,
                                     const Tensor& bias, const Tensor& saved_mean, const Tensor& saved_invstd);
// Backward of the evaluation forward (frozen statistics), with that forward's arguments.
BatchNormGrads batch_norm2d_eval_backward(BnActivation act, const Tensor& dy, const Tensor& x, const Tensor& weight,
                                          const Tensor& bias, const Tensor& running_mean, const Tensor& running_var,
                                          float eps = 1e-5f);

// z = (x - saved_mean_c) saved_invstd_c weight_c + bias_c: a training forward's batch-norm output
// before its activation, recomputed from that forward's saved statistics (the fused activation's
// backward on the library path, kernels/library.h, which needs dy act'(z) before cuDNN's batch-norm
// backward). x f32 (N, C, H, W); z f32. The same affine form as the fused backward's recomputation.
Tensor batch_norm2d_recompute(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& saved_mean,
                              const Tensor& saved_invstd);

// The scalar math, shared by the CPU loops and the CUDA kernels; the activation is a
// compile-time constant. The values are those of kernels/activation.h.
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

// Raw entry points: x is N groups of C channels of HW values. running_mean / running_var may
// be null (no update).
// CPU: one type T for everything (float, or double for the test references); a bf16 x is
// widened to f32 before these are called and y rounded after them (kernels/batch_norm.cpp).
namespace cpu {
// Evaluation's batch norm as a convolution's epilogue (kernels/conv2d_bn.h): per channel c the
// frozen statistics, applied to one (image, channel) plane of h in place,
//   h[i] = act((h[i] - mean_c) invstd_c weight_c + bias_c),
// with exactly the arithmetic of batch_norm2d_forward_eval (the same bits). After the batch norm
// is folded into the convolution's weights (kernels/fold_batch_norm.h) only the activation is
// left: activation_only(act), h[i] = act(h[i]) (no pointers; act not Identity, which needs no
// epilogue at all).
struct BnEvalChannels {
  const float *mean = nullptr, *invstd = nullptr, *weight = nullptr, *bias = nullptr;
  BnActivation act = BnActivation::Identity;
  static BnEvalChannels activation_only(BnActivation a) { return {nullptr, nullptr, nullptr, nullptr, a}; }
};
void batch_norm2d_eval_plane(const BnEvalChannels& bn, std::int64_t c, float* h, std::int64_t HW);
// g[j] = dy[j] act'(z[j]), z[j] = (x[j] - mean) invstd weight + bias, for len values of one
// channel: the backward's g, by the one code path (vectorised SiLU included) that every CPU
// batch-norm backward uses, so that their sums agree bit for bit (kernels/batch_norm_sync.h).
// The chunk the evaluation and sync backward loops take it in (a stack buffer of g); the
// training backward takes a whole plane at a time.
constexpr std::int64_t kBnGradChunk = 256;  // a multiple of 4: see LaneSums
template <typename T>
void batch_norm2d_act_grad(BnActivation act, const T* x, const T* dy, T mean, T invstd, T weight, T bias, T* g,
                           std::int64_t len);
// The CPU batch norms' per-channel sums (statistics, sum g and sum g xhat) are LaneSums
// (kernels/lane_sums.h) over the channel's planes, image after image.
// sum_g += g[i], sum_gxhat += g[i] (x[i] - mean) invstd over a span of len values, in one pass
// (the additions of LaneSums::add, both sums at once).
template <typename T>
inline void add_grad_sums(const T* g, const T* x, double mean, double invstd, std::int64_t len, LaneSums& sum_g,
                          LaneSums& sum_gxhat) {
  const auto add = [&](int l, std::int64_t i) {
    sum_g.lane[l] += g[i];
    sum_gxhat.lane[l] += g[i] * (x[i] - mean) * invstd;
  };
  std::int64_t i = 0;
  for (; i + 4 <= len; i += 4)
    for (int l = 0; l < 4; ++l) add(l, i + l);
  for (; i < len; ++i) add(static_cast<int>(i % 4), i);
}
// invstd_c = 1 / sqrt(running_var_c + eps), in T, as the evaluation forward computes it.
template <typename T>
void batch_norm2d_eval_invstd(const T* running_var, T eps, T* invstd, std::int64_t C);
template <typename T>
void batch_norm2d_recompute(const T* x, const T* weight, const T* bias, const T* saved_mean, const T* saved_invstd,
                            T* z, std::int64_t N, std::int64_t C, std::int64_t HW);
template <typename T>
void batch_norm2d_forward_train(BnActivation act, const T* x, const T* weight, const T* bias, T* y, T* saved_mean,
                                T* saved_invstd, T* running_mean, T* running_var, std::int64_t N, std::int64_t C,
                                std::int64_t HW, T momentum, T eps);
template <typename T>
void batch_norm2d_forward_train_from_stats(BnActivation act, const T* x, const T* mean, const T* var,
                                           const T* weight, const T* bias, T* y, T* saved_mean, T* saved_invstd,
                                           T* running_mean, T* running_var, std::int64_t N, std::int64_t C,
                                           std::int64_t HW, T momentum, T eps);
template <typename T>
void batch_norm2d_forward_eval(BnActivation act, const T* x, const T* weight, const T* bias, const T* running_mean,
                               const T* running_var, T* y, std::int64_t N, std::int64_t C, std::int64_t HW, T eps);
template <typename T>
void batch_norm2d_backward(BnActivation act, const T* dy, const T* x, const T* weight, const T* bias,
                           const T* saved_mean, const T* saved_invstd, T* dx, T* dweight, T* dbias, std::int64_t N,
                           std::int64_t C, std::int64_t HW);
template <typename T>
void batch_norm2d_eval_backward(BnActivation act, const T* dy, const T* x, const T* weight, const T* bias,
                                const T* running_mean, const T* running_var, T* dx, T* dweight, T* dbias,
                                std::int64_t N, std::int64_t C, std::int64_t HW, T eps);

// The statistics of the training forward, also the reference of a convolution's output
// statistics (kernels/conv2d_bn.h): the mean of channel c of x (N, C, HW) and the sum of
// squared deviations from it, two passes in double.
struct ChannelMoments {
  double mean, ss;
};
template <typename T>
ChannelMoments batch_norm2d_channel_moments(const T* x, std::int64_t N, std::int64_t C, std::int64_t HW,
                                            std::int64_t c);
// mean, var (C) of x (N, C, HW) per channel from those moments (var biased, as batch norm's).
template <typename T>
void channel_mean_var(const T* x, T* mean, T* var, std::int64_t N, std::int64_t C, std::int64_t HW);
}  // namespace cpu

// T, the element type of x and y: float (f32) or std::uint16_t (bf16 bits); instantiated for
// both. Everything else is f32 (dy and dx too). All launch on the compute stream.
namespace cuda {
void batch_norm2d_recompute(const float* x, const float* weight, const float* bias, const float* saved_mean,
                            const float* saved_invstd, float* z, std::int64_t N, std::int64_t C, std::int64_t HW);
template <typename T>
void batch_norm2d_forward_train(BnActivation act, const T* x, const float* weight, const float* bias, T* y,
                                float* saved_mean, float* saved_invstd, float* running_mean, float* running_var,
                                std::int64_t N, std::int64_t C, std::int64_t HW, float momentum, float eps);
template <typename T>
void batch_norm2d_forward_train_from_stats(BnActivation act, const T* x, const float* mean, const float* var,
                                           const float* weight, const float* bias, T* y, float* saved_mean,
                                           float* saved_invstd, float* running_mean, float* running_var,
                                           std::int64_t N, std::int64_t C, std::int64_t HW, float momentum,
                                           float eps);
template <typename T>
void batch_norm2d_forward_eval(BnActivation act, const T* x, const float* weight, const float* bias,
                               const float* running_mean, const float* running_var, T* y, std::int64_t N,
                               std::int64_t C, std::int64_t HW, float eps);
template <typename T>
void batch_norm2d_backward(BnActivation act, const float* dy, const T* x, const float* weight, const float* bias,
                           const float* saved_mean, const float* saved_invstd, float* dx, float* dweight,
                           float* dbias, std::int64_t N, std::int64_t C, std::int64_t HW);
template <typename T>
void batch_norm2d_eval_backward(BnActivation act, const float* dy, const T* x, const float* weight, const float* bias,
                                const float* running_mean, const float* running_var, float* dx, float* dweight,
                                float* dbias, std::int64_t N, std::int64_t C, std::int64_t HW, float eps);
}  // namespace cuda

}  // namespace cxr
