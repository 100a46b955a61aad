// CNBlock (layers/cnblock.h) beyond the whole-model parity: drop-path in training (per
// sample: the residual branch is dropped, or kept and scaled by 1 / (1 - p)), eval as the
// identity on that path, and the CUDA device dropping the same samples as the CPU.
#include <doctest/doctest.h>

#include <cmath>

#include "layers/cnblock.h"
#include "tests/det_init.h"
#include "tests/layers/layer_check.h"
#include "tests/models/test_efficientnet_convnext_parity.h"
#include "tests/op_check.h"

namespace {

using namespace cxr;
using namespace cxr::test;
using namespace cxr::test::tv_parity;

constexpr std::int64_t kN = 16, kC = 8, kH = 5, kW = 5;

// Sample n of a (N, ...) tensor as a vector.
std::vector<float> sample(const std::vector<float>& v, std::int64_t n) {
  const std::size_t s = v.size() / kN;
  return {v.begin() + static_cast<std::ptrdiff_t>(n * s), v.begin() + static_cast<std::ptrdiff_t>((n + 1) * s)};
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - double(b[i])));
  return m;
}

}  // namespace

TEST_CASE("CNBlock: drop-path drops or rescales whole samples, in training only" * doctest::test_suite("layers")) {
  const float p = 0.5f;
  CNBlock blk(kC, 1e-6f, p);
  det_init_model(blk, "cnblock");  // layer_scale 0.5 + 0.1 u: the branch is not negligible
  blk.stochastic_depth().set_rng(1234, 0);
  const Tensor x = det_uniform("cnblock.x", {kN, kC, kH, kW}, 1.f);
  const Tensor dy = det_uniform("cnblock.dy", {kN, kC, kH, kW}, 1.f);

  // The branch layer_scale * block(x), from a twin without drop-path.
  CNBlock twin(kC, 1e-6f, 0.f);
  det_init_model(twin, "cnblock");
  twin.train();
  const auto branch_plus_x = twin.forward(x).to_vector();
  twin.zero_grad();
  const auto dx_kept = twin.backward(dy).to_vector();  // dx when every sample is kept (scale 1)

  blk.train();
  blk.zero_grad();
  const auto y = blk.forward(x).to_vector();
  const auto dx = blk.backward(dy).to_vector();
  const auto vx = x.to_vector(), vdy = dy.to_vector();
  int dropped = 0;
  for (std::int64_t n = 0; n < kN; ++n) {
    const auto xn = sample(vx, n), yn = sample(y, n), bn = sample(branch_plus_x, n);
    if (max_diff(yn, xn) == 0.0) {
      ++dropped;
      CHECK_MESSAGE(max_diff(sample(dx, n), sample(vdy, n)) == 0.0, "sample ", n, ": dropped, yet dx != dy");
    } else {
      // kept: y = x + (branch) / (1 - p)
      std::vector<float> expect(xn.size());
      for (std::size_t i = 0; i < xn.size(); ++i) expect[i] = xn[i] + (bn[i] - xn[i]) / (1.f - p);
      CHECK_MESSAGE(max_diff(yn, expect) <= 1e-5, "sample ", n, ": kept, but not scaled by 1 / (1 - p)");
      // dx = dy + block'(dy / (1 - p) * layer_scale): linear in the branch gradient
      const auto dkn = sample(dx_kept, n), dyn = sample(vdy, n), dxn = sample(dx, n);
      std::vector<float> dexpect(xn.size());
      for (std::size_t i = 0; i < xn.size(); ++i) dexpect[i] = dyn[i] + (dkn[i] - dyn[i]) / (1.f - p);
      CHECK_MESSAGE(max_diff(dxn, dexpect) <= 1e-4, "sample ", n, ": dx of a kept sample");
    }
  }
  CHECK(dropped > 0);
  CHECK(dropped < kN);

  // Eval: no drop-path.
  blk.eval();
  CHECK(max_diff(blk.forward(x).to_vector(), branch_plus_x) <= 1e-6);
}

TEST_CASE("CNBlock: drop-path on the CUDA device drops the same samples as the CPU" * doctest::test_suite(gpu_suite()) *
          doctest::skip(skip_gpu_cases())) {
  CNBlock c(kC, 1e-6f, 0.5f), d(kC, 1e-6f, 0.5f);
  det_init_model(c, "cnblock");
  det_init_model(d, "cnblock");
  c.stochastic_depth().set_rng(99, 7);
  d.stochastic_depth().set_rng(99, 7);
  d.to(Device::CUDA);
  const Tensor x = det_uniform("cnblock.x", {kN, kC, kH, kW}, 1.f);
  const Tensor dy = det_uniform("cnblock.dy", {kN, kC, kH, kW}, 1.f);
  c.zero_grad();
  d.zero_grad();
  expect_close("CNBlock y", d.forward(x.to(Device::CUDA)).cpu(), c.forward(x), {1e-5, 1e-4});
  expect_close("CNBlock dx", d.backward(dy.to(Device::CUDA)).cpu(), c.backward(dy), {1e-5, 1e-4});
  auto pc = c.named_parameters(), pd = d.named_parameters();
  for (std::size_t i = 0; i < pc.size(); ++i)
    expect_close("CNBlock d" + pc[i].first, pd[i].second->grad.cpu(), pc[i].second->grad, {1e-4, 1e-3});
}

// Finite differences of the whole block (every parameter incl. layer_scale, and the input),
// and the device against the CPU (tests/layers/layer_check.h). layer_scale 0.5, not 1e-6, so
// the branch's gradients are measurable.
CXR_LAYER_CASE("CNBlock 2x8x5x5 layer_scale 0.5") {
  LayerCase c;
  c.make = [] { return std::make_unique<CNBlock>(8, 0.5f, 0.f); };
  c.input_shape = {2, 8, 5, 5};
  return c;
}
