// Tensor-level residual add: argument checks, output allocation, device dispatch.
#include "kernels/add.h"

namespace cxr {

namespace {
void check_add_args(const char* op, const Tensor& a, const Tensor& b) {
  check_f32_input(op, "a", a);
  check_f32_input(op, "b", b, &a);
  check_same_shape(op, "a", a, "b", b);
}
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  check_add_args("add", a, b);
  Tensor y = Tensor::empty(a.shape(), DType::F32, a.device());
  if (a.is_cpu())
    cpu::add(a.f32(), b.f32(), y.f32(), a.numel());
  else
    cuda::add(a.f32(), b.f32(), y.f32(), a.numel());
  return y;
}

void add_(Tensor& a, const Tensor& b) {
  check_add_args("add_", a, b);
  if (a.is_cpu())
    cpu::add(a.f32(), b.f32(), a.f32(), a.numel());
  else
    cuda::add(a.f32(), b.f32(), a.f32(), a.numel());
}

std::pair<Tensor, Tensor> add_backward(const Tensor& dy) {
  check_f32_input("add_backward", "dy", dy);
  return {dy, dy};
}

}  // namespace cxr
