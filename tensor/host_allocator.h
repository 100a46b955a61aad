// Host memory for CPU tensors: a cache of large blocks, so that a training or inference loop
// that repeats the same shapes stops asking the kernel for fresh pages every step.
//
// Why: glibc serves a request above its mmap threshold (at most 32 MiB) with mmap and gives it
// back with munmap on free, so every activation of a batch (ResNet-50's first block output at
// batch 32: 103 MB) was new memory each step, and each of its 4 KiB pages cost a page fault,
// a zeroing and a cgroup charge on first touch: 12 % of a ResNet-50 inference profile on this
// machine (perf, kernel symbols exc_page_fault / clear_page / memcg_*).
//
// Blocks of at least 1 MiB are rounded up to 2 MiB, aligned to 2 MiB and kept on a free list
// per rounded size when released; a later request of the same rounded size takes one back.
// Smaller requests go to aligned_alloc / free as before (glibc's arenas reuse those already).
// The cache never holds more than the most the process had in use at once (its peak), so the
// footprint stays below twice the peak; empty_host_cache() returns it all.
// Built with AddressSanitizer the cache is off, so that a use after free stays visible.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cxr {

void* host_alloc(std::size_t bytes);            // 64-byte aligned (2 MiB for large blocks)
void host_release(void* ptr, std::size_t bytes);  // bytes: as passed to host_alloc

struct HostMemoryStats {
  std::size_t in_use = 0;        // bytes of large blocks handed out (rounded)
  std::size_t cached = 0;        // bytes of large blocks on the free lists
  std::size_t peak_in_use = 0;   // high-water mark of in_use
  std::uint64_t system_allocs = 0;  // large blocks that came from the system
  std::uint64_t cache_hits = 0;     // large blocks that came from the cache
};
HostMemoryStats host_memory_stats();
void empty_host_cache();

}  // namespace cxr
