// Tensor-level layer norm: argument checks, output allocation, device dispatch.
#include "kernels/layer_norm.h"

namespace cxr {

namespace {
std::int64_t rows_of(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_f32_input(op, "x", x);
  check_f32_input(op, "weight", weight, &x);
  check_f32_input(op, "bias", bias, &x);
  CXR_CHECK(x.dim() >= 1 && x.size(-1) > 0, op, ": x must have a non-empty last dimension, found ", x.str());
  const std::int64_t C = x.size(-1);
  check_shape(op, "weight", weight, {C});
  check_shape(op, "bias", bias, {C});
  return x.numel() / C;
}
}  // namespace

LayerNormOutput layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  const char* op = "layer_norm";
  const std::int64_t M = rows_of(op, x, weight, bias), C = x.size(-1);
  CXR_CHECK(eps >= 0.f, op, ": eps must be >= 0, found ", eps);
  LayerNormOutput r{Tensor::empty(x.shape(), DType::F32, x.device()), Tensor::empty({M}, DType::F32, x.device()),
                    Tensor::empty({M}, DType::F32, x.device())};
  if (x.is_cpu())
    cpu::layer_norm_forward(x.f32(), weight.f32(), bias.f32(), r.y.f32(), r.mean.f32(), r.rstd.f32(), M, C, eps);
  else
    cuda::layer_norm_forward(x.f32(), weight.f32(), bias.f32(), r.y.f32(), r.mean.f32(), r.rstd.f32(), M, C, eps);
  return r;
}

LayerNormGrads layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& mean,
                                   const Tensor& rstd) {
  const char* op = "layer_norm_backward";
  const std::int64_t M = rows_of(op, x, weight, weight), C = x.size(-1);
  check_f32_input(op, "dy", dy, &x);
  check_same_shape(op, "dy", dy, "x", x);
  check_f32_input(op, "mean", mean, &x);
  check_f32_input(op, "rstd", rstd, &x);
  check_shape(op, "mean", mean, {M});
  check_shape(op, "rstd", rstd, {M});
  LayerNormGrads g{Tensor::empty(x.shape(), DType::F32, x.device()), Tensor::empty({C}, DType::F32, x.device()),
                   Tensor::empty({C}, DType::F32, x.device())};
  if (x.is_cpu())
    cpu::layer_norm_backward(dy.f32(), x.f32(), weight.f32(), mean.f32(), rstd.f32(), g.dx.f32(), g.dweight.f32(),
                             g.dbias.f32(), M, C);
  else
    cuda::layer_norm_backward(dy.f32(), x.f32(), weight.f32(), mean.f32(), rstd.f32(), g.dx.f32(), g.dweight.f32(),
                              g.dbias.f32(), M, C);
  return g;
}

}  // namespace cxr
