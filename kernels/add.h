// Residual add: y = a + b (same shape), and its in-place form a += b.
//
//   y[i] = a[i] + b[i]          da = dy, db = dy
// The backward is the identity; add_backward returns dy for both inputs (the same tensor,
// no copy). add_ accumulates in place (gradient accumulation at a residual fork).
#pragma once

#include <cstdint>
#include <utility>

#include "tensor/tensor.h"

namespace cxr {

// a, b: same shape, f32, contiguous, same device. Returns y with their shape and device.
Tensor add(const Tensor& a, const Tensor& b);
// a += b in place.
void add_(Tensor& a, const Tensor& b);
// (da, db) = (dy, dy).
std::pair<Tensor, Tensor> add_backward(const Tensor& dy);

namespace cpu {
template <typename T>
void add(const T* a, const T* b, T* y, std::int64_t n);
}  // namespace cpu

namespace cuda {
// y may alias a (in-place add_).
void add(const float* a, const float* b, float* y, std::int64_t n);
}  // namespace cuda

}  // namespace cxr
