// CUDA graphs at the tensor level (tensor/stream.h Graph, tensor/allocator.h graph pools):
// ops captured from the compute stream replay on the captured addresses; allocations during
// the capture come from the graph's private pool, whose blocks are never handed to work
// outside the graph while it exists; a host read during the capture fails it. On the
// emulated device (cuda_emu's stream capture) and on a real GPU alike.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "kernels/reduce.h"
#include "tensor/allocator.h"
#include "tensor/stream.h"
#include "tensor/tensor.h"
#include "tests/op_check.h"

using namespace cxr;

TEST_SUITE(cxr::test::gpu_suite()) {

TEST_CASE("graph: captured ops replay on their addresses; capture-time blocks stay in the graph's pool until the "
          "graph is destroyed" * doctest::skip(cxr::test::skip_gpu_cases())) {
  Tensor x = Tensor::full({1000}, 1.f, Device::CUDA);
  void* pool_block = nullptr;
  const std::size_t reserved_before = device_memory_stats().graph_pool_reserved;
  {
    Graph g;
    Tensor s;
    g.begin_capture(Stream::compute());
    s = sum(x);  // the (1) result and the partials: allocated during the capture
    Tensor twice = sum(x);
    g.end_capture();
    REQUIRE(g.ready());
    CHECK(is_graph_pool_block(s.raw_data()));
    CHECK(device_memory_stats().graph_pool_reserved > reserved_before);
    g.replay();
    CHECK(s.item() == 1000.f);
    CHECK(twice.item() == 1000.f);
    x.copy_(Tensor::full({1000}, 2.f));  // new input, same address
    g.replay();
    CHECK(s.item() == 2000.f);

    // Released after the capture: the block goes back to the pool, not to the general cache,
    // so an allocation of the same size class outside the graph never gets it.
    pool_block = twice.raw_data();
    twice = Tensor();
    std::vector<Tensor> others;
    for (int i = 0; i < 8; ++i) {
      others.push_back(Tensor::empty({1}, DType::F32, Device::CUDA));
      CHECK(others.back().raw_data() != pool_block);
      CHECK(!is_graph_pool_block(others.back().raw_data()));
    }
    g.replay();  // still valid: its blocks were not reused
    CHECK(s.item() == 2000.f);
  }
  // The graph is gone: its pool's blocks return to the general cache.
  CHECK(device_memory_stats().graph_pool_reserved <= reserved_before + 512);  // `s` was released too
  bool reused = false;
  std::vector<Tensor> again;
  for (int i = 0; i < 64 && !reused; ++i) {
    again.push_back(Tensor::empty({1}, DType::F32, Device::CUDA));
    reused = again.back().raw_data() == pool_block;
  }
  CHECK(reused);
}

TEST_CASE("graph: a host read during the capture fails the capture with a clear error; the stream works again" *
          doctest::skip(cxr::test::skip_gpu_cases())) {
  const Tensor x = Tensor::full({100}, 1.f, Device::CUDA);
  Graph g;
  g.begin_capture(Stream::compute());
  const Tensor s = sum(x);
  CHECK_THROWS_AS((void)s.item(), Error);  // item() waits for the device: not allowed in a capture
  std::string message;
  try {
    g.end_capture();
  } catch (const Error& e) {
    message = e.what();
  }
  MESSAGE(message);
  CHECK(message.find("cudaStreamEndCapture") != std::string::npos);
  CHECK(!g.ready());
  CHECK(sum(x).item() == 100.f);  // eager work runs again
}

}  // TEST_SUITE
