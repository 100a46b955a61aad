// CXR_HD marks small functions (scalar math, index helpers, the counter-based RNG) that the
// CPU reference and the CUDA kernels share, so that both compute exactly the same thing.
#pragma once

#if defined(__CUDACC__)
#define CXR_HD __host__ __device__ __forceinline__
#else
#define CXR_HD inline
#endif
