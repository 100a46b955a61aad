// Layer normalisation over the last dimension (ConvNeXt applies it channels-last: x is
// (N, H, W, C) seen as M = N*H*W rows of C), with per-channel affine weight and bias.
//
//   mean_m = (1/C) sum_c x[m,c]        var_m = (1/C) sum_c (x[m,c] - mean_m)^2   (biased)
//   rstd_m = 1 / sqrt(var_m + eps)     xhat = (x - mean_m) rstd_m
//   y[m,c] = xhat[m,c] weight[c] + bias[c]
// Backward, with g = dy * weight:
//   dx[m,c]    = rstd_m (g[m,c] - mean_c(g[m,:]) - xhat[m,c] mean_c(g[m,:] xhat[m,:]))
//   dweight[c] = sum_m dy[m,c] xhat[m,c]          dbias[c] = sum_m dy[m,c]
// Mixed precision: x may be bf16; y is then bf16 (statistics and y in f32 or wider, y rounded
// once), mean and rstd stay f32, and so do weight, bias and every gradient (dy f32).
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace cxr {

struct LayerNormOutput {
  Tensor y;     // x's shape and dtype
  Tensor mean;  // (M) f32
  Tensor rstd;  // (M) f32
};
struct LayerNormGrads {
  Tensor dx, dweight, dbias;
};

// x: (..., C), f32 or bf16, contiguous; weight, bias: (C) f32. ConvNeXt uses eps = 1e-6.
LayerNormOutput layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps = 1e-6f);
// mean, rstd: the forward's saved statistics; x f32 or bf16, dy f32. Gradients f32.
LayerNormGrads layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& mean,
                                   const Tensor& rstd);

namespace cpu {
template <typename T>
void layer_norm_forward(const T* x, const T* weight, const T* bias, T* y, T* mean, T* rstd, std::int64_t M,
                        std::int64_t C, T eps);
template <typename T>
void layer_norm_backward(const T* dy, const T* x, const T* weight, const T* mean, const T* rstd, T* dx, T* dweight,
                         T* dbias, std::int64_t M, std::int64_t C);
}  // namespace cpu

namespace cuda {
// T, TX: float (f32) or std::uint16_t (bf16 bits).
template <typename T>
void layer_norm_forward(const T* x, const float* weight, const float* bias, T* y, float* mean, float* rstd,
                        std::int64_t M, std::int64_t C, float eps);
template <typename TX>
void layer_norm_backward(const float* dy, const TX* x, const float* weight, const float* mean, const float* rstd,
                         float* dx, float* dweight, float* dbias, std::int64_t M, std::int64_t C);
}  // namespace cuda

}  // namespace cxr
