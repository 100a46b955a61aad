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
//   and written): used = next + skip; next += count. Enqueued before a training forward's mask
//   kernel (skip: where a rank's part of a global batch starts; 0 in a single process).
// Same formula as the CPU reference, in the same float arithmetic, so masks agree bit for bit.
// bf16 x and y (mixed precision): the kernel is templated on the storage type (float or
// std::uint16_t, kernels/common/load_store.h): x_i * scale in f32, rounded once; 4 bytes per
// element. The mask does not depend on the type.
#include <algorithm>

#include "kernels/common/cuda.cuh"
#include "kernels/common/load_store.h"
#include "kernels/dropout.h"

namespace cxr::cuda {
namespace {

constexpr unsigned kThreads = 256;

template <typename T>
__global__ void dropout_apply_kernel(const T* __restrict__ x, T* __restrict__ y, std::int64_t n, std::int64_t group,
                                     float p, float scale, std::uint64_t seed, std::uint64_t offset_base,
                                     const std::uint64_t* __restrict__ offset_ptr) {
  const std::uint64_t offset = offset_base + (offset_ptr != nullptr ? *offset_ptr : 0);
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const bool keep = dropout_keep(seed, offset + static_cast<std::uint64_t>(i / group), p);
    store(y + i, keep ? load(x + i) * scale : 0.f);
  }
}

__global__ void mask_counter_advance_kernel(std::uint64_t* counters, std::uint64_t count, std::uint64_t skip) {
  counters[1] = counters[0] + skip;
  counters[0] += count;
}

template <typename T>
void launch_dropout(const T* x, T* y, std::int64_t n, std::int64_t group, float p, float scale, std::uint64_t seed,
                    std::uint64_t offset_base, const std::uint64_t* offset_ptr) {
  const unsigned blocks = std::min(blocks_for(n, kThreads), 65535u * 8u);
  launch_kernel(dropout_apply_kernel<T>, blocks, kThreads, 0, x, y, n, group, p, scale, seed, offset_base, offset_ptr);
}

}  // namespace

template <typename T>
void dropout_apply(const T* x, T* y, std::int64_t n, std::int64_t group, float p, float scale, std::uint64_t seed,
                   std::uint64_t offset) {
  launch_dropout(x, y, n, group, p, scale, seed, offset, nullptr);
}

template <typename T>
void dropout_apply(const T* x, T* y, std::int64_t n, std::int64_t group, float p, float scale, std::uint64_t seed,
                   const std::uint64_t* offset) {
  launch_dropout(x, y, n, group, p, scale, seed, 0, offset);
}

#define CXR_DROPOUT_INSTANTIATE(T)                                                                      \
  template void dropout_apply<T>(const T*, T*, std::int64_t, std::int64_t, float, float, std::uint64_t, \
                                 std::uint64_t);                                                        \
  template void dropout_apply<T>(const T*, T*, std::int64_t, std::int64_t, float, float, std::uint64_t, \
                                 const std::uint64_t*);
CXR_DROPOUT_INSTANTIATE(float)
CXR_DROPOUT_INSTANTIATE(std::uint16_t)
#undef CXR_DROPOUT_INSTANTIATE

void mask_counter_advance(std::uint64_t* counters, std::uint64_t count, std::uint64_t skip) {
  launch_kernel(mask_counter_advance_kernel, 1, 1, 0, counters, count, skip);
}

}  // namespace cxr::cuda
