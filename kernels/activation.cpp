// Tensor-level activation ops: argument checks, output allocation, device dispatch.
// bf16 inputs: native kernels on CUDA; on the CPU the f32 reference on the widened input.
#include "kernels/activation.h"

#include "kernels/float_tensor.h"

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
  check_float_input(activation_name(a), "x", x);
  if (x.is_cpu() && is_bf16(x)) return to_bf16(activation_forward(a, to_f32(x)));
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.is_cpu()) {
    cpu::activation_forward(a, x.f32(), y.f32(), x.numel());
    return y;
  }
  visit_float_type(x.dtype(), [&](auto e) {
    using T = decltype(e);
    cuda::activation_forward(a, x.data<T>(), y.data<T>(), x.numel());
  });
  return y;
}

Tensor activation_backward(Activation a, const Tensor& x, const Tensor& dy) {
  const char* op = activation_name(a);
  check_float_input(op, "x", x);
  check_f32_input(op, "dy", dy, &x);
  check_same_shape(op, "x", x, "dy", dy);
  if (x.is_cpu() && is_bf16(x)) return activation_backward(a, to_f32(x), dy);
  Tensor dx = Tensor::empty(x.shape(), DType::F32, x.device());
  if (x.is_cpu()) {
    cpu::activation_backward(a, x.f32(), dy.f32(), dx.f32(), x.numel());
    return dx;
  }
  visit_float_type(x.dtype(), [&](auto e) {
    using TX = decltype(e);
    cuda::activation_backward(a, x.data<TX>(), dy.f32(), dx.f32(), x.numel());
  });
  return dx;
}

}  // namespace cxr
