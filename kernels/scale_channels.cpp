// Tensor-level scale_channels: argument checks, output allocation, device dispatch.
// bf16 x or s: native kernels on CUDA; on the CPU the f32 reference on the widened tensors
// (y rounded back to x's dtype).
#include "kernels/scale_channels.h"

#include "kernels/float_tensor.h"

namespace cxr {

namespace {
void check_scale_args(const char* op, const Tensor& x, const Tensor& s) {
  check_float_input(op, "x", x);
  check_float_input(op, "s", s, &x);
  check_dim(op, "x", x, 4);
  const bool ok =
      (s.dim() == 2 && s.size(0) == x.size(0) && s.size(1) == x.size(1)) ||
      (s.dim() == 4 && s.size(0) == x.size(0) && s.size(1) == x.size(1) && s.size(2) == 1 && s.size(3) == 1);
  CXR_CHECK(ok, op, ": s must have shape [", x.size(0), ", ", x.size(1), "] or [", x.size(0), ", ", x.size(1),
            ", 1, 1] for x of shape ", shape_str(x.shape()), ", found ", shape_str(s.shape()));
}
}  // namespace

Tensor scale_channels(const Tensor& x, const Tensor& s) {
  check_scale_args("scale_channels", x, s);
  if (x.is_cpu() && (is_bf16(x) || is_bf16(s))) return in_dtype_of(x, scale_channels(to_f32(x), to_f32(s)));
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  const std::int64_t planes = x.size(0) * x.size(1), hw = x.size(2) * x.size(3);
  if (x.is_cpu()) {
    cpu::scale_channels_forward(x.f32(), s.f32(), y.f32(), planes, hw);
    return y;
  }
  visit_float_types(x.dtype(), s.dtype(), [&](auto ex, auto es) {
    using TX = decltype(ex);
    using TS = decltype(es);
    cuda::scale_channels_forward(x.data<TX>(), s.data<TS>(), y.data<TX>(), planes, hw);
  });
  return y;
}

ScaleChannelsGrads scale_channels_backward(const Tensor& dy, const Tensor& x, const Tensor& s) {
  const char* op = "scale_channels_backward";
  check_scale_args(op, x, s);
  check_f32_input(op, "dy", dy, &x);
  check_same_shape(op, "dy", dy, "x", x);
  if (x.is_cpu() && (is_bf16(x) || is_bf16(s))) return scale_channels_backward(dy, to_f32(x), to_f32(s));
  ScaleChannelsGrads g{Tensor::empty(x.shape(), DType::F32, x.device()),
                       Tensor::empty(s.shape(), DType::F32, x.device())};
  const std::int64_t planes = x.size(0) * x.size(1), hw = x.size(2) * x.size(3);
  if (x.is_cpu()) {
    cpu::scale_channels_backward(dy.f32(), x.f32(), s.f32(), g.dx.f32(), g.ds.f32(), planes, hw);
    return g;
  }
  visit_float_types(x.dtype(), s.dtype(), [&](auto ex, auto es) {
    using TX = decltype(ex);
    using TS = decltype(es);
    cuda::scale_channels_backward(dy.f32(), x.data<TX>(), s.data<TS>(), g.dx.f32(), g.ds.f32(), planes, hw);
  });
  return g;
}

}  // namespace cxr
