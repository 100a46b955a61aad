// Optimiser steps against torch.optim (tests/gen/optimizers.py): parameters after three steps
// of SGD(momentum 0.9, nesterov, weight decay 1e-4) and AdamW(lr 1e-3, weight decay 1e-2).
// CPU, and the CUDA device if any.
#include "kernels/optimizer_step.h"
#include "tensor/backend.h"
#include "tests/golden.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

std::vector<Tensor> tensors(const nlohmann::json& list, Device dev) {
  std::vector<Tensor> r;
  for (const auto& j : list) r.push_back(golden_tensor(j).to(dev).clone());
  return r;
}

std::vector<Tensor> zeros_like(const std::vector<Tensor>& ts) {
  std::vector<Tensor> r;
  for (const Tensor& t : ts) r.push_back(Tensor::zeros(t.shape(), DType::F32, t.device()));
  return r;
}

void check_params(const char* what, const std::vector<Tensor>& p, const nlohmann::json& expected) {
  REQUIRE(p.size() == expected.size());
  for (std::size_t k = 0; k < p.size(); ++k)
    expect_close(std::string(what) + " param " + std::to_string(k) + " vs torch", p[k].cpu(),
                 golden_tensor(expected[k]), {1e-6, 1e-5});
}

void check_against_torch(Device dev) {
  const nlohmann::json g = load_golden("optimizers");
  const int steps = g.at("steps").get<int>();
  {
    const auto& o = g.at("sgd");
    SgdOptions opt{.lr = o.at("lr").get<float>(),
                   .momentum = o.at("momentum").get<float>(),
                   .dampening = 0.f,
                   .weight_decay = o.at("weight_decay").get<float>(),
                   .nesterov = o.at("nesterov").get<bool>()};
    std::vector<Tensor> p = tensors(g.at("params"), dev), buf = zeros_like(p);
    for (int k = 0; k < steps; ++k) sgd_step(p, tensors(g.at("grads")[k], dev), buf, k + 1, opt);
    check_params("sgd", p, o.at("params"));
  }
  {
    const auto& o = g.at("adamw");
    AdamWOptions opt{.lr = o.at("lr").get<float>(),
                     .beta1 = o.at("beta1").get<float>(),
                     .beta2 = o.at("beta2").get<float>(),
                     .eps = o.at("eps").get<float>(),
                     .weight_decay = o.at("weight_decay").get<float>()};
    std::vector<Tensor> p = tensors(g.at("params"), dev), m = zeros_like(p), v = zeros_like(p);
    for (int k = 0; k < steps; ++k) adamw_step(p, tensors(g.at("grads")[k], dev), m, v, k + 1, opt);
    check_params("adamw", p, o.at("params"));
  }
}

}  // namespace

TEST_CASE("sgd and adamw match torch.optim [cpu]" * doctest::test_suite("cpu")) {
  check_against_torch(Device::CPU);
}

TEST_CASE("sgd and adamw match torch.optim [gpu]" * doctest::test_suite(gpu_suite()) *
          doctest::skip(skip_gpu_cases())) {
  REQUIRE_MESSAGE(backend::has_device(), "CXR_REQUIRE_GPU=1 but no CUDA device");
  check_against_torch(Device::CUDA);
}
