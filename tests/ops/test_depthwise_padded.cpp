// Stride-1 depthwise convolutions on the CPU go through the padded-plane kernels
// (kernels/cpu/depthwise_padded.h): forward, backward-data (the forward of dy with the flipped
// filter) and backward-weight against the float reference, on rows shorter than a vector, of
// one and of several vectors with a partial last one, 3x3 / 5x5 / 7x7 filters, dilation, unequal
// padding and no padding (P < H); and the same bits at 1 and 2 threads.
#include <random>
#include <vector>

#include "kernels/conv2d.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

struct Case {
  Shape x;
  int R, S, pad_h, pad_w, dilation;
};

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {{2, 3, 14, 14}, 7, 7, 3, 3, 1},   // ConvNeXt's 7x7 on 14 x 14: two vectors a row, the second partial
      {{2, 4, 7, 7}, 7, 7, 3, 3, 1},     // rows shorter than a vector
      {{1, 2, 20, 33}, 3, 3, 1, 1, 1},   // five vectors a row
      {{2, 3, 9, 11}, 5, 5, 2, 2, 1},    // EfficientNet's 5x5
      {{1, 3, 12, 13}, 3, 3, 2, 2, 2},   // dilation 2
      {{2, 2, 10, 9}, 3, 5, 1, 2, 1},    // 3 x 5, unequal padding
      {{1, 3, 9, 12}, 3, 3, 0, 0, 1},    // no padding: P = H - 2, Q = W - 2
      {{1, 2, 11, 10}, 5, 3, 1, 0, 1},   // padding in one dimension only
  };
  return c;
}

struct Results {
  Tensor y, dx, dw;
};

Results run(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& dy, const Conv2dParams& p) {
  Results r;
  r.y = conv2d_forward(x, w, b, p);
  r.dx = conv2d_backward_data(dy, w, x.shape(), p);
  r.dw = conv2d_backward_weight(dy, x, w.shape(), p);
  return r;
}

}  // namespace

TEST_CASE("depthwise stride 1 (padded planes) equals the reference, at 1 and 2 threads bit for bit" *
          doctest::test_suite("cpu")) {
  std::mt19937_64 rng(31);
  for (const Case& c : cases()) {
    CAPTURE(c.x);
    CAPTURE(c.R);
    CAPTURE(c.S);
    const int C = static_cast<int>(c.x[1]);
    Conv2dParams p;
    p.pad_h = c.pad_h, p.pad_w = c.pad_w, p.groups = C, p.dilation_h = p.dilation_w = c.dilation;
    const Shape ws{C, 1, c.R, c.S};
    const Conv2dDims d = conv2d_dims(c.x, ws, p);
    REQUIRE(d.depthwise());
    Tensor x = Tensor::randn(c.x, rng), w = Tensor::randn(ws, rng), b = Tensor::randn({C}, rng);
    Tensor dy = Tensor::randn({d.N, d.K, d.P, d.Q}, rng);
    Results one, two;
    {
      const ThreadCountScope t(1);
      one = run(x, w, b, dy, p);
    }
    {
      const ThreadCountScope t(2);
      two = run(x, w, b, dy, p);
    }
    CHECK(to_doubles(one.y) == to_doubles(two.y));
    CHECK(to_doubles(one.dx) == to_doubles(two.dx));
    CHECK(to_doubles(one.dw) == to_doubles(two.dw));
    Tensor y_ref = Tensor::empty(one.y.shape()), dx_ref = Tensor::empty(c.x), dw_ref = Tensor::empty(ws);
    cpu::conv2d_forward_reference<float>(d, x.f32(), w.f32(), b.f32(), y_ref.f32());
    cpu::conv2d_backward_data_reference<float>(d, dy.f32(), w.f32(), dx_ref.f32());
    cpu::conv2d_backward_weight_reference<float>(d, dy.f32(), x.f32(), dw_ref.f32());
    expect_close("y", one.y, y_ref, {1e-5, 1e-4});
    expect_close("dx", one.dx, dx_ref, {1e-5, 1e-4});
    expect_close("dw", one.dw, dw_ref, {1e-4, 1e-4});
  }
}
