// avg_pool2d (DenseNet's transition pool) in the op registry, plus the values of a small case
// worked by hand and the argument checks.
#include "kernels/avg_pool2d.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

OpCase avg_pool_case(Shape shape, AvgPool2dParams p) {
  OpCase c;
  c.inputs = {{shape, normal()}};
  c.forward = [p](Tensors& in) { return Tensors{avg_pool2d(in[0], p)}; };
  c.backward = [p](const Tensors& in, const Tensors&, const Tensors& dout) {
    return Tensors{avg_pool2d_backward(dout[0], in[0].shape(), p)};
  };
  c.reference = [shape, p](const Doubles& in) {
    const int H = static_cast<int>(shape[2]), W = static_cast<int>(shape[3]);
    const int OH = static_cast<int>(avg_pool2d_out_size(H, p)), OW = static_cast<int>(avg_pool2d_out_size(W, p));
    const std::int64_t planes = shape[0] * shape[1];
    std::vector<double> y(static_cast<std::size_t>(planes * OH * OW));
    cpu::avg_pool2d_forward<double>(in[0].data(), y.data(), planes, H, W, OH, OW, p);
    return Doubles{y};
  };
  c.reference_backward = [shape, p](const Doubles&, const Doubles& dout) {
    const int H = static_cast<int>(shape[2]), W = static_cast<int>(shape[3]);
    const int OH = static_cast<int>(avg_pool2d_out_size(H, p)), OW = static_cast<int>(avg_pool2d_out_size(W, p));
    std::vector<double> dx(static_cast<std::size_t>(shape_numel(shape)));
    cpu::avg_pool2d_backward<double>(dout[0].data(), dx.data(), shape[0] * shape[1], H, W, OH, OW, p);
    return Doubles{dx};
  };
  c.forward_tol = {1e-6, 1e-5};
  c.device_tol = {1e-6, 1e-5};
  c.device_grad_tol = {1e-7, 1e-6};
  return c;
}

}  // namespace

CXR_OP_CASE("avg_pool2d 2x2 s2 2x3x8x10 (DenseNet transition)") {
  return avg_pool_case({2, 3, 8, 10}, {2, 2});
}
CXR_OP_CASE("avg_pool2d 2x2 s2 1x4x7x5 (odd sizes: the last row and column dropped)") {
  return avg_pool_case({1, 4, 7, 5}, {2, 2});
}
CXR_OP_CASE("avg_pool2d 3x3 s1 2x2x6x7 (overlapping windows)") {
  return avg_pool_case({2, 2, 6, 7}, {3, 1});
}
CXR_OP_CASE("avg_pool2d 3x3 s2 1x3x9x9") {
  return avg_pool_case({1, 3, 9, 9}, {3, 2});
}

TEST_CASE("avg_pool2d: a 2x2 window's mean, and dy spread over its window" * doctest::test_suite("cpu")) {
  // One 1x1x3x4 plane; the last row is dropped by the floor.
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8, 100, 100, 100, 100}, {1, 1, 3, 4});
  Tensor y = avg_pool2d(x, {2, 2});
  CHECK(y.shape() == Shape{1, 1, 1, 2});
  CHECK(y.to_vector() == std::vector<float>{3.5f, 5.5f});  // (1+2+5+6)/4, (3+4+7+8)/4
  Tensor dx = avg_pool2d_backward(Tensor::from_vector({4, 8}, {1, 1, 1, 2}), x.shape(), {2, 2});
  CHECK(dx.to_vector() == std::vector<float>{1, 1, 2, 2, 1, 1, 2, 2, 0, 0, 0, 0});
}

TEST_CASE("avg_pool2d rejects bad arguments" * doctest::test_suite("cpu")) {
  CHECK_THROWS_WITH_AS(avg_pool2d(Tensor::zeros({1, 1, 1, 4}), {2, 2}), doctest::Contains("smaller than the kernel"),
                       cxr::Error);
  CHECK_THROWS_WITH_AS(avg_pool2d(Tensor::zeros({1, 4, 4}), {2, 2}), doctest::Contains("avg_pool2d"), cxr::Error);
  CHECK_THROWS_WITH_AS(avg_pool2d(Tensor::zeros({1, 1, 4, 4}), {2, 0}), doctest::Contains("stride"), cxr::Error);
  CHECK_THROWS_WITH_AS(avg_pool2d_backward(Tensor::zeros({1, 1, 3, 2}), {1, 1, 4, 4}, {2, 2}),
                       doctest::Contains("dy"), cxr::Error);
}
