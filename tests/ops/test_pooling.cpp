// max_pool2d and global_avg_pool in the op registry, plus the index / tie rules of max pooling.
#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <random>

#include "kernels/global_avg_pool.h"
#include "kernels/max_pool2d.h"
#include "tensor/backend.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

// Distinct values: a random permutation of (k - n/2) * 0.01, k = 0..n-1, so no window has a
// tie and finite differences (step ~1e-4) never change an argmax. Reshuffled each n draws.
Generator distinct_values(std::int64_t n) {
  struct State {
    std::vector<float> values;
    std::size_t next = 0;
  };
  auto st = std::make_shared<State>();
  return [st, n](std::mt19937_64& rng) {
    if (st->next == 0) {
      st->values.resize(static_cast<std::size_t>(n));
      for (std::int64_t k = 0; k < n; ++k) st->values[k] = 0.01f * static_cast<float>(k - n / 2);
      std::shuffle(st->values.begin(), st->values.end(), rng);
    }
    const float v = st->values[st->next];
    st->next = (st->next + 1) % st->values.size();
    return v;
  };
}

OpCase max_pool_case(Shape shape, MaxPool2dParams p) {
  OpCase c;
  c.inputs = {{shape, distinct_values(shape_numel(shape))}};
  c.forward = [p](Tensors& in) { return Tensors{max_pool2d(in[0], p).y}; };
  c.backward = [p](const Tensors& in, const Tensors&, const Tensors& dout) {
    const MaxPool2dOutput f = max_pool2d(in[0], p);
    return Tensors{max_pool2d_backward(dout[0], f.indices, in[0].shape(), p)};
  };
  c.reference = [shape, p](const Doubles& in) {
    const int H = static_cast<int>(shape[2]), W = static_cast<int>(shape[3]);
    const int OH = static_cast<int>(max_pool2d_out_size(H, p)), OW = static_cast<int>(max_pool2d_out_size(W, p));
    const std::int64_t planes = shape[0] * shape[1];
    std::vector<double> y(static_cast<std::size_t>(planes * OH * OW));
    std::vector<std::int32_t> idx(y.size());
    cpu::max_pool2d_forward<double>(in[0].data(), y.data(), idx.data(), planes, H, W, OH, OW, p);
    return Doubles{y};
  };
  c.forward_tol = {0, 0};
  c.device_tol = {0, 0};
  c.device_grad_tol = {1e-6, 1e-6};
  return c;
}

OpCase global_avg_pool_case(Shape shape) {
  OpCase c;
  c.inputs = {{shape, normal()}};
  c.forward = [](Tensors& in) { return Tensors{global_avg_pool(in[0])}; };
  c.backward = [](const Tensors& in, const Tensors&, const Tensors& dout) {
    return Tensors{global_avg_pool_backward(dout[0], in[0].shape())};
  };
  c.reference = [shape](const Doubles& in) {
    std::vector<double> y(static_cast<std::size_t>(shape[0] * shape[1]));
    cpu::global_avg_pool_forward<double>(in[0].data(), y.data(), shape[0] * shape[1], shape[2] * shape[3]);
    return Doubles{y};
  };
  c.forward_tol = {1e-6, 1e-5};
  c.device_tol = {1e-6, 1e-5};
  c.device_grad_tol = {1e-7, 1e-6};
  return c;
}

std::vector<std::int32_t> indices_of(const Tensor& t) {
  Tensor c = t.cpu();
  const std::int32_t* p = c.data<std::int32_t>();
  return std::vector<std::int32_t>(p, p + c.numel());
}

}  // namespace

CXR_OP_CASE("max_pool2d 3x3 s2 p1 2x3x9x9 (ResNet stem)") {
  return max_pool_case({2, 3, 9, 9}, {3, 2, 1});
}
CXR_OP_CASE("max_pool2d 3x3 s2 p1 1x4x8x10 (even sizes)") {
  return max_pool_case({1, 4, 8, 10}, {3, 2, 1});
}
CXR_OP_CASE("max_pool2d 2x2 s2 p0 2x2x7x6") {
  return max_pool_case({2, 2, 7, 6}, {2, 2, 0});
}
CXR_OP_CASE("max_pool2d 3x3 s1 p1 1x2x5x5 (dense overlap)") {
  return max_pool_case({1, 2, 5, 5}, {3, 1, 1});
}
CXR_OP_CASE("global_avg_pool 2x8x7x7") {
  return global_avg_pool_case({2, 8, 7, 7});
}
CXR_OP_CASE("global_avg_pool 3x5x1x1") {
  return global_avg_pool_case({3, 5, 1, 1});
}
CXR_OP_CASE("global_avg_pool 2x3x13x11 (plane longer than a warp)") {
  return global_avg_pool_case({2, 3, 13, 11});
}

TEST_CASE("max_pool2d returns PyTorch's indices: flat in the plane, first maximum on ties" *
          doctest::test_suite("cpu")) {
  // 1x1x4x4, all equal: every window's argmax is its first (top-left, clipped) element.
  Tensor x = Tensor::full({1, 1, 4, 4}, 2.f);
  MaxPool2dOutput r = max_pool2d(x, {3, 2, 1});
  CHECK(r.y.shape() == Shape{1, 1, 2, 2});
  CHECK(r.indices.dtype() == DType::I32);
  CHECK(indices_of(r.indices) == std::vector<std::int32_t>{0, 1, 4, 5});
  // A tie between two maxima inside one window: the row-major first wins.
  Tensor z = Tensor::from_vector({0, 5, 5, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0}, {1, 1, 4, 4});
  CHECK(indices_of(max_pool2d(z, {3, 2, 1}).indices) == std::vector<std::int32_t>{1, 1, 8, 5});
  // Backward sums dy where windows share an argmax.
  Tensor dy = Tensor::from_vector({1, 2, 3, 4}, {1, 1, 2, 2});
  std::vector<float> dx = max_pool2d_backward(dy, max_pool2d(z, {3, 2, 1}).indices, z.shape(), {3, 2, 1}).to_vector();
  CHECK(dx[1] == 3.f);
  CHECK(dx[8] == 3.f);
  CHECK(dx[5] == 4.f);
  CHECK(std::accumulate(dx.begin(), dx.end(), 0.f) == 10.f);
}

TEST_CASE("max_pool2d's row-by-row CPU forward gives the reference scan's values and indices bit for bit" *
          doctest::test_suite("cpu")) {
  // Values from five levels (ties in most windows), with NaNs and -inf sprinkled in (the last
  // NaN wins, an all -inf window points at its first element), for ResNet's 3x3 stride 2 (the
  // compiled row pass) and other kernels, strides and paddings, planes from smaller than a
  // window's reach to wider than the interior loop's vectors, odd and even.
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const MaxPool2dParams params[] = {{3, 2, 1}, {3, 2, 0}, {2, 2, 0}, {3, 1, 1}, {5, 3, 2}, {4, 1, 2}, {1, 1, 0}};
  const std::pair<int, int> planes[] = {{3, 3}, {5, 4}, {9, 9}, {8, 10}, {17, 40}, {6, 33}};
  std::mt19937_64 rng(31);
  std::uniform_int_distribution<int> level(0, 4), odd(0, 40);
  for (const MaxPool2dParams& p : params)
    for (const auto& [H, W] : planes) {
      if (max_pool2d_out_size(H, p) < 1 || max_pool2d_out_size(W, p) < 1) continue;
      CAPTURE(p.kernel);
      CAPTURE(p.stride);
      CAPTURE(p.padding);
      CAPTURE(H);
      CAPTURE(W);
      std::vector<float> v(static_cast<std::size_t>(3 * H * W));
      for (float& e : v) {
        const int o = odd(rng);
        e = o == 0 ? nan : o == 1 ? -inf : static_cast<float>(level(rng));
      }
      const int OH = static_cast<int>(max_pool2d_out_size(H, p)), OW = static_cast<int>(max_pool2d_out_size(W, p));
      const std::size_t out = static_cast<std::size_t>(3 * OH * OW);
      std::vector<float> y_ref(out), y(out);
      std::vector<std::int32_t> i_ref(out), i(out);
      cpu::max_pool2d_forward<float>(v.data(), y_ref.data(), i_ref.data(), 3, H, W, OH, OW, p);
      cpu::max_pool2d_forward_rows(v.data(), y.data(), i.data(), 3, H, W, OH, OW, p);
      CHECK(i == i_ref);
      CHECK(std::memcmp(y.data(), y_ref.data(), out * sizeof(float)) == 0);
    }
  // An all -inf plane: every index is its window's first element, as the scan leaves it.
  std::vector<float> v(16, -inf), y(4);
  std::vector<std::int32_t> i(4);
  cpu::max_pool2d_forward_rows(v.data(), y.data(), i.data(), 1, 4, 4, 2, 2, {3, 2, 1});
  CHECK(i == std::vector<std::int32_t>{0, 1, 4, 5});
}

TEST_CASE("max_pool2d indices and tie rule agree on the device" * doctest::test_suite(gpu_suite()) *
          doctest::skip(skip_gpu_cases())) {
  if (!backend::has_device()) FAIL("CXR_REQUIRE_GPU=1 but no CUDA device");
  std::mt19937_64 rng(3);
  // Values on a coarse grid: many ties.
  std::vector<float> v(2 * 3 * 11 * 9);
  for (float& e : v) e = static_cast<float>(rng() % 4);
  Tensor x = Tensor::from_vector(v, {2, 3, 11, 9});
  for (MaxPool2dParams p : {MaxPool2dParams{3, 2, 1}, MaxPool2dParams{2, 2, 0}, MaxPool2dParams{3, 1, 1}}) {
    MaxPool2dOutput c = max_pool2d(x, p);
    MaxPool2dOutput g = max_pool2d(x.to(Device::CUDA), p);
    CHECK(indices_of(c.indices) == indices_of(g.indices));
    CHECK(c.y.to_vector() == g.y.to_vector());
    Tensor dy = Tensor::randn(c.y.shape(), rng);
    expect_close("max_pool2d dx with ties", max_pool2d_backward(dy.to(Device::CUDA), g.indices, x.shape(), p),
                 max_pool2d_backward(dy, c.indices, x.shape(), p), {1e-6, 1e-6});
  }
}

TEST_CASE("max_pool2d rejects bad arguments" * doctest::test_suite("cpu")) {
  CHECK_THROWS_WITH_AS(max_pool2d(Tensor::zeros({1, 1, 4, 4}), {3, 2, 2}), doctest::Contains("padding"), cxr::Error);
  CHECK_THROWS_WITH_AS(max_pool2d(Tensor::zeros({1, 1, 1, 1}), {3, 2, 0}), doctest::Contains("smaller than"),
                       cxr::Error);
  CHECK_THROWS_WITH_AS(global_avg_pool(Tensor::zeros({2, 3})), doctest::Contains("x"), cxr::Error);
}
