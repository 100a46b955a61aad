// Caching device allocator.
//
// Sizes are rounded up to a granule (512 B below 1 MiB, 2 MiB above); freed blocks go on
// a free list keyed by their rounded size and are handed out again for the same size.
// One mutex guards the lists: allocation is not on any kernel's critical path.
// All kernels run on one compute stream, so a block freed by the host can be reused by
// the next kernel on that stream without an event (stream order serialises them).
#include "tensor/allocator.h"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "tensor/backend.h"
#include "tensor/error.h"

namespace cxr {
namespace {

constexpr std::size_t kSmallGranule = 512;
constexpr std::size_t kLargeGranule = 2u << 20;
constexpr std::size_t kSmallLimit = 1u << 20;

std::size_t round_size(std::size_t bytes) {
  if (bytes == 0) bytes = 1;
  std::size_t g = bytes < kSmallLimit ? kSmallGranule : kLargeGranule;
  return (bytes + g - 1) / g * g;
}

// "512 B", "3.00 MiB", "4.25 GiB"
std::string human_bytes(std::size_t bytes) {
  char buf[48];
  const double b = static_cast<double>(bytes);
  if (bytes < (1u << 10)) std::snprintf(buf, sizeof buf, "%zu B", bytes);
  else if (bytes < (1u << 20)) std::snprintf(buf, sizeof buf, "%.2f KiB", b / (1u << 10));
  else if (bytes < (std::size_t{1} << 30)) std::snprintf(buf, sizeof buf, "%.2f MiB", b / (1u << 20));
  else std::snprintf(buf, sizeof buf, "%.2f GiB", b / double(std::size_t{1} << 30));
  return buf;
}

using FreeLists = std::map<std::size_t, std::vector<void*>>;  // rounded size -> blocks

struct GraphPool {
  FreeLists free_blocks;
  bool released = false;
};

// The graph pool this thread allocates from (0: none).
thread_local GraphPoolId t_graph_pool = 0;

struct CachingAllocator {
  std::mutex mutex;
  FreeLists free_blocks;                                  // the general cache
  std::unordered_map<void*, std::size_t> live;            // block -> rounded size
  std::map<GraphPoolId, GraphPool> pools;
  std::unordered_map<void*, GraphPoolId> pool_of;         // blocks owned by a graph pool
  GraphPoolId next_pool = 1;
  DeviceMemoryStats stats;
  // Tests set CXR_POISON_DEVICE_MEMORY=1 so that every allocation starts as NaN.
  const bool poison = std::getenv("CXR_POISON_DEVICE_MEMORY") != nullptr;

  void* allocate(std::size_t bytes) {
    const std::size_t size = round_size(bytes);
    std::lock_guard<std::mutex> lock(mutex);
    const GraphPoolId pool_id = t_graph_pool;
    GraphPool* pool = nullptr;
    if (pool_id != 0) {
      auto pit = pools.find(pool_id);
      CXR_CHECK(pit != pools.end() && !pit->second.released, "device_alloc: graph pool ", pool_id, " does not exist");
      pool = &pit->second;
    }
    FreeLists& lists = pool ? pool->free_blocks : free_blocks;
    auto it = lists.find(size);
    void* ptr = nullptr;
    if (it != lists.end() && !it->second.empty()) {
      ptr = it->second.back();
      it->second.pop_back();
      if (!pool) stats.cached -= size;
      ++stats.cache_hits;
    } else {
      ptr = runtime_alloc_locked(bytes, size);
      ++stats.runtime_allocs;
      if (pool) {
        pool_of[ptr] = pool_id;
        stats.graph_pool_reserved += size;
      }
    }
    if (poison) backend::memset_device(ptr, 0xFF, size);  // NaN in every f32: unwritten outputs show
    live[ptr] = size;
    stats.in_use += size;
    if (stats.in_use > stats.peak_in_use) stats.peak_in_use = stats.in_use;
    return ptr;
  }

  // cudaMalloc through the backend; on failure the cache goes back to the driver and the
  // request is retried once. A request above the free memory is not sent to the runtime.
  void* runtime_alloc_locked(std::size_t bytes, std::size_t size) {
    std::string runtime_error;
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (attempt == 1) {
        if (stats.cached == 0) break;  // nothing to give back: the retry would fail alike
        release_cache_locked();
      }
      std::size_t free_b = 0, total_b = 0;
      if (!free_memory(free_b, total_b) || size <= free_b) {
        try {
          return backend::device_malloc(size);
        } catch (const Error& e) {
          runtime_error = e.what();
        }
      }
    }
    std::size_t free_b = 0, total_b = 0;
    free_memory(free_b, total_b);
    std::string msg = "CUDA out of memory: requested " + human_bytes(bytes);
    if (size != bytes) msg += " (" + human_bytes(size) + " rounded)";
    msg += ", " + human_bytes(free_b) + " free of " + human_bytes(total_b) + " on the device; this process holds " +
           human_bytes(stats.in_use) + " in tensors (peak " + human_bytes(stats.peak_in_use) + ")";
    if (!runtime_error.empty()) msg += "; the runtime said: " + runtime_error;
    msg += ". Hint: use a smaller --batch-size (or --image-size), or a smaller model";
    throw DeviceOutOfMemory(msg, bytes, free_b, total_b);
  }

  static bool free_memory(std::size_t& free_b, std::size_t& total_b) {
    try {
      backend::device_memory_info(&free_b, &total_b);
      return true;
    } catch (const Error&) {
      free_b = total_b = 0;
      return false;
    }
  }

  void release(void* ptr) {
    if (!ptr) return;
    std::lock_guard<std::mutex> lock(mutex);
    auto it = live.find(ptr);
    CXR_CHECK(it != live.end(), "device_release: pointer was not allocated by the caching allocator");
    const std::size_t size = it->second;
    live.erase(it);
    stats.in_use -= size;
    auto owner = pool_of.find(ptr);
    if (owner != pool_of.end()) {
      GraphPool& pool = pools.at(owner->second);
      if (!pool.released) {  // stays reserved for its graph
        pool.free_blocks[size].push_back(ptr);
        return;
      }
      pool_of.erase(owner);
      stats.graph_pool_reserved -= size;
    }
    stats.cached += size;
    free_blocks[size].push_back(ptr);
  }

  void release_pool_locked(GraphPoolId id) {
    auto it = pools.find(id);
    if (it == pools.end() || it->second.released) return;
    for (auto& [size, blocks] : it->second.free_blocks)
      for (void* p : blocks) {
        pool_of.erase(p);
        stats.graph_pool_reserved -= size;
        stats.cached += size;
        free_blocks[size].push_back(p);
      }
    it->second.free_blocks.clear();
    it->second.released = true;
  }

  void release_cache_locked() {
    for (auto& [size, blocks] : free_blocks)
      for (void* p : blocks) backend::device_free(p);
    free_blocks.clear();
    stats.cached = 0;
  }
};

CachingAllocator& allocator() {
  static CachingAllocator* a = new CachingAllocator();  // never destroyed: outlives tensors in statics
  return *a;
}

}  // namespace

void* device_alloc(std::size_t bytes) { return allocator().allocate(bytes); }
void device_release(void* ptr) { allocator().release(ptr); }

DeviceMemoryStats device_memory_stats() {
  std::lock_guard<std::mutex> lock(allocator().mutex);
  return allocator().stats;
}

void reset_peak_device_memory() {
  std::lock_guard<std::mutex> lock(allocator().mutex);
  allocator().stats.peak_in_use = allocator().stats.in_use;
}

void empty_device_cache() {
  backend::synchronize();
  std::lock_guard<std::mutex> lock(allocator().mutex);
  allocator().release_cache_locked();
}

GraphPoolId create_graph_pool() {
  std::lock_guard<std::mutex> lock(allocator().mutex);
  const GraphPoolId id = allocator().next_pool++;
  allocator().pools[id];
  return id;
}

void begin_graph_pool(GraphPoolId id) {
  {
    std::lock_guard<std::mutex> lock(allocator().mutex);
    auto it = allocator().pools.find(id);
    CXR_CHECK(it != allocator().pools.end() && !it->second.released, "begin_graph_pool: no graph pool ", id);
  }
  CXR_CHECK(t_graph_pool == 0, "begin_graph_pool: this thread already allocates from graph pool ", t_graph_pool);
  t_graph_pool = id;
}

void end_graph_pool() { t_graph_pool = 0; }

void release_graph_pool(GraphPoolId id) {
  std::lock_guard<std::mutex> lock(allocator().mutex);
  allocator().release_pool_locked(id);
}

bool is_graph_pool_block(const void* ptr) {
  std::lock_guard<std::mutex> lock(allocator().mutex);
  return allocator().pool_of.count(const_cast<void*>(ptr)) > 0;
}

bool pinned_is_page_locked() { return backend::has_device(); }

void* pinned_alloc(std::size_t bytes) {
  if (bytes == 0) bytes = 1;
  if (pinned_is_page_locked()) return backend::pinned_malloc(bytes);
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  CXR_CHECK(p != nullptr, "pinned_alloc: out of host memory requesting ", bytes, " bytes");
  return p;
}

void pinned_release(void* ptr) {
  if (!ptr) return;
  if (pinned_is_page_locked()) backend::pinned_free(ptr);
  else std::free(ptr);
}

}  // namespace cxr
