// batch_norm2d_recompute (kernels/batch_norm.h): z = (x - saved_mean) saved_invstd weight + bias
// from a training forward's saved statistics, what the library path's fused-activation backward
// feeds to activation_backward. Op case: on the CPU against the double reference of the
// training forward with identity (the same z), on the device against the CPU; and on every
// device equal to the identity forward's own output.
#include <random>

#include "kernels/batch_norm.h"
#include "kernels/cast.h"
#include "tensor/backend.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

OpCase recompute_case(Shape shape) {
  const std::int64_t C = shape[1];
  OpCase c;
  c.inputs = {{shape, normal(0.5f, 2.f), false}, {{C}, uniform(0.5f, 1.5f), false}, {{C}, uniform(-0.5f, 0.5f), false}};
  c.forward = [](Tensors& in) {
    Tensor rm, rv;  // no running statistics
    const BatchNormOutput r = batch_norm2d_train(BnActivation::Identity, in[0], in[1], in[2], rm, rv);
    return Tensors{batch_norm2d_recompute(in[0], in[1], in[2], r.saved_mean, r.saved_invstd)};
  };
  c.reference = [shape](const Doubles& in) {
    const std::int64_t N = shape[0], C = shape[1], HW = shape[2] * shape[3];
    std::vector<double> z(in[0].size()), mean(C), invstd(C);
    cpu::batch_norm2d_forward_train<double>(BnActivation::Identity, in[0].data(), in[1].data(), in[2].data(), z.data(),
                                            mean.data(), invstd.data(), nullptr, nullptr, N, C, HW, 0.1, 1e-5);
    return Doubles{z};
  };
  c.forward_tol = {2e-5, 1e-4};
  c.device_tol = {2e-5, 1e-4};
  return c;
}

void check_equals_forward(Device device) {
  std::mt19937_64 rng(5);
  const Tensor x = Tensor::randn({3, 5, 7, 9}, rng, 0.3f, 2.f, device);
  const Tensor w = Tensor::uniform({5}, rng, 0.5f, 1.5f, device), b = Tensor::uniform({5}, rng, -1.f, 1.f, device);
  Tensor rm, rv;
  const BatchNormOutput r = batch_norm2d_train(BnActivation::Identity, x, w, b, rm, rv);
  const Tensor z = batch_norm2d_recompute(x, w, b, r.saved_mean, r.saved_invstd);
  expect_close("z vs the identity forward's y", z, r.y, {1e-6, 1e-5});
}

}  // namespace

CXR_OP_CASE("batch_norm2d_recompute (2, 3, 5, 7)") { return recompute_case({2, 3, 5, 7}); }
CXR_OP_CASE("batch_norm2d_recompute (4, 17, 9, 11)") { return recompute_case({4, 17, 9, 11}); }

TEST_CASE("batch_norm2d_recompute equals the identity training forward's output [cpu]" * doctest::test_suite("cpu")) {
  check_equals_forward(Device::CPU);
}

TEST_CASE("batch_norm2d_recompute equals the identity training forward's output [gpu]" *
          doctest::test_suite(gpu_suite()) * doctest::skip(skip_gpu_cases())) {
  check_equals_forward(Device::CUDA);
}

TEST_CASE("batch_norm2d_recompute: a bf16 x is refused, naming the op" * doctest::test_suite("cpu")) {
  std::mt19937_64 rng(1);
  const Tensor x = to_bf16(Tensor::randn({2, 3, 4, 4}, rng));
  const Tensor v = Tensor::full({3}, 1.f);
  CHECK_THROWS_WITH_AS(batch_norm2d_recompute(x, v, v, v, v), doctest::Contains("batch_norm2d_recompute"), Error);
}
