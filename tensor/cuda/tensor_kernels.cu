// Kernels of the Tensor type itself.
//
// fill_f32_kernel:      y[i] = v.                     Traffic: 4n bytes written.
// strided_copy_kernel:  dst[i] = src[dot(unravel(i, shape), strides)]. Traffic: 2 * n * elem.
//   One thread per element; the index arithmetic is the cost for small elements, which is
//   fine for the layout changes it serves (views made contiguous), not for hot paths.
#include "tensor/cuda/runtime.cuh"
#include "tensor/tensor_kernels.h"

namespace cxr::cuda {
namespace {

__global__ void fill_f32_kernel(float* y, float value, std::int64_t n) {
  std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) y[i] = value;
}

struct StridedLayout {
  std::int64_t shape[kMaxDims];
  std::int64_t strides[kMaxDims];
  int dims;
};

template <typename T>
__global__ void strided_copy_kernel(T* dst, const T* src, StridedLayout layout, std::int64_t n) {
  std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  std::int64_t rem = i, off = 0;
  for (int k = layout.dims - 1; k >= 0; --k) {
    const std::int64_t idx = rem % layout.shape[k];
    rem /= layout.shape[k];
    off += idx * layout.strides[k];
  }
  dst[i] = src[off];
}

}  // namespace

void fill_f32(float* y, float value, std::int64_t n) {
  launch_kernel(fill_f32_kernel, blocks_for(n, 256), 256, 0, y, value, n);
}

void strided_copy(void* dst, const void* src, int dims, const std::int64_t* shape, const std::int64_t* strides,
                  std::size_t elem_size, std::int64_t n) {
  StridedLayout layout{};
  layout.dims = dims;
  for (int k = 0; k < dims; ++k) {
    layout.shape[k] = shape[k];
    layout.strides[k] = strides[k];
  }
  const unsigned grid = blocks_for(n, 256);
  switch (elem_size) {
    case 1: launch_kernel(strided_copy_kernel<std::uint8_t>, grid, 256, 0, static_cast<std::uint8_t*>(dst),
                          static_cast<const std::uint8_t*>(src), layout, n); break;
    case 2: launch_kernel(strided_copy_kernel<std::uint16_t>, grid, 256, 0, static_cast<std::uint16_t*>(dst),
                          static_cast<const std::uint16_t*>(src), layout, n); break;
    case 4: launch_kernel(strided_copy_kernel<std::uint32_t>, grid, 256, 0, static_cast<std::uint32_t*>(dst),
                          static_cast<const std::uint32_t*>(src), layout, n); break;
    default: CXR_FAIL("strided_copy: unsupported element size ", elem_size);
  }
}

}  // namespace cxr::cuda
