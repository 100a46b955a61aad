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
// Mixed precision: x may be bf16; y is then bf16 (x_i * scale in f32, rounded once). The mask
// depends only on (seed, counter), so f32 and bf16 inputs lose the same elements. The
// backwards take and return f32 (dy, dx).
//
// Counters on the CUDA device (DeviceMaskCounter, below): a captured CUDA graph freezes kernel
// arguments, so a by-value offset would give every replay the same mask. A module on the CUDA
// device therefore keeps its counter in device memory, {next, used} (two u64, 16 bytes), and
// each training forward enqueues
//   advance (one thread):   used = next;  next += count        (count: numel or N)
// and then the mask kernel, which reads its offset from `used` (DropoutParams::device_offset)
// instead of `offset`; the backward reads `used` too. Both are stream work, so a graph replay
// advances the counter exactly as an eager step does: the same (seed, offset) sequence, hence
// the same masks, as the CPU. Traffic: 16 bytes per advance, one 8-byte (cached) read per thread.
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
  // CUDA only: where the device holds the counter of element 0 (DeviceMaskCounter::used());
  // when set it replaces `offset`, read by the kernel when it runs.
  const std::uint64_t* device_offset = nullptr;
};

// x: any shape, f32 or bf16, contiguous; y in x's dtype. dy: f32.
Tensor dropout(const Tensor& x, const DropoutParams& d);
Tensor dropout_backward(const Tensor& dy, const DropoutParams& d);
// x: (N, ...), at least 1-d.
Tensor drop_path(const Tensor& x, const DropoutParams& d);
Tensor drop_path_backward(const Tensor& dy, const DropoutParams& d);

// A mask counter in CUDA device memory, {next, used} (see the top of this file).
//   DeviceMaskCounter c(offset);            // next = used = offset (a blocking upload)
//   d.device_offset = c.advance(x.numel()); // enqueued: used = next; next += numel
//   c.next();                               // reads next back (synchronises; not in a capture)
class DeviceMaskCounter {
 public:
  explicit DeviceMaskCounter(std::uint64_t next);
  void set(std::uint64_t next);  // next = used = `next` (blocking upload: not during a capture)
  std::uint64_t next() const;    // blocking read-back
  // Enqueues used = next + skip; next += count on the compute stream; returns used(). skip > 0:
  // a rank's part of a global batch starts `skip` counters into the batch's (dist training).
  const std::uint64_t* advance(std::uint64_t count, std::uint64_t skip = 0);
  const std::uint64_t* used() const;  // device pointer, for DropoutParams::device_offset

 private:
  Tensor buf_;  // (4) I32 on the CUDA device: the bits of {next, used}
};

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
// T: float (f32) or std::uint16_t (bf16 bits).
template <typename T>
void dropout_apply(const T* x, T* y, std::int64_t n, std::int64_t group, float p, float scale, std::uint64_t seed,
                   std::uint64_t offset);
// The same, with the offset read from device memory (*offset) when the kernel runs.
template <typename T>
void dropout_apply(const T* x, T* y, std::int64_t n, std::int64_t group, float p, float scale, std::uint64_t seed,
                   const std::uint64_t* offset);
// counters = {next, used} in device memory: used = next; next += count (one thread).
void mask_counter_advance(std::uint64_t* counters, std::uint64_t count, std::uint64_t skip);
}  // namespace cuda

}  // namespace cxr
