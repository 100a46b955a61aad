// Tensor-level residual add: argument checks, output allocation, device dispatch.
// bf16 operands: native kernels on CUDA; on the CPU the f32 add of the widened operands,
// rounded to a's dtype.
#include "kernels/add.h"

#include "kernels/float_tensor.h"

namespace cxr {

namespace {
void check_add_args(const char* op, const Tensor& a, const Tensor& b) {
  check_float_input(op, "a", a);
  check_float_input(op, "b", b, &a);
  check_same_shape(op, "a", a, "b", b);
}

// y = a + b on the device, with y in a's dtype (y may be a itself).
void add_on_device(const Tensor& a, const Tensor& b, Tensor& y) {
  visit_float_types(a.dtype(), b.dtype(), [&](auto ea, auto eb) {
    using TA = decltype(ea);
    using TB = decltype(eb);
    cuda::add(a.data<TA>(), b.data<TB>(), y.data<TA>(), a.numel());
  });
}
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  check_add_args("add", a, b);
  if (a.is_cpu() && (is_bf16(a) || is_bf16(b))) return in_dtype_of(a, add(to_f32(a), to_f32(b)));
  Tensor y = Tensor::empty(a.shape(), a.dtype(), a.device());
  if (a.is_cpu())
    cpu::add(a.f32(), b.f32(), y.f32(), a.numel());
  else
    add_on_device(a, b, y);
  return y;
}

void add_(Tensor& a, const Tensor& b) {
  check_add_args("add_", a, b);
  if (a.is_cpu() && (is_bf16(a) || is_bf16(b)))
    a.copy_(in_dtype_of(a, add(to_f32(a), to_f32(b))));
  else if (a.is_cpu())
    cpu::add(a.f32(), b.f32(), a.f32(), a.numel());
  else
    add_on_device(a, b, a);
}

std::pair<Tensor, Tensor> add_backward(const Tensor& dy) {
  check_f32_input("add_backward", "dy", dy);
  return {dy, dy};
}

}  // namespace cxr
