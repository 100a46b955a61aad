// tensor/backend.h on the CUDA runtime: the real one under nvcc, cuda_emu otherwise.
#include "tensor/cuda/runtime.cuh"
#include "tensor/backend.h"

#include <cstdio>
#include <string>

namespace cxr::cuda {

void throw_cuda_error(cudaError_t err, const char* what, const char* file, int line) {
  ::cxr::detail::throw_error(file, line, std::string("CUDA error '") + cudaGetErrorString(err) + "' in " + what);
}

cudaStream_t compute_stream() {
  // The legacy default stream would serialise with the loader's copy stream; a created
  // non-blocking stream lets copies overlap compute. Created on first use.
  static cudaStream_t s = [] {
    cudaStream_t stream = nullptr;
    CXR_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    return stream;
  }();
  return s;
}

}  // namespace cxr::cuda

namespace cxr::backend {

bool is_emulated() { return !CXR_REAL_GPU; }

int device_count() {
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      (void)cudaGetLastError();  // clear the sticky error: no driver means no device
      n = 0;
    }
    return n;
  }();
  return count;
}

bool has_device() { return device_count() > 0; }

std::string device_description() {
  if (!has_device()) return "no CUDA device found";
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) return "unknown CUDA device";
  char gib[32];
  std::snprintf(gib, sizeof gib, "%.1f", static_cast<double>(prop.totalGlobalMem) / (1u << 30));
  return std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ", " + gib +
         " GiB)";
}

void* device_malloc(std::size_t bytes) {
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, bytes);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    std::size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    CXR_FAIL("CUDA out of memory: requested ", bytes / double(1 << 20), " MiB with ", free_b / double(1 << 20),
             " MiB free of ", total_b / double(1 << 20), " MiB (", cudaGetErrorString(err),
             "). Hint: use a smaller --batch-size or --image-size");
  }
  return p;
}

void device_free(void* ptr) { CXR_CUDA_CHECK(cudaFree(ptr)); }

void* pinned_malloc(std::size_t bytes) {
  void* p = nullptr;
  CXR_CUDA_CHECK(cudaHostAlloc(&p, bytes, cudaHostAllocDefault));
  return p;
}

void pinned_free(void* ptr) { CXR_CUDA_CHECK(cudaFreeHost(ptr)); }

void device_memory_info(std::size_t* free_bytes, std::size_t* total_bytes) {
  CXR_CUDA_CHECK(cudaMemGetInfo(free_bytes, total_bytes));
}

static cudaMemcpyKind to_cuda(CopyKind k) {
  switch (k) {
    case CopyKind::HostToDevice: return cudaMemcpyHostToDevice;
    case CopyKind::DeviceToHost: return cudaMemcpyDeviceToHost;
    case CopyKind::DeviceToDevice: return cudaMemcpyDeviceToDevice;
  }
  return cudaMemcpyDefault;
}

void copy(void* dst, const void* src, std::size_t bytes, CopyKind kind) {
  cudaStream_t s = cuda::compute_stream();
  CXR_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, to_cuda(kind), s));
  CXR_CUDA_CHECK(cudaStreamSynchronize(s));
}

void copy_async(void* dst, const void* src, std::size_t bytes, CopyKind kind, void* stream) {
  cudaStream_t s = stream ? static_cast<cudaStream_t>(stream) : cuda::compute_stream();
  CXR_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, to_cuda(kind), s));
}

void memset_device(void* dst, int value, std::size_t bytes) {
  CXR_CUDA_CHECK(cudaMemsetAsync(dst, value, bytes, cuda::compute_stream()));
}

void synchronize() { CXR_CUDA_CHECK(cudaDeviceSynchronize()); }

int select_device(int index) {
  const int n = device_count();
  CXR_CHECK(n > 0, "no CUDA device to select (device ", index, " asked for)");
  const int chosen = index % n;
  CXR_CUDA_CHECK(cudaSetDevice(chosen));
  return chosen;
}

void* stream_create() {
  cudaStream_t s = nullptr;
  CXR_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return s;
}
void stream_destroy(void* s) { cudaStreamDestroy(static_cast<cudaStream_t>(s)); }
void stream_synchronize(void* s) { CXR_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(s))); }
void* compute_stream_handle() { return cuda::compute_stream(); }

void* event_create(bool timing) {
  cudaEvent_t e = nullptr;
  CXR_CUDA_CHECK(cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming));
  return e;
}
void event_destroy(void* e) { cudaEventDestroy(static_cast<cudaEvent_t>(e)); }
void event_record(void* e, void* stream) {
  CXR_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(e), static_cast<cudaStream_t>(stream)));
}
void event_synchronize(void* e) { CXR_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(e))); }
bool event_query(void* e) {
  cudaError_t err = cudaEventQuery(static_cast<cudaEvent_t>(e));
  if (err == cudaSuccess) return true;
  if (err == cudaErrorNotReady) {
    (void)cudaGetLastError();
    return false;
  }
  CXR_CUDA_CHECK(err);
  return false;
}
void stream_wait_event(void* stream, void* e) {
  CXR_CUDA_CHECK(cudaStreamWaitEvent(static_cast<cudaStream_t>(stream), static_cast<cudaEvent_t>(e), 0));
}
float event_elapsed_ms(void* start, void* stop) {
  float ms = 0.f;
  CXR_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start), static_cast<cudaEvent_t>(stop)));
  return ms;
}

void stream_begin_capture(void* s) {
  // Thread-local mode: other host threads (the loader's copies) are not disturbed.
  CXR_CUDA_CHECK(cudaStreamBeginCapture(static_cast<cudaStream_t>(s), cudaStreamCaptureModeThreadLocal));
}
void* stream_end_capture(void* s) {
  cudaGraph_t graph = nullptr;
  const cudaError_t err = cudaStreamEndCapture(static_cast<cudaStream_t>(s), &graph);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    if (graph) cudaGraphDestroy(graph);
    cuda::throw_cuda_error(err, "cudaStreamEndCapture (a synchronising call or a failed launch during the capture)",
                           __FILE__, __LINE__);
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t ierr = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);  // the executable graph is independent of it
  CXR_CUDA_CHECK(ierr);
  return exec;
}
bool stream_is_capturing(void* s) {
  cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
  CXR_CUDA_CHECK(cudaStreamIsCapturing(static_cast<cudaStream_t>(s), &st));
  return st != cudaStreamCaptureStatusNone;
}
void graph_launch(void* exec, void* s) {
  CXR_CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec), static_cast<cudaStream_t>(s)));
}
void graph_destroy(void* exec) {
  if (exec) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec));
}

}  // namespace cxr::backend
