// EfficientNet-B0 against torchvision 0.14 (golden: tests/gen/models_efficientnet_convnext.py):
// state_dict names and shapes, eval and train forward, every parameter gradient; and the
// CUDA device (emulated or real) against the CPU.
#include <doctest/doctest.h>

#include "models/efficientnet.h"
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

const char* kArch = "efficientnet_b0";

// Parity runs: no dropout before the heads, no drop-path (masks differ from PyTorch's).
std::unique_ptr<CxrModel> make_deterministic() {
  return std::make_unique<EfficientNet>(EfficientNetOptions{.dropout = 0.f, .stochastic_depth_prob = 0.f});
}

}  // namespace

TEST_CASE("efficientnet_b0: state_dict names and shapes are torchvision's" * doctest::test_suite("models")) {
  auto m = make_model(kArch);
  CHECK(m->architecture() == kArch);
  check_keys(*m, load_golden(kArch));
  CHECK(m->num_features() == 1280);
  CHECK(m->parameter_count() == 4007548 + 1280 * 70 + 70);  // features + the two heads
}

TEST_CASE("efficientnet_b0: structure follows torchvision's B0 table" * doctest::test_suite("models")) {
  EfficientNet m;
  // 16 MBConv blocks in features.1..7; residual exactly where stride 1 and widths agree.
  int blocks = 0, residual = 0;
  for (std::size_t s = 1; s <= 7; ++s) {
    auto& stage = static_cast<Sequential&>(m.features()[s]);
    for (std::size_t b = 0; b < stage.size(); ++b) {
      auto& block = static_cast<MBConv&>(stage[b]);
      ++blocks;
      residual += block.use_res_connect();
      // drop-path probability 0.2 * block_id / 16
      CHECK(block.stochastic_depth().p() == doctest::Approx(0.2 * (blocks - 1) / 16.0));
    }
  }
  CHECK(blocks == 16);
  CHECK(residual == 9);
  CHECK(make_divisible(16 * 6.0, 8) == 96);
  CHECK(make_divisible(3.0, 8) == 8);
  CHECK(make_divisible(20.0, 8) == 24);
}

TEST_CASE("efficientnet_b0: the input gradient can be switched off" * doctest::test_suite("models")) {
  EfficientNet m(EfficientNetOptions{.dropout = 0.5f, .width_mult = 0.25, .depth_mult = 0.25});
  const Tensor x = det_uniform("x", {2, 3, 32, 32}, 1.f);
  m.train();
  HeadOutputs out = m.forward_heads(x);
  CHECK(out.logits.shape() == Shape{2, 14});
  CHECK(out.boxes.shape() == Shape{2, 14, 4});
  CHECK(m.feature_map().shape() == Shape{2, 4 * 80, 1, 1});  // 320 * 0.25 = 80 -> 320 features
  Tensor dx = m.backward_heads(Tensor::full({2, 14}, 1.f), Tensor());
  CHECK(dx.shape() == x.shape());
  m.set_input_grad(false);
  m.forward_heads(x);
  CHECK_FALSE(m.backward_heads(Tensor::full({2, 14}, 1.f), Tensor::full({2, 14, 4}, 1.f)).defined());
}

TEST_CASE("efficientnet_b0: eval and train match torchvision on the CPU" * doctest::test_suite("models")) {
  const nlohmann::json golden = load_golden(kArch);
  const Shape shape = golden.at("input_shape").get<Shape>();
  auto m = make_deterministic();
  det_init_model(*m, kArch);
  check_eval(eval_run(*m, kArch, shape), golden);
  check_eval(inference_run(*m, kArch, shape), golden);  // batch norms folded into the weights
  check_train(train_run(*m, kArch, shape), golden);
}

TEST_CASE("efficientnet_b0: the CUDA device matches the CPU" * doctest::test_suite(gpu_suite()) *
          doctest::skip(skip_gpu_cases())) {
  if (!backend::is_emulated()) {
    // A real GPU: the whole model at the golden size.
    check_device_against_cpu(make_deterministic, kArch, {2, 3, 64, 64});
    return;
  }
  // The emulated device runs kernels on the CPU, slowly: the same code at half width and
  // depth (10 blocks, every kind: expansion, SE, residual, strides, both kernel sizes).
  // The feature map ends at 2x2: BatchNorm in training mode over only 2 values per channel
  // (a 1x1 map, batch 2) is ill-conditioned and amplifies rounding differences.
  auto make_small = [] {
    return std::make_unique<EfficientNet>(
        EfficientNetOptions{.dropout = 0.f, .stochastic_depth_prob = 0.f, .width_mult = 0.5, .depth_mult = 0.5});
  };
  check_device_against_cpu(make_small, kArch, {2, 3, 40, 40});
}
