// CPU reference of the activations: y[i] = f(x[i]), dx[i] = dy[i] f'(x[i]).
// bf16 tensors never reach these loops: kernels/activation.cpp widens them to f32 (exact) and rounds
// the result to bf16 once, which defines the bf16 op that the CUDA kernels must match.
#include "kernels/activation.h"

namespace cxr::cpu {

namespace {

// The activation is a template parameter so that each loop is branch-free and vectorisable.
template <Activation A, typename T>
void forward_loop(const T* x, T* y, std::int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > (1 << 16))
  for (std::int64_t i = 0; i < n; ++i) y[i] = activation_value(A, x[i]);
}

template <Activation A, typename T>
void backward_loop(const T* x, const T* dy, T* dx, std::int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > (1 << 16))
  for (std::int64_t i = 0; i < n; ++i) dx[i] = dy[i] * activation_derivative(A, x[i]);
}

}  // namespace

template <typename T>
void activation_forward(Activation a, const T* x, T* y, std::int64_t n) {
  switch (a) {
    case Activation::ReLU: return forward_loop<Activation::ReLU>(x, y, n);
    case Activation::SiLU: return forward_loop<Activation::SiLU>(x, y, n);
    case Activation::Sigmoid: return forward_loop<Activation::Sigmoid>(x, y, n);
    case Activation::GELU: return forward_loop<Activation::GELU>(x, y, n);
  }
}

template <typename T>
void activation_backward(Activation a, const T* x, const T* dy, T* dx, std::int64_t n) {
  switch (a) {
    case Activation::ReLU: return backward_loop<Activation::ReLU>(x, dy, dx, n);
    case Activation::SiLU: return backward_loop<Activation::SiLU>(x, dy, dx, n);
    case Activation::Sigmoid: return backward_loop<Activation::Sigmoid>(x, dy, dx, n);
    case Activation::GELU: return backward_loop<Activation::GELU>(x, dy, dx, n);
  }
}

template void activation_forward<float>(Activation, const float*, float*, std::int64_t);
template void activation_forward<double>(Activation, const double*, double*, std::int64_t);
template void activation_backward<float>(Activation, const float*, const float*, float*, std::int64_t);
template void activation_backward<double>(Activation, const double*, const double*, double*, std::int64_t);

}  // namespace cxr::cpu
