// ResNet-18/34/50 against torchvision (golden files from tests/gen/models_resnet.py): the same
// deterministic weights and input give the same probabilities and boxes (eval and train
// mode, max |diff| <= 1e-4; eval also with the batch norms folded into the convolutions, as
// train_cxr eval and predict run it), loss, parameter gradients (L2 norm within 1e-3 relative;
// sampled elements within 1e-3 of the parameter's gradient norm) and running statistics. The
// parameter and buffer names and shapes equal torchvision's state_dict (fc replaced by the
// heads). On the GPU (gpu_suite), the same model against the CPU implementation.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "kernels/activation.h"
#include "kernels/cpu/frozen_weights.h"
#include "layers/init.h"
#include "models/model_factory.h"
#include "tensor/backend.h"
#include "tests/det_init.h"
#include "tests/golden.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;
using nlohmann::json;

namespace {

constexpr int kClasses = 14;

// The deterministic rule of tests/gen/models_resnet.py (see its docstring).
Tensor det_param(const std::string& name, const Shape& shape) {
  if (shape.size() >= 2) {
    const std::int64_t fan_in = shape_numel(shape) / shape[0];
    return det_uniform(name, shape, static_cast<float>(std::sqrt(3.0 / static_cast<double>(fan_in))));
  }
  if (name.ends_with("bn3.weight")) return det_uniform(name, shape, 0.02f, 0.2f);
  if (name.ends_with("weight")) return det_uniform(name, shape, 0.1f, 1.f);
  return det_uniform(name, shape, 0.1f);
}

void det_init_model(Module& m) {
  for (auto& [name, p] : m.named_parameters()) p->value.copy_(det_param(name, p->value.shape()));
  for (auto& [name, b] : m.named_buffers()) {
    if (name.ends_with("running_mean")) b->copy_(det_uniform(name, b->shape(), 0.1f));
    else if (name.ends_with("running_var")) b->copy_(det_uniform(name, b->shape(), 0.5f, 1.f));
    else if (name.ends_with("num_batches_tracked")) b->zero_();
    else FAIL("no deterministic rule for buffer " << name);
  }
}

struct Run {
  Tensor eval_probs, eval_boxes, train_probs, train_boxes;
  Tensor inference_probs, inference_boxes;  // eval as train_cxr eval / predict runs it (CPU only)
  double loss = 0, loss_scale = 0;  // loss_scale: sum of |terms|, for a relative tolerance
  std::vector<std::pair<std::string, Tensor>> grads;    // on the CPU
  Tensor input_grad;                                     // d loss / d x, on the CPU
  std::vector<std::pair<std::string, Tensor>> buffers;  // after the training step, on the CPU
};

// Eval forward, then a training forward and backward of L = sum(logits R1) + sum(boxes R2).
Run run_model(const std::string& arch, Device device, std::int64_t size) {
  manual_seed(0);
  std::unique_ptr<CxrModel> m = make_model(arch, kClasses);
  det_init_model(*m);
  m->to(device);
  const Tensor x = det_uniform("input", {2, 3, size, size}, 1.f).to(device);
  const Tensor r1 = det_uniform("R_logits", {2, kClasses}, 1.f);
  const Tensor r2 = det_uniform("R_boxes", {2, kClasses, 4}, 1.f);
  Run run;
  m->eval();
  Prediction p = m->predict(x);
  run.eval_probs = p.probs.cpu();
  run.eval_boxes = p.boxes.cpu();
  if (device == Device::CPU) {  // in a FrozenWeightsScope: every batch norm folded into its convolution
    const cpu::FrozenWeightsScope frozen;
    Prediction f = m->predict(x);
    run.inference_probs = f.probs;
    run.inference_boxes = f.boxes;
  }

  m->train();
  m->zero_grad();
  HeadOutputs out = m->forward_heads(x);
  run.train_probs = activation_forward(Activation::Sigmoid, out.logits).cpu();
  run.train_boxes = box_sigmoid(out.boxes).cpu();
  const std::vector<float> lv = out.logits.to_vector(), bv = out.boxes.to_vector();
  const std::vector<float> r1v = r1.to_vector(), r2v = r2.to_vector();
  for (std::size_t i = 0; i < lv.size(); ++i) run.loss += double(lv[i]) * r1v[i], run.loss_scale += std::fabs(double(lv[i]) * r1v[i]);
  for (std::size_t i = 0; i < bv.size(); ++i) run.loss += double(bv[i]) * r2v[i], run.loss_scale += std::fabs(double(bv[i]) * r2v[i]);
  run.input_grad = m->backward_heads(r1.to(device), r2.to(device)).cpu();
  for (auto& [name, prm] : m->named_parameters()) run.grads.emplace_back(name, prm->grad.cpu());
  for (auto& [name, b] : m->named_buffers()) run.buffers.emplace_back(name, b->cpu());
  return run;
}

double l2(const Tensor& t) {
  double s = 0;
  for (float v : t.to_vector()) s += double(v) * v;
  return std::sqrt(s);
}

void check_names(const std::string& arch, const json& g) {
  manual_seed(0);
  std::unique_ptr<CxrModel> m = make_model(arch, kClasses);
  auto params = m->named_parameters();
  auto buffers = m->named_buffers();
  REQUIRE(params.size() == g.at("parameters").size());
  REQUIRE(buffers.size() == g.at("buffers").size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    const json& e = g["parameters"][i];
    CHECK_MESSAGE(params[i].first == e[0].get<std::string>(), arch, " parameter ", i);
    CHECK_MESSAGE(params[i].second->value.shape() == e[1].get<Shape>(), arch, " ", params[i].first);
  }
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    const json& e = g["buffers"][i];
    CHECK_MESSAGE(buffers[i].first == e[0].get<std::string>(), arch, " buffer ", i);
    CHECK_MESSAGE(buffers[i].second->shape() == e[1].get<Shape>(), arch, " ", buffers[i].first);
  }
}

// The gradient's L2 norm within 1e-3 relative, each golden sample within 1e-3 of that norm.
// Returns the number of failed checks.
// worst: the largest |diff| / tolerance seen (a margin report).
int check_grad(const std::string& what, const Tensor& grad, const json& e, double& worst) {
  const double ref_norm = e["norm"].get<double>();
  const double norm = l2(grad);
  int bad = 0;
  const bool norm_ok = std::fabs(norm - ref_norm) <= 1e-3 * ref_norm + 1e-12;
  CHECK_MESSAGE(norm_ok, what, " gradient norm ", norm, ", torch ", ref_norm, " (rel diff ",
                std::fabs(norm - ref_norm) / ref_norm, ")");
  bad += !norm_ok;
  worst = std::max(worst, std::fabs(norm - ref_norm) / (1e-3 * ref_norm + 1e-12));
  const std::vector<float> gv = grad.to_vector();
  for (const json& s : e["samples"]) {
    const std::size_t i = s[0].get<std::size_t>();
    const double ref = s[1].get<double>();
    const bool ok = std::fabs(gv.at(i) - ref) <= 1e-3 * ref_norm + 1e-12;
    CHECK_MESSAGE(ok, what, " gradient [", i, "] = ", gv[i], ", torch ", ref, " (norm ", ref_norm, ")");
    bad += !ok;
    worst = std::max(worst, std::fabs(gv.at(i) - ref) / (1e-3 * ref_norm + 1e-12));
  }
  return bad;
}

void check_against_torch(const std::string& arch) {
  const json g = load_golden(arch);
  check_names(arch, g);
  const std::int64_t size = g.at("input").at("size").get<std::int64_t>();
  const auto t0 = std::chrono::steady_clock::now();
  const Run run = run_model(arch, Device::CPU, size);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s parity on the cpu at %lldx%lld: %.1f s\n", arch.c_str(), static_cast<long long>(size),
              static_cast<long long>(size), secs);

  const Tol probs_tol{1e-4, 0};
  expect_close(arch + " eval probabilities", run.eval_probs, golden_tensor(g["eval"]["probs"]), probs_tol);
  expect_close(arch + " eval boxes", run.eval_boxes, golden_tensor(g["eval"]["boxes"]), probs_tol);
  expect_close(arch + " eval probabilities (folded batch norms)", run.inference_probs,
               golden_tensor(g["eval"]["probs"]), probs_tol);
  expect_close(arch + " eval boxes (folded batch norms)", run.inference_boxes, golden_tensor(g["eval"]["boxes"]),
               probs_tol);
  expect_close(arch + " train probabilities", run.train_probs, golden_tensor(g["train"]["probs"]), probs_tol);
  expect_close(arch + " train boxes", run.train_boxes, golden_tensor(g["train"]["boxes"]), probs_tol);
  const double loss_ref = g["train"]["loss"].get<double>();
  CHECK_MESSAGE(std::fabs(run.loss - loss_ref) <= 1e-5 * run.loss_scale + 1e-6, arch, " loss ", run.loss,
                ", torch ", loss_ref);

  const json& grads = g["train"]["grads"];
  int bad = 0;
  double worst = 0;
  for (const auto& [name, grad] : run.grads) {
    REQUIRE_MESSAGE(grads.contains(name), arch, ": no golden gradient for ", name);
    bad += check_grad(arch + " " + name, grad, grads[name], worst);
  }
  bad += check_grad(arch + " input", run.input_grad, g["train"]["input_grad"], worst);
  MESSAGE(arch, " gradients: worst |diff| / tolerance ", worst);
  CHECK_MESSAGE(bad == 0, arch, ": ", bad, " gradient checks failed");

  const json& bnorms = g["train"]["buffer_norms"];
  for (const auto& [name, b] : run.buffers) {
    const double ref = bnorms.at(name).get<double>();
    if (b.dtype() == DType::I32) {
      CHECK_MESSAGE(b.data<std::int32_t>()[0] == static_cast<std::int32_t>(ref), arch, " ", name);
      continue;
    }
    CHECK_MESSAGE(std::fabs(l2(b) - ref) <= 1e-4 * ref, arch, " ", name, " after the step: norm ", l2(b),
                  ", torch ", ref);
  }
}

// Device against CPU: every output and every parameter gradient (elements within 1e-3 of the
// parameter's gradient norm on the CPU).
void check_device_against_cpu(const std::string& arch, std::int64_t size) {
  const auto t0 = std::chrono::steady_clock::now();
  const Run c = run_model(arch, Device::CPU, size);
  const Run d = run_model(arch, Device::CUDA, size);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string dev = device_name(Device::CUDA);
  std::printf("%s %s vs cpu at %lldx%lld: %.1f s\n", arch.c_str(), dev.c_str(), static_cast<long long>(size),
              static_cast<long long>(size), secs);
  const Tol tol{1e-4, 0};
  expect_close(arch + " eval probabilities " + dev + " vs cpu", d.eval_probs, c.eval_probs, tol);
  expect_close(arch + " eval boxes " + dev + " vs cpu", d.eval_boxes, c.eval_boxes, tol);
  expect_close(arch + " train probabilities " + dev + " vs cpu", d.train_probs, c.train_probs, tol);
  expect_close(arch + " train boxes " + dev + " vs cpu", d.train_boxes, c.train_boxes, tol);
  REQUIRE(c.grads.size() == d.grads.size());
  for (std::size_t i = 0; i < c.grads.size(); ++i) {
    const double norm = l2(c.grads[i].second);
    expect_close(arch + " d(" + c.grads[i].first + ") " + dev + " vs cpu", d.grads[i].second, c.grads[i].second,
                 {1e-3 * norm + 1e-12, 0});
    CHECK_MESSAGE(std::fabs(l2(d.grads[i].second) - norm) <= 1e-3 * norm + 1e-12, arch, " ", c.grads[i].first);
  }
  const double dx_norm = l2(c.input_grad);
  expect_close(arch + " d(input) " + dev + " vs cpu", d.input_grad, c.input_grad, {1e-3 * dx_norm, 0});
  for (std::size_t i = 0; i < c.buffers.size(); ++i) {
    if (c.buffers[i].second.dtype() != DType::F32) {
      CHECK(d.buffers[i].second.data<std::int32_t>()[0] == c.buffers[i].second.data<std::int32_t>()[0]);
      continue;
    }
    expect_close(arch + " " + c.buffers[i].first + " " + dev + " vs cpu", d.buffers[i].second, c.buffers[i].second,
                 {1e-5, 1e-4});
  }
}

}  // namespace

TEST_CASE("resnet18 matches torchvision (golden)" * doctest::test_suite("models")) { check_against_torch("resnet18"); }
TEST_CASE("resnet34 matches torchvision (golden)" * doctest::test_suite("models")) { check_against_torch("resnet34"); }
TEST_CASE("resnet50 matches torchvision (golden)" * doctest::test_suite("models")) { check_against_torch("resnet50"); }

// The emulated device runs every kernel on the CPU: resnet18 at 32x32 there; on a real GPU
// all three at the golden size, 64x64.
TEST_CASE("resnet on the GPU matches the CPU" * doctest::test_suite(gpu_suite()) * doctest::skip(skip_gpu_cases())) {
  if (!backend::has_device()) FAIL("CXR_REQUIRE_GPU=1 but no CUDA device was found");
  if (backend::is_emulated()) {
    check_device_against_cpu("resnet18", 64);
  } else {
    for (const char* arch : {"resnet18", "resnet34", "resnet50"}) check_device_against_cpu(arch, 64);
  }
}
