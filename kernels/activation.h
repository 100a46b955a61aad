// Pointwise activations: ReLU, SiLU, sigmoid, GELU (exact, erf form), and their gradients.
//
//   y = f(x)                      dx = dy * f'(x)
//   relu(x)    = max(x, 0)        relu'(x)    = [x > 0]
//   sigmoid(x) = 1 / (1 + e^-x)   sigmoid'(x) = s (1 - s)
//   silu(x)    = x sigmoid(x)     silu'(x)    = s (1 + x (1 - s))
//   gelu(x)    = x Phi(x)         gelu'(x)    = Phi(x) + x phi(x)
// Mixed precision: x may be bf16; then y is bf16 (f(x) in f32, rounded once). Gradients are
// f32: dy f32, dx f32, whatever the dtype of the saved x.
#pragma once

#include <cmath>
#include <cstdint>

#include "tensor/host_device.h"
#include "tensor/tensor.h"

namespace cxr {

enum class Activation { ReLU, SiLU, Sigmoid, GELU };
const char* activation_name(Activation a);

// x: any shape, f32 or bf16, contiguous. Returns y with x's shape, dtype and device.
Tensor activation_forward(Activation a, const Tensor& x);
// dx (f32) from the forward input x (f32 or bf16; ReLU may be given its output instead, as
// relu'(x) = [relu(x) > 0]) and the output gradient dy (f32).
Tensor activation_backward(Activation a, const Tensor& x, const Tensor& dy);

// The scalar math, shared by the CPU reference and the CUDA kernels.
template <typename T>
CXR_HD T activation_value(Activation a, T x) {
  using std::erf;
  using std::exp;
  switch (a) {
    case Activation::ReLU: return x > T(0) ? x : T(0);
    case Activation::Sigmoid: return T(1) / (T(1) + exp(-x));
    case Activation::SiLU: return x / (T(1) + exp(-x));
    case Activation::GELU: return T(0.5) * x * (T(1) + erf(x * T(0.70710678118654752440)));
  }
  return x;
}

template <typename T>
CXR_HD T activation_derivative(Activation a, T x) {
  using std::erf;
  using std::exp;
  switch (a) {
    case Activation::ReLU: return x > T(0) ? T(1) : T(0);
    case Activation::Sigmoid: {
      const T s = T(1) / (T(1) + exp(-x));
      return s * (T(1) - s);
    }
    case Activation::SiLU: {
      const T s = T(1) / (T(1) + exp(-x));
      return s * (T(1) + x * (T(1) - s));
    }
    case Activation::GELU: {
      const T cdf = T(0.5) * (T(1) + erf(x * T(0.70710678118654752440)));
      const T pdf = T(0.39894228040143267794) * exp(T(-0.5) * x * x);
      return cdf + x * pdf;
    }
  }
  return T(1);
}

namespace cpu {
template <typename T> void activation_forward(Activation a, const T* x, T* y, std::int64_t n);
template <typename T> void activation_backward(Activation a, const T* x, const T* dy, T* dx, std::int64_t n);
}  // namespace cpu

// T, TX: float (f32) or std::uint16_t (bf16 bits); the math is f32 (kernels/common/load_store.h).
namespace cuda {
template <typename T>
void activation_forward(Activation a, const T* x, T* y, std::int64_t n);
template <typename TX>
void activation_backward(Activation a, const TX* x, const float* dy, float* dx, std::int64_t n);
}  // namespace cuda

}  // namespace cxr
