// Linear: nn.Linear, y = x W^T + b over the last dimension.
//
//   x: (..., in) -> y: (..., out); the leading dimensions are folded into M rows.
//   dx = dy W            dW += dy^T x            db += sum over rows of dy
// Parameters "weight" (out, in) and, when bias, "bias" (out); PyTorch's default init
// (U(-1/sqrt(in), 1/sqrt(in)) for both). The math runs in kernels/linear.h.
// Under bf16 precision (kernels/execution.h) x, W and dy are rounded to bf16 for the products
// (f32 accumulation) and y is bf16, like every activation between layers; the layer keeps the
// bf16 x (and W) for backward. Gradients are f32.
#pragma once

#include "layers/module.h"

namespace cxr {

class Linear : public Module {
 public:
  Linear(std::int64_t in_features, std::int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::string type_name() const override { return "Linear"; }
  Parameter& weight() { return *weight_; }
  Parameter* bias() { return bias_; }  // null without bias
  std::int64_t in_features() const { return in_; }
  std::int64_t out_features() const { return out_; }

 private:
  std::int64_t in_, out_;
  Parameter* weight_ = nullptr;
  Parameter* bias_ = nullptr;
  Tensor saved_weight_;  // the bf16 weight of the last forward under autocast
};

}  // namespace cxr
