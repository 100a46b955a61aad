// Host launchers of the emulator self-test kernels (tests/emu/emu_test_kernels.cu).
// Plain C++ types only, so tests/emu/test_emulator.cpp needs no CUDA header. These kernels are
// compiled only for the emulated device (cxr_tests_emu), never by nvcc.
#pragma once

#include <cstdint>
#include <vector>

namespace cxr::emu_test {

struct dims {
  unsigned x = 1, y = 1, z = 1;
};

// For every thread of the grid, count[global linear thread id] += 1 (atomically). Also sets
// `dims_ok` to false if any thread saw blockDim/gridDim differ from the launch.
std::vector<int> index_cover(dims grid, dims block, bool& dims_ok);

// Shared-memory reversal of each block of 256 values (static __shared__, one barrier).
std::vector<int> reverse_blocks(const std::vector<int>& in);

// Sum of each block of `threads` values: tree reduction in dynamic shared memory.
// correct = false drops the __syncthreads() inside the tree loop (a deliberate race).
std::vector<float> block_sums(const std::vector<float>& in, unsigned threads, bool correct);

// out[t] = value thread t+1 wrote to shared memory, read with (or without) a barrier between.
std::vector<int> neighbour_read(unsigned threads, bool with_barrier);

// Every shuffle variant on a block of `threads` threads; see the .cu file for the layout.
std::vector<std::int64_t> shuffles_int(unsigned threads);
std::vector<float> shuffles_float(unsigned threads);
std::vector<unsigned> shuffles_unsigned(unsigned threads);
std::vector<double> shuffles_double(unsigned threads);
// The shuffle cases: {kind, parameter, width}; kind 0 = idx, 1 = up, 2 = down, 3 = xor.
struct shuffle_case {
  int kind, param, width;
};
std::vector<shuffle_case> shuffle_cases();

// Per thread: ballot, any, all of predicates (see .cu), and __activemask().
std::vector<unsigned> votes(unsigned threads);

// Warp-shuffle sum reduction of each warp's values; one result per warp.
std::vector<float> warp_sums(const std::vector<float>& in);

// Atomics from `blocks` x `threads` threads. Returns {int sum, unsigned sum, ull sum, max, min,
// cas-lock counter, exch-check, sub result} and the float / double sums.
struct atomic_results {
  int int_sum;
  unsigned uint_sum;
  unsigned long long ull_sum;
  int max_value, min_value;
  int locked_counter;
  unsigned sub_result;
  float float_sum;
  double double_sum;
};
atomic_results atomics(unsigned blocks, unsigned threads);

// Dynamic shared memory of `bytes`: returns {bytes seen as 0xFF at block start, bytes written
// and read back correctly}, summed over the block's threads.
std::vector<std::uint64_t> dynamic_smem_check(unsigned bytes, unsigned threads, unsigned blocks);

// Threads with threadIdx.x % 3 == 0 (thread 0 included) or >= n return at once; the others
// reverse their values through shared memory with __syncthreads between.
std::vector<int> early_exit_reverse(unsigned threads, unsigned n);

// __syncthreads_count / _or / _and of predicates; one triple per block.
std::vector<int> barrier_reductions(unsigned threads);

// C = A * B with 16x16 shared-memory tiles (A: m x k, B: k x n, row-major).
std::vector<float> tiled_matmul(const std::vector<float>& a, const std::vector<float>& b, int m, int k, int n);

// out[i] = 2 * in[i] + 1: a kernel with no barrier (runs in plain mode).
std::vector<float> elementwise(const std::vector<float>& in);

// Launch with the given configuration through cuda_emu::launch; returns cudaGetLastError()
// as an int (0 = success) and whether the kernel ran.
int raw_launch(dims grid, dims block, std::size_t smem_bytes, bool& ran);

// Same through cxr::cuda::launch_kernel, which throws cxr::Error on a bad configuration.
void checked_launch(dims grid, dims block, std::size_t smem_bytes);

// 32 rounds of __shfl_xor_sync in a loop where lanes arrive in very different orders (lanes
// skip ahead by doing extra work); checks the double-buffered slots. One value per thread.
std::vector<int> shuffle_rounds(unsigned threads, int rounds);

// Writes out[0..n] (one past the end) from a kernel: for the sanitizer build, see the test.
void out_of_bounds_write(int n);

// Fiber switches performed by the emulator so far (cuda_emu::context_switches()).
std::uint64_t context_switches();

// Tensor cores through nvcuda::wmma (cuda_emu/wmma.h), one warp: D = A B + C with TF32 m16n16k8.
// A is 16x8, stored row-major when a_row_major, else column-major; B is 8x16 likewise; C and D
// are 16x16 row-major. round_inputs applies __float_to_tf32 to every loaded A and B element.
std::vector<float> wmma_tf32(const std::vector<float>& a, bool a_row_major, const std::vector<float>& b,
                             bool b_row_major, const std::vector<float>& c, bool round_inputs);
// __float_to_tf32 of each value, computed in a kernel.
std::vector<float> float_to_tf32(const std::vector<float>& in);

}  // namespace cxr::emu_test
