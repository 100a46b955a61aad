// Helpers of the EfficientNet-B0 / ConvNeXt-Tiny parity tests (see the header).
#include "tests/models/test_efficientnet_convnext_parity.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "kernels/activation.h"
#include "kernels/cpu/frozen_weights.h"
#include "tests/det_init.h"
#include "tests/golden.h"

namespace cxr::test::tv_parity {

namespace {

constexpr double kProbTol = 1e-4;       // probabilities and boxes, absolute
constexpr double kGradRelTol = 1e-3;    // gradient elements and norms, relative to the norm
constexpr double kGradAbsFloor = 1e-4;  // gradients that are zero mathematically (a bias
                                        // before a train-mode BatchNorm) are rounding noise

std::string leaf_of(const std::string& key) {
  const auto dot = key.rfind('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}

Tensor det_value(const std::string& arch, const std::string& key, const Shape& shape) {
  const std::string name = arch + "." + key;
  const std::string leaf = leaf_of(key);
  if (leaf == "running_mean") return det_uniform(name, shape, 0.1f);
  if (leaf == "running_var") return det_uniform(name, shape, 0.25f, 0.5f);
  if (leaf == "layer_scale") return det_uniform(name, shape, 0.1f, 0.5f);
  if (leaf == "bias") return det_uniform(name, shape, 0.1f);
  if (leaf == "weight" && shape.size() == 1) return det_uniform(name, shape, 0.2f, 1.f);
  if (leaf == "weight") {
    const double fan_in = static_cast<double>(shape_numel(shape) / shape[0]);
    return det_uniform(name, shape, static_cast<float>(std::sqrt(3.0 / fan_in)));
  }
  CXR_FAIL("det_init_model: no rule for ", key);
}

Device device_of(CxrModel& m) {
  return m.named_parameters().front().second->value.device();
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto va = a.to_vector(), vb = b.to_vector();
  REQUIRE(va.size() == vb.size());
  double m = 0;
  for (std::size_t i = 0; i < va.size(); ++i) m = std::max(m, std::abs(double(va[i]) - double(vb[i])));
  return m;
}

double l2(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += double(x) * x;
  return std::sqrt(s);
}

}  // namespace

void det_init_model(Module& m, const std::string& arch) {
  for (auto& [key, p] : m.named_parameters()) {
    Tensor v = det_value(arch, key, p->value.shape());
    p->value.copy_(v.to(p->value.device()));
  }
  for (auto& [key, b] : m.named_buffers()) {
    if (leaf_of(key) == "num_batches_tracked") continue;
    b->copy_(det_value(arch, key, b->shape()).to(b->device()));
  }
}

Prediction eval_run(CxrModel& m, const std::string& arch, const Shape& input_shape) {
  const Device dev = device_of(m);
  m.eval();
  Prediction p = m.predict(det_uniform(arch + ".input", input_shape, 1.f).to(dev));
  return {p.probs.cpu(), p.boxes.cpu()};
}

Prediction inference_run(CxrModel& m, const std::string& arch, const Shape& input_shape) {
  const cpu::FrozenWeightsScope frozen;
  return eval_run(m, arch, input_shape);
}

TrainRun train_run(CxrModel& m, const std::string& arch, const Shape& input_shape) {
  const Device dev = device_of(m);
  const std::int64_t n = input_shape[0];
  const Tensor r1 = det_uniform(arch + ".R1", {n, 14}, 1.f), r2 = det_uniform(arch + ".R2", {n, 56}, 1.f);
  m.train();
  m.zero_grad();
  HeadOutputs out = m.forward_heads(det_uniform(arch + ".input", input_shape, 1.f).to(dev));
  m.backward_heads(r1.to(dev), r2.view({n, 14, 4}).to(dev));

  TrainRun r;
  const Tensor logits = out.logits.cpu(), boxes = out.boxes.cpu();
  const auto vl = logits.to_vector(), vb = boxes.to_vector(), v1 = r1.to_vector(), v2 = r2.to_vector();
  REQUIRE(vl.size() == v1.size());
  REQUIRE(vb.size() == v2.size());
  for (std::size_t i = 0; i < vl.size(); ++i) r.loss += double(vl[i]) * v1[i];
  for (std::size_t i = 0; i < vb.size(); ++i) r.loss += double(vb[i]) * v2[i];
  r.probs = activation_forward(Activation::Sigmoid, logits);
  r.boxes = box_sigmoid(boxes);
  for (auto& [key, p] : m.named_parameters()) r.grads.emplace_back(key, p->grad.cpu());
  for (auto& [key, b] : m.named_buffers()) r.buffers.emplace_back(key, b->cpu());
  return r;
}

void check_keys(CxrModel& m, const nlohmann::json& golden) {
  auto compare = [](const char* what, const std::vector<std::pair<std::string, Shape>>& ours,
                    const nlohmann::json& ref) {
    CHECK_MESSAGE(ours.size() == ref.size(), what, ": ", ours.size(), " here, ", ref.size(), " in torchvision");
    int reported = 0;
    for (std::size_t i = 0; i < std::min(ours.size(), ref.size()) && reported < 5; ++i) {
      const std::string name = ref[i].at("name").get<std::string>();
      const Shape shape = ref[i].at("shape").get<Shape>();
      if (ours[i].first != name || ours[i].second != shape) {
        ++reported;
        FAIL_CHECK(what, " #", i, ": ", ours[i].first, " ", shape_str(ours[i].second), " here, ", name, " ",
                   shape_str(shape), " in torchvision");
      }
    }
  };
  std::vector<std::pair<std::string, Shape>> params, buffers;
  for (auto& [k, p] : m.named_parameters()) params.emplace_back(k, p->value.shape());
  for (auto& [k, b] : m.named_buffers()) buffers.emplace_back(k, b->shape());
  compare("parameter", params, golden.at("parameters"));
  compare("buffer", buffers, golden.at("buffers"));
}

void check_eval(const Prediction& p, const nlohmann::json& golden) {
  const auto& g = golden.at("eval");
  const double dp = max_abs_diff(p.probs, golden_tensor(g.at("probs")));
  const double db = max_abs_diff(p.boxes.view({p.boxes.size(0), -1}), golden_tensor(g.at("boxes")));
  CHECK_MESSAGE(dp <= kProbTol, "eval probabilities: max |diff| ", dp);
  CHECK_MESSAGE(db <= kProbTol, "eval boxes: max |diff| ", db);
}

void check_train(const TrainRun& r, const nlohmann::json& golden) {
  const auto& g = golden.at("train");
  const double dp = max_abs_diff(r.probs, golden_tensor(g.at("probs")));
  const double db = max_abs_diff(r.boxes.view({r.boxes.size(0), -1}), golden_tensor(g.at("boxes")));
  CHECK_MESSAGE(dp <= kProbTol, "train probabilities: max |diff| ", dp);
  CHECK_MESSAGE(db <= kProbTol, "train boxes: max |diff| ", db);
  const double loss = g.at("loss").get<double>();
  CHECK_MESSAGE(std::abs(r.loss - loss) <= 1e-4 * (1 + std::abs(loss)), "loss ", r.loss, " vs ", loss);

  const auto& grads = g.at("grads");
  CHECK(r.grads.size() == grads.size());
  int failures = 0;
  double worst = 0;
  std::string worst_name;
  for (const auto& [name, grad] : r.grads) {
    if (!grads.contains(name)) {
      FAIL_CHECK("gradient of ", name, " has no golden value");
      continue;
    }
    const auto& ref = grads.at(name);
    const double ref_norm = ref.at("norm").get<double>();
    double tol = kGradRelTol * ref_norm + kGradAbsFloor;
    // A float64 golden (tests/gen/models_densenet.py) measures how far float32 and tiny input
    // changes move the gradient (ReLU inputs within rounding of 0).
    if (ref.contains("yardstick")) tol = std::max(tol, 2 * ref.at("yardstick").get<double>());
    const auto v = grad.to_vector();
    double err = std::abs(l2(v) - ref_norm);
    const auto idx = ref.at("index").get<std::vector<std::int64_t>>();
    const auto val = ref.at("value").get<std::vector<double>>();
    for (std::size_t k = 0; k < idx.size(); ++k) err = std::max(err, std::abs(double(v[idx[k]]) - val[k]));
    if (err / tol > worst) worst = err / tol, worst_name = name;
    if (err > tol && failures++ < 8)
      FAIL_CHECK("gradient of ", name, ": |diff| ", err, " > ", tol, " (norm ", l2(v), " vs ", ref_norm, ")");
  }
  CHECK_MESSAGE(failures == 0, failures, " gradients differ");
  MESSAGE("gradients: worst error / tolerance ", worst, " (", worst_name, ")");

  std::map<std::string, const Tensor*> bufs;
  for (const auto& [name, b] : r.buffers) bufs[name] = &b;
  for (const auto& [name, ref] : g.at("running").items()) {
    REQUIRE_MESSAGE(bufs.count(name), "buffer ", name, " missing");
    const auto v = bufs[name]->to_vector();
    const auto idx = ref.at("index").get<std::vector<std::int64_t>>();
    const auto val = ref.at("value").get<std::vector<double>>();
    for (std::size_t k = 0; k < idx.size(); ++k)
      CHECK_MESSAGE(std::abs(v[idx[k]] - val[k]) <= 1e-4 * (1 + std::abs(val[k])), name, "[", idx[k], "] ", v[idx[k]],
                    " vs ", val[k]);
  }
}

void check_device_against_cpu(const std::function<std::unique_ptr<CxrModel>()>& make, const std::string& arch,
                              const Shape& input_shape) {
  std::unique_ptr<CxrModel> cpu = make(), dev = make();
  det_init_model(*cpu, arch);
  det_init_model(*dev, arch);
  dev->to(Device::CUDA);

  const Prediction pc = eval_run(*cpu, arch, input_shape), pd = eval_run(*dev, arch, input_shape);
  CHECK_MESSAGE(max_abs_diff(pc.probs, pd.probs) <= kProbTol, "eval probabilities differ");
  CHECK_MESSAGE(max_abs_diff(pc.boxes, pd.boxes) <= kProbTol, "eval boxes differ");

  const TrainRun rc = train_run(*cpu, arch, input_shape), rd = train_run(*dev, arch, input_shape);
  CHECK_MESSAGE(max_abs_diff(rc.probs, rd.probs) <= kProbTol, "train probabilities differ");
  CHECK_MESSAGE(max_abs_diff(rc.boxes, rd.boxes) <= kProbTol, "train boxes differ");
  REQUIRE(rc.grads.size() == rd.grads.size());
  int failures = 0;
  double worst = 0;
  std::string worst_name;
  for (std::size_t i = 0; i < rc.grads.size(); ++i) {
    const auto vc = rc.grads[i].second.to_vector(), vd = rd.grads[i].second.to_vector();
    const double tol = kGradRelTol * l2(vc) + kGradAbsFloor;
    double err = 0;
    for (std::size_t k = 0; k < vc.size(); ++k) err = std::max(err, std::abs(double(vc[k]) - double(vd[k])));
    if (err / tol > worst) worst = err / tol, worst_name = rc.grads[i].first;
    if (err > tol && failures++ < 8)
      FAIL_CHECK("gradient of ", rc.grads[i].first, ": device vs CPU max |diff| ", err, " > ", tol);
  }
  CHECK_MESSAGE(failures == 0, failures, " gradients differ between the device and the CPU");
  MESSAGE("device gradients: worst error / tolerance ", worst, " (", worst_name, ")");
  for (std::size_t i = 0; i < rc.buffers.size(); ++i)
    if (rc.buffers[i].second.dtype() == DType::F32)  // not num_batches_tracked (an integer)
      CHECK_MESSAGE(max_abs_diff(rc.buffers[i].second, rd.buffers[i].second) <= 1e-4, "buffer ", rc.buffers[i].first,
                    " differs after the training step");
}

}  // namespace cxr::test::tv_parity
