// CPU reference of the optimiser steps (math in kernels/optimizer_step.h), one tensor at a
// time, in the order torch.optim applies the operations (so f32 rounding matches).
#include "kernels/optimizer_step.h"

#include <cmath>

namespace cxr::cpu {

template <typename T>
void sgd_step(T* p, const T* g, T* buf, std::int64_t n, const SgdOptions& opt, bool first_step, T grad_scale) {
  const T lr = opt.lr, mu = opt.momentum, wd = opt.weight_decay, damp = T(1) - T(opt.dampening);
#pragma omp parallel for simd schedule(static) if (n > (1 << 16))
  for (std::int64_t i = 0; i < n; ++i) {
    T d = g[i] * grad_scale;
    if (wd != T(0)) d = d + wd * p[i];
    if (mu != T(0)) {
      buf[i] = first_step ? d : mu * buf[i] + damp * d;
      d = opt.nesterov ? d + mu * buf[i] : buf[i];
    }
    p[i] = p[i] - lr * d;
  }
}

template <typename T>
void adamw_step(T* p, const T* g, T* m, T* v, std::int64_t n, const AdamWScalars& s, T grad_scale) {
  using std::sqrt;
  const T b1 = s.beta1, b2 = s.beta2;
#pragma omp parallel for simd schedule(static) if (n > (1 << 16))
  for (std::int64_t i = 0; i < n; ++i) {
    const T gi = g[i] * grad_scale;
    p[i] = p[i] * T(s.decay);
    m[i] = b1 * m[i] + (T(1) - b1) * gi;
    v[i] = b2 * v[i] + (T(1) - b2) * gi * gi;
    const T denom = sqrt(v[i]) / T(s.bc2_sqrt) + T(s.eps);
    p[i] = p[i] - T(s.step_size) * m[i] / denom;
  }
}

template void sgd_step<float>(float*, const float*, float*, std::int64_t, const SgdOptions&, bool, float);
template void sgd_step<double>(double*, const double*, double*, std::int64_t, const SgdOptions&, bool, double);
template void adamw_step<float>(float*, const float*, float*, float*, std::int64_t, const AdamWScalars&, float);
template void adamw_step<double>(double*, const double*, double*, double*, std::int64_t, const AdamWScalars&, double);

}  // namespace cxr::cpu
