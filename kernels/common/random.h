// Counter-based random numbers shared by the CPU and the CUDA kernels.
//
// A random draw is a pure function of (seed, counter): no state is carried between draws, so
// element i of a tensor gets the same number on the CPU, on the GPU and on the emulated device,
// in any thread order. Ops take a `seed` and an `offset`; element i uses counter offset + i.
// A caller that draws twice with the same seed advances the offset by the number of draws.
//
//   hash:    h = mix64(mix64(seed ^ K1) + counter * K2)      mix64 = the splitmix64 finaliser
//   uniform: u = (h >> 40) * 2^-24                            24 random bits -> [0, 1), exact in f32
//
// mix64 is the finaliser of splitmix64 (Steele, Lea, Flood 2014), a bijection on 64-bit words
// with full avalanche; hashing the seed once and then the counter keeps nearby seeds and
// nearby counters unrelated. Cost: 4 64-bit multiplies per draw.
#pragma once

#include <cstdint>

#include "tensor/host_device.h"

namespace cxr {

CXR_HD std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// 64 random bits for (seed, counter).
CXR_HD std::uint64_t random_bits(std::uint64_t seed, std::uint64_t counter) {
  const std::uint64_t key = mix64(seed ^ 0x6a09e667f3bcc909ull);
  return mix64(key + (counter + 1) * 0x9e3779b97f4a7c15ull);
}

// Uniform float in [0, 1) with 24 random bits (every value is a multiple of 2^-24).
CXR_HD float random_uniform(std::uint64_t seed, std::uint64_t counter) {
  return static_cast<float>(random_bits(seed, counter) >> 40) * (1.0f / 16777216.0f);
}

}  // namespace cxr
