// Activations in the op registry: forward vs double reference, gradient vs finite
// differences on the CPU; forward and gradient vs the CPU on each CUDA device.
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
