// BatchNorm2d, LayerNorm, LayerNorm2d layers: gradients against finite differences, device
// against CPU, running statistics and eval mode.
#include <cmath>

#include "layers/batch_norm.h"
#include "layers/layer_norm.h"
#include "tests/layers/layer_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {
// Non-trivial affine parameters (the defaults 1 and 0 would hide a swapped gradient).
template <typename M>
void perturb_affine(M& m) {
  std::mt19937_64 rng(9);
  m.weight().value = Tensor::uniform(m.weight().value.shape(), rng, 0.5f, 1.5f);
  m.bias().value = Tensor::uniform(m.bias().value.shape(), rng, -0.5f, 0.5f);
}
}  // namespace

CXR_LAYER_CASE("BatchNorm2d training 2x3x4x4") {
  LayerCase c;
  c.make = [] {
    auto bn = std::make_unique<BatchNorm2d>(3);
    perturb_affine(*bn);
    return bn;
  };
  c.input_shape = {2, 3, 4, 4};
  return c;
}
CXR_LAYER_CASE("BatchNorm2d training 4x5x1x1 (after a global pool)") {
  LayerCase c;
  c.make = [] {
    auto bn = std::make_unique<BatchNorm2d>(5);
    perturb_affine(*bn);
    return bn;
  };
  c.input_shape = {4, 5, 1, 1};
  c.grad_tol = {5e-3, 3e-2};
  return c;
}
CXR_LAYER_CASE("LayerNorm over the last dimension") {
  LayerCase c;
  c.make = [] {
    auto ln = std::make_unique<LayerNorm>(6, 1e-6f);
    perturb_affine(*ln);
    return ln;
  };
  c.input_shape = {2, 3, 3, 6};
  return c;
}
CXR_LAYER_CASE("LayerNorm2d channels-first (ConvNeXt)") {
  LayerCase c;
  c.make = [] {
    auto ln = std::make_unique<LayerNorm2d>(5, 1e-6f);
    perturb_affine(*ln);
    return ln;
  };
  c.input_shape = {2, 5, 3, 4};
  return c;
}

TEST_CASE("BatchNorm2d names, running statistics, batch count and eval mode" * doctest::test_suite("cpu")) {
  BatchNorm2d bn(2);
  auto params = bn.named_parameters();
  auto buffers = bn.named_buffers();
  REQUIRE(params.size() == 2);
  REQUIRE(buffers.size() == 3);
  CHECK(params[0].first == "weight");
  CHECK(params[1].first == "bias");
  CHECK_FALSE(params[0].second->weight_decay);
  CHECK(buffers[0].first == "running_mean");
  CHECK(buffers[1].first == "running_var");
  CHECK(buffers[2].first == "num_batches_tracked");
  CHECK(buffers[2].second->shape().empty());
  CHECK(buffers[2].second->dtype() == DType::I32);

  // Channel 0: values 1..8, channel 1: all 3.
  std::vector<float> v;
  for (int n = 0; n < 2; ++n) {
    for (int i = 0; i < 4; ++i) v.push_back(static_cast<float>(n * 4 + i + 1));
    for (int i = 0; i < 4; ++i) v.push_back(3.f);
  }
  Tensor x = Tensor::from_vector(v, {2, 2, 2, 2});
  bn.train();
  Tensor y = bn.forward(x);
  // mean 4.5, biased var 5.25, unbiased 6.0; running = 0.9 * init + 0.1 * batch.
  std::vector<float> rm = bn.running_mean().to_vector(), rvar = bn.running_var().to_vector();
  CHECK(rm[0] == doctest::Approx(0.45));
  CHECK(rm[1] == doctest::Approx(0.3));
  CHECK(rvar[0] == doctest::Approx(0.9 + 0.6));
  CHECK(rvar[1] == doctest::Approx(0.9));
  CHECK(y.to_vector()[0] == doctest::Approx((1 - 4.5) / std::sqrt(5.25 + 1e-5)));
  bn.backward(Tensor::zeros({2, 2, 2, 2}));
  bn.forward(x);
  CHECK(bn.named_buffers()[2].second->data<std::int32_t>()[0] == 2);

  bn.eval();
  Tensor ye = bn.forward(x);
  CHECK(ye.to_vector()[0] == doctest::Approx((1 - rm[0] * 1.9) / std::sqrt(bn.running_var().to_vector()[0] + 1e-5))
                                 .epsilon(1e-2));
  CHECK(bn.named_buffers()[2].second->data<std::int32_t>()[0] == 2);  // eval does not count
  // Backward after an eval forward: frozen statistics, dx = dy * weight / sqrt(running_var + eps).
  CHECK(bn.backward(ye).to_vector()[0] ==
        doctest::Approx(ye.to_vector()[0] / std::sqrt(bn.running_var().to_vector()[0] + 1e-5)));
}
