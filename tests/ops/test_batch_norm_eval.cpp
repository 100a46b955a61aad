// batch_norm2d_eval_backward: the backward of the evaluation forward (frozen running
// statistics). Op cases (CPU against finite differences of the double reference, devices
// against the CPU), PyTorch golden values (tests/gen/batch_norm_eval.py ->
// tests/golden/batch_norm_eval.json: nn.BatchNorm2d in eval mode, x with requires_grad),
// argument checks, and the BatchNorm2d layer back-propagated in eval mode, alone and inside a
// Conv2dNormActivation block.
#include <cmath>
#include <memory>

#include "kernels/batch_norm.h"
#include "layers/batch_norm.h"
#include "layers/conv_norm_activation.h"
#include "layers/init.h"
#include "tensor/backend.h"
#include "tests/golden.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

constexpr float kEps = 1e-5f;

OpCase bn_eval_backward_case(Shape shape) {
  const std::int64_t C = shape[1];
  OpCase c;
  // x, weight, bias differentiable; the running statistics are constants in eval mode.
  c.inputs = {{shape, normal(0.5f, 2.f)},
              {{C}, uniform(0.5f, 1.5f)},
              {{C}, uniform(-0.5f, 0.5f)},
              {{C}, uniform(-0.2f, 0.2f), false},
              {{C}, uniform(0.5f, 2.f), false}};
  c.forward = [](Tensors& in) {
    return Tensors{batch_norm2d_eval(BnActivation::Identity, in[0], in[1], in[2], in[3], in[4], kEps)};
  };
  c.backward = [](const Tensors& in, const Tensors&, const Tensors& dout) {
    BatchNormGrads g =
        batch_norm2d_eval_backward(BnActivation::Identity, dout[0], in[0], in[1], in[2], in[3], in[4], kEps);
    return Tensors{g.dx, g.dweight, g.dbias, Tensor(), Tensor()};
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
  c.device_grad_tol = {1e-4, 1e-3};
  return c;
}

void check_golden_on(Device dev) {
  const nlohmann::json g = load_golden("batch_norm_eval");
  const float eps = g.at("eps").get<float>();
  for (const nlohmann::json& c : g.at("cases")) {
    auto t = [&](const char* k) { return golden_tensor(c.at(k)).to(dev); };
    const Tensor x = t("x"), w = t("weight"), b = t("bias"), rm = t("running_mean"), rv = t("running_var"),
                 dy = t("dy");
    const std::string shape = shape_str(x.shape()) + " on " + device_name(dev);
    expect_close("y " + shape, batch_norm2d_eval(BnActivation::Identity, x, w, b, rm, rv, eps),
                 golden_tensor(c.at("y")), {2e-5, 1e-4});
    const BatchNormGrads gr = batch_norm2d_eval_backward(BnActivation::Identity, dy, x, w, b, rm, rv, eps);
    expect_close("dx " + shape, gr.dx, golden_tensor(c.at("dx")), {2e-5, 1e-4});
    expect_close("dweight " + shape, gr.dweight, golden_tensor(c.at("dweight")), {1e-4, 1e-4});
    expect_close("dbias " + shape, gr.dbias, golden_tensor(c.at("dbias")), {1e-4, 1e-4});
    // The statistics are inputs only.
    expect_close("running_mean " + shape, rm, golden_tensor(c.at("running_mean")), {0, 0});
    expect_close("running_var " + shape, rv, golden_tensor(c.at("running_var")), {0, 0});
  }
}

// L = sum(r * module(x)) in double, with the module in its current mode.
double weighted_sum(Module& m, const Tensor& x, const std::vector<float>& r) {
  const std::vector<float> y = m.forward(x).to_vector();
  double s = 0;
  for (std::size_t i = 0; i < y.size(); ++i) s += static_cast<double>(r[i]) * y[i];
  return s;
}

// The module's backward in its current mode (d input and every parameter gradient) against
// central finite differences of weighted_sum; the buffers must not change.
void check_backward_without_update(Module& m, const Shape& input_shape, std::uint64_t seed, Tol tol) {
  std::mt19937_64 rng(seed);
  Tensor x = Tensor::randn(input_shape, rng);
  const Tensor y = m.forward(x);
  std::vector<float> r(static_cast<std::size_t>(y.numel()));
  std::normal_distribution<float> nd;
  for (float& v : r) v = nd(rng);
  auto bytes = [](Tensor t) {
    const auto* p = static_cast<const std::uint8_t*>(t.raw_data());
    return std::vector<std::uint8_t>(p, p + t.nbytes());
  };
  std::vector<std::vector<std::uint8_t>> buffers_before;
  for (auto& [name, b] : m.named_buffers()) buffers_before.push_back(bytes(*b));
  m.zero_grad();
  const Tensor dx = m.backward(Tensor::from_vector(r, y.shape()));
  REQUIRE(dx.defined());
  const double h = 1e-2;
  auto probe = [&](const std::string& what, Tensor& t, const Tensor& grad) {
    const std::vector<float> g = grad.to_vector();
    std::vector<double> fd, an;
    float* p = t.f32();
    for (std::int64_t i = 0; i < t.numel(); i += std::max<std::int64_t>(1, t.numel() / 16)) {
      const float keep = p[i];
      p[i] = keep + static_cast<float>(h);
      const double lp = weighted_sum(m, x, r);
      p[i] = keep - static_cast<float>(h);
      const double lm = weighted_sum(m, x, r);
      p[i] = keep;
      fd.push_back((lp - lm) / (2 * h));
      an.push_back(g[static_cast<std::size_t>(i)]);
    }
    std::vector<float> anf(an.begin(), an.end());
    expect_close(what + " (analytic vs finite differences)", anf, fd, tol);
  };
  probe("dx", x, dx);
  for (auto& [name, p] : m.named_parameters()) probe(name, p->value, p->grad);
  std::size_t k = 0;
  for (auto& [name, b] : m.named_buffers()) {
    CHECK_MESSAGE(bytes(*b) == buffers_before[k], name, " changed in eval mode");
    ++k;
  }
}

}  // namespace

CXR_OP_CASE("batch_norm2d eval backward 2x3x5x5") {
  return bn_eval_backward_case({2, 3, 5, 5});
}
CXR_OP_CASE("batch_norm2d eval backward 3x16x1x1") {
  return bn_eval_backward_case({3, 16, 1, 1});
}
CXR_OP_CASE("batch_norm2d eval backward 8x32x4x4") {
  return bn_eval_backward_case({8, 32, 4, 4});
}
// M = 2*70*70 = 9800 values per channel: several chunks per channel on the device (S > 1).
CXR_OP_CASE("batch_norm2d eval backward 2x2x70x70 (split channels)") {
  return bn_eval_backward_case({2, 2, 70, 70});
}

TEST_CASE("batch_norm2d eval backward matches PyTorch (golden) [cpu]" * doctest::test_suite("cpu")) {
  check_golden_on(Device::CPU);
}

TEST_CASE("batch_norm2d eval backward matches PyTorch (golden) [gpu]" * doctest::test_suite(gpu_suite()) *
          doctest::skip(skip_gpu_cases())) {
  if (!backend::has_device()) FAIL("CXR_REQUIRE_GPU=1 but no CUDA device");
  check_golden_on(Device::CUDA);
}

TEST_CASE("batch_norm2d eval backward rejects bad arguments with clear messages" * doctest::test_suite("cpu")) {
  const Tensor x = Tensor::zeros({2, 3, 2, 2}), dy = Tensor::zeros({2, 3, 2, 2});
  const Tensor w = Tensor::full({3}, 1.f), b = Tensor::zeros({3}), rm = Tensor::zeros({3}), rv = Tensor::full({3}, 1.f);
  CHECK_THROWS_WITH_AS(batch_norm2d_eval_backward(BnActivation::Identity, Tensor::zeros({2, 3, 2, 3}), x, w, b, rm, rv),
                       doctest::Contains("batch_norm2d_eval_backward"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_eval_backward(BnActivation::Identity, dy, x, Tensor::full({4}, 1.f), b, rm, rv),
                       doctest::Contains("weight"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_eval_backward(BnActivation::Identity, dy, x, w, b, Tensor::zeros({2}), rv),
                       doctest::Contains("running_mean"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_eval_backward(BnActivation::Identity, dy, x, w, b, rm, Tensor::zeros({3, 1})),
                       doctest::Contains("running_var"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_eval_backward(BnActivation::Identity, dy, Tensor::zeros({6, 2, 2}), w, b, rm, rv),
                       doctest::Contains("x"), cxr::Error);
}

TEST_CASE("BatchNorm2d layer: backward in eval mode matches finite differences" * doctest::test_suite("cpu")) {
  BatchNorm2d bn(3);
  // Statistics and affine parameters away from their initial values.
  bn.running_mean().copy_(Tensor::from_vector({0.3f, -0.2f, 0.1f}, {3}));
  bn.running_var().copy_(Tensor::from_vector({0.5f, 2.f, 1.3f}, {3}));
  bn.weight().value.copy_(Tensor::from_vector({1.2f, 0.7f, -0.4f}, {3}));
  bn.bias().value.copy_(Tensor::from_vector({0.1f, -0.3f, 0.2f}, {3}));
  bn.eval();
  check_backward_without_update(bn, {2, 3, 4, 4}, 11, {2e-3, 2e-2});
}

// Frozen batch norm inside a block (fine-tuning with frozen statistics: the block trains, its
// BatchNorm2d is in eval mode): Conv2d -> BatchNorm2d (eval) -> SiLU, back-propagated.
TEST_CASE("Conv2dNormActivation with its BatchNorm2d in eval mode: backward matches finite differences" *
          doctest::test_suite("cpu")) {
  manual_seed(5);
  Conv2dNormActivation block(3, 4, ConvNormActOptions{.kernel = 3, .activation = Activation::SiLU});
  block.train();
  BatchNorm2d* bn = nullptr;
  for (auto& [name, child] : block.named_children())
    if (auto* b = dynamic_cast<BatchNorm2d*>(child)) bn = b;
  REQUIRE(bn != nullptr);
  bn->eval();
  bn->running_mean().copy_(Tensor::from_vector({0.2f, -0.1f, 0.05f, 0.3f}, {4}));
  bn->running_var().copy_(Tensor::from_vector({0.6f, 1.5f, 0.9f, 2.f}, {4}));
  bn->bias().value.copy_(Tensor::from_vector({0.1f, -0.2f, 0.3f, 0.f}, {4}));
  check_backward_without_update(block, {2, 3, 5, 5}, 13, {2e-3, 2e-2});
}
