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

struct CachingAllocator {
  std::mutex mutex;
  std::map<std::size_t, std::vector<void*>> free_blocks;  // rounded size -> blocks
  std::unordered_map<void*, std::size_t> live;            // block -> rounded size
  DeviceMemoryStats stats;
  // Tests set CXR_POISON_DEVICE_MEMORY=1 so that every allocation starts as NaN.
  const bool poison = std::getenv("CXR_POISON_DEVICE_MEMORY") != nullptr;

  void* allocate(std::size_t bytes) {
    const std::size_t size = round_size(bytes);
    std::lock_guard<std::mutex> lock(mutex);
    auto it = free_blocks.find(size);
    void* ptr = nullptr;
    if (it != free_blocks.end() && !it->second.empty()) {
      ptr = it->second.back();
      it->second.pop_back();
      stats.cached -= size;
      ++stats.cache_hits;
    } else {
      ptr = runtime_alloc_locked(bytes, size);
      ++stats.runtime_allocs;
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
    stats.cached += size;
    free_blocks[size].push_back(ptr);
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
