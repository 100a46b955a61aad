// MBConv (layers/mbconv.h) beyond the whole-model parity: the block's children as torchvision
// names them, use_res_connect, and drop-path in training (a dropped sample's output is its
// input; a kept one gets the branch scaled by 1 / (1 - p)).
#include <doctest/doctest.h>

#include <cmath>

#include "layers/mbconv.h"
#include "tests/det_init.h"
#include "tests/layers/layer_check.h"
#include "tests/models/test_efficientnet_convnext_parity.h"

namespace {

using namespace cxr;
using namespace cxr::test;
using namespace cxr::test::tv_parity;

std::vector<std::string> parameter_names(Module& m) {
  std::vector<std::string> names;
  for (auto& [k, p] : m.named_parameters()) names.push_back(k);
  return names;
}

}  // namespace

TEST_CASE("MBConv: children and names follow torchvision" * doctest::test_suite("layers")) {
  MBConv expand({6, 3, 2, 16, 24}, 0.f);
  CHECK_FALSE(expand.use_res_connect());
  const auto names = parameter_names(expand);
  REQUIRE(names.size() == 13);              // 3 + 3 + 4 (SE convs with biases) + 3
  CHECK(names[0] == "block.0.0.weight");    // 1x1 expansion 16 -> 96
  CHECK(names[3] == "block.1.0.weight");    // depthwise 3x3
  CHECK(names[6] == "block.2.fc1.weight");  // SE 96 -> 4
  CHECK(names[10] == "block.3.0.weight");   // projection 96 -> 24
  CHECK(expand.named_parameters()[6].second->value.shape() == Shape{4, 96, 1, 1});

  MBConv no_expand({1, 3, 1, 32, 16}, 0.f);  // features.1.0: no expansion conv
  CHECK(parameter_names(no_expand)[0] == "block.0.0.weight");
  CHECK(no_expand.named_parameters()[0].second->value.shape() == Shape{32, 1, 3, 3});
  CHECK(MBConv({6, 5, 1, 40, 40}, 0.f).use_res_connect());
}

TEST_CASE("MBConv: drop-path drops or rescales whole samples, in training only" * doctest::test_suite("layers")) {
  const std::int64_t N = 16, C = 16, H = 4, W = 4;
  const float p = 0.5f;
  MBConv blk({6, 3, 1, C, C}, p);
  det_init_model(blk, "mbconv");
  blk.stochastic_depth().set_rng(4321, 0);
  const Tensor x = det_uniform("mbconv.x", {N, C, H, W}, 1.f);
  blk.train();
  const auto y = blk.forward(x).to_vector();
  // The branch in the same (training) state: BatchNorm sees the same batch, so the same values.
  const auto b = blk.block().forward(x).to_vector();
  const auto vx = x.to_vector();
  const std::size_t s = vx.size() / N;
  int dropped = 0;
  for (std::int64_t n = 0; n < N; ++n) {
    double to_input = 0, to_kept = 0;
    for (std::size_t i = n * s; i < (n + 1) * s; ++i) {
      to_input = std::max(to_input, std::abs(double(y[i]) - vx[i]));
      to_kept = std::max(to_kept, std::abs(double(y[i]) - (vx[i] + b[i] / (1 - p))));
    }
    if (to_input == 0.0)
      ++dropped;
    else
      CHECK_MESSAGE(to_kept <= 1e-5, "sample ", n, " neither dropped nor kept and rescaled");
  }
  CHECK(dropped > 0);
  CHECK(dropped < N);

  blk.eval();
  const auto ye = blk.forward(x).to_vector(), be = blk.block().forward(x).to_vector();
  double err = 0;
  for (std::size_t i = 0; i < vx.size(); ++i) err = std::max(err, std::abs(double(ye[i]) - (vx[i] + be[i])));
  CHECK(err <= 1e-5);
}

// Finite differences of whole blocks (every parameter and the input) in training mode, and
// the device against the CPU (tests/layers/layer_check.h).
CXR_LAYER_CASE("MBConv expand 6, 3x3, stride 1, residual 2x8x5x5") {
  LayerCase c;
  c.make = [] { return std::make_unique<MBConv>(MBConvConfig{6, 3, 1, 8, 8}, 0.f); };
  c.input_shape = {2, 8, 5, 5};
  return c;
}

CXR_LAYER_CASE("MBConv expand 1, 5x5, stride 2 2x16x6x6") {
  LayerCase c;
  c.make = [] { return std::make_unique<MBConv>(MBConvConfig{1, 5, 2, 16, 8}, 0.f); };
  c.input_shape = {2, 16, 6, 6};
  return c;
}
