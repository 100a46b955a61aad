// Tensor-level layer norm: argument checks, output allocation, device dispatch.
// bf16 x: native kernels on CUDA; on the CPU the f32 reference on the widened x (y rounded
// once to bf16).
#include "kernels/layer_norm.h"

#include "kernels/float_tensor.h"

namespace cxr {

namespace {
std::int64_t rows_of(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_float_input(op, "x", x);
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
  if (x.is_cpu() && is_bf16(x)) {
    LayerNormOutput r = layer_norm(to_f32(x), weight, bias, eps);
    r.y = to_bf16(r.y);
    return r;
  }
  LayerNormOutput r{Tensor::empty(x.shape(), x.dtype(), x.device()), Tensor::empty({M}, DType::F32, x.device()),
                    Tensor::empty({M}, DType::F32, x.device())};
  if (x.is_cpu()) {
    cpu::layer_norm_forward(x.f32(), weight.f32(), bias.f32(), r.y.f32(), r.mean.f32(), r.rstd.f32(), M, C, eps);
    return r;
  }
  visit_float_type(x.dtype(), [&](auto e) {
    using T = decltype(e);
    cuda::layer_norm_forward(x.data<T>(), weight.f32(), bias.f32(), r.y.data<T>(), r.mean.f32(), r.rstd.f32(), M, C,
                             eps);
  });
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
  if (x.is_cpu() && is_bf16(x)) return layer_norm_backward(dy, to_f32(x), weight, mean, rstd);
  LayerNormGrads g{Tensor::empty(x.shape(), DType::F32, x.device()), Tensor::empty({C}, DType::F32, x.device()),
                   Tensor::empty({C}, DType::F32, x.device())};
  if (x.is_cpu()) {
    cpu::layer_norm_backward(dy.f32(), x.f32(), weight.f32(), mean.f32(), rstd.f32(), g.dx.f32(), g.dweight.f32(),
                             g.dbias.f32(), M, C);
    return g;
  }
  visit_float_type(x.dtype(), [&](auto e) {
    using TX = decltype(e);
    cuda::layer_norm_backward(dy.f32(), x.data<TX>(), weight.f32(), mean.f32(), rstd.f32(), g.dx.f32(), g.dweight.f32(),
                              g.dbias.f32(), M, C);
  });
  return g;
}

}  // namespace cxr
