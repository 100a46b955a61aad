// Counting build self-tests: kernels with known memory patterns, exact counts (docs/emulation.md
// "Counting memory traffic"). Each number below is worked out by hand in the comment beside it.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "cuda_emu/counting/request_cost.h"
#include "cuda_emu/memory_counters.h"
#include "tests/emu_counters/counting_kernels.h"

namespace t = cxr::emu_counters_test;
using cuda_emu::last_launch_counters;

TEST_SUITE("emu-counters") {

TEST_CASE("a coalesced fp32 load: one request per warp, 4 sectors each") {
  t::strided_copy(1);
  const auto c = last_launch_counters();
  CHECK(c.kernel.find("strided_copy_kernel") != std::string::npos);
  CHECK(c.block[0] == 128);
  CHECK(c.global_load.requests == 4);      // 4 warps, one load instruction
  CHECK(c.global_load.units == 16);        // 32 lanes x 4 B = 128 B = 4 sectors per request
  CHECK(c.global_load.ideal_units == 16);
  CHECK(c.global_load.bytes == 512);
  CHECK(c.global_store.requests == 4);
  CHECK(c.global_store.units == 16);
  CHECK(c.shared_load.requests == 0);
  CHECK(c.shared_store.requests == 0);
}

TEST_CASE("a stride-2 fp32 load touches 8 sectors per request, twice the ideal") {
  t::strided_copy(2);
  const auto c = last_launch_counters();
  CHECK(c.global_load.requests == 4);
  CHECK(c.global_load.units == 32);        // 128 B of data spread over 256 B: 8 sectors
  CHECK(c.global_load.ideal_units == 16);
  CHECK(c.global_store.units == 16);       // the store stays coalesced
  t::strided_copy(8);
  CHECK(last_launch_counters().global_load.units == 4 * 32);  // stride 8: one sector per lane
}

TEST_CASE("a 16-byte vector load: one request of 16 sectors per warp") {
  t::vector_copy();
  const auto c = last_launch_counters();
  CHECK(c.global_load.requests == 1);      // one float4 load instruction, not four
  CHECK(c.global_load.units == 16);        // 32 lanes x 16 B = 512 B
  CHECK(c.global_load.ideal_units == 16);
  CHECK(c.global_store.requests == 1);
  CHECK(c.global_store.units == 16);
}

TEST_CASE("a transposed shared-memory tile: 32-way bank conflict without padding, none with it") {
  t::transposed_tile(0);
  auto c = last_launch_counters();
  CHECK(c.barriers == 1);
  CHECK(c.global_load.requests == 32);     // 32 warps, coalesced rows
  CHECK(c.global_load.units == 128);
  CHECK(c.shared_store.requests == 32);
  CHECK(c.shared_store.units == 32 * 32);  // the 32 lanes write 32 words of one bank: 32 passes
  CHECK(c.shared_store.ideal_units == 32);
  CHECK(c.shared_load.requests == 32);
  CHECK(c.shared_load.units == 32);        // a row: 32 consecutive words, 32 banks
  CHECK(c.shared_load.ideal_units == 32);

  t::transposed_tile(1);
  c = last_launch_counters();
  CHECK(c.shared_store.requests == 32);
  CHECK(c.shared_store.units == 32);       // row pitch 33 words: lane l in bank (l + y) % 32
  CHECK(c.shared_load.units == 32);
}

TEST_CASE("a broadcast read: every lane reads one word, one wavefront and one sector") {
  t::broadcast_read();
  const auto c = last_launch_counters();
  CHECK(c.shared_store.requests == 1);     // only warp 0 fills s[]
  CHECK(c.shared_store.units == 1);
  CHECK(c.shared_load.requests == 2);      // s[0], once per warp
  CHECK(c.shared_load.units == 2);
  CHECK(c.shared_load.ideal_units == 2);
  CHECK(c.global_load.requests == 3);      // x[lane] (warp 0), x[0] (both warps)
  CHECK(c.global_load.units == 4 + 1 + 1);
  CHECK(c.global_load.ideal_units == 4 + 1 + 1);
}

TEST_CASE("dynamic shared memory: a stride-2 store conflicts two-way, a float4 read does not") {
  t::dynamic_smem_patterns();
  const auto c = last_launch_counters();
  CHECK(c.dynamic_smem_bytes == 512);
  CHECK(c.shared_store.requests == 2);     // s[2 lane] and s[2 lane + 1]
  CHECK(c.shared_store.units == 2 * 2);    // 32 words over the 16 even (odd) banks: 2 each
  CHECK(c.shared_store.ideal_units == 2);
  CHECK(c.shared_load.requests == 1);      // one float4 load
  CHECK(c.shared_load.units == 4);         // 4 quarter-warp phases of 128 B, no conflict
  CHECK(c.shared_load.ideal_units == 4);
}

TEST_CASE("atomics are counted per thread, in global and in shared memory") {
  t::atomics();
  const auto c = last_launch_counters();
  CHECK(c.global_atomics == 3 * 64);
  CHECK(c.shared_atomics == 3 * 64);
  CHECK(c.barriers == 3);                  // one per block
}

TEST_CASE("request cost by hand: a misaligned coalesced load straddles one more sector") {
  cuda_emu::counting::lane_access lanes[32];
  for (unsigned l = 0; l < 32; ++l) lanes[l] = {4096 + 4 + 4 * l, 4};
  const auto c = cuda_emu::counting::global_request_cost(lanes, ~0u);
  CHECK(c.units == 5);
  CHECK(c.ideal_units == 4);
  CHECK(c.distinct_bytes == 128);
  const auto half = cuda_emu::counting::global_request_cost(lanes, 0x0000ffffu);
  CHECK(half.units == 3);                  // bytes 4100..4163: sectors 128, 129, 130
  CHECK(half.ideal_units == 2);
}

TEST_CASE("H100 occupancy follows the CUDA rules") {
  CHECK(cuda_emu::h100_occupancy(256, 32, 0) == doctest::Approx(1.0));     // 8 blocks x 8 warps
  CHECK(cuda_emu::h100_occupancy(256, 64, 0) == doctest::Approx(0.5));     // 65536 / (64 x 256)
  CHECK(cuda_emu::h100_occupancy(256, 255, 0) == doctest::Approx(0.125));  // 8 warps of 8160 regs
  CHECK(cuda_emu::h100_occupancy(128, 32, 48 * 1024) == doctest::Approx(4 * 4 / 64.0));
  CHECK(cuda_emu::h100_occupancy(32, 16, 0) == doctest::Approx(0.5));      // 32 blocks at most
}

}  // TEST_SUITE
