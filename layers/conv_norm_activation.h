// Conv2dNormActivation: torchvision.ops.misc.Conv2dNormActivation, a Sequential of
//   "0" Conv2d (padding (k-1)/2 unless given; bias only without a norm unless given)
//   "1" the norm: BatchNorm2d (EfficientNet, ResNet-style) or LayerNorm2d (ConvNeXt's stem)
//   "2" the activation (omitted when none)
// so the state_dict keys are torchvision's: features.0.0.weight, features.0.1.running_mean, ...
// A BatchNorm2d followed by ReLU or SiLU is built as one BatchNorm2d with the activation fused
// (layers/batch_norm.h) and no child "2" (it has no parameters or buffers; nothing changes in
// the state_dict), unless the execution setting fuse_batch_norm_activation (kernels/execution.h)
// was off when the block was built. A ConvNormActOptions::bn.activation given by the caller is
// ignored (the activation is `activation`).
// With a BatchNorm2d, the convolution and the batch norm run as one op (conv_bn_forward below),
// which computes the batch statistics in the convolution's epilogue where it can.
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

class Conv2d;

// bn.forward(conv.forward(x)) as one op, conv2d_bn_forward (kernels/conv2d_bn.h), which decides
// whether the batch statistics come from the convolution's epilogue (on a CUDA device, with bn
// training, fuse_conv_batch_norm_statistics on and a convolution kernel that has the epilogue)
// or from the batch norm's own pass. bn's mode decides training or evaluation. Both modules
// save what their backward needs either way, so backward is bn.backward then conv.backward as
// usual.
Tensor conv_bn_forward(Conv2d& conv, BatchNorm2d& bn, const Tensor& x);
// How many conv_bn_forward calls took the statistics from the convolution's epilogue since the
// process started (tests).
std::int64_t conv_bn_fused_forwards();

class Conv2dNormActivation : public Sequential {
 public:
  Conv2dNormActivation(std::int64_t in_channels, std::int64_t out_channels, ConvNormActOptions o = {});
  // Sequential's forward, with conv + BatchNorm2d through conv_bn_forward.
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Conv2dNormActivation"; }
  std::int64_t out_channels() const { return out_channels_; }

 private:
  std::int64_t out_channels_;
  Conv2d* conv_ = nullptr;
  BatchNorm2d* bn_ = nullptr;       // null unless the norm is a BatchNorm2d
  Module* activation_ = nullptr;    // child "2", if any
};

}  // namespace cxr
