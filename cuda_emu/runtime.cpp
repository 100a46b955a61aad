// runtime.cpp: the CUDA runtime API subset of the emulated device.
//
// "Device memory" is host memory: cudaMalloc is a 256-byte aligned allocation filled with
// 0xFF bytes (NaN as float), so an output a kernel forgot to write shows up as NaN, and
// AddressSanitizer sees every out-of-bounds access. Every call is synchronous: the copy or
// kernel is finished when the call returns, so streams are empty handles and events only
// record the wall-clock time at which they were recorded.
#include <sys/sysinfo.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "cuda_emu/counting/hooks.h"
#include "cuda_emu/scheduler.h"

struct CUstream_st {
  unsigned flags = 0;
  struct capture_state* capture = nullptr;  // while cudaStreamBeginCapture .. EndCapture
};
struct CUevent_st {
  unsigned flags = 0;
  bool recorded = false;
  std::chrono::steady_clock::time_point time{};
};

// A graph: nodes replayed in order by cudaGraphLaunch.
struct CUgraph_st {
  std::vector<std::function<void()>> nodes;
  std::vector<std::shared_ptr<const void>> keep;  // copied kernel bodies
};
struct CUgraphExec_st {
  std::shared_ptr<const CUgraph_st> graph;
};

// The capture in progress on a stream (one per stream; started by one host thread).
struct capture_state {
  cudaStream_t stream = nullptr;
  std::unique_ptr<CUgraph_st> graph = std::make_unique<CUgraph_st>();
  bool invalidated = false;
};

namespace cuda_emu::detail {

namespace {

thread_local cudaError_t t_last_error = cudaSuccess;

// Host synchronisations (cuda_emu/counters.h): calls that would make the host wait for the
// device on a GPU.
std::atomic<std::uint64_t> g_host_syncs{0};
void count_host_sync() { g_host_syncs.fetch_add(1, std::memory_order_relaxed); }

// The capture this host thread started (capture is thread-local here: kernels carry no stream
// in the emulator, so "launched by the capturing thread" stands for "launched on the
// capturing stream").
thread_local capture_state* t_capture = nullptr;

// A call that would synchronise, during this thread's capture: fails and invalidates it.
bool refuse_during_capture() {
  if (!t_capture) return false;
  t_capture->invalidated = true;
  t_last_error = cudaErrorStreamCaptureUnsupported;
  return true;
}
capture_state* capture_of(cudaStream_t stream) { return stream ? stream->capture : nullptr; }

cudaError_t fail(cudaError_t err) {
  t_last_error = err;
  return err;
}

// Live device allocations (for cudaFree checks and cudaMemGetInfo).
struct allocation_table {
  std::mutex mutex;
  std::unordered_map<void*, std::size_t> sizes;
  std::size_t used = 0;
};
allocation_table& allocations() {
  static allocation_table* t = new allocation_table;  // never destroyed: frees may come late
  return *t;
}

std::size_t total_memory() {
  struct sysinfo info {};
  if (sysinfo(&info) != 0) return std::size_t{16} << 30;
  return static_cast<std::size_t>(info.totalram) * info.mem_unit;
}

}  // namespace

void set_last_error(cudaError_t err) { t_last_error = err; }

bool capturing() { return t_capture != nullptr; }

void capture_launch(dim3 grid, dim3 block, std::size_t smem_bytes, kernel_ref body, std::shared_ptr<const void> keep) {
  if (!launch_config_valid(grid, block, smem_bytes)) {
    t_capture->invalidated = true;
    t_last_error = cudaErrorInvalidConfiguration;
    return;
  }
  t_capture->graph->keep.push_back(std::move(keep));
  t_capture->graph->nodes.push_back([grid, block, smem_bytes, body] { launch(grid, block, smem_bytes, body); });
}

void capture_unsupported(const char* what) {
  std::fprintf(stderr, "cuda-emu: stream capture cannot record %s\n", what);
  t_capture->invalidated = true;
  t_last_error = cudaErrorStreamCaptureUnsupported;
}

}  // namespace cuda_emu::detail

using cuda_emu::detail::fail;

std::uint64_t cuda_emu::host_sync_count() { return cuda_emu::detail::g_host_syncs.load(std::memory_order_relaxed); }

const char* cudaGetErrorString(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalState: return "the operation is not permitted in the current state";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorUnknown: return "unknown error";
  }
  return "unrecognized error code";
}

const char* cudaGetErrorName(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalState: return "cudaErrorIllegalState";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorUnknown: return "cudaErrorUnknown";
  }
  return "cudaErrorUnrecognized";
}

cudaError_t cudaGetLastError() {
  const cudaError_t err = cuda_emu::detail::t_last_error;
  cuda_emu::detail::t_last_error = cudaSuccess;
  return err;
}

cudaError_t cudaPeekAtLastError() { return cuda_emu::detail::t_last_error; }

// ---- device ---------------------------------------------------------------------------------------

cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return fail(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (!device) return fail(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice); }

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (!prop) return fail(cudaErrorInvalidValue);
  if (device != 0) return fail(cudaErrorInvalidDevice);
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "cuda-emu");
  prop->totalGlobalMem = cuda_emu::detail::total_memory();
  prop->sharedMemPerBlock = 48 * 1024;
  prop->sharedMemPerBlockOptin = 227 * 1024;
  prop->sharedMemPerMultiprocessor = 228 * 1024;
  prop->totalConstMem = 64 * 1024;
  prop->regsPerBlock = 65536;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = 1024;
  prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 0x7fffffff;
  prop->maxGridSize[1] = 65535;
  prop->maxGridSize[2] = 65535;
  prop->maxThreadsPerMultiProcessor = 2048;
  prop->multiProcessorCount = static_cast<int>(cuda_emu::worker_count());
  prop->major = 8;
  prop->minor = 0;
  prop->l2CacheSize = 4 << 20;
  prop->clockRate = 1000000;
  prop->memoryClockRate = 1000000;
  prop->memoryBusWidth = 64;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
  if (cuda_emu::detail::refuse_during_capture()) return cudaErrorStreamCaptureUnsupported;
  cuda_emu::detail::count_host_sync();
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes) {
  if (!free_bytes || !total_bytes) return fail(cudaErrorInvalidValue);
  auto& table = cuda_emu::detail::allocations();
  std::lock_guard lock(table.mutex);
  *total_bytes = cuda_emu::detail::total_memory();
  *free_bytes = table.used < *total_bytes ? *total_bytes - table.used : 0;
  return cudaSuccess;
}

// ---- memory ---------------------------------------------------------------------------------------

cudaError_t cudaMalloc(void** ptr, std::size_t size) {
  if (!ptr) return fail(cudaErrorInvalidValue);
  *ptr = nullptr;
  // posix_memalign, not aligned_alloc: the size stays exact, so ASan flags the first byte past it.
  void* p = nullptr;
  if (posix_memalign(&p, 256, size > 0 ? size : 1) != 0) return fail(cudaErrorMemoryAllocation);
  std::memset(p, 0xFF, size);  // poison: NaN as float, -1 as integer
  auto& table = cuda_emu::detail::allocations();
  {
    std::lock_guard lock(table.mutex);
    table.sizes.emplace(p, size);
    table.used += size;
  }
  cuda_emu::counting::device_allocated(p, size);
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (!ptr) return cudaSuccess;
  auto& table = cuda_emu::detail::allocations();
  {
    std::lock_guard lock(table.mutex);
    auto it = table.sizes.find(ptr);
    if (it == table.sizes.end()) return fail(cudaErrorInvalidValue);
    table.used -= it->second;
    table.sizes.erase(it);
  }
  cuda_emu::counting::device_freed(ptr);
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, std::size_t size) {
  if (!ptr) return fail(cudaErrorInvalidValue);
  *ptr = std::malloc(size > 0 ? size : 1);
  return *ptr ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}

cudaError_t cudaHostAlloc(void** ptr, std::size_t size, unsigned /*flags*/) { return cudaMallocHost(ptr, size); }

cudaError_t cudaFreeHost(void* ptr) {
  std::free(ptr);
  return cudaSuccess;
}

namespace {
cudaError_t copy_bytes(void* dst, const void* src, std::size_t count, cudaMemcpyKind kind) {
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) return fail(cudaErrorInvalidValue);
  if (count == 0) return cudaSuccess;
  if (!dst || !src) return fail(cudaErrorInvalidValue);
  std::memcpy(dst, src, count);
  return cudaSuccess;
}
}  // namespace

// The synchronous copy: a host synchronisation when it reads the device.
cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t count, cudaMemcpyKind kind) {
  if (cuda_emu::detail::refuse_during_capture()) return cudaErrorStreamCaptureUnsupported;
  if (kind == cudaMemcpyDeviceToHost) cuda_emu::detail::count_host_sync();
  return copy_bytes(dst, src, count, kind);
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t count, cudaMemcpyKind kind, cudaStream_t stream) {
  if (capture_state* c = cuda_emu::detail::capture_of(stream)) {
    if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault || (count && (!dst || !src)))
      return fail(cudaErrorInvalidValue);
    c->graph->nodes.push_back([dst, src, count, kind] { copy_bytes(dst, src, count, kind); });
    return cudaSuccess;
  }
  return copy_bytes(dst, src, count, kind);
}

namespace {
cudaError_t copy_2d(void* dst, std::size_t dpitch, const void* src, std::size_t spitch, std::size_t width,
                    std::size_t height, cudaMemcpyKind kind) {
  if (width > dpitch || width > spitch) return fail(cudaErrorInvalidValue);
  for (std::size_t row = 0; row < height; ++row) {
    const cudaError_t err = copy_bytes(static_cast<char*>(dst) + row * dpitch,
                                       static_cast<const char*>(src) + row * spitch, width, kind);
    if (err != cudaSuccess) return err;
  }
  return cudaSuccess;
}
}  // namespace

cudaError_t cudaMemcpy2D(void* dst, std::size_t dpitch, const void* src, std::size_t spitch, std::size_t width,
                         std::size_t height, cudaMemcpyKind kind) {
  if (cuda_emu::detail::refuse_during_capture()) return cudaErrorStreamCaptureUnsupported;
  if (kind == cudaMemcpyDeviceToHost) cuda_emu::detail::count_host_sync();
  return copy_2d(dst, dpitch, src, spitch, width, height, kind);
}

cudaError_t cudaMemcpy2DAsync(void* dst, std::size_t dpitch, const void* src, std::size_t spitch,
                              std::size_t width, std::size_t height, cudaMemcpyKind kind, cudaStream_t stream) {
  if (capture_state* c = cuda_emu::detail::capture_of(stream)) {
    if (width > dpitch || width > spitch) return fail(cudaErrorInvalidValue);
    c->graph->nodes.push_back(
        [=] { copy_2d(dst, dpitch, src, spitch, width, height, kind); });
    return cudaSuccess;
  }
  return copy_2d(dst, dpitch, src, spitch, width, height, kind);
}

cudaError_t cudaMemset(void* ptr, int value, std::size_t count) {
  if (cuda_emu::detail::refuse_during_capture()) return cudaErrorStreamCaptureUnsupported;
  if (count == 0) return cudaSuccess;
  if (!ptr) return fail(cudaErrorInvalidValue);
  std::memset(ptr, value, count);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* ptr, int value, std::size_t count, cudaStream_t stream) {
  if (capture_state* c = cuda_emu::detail::capture_of(stream)) {
    if (count && !ptr) return fail(cudaErrorInvalidValue);
    c->graph->nodes.push_back([ptr, value, count] {
      if (count) std::memset(ptr, value, count);
    });
    return cudaSuccess;
  }
  if (count == 0) return cudaSuccess;
  if (!ptr) return fail(cudaErrorInvalidValue);
  std::memset(ptr, value, count);
  return cudaSuccess;
}

// ---- streams and events ------------------------------------------------------------------------------

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  if (!stream) return fail(cudaErrorInvalidValue);
  *stream = new CUstream_st{flags};
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  if (stream && stream->capture) return fail(cudaErrorIllegalState);
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (cuda_emu::detail::capture_of(stream) || cuda_emu::detail::t_capture) {
    cuda_emu::detail::refuse_during_capture();
    if (capture_state* c = cuda_emu::detail::capture_of(stream)) c->invalidated = true;
    return fail(cudaErrorStreamCaptureUnsupported);
  }
  cuda_emu::detail::count_host_sync();
  return cudaSuccess;
}
cudaError_t cudaStreamQuery(cudaStream_t stream) {
  if (capture_state* c = cuda_emu::detail::capture_of(stream)) {
    c->invalidated = true;
    return fail(cudaErrorStreamCaptureUnsupported);
  }
  return cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t event, unsigned) {
  // In a capture: a no-op node (the replay is one ordered chain).
  return event ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags) {
  if (!event) return fail(cudaErrorInvalidValue);
  *event = new CUevent_st{flags, false, {}};
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (!event) return fail(cudaErrorInvalidResourceHandle);
  if (capture_state* c = cuda_emu::detail::capture_of(stream)) {  // recorded when the graph runs
    c->graph->nodes.push_back([event] {
      event->recorded = true;
      event->time = std::chrono::steady_clock::now();
    });
    return cudaSuccess;
  }
  event->recorded = true;
  event->time = std::chrono::steady_clock::now();
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (!event) return fail(cudaErrorInvalidResourceHandle);
  if (cuda_emu::detail::refuse_during_capture()) return cudaErrorStreamCaptureUnsupported;
  cuda_emu::detail::count_host_sync();
  return cudaSuccess;
}

cudaError_t cudaEventQuery(cudaEvent_t event) { return event ? cudaSuccess : fail(cudaErrorInvalidResourceHandle); }

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!ms) return fail(cudaErrorInvalidValue);
  if (!start || !end || !start->recorded || !end->recorded || (start->flags & cudaEventDisableTiming) ||
      (end->flags & cudaEventDisableTiming))
    return fail(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(end->time - start->time).count();
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}

// ---- stream capture and graphs ----------------------------------------------------------------------

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode /*mode*/) {
  if (!stream) return fail(cudaErrorStreamCaptureUnsupported);  // the legacy stream cannot capture
  if (stream->capture || cuda_emu::detail::t_capture) return fail(cudaErrorIllegalState);
  auto* c = new capture_state;
  c->stream = stream;
  stream->capture = c;
  cuda_emu::detail::t_capture = c;
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  if (!graph) return fail(cudaErrorInvalidValue);
  *graph = nullptr;
  if (!stream || !stream->capture) return fail(cudaErrorIllegalState);
  std::unique_ptr<capture_state> c(stream->capture);
  stream->capture = nullptr;
  if (cuda_emu::detail::t_capture == c.get()) cuda_emu::detail::t_capture = nullptr;
  if (c->invalidated) return fail(cudaErrorStreamCaptureInvalidated);
  *graph = c->graph.release();
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  if (!status) return fail(cudaErrorInvalidValue);
  const capture_state* c = cuda_emu::detail::capture_of(stream);
  *status = !c ? cudaStreamCaptureStatusNone
               : (c->invalidated ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive);
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long /*flags*/) {
  if (!exec || !graph) return fail(cudaErrorInvalidValue);
  // A snapshot: later changes of the graph do not reach the executable graph (as in CUDA).
  *exec = new CUgraphExec_st{std::make_shared<const CUgraph_st>(*graph)};
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  if (!exec) return fail(cudaErrorInvalidResourceHandle);
  if (cuda_emu::detail::capture_of(stream)) return fail(cudaErrorStreamCaptureUnsupported);  // not emulated
  for (const auto& node : exec->graph->nodes) node();
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
