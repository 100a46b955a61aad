// Dropout and drop-path on CUDA: y_i = x_i * keep(offset + i / group) * scale.
//
// dropout_apply_kernel: one thread per element, grid-stride. The mask is recomputed from
//   (seed, counter) by the splitmix64-based hash of kernels/common/random.h (4 64-bit
//   multiplies per element, ~20 integer instructions): no mask tensor is stored or read, so
//   traffic is 8 bytes/element both forward and backward (memory bound; the H100's integer
//   throughput covers the hash with room to spare). For drop-path (group = S) neighbouring
//   threads hash the same counter; that is cheap and keeps one kernel for both.
//   The offset of element 0 is offset_base + (offset_ptr ? *offset_ptr : 0): by value, or
//   read from device memory when the kernel runs (the module's counter on the device, so a
//   replayed CUDA graph uses the counter of the replay; one 8-byte load per thread, the same
//   address for all, served by L1/L2).
// mask_counter_advance_kernel: one thread; counters = {next, used} (two u64, 16 bytes read
//   and written): used = next; next += count. Enqueued before a training forward's mask kernel.
// Same formula as the CPU reference, in the same float arithmetic, so masks agree bit for bit.
#include <algorithm>

#include "kernels/common/cuda.cuh"
#include "kernels/dropout.h"

namespace cxr::cuda {
namespace {

constexpr unsigned kThreads = 256;

__global__ void dropout_apply_kernel(const float* __restrict__ x, float* __restrict__ y, std::int64_t n,
                                     std::int64_t group, float p, float scale, std::uint64_t seed,
                                     std::uint64_t offset_base, const std::uint64_t* __restrict__ offset_ptr) {
  const std::uint64_t offset = offset_base + (offset_ptr != nullptr ? *offset_ptr : 0);
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const bool keep = dropout_keep(seed, offset + static_cast<std::uint64_t>(i / group), p);
    y[i] = keep ? x[i] * scale : 0.f;
  }
}

__global__ void mask_counter_advance_kernel(std::uint64_t* counters, std::uint64_t count) {
  counters[1] = counters[0];
  counters[0] += count;
}

void launch_dropout(const float* x, float* y, std::int64_t n, std::int64_t group, float p, float scale,
                    std::uint64_t seed, std::uint64_t offset_base, const std::uint64_t* offset_ptr) {
  const unsigned blocks = std::min(blocks_for(n, kThreads), 65535u * 8u);
  launch_kernel(dropout_apply_kernel, blocks, kThreads, 0, x, y, n, group, p, scale, seed, offset_base, offset_ptr);
}

}  // namespace

void dropout_apply(const float* x, float* y, std::int64_t n, std::int64_t group, float p, float scale,
                   std::uint64_t seed, std::uint64_t offset) {
  launch_dropout(x, y, n, group, p, scale, seed, offset, nullptr);
}

void dropout_apply(const float* x, float* y, std::int64_t n, std::int64_t group, float p, float scale,
                   std::uint64_t seed, const std::uint64_t* offset) {
  launch_dropout(x, y, n, group, p, scale, seed, 0, offset);
}

void mask_counter_advance(std::uint64_t* counters, std::uint64_t count) {
  launch_kernel(mask_counter_advance_kernel, 1, 1, 0, counters, count);
}

}  // namespace cxr::cuda
