// Tensor-level optimiser steps: argument checks, the per-step host scalars, device dispatch.
#include "kernels/optimizer_step.h"

#include <cmath>
#include <cstring>
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

double adamw_bias_correction1(float beta1, std::int64_t step) {
  return 1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(step));
}

AdamWScalars adamw_scalars(const AdamWOptions& opt, std::int64_t step) {
  const double t = static_cast<double>(step);
  const double bc1 = adamw_bias_correction1(opt.beta1, step);
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

// ---- the guarded step on the device -----------------------------------------------------------

namespace {

std::vector<float*> f32_ptrs(std::vector<Tensor>& ts) {
  std::vector<float*> r;
  for (Tensor& t : ts) r.push_back(t.f32());
  return r;
}
std::vector<const float*> f32_cptrs(const std::vector<Tensor>& ts) {
  std::vector<const float*> r;
  for (const Tensor& t : ts) r.push_back(t.f32());
  return r;
}
std::vector<std::int64_t> numels(const std::vector<Tensor>& ts) {
  std::vector<std::int64_t> r;
  for (const Tensor& t : ts) r.push_back(t.numel());
  return r;
}
Tensor i32_on(const std::vector<std::int32_t>& v, Device device) {
  Tensor h = Tensor::empty({static_cast<std::int64_t>(std::max<std::size_t>(v.size(), 1))}, DType::I32);
  std::fill_n(h.data<std::int32_t>(), h.numel(), 0);
  if (!v.empty()) std::memcpy(h.data<std::int32_t>(), v.data(), v.size() * sizeof(std::int32_t));
  return h.to(device);
}
void check_status(const char* op, const Tensor& status) {
  CXR_CHECK(status.defined() && status.dtype() == DType::F32 && status.numel() == 4 && status.is_contiguous(), op,
            ": status must be the (4) f32 tensor of make_step_status()");
}
// Byte-compatible 4-byte tensors, as float pointers (the copy kernels only move bits).
void check_copy_lists(const char* op, const std::vector<Tensor>& dst, const std::vector<Tensor>& src) {
  CXR_CHECK(dst.size() == src.size(), op, ": ", dst.size(), " destinations for ", src.size(), " sources");
  for (std::size_t k = 0; k < dst.size(); ++k) {
    CXR_CHECK(dst[k].dtype() == src[k].dtype() && dtype_size(dst[k].dtype()) == 4 && dst[k].numel() == src[k].numel() &&
                  dst[k].is_contiguous() && src[k].is_contiguous() && dst[k].device() == src[k].device(),
              op, ": tensor ", k, ": expected two contiguous 4-byte tensors of one dtype, size and device");
  }
}
std::vector<float*> raw_f32(const std::vector<Tensor>& ts) {
  std::vector<float*> r;
  for (const Tensor& t : ts) r.push_back(static_cast<float*>(const_cast<Tensor&>(t).raw_data()));
  return r;
}

}  // namespace

Tensor make_step_status(Device device) { return Tensor::zeros({4}, DType::F32, device); }

void step_status_(Tensor& status, const Tensor& loss, const Tensor& norm, bool latch) {
  check_status("step_status_", status);
  check_f32_input("step_status_", "loss", loss);
  CXR_CHECK(loss.numel() == 1, "step_status_: loss must have one element");
  if (norm.defined()) CXR_CHECK(norm.numel() == 1 && norm.dtype() == DType::F32, "step_status_: norm must be (1) f32");
  if (status.is_cpu()) {
    const float l = loss.f32()[0], n = norm.defined() ? norm.f32()[0] : 0.f;
    float* s = status.f32();
    s[0] = l;
    s[1] = n;
    const bool ok = std::isfinite(l) && std::isfinite(n), stopped = latch && s[3] != 0.f;
    s[2] = ok && !stopped ? 1.f : 0.f;
    s[3] = latch && (stopped || !ok) ? 1.f : 0.f;
    return;
  }
  cuda::step_status(status.f32(), loss.f32(), norm.defined() ? norm.f32() : nullptr, latch);
}

void copy_tensors_(std::vector<Tensor>& dst, const std::vector<Tensor>& src) {
  check_copy_lists("copy_tensors_", dst, src);
  if (dst.empty()) return;
  if (dst[0].is_cpu()) {
    for (std::size_t k = 0; k < dst.size(); ++k) std::memcpy(dst[k].raw_data(), src[k].raw_data(), dst[k].nbytes());
    return;
  }
  cuda::copy_tensors(raw_f32(dst), raw_f32(src), numels(dst), nullptr);
}

void restore_if_skipped_(std::vector<Tensor>& dst, const std::vector<Tensor>& src, const Tensor& status) {
  check_copy_lists("restore_if_skipped_", dst, src);
  check_status("restore_if_skipped_", status);
  if (dst.empty()) return;
  if (dst[0].is_cpu()) {
    if (status.f32()[2] == 0.f) copy_tensors_(dst, src);
    return;
  }
  cuda::copy_tensors(raw_f32(dst), raw_f32(src), numels(dst), status.f32());
}

DeviceStepScalars::DeviceStepScalars(const Config& config, std::int64_t num_params, Device device)
    : config_(config), device_(device), num_params_(num_params) {
  CXR_CHECK(device == Device::CUDA, "DeviceStepScalars: the device-scalar step is for the CUDA device");
  CXR_CHECK(num_params >= 0 && config.max_count >= 0, "DeviceStepScalars: bad sizes");
  const std::size_t lr_len = std::max<std::size_t>(1, config.lr_per_step.size());
  std::vector<float> lr(lr_len, 0.f), decay(lr_len, 1.f);
  for (std::size_t s = 0; s < config.lr_per_step.size(); ++s) {
    AdamWOptions o = config.adam;
    o.lr = static_cast<float>(config.lr_per_step[s]);  // the host path's float(lr)
    lr[s] = o.lr;
    decay[s] = adamw_scalars(o, 1).decay;
  }
  const std::size_t count_len = static_cast<std::size_t>(config.max_count) + 2;  // counts 1..max_count+1
  std::vector<double> bc1(count_len, 1.0);
  std::vector<float> bc2(count_len, 1.f);
  for (std::size_t c = 1; c < count_len; ++c) {
    bc1[c] = adamw_bias_correction1(config.adam.beta1, static_cast<std::int64_t>(c));
    bc2[c] = adamw_scalars(config.adam, static_cast<std::int64_t>(c)).bc2_sqrt;
  }
  bc1[0] = bc1[1];
  bc2[0] = bc2[1];
  std::vector<float> bc1_bits(count_len * 2);
  std::memcpy(bc1_bits.data(), bc1.data(), count_len * sizeof(double));
  lr_ = Tensor::from_vector(lr, {static_cast<std::int64_t>(lr_len)}).to(device);
  decay_ = Tensor::from_vector(decay, {static_cast<std::int64_t>(lr_len)}).to(device);
  bc1_ = Tensor::from_vector(bc1_bits, {static_cast<std::int64_t>(count_len * 2)}).to(device);
  bc2_sqrt_ = Tensor::from_vector(bc2, {static_cast<std::int64_t>(count_len)}).to(device);
  global_step_ = i32_on({0}, device);
  counts_ = i32_on(std::vector<std::int32_t>(static_cast<std::size_t>(num_params), 0), device);
  active_dev_ = i32_on(std::vector<std::int32_t>(static_cast<std::size_t>(2 * num_params), 0), device);
  scalars_ = Tensor::zeros({std::max<std::int64_t>(1, 4 * num_params)}, DType::F32, device);
  marks_ = i32_on(std::vector<std::int32_t>(static_cast<std::size_t>(2 * num_params), 0), device);
}

DeviceStepScalars::~DeviceStepScalars() = default;

void DeviceStepScalars::set_state(std::int64_t global_step, const std::vector<std::int64_t>& counts) {
  CXR_CHECK(static_cast<std::int64_t>(counts.size()) == num_params_, "DeviceStepScalars::set_state: ", counts.size(),
            " counts for ", num_params_, " parameters");
  std::vector<std::int32_t> c(counts.begin(), counts.end());
  global_step_.copy_(i32_on({static_cast<std::int32_t>(global_step)}, Device::CPU));
  if (!c.empty()) counts_.copy_(i32_on(c, Device::CPU));
}

void DeviceStepScalars::set_active(const std::vector<int>& index, const std::vector<bool>& decay) {
  CXR_CHECK(index.size() == decay.size() && static_cast<std::int64_t>(index.size()) <= num_params_,
            "DeviceStepScalars::set_active: bad lists");
  if (index == active_ && decay == active_decay_) return;
  std::vector<std::int32_t> v(static_cast<std::size_t>(2 * num_params_), 0);
  for (std::size_t k = 0; k < index.size(); ++k) {
    CXR_CHECK(index[k] >= 0 && index[k] < num_params_, "DeviceStepScalars::set_active: index out of range");
    v[k] = index[k];
    v[static_cast<std::size_t>(num_params_) + k] = decay[k] ? 1 : 0;
  }
  if (!v.empty()) active_dev_.copy_(i32_on(v, Device::CPU));
  active_ = index;
  active_decay_ = decay;
  num_active_ = static_cast<std::int64_t>(index.size());
}

std::int64_t DeviceStepScalars::global_step() const { return global_step_.cpu().data<std::int32_t>()[0]; }

std::vector<std::int64_t> DeviceStepScalars::counts() const {
  const Tensor h = counts_.cpu();
  return std::vector<std::int64_t>(h.data<std::int32_t>(), h.data<std::int32_t>() + num_params_);
}

void DeviceStepScalars::mark_nonfinite(const std::vector<Tensor>& grads, const Tensor& status) {
  check_status("mark_nonfinite", status);
  CXR_CHECK(static_cast<std::int64_t>(grads.size()) == num_active_, "mark_nonfinite: ", grads.size(),
            " gradients for ", num_active_, " active parameters");
  if (grads.empty()) return;
  cuda::mark_nonfinite(f32_cptrs(grads), numels(grads), status.f32(), global_step_.data<std::int32_t>(),
                       marks_.data<std::int32_t>());
}

std::vector<int> DeviceStepScalars::nonfinite_of_step(std::int64_t step) const {
  const Tensor h = marks_.cpu();
  const std::int32_t* m = h.data<std::int32_t>() + ((step - 1) & 1) * num_params_;
  std::vector<int> r;
  for (std::int64_t k = 0; k < num_active_; ++k)
    if (m[k] == step) r.push_back(static_cast<int>(k));
  return r;
}

void DeviceStepScalars::prepare(const Tensor& status) {
  cuda::StepTables t{};
  t.lr = lr_.f32();
  t.decay = decay_.f32();
  t.bc1 = reinterpret_cast<const double*>(bc1_.f32());
  t.bc2_sqrt = bc2_sqrt_.f32();
  t.lr_len = lr_.numel();
  t.count_len = bc2_sqrt_.numel();
  t.sgd_wd = config_.sgd.weight_decay;
  t.global_step = global_step_.data<std::int32_t>();
  t.counts = counts_.data<std::int32_t>();
  t.active = active_dev_.data<std::int32_t>();
  t.active_decay = active_dev_.data<std::int32_t>() + num_params_;
  t.num_active = static_cast<int>(num_active_);
  t.scalars = reinterpret_cast<cuda::StepScalars*>(scalars_.f32());
  cuda::step_prepare(t, config_.adamw, status.f32());
}

void DeviceStepScalars::adamw_step(std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                                   std::vector<Tensor>& exp_avg, std::vector<Tensor>& exp_avg_sq,
                                   const Tensor& grad_scale, const Tensor& status) {
  const char* op = "DeviceStepScalars::adamw_step";
  CXR_CHECK(config_.adamw, op, ": configured for SGD");
  check_status(op, status);
  CXR_CHECK(static_cast<std::int64_t>(params.size()) == num_active_, op, ": ", params.size(), " parameters for ",
            num_active_, " active ones (set_active)");
  check_lists(op, params, {{"grads", &grads}, {"exp_avg", &exp_avg}, {"exp_avg_sq", &exp_avg_sq}});
  check_grad_scale(op, grad_scale, params);
  prepare(status);  // also when empty: the global step advances
  if (params.empty()) return;
  cuda::adamw_step_guarded(f32_ptrs(params), f32_cptrs(grads), f32_ptrs(exp_avg), f32_ptrs(exp_avg_sq),
                           numels(params), config_.adam, reinterpret_cast<const cuda::StepScalars*>(scalars_.f32()),
                           grad_scale.defined() ? grad_scale.f32() : nullptr, status.f32());
}

void DeviceStepScalars::sgd_step(std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                                 std::vector<Tensor>& momentum, const Tensor& grad_scale, const Tensor& status) {
  const char* op = "DeviceStepScalars::sgd_step";
  CXR_CHECK(!config_.adamw, op, ": configured for AdamW");
  check_status(op, status);
  CXR_CHECK(static_cast<std::int64_t>(params.size()) == num_active_, op, ": ", params.size(), " parameters for ",
            num_active_, " active ones (set_active)");
  const bool use_momentum = config_.sgd.momentum != 0.0f;
  if (use_momentum)
    check_lists(op, params, {{"grads", &grads}, {"momentum", &momentum}});
  else
    check_lists(op, params, {{"grads", &grads}});
  check_grad_scale(op, grad_scale, params);
  prepare(status);
  if (params.empty()) return;
  std::vector<float*> buf;
  for (std::size_t k = 0; k < params.size(); ++k) buf.push_back(use_momentum ? momentum[k].f32() : nullptr);
  cuda::sgd_step_guarded(f32_ptrs(params), f32_cptrs(grads), buf, numels(params), config_.sgd,
                         reinterpret_cast<const cuda::StepScalars*>(scalars_.f32()),
                         grad_scale.defined() ? grad_scale.f32() : nullptr, status.f32());
}

}  // namespace cxr
