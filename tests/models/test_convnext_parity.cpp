// ConvNeXt-Tiny against torchvision 0.14 (golden: tests/gen/models_efficientnet_convnext.py):
// state_dict names and shapes, eval and train forward, every parameter gradient; and the
// CUDA device (emulated or real) against the CPU.
#include <doctest/doctest.h>

#include "models/convnext.h"
#include "models/model_factory.h"
#include "tensor/backend.h"
#include "tests/det_init.h"
#include "tests/golden.h"
#include "tests/models/test_efficientnet_convnext_parity.h"
#include "tests/op_check.h"

namespace {

using namespace cxr;
using namespace cxr::test;
using namespace cxr::test::tv_parity;

const char* kArch = "convnext_tiny";

std::unique_ptr<CxrModel> make_deterministic() {
  return std::make_unique<ConvNeXt>(ConvNeXtOptions{.stochastic_depth_prob = 0.f});
}

}  // namespace

TEST_CASE("convnext_tiny: state_dict names and shapes are torchvision's" * doctest::test_suite("models")) {
  auto m = make_model(kArch);
  CHECK(m->architecture() == kArch);
  check_keys(*m, load_golden(kArch));
  CHECK(m->num_features() == 768);
  CHECK(m->parameter_count() == 28589128 - 769000 + 768 * 70 + 70);  // torchvision - its Linear + heads
}

TEST_CASE("convnext_tiny: structure and init follow torchvision" * doctest::test_suite("models")) {
  ConvNeXt m;
  int blocks = 0;
  for (std::size_t s : {1, 3, 5, 7}) {
    auto& stage = static_cast<Sequential&>(m.features()[s]);
    for (std::size_t b = 0; b < stage.size(); ++b) {
      auto& block = static_cast<CNBlock&>(stage[b]);
      CHECK(block.stochastic_depth().p() == doctest::Approx(0.1 * blocks / 17.0));
      CHECK(block.layer_scale().value.to_vector()[0] == doctest::Approx(1e-6));
      ++blocks;
    }
  }
  CHECK(blocks == 18);
}

TEST_CASE("convnext_tiny: the input gradient can be switched off" * doctest::test_suite("models")) {
  ConvNeXt m(ConvNeXtOptions{.stages = {{{8, 16, 1}, {16, 24, 1}, {24, 32, 1}, {32, 0, 1}}}});
  const Tensor x = det_uniform("x", {2, 3, 64, 64}, 1.f);
  m.train();
  HeadOutputs out = m.forward_heads(x);
  CHECK(out.logits.shape() == Shape{2, 14});
  CHECK(m.feature_map().shape() == Shape{2, 32, 2, 2});
  Tensor dx = m.backward_heads(Tensor::full({2, 14}, 1.f), Tensor::full({2, 14, 4}, 1.f));
  CHECK(dx.shape() == x.shape());
  m.set_input_grad(false);
  m.forward_heads(x);
  CHECK_FALSE(m.backward_heads(Tensor::full({2, 14}, 1.f), Tensor()).defined());
}

TEST_CASE("convnext_tiny: eval and train match torchvision on the CPU" * doctest::test_suite("models")) {
  const nlohmann::json golden = load_golden(kArch);
  const Shape shape = golden.at("input_shape").get<Shape>();
  auto m = make_deterministic();
  det_init_model(*m, kArch);
  check_eval(eval_run(*m, kArch, shape), golden);
  check_train(train_run(*m, kArch, shape), golden);
}

TEST_CASE("convnext_tiny: the CUDA device matches the CPU" * doctest::test_suite(gpu_suite()) *
          doctest::skip(skip_gpu_cases())) {
  if (!backend::is_emulated()) {
    // A real GPU: the whole model at the golden size.
    check_device_against_cpu(make_deterministic, kArch, {2, 3, 64, 64});
    return;
  }
  // The emulated device runs kernels on the CPU, slowly: the same code with a narrow,
  // shallow stage table (28M parameters of Tiny would dominate the time).
  auto make_small = [] {
    return std::make_unique<ConvNeXt>(ConvNeXtOptions{
        .stochastic_depth_prob = 0.f, .stages = {{{24, 48, 1}, {48, 96, 1}, {96, 192, 2}, {192, 0, 1}}}});
  };
  check_device_against_cpu(make_small, kArch, {2, 3, 32, 32});
}
