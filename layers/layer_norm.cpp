// LayerNorm and LayerNorm2d modules (see layer_norm.h).
#include "layers/layer_norm.h"

#include "kernels/layer_norm.h"

namespace cxr {

LayerNorm::LayerNorm(std::int64_t channels, float eps) : eps_(eps) {
  CXR_CHECK(channels > 0, "LayerNorm: channels must be positive, found ", channels);
  weight_ = &register_parameter("weight", Tensor::full({channels}, 1.f), /*weight_decay=*/false);
  bias_ = &register_parameter("bias", Tensor::zeros({channels}), /*weight_decay=*/false);
}

Tensor LayerNorm::forward(const Tensor& x_in) {
  const Tensor x = x_in.contiguous();
  LayerNormOutput r = layer_norm(x, weight_->value, bias_->value, eps_);
  save_for_backward(keeps_for_backward() ? x : Tensor());
  mean_ = keeps_for_backward() ? r.mean : Tensor();
  rstd_ = keeps_for_backward() ? r.rstd : Tensor();
  return r.y;
}

Tensor LayerNorm::backward(const Tensor& dy) {
  const Tensor x = saved_input(type_name().c_str());
  LayerNormGrads g = layer_norm_backward(dy.contiguous(), x, weight_->value, mean_, rstd_);
  save_for_backward(Tensor());
  mean_ = rstd_ = Tensor();
  if (weight_->trainable) weight_->accumulate_grad(g.dweight);
  if (bias_->trainable) bias_->accumulate_grad(g.dbias);
  return g.dx;
}

// (N, C, H, W) -> (N, H, W, C) -> LayerNorm over C -> back to (N, C, H, W).
Tensor LayerNorm2d::forward(const Tensor& x) {
  check_dim("LayerNorm2d", "x", x, 4);
  return LayerNorm::forward(x.permute({0, 2, 3, 1}).contiguous()).permute({0, 3, 1, 2}).contiguous();
}

Tensor LayerNorm2d::backward(const Tensor& dy) {
  check_dim("LayerNorm2d.backward", "dy", dy, 4);
  return LayerNorm::backward(dy.permute({0, 2, 3, 1}).contiguous()).permute({0, 3, 1, 2}).contiguous();
}

}  // namespace cxr
