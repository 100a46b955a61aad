// Fully connected layer (torch.nn.Linear):
//
//   x: (N, in)   w: (out, in)   b: (out) optional   y: (N, out)
//   y  = x w^T + b            y[n,o] = b[o] + sum_i x[n,i] w[o,i]
//   dx = dy w                 (N, in)
//   dw = dy^T x               (out, in)
//   db = sum_n dy[n, :]       (out)
// FLOPs: 2 N in out for each of y, dx, dw. All three are GEMMs (kernels/gemm.h): the blocked
// sgemm on the CPU (sgemm_bias for y), the tiled SGEMM on CUDA (bias fused in both epilogues).
// Mixed precision: x, w (and dy) may all be bf16 (b and the results stay f32): on CUDA the
// products run on the BF16 tensor cores (cuda::gemm_bf16); on the CPU the operands are widened
// to f32 (exact) and multiplied there, which is the bf16 product with f32 accumulation.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace cxr {

// b may be undefined (no bias).
// (Named `linear`, not linear_forward: layers/linear.h declares a linear_forward of its own.)
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b);
struct LinearGrads {
  Tensor dx, dw, db;  // db undefined unless asked for
};
LinearGrads linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, bool with_bias);

namespace cpu {

template <typename T>
void linear_forward_reference(std::int64_t N, std::int64_t in, std::int64_t out, const T* x, const T* w, const T* b,
                              T* y);
template <typename T>
void linear_backward_reference(std::int64_t N, std::int64_t in, std::int64_t out, const T* x, const T* w,
                               const T* dy, T* dx, T* dw, T* db);  // db may be null

void linear_forward(std::int64_t N, std::int64_t in, std::int64_t out, const float* x, const float* w, const float* b,
                    float* y);
void linear_backward(std::int64_t N, std::int64_t in, std::int64_t out, const float* x, const float* w,
                     const float* dy, float* dx, float* dw, float* db);

}  // namespace cpu

namespace cuda {

void linear_forward(std::int64_t N, std::int64_t in, std::int64_t out, const float* x, const float* w, const float* b,
                    float* y);
void linear_backward(std::int64_t N, std::int64_t in, std::int64_t out, const float* x, const float* w,
                     const float* dy, float* dx, float* dw, float* db);

// bf16 operands (bits); dy_f32 (dy widened) feeds db, which may be null.
void linear_forward_bf16(std::int64_t N, std::int64_t in, std::int64_t out, const std::uint16_t* x,
                         const std::uint16_t* w, const float* b, float* y);
void linear_backward_bf16(std::int64_t N, std::int64_t in, std::int64_t out, const std::uint16_t* x,
                          const std::uint16_t* w, const std::uint16_t* dy, const float* dy_f32, float* dx, float* dw,
                          float* db);

}  // namespace cuda

}  // namespace cxr
