// Host side of multi-tensor apply (see kernels/cuda/multi_tensor.cuh): builds the chunk
// table and keeps the last kCacheEntries uploaded tables, keyed by their whole content.
//
// Layout of one uploaded table (one device allocation, 8-byte aligned pieces):
//   numel[T] (int64) | block_start[B] (int64) | ptrs[L*T] (pointers) | block_tensor[B] (int32)
// A cache hit costs one comparison of the key (a few KiB for ResNet-50) and no copy. A miss
// uploads with a synchronous copy (it happens once per distinct parameter list).
// CUDA graphs: a table looked up while the compute stream is capturing is pinned (never
// evicted: the graph reads it at every replay; pinned tables stay for the process's life,
// a few KiB each, and do not count against kCacheEntries), and a miss during a capture is an
// error (the upload would synchronise; warm up eagerly first).
#include <cstring>
#include <mutex>

#include "kernels/cuda/multi_tensor.cuh"
#include "tensor/allocator.h"
#include "tensor/backend.h"

namespace cxr::cuda {
namespace {

constexpr std::size_t kCacheEntries = 8;

struct CachedTable {
  std::vector<std::uint64_t> key;
  void* device = nullptr;
  MultiTensorTable table;
  std::uint64_t last_use = 0;
  bool pinned = false;  // used by a captured graph
};

struct TableCache {
  std::mutex mutex;
  std::vector<CachedTable> entries;
  std::uint64_t clock = 0;
};

TableCache& cache() {
  static TableCache* c = new TableCache();  // never destroyed: it outlives the allocator
  return *c;
}

}  // namespace

MultiTensorTable multi_tensor_table(const std::vector<std::vector<float*>>& lists,
                                    const std::vector<std::int64_t>& numel, std::int64_t chunk) {
  CXR_CHECK(chunk > 0 && chunk % 4 == 0, "multi_tensor_table: chunk must be a positive multiple of 4, found ", chunk);
  CXR_CHECK(!lists.empty() && lists.size() <= static_cast<std::size_t>(kMultiTensorMaxLists),
            "multi_tensor_table: expected 1 to ", kMultiTensorMaxLists, " lists, found ", lists.size());
  const std::size_t num_lists = lists.size();
  const std::size_t num_tensors = numel.size();
  for (std::size_t l = 0; l < num_lists; ++l)
    CXR_CHECK(lists[l].size() == num_tensors, "multi_tensor_table: list ", l, " has ", lists[l].size(),
              " tensors, expected ", num_tensors);

  std::vector<std::uint64_t> key;
  key.reserve(2 + num_tensors * (1 + num_lists));
  key.push_back(static_cast<std::uint64_t>(chunk));
  key.push_back(num_lists);
  for (std::size_t t = 0; t < num_tensors; ++t) key.push_back(static_cast<std::uint64_t>(numel[t]));
  for (const auto& list : lists)
    for (float* p : list) key.push_back(reinterpret_cast<std::uintptr_t>(p));

  const bool capturing = backend::stream_is_capturing(backend::compute_stream_handle());
  TableCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  ++c.clock;
  for (CachedTable& e : c.entries) {
    if (e.key == key) {
      e.last_use = c.clock;
      e.pinned = e.pinned || capturing;
      return e.table;
    }
  }
  CXR_CHECK(!capturing, "multi_tensor_table: a tensor list seen for the first time during a CUDA graph capture ",
            "(its table upload would synchronise); run the work once eagerly before capturing it");

  // Build the table on the host.
  std::vector<int> block_tensor;
  std::vector<std::int64_t> block_start;
  for (std::size_t t = 0; t < num_tensors; ++t)
    for (std::int64_t s = 0; s < numel[t]; s += chunk) {
      block_tensor.push_back(static_cast<int>(t));
      block_start.push_back(s);
    }
  const std::size_t nb = block_tensor.size();
  CXR_CHECK(nb < (1u << 31), "multi_tensor_table: too many chunks (", nb, ")");
  const std::size_t off_numel = 0;
  const std::size_t off_start = off_numel + num_tensors * 8;
  const std::size_t off_ptrs = off_start + nb * 8;
  const std::size_t off_btensor = off_ptrs + num_lists * num_tensors * sizeof(float*);
  const std::size_t bytes = off_btensor + nb * 4 + 8;
  std::vector<unsigned char> host(bytes, 0);
  if (num_tensors) std::memcpy(host.data() + off_numel, numel.data(), num_tensors * 8);
  if (nb) std::memcpy(host.data() + off_start, block_start.data(), nb * 8);
  for (std::size_t l = 0; l < num_lists; ++l)
    if (num_tensors)
      std::memcpy(host.data() + off_ptrs + l * num_tensors * sizeof(float*), lists[l].data(),
                  num_tensors * sizeof(float*));
  if (nb) std::memcpy(host.data() + off_btensor, block_tensor.data(), nb * 4);

  // Evict the least recently used entry that no graph uses, when full.
  std::size_t unpinned = 0;
  for (const CachedTable& e : c.entries) unpinned += e.pinned ? 0 : 1;
  if (unpinned >= kCacheEntries) {  // pinned tables do not count: they must not push out the others
    auto lru = c.entries.end();
    for (auto it = c.entries.begin(); it != c.entries.end(); ++it)
      if (!it->pinned && (lru == c.entries.end() || it->last_use < lru->last_use)) lru = it;
    device_release(lru->device);  // stream order protects kernels still using it
    c.entries.erase(lru);
  }
  CachedTable e;
  e.key = std::move(key);
  e.device = device_alloc(bytes);
  backend::copy(e.device, host.data(), bytes, backend::CopyKind::HostToDevice);
  auto* base = static_cast<unsigned char*>(e.device);
  e.table.num_blocks = static_cast<int>(nb);
  e.table.num_tensors = static_cast<int>(num_tensors);
  e.table.chunk = chunk;
  e.table.numel = reinterpret_cast<const std::int64_t*>(base + off_numel);
  e.table.block_start = reinterpret_cast<const std::int64_t*>(base + off_start);
  e.table.ptrs = reinterpret_cast<float* const*>(base + off_ptrs);
  e.table.block_tensor = reinterpret_cast<const int*>(base + off_btensor);
  e.last_use = c.clock;
  c.entries.push_back(std::move(e));
  return c.entries.back().table;
}

}  // namespace cxr::cuda
