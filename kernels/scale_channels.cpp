// Tensor-level scale_channels: argument checks, output allocation, device dispatch.
#include "kernels/scale_channels.h"

namespace cxr {

namespace {
void check_scale_args(const char* op, const Tensor& x, const Tensor& s) {
  check_f32_input(op, "x", x);
  check_f32_input(op, "s", s, &x);
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
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  const std::int64_t planes = x.size(0) * x.size(1), hw = x.size(2) * x.size(3);
  if (x.is_cpu())
    cpu::scale_channels_forward(x.f32(), s.f32(), y.f32(), planes, hw);
  else
    cuda::scale_channels_forward(x.f32(), s.f32(), y.f32(), planes, hw);
  return y;
}

ScaleChannelsGrads scale_channels_backward(const Tensor& dy, const Tensor& x, const Tensor& s) {
  const char* op = "scale_channels_backward";
  check_scale_args(op, x, s);
  check_f32_input(op, "dy", dy, &x);
  check_same_shape(op, "dy", dy, "x", x);
  ScaleChannelsGrads g{Tensor::empty(x.shape(), DType::F32, x.device()),
                       Tensor::empty(s.shape(), DType::F32, x.device())};
  const std::int64_t planes = x.size(0) * x.size(1), hw = x.size(2) * x.size(3);
  if (x.is_cpu())
    cpu::scale_channels_backward(dy.f32(), x.f32(), s.f32(), g.dx.f32(), g.ds.f32(), planes, hw);
  else
    cuda::scale_channels_backward(dy.f32(), x.f32(), s.f32(), g.dx.f32(), g.ds.f32(), planes, hw);
  return g;
}

}  // namespace cxr
