// The optimiser of a training run: AdamW or SGD (momentum 0.9) over a model's parameters, as
// torch.optim does them (kernels/optimizer_step.h has the math), with its state and, on a CUDA
// device, its device scalars (learning rate, step counts, bias corrections on the device, so a
// step needs no host synchronisation).
//
//   Optimizer optim(model, {.kind = OptimizerKind::adamw, .weight_decay = 1e-4});
//   auto active = optim.active();                         // trainable parameters with a gradient
//   GradNorm gn = optim.global_norm(active, grad_clip);   // one fused pass
//   optim.step(lr, active, gn.clip_coef);                 // CPU: the host-checked step
//
// On CUDA, enable_device_scalars(schedule) once; then guarded_step(...) enqueues a step that the
// device skips by itself when the step status says the loss or the norm is not finite, and the
// host confirms each step afterwards (confirm_applied). The per-parameter step counts (torch keeps
// a `step` per parameter) are the host's `steps()`; on CUDA the device keeps its own copy.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "kernels/optimizer_step.h"
#include "kernels/reduce.h"
#include "layers/module.h"

namespace cxr {

enum class OptimizerKind { adamw, sgd };
OptimizerKind parse_optimizer_kind(const std::string& name);  // "adamw" | "sgd"; UsageError otherwise

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::adamw;
  double weight_decay = 0;  // applied to the parameters whose weight_decay flag is set
};

class Optimizer {
 public:
  Optimizer(Module& model, const OptimizerConfig& config);
  ~Optimizer();
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  bool adamw() const { return config_.kind == OptimizerKind::adamw; }
  std::size_t size() const { return params_.size(); }
  const std::string& name(std::size_t i) const { return names_[i]; }
  Parameter& param(std::size_t i) const { return *params_[i]; }

  // The trainable parameters that have a gradient (indices).
  std::vector<std::size_t> active() const;
  // The trainable parameters, gradient or not (what a captured step must update).
  std::vector<std::size_t> trainable() const;
  // The global gradient norm of `active` in one fused pass on the gradients' device, with the
  // clip coefficient when grad_clip > 0 (max_norm 1 otherwise: the coefficient is unused).
  GradNorm global_norm(const std::vector<std::size_t>& active, double grad_clip) const;
  // The parameters among `active` whose gradient holds a NaN or an infinity (the error path).
  std::vector<std::string> nonfinite_gradients(const std::vector<std::size_t>& active) const;

  // CPU (host-checked) form: one step over `active` with learning rate lr; `scale`: the clip
  // coefficient (undefined: no clipping). Parameters of the same (decay, step count) share one call.
  void step(double lr, const std::vector<std::size_t>& active, const Tensor& scale);

  // ---- device form (CUDA) ----
  // Uploads the learning rate of every step of the run (the schedule) and the current counts.
  void enable_device_scalars(const std::vector<double>& lr_per_step, std::int64_t global_step);
  bool has_device_scalars() const { return device_ != nullptr; }
  // Enqueues the guarded step over `active` (capturable; no host synchronisation): marks the
  // non-finite gradients when status says so, then updates unless status' flag is 0.
  void guarded_step(const std::vector<std::size_t>& active, const Tensor& scale, const Tensor& status);
  // The host learns that a guarded step was applied: its per-parameter counts advance.
  void confirm_applied(const std::vector<std::size_t>& active);
  // The parameters that step `step` (1-based, guarded) found non-finite (synchronous).
  std::vector<std::string> nonfinite_of_step(std::int64_t step, const std::vector<std::size_t>& active) const;
  // Throws when the device's counters disagree with the host's (after a drained epoch).
  void check_device_counts(std::int64_t global_step) const;

  // ---- state ----
  const std::vector<std::int64_t>& steps() const { return steps_; }
  // Adds exp_avg / exp_avg_sq (AdamW) or momentum_buffer (SGD) under "optimizer.<param>".
  void add_state(NamedTensors& state) const;
  // Loads the state written by add_state and the per-parameter step counts; `what` names the file.
  void load_state(const SafetensorsFile& f, const std::vector<std::int64_t>& steps, const std::string& what);

 private:
  OptimizerConfig config_;
  std::vector<std::string> names_;
  std::vector<Parameter*> params_;
  std::vector<Tensor> m_, v_;          // adamw: exp_avg, exp_avg_sq; sgd: momentum (m_)
  std::vector<std::int64_t> steps_;    // per parameter
  std::unique_ptr<DeviceStepScalars> device_;
};

}  // namespace cxr
