// Activations in the op registry: forward vs double reference, gradient vs finite
// differences on the CPU; forward and gradient vs the CPU on each CUDA device. The f32 GELU's
// vector path: bits independent of threads and position, tails.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/activation.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

OpCase activation_case(Activation a, Shape shape) {
  OpCase c;
  // ReLU has a kink at 0: keep inputs away from it so finite differences are meaningful.
  c.inputs = {{shape, a == Activation::ReLU ? away_from_zero(-3.f, 3.f, 0.01f) : uniform(-6.f, 6.f)}};
  c.forward = [a](Tensors& in) { return Tensors{activation_forward(a, in[0])}; };
  c.backward = [a](const Tensors& in, const Tensors&, const Tensors& dout) {
    return Tensors{activation_backward(a, in[0], dout[0])};
  };
  c.reference = [a](const Doubles& in) {
    std::vector<double> y(in[0].size());
    cpu::activation_forward<double>(a, in[0].data(), y.data(), static_cast<std::int64_t>(y.size()));
    return Doubles{y};
  };
  c.forward_tol = {1e-6, 1e-5};
  c.device_tol = {1e-6, 1e-5};
  c.device_grad_tol = {1e-6, 1e-5};
  return c;
}

}  // namespace

CXR_OP_CASE("relu 2x3x5x7") { return activation_case(Activation::ReLU, {2, 3, 5, 7}); }
CXR_OP_CASE("relu 1000 (partial block)") { return activation_case(Activation::ReLU, {1000}); }
CXR_OP_CASE("silu 2x8x9x9") { return activation_case(Activation::SiLU, {2, 8, 9, 9}); }
CXR_OP_CASE("sigmoid 4x14") { return activation_case(Activation::Sigmoid, {4, 14}); }
CXR_OP_CASE("gelu 3x7x5x5") { return activation_case(Activation::GELU, {3, 7, 5, 5}); }

TEST_CASE("activation rejects a non-f32 or strided input with a clear message" * doctest::test_suite("cpu")) {
  Tensor x = Tensor::zeros({4, 4});
  Tensor strided = x.permute({1, 0});
  CHECK_THROWS_WITH_AS(activation_forward(Activation::ReLU, strided), doctest::Contains("must be contiguous"),
                       cxr::Error);
  Tensor dy = Tensor::zeros({4, 5});
  CHECK_THROWS_WITH_AS(activation_backward(Activation::SiLU, x, dy), doctest::Contains("shapes differ"), cxr::Error);
}

// The f32 GELU runs glibc's 8-lane erff / expf where the CPU has AVX2 (kernels/cpu/activation.cpp),
// the last partial block padded: an element's bits must not depend on the thread count or on
// where in the tensor it sits. Also the far tails (erf saturates) and the values at 0.
TEST_CASE("gelu f32: each element's bits are independent of threads and position; tails exact enough" *
          doctest::test_suite("cpu")) {
  const std::int64_t n = (1 << 17) + 13;  // above the parallel threshold, a partial last block
  std::vector<float> x(static_cast<std::size_t>(n));
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> u(-12.f, 12.f);
  for (float& v : x) v = u(rng);
  x[0] = 0.f;
  x[1] = -0.f;
  x[2] = 40.f;
  x[3] = -40.f;
  std::vector<float> dy(x.size(), 1.f), y1(x.size()), y2(x.size()), g1(x.size()), g2(x.size());
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  cpu::activation_forward<float>(Activation::GELU, x.data(), y1.data(), n);
  cpu::activation_backward<float>(Activation::GELU, x.data(), dy.data(), g1.data(), n);
  omp_set_num_threads(std::max(2, threads));
  cpu::activation_forward<float>(Activation::GELU, x.data(), y2.data(), n);
  cpu::activation_backward<float>(Activation::GELU, x.data(), dy.data(), g2.data(), n);
  omp_set_num_threads(threads);
  CHECK(std::memcmp(y1.data(), y2.data(), x.size() * 4) == 0);
  CHECK(std::memcmp(g1.data(), g2.data(), x.size() * 4) == 0);
  // An odd slice: every element sits at another lane than before.
  std::vector<float> y3(x.size()), g3(x.size());
  cpu::activation_forward<float>(Activation::GELU, x.data() + 3, y3.data(), 1001);
  cpu::activation_backward<float>(Activation::GELU, x.data() + 3, dy.data(), g3.data(), 1001);
  CHECK(std::memcmp(y3.data(), y1.data() + 3, 1001 * 4) == 0);
  CHECK(std::memcmp(g3.data(), g1.data() + 3, 1001 * 4) == 0);
  // Against double precision, and no worse than the scalar float formula (whose 1 + erf cancels
  // in the negative tail as this one does): the error relative to max(|x|, 1) (that cancellation
  // is absolute: a few ulp of erf near -1, times |x|).
  double worst = 0, worst_scalar = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double xd = x[i], scale = std::max(std::abs(xd), 1.0);
    const double want = 0.5 * xd * (1 + std::erf(xd / std::sqrt(2.0)));
    const double dwant = 0.5 * (1 + std::erf(xd / std::sqrt(2.0))) + xd * std::exp(-0.5 * xd * xd) / std::sqrt(2 * M_PI);
    worst = std::max({worst, std::abs(y1[i] - want) / scale, std::abs(g1[i] - dwant) / scale});
    const float ys = activation_value(Activation::GELU, x[i]), gs = activation_derivative(Activation::GELU, x[i]);
    worst_scalar = std::max({worst_scalar, std::abs(ys - want) / scale, std::abs(gs - dwant) / scale});
  }
  MESSAGE("gelu f32 worst error / max(|x|, 1): vector ", worst, ", scalar ", worst_scalar);
  CHECK(worst < 3e-7);
  CHECK(worst <= 2 * worst_scalar);
  CHECK(y1[0] == 0.f);
  CHECK(y1[2] == 40.f);
  CHECK(y1[3] == 0.f);
  CHECK(g1[2] == 1.f);
  CHECK(g1[3] == 0.f);
}
