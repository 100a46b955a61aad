// conv2d in the op registry: the CPU fast path (im2col + blocked GEMM, 1x1 GEMM, depthwise
// loops) against the double-precision naive reference, its dx, dw, db against finite
// differences of that reference; each CUDA device (implicit GEMM, batched SGEMM for 1x1,
// depthwise kernels, split-K weight gradient) against the CPU. The cases at the end also run at
// TF32 (tensor cores, on the device) and with bf16 operands (autocast, CPU and device), each with
// its bound (tests/op_check.h).
#include "kernels/conv2d.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

struct ConvCase {
  Shape x, w;
  Conv2dParams p;
  bool bias;
};

OpCase conv_case(ConvCase cc) {
  const Conv2dDims d = conv2d_dims(cc.x, cc.w, cc.p);
  OpCase c;
  c.inputs = {{cc.x, normal(), true, true}, {cc.w, uniform(-0.5f, 0.5f), true, true}};
  if (cc.bias) c.inputs.push_back({{cc.w[0]}, normal(), true});
  // Under autocast (the BF16 precision) x, w and dy go to the products as bf16, as
  // layers/conv2d.cpp hands them over; the bias stays f32 and its gradient, a plain sum, takes
  // the f32 dy.
  c.forward = [cc](Tensors& in) {
    return Tensors{conv2d_forward(autocast_operand(in[0]), autocast_operand(in[1]), cc.bias ? in[2] : Tensor(), cc.p)};
  };
  c.backward = [cc](const Tensors& in, const Tensors&, const Tensors& dout) {
    const Tensor x = autocast_operand(in[0]), w = autocast_operand(in[1]), dy = autocast_operand(dout[0]);
    Tensors out{conv2d_backward_data(dy, w, in[0].shape(), cc.p), conv2d_backward_weight(dy, x, in[1].shape(), cc.p)};
    if (cc.bias) out.push_back(conv2d_backward_bias(dout[0]));
    return out;
  };
  c.reference = [d, cc](const Doubles& in) {
    std::vector<double> y(static_cast<std::size_t>(d.N) * d.K * d.P * d.Q);
    cpu::conv2d_forward_reference<double>(d, in[0].data(), in[1].data(), cc.bias ? in[2].data() : nullptr, y.data());
    return Doubles{y};
  };
  c.reference_backward = [d, cc](const Doubles& in, const Doubles& dout) {
    Doubles g{std::vector<double>(in[0].size()), std::vector<double>(in[1].size())};
    cpu::conv2d_backward_data_reference<double>(d, dout[0].data(), in[1].data(), g[0].data());
    cpu::conv2d_backward_weight_reference<double>(d, dout[0].data(), in[0].data(), g[1].data());
    if (cc.bias) {
      g.emplace_back(d.K);
      cpu::conv2d_backward_bias_reference<double>(d, dout[0].data(), g[2].data());
    }
    return g;
  };
  c.forward_tol = {1e-4, 1e-4};
  c.device_tol = {1e-4, 1e-4};
  c.device_grad_tol = {2e-4, 1e-3};
  c.fd_samples = 24;
  return c;
}

Conv2dParams params(int stride, int pad, int groups = 1, int dilation = 1) {
  Conv2dParams p;
  p.stride_h = p.stride_w = stride;
  p.pad_h = p.pad_w = pad;
  p.groups = groups;
  p.dilation_h = p.dilation_w = dilation;
  return p;
}

// The bounds at the lower precisions, on relative L2 errors (tests/op_check.h).
// TF32 keeps 10 mantissa bits, so the error lands near 3e-4 (METHOD: "tf32 near 3e-4"): within
// 2e-3 of the CPU; the fp32 device result within 1e-5 of it; and the TF32 result more than 1e-5
// from the fp32 one, which proves the tensor-core kernel ran, not the FMA one (through
// cuda_emu/wmma.h on the emulator).
const PrecisionBound kTf32{OpPrecision::TF32, 2e-3, 1e-5, 1e-5};
// bf16 operands with f32 accumulation land within f32 summation error (1e-5) of the double sums
// over the rounded operands, and the fp32 result of the unrounded operands ~1e-3 away (more
// than 3e-4), which proves the operands really were rounded. On the device the BF16
// tensor-core kernels run (cuda_emu/wmma.h on the emulator).
const PrecisionBound kBf16{OpPrecision::BF16, 1e-5, 3e-4};

OpCase at(OpCase c, std::vector<PrecisionBound> precisions) {
  c.precisions = std::move(precisions);
  return c;
}

}  // namespace

CXR_OP_CASE("conv2d 3x3 s1 p1 bias, 2x4x7x9 -> 6") { return conv_case({{2, 4, 7, 9}, {6, 4, 3, 3}, params(1, 1), true}); }
CXR_OP_CASE("conv2d 3x3 s2 p1, 2x5x9x8 -> 8") { return conv_case({{2, 5, 9, 8}, {8, 5, 3, 3}, params(2, 1), false}); }
CXR_OP_CASE("conv2d 7x7 s2 p3 stem, 2x3x12x11 -> 8") {
  return conv_case({{2, 3, 12, 11}, {8, 3, 7, 7}, params(2, 3), false});
}
CXR_OP_CASE("conv2d 1x1 s1 bias, 2x16x12x12 -> 12 (GEMM path, split-K dw)") {
  return conv_case({{2, 16, 12, 12}, {12, 16, 1, 1}, params(1, 0), true});
}
CXR_OP_CASE("conv2d 1x1 s2, 2x8x7x9 -> 10") { return conv_case({{2, 8, 7, 9}, {10, 8, 1, 1}, params(2, 0), false}); }
CXR_OP_CASE("conv2d 3x3 p1 groups=2 bias, 2x6x6x7 -> 8") {
  return conv_case({{2, 6, 6, 7}, {8, 3, 3, 3}, params(1, 1, 2), true});
}
CXR_OP_CASE("conv2d depthwise 3x3 s1 p1 bias, 2x6x7x8") {
  return conv_case({{2, 6, 7, 8}, {6, 1, 3, 3}, params(1, 1, 6), true});
}
CXR_OP_CASE("conv2d depthwise 5x5 s2 p2, 2x5x9x10") {
  return conv_case({{2, 5, 9, 10}, {5, 1, 5, 5}, params(2, 2, 5), false});
}
CXR_OP_CASE("conv2d depthwise multiplier 2 (groups=C, K=2C), 1x4x6x6") {
  return conv_case({{1, 4, 6, 6}, {8, 1, 3, 3}, params(1, 1, 4), true});
}
CXR_OP_CASE("conv2d 3x3 p2 dilation 2, 1x3x9x9 -> 4") {
  return conv_case({{1, 3, 9, 9}, {4, 3, 3, 3}, params(1, 2, 1, 2), false});
}
CXR_OP_CASE("conv2d 3x3 p1 multi-tile, 2x24x6x7 -> 70") {  // M 70, N 84, Kdim 216: partial tiles
  OpCase c = conv_case({{2, 24, 6, 7}, {70, 24, 3, 3}, params(1, 1), true});
  c.fd_samples = 12;
  return c;
}
CXR_OP_CASE("conv2d 3x1 s(2,1) p(1,0) rectangular, 2x4x8x5 -> 5") {
  Conv2dParams p;
  p.stride_h = 2;
  p.pad_h = 1;
  return conv_case({{2, 4, 8, 5}, {5, 4, 3, 1}, p, true});
}

// Also at TF32 and bf16: the shapes the TF32 and bf16 tests checked (tile edges, a K that is
// not a tile multiple, the 7x7 stem, 1x1 GEMM paths with and without stride, groups, dilation,
// depthwise, the split-K weight gradient of a long reduction).
CXR_OP_CASE("conv2d 3x3 p1 bias, 2x12x9x8 -> 20") {
  return at(conv_case({{2, 12, 9, 8}, {20, 12, 3, 3}, params(1, 1), true}), {kTf32, kBf16});
}
CXR_OP_CASE("conv2d 3x3 s2 p1 bias, 2x8x11x10 -> 70 (K not a tile multiple)") {
  return at(conv_case({{2, 8, 11, 10}, {70, 8, 3, 3}, params(2, 1), true}), {kTf32, kBf16});
}
CXR_OP_CASE("conv2d 7x7 s2 p3 stem bias, 1x3x16x14 -> 8") {
  return at(conv_case({{1, 3, 16, 14}, {8, 3, 7, 7}, params(2, 3), true}), {kTf32, kBf16});
}
CXR_OP_CASE("conv2d 3x3 p1 groups=2 bias, 2x8x6x7 -> 12") {
  return at(conv_case({{2, 8, 6, 7}, {12, 4, 3, 3}, params(1, 1, 2), true}), {kTf32});
}
CXR_OP_CASE("conv2d 1x1 bias, 2x40x6x6 -> 24 (GEMM path)") {
  return at(conv_case({{2, 40, 6, 6}, {24, 40, 1, 1}, params(1, 0), true}), {kTf32});
}
CXR_OP_CASE("conv2d 1x1 s2 bias, 2x16x7x9 -> 10") {
  return at(conv_case({{2, 16, 7, 9}, {10, 16, 1, 1}, params(2, 0), true}), {kTf32});
}
CXR_OP_CASE("conv2d 3x3 p1 bias, 8x16x16x16 -> 16 (long reduction: split-K weight gradient)") {
  return at(conv_case({{8, 16, 16, 16}, {16, 16, 3, 3}, params(1, 1), true}), {kTf32});
}
CXR_OP_CASE("conv2d 1x1, 3x24x5x6 -> 40") {
  return at(conv_case({{3, 24, 5, 6}, {40, 24, 1, 1}, params(1, 0), false}), {kBf16});
}
CXR_OP_CASE("conv2d 1x1 s2 downsample, 2x16x9x9 -> 24") {
  return at(conv_case({{2, 16, 9, 9}, {24, 16, 1, 1}, params(2, 0), false}), {kBf16});
}
CXR_OP_CASE("conv2d 3x3 p2 groups=2 dilation 2, 2x8x9x9 -> 12") {
  return at(conv_case({{2, 8, 9, 9}, {12, 4, 3, 3}, params(1, 2, 2, 2), false}), {kBf16});
}
CXR_OP_CASE("conv2d depthwise 3x3 p1, 2x16x7x7") {
  return at(conv_case({{2, 16, 7, 7}, {16, 1, 3, 3}, params(1, 1, 16), false}), {kBf16});
}
CXR_OP_CASE("conv2d 3x3 p1, 8x4x24x24 -> 8 (split-K weight gradient)") {
  return at(conv_case({{8, 4, 24, 24}, {8, 4, 3, 3}, params(1, 1), false}), {kBf16});
}

TEST_CASE("conv2d output shape and clear errors for mismatched channels and groups" * doctest::test_suite("cpu")) {
  CHECK(conv2d_output_shape({2, 3, 224, 224}, {64, 3, 7, 7}, params(2, 3)) == Shape{2, 64, 112, 112});
  CHECK(conv2d_output_shape({1, 96, 56, 57}, {96, 1, 3, 3}, params(2, 1, 96)) == Shape{1, 96, 28, 29});
  CHECK_THROWS_WITH_AS(conv2d_output_shape({2, 4, 8, 8}, {6, 3, 3, 3}, params(1, 1)),
                       doctest::Contains("C/groups = 4/1 = 4 input channels per filter, found 3"), cxr::Error);
  CHECK_THROWS_WITH_AS(conv2d_output_shape({2, 6, 8, 8}, {6, 2, 3, 3}, params(1, 1, 4)),
                       doctest::Contains("not divisible by groups"), cxr::Error);
  CHECK_THROWS_WITH_AS(conv2d_output_shape({2, 4, 8, 8}, {5, 2, 3, 3}, params(1, 1, 2)),
                       doctest::Contains("output channels (5"), cxr::Error);
  CHECK_THROWS_WITH_AS(conv2d_output_shape({2, 4, 2, 2}, {6, 4, 5, 5}, params(1, 0)),
                       doctest::Contains("larger than the padded input"), cxr::Error);
  CHECK_THROWS_WITH_AS(conv2d_output_shape({2, 4, 8}, {6, 4, 3, 3}, params(1, 1)),
                       doctest::Contains("x must be (N, C, H, W)"), cxr::Error);
  Tensor x = Tensor::zeros({1, 2, 5, 5}), w = Tensor::zeros({3, 2, 3, 3});
  CHECK_THROWS_WITH_AS(conv2d_forward(x, w, Tensor::zeros({4}), params(1, 1)), doctest::Contains("bias"),
                       cxr::Error);
  CHECK_THROWS_WITH_AS(conv2d_backward_data(Tensor::zeros({1, 3, 4, 4}), w, x.shape(), params(1, 1)),
                       doctest::Contains("dy"), cxr::Error);
}

TEST_CASE("conv2d CPU fast path equals the reference on larger images with several threads" *
          doctest::test_suite("cpu")) {
  // Batch 4 with 2 threads splits the panel GEMMs between threads (ctest sets OMP_NUM_THREADS=1, so
  // the thread count is forced here and restored after); the naive float reference is the
  // yardstick.
  const ThreadCountScope threads(2);
  const Shape xs{4, 16, 20, 18}, ws{32, 16, 3, 3};
  const Conv2dParams p = params(1, 1);
  const Conv2dDims d = conv2d_dims(xs, ws, p);
  std::mt19937_64 rng(5);
  Tensor x = Tensor::randn(xs, rng), w = Tensor::randn(ws, rng), b = Tensor::randn({32}, rng);
  Tensor y = conv2d_forward(x, w, b, p);
  Tensor dy = Tensor::randn(y.shape(), rng);
  Conv2dGrads g = conv2d_backward(x, w, dy, p, true);
  Tensor y_ref = Tensor::empty(y.shape()), dx_ref = Tensor::empty(xs), dw_ref = Tensor::empty(ws),
         db_ref = Tensor::empty({32});
  cpu::conv2d_forward_reference<float>(d, x.f32(), w.f32(), b.f32(), y_ref.f32());
  cpu::conv2d_backward_data_reference<float>(d, dy.f32(), w.f32(), dx_ref.f32());
  cpu::conv2d_backward_weight_reference<float>(d, dy.f32(), x.f32(), dw_ref.f32());
  cpu::conv2d_backward_bias_reference<float>(d, dy.f32(), db_ref.f32());
  expect_close("y", y, y_ref, {1e-3, 1e-4});
  expect_close("dx", g.dx, dx_ref, {1e-3, 1e-4});
  expect_close("dw", g.dw, dw_ref, {5e-3, 1e-4});
  expect_close("db", g.db, db_ref, {5e-3, 1e-4});
}
