// Host launchers of the counting self-test kernels (tests/emu_counters/counting_kernels.cu).
// Each runs one small kernel with a known memory pattern; the test then reads
// cuda_emu::last_launch_counters(). Compiled only in the counting build (preset emu-counters).
#pragma once

namespace cxr::emu_counters_test {

// y[i] = x[i * stride] for 4 warps (128 threads, one block): stride 1 is a coalesced load.
void strided_copy(int stride);
// y[i] = x[i] with float4 elements, one warp (a 16-byte vector load and store per lane).
void vector_copy();
// A 32x32 tile through static __shared__ memory, written column-wise (tile[x][y]) and read
// row-wise, block (32, 32). padding 0: float tile[32][32]; padding 1: float tile[32][33].
void transposed_tile(int padding);
// 2 warps: lanes of warp 0 fill s[lane], then every thread reads s[0] and x[0] (broadcasts).
void broadcast_read();
// One warp writes dynamic shared memory s[2 * lane] (two-way bank conflict), then reads
// s4[lane] as float4 (16-byte accesses, conflict-free).
void dynamic_smem_patterns();
// 3 blocks x 64 threads: atomicAdd(&counter, 1) each, one in global and one in shared memory.
void atomics();

}  // namespace cxr::emu_counters_test
