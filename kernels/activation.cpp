// Tensor-level activation ops: argument checks, output allocation, device dispatch.
#include "kernels/activation.h"

namespace cxr {

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::ReLU: return "relu";
    case Activation::SiLU: return "silu";
    case Activation::Sigmoid: return "sigmoid";
    case Activation::GELU: return "gelu";
  }
  return "?";
}

Tensor activation_forward(Activation a, const Tensor& x) {
  check_f32_input(activation_name(a), "x", x);
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  if (x.is_cpu()) cpu::activation_forward(a, x.f32(), y.f32(), x.numel());
  else cuda::activation_forward(a, x.f32(), y.f32(), x.numel());
  return y;
}

Tensor activation_backward(Activation a, const Tensor& x, const Tensor& dy) {
  const char* op = activation_name(a);
  check_f32_input(op, "x", x);
  check_f32_input(op, "dy", dy, &x);
  check_same_shape(op, "x", x, "dy", dy);
  Tensor dx = Tensor::empty(x.shape(), DType::F32, x.device());
  if (x.is_cpu()) cpu::activation_backward(a, x.f32(), dy.f32(), dx.f32(), x.numel());
  else cuda::activation_backward(a, x.f32(), dy.f32(), dx.f32(), x.numel());
  return dx;
}

}  // namespace cxr
