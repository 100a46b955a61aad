// memory_counters.h: what the memory system would see of each kernel launch, counted on the
// emulated device. Only in the counting build (preset `emu-counters`, CXR_EMU_COUNTERS=1);
// docs/emulation.md "Counting memory traffic" explains the rules.
//
// Every global and shared memory access of a kernel is attributed to its CUDA thread, warp and
// access site (the instruction). The accesses of the lanes of a warp at the same site and the
// same dynamic occurrence (the n-th time each lane executes that site) form one warp request,
// as one instruction does on the GPU. A request costs 32-byte sectors (global memory) or
// wavefronts through the 32 banks of 4 bytes (shared memory): cuda_emu/counting/request_cost.h.
//
// With CXR_EMU_COUNTERS=<file> in the environment, every launch appends one JSON line there.
#pragma once

#include <cstdint>
#include <string>

namespace cuda_emu {

// Requests and their cost for one kind of access (global load, global store, shared ...).
struct access_counters {
  std::uint64_t requests = 0;     // warp-level memory instructions
  std::uint64_t units = 0;        // global: 32-byte sectors; shared: bank wavefronts
  std::uint64_t ideal_units = 0;  // the fewest units the same bytes could take
  std::uint64_t bytes = 0;        // distinct bytes requested, summed over requests
  void add(const access_counters& o) {
    requests += o.requests;
    units += o.units;
    ideal_units += o.ideal_units;
    bytes += o.bytes;
  }
};

struct launch_counters {
  std::string kernel;  // the kernel function's name (demangled, without its parameters)
  std::string op;      // the label set by set_counters_label (empty if none)
  double op_floor_bytes = 0;
  unsigned grid[3] = {1, 1, 1}, block[3] = {1, 1, 1};
  std::uint64_t dynamic_smem_bytes = 0;
  access_counters global_load, global_store, shared_load, shared_store;
  std::uint64_t barriers = 0;        // block-wide __syncthreads executed (one per block per barrier)
  std::uint64_t global_atomics = 0;  // atomic read-modify-writes of threads on global memory
  std::uint64_t shared_atomics = 0;  // ... on shared memory
  std::uint64_t mma = 0;             // warp-level wmma::mma_sync calls (tensor-core MMAs)
  // From ptxas (sm_90) when CXR_EMU_RESOURCES names a table (scripts/kernel_resources); -1: unknown.
  int registers = -1;
  int static_smem_bytes = -1;
  double h100_occupancy = -1;  // active warps / 64 that registers and shared memory allow
};

// True in the counting build (the functions below exist only there).
bool counting_build();

// Labels the following launches (until the next call) with an op name and the op's fewest
// bytes (bench/bench_util.h's floor); both go into the JSON lines.
void set_counters_label(const std::string& op, double floor_bytes);

// The counters of the most recent launch made by this process.
launch_counters last_launch_counters();

// The occupancy a kernel gets on an H100 (sm_90, CUDA occupancy rules): active warps per SM
// / 64. 0 when the block cannot run at all.
double h100_occupancy(unsigned threads_per_block, int registers_per_thread, std::uint64_t smem_per_block);

}  // namespace cuda_emu
