// The frozen-weights cache (see kernels/cpu/frozen_weights.h): a map from an operand's identity
// to its packed copy, behind one mutex, alive while any FrozenWeightsScope is open.
#include "kernels/cpu/frozen_weights.h"

#include <array>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

namespace cxr::cpu {

namespace {

constexpr int kSamples = 16;

struct Key {
  int kind;  // 0: a PackedA of A; otherwise frozen_derived's FrozenKind
  const float* A;
  bool trans_a;
  std::int64_t M, K, lda;
  CpuGemmKernel kernel;
  std::array<std::uint32_t, kSamples> samples;  // the bits of 16 values spread over the operand
  std::uint64_t also;                           // frozen_derived's digest of its other sources

  bool operator<(const Key& o) const {
    return std::tie(kind, A, trans_a, M, K, lda, kernel, samples, also) <
           std::tie(o.kind, o.A, o.trans_a, o.M, o.K, o.lda, o.kernel, o.samples, o.also);
  }
};

struct Entry {
  std::vector<float> room;
  std::unique_ptr<PackedA> packed;  // kind 0
  bool made = false;                // other kinds: room filled
};

struct Cache {
  std::mutex mutex;
  int scopes = 0;
  std::map<Key, Entry> entries;
};

Cache& cache() {
  static Cache c;
  return c;
}

// Value i of kSamples, spread evenly over the stored rows x columns of the operand.
std::array<std::uint32_t, kSamples> sample(bool trans_a, std::int64_t M, std::int64_t K, const float* A,
                                           std::int64_t lda) {
  const std::int64_t rows = trans_a ? K : M, cols = trans_a ? M : K, n = rows * cols;
  std::array<std::uint32_t, kSamples> s{};
  for (int i = 0; i < kSamples; ++i) {
    const std::int64_t e = n <= 1 ? 0 : (n - 1) * i / (kSamples - 1);
    std::memcpy(&s[static_cast<std::size_t>(i)], A + (e / cols) * lda + e % cols, sizeof(float));
  }
  return s;
}

}  // namespace

FrozenWeightsScope::FrozenWeightsScope() {
  Cache& c = cache();
  const std::lock_guard<std::mutex> lock(c.mutex);
  ++c.scopes;
}

FrozenWeightsScope::~FrozenWeightsScope() {
  Cache& c = cache();
  const std::lock_guard<std::mutex> lock(c.mutex);
  if (--c.scopes == 0) c.entries.clear();
}

bool weights_frozen() {
  Cache& c = cache();
  const std::lock_guard<std::mutex> lock(c.mutex);
  return c.scopes > 0;
}

const PackedA* frozen_packed_a(bool trans_a, std::int64_t M, std::int64_t K, const float* A, std::int64_t lda) {
  Cache& c = cache();
  const std::lock_guard<std::mutex> lock(c.mutex);
  if (c.scopes == 0 || M <= 0 || K <= 0) return nullptr;
  const Key key{0, A, trans_a, M, K, lda, cpu_gemm_kernel(), sample(trans_a, M, K, A, lda), 0};
  Entry& e = c.entries[key];
  if (!e.packed) {
    e.room.resize(static_cast<std::size_t>(PackedA::floats_for(M, K)));
    e.packed = std::make_unique<PackedA>(trans_a, M, K, A, lda, e.room.data());
  }
  return e.packed.get();
}

const float* frozen_derived(FrozenKind kind, const float* w, std::int64_t rows, std::int64_t cols,
                            std::int64_t floats, const std::function<void(float*)>& make, std::uint64_t also) {
  Cache& c = cache();
  const std::lock_guard<std::mutex> lock(c.mutex);
  if (c.scopes == 0 || rows <= 0 || cols <= 0) return nullptr;
  const Key key{static_cast<int>(kind), w, false, rows, cols, cols, cpu_gemm_kernel(),
                sample(false, rows, cols, w, cols), also};
  Entry& e = c.entries[key];
  if (!e.made) {
    e.room.resize(static_cast<std::size_t>(floats));
    make(e.room.data());
    e.made = true;
  }
  return e.room.data();
}

std::uint64_t digest_floats(const float* v, std::int64_t n, std::uint64_t seed) {
  // FNV-1a over 32-bit words, then a final mix (splitmix64's) so nearby inputs spread
  std::uint64_t h = seed ^ 0xcbf29ce484222325ull;
  for (std::int64_t i = 0; i < n; ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, v + i, sizeof bits);
    h = (h ^ bits) * 0x100000001b3ull;
  }
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

std::size_t frozen_weights_entries() {
  Cache& c = cache();
  const std::lock_guard<std::mutex> lock(c.mutex);
  return c.entries.size();
}

std::size_t frozen_weights_bytes() {
  Cache& c = cache();
  const std::lock_guard<std::mutex> lock(c.mutex);
  std::size_t bytes = 0;
  for (const auto& [key, e] : c.entries) bytes += e.room.size() * sizeof(float);
  return bytes;
}

}  // namespace cxr::cpu
