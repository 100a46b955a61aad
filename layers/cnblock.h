// CNBlock: ConvNeXt's block, torchvision.models.convnext.CNBlock.
//
//   block = Sequential(
//     "0" Conv2d(C, C, 7x7, padding 3, groups C, bias)   depthwise, (N, C, H, W)
//     "1" Permute(0, 2, 3, 1)                             -> (N, H, W, C)
//     "2" LayerNorm(C, eps 1e-6)                          over C
//     "3" Linear(C, 4C)   "4" GELU (exact)   "5" Linear(4C, C)
//     "6" Permute(0, 3, 1, 2))                            -> (N, C, H, W)
//   y = x + stochastic_depth(layer_scale * block(x))      layer_scale: (C, 1, 1), init 1e-6
// Parameters: "layer_scale" (its own, listed first as in PyTorch), then block.*; children
// "block", "stochastic_depth".
// Backward, with b = block(x) and g = stochastic_depth'(dy):
//   d layer_scale[c] = sum_{n,h,w} g[n,c,h,w] b[n,c,h,w]
//   dx = dy + block'(g * layer_scale)
// layer_scale * b is scale_channels(b, s) with s[n, c] = layer_scale[c] (kernels/scale_channels.h);
// the gradient of s (N, C) is summed over n into layer_scale's.
#pragma once

#include "layers/dropout.h"
#include "layers/module.h"

namespace cxr {

class CNBlock : public Module {
 public:
  CNBlock(std::int64_t dim, float layer_scale, float stochastic_depth_prob);
  Tensor forward(const Tensor& x) override;  // x: (N, C, H, W), same shape out
  Tensor backward(const Tensor& dy) override;
  std::string type_name() const override { return "CNBlock"; }
  Parameter& layer_scale() { return *layer_scale_; }
  Sequential& block() { return *block_; }
  StochasticDepth& stochastic_depth() { return *stochastic_depth_; }

 private:
  Tensor scale_per_sample(std::int64_t n) const;  // layer_scale repeated: (n, C)
  std::int64_t dim_;
  Parameter* layer_scale_;
  Sequential* block_;
  StochasticDepth* stochastic_depth_;
  Tensor block_out_, scale_;  // b and layer_scale per sample (N, C), saved by a training forward
};

}  // namespace cxr
