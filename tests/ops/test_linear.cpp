// linear in the op registry: y = x w^T + b and its dx, dw, db; the CPU (blocked sgemm)
// against the double reference and finite differences, each CUDA device against the CPU.
#include "kernels/linear.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

OpCase linear_case(std::int64_t N, std::int64_t in, std::int64_t out, bool bias) {
  OpCase c;
  c.inputs = {{{N, in}, normal(), true}, {{out, in}, uniform(-0.3f, 0.3f), true}};
  if (bias) c.inputs.push_back({{out}, normal(), true});
  c.forward = [bias](Tensors& t) { return Tensors{linear(t[0], t[1], bias ? t[2] : Tensor())}; };
  c.backward = [bias](const Tensors& t, const Tensors&, const Tensors& dout) {
    LinearGrads g = linear_backward(t[0], t[1], dout[0], bias);
    Tensors r{g.dx, g.dw};
    if (bias) r.push_back(g.db);
    return r;
  };
  c.reference = [=](const Doubles& t) {
    std::vector<double> y(static_cast<std::size_t>(N * out));
    cpu::linear_forward_reference<double>(N, in, out, t[0].data(), t[1].data(), bias ? t[2].data() : nullptr,
                                          y.data());
    return Doubles{y};
  };
  c.forward_tol = {1e-5, 1e-4};
  c.device_tol = {1e-5, 1e-4};
  c.device_grad_tol = {1e-4, 1e-4};
  return c;
}

}  // namespace

CXR_OP_CASE("linear 14-way head, 4x96 -> 14 bias") { return linear_case(4, 96, 14, true); }
CXR_OP_CASE("linear 56-way head, 4x96 -> 56 bias") { return linear_case(4, 96, 56, true); }
CXR_OP_CASE("linear odd 3x37 -> 19 no bias") { return linear_case(3, 37, 19, false); }
CXR_OP_CASE("linear multi-tile 70x33 -> 65 bias") { return linear_case(70, 33, 65, true); }

TEST_CASE("linear reference: float and double backward agree; shape errors are clear" * doctest::test_suite("cpu")) {
  const std::int64_t N = 3, in = 5, out = 4;
  std::vector<float> x(N * in), w(out * in), dy(N * out), dx(N * in), dw(out * in), db(out);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = 0.1f * float(i) - 0.5f;
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = 0.05f * float(i % 7) - 0.1f;
  for (std::size_t i = 0; i < dy.size(); ++i) dy[i] = 0.2f * float(i % 5) - 0.3f;
  cpu::linear_backward_reference<float>(N, in, out, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
  std::vector<double> xd(x.begin(), x.end()), wd(w.begin(), w.end()), dyd(dy.begin(), dy.end());
  std::vector<double> dxd(N * in), dwd(out * in), dbd(out);
  cpu::linear_backward_reference<double>(N, in, out, xd.data(), wd.data(), dyd.data(), dxd.data(), dwd.data(),
                                         dbd.data());
  expect_close("dx", dx, dxd, {1e-6, 1e-5});
  expect_close("dw", dw, dwd, {1e-6, 1e-5});
  expect_close("db", db, dbd, {1e-6, 1e-5});
  CHECK_THROWS_WITH_AS(linear(Tensor::zeros({2, 5}), Tensor::zeros({4, 6}), Tensor()),
                       doctest::Contains("must be (out, in) with in = 5"), cxr::Error);
  CHECK_THROWS_WITH_AS(linear(Tensor::zeros({2, 5}), Tensor::zeros({4, 5}), Tensor::zeros({3})),
                       doctest::Contains("b"), cxr::Error);
}
