// The library fast path (train_cxr --kernels library; kernels/execution.h KernelChoice): on a
// CUDA device, the ops whose hand-written kernels have a vendor-library twin run on the library
// instead, as PyTorch runs them:
//
//   convolutions   cuDNN: forward, backward-data, backward-weight (groups and depthwise too).
//                  The algorithm is found once per (shape, operand type, math mode, direction)
//                  by timing every deterministic algorithm (cudnnFind*AlgorithmEx, what
//                  torch.backends.cudnn.benchmark does) and cached; its workspace comes from the
//                  caching allocator. The layout, NCHW or NHWC, is chosen the same way: the NHWC
//                  candidate is timed with its two transposes (cudnnTransformTensor) included.
//   batch norm     cuDNN (f32 activations): training forward (batch statistics, running-statistic
//                  update with the unbiased variance, saved mean and inverse std), evaluation
//                  forward, backward. A fused ReLU / SiLU after it runs as the hand-written
//                  activation op; its backward recomputes z from the saved statistics
//                  (batch_norm2d_recompute) to form dy act'(z) for cuDNN's backward. bf16
//                  activations stay on the hand-written kernels: cuDNN's batch norm wants x, dy and
//                  dx in one type, and mixed precision here keeps dy in f32.
//   linear layers  cuBLASLt: y = x W^T + b with the bias in the GEMM's epilogue; backward
//                  dx = dy W and dW = dy^T x (db by the hand-written channel sum).
// Precision, as --tf32 and --precision bf16 define it (kernels/execution.h):
//   fp32           cuDNN CUDNN_FMA_MATH, cuBLASLt CUBLAS_COMPUTE_32F: no tensor-core rounding.
//   fp32 + TF32    CUDNN_TENSOR_OP_MATH on f32 data, CUBLAS_COMPUTE_32F_FAST_TF32.
//   bf16           bf16 operands with f32 accumulation (CUDNN_TENSOR_OP_MATH, CUBLAS_COMPUTE_32F).
//                  cuDNN's bf16 convolutions have one type for x, w and y, so their gradients dx
//                  and dw are written in bf16 and widened to f32 here: one more rounding than the
//                  hand-written kernels (which write f32 gradients), as under torch.autocast.
//                  cuBLASLt writes f32 outputs and gradients from bf16 operands directly.
// Reproducibility: only deterministic algorithms are chosen, so a run is bit-identical to a rerun
// that picks the same algorithms; the timing search may pick others on another GPU or driver.
//
// Where it is built: the real-GPU library (libcxr_cuda) with cuDNN's and cuBLASLt's headers.
// The libraries themselves are loaded at the first use (dlopen), so train_cxr starts, and runs
// --kernels cxr, on machines without them. On the CPU, the emulated device, a build without the
// headers, or with a missing or too old library, require() and every entry point throw a
// cxr::Error that names the reason (and the version found and needed).
#pragma once

#include <string>

#include "kernels/conv2d.h"
#include "kernels/execution.h"
#include "tensor/tensor.h"

namespace cxr::library {

// The oldest cuDNN the library path accepts (its version number, major*10000 + minor*100 +
// patch: 9.0.0): the v9 API it is written against.
inline constexpr int kMinCudnnVersion = 90000;

// Throws a cxr::Error naming why --kernels library cannot run on `device` in this process: the
// CPU, the emulated device, no cuDNN / cuBLASLt in this build, or a library missing or too old at
// run time. Returns a one-line description of the libraries found ("cuDNN 9.19.0, cuBLASLt 13.0.2").
std::string require(Device device);

// Whether the op on `t` goes to the library: --kernels library and t on a CUDA device.
inline bool wanted(const Tensor& t) { return t.is_cuda() && kernel_choice() == KernelChoice::Library; }

// Convolutions (shapes checked by the caller, kernels/conv2d.cpp). x, w (dy) f32 or both bf16;
// y, dx, dw preallocated, contiguous: y F32 or BF16 (bf16 operands only), dx and dw F32.
void conv2d_forward(const Conv2dDims& d, const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y);
void conv2d_backward_data(const Conv2dDims& d, const Tensor& dy, const Tensor& w, Tensor& dx);
void conv2d_backward_weight(const Conv2dDims& d, const Tensor& dy, const Tensor& x, Tensor& dw);

// Batch norm without activation on f32 x (N, C, H, W); the arguments as kernels/batch_norm.h
// (running_mean / running_var may be undefined: no update). Outputs preallocated.
void batch_norm2d_forward_train(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& y,
                                Tensor& saved_mean, Tensor& saved_invstd, Tensor& running_mean, Tensor& running_var,
                                float momentum, float eps);
void batch_norm2d_forward_eval(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                               const Tensor& running_var, Tensor& y, float eps);
// Backward from the saved statistics (cuDNN then ignores its epsilon argument).
void batch_norm2d_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& saved_mean,
                           const Tensor& saved_invstd, Tensor& dx, Tensor& dweight, Tensor& dbias);

// Linear layers: x (N, in), w (out, in), both f32 or both bf16, contiguous; b (out) f32 or
// undefined; y (N, out), dx, dw F32, preallocated.
void linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y);
void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor& dx, Tensor& dw);

}  // namespace cxr::library
