// The host block cache (tensor/host_allocator.h). One mutex guards the lists: the loader's
// threads allocate batches while the compute thread allocates activations.
#include "tensor/host_allocator.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

namespace cxr {
namespace {

constexpr std::size_t kLargeLimit = std::size_t{1} << 20;  // cached from here up
constexpr std::size_t kGranule = std::size_t{2} << 20;     // and rounded to this
constexpr std::size_t kCacheOverPeak = 2;                   // cached bytes <= this x the peak in use

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kCache = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kCache = false;
#else
constexpr bool kCache = true;
#endif
#else
constexpr bool kCache = true;
#endif

// The cache in this process: built in, and not turned off by CXR_HOST_CACHE=0.
bool cache_on() {
  static const bool on = [] {
    const char* v = std::getenv("CXR_HOST_CACHE");
    return kCache && !(v != nullptr && std::string(v) == "0");
  }();
  return on;
}

std::size_t round_large(std::size_t bytes) { return (bytes + kGranule - 1) / kGranule * kGranule; }

struct HostCache {
  std::mutex mutex;
  std::map<std::size_t, std::vector<void*>> free_blocks;  // rounded size -> blocks
  std::unordered_map<void*, std::size_t> live;             // block handed out -> its size
  HostMemoryStats stats;

  void* allocate(std::size_t bytes) {
    const std::size_t size = round_large(bytes);
    {
      std::lock_guard<std::mutex> lock(mutex);
      // The smallest cached block that holds the request, if it is at most twice its size.
      auto it = free_blocks.lower_bound(size);
      if (it != free_blocks.end() && it->first <= 2 * size) {
        const std::size_t block = it->first;
        void* p = it->second.back();
        it->second.pop_back();
        if (it->second.empty()) free_blocks.erase(it);
        stats.cached -= block;
        ++stats.cache_hits;
        take_locked(p, block);
        return p;
      }
    }
    void* p = std::aligned_alloc(kGranule, size);
    if (p == nullptr) {  // give the cache back and try once more
      empty();
      p = std::aligned_alloc(kGranule, size);
      if (p == nullptr) return nullptr;
    }
    // Transparent huge pages where the system leaves them to madvise: one fault and one TLB
    // entry per 2 MiB instead of per 4 KiB (advice only; ignored where unsupported).
    madvise(p, size, MADV_HUGEPAGE);
    std::lock_guard<std::mutex> lock(mutex);
    ++stats.system_allocs;
    take_locked(p, size);
    return p;
  }

  void release(void* p) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      auto it = live.find(p);
      if (it == live.end()) {  // not a cache block (cannot happen through Storage): the system's
        std::free(p);
        return;
      }
      const std::size_t block = it->second;
      live.erase(it);
      stats.in_use -= block;
      if (stats.cached + block <= kCacheOverPeak * stats.peak_in_use) {
        free_blocks[block].push_back(p);
        stats.cached += block;
        return;
      }
    }
    std::free(p);
  }

  void empty() {
    std::map<std::size_t, std::vector<void*>> blocks;
    {
      std::lock_guard<std::mutex> lock(mutex);
      blocks.swap(free_blocks);
      stats.cached = 0;
    }
    for (auto& [size, list] : blocks)
      for (void* p : list) std::free(p);
  }

  void take_locked(void* p, std::size_t block) {
    live[p] = block;
    stats.in_use += block;
    stats.peak_in_use = std::max(stats.peak_in_use, stats.in_use);
  }
};

HostCache& cache() {
  static HostCache* c = new HostCache();  // never destroyed: outlives tensors in statics
  return *c;
}

}  // namespace

void* host_alloc(std::size_t bytes) {
  if (!cache_on() || bytes < kLargeLimit) return std::aligned_alloc(64, std::max<std::size_t>(64, (bytes + 63) / 64 * 64));
  return cache().allocate(bytes);
}

void host_release(void* ptr, std::size_t bytes) {
  if (ptr == nullptr) return;
  if (!cache_on() || bytes < kLargeLimit) return std::free(ptr);
  cache().release(ptr);
}

HostMemoryStats host_memory_stats() {
  std::lock_guard<std::mutex> lock(cache().mutex);
  return cache().stats;
}

void empty_host_cache() { cache().empty(); }

bool host_cache_enabled() { return cache_on(); }

}  // namespace cxr
