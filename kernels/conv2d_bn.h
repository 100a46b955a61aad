// Convolution + batch norm (+ the activation fused into the batch norm): the op of a Conv2d
// followed by a BatchNorm2d, built on kernels/conv2d.h and kernels/batch_norm.h.
//
//   x: (N, C, H, W), w: (K, C/G, R, S), conv bias (K) optional
//   h = conv2d(x, w, conv bias)                       (N, K, P, Q), exactly conv2d_forward's
//   y = act(batch_norm(h))                            kernels/batch_norm.h, training or evaluation
// In training the batch norm needs the statistics of h, per output channel k over the
// M = N P Q values h[:, k, :, :]:
//   mean_k = (1/M) sum h          var_k = (1/M) sum (h - mean_k)^2      (biased, as BN's)
// conv2d_bn_forward decides where they come from:
//   - from the convolution's epilogue ("conv + genStats", as in NVIDIA's ResNet-50 training),
//     when h is on a CUDA device, the batch norm is training, the execution setting
//     fuse_conv_batch_norm_statistics is on (kernels/execution.h), and the kernel that the plain
//     forward runs has the statistics epilogue (cuda::conv2d_forward_stats_in_epilogue, decided
//     beside the dispatch in kernels/cuda/conv2d.cu: every implicit-GEMM forward, so not
//     depthwise convolutions and not fp32 / TF32 1x1 stride-1 ones, which run the batched SGEMM);
//     the batch norm then skips its statistics pass (batch_norm2d_train_from_stats);
//   - otherwise from the batch norm's own statistics pass (batch_norm2d_train), or none in
//     evaluation (batch_norm2d_eval).
// Either way the result is the same up to the order of the sums (float rounding).
// conv2d_forward_bn_stats is the first half on its own: h and its statistics.
// CUDA: the implicit-GEMM forward block that owns an output tile (64 channels x 64 columns of
//   the flat (n, p, q) index) re-reads the tile it has just written and stores, per channel,
//   the tile's (mean, M2) to partial (T, K, 2), T = ceil(M / 64) column tiles (two passes over
//   the tile's 64 values: no sum / sum-of-squares cancellation; kernels/cuda/conv2d_tile_stats.cuh).
//   conv2d_bn_combine_kernel (kernels/cuda/conv2d_bn.cu; one block per channel) merges the T
//   partials of a channel with Chan's formula, in a fixed order: mean_k, var_k = M2 / M. No
//   atomics: bit-reproducible run to run. conv2d_forward_bn_stats also takes convolutions
//   without the epilogue: 1x1 stride-1 ones then run the implicit GEMM instead of the batched
//   SGEMM, depthwise ones their kernel and then a separate statistics pass over h (no saving).
// CPU: the convolution, then the per-channel double sums of batch norm's statistics
//   (cpu::channel_mean_var, the reference; no fusion).
// Evaluation on the CPU when nobody needs h (want_h false: inference under a NoGradGuard):
//   - inside a FrozenWeightsScope (train_cxr eval and predict), with the execution setting
//     fold_batch_norm on (the default): the batch norm is folded into the weights,
//     w' = w gamma / sqrt(var + eps), b' = beta + (b - mean) gamma / sqrt(var + eps)
//     (kernels/fold_batch_norm.h), made once per scope and kept beside the packed weights. The
//     convolution adds b' where its GEMM stores each tile and applies only the activation after
//     (none for ResNet's bn2 / bn3 and downsample batch norms). y is within float rounding of
//     the two ops (the scale moves before the product's sums), not their bits;
//   - otherwise the batch norm (and its activation) runs as the convolution's epilogue, on each
//     (image, channel) plane of y right after the convolution wrote it (cpu::conv2d_forward's
//     bn argument), with the bits of the two ops one after the other.
//   Either way h is never a tensor of its own: one pass over the output (read h, write y) and
//   its allocation are saved. Measured against each other (bench_inference, CXR_INFER_FOLD_BN=0
//   against the default, 2 threads, 2026-12-07): within +-3 %, the epilogue's multiply-add on a
//   plane still in cache being cheap; docs/speed.md has the figures.
//
// Memory traffic, in passes over h (N K P Q floats), of a training forward:
//                       statistics by the batch norm          statistics in the epilogue
//   conv forward        write h                        1      write h (+ the tile re-read, from L2)  1
//   BN statistics       read h                         1      read/write partial: 2 x 2/64 of h   ~0.06
//   BN apply            read h, write y                2      read h, write y                        2
//   total                                              4                                         ~3.06
// ResNet-50 at batch 32, bn1 (64 x 112 x 112, 25.7M values, 103 MB): ~97 MB less, ~29 us at
// 3.35 TB/s; layer1's 256 x 56 x 56 outputs likewise. Not measured on a GPU yet
// (bench_norm_pool: conv_bn_fwd/*). Costs: the tile re-read and two warp reductions per tile
// row (small beside the GEMM); for 1x1 convolutions the implicit GEMM's gathers instead of the
// batched SGEMM's float4 loads, which the benchmark weighs against the saved pass (the reason
// fp32 1x1 convolutions are left out of the fused path until it is measured).
#pragma once

#include <cstdint>

#include "kernels/batch_norm.h"
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

struct Conv2dBnOutput {
  Tensor y;                         // (N, K, P, Q) act(batch_norm(h)), h's dtype
  Tensor h;                         // (N, K, P, Q) the convolution's output, the batch norm's x;
                                    // undefined where the evaluation epilogue made y directly
  Tensor saved_mean, saved_invstd;  // (K) for batch_norm2d_backward; undefined in evaluation
  bool stats_in_epilogue = false;   // whether the statistics came from the convolution's epilogue
};

// y = act(batch_norm(conv2d(x, w, conv_bias))): the convolution's arguments as conv2d_forward's
// (y_dtype: h's dtype), the batch norm's (BatchNormArgs, kernels/batch_norm.h) as
// batch_norm2d_train / batch_norm2d_eval's. Backward
// is the two ops' backwards: batch_norm2d_backward (or _eval_backward) from h and the saved
// statistics, then the convolution's. want_h: whether the caller keeps h for a backward; when
// not, an evaluation forward on the CPU (f32) runs the batch norm as the convolution's epilogue.
Conv2dBnOutput conv2d_bn_forward(const Tensor& x, const Tensor& w, const Tensor& conv_bias, const Conv2dParams& p,
                                 DType y_dtype, const BatchNormArgs& bn, bool want_h = true);

namespace cuda {
// partial (tiles, K, 2) of M = N P Q values per channel (the convolution's per-tile
// statistics, kernels/conv2d.h) -> mean, var (K).
void conv2d_bn_stats_combine(const float* partial, std::int64_t tiles, std::int64_t K, std::int64_t M, float* mean,
                             float* var);
}  // namespace cuda

}  // namespace cxr
