// Device out of memory (docs/reliability.md): a request the device cannot hold is a
// DeviceOutOfMemory error whose message gives the requested size, the free and total memory
// and a hint (a smaller --batch-size), not a crash; the allocator stays usable. On the
// emulated device (its memory: the host's RAM) and on a real GPU alike.
#include <doctest/doctest.h>

#include <cstdio>
#include <string>

#include "tensor/allocator.h"
#include "tensor/backend.h"
#include "tensor/tensor.h"
#include "tests/op_check.h"

using namespace cxr;

namespace {
std::string gib(std::size_t bytes) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / double(std::size_t{1} << 30));
  return buf;
}
}  // namespace

TEST_SUITE(cxr::test::gpu_suite()) {

TEST_CASE("out of device memory: a message with the requested and the free size and a --batch-size hint" *
          doctest::skip(cxr::test::skip_gpu_cases())) {
  REQUIRE(backend::has_device());
  std::size_t free_b = 0, total_b = 0;
  backend::device_memory_info(&free_b, &total_b);
  { Tensor warm = Tensor::empty({1000}, DType::F32, Device::CUDA); }  // a cached block, returned on OOM
  const DeviceMemoryStats before = device_memory_stats();
  // More than the whole device: 1 GiB past its total, in f32 elements.
  const std::int64_t n = static_cast<std::int64_t>((total_b + (std::size_t{1} << 30)) / 4);
  const std::size_t bytes = static_cast<std::size_t>(n) * 4;
  std::string message;
  try {
    Tensor t = Tensor::empty({n}, DType::F32, Device::CUDA);
    FAIL("allocating " << bytes << " bytes on a device of " << total_b << " succeeded");
  } catch (const DeviceOutOfMemory& e) {
    message = e.what();
    CHECK(e.requested_bytes == bytes);
    CHECK(e.total_bytes == total_b);
    CHECK(e.free_bytes <= e.total_bytes);
  }
  MESSAGE(message);
  CHECK(message.find("out of memory") != std::string::npos);
  CHECK(message.find("requested " + gib(bytes)) != std::string::npos);
  CHECK(message.find("free of " + gib(total_b)) != std::string::npos);
  CHECK(message.find("--batch-size") != std::string::npos);
  // Nothing leaked, nothing broken: the next allocation works.
  const DeviceMemoryStats after = device_memory_stats();
  CHECK(after.in_use == before.in_use);
  Tensor ok = Tensor::full({256}, 2.f, Device::CUDA);
  CHECK(ok.to_vector()[255] == 2.f);
}

}  // TEST_SUITE
