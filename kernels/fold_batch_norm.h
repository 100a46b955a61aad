// Folding an evaluation batch norm into the convolution before it, as inference engines do
// (ONNX Runtime, oneDNN, TensorRT; torch.nn.utils.fusion.fuse_conv_bn_eval in PyTorch).
//
// In evaluation the batch norm is an affine map per output channel k with frozen statistics:
//   y[k] = (h[k] - mean_k) s_k + beta_k,   s_k = gamma_k / sqrt(var_k + eps),
//   h[k] = sum_{c, r, s} w[k, c, r, s] x[c, ...] + b_k          (b_k = 0 without a conv bias)
// so it is the convolution with
//   w'[k, c, r, s] = w[k, c, r, s] s_k,    b'_k = beta_k + (b_k - mean_k) s_k,
// and y = act(conv(x, w', b')): no normalisation left for the epilogue, only the activation
// (none at all for ResNet's bn2 / bn3 and downsample, EfficientNet's projections).
// s_k and b'_k are computed in double and rounded once; y then differs from the batch norm
// applied to h (as trained, and as PyTorch's eval computes it) by float rounding only: the
// product's sums are scaled before they are added instead of after.
//
// Shapes: w (K, per_channel = C/G R S) row-major, conv_bias, gamma, beta, mean, var (K);
// w_out (K, per_channel), b_out (K). Traffic: one read of w and one write of w', once per
// weight tensor inside a FrozenWeightsScope (kernels/conv2d_bn.cpp keeps the folded copy).
// CPU only: evaluation on a CUDA device runs the batch norm after the convolution.
#pragma once

#include <cstdint>

namespace cxr::cpu {

// conv_bias may be null (no bias).
void fold_batch_norm(const float* w, const float* conv_bias, const float* gamma, const float* beta,
                     const float* mean, const float* var, float eps, std::int64_t K, std::int64_t per_channel,
                     float* w_out, float* b_out);

}  // namespace cxr::cpu
