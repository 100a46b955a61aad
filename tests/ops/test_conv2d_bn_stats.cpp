// conv2d_forward_bn_stats (kernels/conv2d_bn.h): the convolution with the batch-norm
// statistics of its output computed in the forward's epilogue.
//  - op cases (tests/op_check.h): y, mean, var on the CPU against a double-precision reference
//    (the naive convolution, then the per-channel double mean / biased variance), on the device
//    against the CPU (FMA math);
//  - on the device, for FMA, TF32 (allow_tf32) and BF16 (bf16 operands) math: y bit-equal to
//    conv2d_forward's (the same kernel), mean / var against the CPU statistics of that y, and
//    two runs bit-identical: multi-tile (K > 64, N P Q > 64 with a partial last tile), strided,
//    grouped, 1x1 (the batched-SGEMM shape, which takes the implicit GEMM with statistics) and
//    depthwise (the separate statistics pass);
//  - a bf16 y (mixed precision's activations): on the device the f32 y rounded once, bit for
//    bit, and the statistics of the rounded values; on the CPU likewise;
//  - argument checks.
#include <random>
#include <string>

#include "kernels/cast.h"
#include "kernels/conv2d.h"
#include "kernels/conv2d_bn.h"
#include "kernels/execution.h"
#include "tensor/backend.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

Conv2dParams params(int stride, int pad, int groups = 1) {
  Conv2dParams p;
  p.stride_h = p.stride_w = stride;
  p.pad_h = p.pad_w = pad;
  p.groups = groups;
  return p;
}

struct StatsCase {
  Shape x, w;
  Conv2dParams p;
  bool bias;
};

OpCase stats_case(StatsCase sc) {
  OpCase c;
  c.inputs = {{sc.x, normal(0.3f, 1.f), false}, {sc.w, uniform(-0.5f, 0.5f), false}};
  if (sc.bias) c.inputs.push_back({{sc.w[0]}, uniform(-1.f, 1.f), false});
  c.forward = [sc](Tensors& in) {
    Conv2dBnStats r = conv2d_forward_bn_stats(in[0], in[1], sc.bias ? in[2] : Tensor(), sc.p);
    return Tensors{r.y, r.mean, r.var};
  };
  const Conv2dDims d = conv2d_dims(sc.x, sc.w, sc.p);
  c.reference = [d, sc](const Doubles& in) {
    std::vector<double> y(static_cast<std::size_t>(d.N) * d.K * d.P * d.Q), mean(d.K), var(d.K);
    cpu::conv2d_forward_reference<double>(d, in[0].data(), in[1].data(), sc.bias ? in[2].data() : nullptr, y.data());
    cpu::channel_mean_var<double>(y.data(), mean.data(), var.data(), d.N, d.K, static_cast<std::int64_t>(d.P) * d.Q);
    return Doubles{y, mean, var};
  };
  c.forward_tol = {1e-4, 1e-4};
  c.device_tol = {1e-4, 1e-4};
  return c;
}

// Device checks of one shape under the current math mode (bf16: bf16 operands; y_dtype BF16:
// a bf16 y).
void check_on_device(const std::string& name, const StatsCase& sc, bool bf16, DType y_dtype = DType::F32) {
  CAPTURE(name);
  std::mt19937_64 rng(1234);
  Tensor x = Tensor::randn(sc.x, rng, 0.3f, 1.f).to(Device::CUDA);
  Tensor w = Tensor::uniform(sc.w, rng, -0.5f, 0.5f).to(Device::CUDA);
  const Tensor b = sc.bias ? Tensor::uniform({sc.w[0]}, rng, -1.f, 1.f).to(Device::CUDA) : Tensor();
  if (bf16) {
    x = to_bf16(x);
    w = to_bf16(w);
  }
  const Conv2dBnStats r = conv2d_forward_bn_stats(x, w, b, sc.p, y_dtype);
  CHECK(r.y.dtype() == y_dtype);
  const Tensor y_plain = conv2d_forward(x, w, b, sc.p, y_dtype);
  const std::vector<float> y = r.y.cpu().to_vector();
  const Conv2dDims d = conv2d_dims(sc.x, sc.w, sc.p);
  // y as the plain convolution computes it. The 1x1 shape takes the implicit GEMM instead of
  // the batched SGEMM: the same tile core and reduction order, so equal too.
  CHECK_MESSAGE(y == y_plain.cpu().to_vector(), "y differs from conv2d_forward");
  // A bf16 y is the f32 y of the same kernel, rounded once.
  if (y_dtype == DType::BF16)
    CHECK_MESSAGE(y == to_f32(to_bf16(conv2d_forward(x, w, b, sc.p))).cpu().to_vector(),
                  "the bf16 y is not the f32 y rounded");
  // Statistics against the double statistics of the same y.
  std::vector<double> yd(y.begin(), y.end()), mean(d.K), var(d.K);
  cpu::channel_mean_var<double>(yd.data(), mean.data(), var.data(), d.N, d.K, static_cast<std::int64_t>(d.P) * d.Q);
  expect_close("mean " + name, r.mean.cpu().to_vector(), mean, {1e-5, 1e-4});
  expect_close("var " + name, r.var.cpu().to_vector(), var, {1e-5, 1e-4});
  // Deterministic: a second run gives the same bits.
  const Conv2dBnStats again = conv2d_forward_bn_stats(x, w, b, sc.p, y_dtype);
  CHECK(again.y.cpu().to_vector() == y);
  CHECK(again.mean.cpu().to_vector() == r.mean.cpu().to_vector());
  CHECK(again.var.cpu().to_vector() == r.var.cpu().to_vector());
}

const StatsCase kDeviceCases[] = {
    {{2, 5, 9, 8}, {8, 5, 3, 3}, params(1, 1), true},        // one tile: N P Q = 144 -> 3 column tiles
    {{3, 8, 7, 7}, {70, 8, 3, 3}, params(1, 1), false},      // K = 70: two row tiles; 147 columns, partial tile
    {{2, 6, 9, 11}, {12, 6, 3, 3}, params(2, 1), true},      // strided
    {{2, 8, 6, 6}, {12, 4, 3, 3}, params(1, 1, 2), false},   // 2 groups
    {{3, 16, 5, 7}, {72, 16, 1, 1}, params(1, 0), false},    // 1x1 stride 1: the SGEMM shape
    {{2, 12, 8, 8}, {12, 1, 3, 3}, params(1, 1, 12), true},  // depthwise: separate statistics pass
};
const char* const kDeviceNames[] = {"3x3 s1 bias", "K=70 partial tile", "3x3 s2", "groups 2", "1x1", "depthwise"};

void check_all_on_device(const char* math, bool bf16, DType y_dtype = DType::F32) {
  for (std::size_t i = 0; i < std::size(kDeviceCases); ++i)
    check_on_device(std::string(kDeviceNames[i]) + " " + math, kDeviceCases[i], bf16, y_dtype);
}

}  // namespace

CXR_OP_CASE("conv2d_bn_stats 3x3 s1 p1 bias, 2x5x9x8 -> 8") {
  return stats_case({{2, 5, 9, 8}, {8, 5, 3, 3}, params(1, 1), true});
}
CXR_OP_CASE("conv2d_bn_stats 3x3 s1 p1, 3x8x7x7 -> 70 (two row tiles, partial column tile)") {
  return stats_case({{3, 8, 7, 7}, {70, 8, 3, 3}, params(1, 1), false});
}
CXR_OP_CASE("conv2d_bn_stats 3x3 s2 p1, 2x6x9x11 -> 12") {
  return stats_case({{2, 6, 9, 11}, {12, 6, 3, 3}, params(2, 1), true});
}
CXR_OP_CASE("conv2d_bn_stats 3x3 groups 2, 2x8x6x6 -> 12") {
  return stats_case({{2, 8, 6, 6}, {12, 4, 3, 3}, params(1, 1, 2), false});
}
CXR_OP_CASE("conv2d_bn_stats 1x1, 3x16x5x7 -> 72") {
  return stats_case({{3, 16, 5, 7}, {72, 16, 1, 1}, params(1, 0), false});
}
CXR_OP_CASE("conv2d_bn_stats depthwise 3x3, 2x12x8x8") {
  return stats_case({{2, 12, 8, 8}, {12, 1, 3, 3}, params(1, 1, 12), true});
}

TEST_CASE("conv2d_bn_stats on the device: y equals conv2d_forward, statistics, determinism (FMA) [gpu]" *
          doctest::test_suite(gpu_suite()) * doctest::skip(skip_gpu_cases())) {
  ExecutionScope fma({.allow_tf32 = false});
  check_all_on_device("fma", false);
}

TEST_CASE("conv2d_bn_stats on the device: y equals conv2d_forward, statistics, determinism (TF32) [gpu]" *
          doctest::test_suite(gpu_suite()) * doctest::skip(skip_gpu_cases())) {
  ExecutionScope tf32({.allow_tf32 = true});
  check_all_on_device("tf32", false);
}

TEST_CASE("conv2d_bn_stats on the device: y equals conv2d_forward, statistics, determinism (BF16) [gpu]" *
          doctest::test_suite(gpu_suite()) * doctest::skip(skip_gpu_cases())) {
  check_all_on_device("bf16", true);
}

TEST_CASE("conv2d_bn_stats on the device: a bf16 y, rounded once; statistics of the rounded values [gpu]" *
          doctest::test_suite(gpu_suite()) * doctest::skip(skip_gpu_cases())) {
  check_all_on_device("bf16 y", true, DType::BF16);
}

TEST_CASE("conv2d_bn_stats on the CPU: a bf16 y is the f32 y rounded; statistics of the rounded values" *
          doctest::test_suite("cpu")) {
  std::mt19937_64 rng(9);
  // A mean of 3 with unit spread: rounding to bf16 (8 bits) moves the variance measurably.
  const Tensor x = to_bf16(Tensor::randn({2, 4, 6, 6}, rng, 3.f, 1.f));
  const Tensor w = to_bf16(Tensor::uniform({5, 4, 3, 3}, rng, -0.5f, 0.5f));
  const Conv2dParams p = params(1, 1);
  const Conv2dBnStats f32 = conv2d_forward_bn_stats(x, w, Tensor(), p);
  const Conv2dBnStats r = conv2d_forward_bn_stats(x, w, Tensor(), p, DType::BF16);
  REQUIRE(r.y.dtype() == DType::BF16);
  CHECK(r.y.to_vector() == to_f32(to_bf16(f32.y)).to_vector());
  const std::vector<float> y = r.y.to_vector();
  std::vector<double> yd(y.begin(), y.end()), mean(5), var(5);
  cpu::channel_mean_var<double>(yd.data(), mean.data(), var.data(), 2, 5, 36);
  expect_close("mean", r.mean.to_vector(), mean, {1e-6, 1e-5});
  expect_close("var", r.var.to_vector(), var, {1e-6, 1e-5});
  CHECK(r.var.to_vector() != f32.var.to_vector());  // the rounded values' statistics, not the f32 ones
}

TEST_CASE("conv2d_bn_stats: a large mean does not cancel the variance [gpu]" * doctest::test_suite(gpu_suite()) *
          doctest::skip(skip_gpu_cases())) {
  // y = x + 1000 (1x1 identity filter, bias 1000): var must stay x's variance.
  std::mt19937_64 rng(5);
  const Tensor x = Tensor::randn({4, 3, 16, 16}, rng, 0.f, 1.f);
  Tensor w = Tensor::zeros({3, 3, 1, 1});
  for (int k = 0; k < 3; ++k) w.f32()[k * 3 + k] = 1.f;
  const Tensor b = Tensor::full({3}, 1000.f);
  const Conv2dBnStats r =
      conv2d_forward_bn_stats(x.to(Device::CUDA), w.to(Device::CUDA), b.to(Device::CUDA), params(1, 0));
  std::vector<double> mean(3), var(3);
  const std::vector<float> y = r.y.cpu().to_vector();
  std::vector<double> yd(y.begin(), y.end());
  cpu::channel_mean_var<double>(yd.data(), mean.data(), var.data(), 4, 3, 256);
  expect_close("var", r.var.cpu().to_vector(), var, {1e-4, 1e-3});
  expect_close("mean", r.mean.cpu().to_vector(), mean, {1e-3, 1e-6});
}

TEST_CASE("conv2d_bn_stats rejects bad arguments with clear messages" * doctest::test_suite("cpu")) {
  const Tensor x = Tensor::zeros({2, 3, 4, 4});
  CHECK_THROWS_WITH_AS(conv2d_forward_bn_stats(x, Tensor::zeros({4, 2, 3, 3}), Tensor(), params(1, 1)),
                       doctest::Contains("conv2d"), cxr::Error);
  CHECK_THROWS_WITH_AS(conv2d_forward_bn_stats(x, Tensor::zeros({4, 3, 3, 3}), Tensor::zeros({5}), params(1, 1)),
                       doctest::Contains("bias"), cxr::Error);
  CHECK_THROWS_WITH_AS(conv2d_forward_bn_stats(x, Tensor::zeros({4, 3, 3, 3}), Tensor(), params(1, 1), DType::BF16),
                       doctest::Contains("bf16 operands"), cxr::Error);
}
