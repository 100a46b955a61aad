// Tensor: shapes, views, copies between devices, errors that name both sides, the caching
// allocator. The device part runs on whatever CUDA device this binary has (emulated or real).
#include <doctest/doctest.h>

#include "kernels/cast.h"
#include "tensor/allocator.h"
#include "tensor/backend.h"
#include "tensor/stream.h"
#include "tensor/tensor.h"
#include "tests/op_check.h"

using namespace cxr;

TEST_SUITE("tensor") {

TEST_CASE("empty, zeros, full and from_vector have the shape, dtype and values asked for") {
  Tensor z = Tensor::zeros({2, 3, 4});
  CHECK(z.shape() == Shape{2, 3, 4});
  CHECK(z.numel() == 24);
  CHECK(z.dtype() == DType::F32);
  CHECK(z.is_cpu());
  CHECK(z.is_contiguous());
  CHECK(z.strides() == Shape{12, 4, 1});
  for (float v : z.to_vector()) CHECK(v == 0.f);
  Tensor f = Tensor::full({5}, 2.5f);
  for (float v : f.to_vector()) CHECK(v == 2.5f);
  Tensor t = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(t.f32()[4] == 5.f);
  CHECK(t.str() == "f32[2, 3] cpu");
  CHECK(Tensor::empty({3}, DType::U8).nbytes() == 3);
  CHECK(Tensor::empty({3}, DType::BF16).nbytes() == 6);
}

TEST_CASE("views share storage: view, narrow, select, permute") {
  Tensor t = Tensor::from_vector({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {3, 4});
  Tensor v = t.view({2, -1});
  CHECK(v.shape() == Shape{2, 6});
  v.f32()[0] = 42.f;
  CHECK(t.f32()[0] == 42.f);

  Tensor rows = t.narrow(0, 1, 2);  // rows 1 and 2
  CHECK(rows.shape() == Shape{2, 4});
  CHECK(rows.is_contiguous());
  CHECK(rows.to_vector() == std::vector<float>{4, 5, 6, 7, 8, 9, 10, 11});

  Tensor col = t.select(1, 2);  // column 2, strided
  CHECK(col.shape() == Shape{3});
  CHECK_FALSE(col.is_contiguous());
  CHECK(col.to_vector() == std::vector<float>{2, 6, 10});

  Tensor tr = t.permute({1, 0});
  CHECK(tr.shape() == Shape{4, 3});
  CHECK(tr.contiguous().to_vector() == std::vector<float>{42, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  CHECK(tr.reshape({12}).numel() == 12);
}

TEST_CASE("bad shapes and dtypes raise errors that name both sides") {
  Tensor a = Tensor::zeros({2, 3});
  Tensor b = Tensor::zeros({3, 2});
  CHECK_THROWS_WITH_AS(check_same_shape("add", "a", a, "b", b),
                       doctest::Contains("add: shapes differ: a is [2, 3] but b is [3, 2]"), Error);
  CHECK_THROWS_WITH_AS(a.view({4, 2}), doctest::Contains("has 8 elements but the tensor f32[2, 3] cpu has 6"), Error);
  CHECK_THROWS_WITH_AS(a.narrow(1, 2, 2), doctest::Contains("out of bounds"), Error);
  Tensor u = Tensor::zeros({2, 3}, DType::U8);
  CHECK_THROWS_WITH_AS(u.f32(), doctest::Contains("expected dtype f32, found u8"), Error);
  CHECK_THROWS_WITH_AS(a.copy_(u), doctest::Contains("dtypes differ"), Error);
  CHECK_THROWS_WITH_AS(a.permute({0, 0}), doctest::Contains("invalid axis order"), Error);
  CHECK_THROWS_WITH_AS(Tensor().to_vector(), doctest::Contains("undefined"), Error);
  CHECK_THROWS_WITH_AS(parse_device("tpu"), doctest::Contains("unknown device 'tpu'"), Error);
}

TEST_CASE("contiguous() of channel-last permutes: every element where its indices say") {
  // (N, C, H, W) <-> (N, H, W, C) merge into transposes of (C, HW) matrices, which take the tiled
  // transpose path; sizes that are not multiples of its 16 x 16 tiles, a channel slice (an outer
  // stride that is not the matrix size), bf16 (2-byte elements) and one large enough for threads.
  std::mt19937_64 rng(11);
  for (const Shape& shape : {Shape{2, 5, 3, 7}, Shape{3, 33, 6, 5}, Shape{2, 96, 56, 56}}) {
    const Tensor x = Tensor::randn(shape, rng);
    const std::int64_t N = shape[0], C = shape[1], H = shape[2], W = shape[3];
    const Tensor nhwc = x.permute({0, 2, 3, 1}).contiguous();
    REQUIRE(nhwc.shape() == Shape{N, H, W, C});
    const float* src = x.f32();
    const float* out = nhwc.f32();
    bool same = true;
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t i = 0; i < H * W; ++i)
          same = same && out[(n * H * W + i) * C + c] == src[(n * C + c) * H * W + i];
    CHECK_MESSAGE(same, "NCHW -> NHWC of ", x.str());
    CHECK(nhwc.permute({0, 3, 1, 2}).contiguous().to_vector() == x.to_vector());
    const Tensor sliced = x.narrow(1, 1, C - 1).permute({0, 2, 3, 1}).contiguous();
    CHECK(sliced.to_vector() == nhwc.narrow(3, 1, C - 1).contiguous().to_vector());
    const Tensor half = to_bf16(x);
    const Tensor half_nhwc = half.permute({0, 2, 3, 1}).contiguous();
    CHECK(to_f32(half_nhwc).to_vector() == to_f32(to_bf16(nhwc)).to_vector());
  }
}

TEST_CASE("seeded random tensors are reproducible") {
  std::mt19937_64 r1(7), r2(7);
  CHECK(Tensor::randn({100}, r1).to_vector() == Tensor::randn({100}, r2).to_vector());
  std::mt19937_64 r3(7);
  auto u = Tensor::uniform({1000}, r3, -2.f, 3.f).to_vector();
  for (float v : u) CHECK((v >= -2.f && v < 3.f));
}

}  // TEST_SUITE("tensor")

TEST_SUITE(cxr::test::gpu_suite()) {  // "cuda-emu" or "cuda": runs on this binary's device

TEST_CASE("host-device round trips, strided views and fills on the CUDA device" *
          doctest::skip(cxr::test::skip_gpu_cases())) {
  REQUIRE_MESSAGE(backend::has_device(), "CXR_REQUIRE_GPU=1 but no GPU");
  std::mt19937_64 rng(3);
  Tensor h = Tensor::randn({3, 5, 7}, rng);
  Tensor d = h.to(Device::CUDA);
  CHECK(d.is_cuda());
  CHECK(d.to_vector() == h.to_vector());
  // A strided view made contiguous on the device equals the same on the host.
  Tensor dp = d.permute({2, 0, 1}).contiguous();
  CHECK(dp.is_cuda());
  CHECK(dp.to_vector() == h.permute({2, 0, 1}).contiguous().to_vector());
  Tensor f = Tensor::full({1000}, 3.f, Device::CUDA);
  for (float v : f.to_vector()) CHECK(v == 3.f);
  Tensor z = Tensor::zeros({33}, DType::F32, Device::CUDA);
  for (float v : z.to_vector()) CHECK(v == 0.f);
  Tensor c = d.clone();
  CHECK(c.storage() != d.storage());
  CHECK(c.to_vector() == h.to_vector());
}

TEST_CASE("asynchronous copies from pinned memory on a side stream" * doctest::skip(cxr::test::skip_gpu_cases())) {
  REQUIRE(backend::has_device());
  Tensor pinned = Tensor::empty_pinned({4, 256});
  CHECK(pinned.is_pinned());
  for (int i = 0; i < 1024; ++i) pinned.f32()[i] = static_cast<float>(i);
  Tensor d = Tensor::empty({4, 256}, DType::F32, Device::CUDA);
  Stream copy_stream;
  Event done;
  d.copy_async_(pinned, copy_stream);
  done.record(copy_stream);
  done.block(Stream::compute());  // compute waits for the copy
  done.synchronize();
  CHECK(done.query());
  std::vector<float> back = d.to_vector();
  for (int i = 0; i < 1024; ++i) REQUIRE(back[i] == static_cast<float>(i));
}

TEST_CASE("the caching allocator reuses freed blocks instead of calling the runtime" *
          doctest::skip(cxr::test::skip_gpu_cases())) {
  REQUIRE(backend::has_device());
  { Tensor warm = Tensor::empty({1000}, DType::F32, Device::CUDA); }
  const DeviceMemoryStats before = device_memory_stats();
  for (int step = 0; step < 10; ++step) {
    Tensor t = Tensor::empty({1000}, DType::F32, Device::CUDA);
    Tensor u = Tensor::empty({999}, DType::F32, Device::CUDA);  // rounds to the same 4 KiB block size
  }
  const DeviceMemoryStats after = device_memory_stats();
  CHECK(after.runtime_allocs - before.runtime_allocs <= 1);  // only the second block of step 0
  CHECK(after.cache_hits - before.cache_hits >= 19);
  CHECK(after.in_use == before.in_use);
}

TEST_CASE("device errors name the devices" * doctest::skip(cxr::test::skip_gpu_cases())) {
  REQUIRE(backend::has_device());
  Tensor a = Tensor::zeros({2});
  Tensor b = Tensor::zeros({2}, DType::F32, Device::CUDA);
  CHECK_THROWS_WITH_AS(check_same_device("add", "a", a, "b", b),
                       doctest::Contains("devices differ: a is on cpu but b is on cuda"), Error);
}

}  // TEST_SUITE(gpu_suite())
