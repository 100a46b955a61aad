// Layer normalisation modules over kernels/layer_norm.h (math there).
//
//   LayerNorm(C, eps)     nn.LayerNorm(C): normalises the last dimension of (..., C)
//   LayerNorm2d(C, eps)   torchvision.models.convnext.LayerNorm2d: channels-first (N, C, H, W),
//                         normalised over C at every pixel (permute to NHWC, LayerNorm, back)
// Parameters "weight" (C, init 1) and "bias" (C, init 0), without weight decay. The default
// eps is PyTorch's 1e-5; ConvNeXt passes 1e-6.
#pragma once

#include "layers/module.h"

namespace cxr {

class LayerNorm : public Module {
 public:
  explicit LayerNorm(std::int64_t channels, float eps = 1e-5f);
  Tensor forward(const Tensor& x) override;  // x: (..., C)
  Tensor backward(const Tensor& dy) override;
  std::string type_name() const override { return "LayerNorm"; }
  Parameter& weight() { return *weight_; }
  Parameter& bias() { return *bias_; }

 protected:
  Parameter* weight_ = nullptr;
  Parameter* bias_ = nullptr;
  float eps_;
  Tensor mean_, rstd_;
};

class LayerNorm2d : public LayerNorm {
 public:
  explicit LayerNorm2d(std::int64_t channels, float eps = 1e-5f) : LayerNorm(channels, eps) {}
  Tensor forward(const Tensor& x) override;  // x: (N, C, H, W)
  Tensor backward(const Tensor& dy) override;
  std::string type_name() const override { return "LayerNorm2d"; }
};

}  // namespace cxr
