// Reductions on CUDA.
//
// sum / mean of n elements (x: flat, f32):
//   sum_partial_kernel   G = min(ceil(n / 4096), 1024) blocks x 256 threads, grid-stride
//                        (float4 loads when x is 16-byte aligned), per-thread f32 partial
//                        sums -> block_sum (warp shuffles + shared tree) -> partials[G]
//   sum_finalize_kernel  one block of 1024 threads sums partials[G] in a fixed order.
//   When G == 1 the first kernel writes the result itself (n <= 4096: one launch).
//   Traffic 4n bytes, n FLOPs: memory bound (H100: ~4n / 3 TB/s + two launch latencies).
//   Deterministic: G depends only on n, the order of every partial sum is fixed.
// sum_dim (x viewed (outer, D, inner) -> y (outer, inner)):
//   inner == 1: sum_rows_kernel, one block per row, block_sum over D (contiguous, coalesced);
//   inner  > 1: sum_columns_kernel, one thread per output, loop over D (coalesced over inner).
// sum_dim_backward / fill_scaled: one thread per output element (broadcast).
// global_norm over T tensors: ONE multi-tensor launch (kernels/cuda/multi_tensor.cuh) with a
//   block per chunk of 16384 elements, each block writes Σ x² of its chunk to partials[b];
//   then norm_finalize_kernel (one block) sums the partials in order, takes the sqrt and
//   writes the clip coefficient min(1, max_norm / (norm + 1e-6)) next to it: the clip never
//   needs the host. ResNet-50: 25.6M floats = 102 MB read, ~35 us at 3 TB/s.
// scale: one multi-tensor launch x *= scale[0] (read from device memory), 8 bytes/element.
#include "kernels/common/cuda.cuh"
#include "kernels/cuda/multi_tensor.cuh"
#include "kernels/cuda/reduce.cuh"
#include "kernels/reduce.h"
#include "tensor/tensor.h"

namespace cxr::cuda {
namespace {

constexpr unsigned kThreads = 256;
constexpr unsigned kFinalThreads = 1024;
constexpr std::int64_t kElemsPerBlock = 4096;  // at least 16 elements per thread
constexpr unsigned kMaxPartials = 1024;

__global__ void sum_partial_kernel(const float* __restrict__ x, std::int64_t n, float* __restrict__ out, float scale) {
  float acc = 0.0f;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  const std::int64_t first = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  std::int64_t done = 0;
  if (reinterpret_cast<std::uintptr_t>(x) % 16 == 0) {
    const float4* x4 = reinterpret_cast<const float4*>(x);
    const std::int64_t nv = n / 4;
    for (std::int64_t v = first; v < nv; v += stride) {
      const float4 r = x4[v];
      acc += (r.x + r.y) + (r.z + r.w);
    }
    done = nv * 4;
  }
  for (std::int64_t i = done + first; i < n; i += stride) acc += x[i];
  const float s = block_sum(acc);
  if (threadIdx.x == 0) out[blockIdx.x] = gridDim.x == 1 ? s * scale : s;
}

// One block: out[0] = scale * Σ partials[0..count).
__global__ void sum_finalize_kernel(const float* __restrict__ partials, int count, float* __restrict__ out,
                                    float scale) {
  float acc = 0.0f;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partials[i];
  const float s = block_sum(acc);
  if (threadIdx.x == 0) out[0] = s * scale;
}

__global__ void fill_scaled_kernel(const float* __restrict__ dy, float scale, float* __restrict__ y, std::int64_t n) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) y[i] = dy[0] * scale;
}

// y[row] = Σ_k x[row, k]; grid (rows), block kThreads.
__global__ void sum_rows_kernel(const float* __restrict__ x, float* __restrict__ y, std::int64_t d) {
  const float* row = x + static_cast<std::int64_t>(blockIdx.x) * d;
  float acc = 0.0f;
  for (std::int64_t k = threadIdx.x; k < d; k += blockDim.x) acc += row[k];
  const float s = block_sum(acc);
  if (threadIdx.x == 0) y[blockIdx.x] = s;
}

// y[o, i] = Σ_k x[o, k, i]; one thread per output.
__global__ void sum_columns_kernel(const float* __restrict__ x, float* __restrict__ y, std::int64_t outer,
                                   std::int64_t d, std::int64_t inner) {
  const std::int64_t j = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= outer * inner) return;
  const std::int64_t o = j / inner, i = j % inner;
  const float* p = x + o * d * inner + i;
  float acc = 0.0f;
  for (std::int64_t k = 0; k < d; ++k) acc += p[k * inner];
  y[j] = acc;
}

// dx[o, k, i] = dy[o, i]; one thread per input element.
__global__ void sum_dim_backward_kernel(const float* __restrict__ dy, float* __restrict__ dx, std::int64_t d,
                                        std::int64_t inner, std::int64_t n) {
  const std::int64_t j = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= n) return;
  const std::int64_t i = j % inner;
  const std::int64_t o = j / (inner * d);
  dx[j] = dy[o * inner + i];
}

struct SquareSum {
  float acc = 0.0f;
  __device__ void operator()(float (&e)[1]) { acc += e[0] * e[0]; }
};

__global__ void norm_partial_kernel(MultiTensorTable tab, float* __restrict__ partials) {
  SquareSum op;
  multi_tensor_chunk<1, 0u>(tab, op);
  const float s = block_sum(op.acc);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

__global__ void norm_finalize_kernel(const float* __restrict__ partials, int count, float* __restrict__ norm,
                                     float* __restrict__ clip_coef, float max_norm) {
  float acc = 0.0f;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partials[i];
  const float s = block_sum(acc);
  if (threadIdx.x == 0) {
    const float total = sqrtf(s);
    norm[0] = total;
    if (clip_coef) {
      const float c = max_norm / (total + kClipEps);
      clip_coef[0] = c < 1.0f ? c : 1.0f;
    }
  }
}

struct Scale {
  float s;
  __device__ void operator()(float (&e)[1]) { e[0] *= s; }
};

__global__ void scale_kernel(MultiTensorTable tab, const float* __restrict__ scale) {
  Scale op{scale[0]};
  multi_tensor_chunk<1, 1u>(tab, op);
}

}  // namespace

void sum(const float* x, std::int64_t n, float scale, float* out) {
  const std::int64_t want = (n + kElemsPerBlock - 1) / kElemsPerBlock;
  const unsigned grid = static_cast<unsigned>(want < 1 ? 1 : (want > kMaxPartials ? kMaxPartials : want));
  if (grid == 1) {
    launch_kernel(sum_partial_kernel, 1, kThreads, 0, x, n, out, scale);
    return;
  }
  Tensor partials = Tensor::empty({grid}, DType::F32, Device::CUDA);
  launch_kernel(sum_partial_kernel, grid, kThreads, 0, x, n, partials.f32(), scale);
  launch_kernel(sum_finalize_kernel, 1, kFinalThreads, 0, partials.f32(), static_cast<int>(grid), out, scale);
}

void fill_scaled(const float* dy, float scale, float* y, std::int64_t n) {
  launch_kernel(fill_scaled_kernel, blocks_for(n, kThreads), kThreads, 0, dy, scale, y, n);
}

void sum_dim(const float* x, float* y, std::int64_t outer, std::int64_t d, std::int64_t inner) {
  if (outer * inner == 0) return;
  if (inner == 1) {
    CXR_CHECK(outer < (std::int64_t{1} << 31), "sum_dim: too many rows (", outer, ")");
    launch_kernel(sum_rows_kernel, static_cast<unsigned>(outer), kThreads, 0, x, y, d);
  } else {
    launch_kernel(sum_columns_kernel, blocks_for(outer * inner, kThreads), kThreads, 0, x, y, outer, d, inner);
  }
}

void sum_dim_backward(const float* dy, float* dx, std::int64_t outer, std::int64_t d, std::int64_t inner) {
  const std::int64_t n = outer * d * inner;
  if (n == 0) return;
  launch_kernel(sum_dim_backward_kernel, blocks_for(n, kThreads), kThreads, 0, dy, dx, d, inner, n);
}

void global_norm(const std::vector<const float*>& tensors, const std::vector<std::int64_t>& numel, float* norm,
                 float* clip_coef, float max_norm) {
  std::vector<float*> ptrs;
  for (const float* p : tensors) ptrs.push_back(const_cast<float*>(p));  // read only (write mask 0)
  const MultiTensorTable tab = multi_tensor_table({ptrs}, numel);
  Tensor partials = Tensor::empty({tab.num_blocks > 0 ? tab.num_blocks : 1}, DType::F32, Device::CUDA);
  launch_kernel(norm_partial_kernel, static_cast<unsigned>(tab.num_blocks), kThreads, 0, tab, partials.f32());
  launch_kernel(norm_finalize_kernel, 1, kFinalThreads, 0, partials.f32(), tab.num_blocks, norm, clip_coef, max_norm);
}

void scale(const std::vector<float*>& tensors, const std::vector<std::int64_t>& numel, const float* scale) {
  const MultiTensorTable tab = multi_tensor_table({tensors}, numel);
  launch_kernel(scale_kernel, static_cast<unsigned>(tab.num_blocks), kThreads, 0, tab, scale);
}

}  // namespace cxr::cuda
