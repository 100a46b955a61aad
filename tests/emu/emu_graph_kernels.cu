// Kernels of the stream-capture self-tests (see emu_graph_kernels.h).
#include "tests/emu/emu_graph_kernels.h"

#include "kernels/common/cuda.cuh"

namespace cxr::emu_test {
namespace {

__global__ void saxpy_kernel(float a, const float* x, float* y, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) y[i] = a * x[i] + y[i];
}

}  // namespace

void saxpy_launch(float a, const float* x, float* y, int n) {
  cuda::launch_kernel(saxpy_kernel, cuda::blocks_for(n, 64), 64, 0, a, x, y, n);
}

void bad_launch(float* y) {
  try {
    cuda::launch_kernel(saxpy_kernel, 1, 2048, 0, 1.f, y, y, 1);
  } catch (const Error&) {  // launch_kernel reports the configuration error
  }
}

void* compute_stream() { return cuda::compute_stream(); }

}  // namespace cxr::emu_test
