// MBConv: EfficientNet's inverted-residual block, torchvision.models.efficientnet.MBConv.
//
//   block = Sequential(
//     "0" Conv2dNormActivation(C_in -> C_exp, 1x1, SiLU)         only when C_exp != C_in
//     "." Conv2dNormActivation(C_exp depthwise k x k, stride, SiLU)
//     "." SqueezeExcitation(C_exp, max(1, C_in / 4), SiLU, Sigmoid)  (children fc1, fc2)
//     "." Conv2dNormActivation(C_exp -> C_out, 1x1, no activation))
//   y = stochastic_depth(block(x)) + x     when stride 1 and C_in == C_out (use_res_connect)
//   y = block(x)                           otherwise (no stochastic depth applied)
// C_exp = make_divisible(C_in * expand_ratio, 8). Children: "block", "stochastic_depth".
// Backward: dx = block'(stochastic_depth'(dy)) (+ dy on the residual path).
// Each BatchNorm2d + SiLU pair runs fused (one BatchNorm2d with the SiLU, no child "2"; see
// layers/conv_norm_activation.h): the state_dict names are unchanged.
#pragma once

#include <cstdint>

#include "layers/batch_norm.h"
#include "layers/dropout.h"
#include "layers/module.h"

namespace cxr {

// torchvision.models._utils._make_divisible: the nearest multiple of `divisor` to v (rounding
// half up), at least min_value (default: divisor), and never below 90% of v.
std::int64_t make_divisible(double v, std::int64_t divisor, std::int64_t min_value = -1);

struct MBConvConfig {
  double expand_ratio = 1.0;
  int kernel = 3;
  int stride = 1;
  std::int64_t input_channels = 0;
  std::int64_t out_channels = 0;
};

class MBConv : public Module {
 public:
  MBConv(const MBConvConfig& cnf, float stochastic_depth_prob, BatchNormOptions bn = {});
  Tensor forward(const Tensor& x) override;  // x: (N, C_in, H, W) -> (N, C_out, H/stride, W/stride)
  Tensor backward(const Tensor& dy) override;
  std::string type_name() const override { return "MBConv"; }
  bool use_res_connect() const { return use_res_connect_; }
  Sequential& block() { return *block_; }
  StochasticDepth& stochastic_depth() { return *stochastic_depth_; }

 private:
  bool use_res_connect_;
  Sequential* block_;
  StochasticDepth* stochastic_depth_;
};

}  // namespace cxr
