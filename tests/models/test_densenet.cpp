// DenseNet-121 against torchvision 0.14 (golden: tests/gen/models_densenet.py): state_dict
// names and shapes, eval and train forward, every parameter gradient; the memory-efficient and
// the plain mode against each other; bf16 autocast; and the CUDA device (emulated or real)
// against the CPU.
#include <doctest/doctest.h>

#include <cmath>

#include "kernels/activation.h"
#include "kernels/execution.h"
#include "layers/init.h"
#include "models/densenet.h"
#include "models/model_factory.h"
#include "tensor/allocator.h"
#include "tensor/backend.h"
#include "tests/det_init.h"
#include "tests/golden.h"
#include "tests/models/test_efficientnet_convnext_parity.h"
#include "tests/op_check.h"

namespace {

using namespace cxr;
using namespace cxr::test;
using namespace cxr::test::tv_parity;

const char* kArch = "densenet121";

std::unique_ptr<CxrModel> make_full(bool memory_efficient) {
  return std::make_unique<DenseNet>(DenseNetOptions{.memory_efficient = memory_efficient});
}

// The same code at a size the emulated device runs in seconds: growth 8, two layers per block,
// 16 initial features, bottleneck 2 x growth (every kind of layer, block and transition).
DenseNetOptions small_options(bool memory_efficient) {
  return DenseNetOptions{.growth_rate = 8, .block_config = {2, 2, 2, 2}, .num_init_features = 16, .bn_size = 2,
                         .memory_efficient = memory_efficient};
}
std::unique_ptr<CxrModel> make_small(bool memory_efficient) {
  return std::make_unique<DenseNet>(small_options(memory_efficient));
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto va = a.to_vector(), vb = b.to_vector();
  REQUIRE(va.size() == vb.size());
  double m = 0;
  for (std::size_t i = 0; i < va.size(); ++i) m = std::max(m, std::abs(double(va[i]) - double(vb[i])));
  return m;
}

// The two modes on one device: eval outputs, training outputs, every gradient and buffer.
// The recomputation runs the forward's op on the forward's inputs, so the values agree to the
// last bit; `tol` leaves room only for a device whose kernels are not deterministic.
void check_modes_agree(Device dev, const Shape& shape, double tol) {
  std::unique_ptr<CxrModel> eff = make_small(true), plain = make_small(false);
  det_init_model(*eff, kArch);
  det_init_model(*plain, kArch);
  eff->to(dev);
  plain->to(dev);
  const Prediction pe = eval_run(*eff, kArch, shape), pp = eval_run(*plain, kArch, shape);
  CHECK(max_abs_diff(pe.probs, pp.probs) <= tol);
  const TrainRun re = train_run(*eff, kArch, shape), rp = train_run(*plain, kArch, shape);
  CHECK(max_abs_diff(re.probs, rp.probs) <= tol);
  CHECK(max_abs_diff(re.boxes, rp.boxes) <= tol);
  REQUIRE(re.grads.size() == rp.grads.size());
  double worst = 0;
  for (std::size_t i = 0; i < re.grads.size(); ++i) {
    CAPTURE(re.grads[i].first);
    const double d = max_abs_diff(re.grads[i].second, rp.grads[i].second);
    worst = std::max(worst, d);
    CHECK(d <= tol);
  }
  for (std::size_t i = 0; i < re.buffers.size(); ++i)
    if (re.buffers[i].second.dtype() == DType::F32) CHECK(max_abs_diff(re.buffers[i].second, rp.buffers[i].second) <= tol);
  MESSAGE("memory-efficient vs plain on ", device_name(dev), ": largest gradient difference ", worst);
}

// One training forward and backward of the small network under fp32 or bf16 autocast, on a
// device, the input plus `noise` times a fixed uniform draw: the probabilities and every
// parameter gradient, concatenated, on the host.
struct Bf16Run {
  Tensor probs;
  std::vector<float> grads;
};
Bf16Run bf16_run(Device dev, bool bf16, float noise) {
  const ExecutionScope scope({.precision = bf16 ? Precision::BF16 : Precision::FP32});
  auto m = make_small(true);
  det_init_model(*m, kArch);
  m->to(dev);
  const Shape s{2, 3, 64, 64};
  Tensor x = det_uniform(std::string(kArch) + ".input", s, 1.f);
  if (noise != 0.f) {
    auto v = x.to_vector();
    const auto n = det_uniform("densenet.noise", s, 1.f).to_vector();
    for (std::size_t i = 0; i < v.size(); ++i) v[i] += noise * n[i];
    x = Tensor::from_vector(v, s);
  }
  m->train();
  m->zero_grad();
  const HeadOutputs out = m->forward_heads(x.to(dev));
  CHECK(out.logits.dtype() == DType::F32);
  m->backward_heads(det_uniform("r1", {2, 14}, 1.f).to(dev), det_uniform("r2", {2, 14, 4}, 1.f).to(dev));
  Bf16Run r{activation_forward(Activation::Sigmoid, out.logits.cpu()), {}};
  for (auto& [k, p] : m->named_parameters()) {
    const auto v = p->grad.to_vector();
    r.grads.insert(r.grads.end(), v.begin(), v.end());
  }
  return r;
}

double relative_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (std::size_t k = 0; k < a.size(); ++k) num += std::pow(double(a[k]) - b[k], 2), den += double(b[k]) * b[k];
  return std::sqrt(num / den);
}

}  // namespace

TEST_CASE("densenet121: state_dict names and shapes are torchvision's" * doctest::test_suite("models")) {
  const nlohmann::json golden = load_golden(kArch);
  auto m = make_model(kArch);
  CHECK(m->architecture() == kArch);
  check_keys(*m, golden);
  CHECK(m->num_features() == 1024);
  // torchvision: 7,978,856 with its classifier (1024 x 1000 + 1000), 6,953,856 in features.
  const std::int64_t tv_features = golden.at("torchvision_feature_parameters").get<std::int64_t>();
  CHECK(tv_features == 6953856);
  CHECK(golden.at("torchvision_parameters").get<std::int64_t>() == tv_features + 1024 * 1000 + 1000);
  CHECK(m->parameter_count() == tv_features + 1024 * 70 + 70);  // + the two heads
  CHECK(static_cast<DenseNet&>(*m).features().named_parameters().size() == 362);
}

TEST_CASE("densenet121: the widths follow torchvision's table" * doctest::test_suite("models")) {
  DenseNet m;
  // Block b's layer M sees c_block + 32 (M - 1) channels; transitions halve.
  const std::int64_t block_in[4] = {64, 128, 256, 512}, layers[4] = {6, 12, 24, 16};
  for (int b = 0; b < 4; ++b) {
    auto& block = static_cast<DenseBlock&>(*m.features().named_children()[3 + 2 * b].second);
    CHECK(block.out_channels() == block_in[b] + 32 * layers[b]);
    for (std::int64_t l = 0; l < layers[b]; ++l) {
      auto& layer = static_cast<DenseLayer&>(*block.named_children()[l].second);
      CHECK(layer.in_channels() == block_in[b] + 32 * l);
    }
  }
  // A dense layer runs only inside its block.
  auto& block1 = static_cast<DenseBlock&>(*m.features().named_children()[3].second);
  CHECK_THROWS_WITH_AS(block1.named_children()[0].second->forward(Tensor::zeros({1, 64, 4, 4})),
                       doctest::Contains("_DenseBlock"), cxr::Error);
  CHECK_THROWS_WITH_AS(m.forward_features(Tensor::zeros({1, 1, 32, 32})), doctest::Contains("densenet121"),
                       cxr::Error);
  CHECK_THROWS_WITH_AS(m.forward_features(Tensor::zeros({2, 3, 28, 64})), doctest::Contains("too small"), cxr::Error);
}

TEST_CASE("densenet121: eval and train match torchvision on the CPU (memory-efficient, the default)" *
          doctest::test_suite("models")) {
  const nlohmann::json golden = load_golden(kArch);
  const Shape shape = golden.at("input_shape").get<Shape>();
  auto m = make_full(true);
  det_init_model(*m, kArch);
  check_eval(eval_run(*m, kArch, shape), golden);
  check_eval(inference_run(*m, kArch, shape), golden);  // conv0 + norm0 folded into the weights
  check_train(train_run(*m, kArch, shape), golden);
}

TEST_CASE("densenet121: eval and train match torchvision on the CPU (memory_efficient off)" *
          doctest::test_suite("models")) {
  const nlohmann::json golden = load_golden(kArch);
  const Shape shape = golden.at("input_shape").get<Shape>();
  auto m = make_full(false);
  det_init_model(*m, kArch);
  check_eval(eval_run(*m, kArch, shape), golden);
  check_train(train_run(*m, kArch, shape), golden);
}

TEST_CASE("densenet: the memory-efficient and the plain mode give the same outputs and gradients (CPU)" *
          doctest::test_suite("models")) {
  check_modes_agree(Device::CPU, {2, 3, 64, 64}, 0.0);
}

TEST_CASE("densenet: the input gradient can be switched off, and a second step reuses nothing stale" *
          doctest::test_suite("models")) {
  DenseNet m(small_options(true));
  const Tensor x = det_uniform("x", {2, 3, 64, 64}, 1.f);
  m.train();
  HeadOutputs out = m.forward_heads(x);
  CHECK(out.logits.shape() == Shape{2, 14});
  CHECK(out.boxes.shape() == Shape{2, 14, 4});
  CHECK(m.feature_map().shape() == Shape{2, m.num_features(), 2, 2});
  Tensor dx = m.backward_heads(Tensor::full({2, 14}, 1.f), Tensor());
  CHECK(dx.shape() == x.shape());
  m.set_input_grad(false);
  m.forward_heads(x);
  CHECK_FALSE(m.backward_heads(Tensor::full({2, 14}, 1.f), Tensor::full({2, 14, 4}, 1.f)).defined());
  // Odd sizes: the transitions' pools drop the last row and column, as nn.AvgPool2d(2, 2).
  m.forward_heads(det_uniform("x", {1, 3, 72, 88}, 1.f));
  CHECK(m.feature_map().shape() == Shape{1, m.num_features(), 2, 2});
  m.backward_heads(Tensor::full({1, 14}, 1.f), Tensor());
}

TEST_CASE("densenet under bf16 autocast: close to fp32 but not equal, on the CPU" * doctest::test_suite("models")) {
  // The yardstick: at this size (batch 2, 64 px, batch norms over 8 values per channel in the
  // last block) the gradients are chaotic: changing the input by 4e-3 of a uniform draw (a
  // bf16 rounding's size) moves them by ~0.23 (relative L2, fp32 both). bf16 rounds every
  // activation, so it moves them as much (measured 0.41); a wrong bf16 path (a channel lost, an
  // activation read in the wrong dtype) differs by O(1) in the outputs already.
  const Bf16Run f = bf16_run(Device::CPU, false, 0.f), b = bf16_run(Device::CPU, true, 0.f);
  const Bf16Run noisy = bf16_run(Device::CPU, false, 4e-3f);
  const double dp = max_abs_diff(f.probs, b.probs);
  const double grads = relative_l2(b.grads, f.grads), floor = relative_l2(noisy.grads, f.grads);
  MESSAGE("densenet (small) bf16 vs fp32: max |probs diff| ", dp, ", relative gradient difference ", grads,
          "; fp32 on the input + 4e-3 noise: ", floor);
  CHECK(dp > 0);
  CHECK(dp < 2e-2);
  CHECK(grads > 0);
  CHECK(grads < 2 * floor);
}

TEST_CASE("densenet under bf16 autocast: the CUDA device matches the CPU" * doctest::test_suite(gpu_suite()) *
          doctest::skip(skip_gpu_cases())) {
  // As tests/models/test_mixed_precision.cpp: every activation is rounded to bf16, so the
  // device's other summation order flips some roundings; the CPU bf16 run on the input changed
  // by 1e-5 measures what that does to the gradients here.
  const Bf16Run cpu = bf16_run(Device::CPU, true, 0.f), dev = bf16_run(Device::CUDA, true, 0.f);
  const Bf16Run nudged = bf16_run(Device::CPU, true, 1e-5f);
  const double dp = max_abs_diff(cpu.probs, dev.probs);
  const double grads = relative_l2(dev.grads, cpu.grads), floor = relative_l2(nudged.grads, cpu.grads);
  MESSAGE("densenet (small) bf16, device vs CPU: max |probs diff| ", dp, ", relative gradient difference ", grads,
          "; CPU on the input + 1e-5 noise: ", floor);
  CHECK(dp < 1e-2);
  CHECK(grads < std::max(5e-2, 2 * floor));
}

TEST_CASE("densenet121: the CUDA device matches the CPU" * doctest::test_suite(gpu_suite()) *
          doctest::skip(skip_gpu_cases())) {
  if (!backend::is_emulated()) {
    // A real GPU: the whole model at the golden size, both modes.
    check_device_against_cpu([] { return make_full(true); }, kArch, {2, 3, 64, 64});
    check_device_against_cpu([] { return make_full(false); }, kArch, {2, 3, 64, 64});
    return;
  }
  // The emulated device runs kernels on the CPU, slowly: the same code at a small width and
  // depth (small_options), 64 px so that the last map is 2x2 (a batch norm over 2 values per
  // channel amplifies rounding differences).
  check_device_against_cpu([] { return make_small(true); }, kArch, {2, 3, 64, 64});
}

TEST_CASE("densenet: both modes agree on the CUDA device, and the memory-efficient one keeps less" *
          doctest::test_suite(gpu_suite()) * doctest::skip(skip_gpu_cases())) {
  check_modes_agree(Device::CUDA, {2, 3, 64, 64}, 0.0);
  // Device bytes a training forward keeps for backward (in use after it, beyond before it).
  auto kept = [](bool memory_efficient) {
    manual_seed(3);
    auto m = make_small(memory_efficient);
    m->to(Device::CUDA);
    m->train();
    const Tensor x = det_uniform("x", {2, 3, 64, 64}, 1.f).to(Device::CUDA);
    backend::synchronize();
    const std::size_t before = device_memory_stats().in_use;
    const HeadOutputs out = m->forward_heads(x);
    backend::synchronize();
    return static_cast<double>(device_memory_stats().in_use - before);
  };
  const double eff = kept(true), plain = kept(false);
  MESSAGE("densenet (small) kept for backward: memory-efficient ", eff, " B, plain ", plain, " B");
  CHECK(eff < plain);
}
