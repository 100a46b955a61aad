// linear on CUDA (math in kernels/linear.h).
//   forward:  y = x w^T + b     tiled SGEMM (trans B), bias fused as a per-column epilogue
//   backward: dx = dy w         tiled SGEMM
//             dw = dy^T x       tiled SGEMM (trans A)
//             db = column sums of dy: linear_bias_grad_kernel, one thread per output feature
//             looping over the N rows (neighbouring threads read neighbouring columns: coalesced;
//             N is the batch, small, so one pass suffices)
// bf16 operands (mixed precision): the same three products on gemm_bf16 (BF16 tensor cores,
// f32 results); db from the widened dy.
// FLOPs 2 N in out per GEMM; the heads of the models (N = batch, in = 2048 or 1280, out = 14)
// are tiny next to the convolutions.
#include "kernels/gemm.h"
#include "kernels/linear.h"
#include "kernels/common/cuda.cuh"

namespace cxr::cuda {
namespace {

constexpr unsigned kThreads = 256;

__global__ void linear_bias_grad_kernel(const float* __restrict__ dy, float* __restrict__ db, std::int64_t N,
                                        std::int64_t out) {
  const std::int64_t o = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (o >= out) return;
  float sum = 0.f;
  for (std::int64_t n = 0; n < N; ++n) sum += dy[n * out + o];
  db[o] = sum;
}

}  // namespace

void linear_forward(std::int64_t N, std::int64_t in, std::int64_t out, const float* x, const float* w, const float* b,
                    float* y) {
  sgemm(false, true, N, out, in, 1.f, x, in, w, in, 0.f, y, out, GemmBias{nullptr, b});
}

void linear_backward(std::int64_t N, std::int64_t in, std::int64_t out, const float* x, const float* w,
                     const float* dy, float* dx, float* dw, float* db) {
  sgemm(false, false, N, in, out, 1.f, dy, out, w, in, 0.f, dx, in);
  sgemm(true, false, out, in, N, 1.f, dy, out, x, in, 0.f, dw, in);
  if (db) launch_kernel(linear_bias_grad_kernel, blocks_for(out, kThreads), dim3(kThreads), 0, dy, db, N, out);
}

void linear_forward_bf16(std::int64_t N, std::int64_t in, std::int64_t out, const std::uint16_t* x,
                         const std::uint16_t* w, const float* b, float* y) {
  gemm_bf16(false, true, N, out, in, x, in, w, in, y, out, GemmBias{nullptr, b});
}

void linear_backward_bf16(std::int64_t N, std::int64_t in, std::int64_t out, const std::uint16_t* x,
                          const std::uint16_t* w, const std::uint16_t* dy, const float* dy_f32, float* dx, float* dw,
                          float* db) {
  gemm_bf16(false, false, N, in, out, dy, out, w, in, dx, in);
  gemm_bf16(true, false, out, in, N, dy, out, x, in, dw, in);
  if (db) launch_kernel(linear_bias_grad_kernel, blocks_for(out, kThreads), dim3(kThreads), 0, dy_f32, db, N, out);
}

}  // namespace cxr::cuda
