// layer_norm (over the last dimension, ConvNeXt channels-last) in the op registry.
#include "kernels/layer_norm.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

constexpr float kEps = 1e-6f;

OpCase layer_norm_case(Shape shape) {
  OpCase c;
  const std::int64_t C = shape.back();
  c.inputs = {{shape, normal(-0.3f, 1.5f)}, {{C}, uniform(0.5f, 1.5f)}, {{C}, uniform(-0.5f, 0.5f)}};
  c.forward = [](Tensors& in) {
    LayerNormOutput r = layer_norm(in[0], in[1], in[2], kEps);
    return Tensors{r.y, r.mean, r.rstd};
  };
  c.differentiable_outputs = {true, false, false};
  c.backward = [](const Tensors& in, const Tensors& out, const Tensors& dout) {
    LayerNormGrads g = layer_norm_backward(dout[0], in[0], in[1], out[1], out[2]);
    return Tensors{g.dx, g.dweight, g.dbias};
  };
  c.reference = [C](const Doubles& in) {
    const std::int64_t M = static_cast<std::int64_t>(in[0].size()) / C;
    std::vector<double> y(in[0].size()), mean(M), rstd(M);
    cpu::layer_norm_forward<double>(in[0].data(), in[1].data(), in[2].data(), y.data(), mean.data(), rstd.data(), M, C,
                                    kEps);
    return Doubles{y, mean, rstd};
  };
  c.forward_tol = {2e-5, 1e-4};
  c.device_tol = {2e-5, 1e-4};
  return c;
}

}  // namespace

CXR_OP_CASE("layer_norm 2x4x4x96 (ConvNeXt stage 1, channels-last)") {
  return layer_norm_case({2, 4, 4, 96});
}
CXR_OP_CASE("layer_norm 7x5") {
  return layer_norm_case({7, 5});
}
CXR_OP_CASE("layer_norm 300x40 (row slices for the weight gradient)") {
  return layer_norm_case({300, 40});
}
CXR_OP_CASE("layer_norm 3x77 (partial warp)") {
  return layer_norm_case({3, 77});
}

TEST_CASE("layer_norm rejects a weight of the wrong size" * doctest::test_suite("cpu")) {
  Tensor x = Tensor::zeros({4, 8}), w = Tensor::zeros({7}), b = Tensor::zeros({8});
  CHECK_THROWS_WITH_AS(layer_norm(x, w, b), doctest::Contains("weight"), cxr::Error);
}
