// Launchers for the stream-capture self-tests of the emulator (tests/emu/test_emu_graph.cpp):
// kernels launched through cxr::cuda::launch_kernel, i.e. exactly as the framework's ops.
#pragma once

namespace cxr::emu_test {

// y[i] = a * x[i] + y[i] for i < n (device pointers), on the compute stream.
void saxpy_launch(float a, const float* x, float* y, int n);
// A launch with an invalid configuration (2048 threads per block).
void bad_launch(float* y);
// The compute stream (cudaStream_t), as void*.
void* compute_stream();

}  // namespace cxr::emu_test
