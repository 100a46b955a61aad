// Conv2d and Linear layers: gradients against finite differences on the CPU, device against
// CPU (layer_check.h); options, shapes and initialisation.
#include <cmath>

#include "layers/conv2d.h"
#include "layers/init.h"
#include "layers/linear.h"
#include "tests/layers/layer_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {
LayerCase conv_case(std::int64_t in, std::int64_t out, Conv2dOptions o, Shape x) {
  LayerCase c;
  c.make = [=] { return std::make_unique<Conv2d>(in, out, o); };
  c.input_shape = x;
  return c;
}
}  // namespace

CXR_LAYER_CASE("Conv2d 3x3 pad 1 bias") { return conv_case(3, 4, {.kernel = 3, .padding = 1}, {2, 3, 6, 6}); }
CXR_LAYER_CASE("Conv2d 3x3 stride 2 no bias") {
  return conv_case(4, 6, {.kernel = 3, .stride = 2, .padding = 1, .bias = false}, {2, 4, 7, 7});
}
CXR_LAYER_CASE("Conv2d 7x7 stride 2 pad 3 (ResNet stem)") {
  return conv_case(3, 4, {.kernel = 7, .stride = 2, .padding = 3, .bias = false}, {1, 3, 9, 9});
}
CXR_LAYER_CASE("Conv2d 1x1 stride 2 (downsample)") {
  return conv_case(6, 5, {.kernel = 1, .stride = 2, .bias = false}, {2, 6, 5, 5});
}
CXR_LAYER_CASE("Conv2d depthwise 5x5") {
  return conv_case(6, 6, {.kernel = 5, .padding = 2, .groups = 6, .bias = false}, {2, 6, 6, 6});
}
CXR_LAYER_CASE("Linear 2-d input") {
  LayerCase c;
  c.make = [] { return std::make_unique<Linear>(9, 5); };
  c.input_shape = {3, 9};
  return c;
}
CXR_LAYER_CASE("Linear channels-last input (N, H, W, C)") {
  LayerCase c;
  c.make = [] { return std::make_unique<Linear>(6, 4, /*bias=*/false); };
  c.input_shape = {2, 3, 2, 6};
  return c;
}

TEST_CASE("Conv2d has torchvision's parameter names, shapes and default init" * doctest::test_suite("cpu")) {
  manual_seed(1);
  Conv2d conv(8, 16, {.kernel = 3, .stride = 2, .padding = 1, .groups = 2});
  auto params = conv.named_parameters();
  REQUIRE(params.size() == 2);
  CHECK(params[0].first == "weight");
  CHECK(params[0].second->value.shape() == Shape{16, 4, 3, 3});
  CHECK(params[1].first == "bias");
  CHECK(params[1].second->value.shape() == Shape{16});
  CHECK_FALSE(params[1].second->weight_decay);
  const float bound = 1.f / std::sqrt(4.f * 9.f);
  for (float v : params[0].second->value.to_vector()) CHECK((std::fabs(v) <= bound));
  CHECK(conv.forward(Tensor::zeros({1, 8, 9, 9})).shape() == Shape{1, 16, 5, 5});
  Conv2d nobias(3, 4, {.kernel = 1, .bias = false});
  CHECK(nobias.named_parameters().size() == 1);
  CHECK(nobias.bias() == nullptr);
}

TEST_CASE("Conv2d with input_grad off returns no dx but the same weight gradient" * doctest::test_suite("cpu")) {
  std::mt19937_64 rng(3);
  Tensor x = Tensor::randn({2, 3, 6, 6}, rng);
  Tensor dy = Tensor::randn({2, 4, 3, 3}, rng);
  manual_seed(5);
  Conv2d a(3, 4, {.kernel = 3, .stride = 2, .padding = 1});
  manual_seed(5);
  Conv2d b(3, 4, {.kernel = 3, .stride = 2, .padding = 1, .input_grad = false});
  a.forward(x);
  b.forward(x);
  CHECK(a.backward(dy).defined());
  CHECK_FALSE(b.backward(dy).defined());
  expect_close("weight gradient", b.weight().grad, a.weight().grad, {0, 0});
  // A second backward without a forward is an error (the activation was released).
  CHECK_THROWS_AS(a.backward(dy), cxr::Error);
}

TEST_CASE("Conv2d gradients accumulate until zero_grad, and frozen parameters get none" * doctest::test_suite("cpu")) {
  std::mt19937_64 rng(4);
  Tensor x = Tensor::randn({1, 2, 4, 4}, rng);
  Tensor dy = Tensor::randn({1, 3, 4, 4}, rng);
  Conv2d conv(2, 3, {.kernel = 3, .padding = 1});
  conv.forward(x);
  conv.backward(dy);
  const std::vector<float> once = conv.weight().grad.to_vector();
  conv.forward(x);
  conv.backward(dy);
  const std::vector<float> twice = conv.weight().grad.to_vector();
  for (std::size_t i = 0; i < once.size(); ++i) CHECK(twice[i] == doctest::Approx(2 * once[i]).epsilon(1e-5));
  conv.zero_grad();
  conv.set_trainable(false);
  conv.forward(x);
  CHECK(conv.backward(dy).defined());
  for (float v : conv.weight().grad.to_vector()) CHECK(v == 0.f);
}

TEST_CASE("zero_grad_deferred + settle_grads: the gradients of zero_grad, without clearing them first" *
          doctest::test_suite("cpu")) {
  std::mt19937_64 rng(5);
  const Tensor x = Tensor::randn({2, 2, 5, 5}, rng), dy = Tensor::randn({2, 3, 5, 5}, rng);
  Conv2d eager(2, 3, {.kernel = 3, .padding = 1}), deferred(2, 3, {.kernel = 3, .padding = 1});
  deferred.weight().value.copy_(eager.weight().value);
  deferred.bias()->value.copy_(eager.bias()->value);
  for (int step = 0; step < 3; ++step) {  // the second and third steps replace the first's gradients
    eager.zero_grad();
    eager.forward(x);
    eager.backward(dy);
    deferred.zero_grad_deferred();
    CHECK(deferred.weight().grad_stale);
    deferred.forward(x);
    deferred.backward(dy);
    CHECK_FALSE(deferred.weight().grad_stale);
    deferred.settle_grads();
    CHECK(deferred.weight().grad.to_vector() == eager.weight().grad.to_vector());
    CHECK(deferred.bias()->grad.to_vector() == eager.bias()->grad.to_vector());
  }
  // A parameter that gets no gradient in the step (frozen) is zero after settle_grads.
  deferred.zero_grad_deferred();
  deferred.set_trainable(false);
  deferred.forward(x);
  deferred.backward(dy);
  deferred.settle_grads();
  for (float v : deferred.weight().grad.to_vector()) CHECK(v == 0.f);

  // accumulate_grad after zero_grad_deferred: a gradient the caller gives up (and nothing else
  // holds) becomes the parameter's gradient without a copy; one the caller keeps, or that another
  // tensor shares, is copied (adding to the gradient must not change it); a second one adds.
  Parameter p;
  p.value = Tensor::zeros({4});
  p.grad = Tensor::full({4}, 9.f);
  p.grad_stale = true;
  Tensor g = Tensor::from_vector({1, 2, 3, 4}, {4});
  const void* g_data = g.raw_data();
  p.accumulate_grad(std::move(g));
  CHECK(p.grad.raw_data() == g_data);
  const Tensor shared = Tensor::from_vector({1, 1, 1, 1}, {4});
  p.grad_stale = true;
  p.accumulate_grad(shared);
  CHECK(p.grad.raw_data() != shared.raw_data());
  p.accumulate_grad(shared);
  CHECK(p.grad.to_vector() == std::vector<float>{2, 2, 2, 2});
  CHECK(shared.to_vector() == std::vector<float>{1, 1, 1, 1});
  Tensor given = Tensor::from_vector({5, 5, 5, 5}, {4});
  const Tensor alias = given;  // shares the storage
  p.grad_stale = true;
  p.accumulate_grad(std::move(given));
  CHECK(p.grad.raw_data() != alias.raw_data());
  p.accumulate_grad(alias);
  CHECK(alias.to_vector() == std::vector<float>{5, 5, 5, 5});
  CHECK(p.grad.to_vector() == std::vector<float>{10, 10, 10, 10});
}

TEST_CASE("Linear maps the last dimension and keeps the leading ones" * doctest::test_suite("cpu")) {
  manual_seed(2);
  Linear fc(4, 3);
  fc.weight().value = Tensor::from_vector({1, 0, 0, 0, 0, 1, 0, 0, 1, 1, 1, 1}, {3, 4});
  fc.bias()->value = Tensor::from_vector({0.5f, -0.5f, 0.f}, {3});
  Tensor y = fc.forward(Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8}, {1, 2, 4}));
  CHECK(y.shape() == Shape{1, 2, 3});
  const std::vector<float> expected = {1.5f, 1.5f, 10.f, 5.5f, 5.5f, 26.f};
  const std::vector<float> got = y.to_vector();
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(expected[i]));
  CHECK_THROWS_WITH_AS(fc.forward(Tensor::zeros({2, 5})), doctest::Contains("expected x of shape (..., 4)"),
                       cxr::Error);
}

TEST_CASE("kaiming_normal_fan_out has torchvision's standard deviation" * doctest::test_suite("cpu")) {
  manual_seed(7);
  Tensor w = Tensor::empty({64, 32, 3, 3});
  kaiming_normal_fan_out(w);
  double s = 0, s2 = 0;
  for (float v : w.to_vector()) s += v, s2 += double(v) * v;
  const double n = static_cast<double>(w.numel());
  const double stddev = std::sqrt(s2 / n - (s / n) * (s / n));
  CHECK(stddev == doctest::Approx(std::sqrt(2.0 / (64 * 9))).epsilon(0.03));
  // manual_seed makes initialisation reproducible.
  manual_seed(7);
  Tensor w2 = Tensor::empty({64, 32, 3, 3});
  kaiming_normal_fan_out(w2);
  CHECK(w2.to_vector() == w.to_vector());
}
