// Tensor-level casts: type checks, output allocation, device dispatch.
#include "kernels/cast.h"

namespace cxr {

Tensor to_bf16(const Tensor& x_in) {
  if (x_in.dtype() == DType::BF16) return x_in;
  CXR_CHECK(x_in.dtype() == DType::F32, "to_bf16: expected an f32 tensor, found ", dtype_name(x_in.dtype()), " ",
            shape_str(x_in.shape()));
  const Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(x.shape(), DType::BF16, x.device());
  if (x.is_cpu()) cpu::f32_to_bf16(x.f32(), y.data<std::uint16_t>(), x.numel());
  else cuda::f32_to_bf16(x.f32(), y.data<std::uint16_t>(), x.numel());
  return y;
}

Tensor to_f32(const Tensor& x_in) {
  if (x_in.dtype() == DType::F32) return x_in;
  CXR_CHECK(x_in.dtype() == DType::BF16, "to_f32: expected a bf16 tensor, found ", dtype_name(x_in.dtype()), " ",
            shape_str(x_in.shape()));
  const Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  if (x.is_cpu()) cpu::bf16_to_f32(x.data<std::uint16_t>(), y.f32(), x.numel());
  else cuda::bf16_to_f32(x.data<std::uint16_t>(), y.f32(), x.numel());
  return y;
}

}  // namespace cxr
