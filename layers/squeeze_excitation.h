// SqueezeExcitation: torchvision.ops.SqueezeExcitation.
//
//   s = scale_activation(fc2(activation(fc1(avgpool(x)))))     (N, C, 1, 1)
//   y = x * s                                                   (N, C, H, W)
// Children (state_dict names): avgpool, fc1 (Conv2d C -> S, 1x1, bias), fc2 (S -> C),
// activation (ReLU by default; EfficientNet passes SiLU), scale_activation (Sigmoid).
// Backward: dx = dy * s + avgpool'(fc1'(act'(fc2'(sigmoid'(sum_hw dy * x))))).
#pragma once

#include "layers/activation.h"
#include "layers/conv2d.h"
#include "layers/pooling.h"

namespace cxr {

class SqueezeExcitation : public Module {
 public:
  SqueezeExcitation(std::int64_t input_channels, std::int64_t squeeze_channels,
                    Activation activation = Activation::ReLU, Activation scale_activation = Activation::Sigmoid);
  Tensor forward(const Tensor& x) override;  // x: (N, C, H, W)
  Tensor backward(const Tensor& dy) override;
  std::string type_name() const override { return "SqueezeExcitation"; }
  Conv2d& fc1() { return *fc1_; }
  Conv2d& fc2() { return *fc2_; }

 private:
  GlobalAvgPool* avgpool_;
  Conv2d* fc1_;
  Conv2d* fc2_;
  ActivationModule* activation_;
  ActivationModule* scale_activation_;
  Tensor scale_;  // s of the last training forward
};

}  // namespace cxr
