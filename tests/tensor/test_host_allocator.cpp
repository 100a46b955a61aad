// The host block cache (tensor/host_allocator.h): large CPU tensors reuse released blocks of
// the same rounded size (or up to twice it), small ones bypass it, the cache stays below twice
// the peak in use, and empty_host_cache() gives everything back. AddressSanitizer builds turn
// the cache off: these cases are skipped there (doctest reports them as skipped).
#include <doctest/doctest.h>

#include <cstdint>

#include "tensor/host_allocator.h"
#include "tensor/tensor.h"

using namespace cxr;

TEST_SUITE("tensor") {

TEST_CASE("host allocator: a released large block is handed out again for the same rounded size" *
          doctest::skip(!host_cache_enabled())) {
  empty_host_cache();
  const auto s0 = host_memory_stats();
  const std::size_t bytes = (std::size_t{5} << 20) + 12345;  // rounds to 6 MiB
  void* a = host_alloc(bytes);
  REQUIRE(a != nullptr);
  CHECK(reinterpret_cast<std::uintptr_t>(a) % (std::size_t{2} << 20) == 0);
  static_cast<unsigned char*>(a)[bytes - 1] = 7;  // the whole request is usable
  host_release(a, bytes);
  CHECK(host_memory_stats().cached == s0.cached + (std::size_t{6} << 20));
  void* b = host_alloc((std::size_t{6} << 20) - 1);  // same rounded size: the same block
  CHECK(b == a);
  const auto s1 = host_memory_stats();
  CHECK(s1.cache_hits == s0.cache_hits + 1);
  CHECK(s1.system_allocs == s0.system_allocs + 1);
  void* c = host_alloc(std::size_t{8} << 20);  // another size: from the system
  CHECK(c != b);
  CHECK(host_memory_stats().system_allocs == s0.system_allocs + 2);
  host_release(b, (std::size_t{6} << 20) - 1);
  host_release(c, std::size_t{8} << 20);
  // Best fit up to twice the request: 3 MiB (4 MiB rounded) takes the cached 6 MiB block,
  // 2 MiB does not take the 8 MiB one (four times its size).
  void* d = host_alloc(std::size_t{3} << 20);
  CHECK(d == a);
  void* e = host_alloc(std::size_t{2} << 20);
  CHECK(e != c);
  CHECK(host_memory_stats().system_allocs == s0.system_allocs + 3);
  host_release(d, std::size_t{3} << 20);
  host_release(e, std::size_t{2} << 20);
  empty_host_cache();
  CHECK(host_memory_stats().cached == 0);
}

TEST_CASE("host allocator: small requests bypass the cache; the cache stays below twice the peak in use" *
          doctest::skip(!host_cache_enabled())) {
  empty_host_cache();
  const auto s0 = host_memory_stats();
  void* small = host_alloc(1000);
  CHECK(reinterpret_cast<std::uintptr_t>(small) % 64 == 0);
  host_release(small, 1000);
  CHECK(host_memory_stats().system_allocs == s0.system_allocs);
  CHECK(host_memory_stats().cached == 0);
  // Release far more than was ever in use at once: the cache keeps at most the peak.
  const std::size_t bytes = std::size_t{4} << 20;
  for (int i = 0; i < 64; ++i) {
    void* p = host_alloc(bytes);
    host_release(p, bytes);
  }
  const auto s1 = host_memory_stats();
  CHECK(s1.cached <= 2 * s1.peak_in_use);
  CHECK(s1.cache_hits >= s0.cache_hits + 63);  // one block, reused
  empty_host_cache();
}

TEST_CASE("host allocator: CPU tensors of a repeated shape reuse their memory, and their values are their own" *
          doctest::skip(!host_cache_enabled())) {
  empty_host_cache();
  const auto s0 = host_memory_stats();
  for (int step = 0; step < 4; ++step) {
    Tensor t = Tensor::full({32, 64, 32, 32}, static_cast<float>(step), Device::CPU);  // 8 MiB
    CHECK(t.data<float>()[0] == static_cast<float>(step));
    CHECK(t.data<float>()[t.numel() - 1] == static_cast<float>(step));
  }
  const auto s1 = host_memory_stats();
  CHECK(s1.system_allocs == s0.system_allocs + 1);
  CHECK(s1.cache_hits == s0.cache_hits + 3);
  empty_host_cache();
}

}  // TEST_SUITE
