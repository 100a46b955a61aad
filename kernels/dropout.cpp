// Tensor-level dropout / drop-path: argument checks, identity shortcuts, device dispatch.
#include "kernels/dropout.h"

namespace cxr {

namespace {

Tensor apply(const char* op, const char* name, const Tensor& x, const DropoutParams& d, bool per_sample) {
  check_f32_input(op, name, x);
  CXR_CHECK(d.p >= 0.f && d.p <= 1.f, op, ": p must be in [0, 1], found ", d.p);
  if (per_sample) CXR_CHECK(x.dim() >= 1, op, ": ", name, " must have a batch dimension, found ", x.str());
  if (!d.training || d.p == 0.f) return x;
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  const std::int64_t n = x.numel();
  const std::int64_t group = per_sample ? (x.size(0) > 0 ? n / x.size(0) : 1) : 1;
  if (n == 0) return y;
  const float scale = d.p < 1.f ? 1.f / (1.f - d.p) : 0.f;
  if (x.is_cpu())
    cpu::dropout_apply(x.f32(), y.f32(), n, group, d.p, scale, d.seed, d.offset);
  else
    cuda::dropout_apply(x.f32(), y.f32(), n, group, d.p, scale, d.seed, d.offset);
  return y;
}

}  // namespace

Tensor dropout(const Tensor& x, const DropoutParams& d) {
  return apply("dropout", "x", x, d, false);
}
Tensor dropout_backward(const Tensor& dy, const DropoutParams& d) {
  return apply("dropout_backward", "dy", dy, d, false);
}
Tensor drop_path(const Tensor& x, const DropoutParams& d) {
  return apply("drop_path", "x", x, d, true);
}
Tensor drop_path_backward(const Tensor& dy, const DropoutParams& d) {
  return apply("drop_path_backward", "dy", dy, d, true);
}

}  // namespace cxr
