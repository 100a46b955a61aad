// Optimiser steps over a list of parameters, exactly as torch.optim does them (f32).
//
// SGD (torch.optim.SGD), per element, g = grad * grad_scale:
//   d  = g + weight_decay * p                       (coupled L2 weight decay)
//   if momentum != 0:
//     buf = d                                        on the first step (the buffer is created)
//     buf = momentum * buf + (1 - dampening) * d     afterwards
//     d   = nesterov ? d + momentum * buf : buf
//   p  = p - lr * d
// AdamW (torch.optim.AdamW, amsgrad = False), per element, step t >= 1:
//   p   = p * (1 - lr * weight_decay)                (decoupled weight decay)
//   m   = beta1 * m + (1 - beta1) * g
//   v   = beta2 * v + (1 - beta2) * g²
//   p   = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// grad_scale: an optional one-element device (or CPU) tensor multiplying every gradient, e.g.
// the clip coefficient of grad_norm() (kernels/reduce.h); undefined = 1. It is read on the
// device, so clipping needs no host synchronisation.
// CUDA: ONE multi-tensor launch per step updates every parameter (kernels/cuda/multi_tensor.cuh).
//
// DeviceStepScalars (below) is the form of the same steps that a training loop without host
// synchronisation uses (issue 8): the learning rate, the bias corrections and the step counts
// live on the device, the step is skipped on the device when a status flag says the loss or
// the gradient norm is not finite, and every launch has the same arguments at every step.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "tensor/tensor.h"

namespace cxr {

struct SgdOptions {
  float lr = 0.01f;
  float momentum = 0.0f;
  float dampening = 0.0f;
  float weight_decay = 0.0f;
  bool nesterov = false;
};

struct AdamWOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 1e-2f;
};

// params[k], grads[k], momentum[k]: the same shape, f32, contiguous, one device. `step` counts
// from 1; on step 1 the momentum buffers are initialised (their old content is ignored), as
// torch does when it creates them. With momentum == 0 the buffers are not touched (may be empty).
void sgd_step(std::vector<Tensor>& params, const std::vector<Tensor>& grads, std::vector<Tensor>& momentum,
              std::int64_t step, const SgdOptions& opt, const Tensor& grad_scale = Tensor());

// exp_avg, exp_avg_sq: zeros before step 1 (torch's initial state). `step` counts from 1.
void adamw_step(std::vector<Tensor>& params, const std::vector<Tensor>& grads, std::vector<Tensor>& exp_avg,
                std::vector<Tensor>& exp_avg_sq, std::int64_t step, const AdamWOptions& opt,
                const Tensor& grad_scale = Tensor());

// Per-step scalars derived on the host (in double, rounded once to f32).
struct AdamWScalars {
  float lr, beta1, beta2, eps;
  float decay;      // 1 - lr * weight_decay
  float step_size;  // lr / (1 - beta1^t)
  float bc2_sqrt;   // sqrt(1 - beta2^t)
};
AdamWScalars adamw_scalars(const AdamWOptions& opt, std::int64_t step);
// 1 - beta1^step in double: the denominator of step_size (shared by both forms of the step).
double adamw_bias_correction1(float beta1, std::int64_t step);

// ---- the guarded step on the device (no host synchronisation) ----------------------------------
// The step status: a (4) f32 tensor [loss, gradient norm, flag, latch]; flag = 1 when both
// the loss and the norm are finite (the step is applied), else 0. One copy of it to pinned
// memory tells the host everything about a step.
Tensor make_step_status(Device device);  // zeros
// status = [loss[0], norm[0] (0 if undefined), flag, latch], one launch. latch = true: once a
// step was not finite, every later step gets flag 0 too (status[3] remembers it), so that
// the steps a device runs after a bad one, before the host has seen it, change nothing.
void step_status_(Tensor& status, const Tensor& loss, const Tensor& norm, bool latch = false);
// One launch copying src[k] into dst[k] (same byte sizes, any 4-byte dtype) for every k.
void copy_tensors_(std::vector<Tensor>& dst, const std::vector<Tensor>& src);
// The same, but only when status says the step was skipped (flag 0): restores e.g. the
// batch-norm running statistics from a copy taken before the forward pass.
void restore_if_skipped_(std::vector<Tensor>& dst, const std::vector<Tensor>& src, const Tensor& status);

// The step-dependent scalars of AdamW / SGD on the device:
//   lr[s]          the learning rate of 0-based global step s (the schedule, uploaded once);
//   global step    a device counter, +1 per step whether applied or not (the schedule follows
//                  the data, as on the host path);
//   counts[i]      per parameter: the optimiser steps applied, +1 only when the flag is 1, so
//                  a skipped step leaves the bias corrections where they were (torch's
//                  per-parameter `step` of an update that never happened);
// and per step, on the device: step_size = float(double(lr) / (1 - beta1^count)) with the
// host's table of 1 - beta1^c, sqrt(1 - beta2^c) and 1 - lr * wd, so the result is bit-identical
// to adamw_step()/sgd_step() with the host's scalars. Tables cover max_count steps (more are
// clamped to the last entry); the learning-rate table is the schedule's length.
class DeviceStepScalars {
 public:
  struct Config {
    bool adamw = true;
    AdamWOptions adam;  // lr unused (the table); weight_decay for parameters that decay
    SgdOptions sgd;     // lr unused (the table); weight_decay for parameters that decay
    std::vector<double> lr_per_step;
    std::int64_t max_count = 0;
  };
  DeviceStepScalars(const Config& config, std::int64_t num_params, Device device);
  ~DeviceStepScalars();
  DeviceStepScalars(const DeviceStepScalars&) = delete;
  DeviceStepScalars& operator=(const DeviceStepScalars&) = delete;

  // Synchronous uploads, outside a step: the global step (steps done) and per-parameter counts.
  void set_state(std::int64_t global_step, const std::vector<std::int64_t>& counts);
  // The parameters the next steps update (indices into the count list) and whether each
  // decays; uploaded (synchronously) only when different from the last call.
  void set_active(const std::vector<int>& index, const std::vector<bool>& decay);
  // Reads the device counters back (synchronous; for checks and checkpoints).
  std::int64_t global_step() const;
  std::vector<std::int64_t> counts() const;

  // When status says skipped: marks in a device table which of `grads` (the active list)
  // hold a non-finite value, under the 1-based step id global_step + 1 (two slots, by
  // parity, so the marks of step t survive step t + 1). Early exit when the flag is 1.
  void mark_nonfinite(const std::vector<Tensor>& grads, const Tensor& status);
  // The active positions that step `step` (1-based) marked. Synchronous (the error path).
  std::vector<int> nonfinite_of_step(std::int64_t step) const;

  // One guarded step: a one-block kernel advances the counters and writes the per-tensor
  // scalars, then one multi-tensor launch updates params/states unless the flag is 0.
  // grad_scale: undefined or a (1) device tensor (the clip coefficient).
  void adamw_step(std::vector<Tensor>& params, const std::vector<Tensor>& grads, std::vector<Tensor>& exp_avg,
                  std::vector<Tensor>& exp_avg_sq, const Tensor& grad_scale, const Tensor& status);
  void sgd_step(std::vector<Tensor>& params, const std::vector<Tensor>& grads, std::vector<Tensor>& momentum,
                const Tensor& grad_scale, const Tensor& status);

 private:
  void prepare(const Tensor& status);
  Config config_;
  Device device_;
  std::int64_t num_params_ = 0, num_active_ = 0;
  std::vector<int> active_;
  std::vector<bool> active_decay_;
  Tensor lr_, decay_, bc1_, bc2_sqrt_;  // tables (bc1_: doubles in f32 pairs)
  Tensor global_step_, counts_, active_dev_, scalars_, marks_;
};

namespace cpu {
template <typename T>
void sgd_step(T* p, const T* g, T* buf, std::int64_t n, const SgdOptions& opt, bool first_step, T grad_scale);
template <typename T>
void adamw_step(T* p, const T* g, T* m, T* v, std::int64_t n, const AdamWScalars& s, T grad_scale);
}  // namespace cpu

namespace cuda {
// One launch over all tensors. grad_scale: device pointer or nullptr (= 1). buf may hold
// nullptrs when momentum == 0.
void sgd_step(const std::vector<float*>& p, const std::vector<const float*>& g, const std::vector<float*>& buf,
              const std::vector<std::int64_t>& numel, const SgdOptions& opt, bool first_step, const float* grad_scale);
void adamw_step(const std::vector<float*>& p, const std::vector<const float*>& g, const std::vector<float*>& m,
                const std::vector<float*>& v, const std::vector<std::int64_t>& numel, const AdamWScalars& s,
                const float* grad_scale);

// ---- the guarded device-scalar forms (DeviceStepScalars) ----
// Per active tensor k: adamw {step_size, decay, bc2_sqrt, -}; sgd {lr, weight_decay, first, -}.
struct StepScalars {
  float a, b, c, d;
};
struct StepTables {
  const float* lr;            // (lr_len)
  const float* decay;         // (lr_len): 1 - lr * wd (adamw)
  const double* bc1;          // (count_len): 1 - beta1^c
  const float* bc2_sqrt;      // (count_len)
  std::int64_t lr_len, count_len;
  float sgd_wd;               // sgd: weight decay of decaying parameters
  int* global_step;           // (1)
  int* counts;                // (num_params)
  const int* active;          // (num_active): parameter index of active position k
  const int* active_decay;    // (num_active): 0/1
  int num_active;
  StepScalars* scalars;       // (num_active)
};
void step_status(float* status, const float* loss, const float* norm, bool latch);
void copy_tensors(const std::vector<float*>& dst, const std::vector<float*>& src,
                  const std::vector<std::int64_t>& numel, const float* status);
void mark_nonfinite(const std::vector<const float*>& g, const std::vector<std::int64_t>& numel, const float* status,
                    const int* global_step, int* marks);
void step_prepare(const StepTables& t, bool adamw, const float* status);
void adamw_step_guarded(const std::vector<float*>& p, const std::vector<const float*>& g, const std::vector<float*>& m,
                        const std::vector<float*>& v, const std::vector<std::int64_t>& numel, const AdamWOptions& o,
                        const StepScalars* scalars, const float* grad_scale, const float* status);
void sgd_step_guarded(const std::vector<float*>& p, const std::vector<const float*>& g,
                      const std::vector<float*>& buf, const std::vector<std::int64_t>& numel, const SgdOptions& o,
                      const StepScalars* scalars, const float* grad_scale, const float* status);
}  // namespace cuda

}  // namespace cxr
