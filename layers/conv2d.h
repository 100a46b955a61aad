// Conv2d: nn.Conv2d over kernels/conv2d.h. Parameters "weight" (K, C/groups, R, S) and, when
// bias, "bias" (K); PyTorch's default init (kaiming_uniform_(a = sqrt(5)), bias likewise).
//
//   Conv2d conv(3, 64, {.kernel = 7, .stride = 2, .padding = 3, .bias = false});
//   Tensor y  = conv.forward(x);   // x: (N, C, H, W) -> y: (N, K, P, Q); saves x when training
//   Tensor dx = conv.backward(dy); // weight/bias grads accumulate (+=) when trainable
//
// Under bf16 precision (kernels/execution.h, read at every forward) x, the weight and dy are
// rounded to bf16 for the convolutions (f32 accumulation) and y is bf16 (the f32 sum rounded
// once): the activations between layers are bf16, and the layer keeps the bf16 x (and weight)
// for backward, half the bytes of an f32 activation. The gradients (dx, the weight's) are f32.
// Without autocast a bf16 x is widened to f32. Every forward calls the execution setting
// conv2d_observer, when set, with its sizes.
// A Conv2d followed by a BatchNorm2d runs as one op (conv_bn_forward in
// layers/conv_norm_activation.h, kernels/conv2d_bn.h), through forward_operands and
// keep_for_backward below; backward is the same either way.
// input_grad = false skips the data gradient (a network's first layer; backward then returns
// an undefined tensor): it saves the cost of one backward-data convolution.
#pragma once

#include "kernels/conv2d.h"
#include "layers/module.h"

namespace cxr {

struct Conv2dOptions {
  int kernel = 3;
  int stride = 1;
  int padding = 0;
  int dilation = 1;
  int groups = 1;
  bool bias = true;
  bool input_grad = true;
};

class Conv2d : public Module {
 public:
  Conv2d(std::int64_t in_channels, std::int64_t out_channels, Conv2dOptions o = {});
  Tensor forward(const Tensor& x) override;   // x: (N, C, H, W)
  Tensor backward(const Tensor& dy) override; // dy: (N, K, P, Q) -> dx (or undefined)
  std::string type_name() const override { return "Conv2d"; }

  // The operands of one forward as the kernels take them: x and the weight in the forward's
  // precision (bf16 under autocast, f32 otherwise), the bias (f32, or undefined) and y's dtype.
  struct Operands {
    Tensor x, weight, bias;
    DType y_dtype = DType::F32;
  };
  // The first half of forward() for an op that runs the convolution itself (conv_bn_forward):
  // calls the conv2d observer and casts x and the weight. keep_for_backward(operands) is the
  // second half: it saves what backward needs.
  Operands forward_operands(const Tensor& x) const;
  void keep_for_backward(const Operands& operands);

  Parameter& weight() { return *weight_; }
  Parameter* bias() { return bias_; }  // null without bias
  const Conv2dParams& params() const { return p_; }
  void set_input_grad(bool on) { input_grad_ = on; }

 private:
  Parameter* weight_ = nullptr;
  Parameter* bias_ = nullptr;
  Conv2dParams p_;
  bool input_grad_ = true;
  Tensor saved_weight_;  // the bf16 weight of the last forward under autocast
};

}  // namespace cxr
