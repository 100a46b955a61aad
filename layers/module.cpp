#include "layers/module.h"

#include <utility>

#include "kernels/add.h"

namespace cxr {

namespace {
thread_local bool g_grad_enabled = true;
}  // namespace

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

namespace {
thread_local GradReadyHook* t_grad_ready_hook = nullptr;
}  // namespace

GradReadyHook* set_grad_ready_hook(GradReadyHook* hook) { return std::exchange(t_grad_ready_hook, hook); }

namespace {
// g, given up by the caller, can become a gradient without a copy: a contiguous CPU tensor
// spanning all of its storage, which no other tensor shares (so that later additions into the
// gradient change nothing else).
bool can_take(const Tensor& g) {
  return g.is_cpu() && g.is_contiguous() && g.storage().use_count() == 1 && g.raw_data() == g.storage()->data &&
         g.storage()->bytes == g.nbytes();
}
}  // namespace

void Parameter::accumulate_grad(const Tensor& g) {
  check_same_shape("accumulate_grad", "parameter", value, "gradient", g);
  if (!grad.defined() || grad_stale) {
    grad = g.clone();
    grad_stale = false;
  } else {
    add_(grad, g);
  }
  if (t_grad_ready_hook != nullptr) t_grad_ready_hook->grad_ready(*this);
}

void Parameter::accumulate_grad(Tensor&& g) {
  if ((grad.defined() && !grad_stale) || !can_take(g)) return accumulate_grad(static_cast<const Tensor&>(g));
  check_same_shape("accumulate_grad", "parameter", value, "gradient", g);
  grad = std::move(g);
  grad_stale = false;
  if (t_grad_ready_hook != nullptr) t_grad_ready_hook->grad_ready(*this);
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

std::vector<std::pair<std::string, Parameter*>> Module::named_parameters(const std::string& prefix) {
  std::vector<std::pair<std::string, Parameter*>> out;
  for (auto& [name, p] : params_) out.emplace_back(prefix + name, p.get());
  for (auto& [name, child] : children_)
    for (auto& item : child->named_parameters(prefix + name + ".")) out.push_back(item);
  return out;
}

std::vector<std::pair<std::string, Tensor*>> Module::named_buffers(const std::string& prefix) {
  std::vector<std::pair<std::string, Tensor*>> out;
  sync_buffers();
  for (auto& [name, b] : buffers_) out.emplace_back(prefix + name, b.get());
  for (auto& [name, child] : children_)
    for (auto& item : child->named_buffers(prefix + name + ".")) out.push_back(item);
  return out;
}

void Module::to(Device device) {
  for (auto& [name, p] : params_) {
    p->value = p->value.to(device);
    if (p->grad.defined()) p->grad = p->grad.to(device);
  }
  for (auto& [name, b] : buffers_) *b = b->to(device);
  saved_input_ = Tensor();
  for (auto& [name, child] : children_) child->to(device);
}

namespace {
// p's gradient as zeros (allocated where missing), not stale.
void zero_gradient(Parameter& p) {
  if (!p.grad.defined()) p.grad = Tensor::zeros(p.value.shape(), DType::F32, p.value.device());
  else p.grad.zero_();
  p.grad_stale = false;
}
}  // namespace

void Module::zero_grad() {
  for (auto& [name, p] : named_parameters()) zero_gradient(*p);
}

void Module::zero_grad_deferred() {
  for (auto& [name, p] : named_parameters()) {
    if (p->value.is_cpu()) p->grad_stale = true;
    else zero_gradient(*p);
  }
}

void Module::settle_grads() {
  for (auto& [name, p] : named_parameters())
    if (p->grad_stale) zero_gradient(*p);
}

void Module::set_trainable(bool trainable) {
  for (auto& [name, p] : named_parameters()) p->trainable = trainable;
}

std::int64_t Module::parameter_count() {
  std::int64_t n = 0;
  for (auto& [name, p] : named_parameters()) n += p->value.numel();
  return n;
}

Parameter& Module::register_parameter(const std::string& name, Tensor value, bool weight_decay) {
  auto p = std::make_unique<Parameter>();
  p->value = std::move(value);
  p->weight_decay = weight_decay;
  Parameter& ref = *p;
  params_.emplace_back(name, std::move(p));
  return ref;
}

Tensor& Module::register_buffer(const std::string& name, Tensor value) {
  auto b = std::make_unique<Tensor>(std::move(value));
  Tensor& ref = *b;
  buffers_.emplace_back(name, std::move(b));
  return ref;
}

const Tensor& Module::saved_input(const char* who) const {
  CXR_CHECK(saved_input_.defined(), who, ".backward() called without a forward that kept its input (a forward under NoGradGuard keeps nothing)");
  return saved_input_;
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (Module* m : layers_) h = m->forward(h);
  return h;
}

Tensor Sequential::backward(const Tensor& dy) {
  Tensor g = dy;
  for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) g = (*it)->backward(g);
  return g;
}

}  // namespace cxr
