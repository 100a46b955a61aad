// Counting self-test kernels: small memory patterns whose sector and bank-wavefront counts are
// known by hand (tests/emu_counters/test_memory_counters.cpp asserts them exactly). Compiled
// only for the emulated device, instrumented like the project's kernels (cmake/cxr_emu_counters.cmake).
#include "tests/emu_counters/counting_kernels.h"

#include "kernels/common/cuda.cuh"

namespace cxr::emu_counters_test {

namespace {

using cxr::cuda::launch_kernel;

// n floats of device memory (256-byte aligned, as cudaMalloc guarantees), freed on scope exit.
struct device_floats {
  float* ptr = nullptr;
  explicit device_floats(std::size_t n) {
    CXR_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&ptr), n * sizeof(float)));
    CXR_CUDA_CHECK(cudaMemset(ptr, 0, n * sizeof(float)));
  }
  ~device_floats() { cudaFree(ptr); }
  device_floats(const device_floats&) = delete;
  device_floats& operator=(const device_floats&) = delete;
};

// Warp w reads x[32w*stride], x[(32w+1)*stride], ...: 128 bytes spread over 128*stride bytes.
__global__ void strided_copy_kernel(const float* __restrict__ x, float* __restrict__ y, int stride) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  y[i] = x[i * stride];
}

__global__ void vector_copy_kernel(const float4* __restrict__ x, float4* __restrict__ y) {
  y[threadIdx.x] = x[threadIdx.x];
}

// Warp y (threadIdx.y fixed, x = lane) stores tile[lane][y]: word lane * (32 + Padding) + y.
// Without padding every lane hits bank y (32-way conflict); with one float of padding lane l
// hits bank (l + y) % 32, all different.
template <int Padding>
__global__ void transposed_tile_kernel(const float* __restrict__ x, float* __restrict__ y) {
  __shared__ float tile[32][32 + Padding];
  tile[threadIdx.x][threadIdx.y] = x[threadIdx.y * 32 + threadIdx.x];
  __syncthreads();
  y[threadIdx.y * 32 + threadIdx.x] = tile[threadIdx.y][threadIdx.x];
}

__global__ void broadcast_read_kernel(const float* __restrict__ x, float* __restrict__ y) {
  __shared__ float s[32];
  if (threadIdx.x < 32) s[threadIdx.x] = x[threadIdx.x];
  __syncthreads();
  y[threadIdx.x] = s[0] + x[0];
}

__global__ void dynamic_smem_kernel(float* __restrict__ y) {
  float* s = cxr::cuda::dynamic_smem<float>();
  s[2 * threadIdx.x] = 1.0f;
  s[2 * threadIdx.x + 1] = 2.0f;
  __syncthreads();
  const float4 v = cxr::cuda::dynamic_smem<float4>()[threadIdx.x];
  y[threadIdx.x] = v.x + v.y + v.z + v.w;
}

__global__ void atomics_kernel(int* __restrict__ counter) {
  __shared__ int block_count;
  if (threadIdx.x == 0) block_count = 0;
  __syncthreads();
  atomicAdd(&block_count, 1);
  atomicAdd(counter, 1);
}

}  // namespace

void strided_copy(int stride) {
  device_floats x(128 * static_cast<std::size_t>(stride)), y(128);
  launch_kernel(strided_copy_kernel, 1, 128, 0, x.ptr, y.ptr, stride);
}

void vector_copy() {
  device_floats x(32 * 4), y(32 * 4);
  launch_kernel(vector_copy_kernel, 1, 32, 0, reinterpret_cast<const float4*>(x.ptr), reinterpret_cast<float4*>(y.ptr));
}

void transposed_tile(int padding) {
  device_floats x(32 * 32), y(32 * 32);
  if (padding == 0) launch_kernel(transposed_tile_kernel<0>, 1, dim3(32, 32), 0, x.ptr, y.ptr);
  else launch_kernel(transposed_tile_kernel<1>, 1, dim3(32, 32), 0, x.ptr, y.ptr);
}

void broadcast_read() {
  device_floats x(64), y(64);
  launch_kernel(broadcast_read_kernel, 1, 64, 0, x.ptr, y.ptr);
}

void dynamic_smem_patterns() {
  device_floats y(32);
  launch_kernel(dynamic_smem_kernel, 1, 32, 32 * 4 * sizeof(float), y.ptr);
}

void atomics() {
  device_floats counter(1);
  launch_kernel(atomics_kernel, 3, 64, 0, reinterpret_cast<int*>(counter.ptr));
}

}  // namespace cxr::emu_counters_test
