// CPU reference of the activations: y[i] = f(x[i]), dx[i] = dy[i] f'(x[i]).
#include "kernels/activation.h"

namespace cxr::cpu {

template <typename T>
void activation_forward(Activation a, const T* x, T* y, std::int64_t n) {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (std::int64_t i = 0; i < n; ++i) y[i] = activation_value(a, x[i]);
}

template <typename T>
void activation_backward(Activation a, const T* x, const T* dy, T* dx, std::int64_t n) {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (std::int64_t i = 0; i < n; ++i) dx[i] = dy[i] * activation_derivative(a, x[i]);
}

template void activation_forward<float>(Activation, const float*, float*, std::int64_t);
template void activation_forward<double>(Activation, const double*, double*, std::int64_t);
template void activation_backward<float>(Activation, const float*, const float*, float*, std::int64_t);
template void activation_backward<double>(Activation, const double*, const double*, double*, std::int64_t);

}  // namespace cxr::cpu
