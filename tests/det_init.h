// Deterministic tensors that C++ and Python (tests/gen/det_init.py) fill identically, so that
// model parity tests share weights and inputs with torchvision without committing them.
//
//   u(name, i) = (splitmix64(fnv1a64(name) + i) >> 40) / 2^24 * 2 - 1      in [-1, 1)
//   det_uniform(name, shape, scale)[i] = scale * u(name, i)
#pragma once

#include <cstdint>
#include <string>

#include "tensor/tensor.h"

namespace cxr::test {

std::uint64_t fnv1a64(const std::string& s);
std::uint64_t splitmix64(std::uint64_t x);
double det_unit(const std::string& name, std::uint64_t i);  // u(name, i)
// CPU f32 tensor with elements scale * u(name, i) + offset.
Tensor det_uniform(const std::string& name, const Shape& shape, float scale, float offset = 0.f);

}  // namespace cxr::test
