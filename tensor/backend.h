// The CUDA runtime as the host code sees it: plain C++, no <cuda_runtime.h>.
//
// Implemented in tensor/cuda/backend.cu, which is compiled twice: by nvcc against the real
// runtime (libcxr_cuda) and by the host compiler against cuda_emu (libcxr_emu).
// Host code reaches the GPU through these functions only.
#pragma once

#include <cstddef>
#include <string>

namespace cxr::backend {

bool is_emulated();        // true in programs linked with libcxr_emu
int device_count();        // 0 when there is no driver or no GPU; never throws
bool has_device();         // device_count() > 0
std::string device_description();  // "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)" or "cuda-emu"
// Makes GPU `index % device_count()` this process's device (before any allocation): one
// process per GPU in a distributed job, picked by its local rank; more processes than GPUs
// share them. Returns the index chosen.
int select_device(int index);

// Raw allocations. device_malloc throws cxr::Error on out-of-memory, naming the requested and
// the free size. The caching allocator (tensor/allocator.h) sits on top of these.
void* device_malloc(std::size_t bytes);
void device_free(void* ptr);
void* pinned_malloc(std::size_t bytes);  // page-locked host memory (cudaHostAlloc)
void pinned_free(void* ptr);
void device_memory_info(std::size_t* free_bytes, std::size_t* total_bytes);

enum class CopyKind { HostToDevice, DeviceToHost, DeviceToDevice };
// Synchronous copy (waits for the compute stream first).
void copy(void* dst, const void* src, std::size_t bytes, CopyKind kind);
// Asynchronous copy on `stream` (nullptr: the compute stream); host memory must be pinned.
void copy_async(void* dst, const void* src, std::size_t bytes, CopyKind kind, void* stream);
void memset_device(void* dst, int value, std::size_t bytes);
void synchronize();  // the whole device

// Streams and events as opaque handles (see tensor/stream.h for the RAII types).
void* stream_create();
void stream_destroy(void* s);
void stream_synchronize(void* s);
void* compute_stream_handle();
void* event_create(bool timing);
void event_destroy(void* e);
void event_record(void* e, void* stream);
void event_synchronize(void* e);
bool event_query(void* e);
void stream_wait_event(void* stream, void* e);
float event_elapsed_ms(void* start, void* stop);

// Stream capture into a CUDA graph (tensor/stream.h Graph). end_capture returns the
// instantiated executable graph, or throws naming the CUDA error (e.g. a synchronising call
// during the capture: cudaErrorStreamCaptureInvalidated).
void stream_begin_capture(void* s);
void* stream_end_capture(void* s);
bool stream_is_capturing(void* s);
void graph_launch(void* exec, void* s);
void graph_destroy(void* exec);

}  // namespace cxr::backend
