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
#pragma once

#include <cstdint>
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
}  // namespace cuda

}  // namespace cxr
