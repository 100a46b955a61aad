// address_space.h: which memory an address belongs to (internal, counting build).
//
//   global   inside a live cudaMalloc allocation (the table is copied at each launch that
//            follows a change, so the lookup during a kernel takes no lock);
//   shared   inside the running block's dynamic shared memory, or inside the worker thread's
//            static TLS block, where every `__shared__` variable (`static thread_local`) lives;
//            the built-in variables threadIdx, blockIdx, blockDim, gridDim are excluded;
//   other    everything else: the thread's stack (registers, local arrays), the kernel's
//            arguments (the launch body), __constant__ variables, host memory. Not counted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace cuda_emu::counting {

enum class memory_space : std::uint8_t { other, global, shared };

// The live device allocations, sorted by address (one copy per launch).
struct allocation_snapshot {
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> ranges;  // [begin, end)
  bool contains(std::uintptr_t a) const;
};
// A fresh snapshot if the allocations changed since `generation`.
bool snapshot_allocations(allocation_snapshot& out, std::uint64_t& generation);

// The calling OS thread's static TLS block of the executable: [begin, end).
std::pair<std::uintptr_t, std::uintptr_t> static_tls_block();

}  // namespace cuda_emu::counting
