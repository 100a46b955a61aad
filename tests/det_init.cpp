#include "tests/det_init.h"

namespace cxr::test {

std::uint64_t fnv1a64(const std::string& s) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

double det_unit(const std::string& name, std::uint64_t i) {
  const std::uint64_t bits = splitmix64(fnv1a64(name) + i) >> 40;  // 24 random bits
  return static_cast<double>(bits) / 16777216.0 * 2.0 - 1.0;
}

Tensor det_uniform(const std::string& name, const Shape& shape, float scale, float offset) {
  Tensor t = Tensor::empty(shape);
  float* p = t.f32();
  const std::uint64_t h = fnv1a64(name);
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    const std::uint64_t bits = splitmix64(h + static_cast<std::uint64_t>(i)) >> 40;
    p[i] = static_cast<float>(scale * (static_cast<double>(bits) / 16777216.0 * 2.0 - 1.0) + offset);
  }
  return t;
}

}  // namespace cxr::test
