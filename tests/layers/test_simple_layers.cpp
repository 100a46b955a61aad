// Activations, pooling, reshaping, Dropout, StochasticDepth and SqueezeExcitation layers:
// gradients against finite differences, device against CPU, behaviour in eval mode.
#include "layers/activation.h"
#include "layers/dropout.h"
#include "layers/pooling.h"
#include "layers/shape_ops.h"
#include "layers/squeeze_excitation.h"
#include "tests/layers/layer_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {
LayerCase simple(std::function<std::unique_ptr<Module>()> make, Shape shape) {
  LayerCase c;
  c.make = std::move(make);
  c.input_shape = shape;
  return c;
}
}  // namespace

CXR_LAYER_CASE("ReLU module") {
  LayerCase c = simple([] { return std::make_unique<ReLU>(); }, {2, 3, 4, 4});
  c.make_input = away_from_zero_input(c.input_shape, 3.f, 0.05f);
  return c;
}
CXR_LAYER_CASE("SiLU module") { return simple([] { return std::make_unique<SiLU>(); }, {2, 3, 4, 4}); }
CXR_LAYER_CASE("GELU module") { return simple([] { return std::make_unique<GELU>(); }, {2, 5, 7}); }
CXR_LAYER_CASE("Sigmoid module") { return simple([] { return std::make_unique<Sigmoid>(); }, {3, 14}); }
CXR_LAYER_CASE("MaxPool2d 3x3 stride 2 pad 1 (ResNet stem)") {
  LayerCase c = simple([] { return std::make_unique<MaxPool2d>(3, 2, 1); }, {2, 3, 7, 8});
  c.make_input = distinct_values(c.input_shape, 0.05f);
  return c;
}
CXR_LAYER_CASE("GlobalAvgPool keepdim (AdaptiveAvgPool2d(1))") {
  return simple([] { return std::make_unique<GlobalAvgPool>(false); }, {2, 4, 3, 5});
}
CXR_LAYER_CASE("GlobalAvgPool flatten") {
  return simple([] { return std::make_unique<GlobalAvgPool>(true); }, {3, 4, 2, 2});
}
CXR_LAYER_CASE("Flatten from dim 1") { return simple([] { return std::make_unique<Flatten>(1); }, {2, 3, 2, 2}); }
CXR_LAYER_CASE("Permute NCHW -> NHWC") {
  return simple([] { return std::make_unique<Permute>(std::vector<int>{0, 2, 3, 1}); }, {2, 3, 4, 5});
}
CXR_LAYER_CASE("Dropout p = 0.3 (mask replayed)") {
  LayerCase c = simple([] { return std::make_unique<Dropout>(0.3f); }, {4, 50});
  c.before_forward = [](Module& m) { static_cast<Dropout&>(m).set_rng(1234, 0); };
  return c;
}
CXR_LAYER_CASE("StochasticDepth p = 0.5 (mask replayed)") {
  LayerCase c = simple([] { return std::make_unique<StochasticDepth>(0.5f); }, {8, 3, 2, 2});
  c.before_forward = [](Module& m) { static_cast<StochasticDepth&>(m).set_rng(99, 0); };
  return c;
}
CXR_LAYER_CASE("SqueezeExcitation SiLU (EfficientNet)") {
  return simple([] { return std::make_unique<SqueezeExcitation>(8, 2, Activation::SiLU); }, {2, 8, 3, 3});
}
CXR_LAYER_CASE("SqueezeExcitation ReLU (torchvision default)") {
  LayerCase c = simple([] { return std::make_unique<SqueezeExcitation>(6, 3); }, {2, 6, 4, 4});
  c.fd_step = 1e-3;
  c.grad_tol = {3e-3, 3e-2};
  return c;
}

TEST_CASE("Dropout: kept elements scaled, fresh masks per step, identity in eval" * doctest::test_suite("cpu")) {
  Dropout d(0.25f);
  Tensor x = Tensor::full({1000}, 1.f);
  Tensor y1 = d.forward(x);
  int kept = 0;
  for (float v : y1.to_vector()) {
    CHECK((v == 0.f || v == doctest::Approx(1.f / 0.75f)));
    kept += v != 0.f;
  }
  CHECK(kept > 650);
  CHECK(kept < 850);
  CHECK(d.offset() == 1000);
  Tensor g = d.backward(Tensor::full({1000}, 1.f));
  CHECK(g.to_vector() == y1.to_vector());  // same mask
  CHECK(d.forward(x).to_vector() != y1.to_vector());
  d.eval();
  CHECK(d.forward(x).to_vector() == x.to_vector());
  CHECK(d.offset() == 2000);  // eval does not advance the stream
}

TEST_CASE("StochasticDepth drops whole samples" * doctest::test_suite("cpu")) {
  StochasticDepth sd(0.5f);
  sd.set_rng(5, 0);
  Tensor y = sd.forward(Tensor::full({64, 2, 3}, 1.f));
  const std::vector<float> v = y.to_vector();
  int dropped = 0;
  for (int n = 0; n < 64; ++n) {
    for (int i = 1; i < 6; ++i) CHECK(v[n * 6 + i] == v[n * 6]);
    CHECK((v[n * 6] == 0.f || v[n * 6] == 2.f));
    dropped += v[n * 6] == 0.f;
  }
  CHECK(dropped > 16);
  CHECK(dropped < 48);
}

TEST_CASE("SqueezeExcitation has torchvision's names" * doctest::test_suite("cpu")) {
  SqueezeExcitation se(16, 4, Activation::SiLU);
  auto params = se.named_parameters();
  REQUIRE(params.size() == 4);
  CHECK(params[0].first == "fc1.weight");
  CHECK(params[0].second->value.shape() == Shape{4, 16, 1, 1});
  CHECK(params[1].first == "fc1.bias");
  CHECK(params[2].first == "fc2.weight");
  CHECK(params[2].second->value.shape() == Shape{16, 4, 1, 1});
  CHECK(params[3].first == "fc2.bias");
}

TEST_CASE("backward after a forward under NoGradGuard, or without a forward, is an error" * doctest::test_suite("cpu")) {
  ReLU relu;
  relu.eval();
  {
    NoGradGuard no_grad;
    CHECK_FALSE(grad_enabled());
    relu.forward(Tensor::zeros({2}));
  }
  CHECK(grad_enabled());
  CHECK_THROWS_WITH_AS(relu.backward(Tensor::zeros({2})), doctest::Contains("without a forward"), cxr::Error);
  MaxPool2d pool(2, 2);
  CHECK_THROWS_AS(pool.backward(Tensor::zeros({1, 1, 1, 1})), cxr::Error);
}

TEST_CASE("in eval mode without NoGradGuard, backward works as in training" * doctest::test_suite("cpu")) {
  ReLU relu;
  relu.eval();
  relu.forward(Tensor::from_vector({-1.f, 2.f}, {2}));
  CHECK(relu.backward(Tensor::from_vector({5.f, 7.f}, {2})).to_vector() == std::vector<float>{0.f, 7.f});
}
