// f32 <-> bf16 on CUDA (math in kernels/cast.h and tensor/bf16.h): one element per
// thread, grid-stride. Memory bound: 6 bytes per element, floor 6n / bandwidth (H100 SXM,
// 3.35 TB/s: a 64x256x56x56 activation, 51M elements, ~92 us).
#include <algorithm>

#include "kernels/cast.h"
#include "kernels/common/cuda.cuh"
#include "tensor/bf16.h"

namespace cxr::cuda {
namespace {

constexpr unsigned kThreads = 256;

__global__ void f32_to_bf16_kernel(const float* __restrict__ x, std::uint16_t* __restrict__ y, std::int64_t n) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    y[i] = cxr::f32_to_bf16(x[i]);
}

__global__ void bf16_to_f32_kernel(const std::uint16_t* __restrict__ x, float* __restrict__ y, std::int64_t n) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    y[i] = cxr::bf16_to_f32(x[i]);
}

unsigned grid_for(std::int64_t n) { return std::min(blocks_for(n, kThreads), 65535u * 8u); }

}  // namespace

void f32_to_bf16(const float* x, std::uint16_t* y, std::int64_t n) {
  if (n > 0) launch_kernel(f32_to_bf16_kernel, grid_for(n), kThreads, 0, x, y, n);
}

void bf16_to_f32(const std::uint16_t* x, float* y, std::int64_t n) {
  if (n > 0) launch_kernel(bf16_to_f32_kernel, grid_for(n), kThreads, 0, x, y, n);
}

}  // namespace cxr::cuda
