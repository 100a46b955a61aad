// request_cost.h: what one warp request costs the memory system (counting build, see
// docs/emulation.md "Counting memory traffic").
//
// A warp request is one memory instruction executed by the lanes of a warp: up to 32
// (address, size) pairs. The GPU serves it in units, and these functions count them:
//
//   global memory   32-byte sectors. A request touches every 32-byte aligned sector that
//                   holds at least one requested byte. Ideal: the distinct bytes requested,
//                   rounded up to whole sectors. A coalesced fp32 load of 32 lanes asks for
//                   128 contiguous bytes: 4 sectors, ideal 4. Stride 2: 8 sectors, ideal 4.
//   shared memory   wavefronts (passes through the 32 banks of 4 bytes). Word w (= address/4)
//                   lives in bank w % 32. Lanes that read the same word share it (broadcast);
//                   two different words in one bank need two passes. Accesses wider than
//                   4 bytes are split as the hardware does: 8-byte accesses in half-warps,
//                   16-byte accesses in quarter-warps (each phase moves at most 128 bytes).
//                   Wavefronts = sum over phases of the largest number of distinct words in
//                   one bank. Ideal: the distinct words requested / 32, rounded up.
#pragma once

#include <cstdint>

namespace cuda_emu::counting {

struct lane_access {
  std::uint64_t address = 0;
  std::uint32_t bytes = 0;
};

struct request_cost {
  std::uint32_t units = 0;        // sectors (global) or wavefronts (shared)
  std::uint32_t ideal_units = 0;  // the fewest the same distinct bytes could take
  std::uint32_t distinct_bytes = 0;
};

// `lanes[l]` is valid where bit l of `mask` is set.
request_cost global_request_cost(const lane_access* lanes, std::uint32_t mask);
request_cost shared_request_cost(const lane_access* lanes, std::uint32_t mask);

}  // namespace cuda_emu::counting
