// Counter-based seeding and a small, portable random generator for the data pipeline.
//
// Every random choice of the loader comes from a generator seeded by a hash of
// (seed, epoch, index), never from a shared generator, so results do not depend on which
// thread handles which sample, or in which order. The distributions are written here
// (not std::uniform_real_distribution) so the numbers are the same with every standard
// library.
#pragma once

#include <cstdint>

namespace cxr::data {

// SplitMix64 finaliser: a bijective, well-mixed hash of one 64-bit word.
constexpr std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A seed from several words: hash_seed(seed, epoch, index).
constexpr std::uint64_t hash_seed(std::uint64_t a, std::uint64_t b = 0, std::uint64_t c = 0,
                                  std::uint64_t d = 0) {
  return mix64(mix64(mix64(mix64(a) ^ b) ^ c) ^ d);
}

// xoshiro256** seeded through SplitMix64.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    for (auto& s : s_) {
      seed += 0x9E3779B97F4A7C15ull;
      s = mix64(seed);
    }
  }
  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Integer in [0, n), n > 0 (multiply-shift; bias below 2^-32 for the sizes used here).
  std::uint64_t below(std::uint64_t n) {
    return static_cast<std::uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }
  bool bernoulli(double p) { return uniform() < p; }
  // Standard normal (Box-Muller, one value per call).
  double normal();

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

// Fisher-Yates shuffle of [first, first + n).
template <typename T>
void shuffle(T* first, std::uint64_t n, Rng& rng) {
  for (std::uint64_t i = n; i > 1; --i) {
    const std::uint64_t j = rng.below(i);
    T tmp = first[i - 1];
    first[i - 1] = first[j];
    first[j] = tmp;
  }
}

}  // namespace cxr::data
