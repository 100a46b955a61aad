// add (residual) and scale_channels (squeeze-and-excitation) in the op registry.
#include "kernels/add.h"
#include "kernels/scale_channels.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

OpCase add_case(Shape shape) {
  OpCase c;
  c.inputs = {{shape, normal()}, {shape, normal()}};
  c.forward = [](Tensors& in) { return Tensors{add(in[0], in[1])}; };
  c.backward = [](const Tensors&, const Tensors&, const Tensors& dout) {
    auto [da, db] = add_backward(dout[0]);
    return Tensors{da, db};
  };
  c.reference = [](const Doubles& in) {
    std::vector<double> y(in[0].size());
    cpu::add<double>(in[0].data(), in[1].data(), y.data(), static_cast<std::int64_t>(y.size()));
    return Doubles{y};
  };
  c.forward_tol = {1e-6, 1e-6};
  c.device_tol = {0, 0};
  return c;
}

OpCase scale_channels_case(Shape shape, bool s4d) {
  OpCase c;
  const Shape s_shape = s4d ? Shape{shape[0], shape[1], 1, 1} : Shape{shape[0], shape[1]};
  c.inputs = {{shape, normal()}, {s_shape, uniform(0.f, 1.f)}};  // s: a sigmoid gate in (0, 1)
  c.forward = [](Tensors& in) { return Tensors{scale_channels(in[0], in[1])}; };
  c.backward = [](const Tensors& in, const Tensors&, const Tensors& dout) {
    ScaleChannelsGrads g = scale_channels_backward(dout[0], in[0], in[1]);
    return Tensors{g.dx, g.ds};
  };
  c.reference = [shape](const Doubles& in) {
    std::vector<double> y(in[0].size());
    cpu::scale_channels_forward<double>(in[0].data(), in[1].data(), y.data(), shape[0] * shape[1], shape[2] * shape[3]);
    return Doubles{y};
  };
  c.forward_tol = {1e-6, 1e-6};
  c.device_tol = {0, 0};
  return c;
}

}  // namespace

CXR_OP_CASE("add 2x8x6x6 (float4 path)") {
  return add_case({2, 8, 6, 6});
}
CXR_OP_CASE("add 3x5x7 (scalar path)") {
  return add_case({3, 5, 7});
}
CXR_OP_CASE("scale_channels 2x16x7x7 (SE at 7x7)") {
  return scale_channels_case({2, 16, 7, 7}, false);
}
CXR_OP_CASE("scale_channels 2x4x9x10 s (N,C,1,1)") {
  return scale_channels_case({2, 4, 9, 10}, true);
}
CXR_OP_CASE("scale_channels 3x3x1x1") {
  return scale_channels_case({3, 3, 1, 1}, false);
}

TEST_CASE("add_ accumulates in place, on the CPU and the device" * doctest::test_suite("cpu")) {
  std::mt19937_64 rng(5);
  for (Shape shape : {Shape{4, 4}, Shape{3, 3}}) {
    Tensor a = Tensor::randn(shape, rng), b = Tensor::randn(shape, rng);
    Tensor expected = add(a, b);
    Tensor acc = a.clone();
    add_(acc, b);
    CHECK(acc.to_vector() == expected.to_vector());
  }
}

TEST_CASE("add_ in place on the device" * doctest::test_suite(gpu_suite()) * doctest::skip(skip_gpu_cases())) {
  std::mt19937_64 rng(6);
  for (Shape shape : {Shape{4, 4}, Shape{3, 3}}) {
    Tensor a = Tensor::randn(shape, rng), b = Tensor::randn(shape, rng);
    Tensor acc = a.to(Device::CUDA).clone();
    add_(acc, b.to(Device::CUDA));
    CHECK(acc.to_vector() == add(a, b).to_vector());
  }
}

TEST_CASE("add and scale_channels reject mismatched shapes" * doctest::test_suite("cpu")) {
  CHECK_THROWS_WITH_AS(add(Tensor::zeros({2, 3}), Tensor::zeros({3, 2})), doctest::Contains("shapes differ"),
                       cxr::Error);
  CHECK_THROWS_WITH_AS(scale_channels(Tensor::zeros({2, 3, 4, 4}), Tensor::zeros({2, 4})),
                       doctest::Contains("scale_channels: s must have shape [2, 3]"), cxr::Error);
}
