// The CUDA runtime as tensor/ and kernels/ use it: the real one under nvcc, the emulated device
// otherwise, with checked calls, the compute stream and the one way to launch a kernel.
//
// A .cu file is compiled twice (see CMakeLists.txt): by nvcc for the GPU, and by the host
// compiler with CXR_CUDA_EMULATION defined, against cuda_emu/cuda_emu.h, for the emulated
// device "cuda-emu". What tensor/ needs from CUDA comes through here (tensor/cuda/*.cu include
// it first); kernels include kernels/common/cuda.cuh, which adds what only kernels need.
//   - launch_kernel(): the only way to launch a kernel (no <<<>>> anywhere else);
//   - CXR_CUDA_CHECK(): wraps every runtime call, throwing cxr::Error with file and line.
// Code that cannot be emulated (inline PTX, tensor-core MMA other than the TF32 nvcuda::wmma
// of cuda_emu/wmma.h, cp.async) sits behind `#if CXR_REAL_GPU` with a portable variant in the
// #else branch.
#pragma once

#if defined(CXR_CUDA_EMULATION)
#include "cuda_emu/cuda_emu.h"
#define CXR_REAL_GPU 0
#else
#include <cuda_runtime.h>
#define CXR_REAL_GPU 1
#endif

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "tensor/error.h"

namespace cxr::cuda {

// Throws cxr::Error naming the call, the file and the line.
[[noreturn]] void throw_cuda_error(cudaError_t err, const char* what, const char* file, int line);

// The stream every op of this framework launches on (the "compute stream").
cudaStream_t compute_stream();

}  // namespace cxr::cuda

#define CXR_CUDA_CHECK(expr)                                                       \
  do {                                                                             \
    cudaError_t cxr_err_ = (expr);                                                 \
    if (cxr_err_ != cudaSuccess)                                                   \
      ::cxr::cuda::throw_cuda_error(cxr_err_, #expr, __FILE__, __LINE__);          \
  } while (0)

namespace cxr::cuda {

// Number of blocks for `n` work items at `threads` per block (at least one block).
inline unsigned blocks_for(std::int64_t n, unsigned threads) {
  std::int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 1 ? 1 : b);
}

// Launches `kernel` on the compute stream and checks the launch.
//   launch_kernel(relu_forward_kernel, grid, block, /*smem_bytes=*/0, x, y, n);
template <typename... KernelArgs, typename... Args>
void launch_kernel(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, std::size_t smem_bytes,
                   Args&&... args) {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) return;  // nothing to do
#if defined(CXR_CUDA_EMULATION)
  // The body owns copies of the arguments (as a real launch does), so that a launch recorded
  // by stream capture (cuda_emu) can be replayed after this call has returned.
  cuda_emu::launch(grid, block, smem_bytes,
                   [kernel, ... a = static_cast<std::decay_t<KernelArgs>>(args)] { kernel(a...); },
                   reinterpret_cast<const void*>(kernel));
  CXR_CUDA_CHECK(cudaGetLastError());  // a bad configuration fails exactly as on the GPU
#else
  kernel<<<grid, block, smem_bytes, compute_stream()>>>(static_cast<KernelArgs>(args)...);
  CXR_CUDA_CHECK(cudaGetLastError());
#endif
}

}  // namespace cxr::cuda
