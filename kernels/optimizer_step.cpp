// Tensor-level optimiser steps: argument checks, the per-step host scalars, device dispatch.
#include "kernels/optimizer_step.h"

#include <cmath>
#include <string>

namespace cxr {
namespace {

std::string item_name(const char* list, std::size_t k) {
  return std::string(list) + "[" + std::to_string(k) + "]";
}

// Every list has params.size() tensors shaped like params[k], f32, contiguous, on one device.
void check_lists(const char* op, const std::vector<Tensor>& params,
                 const std::vector<std::pair<const char*, const std::vector<Tensor>*>>& others) {
  for (std::size_t k = 0; k < params.size(); ++k) {
    const std::string pn = item_name("params", k);
    check_f32_input(op, pn.c_str(), params[k], k ? &params[0] : nullptr);
  }
  for (const auto& [name, list] : others) {
    CXR_CHECK(list->size() == params.size(), op, ": ", name, " has ", list->size(), " tensors, expected ",
              params.size(), " (one per parameter)");
    for (std::size_t k = 0; k < params.size(); ++k) {
      const std::string n = item_name(name, k);
      const std::string pn = item_name("params", k);
      check_f32_input(op, n.c_str(), (*list)[k], &params[k]);
      check_same_shape(op, pn.c_str(), params[k], n.c_str(), (*list)[k]);
    }
  }
}

void check_grad_scale(const char* op, const Tensor& grad_scale, const std::vector<Tensor>& params) {
  if (!grad_scale.defined()) return;
  check_f32_input(op, "grad_scale", grad_scale);
  CXR_CHECK(grad_scale.numel() == 1, op, ": grad_scale must have one element, found ", shape_str(grad_scale.shape()));
  if (!params.empty()) check_same_device(op, "params[0]", params[0], "grad_scale", grad_scale);
}

}  // namespace

AdamWScalars adamw_scalars(const AdamWOptions& opt, std::int64_t step) {
  const double t = static_cast<double>(step);
  const double bc1 = 1.0 - std::pow(static_cast<double>(opt.beta1), t);
  const double bc2 = 1.0 - std::pow(static_cast<double>(opt.beta2), t);
  AdamWScalars s;
  s.lr = opt.lr;
  s.beta1 = opt.beta1;
  s.beta2 = opt.beta2;
  s.eps = opt.eps;
  s.decay = static_cast<float>(1.0 - static_cast<double>(opt.lr) * static_cast<double>(opt.weight_decay));
  s.step_size = static_cast<float>(static_cast<double>(opt.lr) / bc1);
  s.bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  return s;
}

void sgd_step(std::vector<Tensor>& params, const std::vector<Tensor>& grads, std::vector<Tensor>& momentum,
              std::int64_t step, const SgdOptions& opt, const Tensor& grad_scale) {
  const char* op = "sgd_step";
  CXR_CHECK(step >= 1, op, ": step counts from 1, found ", step);
  const bool use_momentum = opt.momentum != 0.0f;
  if (use_momentum)
    check_lists(op, params, {{"grads", &grads}, {"momentum", &momentum}});
  else
    check_lists(op, params, {{"grads", &grads}});
  check_grad_scale(op, grad_scale, params);
  if (params.empty()) return;
  const bool first = step == 1;
  if (params[0].is_cpu()) {
    const float scale = grad_scale.defined() ? grad_scale.f32()[0] : 1.0f;
    for (std::size_t k = 0; k < params.size(); ++k)
      cpu::sgd_step(params[k].f32(), grads[k].f32(), use_momentum ? momentum[k].f32() : nullptr, params[k].numel(), opt,
                    first, scale);
    return;
  }
  std::vector<float*> p, buf;
  std::vector<const float*> g;
  std::vector<std::int64_t> numel;
  for (std::size_t k = 0; k < params.size(); ++k) {
    p.push_back(params[k].f32());
    g.push_back(grads[k].f32());
    buf.push_back(use_momentum ? momentum[k].f32() : nullptr);
    numel.push_back(params[k].numel());
  }
  cuda::sgd_step(p, g, buf, numel, opt, first, grad_scale.defined() ? grad_scale.f32() : nullptr);
}

void adamw_step(std::vector<Tensor>& params, const std::vector<Tensor>& grads, std::vector<Tensor>& exp_avg,
                std::vector<Tensor>& exp_avg_sq, std::int64_t step, const AdamWOptions& opt, const Tensor& grad_scale) {
  const char* op = "adamw_step";
  CXR_CHECK(step >= 1, op, ": step counts from 1, found ", step);
  check_lists(op, params, {{"grads", &grads}, {"exp_avg", &exp_avg}, {"exp_avg_sq", &exp_avg_sq}});
  check_grad_scale(op, grad_scale, params);
  if (params.empty()) return;
  const AdamWScalars s = adamw_scalars(opt, step);
  if (params[0].is_cpu()) {
    const float scale = grad_scale.defined() ? grad_scale.f32()[0] : 1.0f;
    for (std::size_t k = 0; k < params.size(); ++k)
      cpu::adamw_step(params[k].f32(), grads[k].f32(), exp_avg[k].f32(), exp_avg_sq[k].f32(), params[k].numel(), s,
                      scale);
    return;
  }
  std::vector<float*> p, m, v;
  std::vector<const float*> g;
  std::vector<std::int64_t> numel;
  for (std::size_t k = 0; k < params.size(); ++k) {
    p.push_back(params[k].f32());
    g.push_back(grads[k].f32());
    m.push_back(exp_avg[k].f32());
    v.push_back(exp_avg_sq[k].f32());
    numel.push_back(params[k].numel());
  }
  cuda::adamw_step(p, g, m, v, numel, s, grad_scale.defined() ? grad_scale.f32() : nullptr);
}

}  // namespace cxr
