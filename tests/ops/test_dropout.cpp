// dropout / drop_path in the op registry, and the counter-based RNG behind their masks.
#include <bit>
#include <cmath>
#include <random>
#include <vector>

#include "kernels/common/random.h"
#include "kernels/dropout.h"
#include "tensor/backend.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

OpCase dropout_case(Shape shape, DropoutParams d, bool per_sample) {
  OpCase c;
  c.inputs = {{shape, normal()}};
  c.forward = [d, per_sample](Tensors& in) { return Tensors{per_sample ? drop_path(in[0], d) : dropout(in[0], d)}; };
  c.backward = [d, per_sample](const Tensors&, const Tensors&, const Tensors& dout) {
    return Tensors{per_sample ? drop_path_backward(dout[0], d) : dropout_backward(dout[0], d)};
  };
  c.reference = [d, per_sample, shape](const Doubles& in) {
    std::vector<double> y(in[0].size());
    const std::int64_t n = static_cast<std::int64_t>(y.size());
    const std::int64_t group = per_sample ? n / shape[0] : 1;
    const double scale = d.p < 1.f ? 1.0 / (1.0 - static_cast<double>(d.p)) : 0.0;
    if (!d.training || d.p == 0.f) return Doubles{in[0]};
    cpu::dropout_apply<double>(in[0].data(), y.data(), n, group, d.p, scale, d.seed, d.offset);
    return Doubles{y};
  };
  c.forward_tol = {1e-6, 1e-6};
  c.device_tol = {0, 0};  // same mask, same float multiply: bit-identical
  c.device_grad_tol = {0, 0};
  return c;
}

std::int64_t count_zeros(const std::vector<float>& v) {
  std::int64_t z = 0;
  for (float e : v) z += e == 0.f;
  return z;
}

}  // namespace

CXR_OP_CASE("dropout p=0.3 4x8x5x5") {
  return dropout_case({4, 8, 5, 5}, {0.3f, 1234, 0, true}, false);
}
CXR_OP_CASE("dropout p=0.5 offset 1000 777") {
  return dropout_case({777}, {0.5f, 99, 1000, true}, false);
}
CXR_OP_CASE("dropout eval is the identity") {
  return dropout_case({3, 10}, {0.5f, 1, 0, false}, false);
}
CXR_OP_CASE("drop_path p=0.4 16x3x4x4") {
  return dropout_case({16, 3, 4, 4}, {0.4f, 42, 7, true}, true);
}
CXR_OP_CASE("drop_path p=0 is the identity") {
  return dropout_case({4, 6}, {0.f, 42, 7, true}, true);
}

TEST_CASE("random_uniform is uniform on [0, 1) and decorrelated across seeds" * doctest::test_suite("cpu")) {
  constexpr int kBuckets = 64;
  constexpr std::int64_t kDraws = 1 << 20;
  std::vector<std::int64_t> hist(kBuckets, 0);
  double sum = 0.0, lag = 0.0, prev = 0.0;
  std::int64_t out_of_range = 0;
  for (std::int64_t i = 0; i < kDraws; ++i) {
    const float u = random_uniform(2024, static_cast<std::uint64_t>(i));
    if (!(u >= 0.f && u < 1.f)) {
      ++out_of_range;
      continue;
    }
    hist[static_cast<int>(u * kBuckets)]++;
    sum += u;
    lag += (u - 0.5) * (prev - 0.5);
    prev = u;
  }
  // Chi-square with 63 degrees of freedom: mean 63, sd ~11; 130 is beyond 6 sd.
  const double expected = static_cast<double>(kDraws) / kBuckets;
  double chi2 = 0.0;
  for (std::int64_t h : hist) chi2 += (h - expected) * (h - expected) / expected;
  CHECK(out_of_range == 0);
  CHECK(chi2 < 130.0);
  CHECK(std::fabs(sum / kDraws - 0.5) < 0.002);
  CHECK(std::fabs(lag / kDraws) < 0.002);  // serial correlation (1/12 would be full correlation)
  // Neighbouring seeds give unrelated streams.
  std::int64_t equal_bits = 0;
  for (std::uint64_t i = 0; i < 4096; ++i) equal_bits += 64 - std::popcount(random_bits(1, i) ^ random_bits(2, i));
  CHECK(std::fabs(static_cast<double>(equal_bits) / (4096 * 64) - 0.5) < 0.01);
}

TEST_CASE("dropout keeps about 1 - p of a large tensor and scales by 1 / (1 - p)" * doctest::test_suite("cpu")) {
  Tensor x = Tensor::full({1 << 20}, 1.f);
  for (float p : {0.1f, 0.5f, 0.9f}) {
    const std::vector<float> y = dropout(x, {p, 77, 0, true}).to_vector();
    const double kept = 1.0 - static_cast<double>(count_zeros(y)) / y.size();
    CHECK(std::fabs(kept - (1.0 - p)) < 0.003);  // sd of the fraction ~ 5e-4
    for (float e : y) {
      if (e != 0.f && e != 1.f / (1.f - p)) FAIL("kept element scaled to " << e);
    }
  }
  // drop_path: per-sample, whole rows zeroed.
  Tensor xs = Tensor::full({20000, 3}, 1.f);
  const std::vector<float> ys = drop_path(xs, {0.25f, 5, 0, true}).to_vector();
  std::int64_t dropped = 0, mixed_rows = 0;
  for (std::size_t n = 0; n < 20000; ++n) {
    mixed_rows += !(ys[3 * n] == ys[3 * n + 1] && ys[3 * n] == ys[3 * n + 2]);
    dropped += ys[3 * n] == 0.f;
  }
  CHECK(mixed_rows == 0);
  CHECK(std::fabs(dropped / 20000.0 - 0.25) < 0.015);
  // p = 1 drops everything; a different offset gives a different mask.
  CHECK(count_zeros(dropout(x, {1.f, 77, 0, true}).to_vector()) == x.numel());
  CHECK(dropout(x, {0.5f, 77, 0, true}).to_vector() != dropout(x, {0.5f, 77, 1, true}).to_vector());
  CHECK_THROWS_WITH_AS(dropout(x, {1.5f, 0, 0, true}), doctest::Contains("p must be in [0, 1]"), cxr::Error);
}

TEST_CASE("dropout and drop_path: every element is the definition's, across thread chunks and long groups" *
          doctest::test_suite("cpu")) {
  // y_i = x_i * [keep(seed, offset + i / group)] * scale, element by element, against the fast
  // loop's runs (groups longer than its chunks of 2^14 elements and shorter ones, ragged ends,
  // two threads).
  const ThreadCountScope threads(2);
  std::mt19937_64 rng(3);
  std::normal_distribution<float> nd;
  for (const std::int64_t group : {std::int64_t{1}, std::int64_t{3}, std::int64_t{2500}, std::int64_t{37000}}) {
    CAPTURE(group);
    const std::int64_t n = 5 * 37000 + 11;
    std::vector<float> x(static_cast<std::size_t>(n)), y(x.size());
    for (float& v : x) v = nd(rng);
    const float p = 0.3f, scale = 1.f / (1.f - p);
    cpu::dropout_apply<float>(x.data(), y.data(), n, group, p, scale, 11, 5);
    std::int64_t wrong = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const float want = dropout_keep(11, 5 + static_cast<std::uint64_t>(i / group), p) ? x[i] * scale : 0.f;
      wrong += y[i] != want;
    }
    CHECK(wrong == 0);
  }
}

TEST_CASE("dropout and drop_path masks are identical on the CPU and the device" * doctest::test_suite(gpu_suite()) *
          doctest::skip(skip_gpu_cases())) {
  if (!backend::has_device()) FAIL("CXR_REQUIRE_GPU=1 but no CUDA device");
  std::mt19937_64 rng(11);
  Tensor x = Tensor::randn({8, 4, 25, 25}, rng);  // 20000 elements
  Tensor xd = x.to(Device::CUDA);
  for (DropoutParams d : {DropoutParams{0.2f, 3, 0, true}, DropoutParams{0.5f, 1ull << 40, 123456789, true},
                          DropoutParams{0.9f, 17, 5, true}}) {
    CHECK(dropout(x, d).to_vector() == dropout(xd, d).to_vector());
    CHECK(drop_path(x, d).to_vector() == drop_path(xd, d).to_vector());
    CHECK(dropout_backward(x, d).to_vector() == dropout_backward(xd, d).to_vector());
  }
}
