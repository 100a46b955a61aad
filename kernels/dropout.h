// Dropout and drop-path (stochastic depth), with masks from the counter-based RNG of
// kernels/common/random.h, so the CPU, the GPU and the emulated device drop the same elements.
//
// dropout (element-wise), probability p:
//   u_i = random_uniform(seed, offset + i)          keep_i = [u_i >= p]     (P(keep) = 1 - p)
//   y_i = x_i * keep_i / (1 - p)                    dx_i = dy_i * keep_i / (1 - p)
// drop_path (per sample, torchvision StochasticDepth mode "row"): x (N, ...), S = numel / N
//   u_n = random_uniform(seed, offset + n)          keep_n = [u_n >= p]
//   y[n, ...] = x[n, ...] * keep_n / (1 - p)        dx likewise with dy
// p = 1 drops everything (y = 0). Not training, or p = 0: the identity (returns the input
// tensor itself, no copy, as PyTorch does). The backward regenerates the mask from
// (seed, offset) instead of storing it: pass the forward's seed and offset.
// Counters used: dropout numel(x), drop_path N; the caller advances its offset by that much.
#pragma once

#include <cstdint>

#include "kernels/common/random.h"
#include "tensor/tensor.h"

namespace cxr {

struct DropoutParams {
  float p = 0.5f;  // drop probability in [0, 1]
  std::uint64_t seed = 0;
  std::uint64_t offset = 0;  // counter of element (or sample) 0
  bool training = true;
};

// x: any shape, f32, contiguous.
Tensor dropout(const Tensor& x, const DropoutParams& d);
Tensor dropout_backward(const Tensor& dy, const DropoutParams& d);
// x: (N, ...), at least 1-d.
Tensor drop_path(const Tensor& x, const DropoutParams& d);
Tensor drop_path_backward(const Tensor& dy, const DropoutParams& d);

// Whether counter `i` is kept, and the scale of the kept ones (shared by CPU and CUDA).
CXR_HD bool dropout_keep(std::uint64_t seed, std::uint64_t counter, float p) {
  return random_uniform(seed, counter) >= p;
}

// n elements; `group` consecutive elements share one draw (1: dropout, S: drop_path).
// Element i uses counter offset + i / group. scale = 1 / (1 - p) (0 when p = 1).
namespace cpu {
template <typename T>
void dropout_apply(const T* x, T* y, std::int64_t n, std::int64_t group, float p, T scale, std::uint64_t seed,
                   std::uint64_t offset);
}  // namespace cpu

namespace cuda {
void dropout_apply(const float* x, float* y, std::int64_t n, std::int64_t group, float p, float scale,
                   std::uint64_t seed, std::uint64_t offset);
}  // namespace cuda

}  // namespace cxr
