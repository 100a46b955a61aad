// Multi-tensor apply: one kernel launch over a LIST of tensors (all parameters of a model,
// all gradients), used by the gradient norm (kernels/cuda/reduce.cu) and the optimisers
// (kernels/cuda/optimizer_step.cu).
//
// The host splits every tensor into chunks of `chunk` elements and builds a table
//   block b -> (tensor index t, first element of the chunk)
// plus, per tensor, its element count and one pointer per list (param, grad, state...).
// The table lives in device memory; multi_tensor_table() keeps the last few tables it
// uploaded, keyed by their full content (pointers, sizes, chunk), so a training loop whose
// parameter list does not change uploads it once and then launches ONE kernel per step with
// no host-to-device copy at all.
//
// Device side: multi_tensor_chunk<L, W>(table, op) runs `op` on every element of this
// block's chunk. op receives float e[L] (element i of each list) and may change it; lists
// whose bit is set in the write mask W are stored back. When every pointer of the chunk is
// 16-byte aligned the chunk is read and written as float4 (chunks are multiples of 4
// elements, so only the tensor's last chunk has a scalar tail).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/common/cuda.cuh"

namespace cxr::cuda {

constexpr int kMultiTensorMaxLists = 4;
constexpr std::int64_t kMultiTensorDefaultChunk = 16384;  // elements per block

struct MultiTensorTable {
  int num_blocks = 0;
  int num_tensors = 0;
  std::int64_t chunk = 0;
  const int* block_tensor = nullptr;          // (num_blocks)
  const std::int64_t* block_start = nullptr;  // (num_blocks)
  const std::int64_t* numel = nullptr;        // (num_tensors)
  float* const* ptrs = nullptr;               // (num_lists, num_tensors): ptrs[l * num_tensors + t]
};

// lists[l][t]: the t-th tensor of list l (device pointers); numel[t]: its element count
// (the same for every list). Empty tensors get no block. chunk must be a positive multiple of 4.
MultiTensorTable multi_tensor_table(const std::vector<std::vector<float*>>& lists,
                                    const std::vector<std::int64_t>& numel,
                                    std::int64_t chunk = kMultiTensorDefaultChunk);

template <int L, unsigned WriteMask, class Op>
__device__ __forceinline__ void multi_tensor_chunk(const MultiTensorTable& tab, Op& op) {
  const int b = static_cast<int>(blockIdx.x);
  const int t = tab.block_tensor[b];
  const std::int64_t start = tab.block_start[b];
  const std::int64_t n = tab.numel[t];
  const std::int64_t len = (n - start < tab.chunk) ? n - start : tab.chunk;
  float* p[L];
  bool aligned = true;
  for (int l = 0; l < L; ++l) {
    p[l] = tab.ptrs[l * tab.num_tensors + t] + start;
    aligned = aligned && (reinterpret_cast<std::uintptr_t>(p[l]) % 16 == 0);
  }
  std::int64_t done = 0;
  if (aligned) {
    const std::int64_t nv = len / 4;
    for (std::int64_t v = threadIdx.x; v < nv; v += blockDim.x) {
      float4 r[L];
      for (int l = 0; l < L; ++l) r[l] = reinterpret_cast<const float4*>(p[l])[v];
      float e[L];
      for (int l = 0; l < L; ++l) e[l] = r[l].x;
      op(e);
      for (int l = 0; l < L; ++l) r[l].x = e[l];
      for (int l = 0; l < L; ++l) e[l] = r[l].y;
      op(e);
      for (int l = 0; l < L; ++l) r[l].y = e[l];
      for (int l = 0; l < L; ++l) e[l] = r[l].z;
      op(e);
      for (int l = 0; l < L; ++l) r[l].z = e[l];
      for (int l = 0; l < L; ++l) e[l] = r[l].w;
      op(e);
      for (int l = 0; l < L; ++l) r[l].w = e[l];
      for (int l = 0; l < L; ++l)
        if (WriteMask & (1u << l)) reinterpret_cast<float4*>(p[l])[v] = r[l];
    }
    done = nv * 4;
  }
  for (std::int64_t i = done + threadIdx.x; i < len; i += blockDim.x) {
    float e[L];
    for (int l = 0; l < L; ++l) e[l] = p[l][i];
    op(e);
    for (int l = 0; l < L; ++l)
      if (WriteMask & (1u << l)) p[l][i] = e[l];
  }
}

}  // namespace cxr::cuda
