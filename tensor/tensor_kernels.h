// The few kernels the Tensor type itself needs (fill, strided copy), on the CUDA device.
// Implemented in tensor/cuda/tensor_kernels.cu; the CPU versions live in tensor.cpp.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cxr::cuda {

constexpr int kMaxDims = 8;

// y[i] = value for i < n (f32).
void fill_f32(float* y, float value, std::int64_t n);

// Gathers a strided view into contiguous memory: dst[i] = src[offset(i)], where offset(i)
// unravels i over `shape` and dots it with `strides` (elements). elem_size in bytes.
void strided_copy(void* dst, const void* src, int dims, const std::int64_t* shape,
                  const std::int64_t* strides, std::size_t elem_size, std::int64_t n);

}  // namespace cxr::cuda
