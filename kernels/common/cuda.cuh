// The one header every .cu file of kernels/ includes first: the CUDA runtime, checked calls,
// the compute stream and launch_kernel() from tensor/cuda/runtime.cuh (how a .cu file is
// compiled for the GPU and for the emulated device is explained there), and what only kernels
// need:
//   - dynamic_smem<T>(): the only way to reach dynamic shared memory (no `extern __shared__`);
//   - aligned16(): whether a pointer allows 16-byte vector loads.
#pragma once

#include <cstdint>

#include "tensor/cuda/runtime.cuh"

namespace cxr::cuda {

// Whether p can be read or written 16 bytes at a time (float4, eight bf16). Tensors from the
// caching allocator at offset 0 are; views at other offsets may not be.
inline bool aligned16(const void* p) {
  return (reinterpret_cast<std::uintptr_t>(p) & 15u) == 0;
}

// Dynamic shared memory of the running block, as T*. The size is the launch's smem_bytes.
template <typename T>
__device__ __forceinline__ T* dynamic_smem() {
#if defined(CXR_CUDA_EMULATION)
  return static_cast<T*>(cuda_emu::dynamic_shared_memory());
#else
  extern __shared__ __align__(16) unsigned char cxr_dynamic_smem_[];
  return reinterpret_cast<T*>(cxr_dynamic_smem_);
#endif
}

}  // namespace cxr::cuda
