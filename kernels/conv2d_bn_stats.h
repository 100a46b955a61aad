// Convolution forward that also produces the batch-norm statistics of its output ("conv +
// genStats", as in NVIDIA's ResNet-50 training): for a Conv2d followed by a BatchNorm2d in
// training, the batch norm then needs no statistics pass over the convolution's output
// (kernels/batch_norm.h, batch_norm2d_train_from_stats).
//
//   x: (N, C, H, W), w: (K, C/G, R, S), bias (K) optional: y = conv2d(x, w, bias) exactly as
//   conv2d_forward (kernels/conv2d.h) computes it, and per output channel k over the
//   M = N P Q values y[:, k, :, :]:
//     mean_k = (1/M) sum y          var_k = (1/M) sum (y - mean_k)^2      (biased, as BN's)
// CUDA: the implicit-GEMM forward block that owns the output tile (64 channels x 64 columns of
//   the flat (n, p, q) index) re-reads the tile it has just written and stores, per channel,
//   the tile's (mean, M2) to partial (T, K, 2), T = ceil(M / 64) column tiles (two passes over
//   the tile's 64 values: no sum / sum-of-squares cancellation; kernels/cuda/conv2d_bn_stats.cuh).
//   A second kernel (one block per channel) merges the T partials of a channel with Chan's
//   formula, in a fixed order: mean_k, var_k = M2 / M. No atomics: bit-reproducible run to run.
//   Which convolutions fuse it: every implicit-GEMM forward (FMA, TF32, BF16); 1x1 stride-1
//   ones (otherwise the batched SGEMM) take the implicit GEMM when statistics are asked for
//   (layers/conv_norm_activation.h's conv_bn_forward asks only under bf16 autocast, where they
//   take it anyway, until a GPU benchmark weighs the gathers against the saved pass);
//   depthwise ones run their kernel and then a separate statistics pass over y (no saving;
//   conv_bn_forward leaves them to batch norm's own pass).
// CPU: the convolution, then the per-channel double sums of batch norm's statistics (the
//   reference; no fusion).
//
// Memory traffic, in passes over y (N K P Q floats), for a convolution + BN training forward:
//                       unfused                                   with the statistics in the epilogue
//   conv forward        write y                        1          write y (+ the tile re-read, from L2)  1
//   BN statistics       read y                         1          read/write partial: 2 x 2/64 of y   ~0.06
//   BN apply            read y, write out              2          read y, write out                      2
//   total                                              4                                             ~3.06
// ResNet-50 at batch 32, bn1 (64 x 112 x 112, 25.7M values, 103 MB): ~97 MB less, ~29 us at
// 3.35 TB/s; layer1's 256 x 56 x 56 outputs likewise. Not measured on a GPU yet
// (bench_norm_pool: conv_bn_fwd/*). Costs: the tile re-read and two warp reductions per tile
// row (small beside the GEMM); for 1x1 convolutions the implicit GEMM's gathers instead of the
// batched SGEMM's float4 loads, which the benchmark weighs against the saved pass.
#pragma once

#include <cstdint>

#include "kernels/conv2d.h"
#include "tensor/tensor.h"

namespace cxr {

struct Conv2dBnStats {
  Tensor y;     // (N, K, P, Q), as conv2d_forward
  Tensor mean;  // (K) batch mean of y per channel
  Tensor var;   // (K) biased batch variance of y per channel
};

// The arguments as conv2d_forward's (x and w f32, or both bf16 under mixed precision; y f32, or
// bf16 with bf16 operands). The statistics are those of y as stored: of the rounded values
// when y is bf16, which is what a batch norm reading that y would compute.
Conv2dBnStats conv2d_forward_bn_stats(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p,
                                      DType y_dtype = DType::F32);

// Whether the statistics come out of the epilogue of the kernel that the plain forward would run
// anyway: not for depthwise convolutions (a separate pass over y) and not for fp32 / TF32 1x1
// stride-1 ungrouped ones (the plain forward's batched SGEMM, kernels/cuda/conv2d.cu, has no
// statistics step: asking for them moves the convolution to the implicit GEMM's gathers, which
// may cost more than the saved pass; bench_norm_pool conv_bn_fwd/*/r50_l1_conv3_1x1_* weighs
// it on a GPU). bf16: the operands are bf16 (autocast), whose 1x1 convolutions take the
// implicit GEMM anyway.
inline bool conv2d_bn_stats_in_epilogue(const Conv2dDims& d, bool bf16) {
  return !d.depthwise() && (bf16 || !(d.pointwise() && d.G == 1));
}

// Column tiles of the forward's output: ceil(N P Q / kConvBnStatsTile).
constexpr int kConvBnStatsTile = 64;
inline std::int64_t conv2d_bn_stats_tiles(const Conv2dDims& d) {
  return (static_cast<std::int64_t>(d.N) * d.P * d.Q + kConvBnStatsTile - 1) / kConvBnStatsTile;
}

namespace cpu {
// mean, var (C) of y (N, C, HW) per channel: double sums, two passes (batch norm's arithmetic).
template <typename T>
void channel_mean_var(const T* y, T* mean, T* var, std::int64_t N, std::int64_t C, std::int64_t HW);
}  // namespace cpu

namespace cuda {
// The per-tile statistics of y (N, K, P, Q) in a separate pass (convolutions without the fused
// epilogue): partial (tiles, K, 2) as the epilogue writes it.
void conv2d_tile_stats(const Conv2dDims& d, const float* y, float* partial);
void conv2d_tile_stats(const Conv2dDims& d, const std::uint16_t* y, float* partial);  // bf16 y
// partial (tiles, K, 2) of M = N P Q values per channel -> mean, var (K).
void conv2d_bn_stats_combine(const float* partial, std::int64_t tiles, std::int64_t K, std::int64_t M, float* mean,
                             float* var);
}  // namespace cuda

}  // namespace cxr
