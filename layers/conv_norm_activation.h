// Conv2dNormActivation: torchvision.ops.misc.Conv2dNormActivation, a Sequential of
//   "0" Conv2d (padding (k-1)/2 unless given; bias only without a norm unless given)
//   "1" the norm: BatchNorm2d (EfficientNet, ResNet-style) or LayerNorm2d (ConvNeXt's stem)
//   "2" the activation (omitted when none)
// so the state_dict keys are torchvision's: features.0.0.weight, features.0.1.running_mean, ...
// A BatchNorm2d followed by ReLU or SiLU is built as one BatchNorm2d with the activation fused
// (layers/batch_norm.h) and no child "2" (it has no parameters or buffers; nothing changes in
// the state_dict), unless set_fuse_batch_norm_activation(false) was called before. A
// ConvNormActOptions::bn.activation given by the caller is ignored (the activation is `activation`).
//
//   auto stem = std::make_unique<Conv2dNormActivation>(3, 32, ConvNormActOptions{
//       .kernel = 3, .stride = 2, .activation = Activation::SiLU});
#pragma once

#include <optional>

#include "kernels/activation.h"
#include "layers/batch_norm.h"
#include "layers/module.h"

namespace cxr {

enum class NormKind { BatchNorm2d, LayerNorm2d, None };

struct ConvNormActOptions {
  int kernel = 3;
  int stride = 1;
  int padding = -1;  // -1: (kernel - 1) / 2, torchvision's default
  int groups = 1;
  NormKind norm = NormKind::BatchNorm2d;
  BatchNormOptions bn = {};      // BatchNorm2d: eps 1e-5, momentum 0.1 (torchvision's default)
  float layer_norm_eps = 1e-6f;  // LayerNorm2d (ConvNeXt)
  std::optional<Activation> activation = Activation::ReLU;
  std::optional<bool> bias = std::nullopt;  // unset: bias exactly when there is no norm (torchvision's rule)
  bool input_grad = true;                   // false for a network's first layer (see Conv2d)
};

class Conv2dNormActivation : public Sequential {
 public:
  Conv2dNormActivation(std::int64_t in_channels, std::int64_t out_channels, ConvNormActOptions o = {});
  std::string type_name() const override { return "Conv2dNormActivation"; }
  std::int64_t out_channels() const { return out_channels_; }

 private:
  std::int64_t out_channels_;
};

}  // namespace cxr
