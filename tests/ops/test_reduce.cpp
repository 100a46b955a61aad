// Reductions in the op registry: sum / mean of a whole tensor (with their broadcast
// backward), sum over one dimension, and the global gradient norm with clipping.
#include <cmath>

#include "kernels/reduce.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

OpCase sum_case(Shape shape, bool is_mean) {
  OpCase c;
  c.inputs = {{shape, normal(0.3f, 1.f)}};
  c.forward = [is_mean](Tensors& in) { return Tensors{is_mean ? mean(in[0]) : sum(in[0])}; };
  c.backward = [is_mean](const Tensors& in, const Tensors&, const Tensors& dout) {
    return Tensors{is_mean ? mean_backward(dout[0], in[0].shape()) : sum_backward(dout[0], in[0].shape())};
  };
  c.reference = [is_mean](const Doubles& in) {
    double s = 0.0;
    for (double v : in[0]) s += v;
    if (is_mean) s /= static_cast<double>(in[0].size());
    return Doubles{{s}};
  };
  const double n = static_cast<double>(shape_numel(shape));
  // f32 tree sums on the device: error ~ sqrt(n) eps |x|.
  c.device_tol = {is_mean ? 1e-6 : 1e-6 * std::sqrt(n) + 1e-6, 1e-5};
  c.device_grad_tol = {1e-7, 1e-6};
  c.grad_tol = {1e-7, 1e-4};
  return c;
}

OpCase sum_dim_case(Shape shape, int dim, bool keepdim) {
  OpCase c;
  c.inputs = {{shape, normal()}};
  c.forward = [dim, keepdim](Tensors& in) { return Tensors{sum_dim(in[0], dim, keepdim)}; };
  c.backward = [dim](const Tensors& in, const Tensors&, const Tensors& dout) {
    return Tensors{sum_dim_backward(dout[0], in[0].shape(), dim)};
  };
  c.reference = [shape, dim](const Doubles& in) {
    const int d = dim < 0 ? dim + static_cast<int>(shape.size()) : dim;
    std::int64_t outer = 1, inner = 1;
    for (int i = 0; i < d; ++i) outer *= shape[i];
    for (std::size_t i = d + 1; i < shape.size(); ++i) inner *= shape[i];
    std::vector<double> y(outer * inner);
    cpu::sum_dim<double>(in[0].data(), y.data(), outer, shape[d], inner);
    return Doubles{y};
  };
  c.device_tol = {2e-5, 1e-5};
  c.device_grad_tol = {1e-7, 1e-6};
  return c;
}

std::vector<Input> three_tensors() {
  // Odd sizes; the third spans two multi-tensor chunks (16384 elements) with a ragged tail.
  return {{{37}, normal()}, {{5, 129}, normal(0.f, 0.5f)}, {{20001}, normal(0.f, 0.1f)}};
}

double norm_of(const Doubles& in) {
  double s = 0.0;
  for (const auto& t : in)
    for (double v : t) s += v * v;
  return std::sqrt(s);
}

OpCase global_norm_case() {
  OpCase c;
  c.inputs = three_tensors();
  for (Input& i : c.inputs) i.differentiable = false;
  c.forward = [](Tensors& in) { return Tensors{global_norm(in)}; };
  c.reference = [](const Doubles& in) { return Doubles{{norm_of(in)}}; };
  c.forward_tol = {1e-6, 1e-6};
  c.device_tol = {1e-5, 1e-5};
  return c;
}

// Outputs: norm, clip coefficient, the three clipped tensors.
OpCase clip_case(float max_norm) {
  OpCase c;
  c.inputs = three_tensors();
  for (Input& i : c.inputs) i.differentiable = false;
  c.forward = [max_norm](Tensors& in) {
    GradNorm g = grad_norm(in, max_norm);
    scale_(in, g.clip_coef);
    return Tensors{g.norm, g.clip_coef, in[0], in[1], in[2]};
  };
  c.reference = [max_norm](const Doubles& in) {
    const double norm = norm_of(in);
    const double coef = std::min(1.0, max_norm / (norm + 1e-6));
    Doubles out{{norm}, {coef}};
    for (const auto& t : in) {
      out.push_back(t);
      for (double& v : out.back()) v *= coef;
    }
    return out;
  };
  c.forward_tol = {1e-6, 1e-5};
  c.device_tol = {1e-6, 1e-5};
  return c;
}

// Views that start one element in: not 16-byte aligned, so the kernels take their scalar
// paths (float4 loads only when every pointer of a chunk is aligned).
OpCase unaligned_case(bool norm) {
  OpCase c;
  c.inputs = {{{37}, normal()}, {{20001}, normal(0.f, 0.1f)}};
  for (Input& i : c.inputs) i.differentiable = false;
  c.forward = [norm](Tensors& in) {
    std::vector<Tensor> views{in[0].narrow(0, 1, 36), in[1].narrow(0, 1, 20000)};
    return Tensors{norm ? global_norm(views) : sum(views[1])};
  };
  c.reference = [norm](const Doubles& in) {
    double s = 0.0;
    for (std::size_t k = norm ? 0 : 1; k < in.size(); ++k)
      for (std::size_t i = 1; i < in[k].size(); ++i) s += norm ? in[k][i] * in[k][i] : in[k][i];
    return Doubles{{norm ? std::sqrt(s) : s}};
  };
  c.forward_tol = {1e-6, 1e-6};
  c.device_tol = {1e-5, 1e-5};
  return c;
}

}  // namespace

CXR_OP_CASE("sum 1 element") {
  return sum_case({1}, false);
}
CXR_OP_CASE("sum 1000 (partial block)") {
  return sum_case({1000}, false);
}
CXR_OP_CASE("sum 3x7x11x13") {
  return sum_case({3, 7, 11, 13}, false);
}
CXR_OP_CASE("sum 100003 (two passes)") {
  return sum_case({100003}, false);
}
CXR_OP_CASE("mean 1 element") {
  return sum_case({1}, true);
}
CXR_OP_CASE("mean 5x201") {
  return sum_case({5, 201}, true);
}
CXR_OP_CASE("mean 100003 (two passes)") {
  return sum_case({100003}, true);
}
CXR_OP_CASE("sum_dim 5x300 dim 1 (rows)") {
  return sum_dim_case({5, 300}, 1, false);
}
CXR_OP_CASE("sum_dim 33x17 dim 0 (columns)") {
  return sum_dim_case({33, 17}, 0, false);
}
CXR_OP_CASE("sum_dim 4x9x7 dim -2 keepdim") {
  return sum_dim_case({4, 9, 7}, -2, true);
}
CXR_OP_CASE("global_norm 3 tensors (37, 5x129, 20001)") {
  return global_norm_case();
}
CXR_OP_CASE("global_norm of unaligned views") {
  return unaligned_case(true);
}
CXR_OP_CASE("sum of an unaligned view") {
  return unaligned_case(false);
}
CXR_OP_CASE("clip_grad_norm 3 tensors, clipping") {
  return clip_case(5.0f);
}
CXR_OP_CASE("clip_grad_norm 3 tensors, no clipping") {
  return clip_case(1e4f);
}

TEST_CASE("global_norm of an empty list and of empty tensors is 0" * doctest::test_suite("cpu")) {
  CHECK(global_norm({}).item() == 0.0f);
  std::vector<Tensor> ts{Tensor::zeros({0}), Tensor::full({3}, 2.0f)};
  CHECK(global_norm(ts).item() == doctest::Approx(std::sqrt(12.0)));
}

TEST_CASE("reductions reject bad arguments with clear messages" * doctest::test_suite("cpu")) {
  Tensor x = Tensor::zeros({4, 4});
  CHECK_THROWS_WITH_AS(sum(x.permute({1, 0})), doctest::Contains("must be contiguous"), cxr::Error);
  CHECK_THROWS_WITH_AS(sum_dim(x, 2), doctest::Contains("out of range"), cxr::Error);
  CHECK_THROWS_WITH_AS(sum_backward(x, {4}), doctest::Contains("one element"), cxr::Error);
  std::vector<Tensor> ts{x};
  CHECK_THROWS_WITH_AS(scale_(ts, Tensor::zeros({2})), doctest::Contains("one element"), cxr::Error);
  CHECK_THROWS_WITH_AS(grad_norm(ts, 0.0f), doctest::Contains("max_norm"), cxr::Error);
}
