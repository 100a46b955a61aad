// BatchNorm2d, LayerNorm, LayerNorm2d layers: gradients against finite differences, device
// against CPU, running statistics and eval mode. BatchNorm2d with a fused ReLU/SiLU: the same
// checks, the fused layer against BatchNorm2d followed by the activation module (training and
// eval, forward and backward, buffers, names), and whole models built fused and unfused.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/execution.h"
#include "layers/activation.h"
#include "layers/batch_norm.h"
#include "layers/conv_norm_activation.h"
#include "layers/init.h"
#include "layers/layer_norm.h"
#include "models/model_factory.h"
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

// --- BatchNorm2d with a fused activation ---------------------------------------------------

CXR_LAYER_CASE("BatchNorm2d + SiLU fused, training 2x3x5x5") {
  LayerCase c;
  c.make = [] {
    auto bn = std::make_unique<BatchNorm2d>(3, BatchNormOptions{.activation = Activation::SiLU});
    perturb_affine(*bn);
    return bn;
  };
  c.input_shape = {2, 3, 5, 5};
  return c;
}
// ReLU has a kink at z = 0, and finite differences (absolute step 1e-2 on x, weight and bias)
// across it are wrong, so the values of each channel are placed to keep z away from 0: every
// channel holds a permutation of the 24 values (j - 11.5) / 10, j = 0..23 (mean 0; xhat on a
// grid of spacing h = 0.1 / std, none at 0), and bias_c = weight_c h k_c with integer k_c, so
// z = weight (xhat + k h) is never closer to 0 than weight h / 2 (>= 0.036).
CXR_LAYER_CASE("BatchNorm2d + ReLU fused, training 2x4x3x4") {
  LayerCase c;
  c.make = [] {
    auto bn = std::make_unique<BatchNorm2d>(4, BatchNormOptions{.activation = Activation::ReLU});
    perturb_affine(*bn);
    double var = 0;
    for (int j = 0; j < 24; ++j) var += (j - 11.5) * (j - 11.5) / 100.0 / 24.0;
    const double h = 0.1 / std::sqrt(var);
    const int k[4] = {0, 1, -1, 2};
    std::vector<float> w = bn->weight().value.to_vector(), b(4);
    for (int i = 0; i < 4; ++i) b[i] = static_cast<float>(w[i] * h * k[i]);
    bn->bias().value = Tensor::from_vector(b, {4});
    return bn;
  };
  c.input_shape = {2, 4, 3, 4};
  c.make_input = [](std::mt19937_64& rng) {
    std::vector<float> v(2 * 4 * 12);
    for (int ch = 0; ch < 4; ++ch) {
      std::vector<float> grid(24);
      for (int j = 0; j < 24; ++j) grid[j] = static_cast<float>((j - 11.5) / 10.0);
      std::shuffle(grid.begin(), grid.end(), rng);
      for (int n = 0; n < 2; ++n)
        for (int i = 0; i < 12; ++i) v[(n * 4 + ch) * 12 + i] = grid[n * 12 + i];
    }
    return Tensor::from_vector(v, {2, 4, 3, 4});
  };
  return c;
}

namespace {

// Builds with fusion switched off inside its scope, restores the switch on exit (also when a
// check throws, so later tests still build fused models).
struct UnfusedScope {
  ExecutionScope scope{{.fuse_batch_norm_activation = false}};
};

// Two layers on the same input and output gradient, checked output for output.
void expect_same(const std::string& what, const Tensor& a, const Tensor& b) {
  expect_close(what, a.cpu(), b.cpu(), {1e-6, 1e-5});
}

// The fused layer against BatchNorm2d followed by the activation module: training forward,
// backward, parameter gradients and buffers, then an eval forward and backward.
void check_fused_against_modules(Activation a, Device dev) {
  CAPTURE(activation_name(a));
  const std::int64_t C = 5;
  BatchNorm2d fused(C, BatchNormOptions{.activation = a});
  BatchNorm2d plain(C);
  ActivationModule act(a);
  perturb_affine(fused);
  perturb_affine(plain);
  REQUIRE(fused.fused_activation() == a);
  REQUIRE_FALSE(plain.fused_activation().has_value());
  fused.to(dev);
  plain.to(dev);
  std::mt19937_64 rng(21);
  const Tensor x = Tensor::randn({3, C, 4, 6}, rng, 0.2f, 1.5f).to(dev);
  const Tensor dy = Tensor::randn({3, C, 4, 6}, rng).to(dev);
  for (bool training : {true, false}) {
    CAPTURE(training);
    fused.train(training);
    plain.train(training);
    act.train(training);
    fused.zero_grad();
    plain.zero_grad();
    expect_same("y", fused.forward(x), act.forward(plain.forward(x)));
    expect_same("dx", fused.backward(dy), plain.backward(act.backward(dy)));
    expect_same("dweight", fused.weight().grad, plain.weight().grad);
    expect_same("dbias", fused.bias().grad, plain.bias().grad);
    expect_same("running_mean", fused.running_mean(), plain.running_mean());
    expect_same("running_var", fused.running_var(), plain.running_var());
  }
  // Same names, same batch count.
  auto fb = fused.named_buffers(), pb = plain.named_buffers();
  REQUIRE(fb.size() == pb.size());
  for (std::size_t i = 0; i < fb.size(); ++i) CHECK(fb[i].first == pb[i].first);
  CHECK(fb[2].second->cpu().data<std::int32_t>()[0] == 1);
  CHECK(pb[2].second->cpu().data<std::int32_t>()[0] == 1);
  CHECK(fused.type_name() == "BatchNorm2d");
}

}  // namespace

TEST_CASE("BatchNorm2d with a fused activation equals BatchNorm2d then the activation module" *
          doctest::test_suite("cpu")) {
  check_fused_against_modules(Activation::ReLU, Device::CPU);
  check_fused_against_modules(Activation::SiLU, Device::CPU);
}

TEST_CASE("BatchNorm2d with a fused activation equals BatchNorm2d then the activation module [gpu]" *
          doctest::test_suite(gpu_suite()) * doctest::skip(skip_gpu_cases())) {
  check_fused_against_modules(Activation::ReLU, Device::CUDA);
  check_fused_against_modules(Activation::SiLU, Device::CUDA);
}

TEST_CASE("BatchNorm2d fuses only relu and silu; a second backward is an error" * doctest::test_suite("cpu")) {
  CHECK_THROWS_WITH_AS(BatchNorm2d(3, BatchNormOptions{.activation = Activation::GELU}),
                       doctest::Contains("BatchNorm2d: a fused activation must be relu or silu, found gelu"),
                       cxr::Error);
  BatchNorm2d bn(2, BatchNormOptions{.activation = Activation::ReLU});
  bn.forward(Tensor::full({2, 2, 2, 2}, 1.f));
  bn.backward(Tensor::full({2, 2, 2, 2}, 1.f));
  CHECK_THROWS_AS(bn.backward(Tensor::full({2, 2, 2, 2}, 1.f)), cxr::Error);
}

TEST_CASE("Conv2dNormActivation fuses BatchNorm2d with ReLU/SiLU and keeps torchvision's names" *
          doctest::test_suite("cpu")) {
  auto children = [](Module& m) {
    std::string s;
    for (auto& [name, child] : m.named_children()) s += name + ":" + child->type_name() + " ";
    return s;
  };
  Conv2dNormActivation silu(3, 4, ConvNormActOptions{.kernel = 3, .activation = Activation::SiLU});
  CHECK(children(silu) == "0:Conv2d 1:BatchNorm2d ");
  auto* bn = dynamic_cast<BatchNorm2d*>(silu.named_children()[1].second);
  REQUIRE(bn != nullptr);
  CHECK(bn->fused_activation() == Activation::SiLU);
  // Not fusable: a separate module at "2"; no activation: none.
  Conv2dNormActivation gelu(3, 4, ConvNormActOptions{.kernel = 3, .activation = Activation::GELU});
  CHECK(children(gelu) == "0:Conv2d 1:BatchNorm2d 2:GELU ");
  Conv2dNormActivation plain(3, 4, ConvNormActOptions{.kernel = 1, .activation = std::nullopt});
  CHECK(children(plain) == "0:Conv2d 1:BatchNorm2d ");
  CHECK_FALSE(dynamic_cast<BatchNorm2d*>(plain.named_children()[1].second)->fused_activation().has_value());
  // Switched off: the unfused modules of before.
  std::unique_ptr<Conv2dNormActivation> unfused_block;
  {
    UnfusedScope unfused_scope;
    unfused_block = std::make_unique<Conv2dNormActivation>(
        3, 4, ConvNormActOptions{.kernel = 3, .activation = Activation::SiLU});
  }
  CHECK(execution().fuse_batch_norm_activation);
  Conv2dNormActivation& unfused = *unfused_block;
  CHECK(children(unfused) == "0:Conv2d 1:BatchNorm2d 2:SiLU ");
  // Same parameter and buffer names either way.
  auto names = [](Module& m) {
    std::string s;
    for (auto& [k, p] : m.named_parameters()) s += k + " ";
    for (auto& [k, b] : m.named_buffers()) s += k + " ";
    return s;
  };
  CHECK(names(silu) == names(unfused));
  CHECK(names(silu) == "0.weight 1.weight 1.bias 1.running_mean 1.running_var 1.num_batches_tracked ");
}

namespace {

// BatchNorm2d modules of a module tree with a fused activation, and all of them.
void count_batch_norms(Module& m, int& fused, int& all) {
  if (auto* bn = dynamic_cast<BatchNorm2d*>(&m)) {
    ++all;
    if (bn->fused_activation()) ++fused;
  }
  for (auto& [name, child] : m.named_children()) count_batch_norms(*child, fused, all);
}

// A whole model built fused and unfused from the same seed: the same names, outputs, every
// parameter gradient, d(image) and buffers after a training step, then an eval forward.
void check_model_fused_against_unfused(const std::string& arch, std::int64_t pixels, int expected_fused) {
  CAPTURE(arch);
  std::unique_ptr<CxrModel> u;
  {
    UnfusedScope unfused_scope;
    manual_seed(11);
    u = make_model(arch, 14);
  }
  manual_seed(11);
  std::unique_ptr<CxrModel> f = make_model(arch, 14);
  int fused_u = 0, all_u = 0, fused_f = 0, all_f = 0;
  count_batch_norms(*u, fused_u, all_u);
  count_batch_norms(*f, fused_f, all_f);
  CHECK(fused_u == 0);
  CHECK(all_u == all_f);
  MESSAGE(arch, ": ", fused_f, " of ", all_f, " BatchNorm2d run fused");
  CHECK(fused_f == expected_fused);
  auto up = u->named_parameters(), fp = f->named_parameters();
  REQUIRE(up.size() == fp.size());
  for (std::size_t i = 0; i < up.size(); ++i) {
    REQUIRE(up[i].first == fp[i].first);
    REQUIRE(up[i].second->value.to_vector() == fp[i].second->value.to_vector());
  }
  std::mt19937_64 rng(12);
  const Tensor x = Tensor::randn({2, 3, pixels, pixels}, rng);
  const Tensor r1 = Tensor::randn({2, 14}, rng), r2 = Tensor::randn({2, 14, 4}, rng);
  Tensor dx[2];
  int k = 0;
  for (CxrModel* m : {u.get(), f.get()}) {
    m->train();
    m->zero_grad();
    m->forward_heads(x);
    dx[k++] = m->backward_heads(r1, r2);
  }
  expect_close("d(image)", dx[1], dx[0], {1e-6, 1e-4});
  for (std::size_t i = 0; i < up.size(); ++i) {
    // relative to the gradient's largest element: deep BN nets amplify rounding (docs/models.md)
    const std::vector<float> g = up[i].second->grad.to_vector();
    double mx = 0;
    for (float v : g) mx = std::max(mx, double(std::abs(v)));
    expect_close(up[i].first + ".grad", fp[i].second->grad, up[i].second->grad, {1e-5 * mx + 1e-7, 1e-5});
  }
  auto ub = u->named_buffers(), fb = f->named_buffers();
  REQUIRE(ub.size() == fb.size());
  for (std::size_t i = 0; i < ub.size(); ++i) {
    REQUIRE(ub[i].first == fb[i].first);
    if (ub[i].second->dtype() == DType::F32) expect_close(ub[i].first, *fb[i].second, *ub[i].second, {1e-6, 1e-5});
  }
  u->eval();
  f->eval();
  NoGradGuard no_grad;
  expect_close("eval logits", f->forward_heads(x).logits, u->forward_heads(x).logits, {1e-5, 1e-5});
}

}  // namespace

TEST_CASE("resnet18, resnet50 and efficientnet_b0 built fused equal the unfused models" *
          doctest::test_suite("cpu")) {
  // resnet: the stem + bn1 of each block (+ bn2 of a Bottleneck): 1 + 8, 1 + 2 * 16.
  check_model_fused_against_unfused("resnet18", 32, 9);
  check_model_fused_against_unfused("resnet50", 64, 33);
  // efficientnet_b0: stem, head, and per MBConv the depthwise conv (+ the expansion when
  // expand_ratio != 1: all 16 blocks but the first): 2 + 16 + 15.
  check_model_fused_against_unfused("efficientnet_b0", 32, 33);
}
