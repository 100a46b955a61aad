// address_space.cpp: device allocations and the static TLS block (see address_space.h).
#include "cuda_emu/counting/address_space.h"

#include <link.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "cuda_emu/counting/hooks.h"

namespace cuda_emu::counting {

namespace {
struct allocation_table {
  std::mutex mutex;
  std::map<std::uintptr_t, std::uintptr_t> ranges;  // begin -> end
  std::uint64_t generation = 1;
};
allocation_table& table() {
  static allocation_table* t = new allocation_table;  // never destroyed: frees may come late
  return *t;
}

struct tls_segment {
  std::uintptr_t bytes = 0;  // the executable's TLS block, rounded up to its alignment
};
int find_tls(dl_phdr_info* info, std::size_t, void* out) {
  for (int i = 0; i < info->dlpi_phnum; ++i)
    if (info->dlpi_phdr[i].p_type == PT_TLS) {
      const std::uintptr_t align = std::max<std::uintptr_t>(info->dlpi_phdr[i].p_align, 1);
      static_cast<tls_segment*>(out)->bytes = (info->dlpi_phdr[i].p_memsz + align - 1) / align * align;
      break;
    }
  return 1;  // the first object is the executable
}
}  // namespace

void device_allocated(const void* p, std::size_t bytes) {
  auto& t = table();
  std::lock_guard lock(t.mutex);
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  t.ranges[a] = a + bytes;
  ++t.generation;
}

void device_freed(const void* p) {
  auto& t = table();
  std::lock_guard lock(t.mutex);
  t.ranges.erase(reinterpret_cast<std::uintptr_t>(p));
  ++t.generation;
}

bool snapshot_allocations(allocation_snapshot& out, std::uint64_t& generation) {
  auto& t = table();
  std::lock_guard lock(t.mutex);
  if (generation == t.generation) return false;
  out.ranges.assign(t.ranges.begin(), t.ranges.end());
  generation = t.generation;
  return true;
}

bool allocation_snapshot::contains(std::uintptr_t a) const {
  auto it = std::upper_bound(ranges.begin(), ranges.end(), a,
                             [](std::uintptr_t v, const auto& r) { return v < r.first; });
  if (it == ranges.begin()) return false;
  --it;
  return a < it->second;
}

std::pair<std::uintptr_t, std::uintptr_t> static_tls_block() {
  static const tls_segment segment = [] {
    tls_segment s;
    dl_iterate_phdr(find_tls, &s);
    return s;
  }();
  // x86-64 (TLS variant II): the executable's block ends at the thread pointer.
  const auto end = reinterpret_cast<std::uintptr_t>(__builtin_thread_pointer());
  return {end - segment.bytes, end};
}

}  // namespace cuda_emu::counting
