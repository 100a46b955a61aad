// Host memory for CPU tensors: a cache of large blocks, so that a training or inference loop
// that repeats the same shapes stops asking the kernel for fresh pages every step.
//
// Why: glibc serves a request above its mmap threshold (at most 32 MiB) with mmap and gives it
// back with munmap on free, so every activation of a batch (ResNet-50's first block output at
// batch 32: 103 MB) was new memory each step, and each of its 4 KiB pages cost a page fault,
// a zeroing and a cgroup charge on first touch: 12 % of a ResNet-50 inference profile on this
// machine (perf, kernel symbols exc_page_fault / clear_page / memcg_*).
//
// Blocks of at least 1 MiB are rounded up to 2 MiB, aligned to 2 MiB and kept on free lists by
// size when released; a later request takes the smallest cached block that holds it, if that is
// at most twice its rounded size (a model's many shapes then share blocks instead of each
// needing its own). Smaller requests go to aligned_alloc / free as before (glibc's arenas
// reuse those already). The cache holds at most twice the most the process had in use at once:
// the cap a model's forward needs to stop asking the system (measured: an exact-size cache
// capped at the peak still took ~50 fresh blocks per ConvNeXt-Tiny forward at batch 32; this
// policy takes none after the first forward, holding 2.0-2.3x the peak for resnet50,
// efficientnet_b0 and convnext_tiny). empty_host_cache() returns it all.
// Built with AddressSanitizer the cache is off, so that a use after free stays visible;
// CXR_HOST_CACHE=0 turns it off in any build (plain aligned_alloc / free, as before it existed).
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
bool host_cache_enabled();  // false in AddressSanitizer builds and with CXR_HOST_CACHE=0

}  // namespace cxr
