// worker_state.h: the counting state of one worker OS thread during a launch (internal).
#pragma once

#include <cstdint>

#include "cuda_emu/counting/address_space.h"
#include "cuda_emu/counting/warp_recorder.h"

namespace cuda_emu::counting {

struct worker_state {
  warp_recorder recorder;
  unsigned thread = 0;  // the running CUDA thread (linear index in the block)
  std::uintptr_t smem_begin = 0, smem_end = 0;  // dynamic shared memory
  std::uintptr_t tls_begin = 0, tls_end = 0;    // static TLS block: __shared__ variables
  std::uintptr_t builtins[4][2] = {};           // threadIdx, blockIdx, blockDim, gridDim
  allocation_snapshot allocations;
  std::uint64_t allocations_generation = 0;
  std::uintptr_t last_global_begin = 1, last_global_end = 0;  // the allocation hit last
  std::uint64_t global_atomics = 0, shared_atomics = 0, barriers = 0, mma = 0;

  memory_space classify(std::uintptr_t a);
};

// Non-null while this OS thread runs blocks of a launch: the instrumented accesses of host
// code (and of kernels outside a launch, which cannot happen) fall through on this test.
extern thread_local worker_state* t_counting;

// Called from the sanitizer hooks (tsan_hooks.cpp) for every access of instrumented code.
void memory_access(const volatile void* p, std::uint32_t bytes, bool write, const void* pc);
void atomic_access(const volatile void* p);

// Adds a worker's counts to the launch (launch_report.cpp).
void add_worker_share(const worker_state& w);

}  // namespace cuda_emu::counting
