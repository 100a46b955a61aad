// Self-tests of the emulator's stream capture and graphs (cuda_emu/runtime.cpp): recorded
// kernels, copies, memsets and events replay in order with the arguments of the capture; a
// synchronising call during capture fails and invalidates it, as on a GPU.
#include <doctest/doctest.h>

#include <vector>

#include "cuda_emu/cuda_emu.h"
#include "tests/emu/emu_graph_kernels.h"

namespace et = cxr::emu_test;

namespace {

float* device_floats(int n, float value) {
  void* p = nullptr;
  REQUIRE(cudaMalloc(&p, sizeof(float) * n) == cudaSuccess);
  std::vector<float> h(static_cast<std::size_t>(n), value);
  REQUIRE(cudaMemcpy(p, h.data(), sizeof(float) * n, cudaMemcpyHostToDevice) == cudaSuccess);
  return static_cast<float*>(p);
}

std::vector<float> host_copy(const float* d, int n) {
  std::vector<float> h(static_cast<std::size_t>(n));
  REQUIRE(cudaMemcpy(h.data(), d, sizeof(float) * n, cudaMemcpyDeviceToHost) == cudaSuccess);
  return h;
}

}  // namespace

TEST_SUITE("emulator") {

TEST_CASE("stream capture: kernels, async copies, memsets and events are recorded, not run, and replay in order "
          "with the captured arguments") {
  cudaStream_t s = static_cast<cudaStream_t>(et::compute_stream());
  const int n = 300;
  float* x = device_floats(n, 0.f);
  float* y = device_floats(n, 1.f);
  std::vector<float> host_x(n, 2.f);
  cudaEvent_t done = nullptr;
  REQUIRE(cudaEventCreate(&done) == cudaSuccess);

  cudaStreamCaptureStatus st = cudaStreamCaptureStatusActive;
  REQUIRE(cudaStreamIsCapturing(s, &st) == cudaSuccess);
  CHECK(st == cudaStreamCaptureStatusNone);
  REQUIRE(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaSuccess);
  REQUIRE(cudaStreamIsCapturing(s, &st) == cudaSuccess);
  CHECK(st == cudaStreamCaptureStatusActive);
  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaErrorIllegalState);  // already capturing
  (void)cudaGetLastError();
  REQUIRE(cudaMemcpyAsync(x, host_x.data(), sizeof(float) * n, cudaMemcpyHostToDevice, s) == cudaSuccess);
  {
    const float a = 3.f;  // gone when the graph runs: the launch must have copied it
    et::saxpy_launch(a, x, y, n);
  }
  REQUIRE(cudaMemsetAsync(x, 0, sizeof(float) * 10, s) == cudaSuccess);
  et::saxpy_launch(1.f, x, y, n);  // y[i < 10] += 0, y[i >= 10] += 2
  REQUIRE(cudaEventRecord(done, s) == cudaSuccess);
  cudaGraph_t graph = nullptr;
  REQUIRE(cudaStreamEndCapture(s, &graph) == cudaSuccess);
  REQUIRE(graph != nullptr);
  CHECK(host_copy(y, n)[0] == 1.f);  // nothing ran during capture
  CHECK(host_copy(x, n)[0] == 0.f);
  float ms = 0.f;
  CHECK(cudaEventElapsedTime(&ms, done, done) == cudaErrorInvalidResourceHandle);  // not recorded yet
  (void)cudaGetLastError();

  cudaGraphExec_t exec = nullptr;
  REQUIRE(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
  REQUIRE(cudaGraphLaunch(exec, s) == cudaSuccess);
  std::vector<float> h = host_copy(y, n);
  CHECK(h[0] == 7.f);     // 1 + 3 * 2
  CHECK(h[299] == 9.f);   // 1 + 3 * 2 + 2
  CHECK(cudaEventElapsedTime(&ms, done, done) == cudaSuccess);  // recorded by the replay
  // The copy node reads the host buffer when it runs: new input, same graph.
  std::fill(host_x.begin(), host_x.end(), 1.f);
  REQUIRE(cudaGraphLaunch(exec, s) == cudaSuccess);
  h = host_copy(y, n);
  CHECK(h[0] == 10.f);    // 7 + 3 * 1
  CHECK(h[299] == 13.f);  // 9 + 3 * 1 + 1
  REQUIRE(cudaGraphExecDestroy(exec) == cudaSuccess);
  REQUIRE(cudaGraphDestroy(graph) == cudaSuccess);
  cudaEventDestroy(done);
  cudaFree(x);
  cudaFree(y);
}

TEST_CASE("stream capture: a synchronising call, a host read or a bad launch invalidates the capture") {
  cudaStream_t s = static_cast<cudaStream_t>(et::compute_stream());
  float* y = device_floats(4, 1.f);
  for (int k = 0; k < 5; ++k) {
    CAPTURE(k);
    REQUIRE(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaSuccess);
    float h[4];
    cudaEvent_t e = nullptr;
    cudaEventCreate(&e);
    switch (k) {
      case 0: CHECK(cudaStreamSynchronize(s) == cudaErrorStreamCaptureUnsupported); break;
      case 1: CHECK(cudaDeviceSynchronize() == cudaErrorStreamCaptureUnsupported); break;
      case 2: CHECK(cudaMemcpy(h, y, sizeof h, cudaMemcpyDeviceToHost) == cudaErrorStreamCaptureUnsupported); break;
      case 3: CHECK(cudaEventSynchronize(e) == cudaErrorStreamCaptureUnsupported); break;
      case 4:
        et::bad_launch(y);  // launch_kernel threw and consumed the error
        break;
    }
    (void)cudaGetLastError();
    cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
    REQUIRE(cudaStreamIsCapturing(s, &st) == cudaSuccess);
    CHECK(st == cudaStreamCaptureStatusInvalidated);
    cudaGraph_t graph = reinterpret_cast<cudaGraph_t>(&st);
    CHECK(cudaStreamEndCapture(s, &graph) == cudaErrorStreamCaptureInvalidated);
    (void)cudaGetLastError();
    CHECK(graph == nullptr);
    REQUIRE(cudaStreamIsCapturing(s, &st) == cudaSuccess);
    CHECK(st == cudaStreamCaptureStatusNone);  // the stream works eagerly again
    cudaEventDestroy(e);
  }
  et::saxpy_launch(1.f, y, y, 4);
  CHECK(host_copy(y, 4)[3] == 2.f);
  cudaGraph_t none = nullptr;
  CHECK(cudaStreamEndCapture(s, &none) == cudaErrorIllegalState);  // no capture in progress
  (void)cudaGetLastError();
  cudaFree(y);
}

}  // TEST_SUITE
