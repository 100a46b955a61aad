// SqueezeExcitation (see squeeze_excitation.h).
#include "layers/squeeze_excitation.h"

#include "kernels/add.h"
#include "kernels/scale_channels.h"

namespace cxr {

SqueezeExcitation::SqueezeExcitation(std::int64_t input_channels, std::int64_t squeeze_channels, Activation activation,
                                     Activation scale_activation) {
  avgpool_ = &register_module("avgpool", std::make_unique<GlobalAvgPool>(false));
  fc1_ = &register_module("fc1", std::make_unique<Conv2d>(input_channels, squeeze_channels, Conv2dOptions{.kernel = 1}));
  fc2_ = &register_module("fc2", std::make_unique<Conv2d>(squeeze_channels, input_channels, Conv2dOptions{.kernel = 1}));
  activation_ = &register_module("activation", make_activation(activation));
  scale_activation_ = &register_module("scale_activation", make_activation(scale_activation));
}

Tensor SqueezeExcitation::forward(const Tensor& x_in) {
  const Tensor x = x_in.contiguous();
  Tensor s = avgpool_->forward(x);
  s = fc1_->forward(s);
  s = activation_->forward(s);
  s = fc2_->forward(s);
  s = scale_activation_->forward(s);
  save_for_backward(keeps_for_backward() ? x : Tensor());
  scale_ = keeps_for_backward() ? s : Tensor();
  return scale_channels(x, s);
}

Tensor SqueezeExcitation::backward(const Tensor& dy) {
  const Tensor x = saved_input("SqueezeExcitation");
  ScaleChannelsGrads g = scale_channels_backward(dy.contiguous(), x, scale_);
  save_for_backward(Tensor());
  scale_ = Tensor();
  Tensor ds = scale_activation_->backward(g.ds);
  ds = fc2_->backward(ds);
  ds = activation_->backward(ds);
  ds = fc1_->backward(ds);
  Tensor dx = g.dx;
  add_(dx, avgpool_->backward(ds));
  return dx;
}

}  // namespace cxr
