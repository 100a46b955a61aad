// occupancy.cpp: the CUDA occupancy rules for an H100 (compute capability 9.0).
//
// A multiprocessor holds at most 64 warps (2048 threads) and 32 blocks, 65,536 registers and
// 228 KiB of shared memory. Registers are allocated per warp in units of 256 (a thread's count
// rounded up to a multiple of 8, times 32 lanes); shared memory per block in units of 128
// bytes, plus 1 KiB the system reserves per block. The number of blocks that fit is the
// smallest of the four limits; occupancy = their warps / 64.
#include "cuda_emu/memory_counters.h"

#include <algorithm>

double cuda_emu::h100_occupancy(unsigned threads_per_block, int registers_per_thread, std::uint64_t smem_per_block) {
  constexpr unsigned max_warps = 64, max_blocks = 32, registers = 65536, smem_bytes = 228 * 1024;
  if (threads_per_block == 0 || threads_per_block > 1024) return 0;
  const unsigned warps = (threads_per_block + 31) / 32;
  unsigned blocks = std::min(max_blocks, max_warps / warps);
  if (registers_per_thread > 0) {
    if (registers_per_thread > 255) return 0;
    const unsigned per_warp = (static_cast<unsigned>(registers_per_thread) * 32 + 255) / 256 * 256;
    blocks = std::min(blocks, registers / per_warp / warps);
  }
  if (smem_per_block > 0) {
    if (smem_per_block > 227 * 1024) return 0;
    const std::uint64_t per_block = (smem_per_block + 127) / 128 * 128 + 1024;
    blocks = std::min<std::uint64_t>(blocks, smem_bytes / per_block);
  }
  return static_cast<double>(blocks * warps) / max_warps;
}
