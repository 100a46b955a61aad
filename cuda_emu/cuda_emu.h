// cuda_emu.h: the emulated CUDA device "cuda-emu" (public header).
//
// Every .cu file of cxr is compiled twice: by nvcc for the GPU, and by the host C++ compiler
// with CXR_CUDA_EMULATION=1. In the second build tensor/cuda/runtime.cuh includes this header
// instead of <cuda_runtime.h>, so the very same kernel source runs on the CPU.
//
// How a kernel runs here (details in docs/emulation.md and cuda_emu/scheduler.cpp):
//   * Blocks are spread over a persistent pool of worker OS threads (CXR_EMU_THREADS, default:
//     all cores; the launching thread works too). A worker runs one block at a time.
//   * The threads of a block run one after the other on that worker. A thread runs until it
//     finishes or reaches __syncthreads / a warp collective (__shfl_*, __ballot_sync, ...).
//     Only then does it switch (a "fiber" switch: a few register saves, no OS call) to the
//     next thread of the block. A kernel without barriers never switches: its threads are
//     plain function calls in a loop.
//   * Therefore `__shared__` is `static thread_local`: all threads of the block run on the
//     same OS thread and see the same variable, and two blocks on two workers do not.
//   * threadIdx, blockIdx, blockDim and gridDim are thread_local variables that the
//     scheduler updates at every switch. In gdb: `print threadIdx`, `break f if threadIdx.x==5`.
//   * Atomics are std::atomic_ref operations, since blocks really run in parallel.
//   * The runtime API (cudaMalloc, cudaMemcpy, streams, events, ...) is synchronous: every
//     call finishes its work before it returns, so streams and events only keep time.
//
// This header deliberately does NOT define __CUDACC__ or __CUDA_ARCH__: code that tests
// them keeps its host path. Code that cannot be emulated (inline PTX, tensor cores,
// cp.async) goes behind `#if CXR_REAL_GPU` (see tensor/cuda/runtime.cuh).
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>

#include "cuda_emu/counters.h"

// ---- function and variable qualifiers -------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline
// __noinline__ is not defined: libstdc++ itself writes __attribute__((__noinline__)).
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// __restrict__ is already a keyword of g++ and clang++.
// One worker OS thread runs one block at a time and all its threads (fibers) share the
// variable; the next block on the same worker sees the previous block's values.
#define __shared__ static thread_local

// ---- vector types -----------------------------------------------------------------------------
struct uint3 {
  unsigned x, y, z;
};

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};

#define CUDA_EMU_VECTOR2(T, name, align)                                                     \
  struct __attribute__((aligned(align))) name {                                            \
    T x, y;                                                                                \
  };                                                                                       \
  inline constexpr name make_##name(T x, T y) { return name{x, y}; }
#define CUDA_EMU_VECTOR3(T, name)                                                            \
  struct name {                                                                            \
    T x, y, z;                                                                             \
  };                                                                                       \
  inline constexpr name make_##name(T x, T y, T z) { return name{x, y, z}; }
#define CUDA_EMU_VECTOR4(T, name, align)                                                     \
  struct __attribute__((aligned(align))) name {                                            \
    T x, y, z, w;                                                                          \
  };                                                                                       \
  inline constexpr name make_##name(T x, T y, T z, T w) { return name{x, y, z, w}; }

CUDA_EMU_VECTOR2(float, float2, 8)
CUDA_EMU_VECTOR3(float, float3)
CUDA_EMU_VECTOR4(float, float4, 16)
CUDA_EMU_VECTOR2(double, double2, 16)
CUDA_EMU_VECTOR2(int, int2, 8)
CUDA_EMU_VECTOR3(int, int3)
CUDA_EMU_VECTOR4(int, int4, 16)
CUDA_EMU_VECTOR2(unsigned, uint2, 8)
CUDA_EMU_VECTOR4(unsigned, uint4, 16)
CUDA_EMU_VECTOR4(unsigned char, uchar4, 4)
CUDA_EMU_VECTOR4(signed char, char4, 4)
CUDA_EMU_VECTOR2(long long, longlong2, 16)
inline constexpr uint3 make_uint3(unsigned x, unsigned y, unsigned z) { return uint3{x, y, z}; }

#undef CUDA_EMU_VECTOR2
#undef CUDA_EMU_VECTOR3
#undef CUDA_EMU_VECTOR4

// ---- built-in variables -------------------------------------------------------------------------
// Real variables (not macros) so that a debugger can print them and test them in conditions.
// The scheduler writes them; kernels must only read them (nvcc enforces that on the GPU build).
inline thread_local uint3 threadIdx{0, 0, 0};
inline thread_local uint3 blockIdx{0, 0, 0};
inline thread_local dim3 blockDim{1, 1, 1};
inline thread_local dim3 gridDim{1, 1, 1};
inline constexpr int warpSize = 32;

// ---- runtime API types --------------------------------------------------------------------------
enum cudaError_t : int {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorLaunchFailure = 4,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorIllegalState = 401,
  cudaErrorNotReady = 600,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorUnknown = 999,
};
using cudaError = cudaError_t;

enum cudaMemcpyKind : int {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaFuncAttribute : int {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9,
};

struct CUstream_st;
struct CUevent_st;
struct CUgraph_st;
struct CUgraphExec_st;
using cudaStream_t = CUstream_st*;
using cudaEvent_t = CUevent_st*;
using cudaGraph_t = CUgraph_st*;
using cudaGraphExec_t = CUgraphExec_st*;

enum cudaStreamCaptureMode : int {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2,
};
enum cudaStreamCaptureStatus : int {
  cudaStreamCaptureStatusNone = 0,
  cudaStreamCaptureStatusActive = 1,
  cudaStreamCaptureStatusInvalidated = 2,
};

inline constexpr unsigned cudaStreamDefault = 0x00;
inline constexpr unsigned cudaStreamNonBlocking = 0x01;
inline constexpr unsigned cudaEventDefault = 0x00;
inline constexpr unsigned cudaEventBlockingSync = 0x01;
inline constexpr unsigned cudaEventDisableTiming = 0x02;
inline constexpr unsigned cudaHostAllocDefault = 0x00;
inline constexpr unsigned cudaHostAllocPortable = 0x01;
inline constexpr unsigned cudaHostAllocMapped = 0x02;
inline constexpr unsigned cudaHostAllocWriteCombined = 0x04;

struct cudaDeviceProp {
  char name[256];
  std::size_t totalGlobalMem;
  std::size_t sharedMemPerBlock;
  std::size_t sharedMemPerBlockOptin;
  std::size_t sharedMemPerMultiprocessor;
  std::size_t totalConstMem;
  int regsPerBlock;
  int warpSize;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  int maxThreadsPerMultiProcessor;
  int multiProcessorCount;
  int major;
  int minor;
  int l2CacheSize;
  int clockRate;
  int memoryClockRate;
  int memoryBusWidth;
};

// ---- runtime API (cuda_emu/runtime.cpp); all calls are synchronous --------------------------
const char* cudaGetErrorString(cudaError_t err);
const char* cudaGetErrorName(cudaError_t err);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();

cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes);

cudaError_t cudaMalloc(void** ptr, std::size_t size);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMallocHost(void** ptr, std::size_t size);
cudaError_t cudaHostAlloc(void** ptr, std::size_t size, unsigned flags);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t count, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t count, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemcpy2D(void* dst, std::size_t dpitch, const void* src, std::size_t spitch,
                         std::size_t width, std::size_t height, cudaMemcpyKind kind);
cudaError_t cudaMemcpy2DAsync(void* dst, std::size_t dpitch, const void* src, std::size_t spitch,
                              std::size_t width, std::size_t height, cudaMemcpyKind kind,
                              cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* ptr, int value, std::size_t count);
cudaError_t cudaMemsetAsync(void* ptr, int value, std::size_t count, cudaStream_t stream = nullptr);

cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamQuery(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags = 0);

cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaEventDestroy(cudaEvent_t event);

// Stream capture and graphs. While a stream captures, the kernels launched by the capturing
// host thread, and the cudaMemcpyAsync / cudaMemsetAsync / cudaEventRecord calls on that
// stream, are recorded as nodes instead of running; cudaGraphLaunch replays the nodes in
// order (a graph is one chain: the emulator has no concurrency to express). As on a GPU, a
// synchronising call during capture (cudaStreamSynchronize, cudaDeviceSynchronize,
// cudaEventSynchronize, cudaStreamQuery/cudaEventQuery of the capturing stream, a
// synchronous cudaMemcpy / cudaMemset) fails with cudaErrorStreamCaptureUnsupported and
// invalidates the capture: cudaStreamEndCapture then returns cudaErrorStreamCaptureInvalidated
// and no graph. The mode argument is accepted; capture always behaves as thread-local.
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);

// Accepted and ignored: the emulated device has no per-function limits below 227 KiB.
template <typename T>
cudaError_t cudaFuncSetAttribute(T* /*func*/, cudaFuncAttribute /*attr*/, int /*value*/) {
  return cudaSuccess;
}
// __constant__ variables are ordinary globals here.
template <typename T>
cudaError_t cudaMemcpyToSymbol(T& symbol, const void* src, std::size_t count, std::size_t offset = 0,
                               cudaMemcpyKind kind = cudaMemcpyHostToDevice) {
  if (offset + count > sizeof(T)) return cudaErrorInvalidValue;
  return cudaMemcpy(reinterpret_cast<unsigned char*>(&symbol) + offset, src, count, kind);
}

// ---- the launch entry and the device-side runtime -------------------------------------------
namespace cuda_emu {

namespace detail {

// A kernel body, type-erased: `call(object)` runs one CUDA thread.
struct kernel_ref {
  const void* object;
  void (*call)(const void*);
  const void* kernel = nullptr;  // the __global__ function, to name it (counting build)
};

// Validates the configuration (sets the last error and returns on failure), then runs every
// block and returns when the grid has finished.
void launch(dim3 grid, dim3 block, std::size_t smem_bytes, kernel_ref body);

// Stream capture (runtime.cpp): true while this host thread captures a stream.
bool capturing();
// Records a launch into this thread's capture; `keep` owns the copied body. A bad
// configuration sets the last error and invalidates the capture, as on the GPU.
void capture_launch(dim3 grid, dim3 block, std::size_t smem_bytes, kernel_ref body, std::shared_ptr<const void> keep);
// A launch that cannot be recorded (a body that cannot be copied): invalidates the capture.
void capture_unsupported(const char* what);

// One step of a warp collective: the calling lane publishes `value` and waits until every
// live lane of `mask` has published. Result: the published values of the warp.
struct warp_exchange {
  const std::uint64_t* values;  // values[lane]
  std::uint32_t arrived;        // lanes that took part (mask minus exited/absent lanes)
  unsigned lane;                // the caller's lane
};
warp_exchange warp_collective(unsigned mask, std::uint64_t value, const char* op);

enum class block_reduce { none, count, any, all };

// A warp-level tensor-core MMA (wmma::mma_sync, called by lane 0): counted in the counting
// build (cuda_emu/memory_counters.h), nothing otherwise.
#if CXR_EMU_COUNTERS
void count_mma();
#else
inline void count_mma() {}
#endif
int block_barrier(int predicate, block_reduce reduce, const char* op);

std::uint32_t active_mask();
[[noreturn]] void fatal(const char* message);

template <typename T>
std::uint64_t to_bits(T v) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8,
                "warp shuffles move values of at most 8 bytes");
  std::uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  return bits;
}
template <typename T>
T from_bits(std::uint64_t bits) {
  T v;
  std::memcpy(&v, &bits, sizeof(T));
  return v;
}
inline unsigned checked_width(int width) {
  if (width < 1 || width > 32 || (width & (width - 1)) != 0)
    fatal("warp shuffle: width must be a power of two in [1, 32]");
  return static_cast<unsigned>(width);
}
template <typename T>
T shuffle_result(const warp_exchange& ex, T own, int src_lane) {
  if (src_lane < 0 || src_lane >= 32 || !((ex.arrived >> src_lane) & 1u)) return own;
  return from_bits<T>(ex.values[src_lane]);
}

}  // namespace detail

// Runs `body` (one CUDA thread; it reads threadIdx/blockIdx) for every thread of the grid.
// Called by cxr::cuda::launch_kernel. On a bad configuration nothing runs and
// cudaGetLastError() returns cudaErrorInvalidConfiguration.
// `kernel` (optional) is the __global__ function the body calls: the counting build names it.
template <class F>
void launch(dim3 grid, dim3 block, std::size_t smem_bytes, F&& body, const void* kernel = nullptr) {
  using body_t = std::remove_reference_t<F>;
  if (detail::capturing()) {  // recorded with a copy of the body (it must own its arguments)
    using copy_t = std::remove_cv_t<body_t>;
    if constexpr (std::is_copy_constructible_v<copy_t>) {
      auto copy = std::make_shared<const copy_t>(body);
      const void* object = copy.get();
      detail::capture_launch(grid, block, smem_bytes,
                             detail::kernel_ref{object, [](const void* o) { (*static_cast<const copy_t*>(o))(); },
                                                kernel},
                             std::shared_ptr<const void>(std::move(copy)));
    } else {
      detail::capture_unsupported("a kernel body that cannot be copied");
    }
    return;
  }
  detail::launch(grid, block, smem_bytes,
                 detail::kernel_ref{static_cast<const void*>(&body),
                                    [](const void* o) { (*static_cast<const body_t*>(o))(); }, kernel});
}

// The running block's dynamic shared memory: exactly smem_bytes of the launch, malloc'd (so
// AddressSanitizer sees overflows) and filled with 0xFF bytes (NaN as float) at block start.
void* dynamic_shared_memory();

// Statistics of the emulator (for bench/bench_emu.cpp): fiber switches since the start.
std::uint64_t context_switches();
// Number of worker threads (CXR_EMU_THREADS), the launching thread included.
unsigned worker_count();

}  // namespace cuda_emu

// ---- synchronization ----------------------------------------------------------------------------
inline void __syncthreads() {
  cuda_emu::detail::block_barrier(0, cuda_emu::detail::block_reduce::none, "__syncthreads");
}
inline int __syncthreads_count(int predicate) {
  return cuda_emu::detail::block_barrier(predicate, cuda_emu::detail::block_reduce::count,
                                         "__syncthreads_count");
}
inline int __syncthreads_or(int predicate) {
  return cuda_emu::detail::block_barrier(predicate, cuda_emu::detail::block_reduce::any,
                                         "__syncthreads_or");
}
inline int __syncthreads_and(int predicate) {
  return cuda_emu::detail::block_barrier(predicate, cuda_emu::detail::block_reduce::all,
                                         "__syncthreads_and");
}
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  cuda_emu::detail::warp_collective(mask, 0, "__syncwarp");
}
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_signal_fence(std::memory_order_seq_cst); }
inline void __threadfence_system() { std::atomic_thread_fence(std::memory_order_seq_cst); }

// ---- warp shuffles and votes --------------------------------------------------------------------
// A source lane outside the segment of `width` lanes, absent (past blockDim) or exited gives
// the caller's own value (CUDA: undefined for absent/inactive lanes).
inline unsigned __activemask() { return cuda_emu::detail::active_mask(); }

template <typename T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32) {
  const unsigned w = cuda_emu::detail::checked_width(width);
  const auto ex = cuda_emu::detail::warp_collective(mask, cuda_emu::detail::to_bits(var), "__shfl_sync");
  const int src = static_cast<int>((ex.lane & ~(w - 1)) + (static_cast<unsigned>(src_lane) & (w - 1)));
  return cuda_emu::detail::shuffle_result(ex, var, src);
}
template <typename T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32) {
  const unsigned w = cuda_emu::detail::checked_width(width);
  const auto ex = cuda_emu::detail::warp_collective(mask, cuda_emu::detail::to_bits(var), "__shfl_up_sync");
  if ((ex.lane & (w - 1)) < delta) return var;
  return cuda_emu::detail::shuffle_result(ex, var, static_cast<int>(ex.lane - delta));
}
template <typename T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32) {
  const unsigned w = cuda_emu::detail::checked_width(width);
  const auto ex = cuda_emu::detail::warp_collective(mask, cuda_emu::detail::to_bits(var), "__shfl_down_sync");
  if ((ex.lane & (w - 1)) + delta >= w) return var;
  return cuda_emu::detail::shuffle_result(ex, var, static_cast<int>(ex.lane + delta));
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32) {
  const unsigned w = cuda_emu::detail::checked_width(width);
  const auto ex = cuda_emu::detail::warp_collective(mask, cuda_emu::detail::to_bits(var), "__shfl_xor_sync");
  const unsigned src = ex.lane ^ static_cast<unsigned>(lane_mask);
  if ((src & ~(w - 1)) != (ex.lane & ~(w - 1))) return var;
  return cuda_emu::detail::shuffle_result(ex, var, static_cast<int>(src));
}
inline unsigned __ballot_sync(unsigned mask, int predicate) {
  const auto ex = cuda_emu::detail::warp_collective(mask, predicate != 0, "__ballot_sync");
  unsigned bits = 0;
  for (unsigned l = 0; l < 32; ++l)
    if (((ex.arrived >> l) & 1u) && ex.values[l] != 0) bits |= 1u << l;
  return bits;
}
inline int __any_sync(unsigned mask, int predicate) {
  const auto ex = cuda_emu::detail::warp_collective(mask, predicate != 0, "__any_sync");
  for (unsigned l = 0; l < 32; ++l)
    if (((ex.arrived >> l) & 1u) && ex.values[l] != 0) return 1;
  return 0;
}
inline int __all_sync(unsigned mask, int predicate) {
  const auto ex = cuda_emu::detail::warp_collective(mask, predicate != 0, "__all_sync");
  for (unsigned l = 0; l < 32; ++l)
    if (((ex.arrived >> l) & 1u) && ex.values[l] == 0) return 0;
  return 1;
}

// ---- atomics: real atomics, since blocks run in parallel on several OS threads ----------
namespace cuda_emu::detail {
template <typename T>
T atomic_add(T* address, T value) {
  return std::atomic_ref<T>(*address).fetch_add(value, std::memory_order_relaxed);
}
template <typename T, typename Op>
T atomic_update(T* address, Op op) {  // CAS loop: *address = op(*address), returns the old value
  std::atomic_ref<T> ref(*address);
  T old = ref.load(std::memory_order_relaxed);
  while (!ref.compare_exchange_weak(old, op(old), std::memory_order_relaxed)) {
  }
  return old;
}
}  // namespace cuda_emu::detail

inline int atomicAdd(int* a, int v) { return cuda_emu::detail::atomic_add(a, v); }
inline unsigned atomicAdd(unsigned* a, unsigned v) { return cuda_emu::detail::atomic_add(a, v); }
inline unsigned long long atomicAdd(unsigned long long* a, unsigned long long v) {
  return cuda_emu::detail::atomic_add(a, v);
}
inline float atomicAdd(float* a, float v) { return cuda_emu::detail::atomic_add(a, v); }
inline double atomicAdd(double* a, double v) { return cuda_emu::detail::atomic_add(a, v); }
inline int atomicSub(int* a, int v) { return cuda_emu::detail::atomic_add(a, -v); }
inline unsigned atomicSub(unsigned* a, unsigned v) {
  return std::atomic_ref<unsigned>(*a).fetch_sub(v, std::memory_order_relaxed);
}
template <typename T>
  requires(std::is_same_v<T, int> || std::is_same_v<T, unsigned> || std::is_same_v<T, unsigned long long> ||
           std::is_same_v<T, long long>)
T atomicMax(T* a, T v) {
  return cuda_emu::detail::atomic_update(a, [v](T old) { return old < v ? v : old; });
}
template <typename T>
  requires(std::is_same_v<T, int> || std::is_same_v<T, unsigned> || std::is_same_v<T, unsigned long long> ||
           std::is_same_v<T, long long>)
T atomicMin(T* a, T v) {
  return cuda_emu::detail::atomic_update(a, [v](T old) { return v < old ? v : old; });
}
template <typename T>
  requires(std::is_same_v<T, int> || std::is_same_v<T, unsigned> || std::is_same_v<T, unsigned long long> ||
           std::is_same_v<T, unsigned short>)
T atomicCAS(T* a, T compare, T value) {
  std::atomic_ref<T>(*a).compare_exchange_strong(compare, value, std::memory_order_relaxed);
  return compare;  // the old value, whether or not the exchange happened
}
template <typename T>
  requires(std::is_same_v<T, int> || std::is_same_v<T, unsigned> || std::is_same_v<T, unsigned long long> ||
           std::is_same_v<T, float>)
T atomicExch(T* a, T v) {
  return std::atomic_ref<T>(*a).exchange(v, std::memory_order_relaxed);
}
inline unsigned atomicInc(unsigned* a, unsigned limit) {
  return cuda_emu::detail::atomic_update(a, [limit](unsigned old) { return old >= limit ? 0u : old + 1; });
}
inline unsigned atomicDec(unsigned* a, unsigned limit) {
  return cuda_emu::detail::atomic_update(
      a, [limit](unsigned old) { return (old == 0 || old > limit) ? limit : old - 1; });
}
template <typename T>
  requires(std::is_same_v<T, int> || std::is_same_v<T, unsigned> || std::is_same_v<T, unsigned long long>)
T atomicAnd(T* a, T v) {
  return std::atomic_ref<T>(*a).fetch_and(v, std::memory_order_relaxed);
}
template <typename T>
  requires(std::is_same_v<T, int> || std::is_same_v<T, unsigned> || std::is_same_v<T, unsigned long long>)
T atomicOr(T* a, T v) {
  return std::atomic_ref<T>(*a).fetch_or(v, std::memory_order_relaxed);
}
template <typename T>
  requires(std::is_same_v<T, int> || std::is_same_v<T, unsigned> || std::is_same_v<T, unsigned long long>)
T atomicXor(T* a, T v) {
  return std::atomic_ref<T>(*a).fetch_xor(v, std::memory_order_relaxed);
}

// ---- math intrinsics (the plain float functions come from <cmath>) -------------------------
inline float __expf(float x) { return std::exp(x); }
inline float __exp10f(float x) { return std::pow(10.0f, x); }
inline float __logf(float x) { return std::log(x); }
inline float __log2f(float x) { return std::log2(x); }
inline float __log10f(float x) { return std::log10(x); }
inline float __powf(float x, float y) { return std::pow(x, y); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline float __tanf(float x) { return std::tan(x); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return std::sqrt(x); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __frsqrt_rn(float x) { return 1.0f / std::sqrt(x); }
inline float __saturatef(float x) { return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f; }  // NaN -> 0
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
inline unsigned __float_as_uint(float x) { return std::bit_cast<unsigned>(x); }
inline float __uint_as_float(unsigned x) { return std::bit_cast<float>(x); }
inline long long __double_as_longlong(double x) { return std::bit_cast<long long>(x); }
inline double __longlong_as_double(long long x) { return std::bit_cast<double>(x); }
inline int __float2int_rn(float x) { return static_cast<int>(std::nearbyint(x)); }  // ties to even
inline int __float2int_rz(float x) { return static_cast<int>(x); }
inline int __float2int_rd(float x) { return static_cast<int>(std::floor(x)); }
inline int __float2int_ru(float x) { return static_cast<int>(std::ceil(x)); }
inline float __int2float_rn(int x) { return static_cast<float>(x); }
inline int __popc(unsigned x) { return std::popcount(x); }
inline int __popcll(unsigned long long x) { return std::popcount(x); }
inline int __clz(int x) { return std::countl_zero(static_cast<unsigned>(x)); }
inline int __clzll(long long x) { return std::countl_zero(static_cast<unsigned long long>(x)); }
inline int __ffs(int x) { return x == 0 ? 0 : std::countr_zero(static_cast<unsigned>(x)) + 1; }
inline int __ffsll(long long x) {
  return x == 0 ? 0 : std::countr_zero(static_cast<unsigned long long>(x)) + 1;
}
inline unsigned __brev(unsigned x) {
  unsigned r = 0;
  for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
  return r;
}
template <typename T>
inline T __ldg(const T* p) {
  return *p;
}

// min/max as CUDA provides them for host and device code (mixed signed/unsigned -> unsigned).
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline unsigned min(int a, unsigned b) { return min(static_cast<unsigned>(a), b); }
inline unsigned max(int a, unsigned b) { return max(static_cast<unsigned>(a), b); }
inline unsigned min(unsigned a, int b) { return min(a, static_cast<unsigned>(b)); }
inline unsigned max(unsigned a, int b) { return max(a, static_cast<unsigned>(b)); }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline long min(long a, long b) { return a < b ? a : b; }
inline long max(long a, long b) { return a > b ? a : b; }
inline unsigned long min(unsigned long a, unsigned long b) { return a < b ? a : b; }
inline unsigned long max(unsigned long a, unsigned long b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }
inline double min(float a, double b) { return std::fmin(static_cast<double>(a), b); }
inline double max(float a, double b) { return std::fmax(static_cast<double>(a), b); }
inline double min(double a, float b) { return std::fmin(a, static_cast<double>(b)); }
inline double max(double a, float b) { return std::fmax(a, static_cast<double>(b)); }
