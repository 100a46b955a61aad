// conv2d_bn_forward in evaluation on the CPU with want_h = false (kernels/conv2d_bn.h): the batch
// norm and its activation run as the convolution's epilogue, on each (image, channel) plane as it
// is written. y must be bit for bit what conv2d_forward then batch_norm2d_eval give (the same
// arithmetic, one pass fewer), for every body of cpu::conv2d_forward: one image written in place
// (and its 1x1 stride-1 form), panels of several images (im2col and 1x1 gathers), groups,
// depthwise (wide and narrow rows), with and without a conv bias, for each fused activation.
// Also: h is not returned, want_h = true (or training) still returns h, bad batch-norm
// arguments are refused with the tensor named.
// Inside a FrozenWeightsScope the batch norm is folded into the weights instead
// (kernels/fold_batch_norm.h): y is then within float rounding of the two ops, not their bits;
// the folded copy is made once per (weights, batch norm) and reused with the same bits; the
// execution setting fold_batch_norm off gives the epilogue's bits back.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>

#include "kernels/batch_norm.h"
#include "kernels/conv2d.h"
#include "kernels/conv2d_bn.h"
#include "kernels/cpu/frozen_weights.h"
#include "kernels/execution.h"
#include "tensor/tensor.h"

using namespace cxr;

namespace {

struct EvalCase {
  const char* name;
  Shape x, w;
  int stride, pad, groups;
  bool conv_bias;
};

BatchNormArgs eval_args(std::int64_t K, BnActivation act, std::mt19937_64& rng) {
  BatchNormArgs bn;
  bn.weight = Tensor::randn({K}, rng, 1.f, 0.3f);
  bn.bias = Tensor::randn({K}, rng, 0.f, 0.5f);
  bn.running_mean = Tensor::randn({K}, rng, 0.f, 0.5f);
  bn.running_var = Tensor::uniform({K}, rng, 0.2f, 2.f);
  bn.act = act;
  bn.eps = 1e-5f;
  bn.training = false;
  return bn;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.f32(), b.f32(), static_cast<std::size_t>(a.numel()) * 4) == 0;
}

// max |a - b| over max |b|: folding moves the scale before the product's sums, so the two differ
// by the rounding of those sums (a few ulps of the largest terms).
double relative_gap(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  double gap = 0, scale = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    gap = std::max(gap, std::fabs(double(a.f32()[i]) - double(b.f32()[i])));
    scale = std::max(scale, std::fabs(double(b.f32()[i])));
  }
  return gap / scale;
}

const EvalCase kCases[] = {
    {"3x3, one image (in place)", {1, 8, 9, 11}, {16, 8, 3, 3}, 1, 1, 1, true},
    {"3x3 stride 2, a panel of images", {6, 8, 9, 11}, {12, 8, 3, 3}, 2, 1, 1, false},
    {"1x1 stride 1, one image (x is the columns)", {1, 16, 7, 7}, {24, 16, 1, 1}, 1, 0, 1, false},
    {"1x1 stride 1, a panel (gathered)", {8, 16, 7, 7}, {24, 16, 1, 1}, 1, 0, 1, true},
    {"grouped 3x3, a panel", {5, 12, 8, 8}, {18, 4, 3, 3}, 1, 1, 3, true},
    {"depthwise 3x3, wide rows", {2, 6, 30, 30}, {6, 1, 3, 3}, 1, 1, 6, false},
    {"depthwise 5x5 stride 2, narrow rows", {3, 6, 14, 14}, {6, 1, 5, 5}, 2, 2, 6, true},
    {"3x3 through Winograd (64 channels, 16 x 16)", {2, 64, 16, 16}, {64, 64, 3, 3}, 1, 1, 1, false},
};

Conv2dParams params_of(const EvalCase& c) {
  Conv2dParams p;
  p.stride_h = p.stride_w = c.stride;
  p.pad_h = p.pad_w = c.pad;
  p.groups = c.groups;
  return p;
}

// f(x, w, conv bias, params, batch norm, rng) for every case with each fused activation, the
// inputs drawn from one generator seeded `seed` (the case and activation named in a failure).
template <class F>
void for_each_case(std::uint64_t seed, F f) {
  std::mt19937_64 rng(seed);
  for (const EvalCase& c : kCases)
    for (BnActivation act : {BnActivation::Identity, BnActivation::ReLU, BnActivation::SiLU}) {
      CAPTURE(c.name);
      CAPTURE(static_cast<int>(act));
      const Tensor x = Tensor::randn(c.x, rng, 0.2f, 1.f);
      const Tensor w = Tensor::randn(c.w, rng, 0.f, 0.3f);
      const Tensor b = c.conv_bias ? Tensor::randn({c.w[0]}, rng, 0.f, 0.5f) : Tensor();
      const BatchNormArgs bn = eval_args(c.w[0], act, rng);
      f(x, w, b, params_of(c), bn, rng);
    }
}

}  // namespace

TEST_SUITE("cpu") {

TEST_CASE("conv2d_bn eval epilogue on the CPU: the same bits as the convolution then the batch norm") {
  for_each_case(17, [](const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p,
                       const BatchNormArgs& bn, std::mt19937_64&) {
    const Tensor h = conv2d_forward(x, w, b, p);
    const Tensor want = batch_norm2d_eval(bn.act, h, bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.eps);
    const Conv2dBnOutput fused = conv2d_bn_forward(x, w, b, p, DType::F32, bn, /*want_h=*/false);
    CHECK_FALSE(fused.h.defined());
    CHECK(same_bits(fused.y, want));
    const Conv2dBnOutput kept = conv2d_bn_forward(x, w, b, p, DType::F32, bn, /*want_h=*/true);
    REQUIRE(kept.h.defined());
    CHECK(same_bits(kept.h, h));
    CHECK(same_bits(kept.y, want));
  });
}

TEST_CASE("conv2d_bn eval in a FrozenWeightsScope: the batch norm folded into the weights, within rounding") {
  for_each_case(23, [](const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p,
                       const BatchNormArgs& bn, std::mt19937_64& rng) {
    const auto two_ops = [&](const BatchNormArgs& n) {
      return batch_norm2d_eval(n.act, conv2d_forward(x, w, b, p), n.weight, n.bias, n.running_mean, n.running_var,
                               n.eps);
    };
    const Tensor want = two_ops(bn);
    const cpu::FrozenWeightsScope frozen;
    const Tensor folded = conv2d_bn_forward(x, w, b, p, DType::F32, bn, /*want_h=*/false).y;
    CHECK_FALSE(same_bits(folded, want));  // folded: other roundings (the epilogue path would match)
    CHECK(relative_gap(folded, want) < 2e-6);
    const std::size_t entries = cpu::frozen_weights_entries();
    CHECK(same_bits(conv2d_bn_forward(x, w, b, p, DType::F32, bn, false).y, folded));  // the kept copy
    CHECK(cpu::frozen_weights_entries() == entries);
    {
      const ExecutionScope exact({.fold_batch_norm = false});
      CHECK(same_bits(conv2d_bn_forward(x, w, b, p, DType::F32, bn, false).y, want));
    }
    // the same weights with another batch norm: its own folded copy, not the first one's
    const BatchNormArgs other = eval_args(w.size(0), bn.act, rng);
    CHECK(relative_gap(conv2d_bn_forward(x, w, b, p, DType::F32, other, false).y, two_ops(other)) < 2e-6);
    CHECK(cpu::frozen_weights_entries() > entries);
  });
}

TEST_CASE("conv2d_bn eval epilogue: training still returns h; bad batch-norm arguments name the tensor") {
  std::mt19937_64 rng(3);
  const Tensor x = Tensor::randn({2, 4, 6, 6}, rng, 0.f, 1.f);
  const Tensor w = Tensor::randn({5, 4, 3, 3}, rng, 0.f, 0.3f);
  Conv2dParams p;
  p.pad_h = p.pad_w = 1;
  BatchNormArgs bn = eval_args(5, BnActivation::ReLU, rng);
  bn.training = true;
  BatchNormArgs train = bn;
  train.running_mean = bn.running_mean.clone();
  train.running_var = bn.running_var.clone();
  const Conv2dBnOutput t = conv2d_bn_forward(x, w, Tensor(), p, DType::F32, train, /*want_h=*/false);
  CHECK(t.h.defined());  // training needs h for its backward whatever the caller says
  CHECK(t.saved_mean.defined());

  BatchNormArgs wrong = eval_args(4, BnActivation::ReLU, rng);  // 4 channels for a 5-channel output
  CHECK_THROWS_WITH(conv2d_bn_forward(x, w, Tensor(), p, DType::F32, wrong, false),
                    doctest::Contains("batch_norm2d (evaluation): weight, bias and running statistics must be "
                                      "contiguous f32 (5) CPU tensors"));
}

}  // TEST_SUITE
