// Eight floats as one value (GCC vector extensions) for the CPU kernels that vectorise by hand
// (kernels/cpu/depthwise_padded.cpp, kernels/cpu/winograd.cpp): the operators work lane by lane,
// and the bodies are compiled once per instruction set by CXR_CLONES (AVX2 + FMA where the CPU has
// it, the baseline elsewhere), so the build needs no -march.
#pragma once

#include <cstring>

namespace cxr::cpu::lanes8 {

typedef float v8 __attribute__((vector_size(32)));
// The helpers are always inlined into the target-specific bodies, so the ABI of a vector passed
// by value (which differs with and without AVX) never matters.
#pragma GCC diagnostic ignored "-Wpsabi"
#define CXR_INLINE __attribute__((always_inline)) inline
#define CXR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))

constexpr int kLanes = 8;

CXR_INLINE v8 load8(const float* p) {
  v8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
CXR_INLINE void store8(float* p, const v8& v) { std::memcpy(p, &v, sizeof v); }

}  // namespace cxr::cpu::lanes8
