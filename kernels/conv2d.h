// 2-D convolution (cross-correlation, as in PyTorch), with groups, stride, padding, dilation.
//
//   x: (N, C, H, W)   w: (K, C/G, R, S)   b: (K) optional   y: (N, K, P, Q)
//   P = (H + 2 ph - dh (R - 1) - 1) / sh + 1,   Q likewise with (W, pw, dw, S, sw)
//   group of output channel k: g = k / (K/G); its input channels are g C/G .. (g+1) C/G - 1
//
//   y[n,k,p,q] = b[k] + sum_{c<C/G, r<R, s<S} x[n, g C/G + c, p sh - ph + r dh, q sw - pw + s dw] w[k,c,r,s]
//   (x outside the image is 0)
//   dx[n, g C/G + c, h, v] = sum_{k in g, r, s: h = p sh - ph + r dh, v = q sw - pw + s dw} dy[n,k,p,q] w[k,c,r,s]
//   dw[k,c,r,s] = sum_{n,p,q} dy[n,k,p,q] x[n, g C/G + c, p sh - ph + r dh, q sw - pw + s dw]
//   db[k]       = sum_{n,p,q} dy[n,k,p,q]
// FLOPs: 2 N K P Q (C/G) R S for each of forward, backward-data and backward-weight.
//
// Implementations:
//   cpu::conv2d_*_reference<T>  the loops above, float and double (tests, finite differences)
//   cpu::conv2d_*               fast f32 path (kernels/cpu/conv2d.cpp): im2col + blocked GEMM,
//                               1x1 without im2col, depthwise direct loops, OpenMP
//   cuda::conv2d_*              implicit GEMM on the tiled SGEMM core, 1x1 via batched SGEMM,
//                               dedicated depthwise kernels (kernels/cuda/conv2d*.cu)
//   cuda::conv2d_*_bf16         bf16 operands: implicit GEMM on the BF16 tensor cores; depthwise
//                               the direct kernels reading bf16
//
// bf16 operands (mixed precision, kernels/execution.h): the Tensor-level functions also take
// x and w (dy and w, dy and x) both bf16: the same sums over the bf16 values, accumulated in
// f32. Gradients are f32. The forward's y is f32, or bf16 when asked (y_dtype; what mixed
// precision keeps between layers, as cuDNN's bf16 convolutions write it): the f32 result
// rounded once. The CPU widens the operands to f32 (exact), runs the f32 path and rounds y;
// that is also the reference the bf16 kernels are tested against.
#pragma once

#include <cstdint>

#include "tensor/host_device.h"
#include "tensor/tensor.h"

namespace cxr {

struct Conv2dParams {
  int stride_h = 1, stride_w = 1;
  int pad_h = 0, pad_w = 0;
  int dilation_h = 1, dilation_w = 1;
  int groups = 1;
};

// Every size of one convolution, as the kernels see it.
struct Conv2dDims {
  int N = 0, C = 0, H = 0, W = 0;  // input
  int K = 0, R = 0, S = 0;         // filters (K, C/G, R, S)
  int P = 0, Q = 0;                // output spatial size
  int sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, G = 1;
  CXR_HD int Cg() const { return C / G; }
  CXR_HD int Kg() const { return K / G; }
  // groups == C == K: one filter per channel.
  CXR_HD bool depthwise() const { return G > 1 && G == C && G == K; }
  // 1x1, stride 1, no padding: y_n = W x_n, a plain GEMM per image.
  CXR_HD bool pointwise() const { return R == 1 && S == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0; }
  double flops() const { return 2.0 * N * K * P * Q * (C / G) * R * S; }
};

// Per-tile statistics of the forward's output, for a batch norm after it (kernels/conv2d_bn.h
// combines them into its mean and variance): tile t is columns t kConv2dStatsTile ..
// (t + 1) kConv2dStatsTile - 1 of the flat (n, p, q) output index (the implicit GEMM's block
// tile); partial (tiles, K, 2) holds, per channel, the mean and the sum of squared deviations
// from it (M2) of the tile's values of y as stored.
constexpr int kConv2dStatsTile = 64;
inline std::int64_t conv2d_stats_tiles(const Conv2dDims& d) {
  return (static_cast<std::int64_t>(d.N) * d.P * d.Q + kConv2dStatsTile - 1) / kConv2dStatsTile;
}

// Validates the shapes (x: (N,C,H,W), w: (K, C/groups, R, S)) and parameters; throws a
// cxr::Error naming what does not fit. Returns (N, K, P, Q).
Shape conv2d_output_shape(const Shape& x, const Shape& w, const Conv2dParams& p);
Conv2dDims conv2d_dims(const Shape& x, const Shape& w, const Conv2dParams& p);

// bias may be undefined (no bias); it is f32 also when x and w are bf16. y_dtype: F32, or BF16
// (bf16 operands only).
Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p,
                      DType y_dtype = DType::F32);
// conv2d_forward that, when want_stats and x is on a CUDA device, also writes the per-tile
// batch-norm statistics of y (below): tile_stats = (tiles, K, 2) (undefined otherwise). For
// kernels/conv2d_bn.cpp, which combines them; use conv2d_forward_bn_stats there.
Tensor conv2d_forward_tile_stats(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p,
                                 Tensor& tile_stats, bool want_stats, DType y_dtype = DType::F32);
Tensor conv2d_backward_data(const Tensor& dy, const Tensor& w, const Shape& x_shape, const Conv2dParams& p);
Tensor conv2d_backward_weight(const Tensor& dy, const Tensor& x, const Shape& w_shape, const Conv2dParams& p);
Tensor conv2d_backward_bias(const Tensor& dy);  // (N, K, P, Q) -> (K)

struct Conv2dGrads {
  Tensor dx, dw, db;  // db undefined unless asked for
};
Conv2dGrads conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Conv2dParams& p,
                            bool with_bias);

namespace cpu {
struct BnEvalChannels;  // kernels/batch_norm.h
}  // namespace cpu

namespace cpu {

template <typename T>
void conv2d_forward_reference(const Conv2dDims& d, const T* x, const T* w, const T* b, T* y);  // b may be null
template <typename T>
void conv2d_backward_data_reference(const Conv2dDims& d, const T* dy, const T* w, T* dx);
template <typename T>
void conv2d_backward_weight_reference(const Conv2dDims& d, const T* dy, const T* x, T* dw);
template <typename T>
void conv2d_backward_bias_reference(const Conv2dDims& d, const T* dy, T* db);

// bn: null, or evaluation's batch norm applied to each (image, channel) plane of y as soon as
// the convolution has written it (the plane still in cache; kernels/conv2d_bn.h): y then holds
// act(batch_norm(conv)), the same bits as the two ops one after the other.
void conv2d_forward(const Conv2dDims& d, const float* x, const float* w, const float* b, float* y,
                    const BnEvalChannels* bn = nullptr);
void conv2d_backward_data(const Conv2dDims& d, const float* dy, const float* w, float* dx);
void conv2d_backward_weight(const Conv2dDims& d, const float* dy, const float* x, float* dw);
void conv2d_backward_bias(const Conv2dDims& d, const float* dy, float* db);

}  // namespace cpu

namespace cuda {

// stats: null, or (tiles, K, 2) per-tile statistics of y (tiles = conv2d_stats_tiles(d)),
// written in the forward's epilogue where its kernel has one (conv2d_forward_stats_in_epilogue),
// otherwise by a separate pass over y (depthwise) or by taking the implicit GEMM instead of the
// batched SGEMM (fp32 1x1 stride-1 convolutions).
void conv2d_forward(const Conv2dDims& d, const float* x, const float* w, const float* b, float* y,
                    float* stats = nullptr);
void conv2d_backward_data(const Conv2dDims& d, const float* dy, const float* w, float* dx);
void conv2d_backward_weight(const Conv2dDims& d, const float* dy, const float* x, float* dw);
void conv2d_backward_bias(const Conv2dDims& d, const float* dy, float* db);

// Whether the kernel that the plain forward (no statistics asked for) runs for d, with f32 or
// bf16 operands, writes the per-tile statistics in its epilogue, so that asking for them costs
// no pass and no change of kernel: every implicit-GEMM forward (FMA, TF32, BF16); not the
// depthwise kernels, nor the batched SGEMM of fp32 / TF32 1x1 stride-1 ungrouped convolutions
// (bf16 ones take the implicit GEMM anyway). Decided by the forward's own dispatch
// (kernels/cuda/conv2d.cu).
bool conv2d_forward_stats_in_epilogue(const Conv2dDims& d, bool bf16);

// bf16 operands (bits, tensor/bf16.h), f32 gradients, y f32 or bf16; depthwise ones go
// to the depthwise kernels below.
void conv2d_forward_bf16(const Conv2dDims& d, const std::uint16_t* x, const std::uint16_t* w, const float* b,
                         float* y, float* stats = nullptr);
void conv2d_forward_bf16(const Conv2dDims& d, const std::uint16_t* x, const std::uint16_t* w, const float* b,
                         std::uint16_t* y, float* stats = nullptr);
void conv2d_backward_data_bf16(const Conv2dDims& d, const std::uint16_t* dy, const std::uint16_t* w, float* dx);
void conv2d_backward_weight_bf16(const Conv2dDims& d, const std::uint16_t* dy, const std::uint16_t* x, float* dw);

// Depthwise kernels (kernels/cuda/conv2d_depthwise.cu); the functions above call them
// when d.depthwise().
void conv2d_depthwise_forward(const Conv2dDims& d, const float* x, const float* w, const float* b, float* y);
void conv2d_depthwise_backward_data(const Conv2dDims& d, const float* dy, const float* w, float* dx);
void conv2d_depthwise_backward_weight(const Conv2dDims& d, const float* dy, const float* x, float* dw);
void conv2d_depthwise_forward_bf16(const Conv2dDims& d, const std::uint16_t* x, const std::uint16_t* w,
                                   const float* b, float* y);
void conv2d_depthwise_forward_bf16(const Conv2dDims& d, const std::uint16_t* x, const std::uint16_t* w, const float* b,
                                   std::uint16_t* y);
void conv2d_depthwise_backward_data_bf16(const Conv2dDims& d, const std::uint16_t* dy, const std::uint16_t* w,
                                         float* dx);
void conv2d_depthwise_backward_weight_bf16(const Conv2dDims& d, const std::uint16_t* dy, const std::uint16_t* x,
                                           float* dw);

}  // namespace cuda

}  // namespace cxr
