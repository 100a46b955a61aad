// batch_norm2d in the op registry: training forward (y, saved statistics, updated running
// statistics) with its backward, and the evaluation forward.
#include "kernels/batch_norm.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

constexpr float kMomentum = 0.1f;
constexpr float kEps = 1e-5f;

// Inputs: x, weight, bias, running_mean, running_var.
std::vector<Input> bn_inputs(Shape shape) {
  const std::int64_t C = shape[1];
  return {{shape, normal(0.5f, 2.f)},
          {{C}, uniform(0.5f, 1.5f)},
          {{C}, uniform(-0.5f, 0.5f)},
          {{C}, uniform(-0.2f, 0.2f), false},
          {{C}, uniform(0.5f, 2.f), false}};
}

OpCase bn_train_case(Shape shape) {
  OpCase c;
  c.inputs = bn_inputs(shape);
  c.forward = [](Tensors& in) {
    BatchNormOutput r = batch_norm2d_train(BnActivation::Identity, in[0], in[1], in[2], in[3], in[4], kMomentum, kEps);
    return Tensors{r.y, r.saved_mean, r.saved_invstd, in[3], in[4]};
  };
  c.differentiable_outputs = {true, false, false, false, false};
  c.backward = [](const Tensors& in, const Tensors& out, const Tensors& dout) {
    BatchNormGrads g = batch_norm2d_backward(BnActivation::Identity, dout[0], in[0], in[1], in[2], out[1], out[2]);
    return Tensors{g.dx, g.dweight, g.dbias, Tensor(), Tensor()};
  };
  c.reference = [shape](const Doubles& in) {
    const std::int64_t N = shape[0], C = shape[1], HW = shape[2] * shape[3];
    std::vector<double> y(in[0].size()), mean(C), invstd(C), rm = in[3], rv = in[4];
    cpu::batch_norm2d_forward_train<double>(BnActivation::Identity, in[0].data(), in[1].data(), in[2].data(), y.data(),
                                            mean.data(), invstd.data(), rm.data(), rv.data(), N, C, HW, kMomentum,
                                            kEps);
    return Doubles{y, mean, invstd, rm, rv};
  };
  c.forward_tol = {2e-5, 1e-4};
  c.device_tol = {2e-5, 1e-4};
  c.device_grad_tol = {1e-4, 1e-3};
  return c;
}

OpCase bn_eval_case(Shape shape) {
  OpCase c;
  c.inputs = bn_inputs(shape);
  c.forward = [](Tensors& in) {
    return Tensors{batch_norm2d_eval(BnActivation::Identity, in[0], in[1], in[2], in[3], in[4], kEps)};
  };
  c.reference = [shape](const Doubles& in) {
    const std::int64_t N = shape[0], C = shape[1], HW = shape[2] * shape[3];
    std::vector<double> y(in[0].size());
    cpu::batch_norm2d_forward_eval<double>(BnActivation::Identity, in[0].data(), in[1].data(), in[2].data(),
                                           in[3].data(), in[4].data(), y.data(), N, C, HW, kEps);
    return Doubles{y};
  };
  c.forward_tol = {2e-5, 1e-4};
  c.device_tol = {2e-5, 1e-4};
  return c;
}

}  // namespace

CXR_OP_CASE("batch_norm2d train 2x3x5x5") {
  return bn_train_case({2, 3, 5, 5});
}
CXR_OP_CASE("batch_norm2d train 4x8x7x7") {
  return bn_train_case({4, 8, 7, 7});
}
CXR_OP_CASE("batch_norm2d train 3x16x1x1 (3 values per channel)") {
  return bn_train_case({3, 16, 1, 1});
}
CXR_OP_CASE("batch_norm2d train 8x32x4x4") {
  return bn_train_case({8, 32, 4, 4});
}
// M = 2*70*70 = 9800 values per channel: several chunks per channel on the device (S > 1).
CXR_OP_CASE("batch_norm2d train 2x2x70x70 (split channels)") {
  return bn_train_case({2, 2, 70, 70});
}
CXR_OP_CASE("batch_norm2d eval 2x3x5x5") {
  return bn_eval_case({2, 3, 5, 5});
}
CXR_OP_CASE("batch_norm2d eval 8x32x4x4") {
  return bn_eval_case({8, 32, 4, 4});
}

TEST_CASE("batch_norm2d stays accurate with a large mean (no E[x^2] - E[x]^2)" * doctest::test_suite("cpu")) {
  // x = 1000 + small noise: a one-pass float variance would lose most digits.
  std::mt19937_64 rng(7);
  Tensor x = Tensor::randn({4, 2, 8, 8}, rng, 1000.f, 0.01f);
  Tensor w = Tensor::full({2}, 1.f), b = Tensor::zeros({2});
  Tensor rm, rv;
  BatchNormOutput r = batch_norm2d_train(BnActivation::Identity, x, w, b, rm, rv);
  std::vector<double> xd = to_doubles(x);
  std::vector<double> y(xd.size()), mean(2), invstd(2);
  cpu::batch_norm2d_forward_train<double>(BnActivation::Identity, xd.data(), std::vector<double>{1, 1}.data(),
                                          std::vector<double>{0, 0}.data(), y.data(), mean.data(), invstd.data(),
                                          nullptr, nullptr, 4, 2, 64, 0.1, 1e-5);
  expect_close("saved_invstd", r.saved_invstd.to_vector(), invstd, {0, 1e-3});
}

TEST_CASE("batch_norm2d rejects bad arguments with clear messages" * doctest::test_suite("cpu")) {
  Tensor x = Tensor::zeros({1, 3, 1, 1});
  Tensor w = Tensor::zeros({3}), b = Tensor::zeros({3}), rm = Tensor::zeros({3}), rv = Tensor::zeros({3});
  CHECK_THROWS_WITH_AS(batch_norm2d_train(BnActivation::Identity, x, w, b, rm, rv),
                       doctest::Contains("more than 1 value per channel"), cxr::Error);
  Tensor x2 = Tensor::zeros({2, 4, 3, 3});
  CHECK_THROWS_WITH_AS(batch_norm2d_train(BnActivation::Identity, x2, w, b, rm, rv), doctest::Contains("weight"),
                       cxr::Error);
  Tensor none;
  CHECK_THROWS_WITH_AS(batch_norm2d_train(BnActivation::Identity, Tensor::zeros({2, 3, 2, 2}), w, b, rm, none),
                       doctest::Contains("both"), cxr::Error);
}
