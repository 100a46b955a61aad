// Memory: a caching allocator for device memory (no cudaMalloc per training step) and
// pinned host memory for fast, asynchronous host-to-device copies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "tensor/error.h"

namespace cxr {

// Thrown by device_alloc when the device cannot hold a request, even after the allocator's
// cache went back to the driver. what(): "CUDA out of memory: requested 4.00 GiB (...), 1.21 GiB
// free of 79.10 GiB; ... Hint: a smaller --batch-size (or --image-size)". Not a crash: the
// allocator's state is unchanged, smaller requests still succeed.
class DeviceOutOfMemory : public Error {
 public:
  DeviceOutOfMemory(const std::string& message, std::size_t requested, std::size_t free_bytes, std::size_t total)
      : Error(message), requested_bytes(requested), free_bytes(free_bytes), total_bytes(total) {}
  std::size_t requested_bytes, free_bytes, total_bytes;
};

// Device memory from the caching allocator. Blocks are rounded up (512 B granules below
// 1 MiB, 2 MiB granules above) and kept on free lists when released, so a training loop
// that repeats the same shapes reaches a steady state with no runtime allocations.
// Out of memory: the cache is returned to the driver and the request retried once; if it
// still does not fit, DeviceOutOfMemory (a request larger than the free memory is refused
// before the runtime is asked, so the emulated device never tries a host allocation that
// large).
void* device_alloc(std::size_t bytes);
void device_release(void* ptr);

struct DeviceMemoryStats {
  std::size_t in_use = 0;         // bytes handed out
  std::size_t cached = 0;         // bytes held on the general free lists
  std::size_t graph_pool_reserved = 0;  // bytes owned by graph pools (in use or free in a pool)
  std::size_t peak_in_use = 0;    // high-water mark of in_use
  std::uint64_t runtime_allocs = 0;  // calls that reached cudaMalloc
  std::uint64_t cache_hits = 0;
};
DeviceMemoryStats device_memory_stats();
void reset_peak_device_memory();
void empty_device_cache();  // returns every cached block to the driver

// ---- CUDA graph memory pools (as PyTorch's graph pool) -------------------------------------
// A captured graph replays its kernels on the very addresses it was captured with, at any
// later time. So while a graph is captured, its allocations come from a pool of its own:
//   * begin_graph_pool(id) .. end_graph_pool(): device_alloc on THIS thread takes blocks from
//     pool `id` (its free list, else new blocks from the runtime, never the general cache);
//   * a block of the pool, when released (during the capture or after it), goes back to the
//     pool's free list only: it is never handed to an allocation outside the pool, since a
//     replay may write it at any moment. During the capture it may be reused by a later
//     allocation of the same capture (the replay runs in the same order, so that is safe);
//   * release_graph_pool(id) (when the graph is destroyed): the pool's free blocks go to the
//     general cache, and its blocks still in use go there when they are released.
// A second capture into the same pool (begin_graph_pool with an existing id) shares it, for
// graphs that never run concurrently. empty_device_cache() does not touch pools.
using GraphPoolId = std::uint64_t;
GraphPoolId create_graph_pool();
void begin_graph_pool(GraphPoolId id);
void end_graph_pool();
void release_graph_pool(GraphPoolId id);
// Whether `ptr` (a live block) belongs to a graph pool (tests).
bool is_graph_pool_block(const void* ptr);

// Host memory for staging: page-locked (cudaHostAlloc) where a GPU exists, otherwise
// 64-byte-aligned ordinary memory.
void* pinned_alloc(std::size_t bytes);
void pinned_release(void* ptr);
bool pinned_is_page_locked();

}  // namespace cxr
