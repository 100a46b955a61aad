// Optimiser steps in the op registry (forward only): three parameters of odd sizes, three
// steps with a different gradient scale each (1, 0.5, -0.8: also tests the device-side
// grad_scale), outputs = the updated parameters and optimiser state, against the double
// reference and, on the device, against the CPU.
#include "kernels/optimizer_step.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

const std::vector<Shape> kShapes = {{37}, {5, 129}, {20001}};  // the last spans two chunks
const float kScales[3] = {1.0f, 0.5f, -0.8f};

Generator zeros() {
  return [](std::mt19937_64&) { return 0.f; };
}

std::vector<Tensor> slice(Tensors& in, int list) {
  return std::vector<Tensor>(in.begin() + list * 3, in.begin() + list * 3 + 3);
}

// Inputs: params(3), grads(3), momentum buffers(3: garbage, step 1 overwrites them).
OpCase sgd_case(SgdOptions opt) {
  OpCase c;
  for (const Shape& s : kShapes) c.inputs.push_back({s, normal(), false});
  for (const Shape& s : kShapes) c.inputs.push_back({s, normal(0.f, 2.f), false});
  for (const Shape& s : kShapes) c.inputs.push_back({s, normal(), false});
  c.forward = [opt](Tensors& in) {
    std::vector<Tensor> p = slice(in, 0), g = slice(in, 1), buf = slice(in, 2);
    for (int k = 0; k < 3; ++k) sgd_step(p, g, buf, k + 1, opt, Tensor::full({1}, kScales[k], in[0].device()));
    return Tensors{p[0], p[1], p[2], buf[0], buf[1], buf[2]};
  };
  c.reference = [opt](const Doubles& in) {
    Doubles p(in.begin(), in.begin() + 3), buf(in.begin() + 6, in.begin() + 9);
    for (int k = 0; k < 3; ++k)
      for (int t = 0; t < 3; ++t)
        cpu::sgd_step<double>(p[t].data(), in[3 + t].data(), buf[t].data(), static_cast<std::int64_t>(p[t].size()), opt,
                              k == 0, kScales[k]);
    Doubles out = p;
    out.insert(out.end(), buf.begin(), buf.end());
    return out;
  };
  c.forward_tol = {1e-6, 1e-5};
  c.device_tol = {1e-6, 1e-5};
  return c;
}

// Inputs: params(3), grads(3), exp_avg(3, zeros), exp_avg_sq(3, zeros).
OpCase adamw_case(AdamWOptions opt) {
  OpCase c;
  for (const Shape& s : kShapes) c.inputs.push_back({s, normal(), false});
  for (const Shape& s : kShapes) c.inputs.push_back({s, normal(0.f, 2.f), false});
  for (int l = 0; l < 2; ++l)
    for (const Shape& s : kShapes) c.inputs.push_back({s, zeros(), false});
  c.forward = [opt](Tensors& in) {
    std::vector<Tensor> p = slice(in, 0), g = slice(in, 1), m = slice(in, 2), v = slice(in, 3);
    for (int k = 0; k < 3; ++k) adamw_step(p, g, m, v, k + 1, opt, Tensor::full({1}, kScales[k], in[0].device()));
    Tensors out = p;
    out.insert(out.end(), m.begin(), m.end());
    out.insert(out.end(), v.begin(), v.end());
    return out;
  };
  c.reference = [opt](const Doubles& in) {
    Doubles p(in.begin(), in.begin() + 3), m(in.begin() + 6, in.begin() + 9), v(in.begin() + 9, in.begin() + 12);
    for (int k = 0; k < 3; ++k) {
      const AdamWScalars s = adamw_scalars(opt, k + 1);
      for (int t = 0; t < 3; ++t)
        cpu::adamw_step<double>(p[t].data(), in[3 + t].data(), m[t].data(), v[t].data(),
                                static_cast<std::int64_t>(p[t].size()), s, kScales[k]);
    }
    Doubles out = p;
    out.insert(out.end(), m.begin(), m.end());
    out.insert(out.end(), v.begin(), v.end());
    return out;
  };
  c.forward_tol = {1e-6, 1e-5};
  c.device_tol = {1e-6, 1e-5};
  return c;
}

}  // namespace

CXR_OP_CASE("sgd nesterov momentum 0.9 wd 1e-4, 3 steps") {
  return sgd_case({.lr = 0.1f, .momentum = 0.9f, .dampening = 0.f, .weight_decay = 1e-4f, .nesterov = true});
}
CXR_OP_CASE("sgd momentum 0.8 dampening 0.1, 3 steps") {
  return sgd_case({.lr = 0.05f, .momentum = 0.8f, .dampening = 0.1f, .weight_decay = 0.f, .nesterov = false});
}
CXR_OP_CASE("sgd plain (no momentum) wd 1e-2, 3 steps") {
  return sgd_case({.lr = 0.1f, .momentum = 0.f, .dampening = 0.f, .weight_decay = 1e-2f, .nesterov = false});
}
CXR_OP_CASE("adamw lr 1e-3 wd 1e-2, 3 steps") {
  return adamw_case({.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 1e-2f});
}
CXR_OP_CASE("adamw lr 3e-2 betas 0.8/0.99 no wd, 3 steps") {
  return adamw_case({.lr = 3e-2f, .beta1 = 0.8f, .beta2 = 0.99f, .eps = 1e-6f, .weight_decay = 0.f});
}

TEST_CASE("optimisers reject mismatched lists with clear messages" * doctest::test_suite("cpu")) {
  std::vector<Tensor> p{Tensor::zeros({3})}, g{Tensor::zeros({4})}, m{Tensor::zeros({3})}, v{Tensor::zeros({3})};
  CHECK_THROWS_WITH_AS(adamw_step(p, g, m, v, 1, {}), doctest::Contains("shapes differ"), cxr::Error);
  std::vector<Tensor> g2{Tensor::zeros({3})}, none;
  CHECK_THROWS_WITH_AS(adamw_step(p, g2, none, v, 1, {}), doctest::Contains("exp_avg has 0 tensors"), cxr::Error);
  CHECK_THROWS_WITH_AS(sgd_step(p, g2, m, 0, {}), doctest::Contains("step counts from 1"), cxr::Error);
}
