// Residual add: y = a + b (same shape), and its in-place form a += b.
//
//   y[i] = a[i] + b[i]          da = dy, db = dy
// The backward is the identity; add_backward returns dy for both inputs (the same tensor,
// no copy). add_ accumulates in place (gradient accumulation at a residual fork).
// Mixed precision: a and b may each be f32 or bf16; the sum is taken in f32 and stored in
// a's dtype (rounded once when a is bf16). Gradients stay f32.
#pragma once

#include <cstdint>
#include <utility>

#include "tensor/tensor.h"

namespace cxr {

// a, b: same shape, each f32 or bf16, contiguous, same device. Returns y with their shape,
// a's dtype and their device.
Tensor add(const Tensor& a, const Tensor& b);
// a += b in place (a keeps its dtype).
void add_(Tensor& a, const Tensor& b);
// (da, db) = (dy, dy).
std::pair<Tensor, Tensor> add_backward(const Tensor& dy);

namespace cpu {
template <typename T>
void add(const T* a, const T* b, T* y, std::int64_t n);
}  // namespace cpu

namespace cuda {
// TA, TB: float (f32) or std::uint16_t (bf16 bits), independently; y has a's type and may
// alias a (in-place add_).
template <typename TA, typename TB>
void add(const TA* a, const TB* b, TA* y, std::int64_t n);
}  // namespace cuda

}  // namespace cxr
