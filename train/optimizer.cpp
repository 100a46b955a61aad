// The optimiser of a training run (see optimizer.h).
#include "train/optimizer.h"

#include <cmath>

namespace cxr {

OptimizerKind parse_optimizer_kind(const std::string& name) {
  if (name == "adamw") return OptimizerKind::adamw;
  if (name == "sgd") return OptimizerKind::sgd;
  throw UsageError("--optimizer must be adamw or sgd, got '" + name + "'");
}

Optimizer::Optimizer(Module& model, const OptimizerConfig& config) : config_(config) {
  for (auto& [name, p] : model.named_parameters()) {
    names_.push_back(name);
    params_.push_back(p);
    m_.push_back(Tensor::zeros(p->value.shape(), DType::F32, p->value.device()));
    if (adamw()) v_.push_back(Tensor::zeros(p->value.shape(), DType::F32, p->value.device()));
    steps_.push_back(0);
  }
}

Optimizer::~Optimizer() = default;

std::vector<std::size_t> Optimizer::active() const {
  std::vector<std::size_t> a;
  for (std::size_t i = 0; i < params_.size(); ++i)
    if (params_[i]->trainable && params_[i]->grad.defined()) a.push_back(i);
  return a;
}

std::vector<std::size_t> Optimizer::trainable() const {
  std::vector<std::size_t> a;
  for (std::size_t i = 0; i < params_.size(); ++i)
    if (params_[i]->trainable) a.push_back(i);
  return a;
}

GradNorm Optimizer::global_norm(const std::vector<std::size_t>& active, double grad_clip) const {
  std::vector<Tensor> g;
  for (auto i : active) g.push_back(params_[i]->grad);
  return grad_norm(g, grad_clip > 0 ? static_cast<float>(grad_clip) : 1.f);
}

std::vector<std::string> Optimizer::nonfinite_gradients(const std::vector<std::size_t>& active) const {
  std::vector<std::string> bad;
  for (auto i : active) {
    const double n = grad_norm({params_[i]->grad}, 1.f).norm.item();
    if (!std::isfinite(n)) bad.push_back(names_[i]);
  }
  return bad;
}

void Optimizer::step(double lr, const std::vector<std::size_t>& active, const Tensor& scale) {
  if (active.empty()) return;
  for (auto i : active) ++steps_[i];
  // Groups of the same (decay, step): one optimiser call each.
  std::vector<bool> done(active.size(), false);
  for (std::size_t a = 0; a < active.size(); ++a) {
    if (done[a]) continue;
    const bool decay = params_[active[a]]->weight_decay;
    const std::int64_t st = steps_[active[a]];
    std::vector<Tensor> p, g, m, v;
    for (std::size_t b = a; b < active.size(); ++b) {
      const std::size_t i = active[b];
      if (done[b] || params_[i]->weight_decay != decay || steps_[i] != st) continue;
      done[b] = true;
      p.push_back(params_[i]->value);
      g.push_back(params_[i]->grad);
      m.push_back(m_[i]);
      if (adamw()) v.push_back(v_[i]);
    }
    const float wd = decay ? static_cast<float>(config_.weight_decay) : 0.f;
    if (adamw()) {
      AdamWOptions o;
      o.lr = static_cast<float>(lr);
      o.weight_decay = wd;
      adamw_step(p, g, m, v, st, o, scale);
    } else {
      SgdOptions o;
      o.lr = static_cast<float>(lr);
      o.momentum = 0.9f;
      o.weight_decay = wd;
      sgd_step(p, g, m, st, o, scale);
    }
  }
}

void Optimizer::enable_device_scalars(const std::vector<double>& lr_per_step, std::int64_t global_step) {
  DeviceStepScalars::Config c;
  c.adamw = adamw();
  c.adam.weight_decay = static_cast<float>(config_.weight_decay);
  c.sgd.momentum = 0.9f;
  c.sgd.weight_decay = static_cast<float>(config_.weight_decay);
  c.lr_per_step = lr_per_step;
  c.max_count = static_cast<std::int64_t>(lr_per_step.size());
  const Device device = params_.empty() ? Device::CPU : params_.front()->value.device();
  device_ = std::make_unique<DeviceStepScalars>(c, static_cast<std::int64_t>(params_.size()), device);
  device_->set_state(global_step, steps_);
}

void Optimizer::guarded_step(const std::vector<std::size_t>& active, const Tensor& scale, const Tensor& status) {
  CXR_CHECK(device_, "Optimizer::guarded_step needs enable_device_scalars() first");
  std::vector<int> index;
  std::vector<bool> decay;
  std::vector<Tensor> p, g, m, v;
  for (auto i : active) {
    index.push_back(static_cast<int>(i));
    decay.push_back(params_[i]->weight_decay);
    p.push_back(params_[i]->value);
    g.push_back(params_[i]->grad);
    m.push_back(m_[i]);
    if (adamw()) v.push_back(v_[i]);
  }
  device_->set_active(index, decay);  // an upload only when the trainable set changed
  device_->mark_nonfinite(g, status);  // only does work on a bad step
  if (adamw())
    device_->adamw_step(p, g, m, v, scale, status);
  else
    device_->sgd_step(p, g, m, scale, status);
}

void Optimizer::confirm_applied(const std::vector<std::size_t>& active) {
  for (auto i : active) ++steps_[i];
}

std::vector<std::string> Optimizer::nonfinite_of_step(std::int64_t step, const std::vector<std::size_t>& active) const {
  std::vector<std::string> bad;
  if (!device_) return bad;
  for (int k : device_->nonfinite_of_step(step)) bad.push_back(names_[active[static_cast<std::size_t>(k)]]);
  return bad;
}

void Optimizer::check_device_counts(std::int64_t global_step) const {
  if (!device_) return;
  CXR_CHECK(device_->counts() == steps_ && device_->global_step() == global_step,
            "internal error: the optimiser step counts on the device differ from the host's");
}

void Optimizer::add_state(NamedTensors& s) const {
  for (std::size_t i = 0; i < names_.size(); ++i) {
    s.add(kOptimizerPrefix + names_[i] + (adamw() ? ".exp_avg" : ".momentum_buffer"), m_[i]);
    if (adamw()) s.add(kOptimizerPrefix + names_[i] + ".exp_avg_sq", v_[i]);
  }
}

void Optimizer::load_state(const SafetensorsFile& f, const std::vector<std::int64_t>& steps, const std::string& what) {
  CXR_CHECK(!device_, "Optimizer::load_state: load the state before enable_device_scalars()");
  CXR_CHECK(steps.size() == steps_.size(), what, ": optimiser step counts do not match the model");
  for (std::size_t i = 0; i < names_.size(); ++i) {
    const std::string base = kOptimizerPrefix + names_[i];
    const Tensor& a = f.at(base + (adamw() ? ".exp_avg" : ".momentum_buffer"));
    CXR_CHECK(a.shape() == m_[i].shape(), what, ": optimiser state of ", names_[i], " has shape ",
              shape_str(a.shape()), ", expected ", shape_str(m_[i].shape()));
    m_[i].copy_(a);
    if (adamw()) v_[i].copy_(f.at(base + ".exp_avg_sq"));
  }
  steps_ = steps;
}

}  // namespace cxr
