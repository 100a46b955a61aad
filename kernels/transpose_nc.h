// Swapping the first two axes of a 4-d tensor, a copy: (A, B, H, W) -> (B, A, H, W).
//
//   y[b, a, h, w] = x[a, b, h, w]
// The map is its own inverse, so its backward is itself: dx = transpose_nc(dy).
//
// DenseNet's concatenation (models/densenet.h): a dense block keeps its features channel-major,
// (C, N, H, W), in one buffer as wide as the block's output. There the first c channels are a
// contiguous prefix, so every dense layer reads its concatenated input without a copy, and the
// 32 channels it adds are one contiguous slice, written by transpose_nc_into from the layer's
// (N, 32, H, W) output: the concatenation's forward is a copy into a slice, its backward a
// slice of the gradient buffer read back with transpose_nc. Per layer a fixed number of
// channels moves, so the copies of a block grow linearly with its depth, not quadratically
// (torch.cat in every layer copies all the channels before it).
// Any dtype (f32, bf16, ...): elements are moved, never rounded.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace cxr {

// x: (A, B, H, W) contiguous. Returns (B, A, H, W) in x's dtype, on x's device.
Tensor transpose_nc(const Tensor& x);
// The same into y: (B, A, H, W), contiguous (a slice along dim 0 of a contiguous tensor is),
// x's dtype and device.
void transpose_nc_into(Tensor& y, const Tensor& x);

// x: A blocks of B rows of hw elements; y: B blocks of A rows.
namespace cpu {
template <typename T>
void transpose_nc(const T* x, T* y, std::int64_t A, std::int64_t B, std::int64_t hw);
}  // namespace cpu

namespace cuda {
// elem_bytes: 2 (bf16) or 4 (f32, i32); other sizes move as bytes.
void transpose_nc(const void* x, void* y, std::int64_t A, std::int64_t B, std::int64_t hw, std::size_t elem_bytes);
}  // namespace cuda

}  // namespace cxr
