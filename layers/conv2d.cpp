// Conv2d layer (see conv2d.h): forward saves its input, backward runs the three gradient
// convolutions of kernels/conv2d.h (data, weight, bias), each only when needed.
#include "layers/conv2d.h"

#include "kernels/cast.h"
#include "kernels/execution.h"
#include "layers/init.h"

namespace cxr {

Conv2d::Conv2d(std::int64_t in_channels, std::int64_t out_channels, Conv2dOptions o) {
  CXR_CHECK(o.groups >= 1 && in_channels % o.groups == 0 && out_channels % o.groups == 0, "Conv2d: ", in_channels,
            " input and ", out_channels, " output channels are not divisible by groups = ", o.groups);
  CXR_CHECK(o.kernel >= 1 && o.stride >= 1 && o.padding >= 0 && o.dilation >= 1, "Conv2d: invalid kernel ",
            o.kernel, ", stride ", o.stride, ", padding ", o.padding, ", dilation ", o.dilation);
  p_.stride_h = p_.stride_w = o.stride;
  p_.pad_h = p_.pad_w = o.padding;
  p_.dilation_h = p_.dilation_w = o.dilation;
  p_.groups = o.groups;
  input_grad_ = o.input_grad;
  Tensor w = Tensor::empty({out_channels, in_channels / o.groups, o.kernel, o.kernel});
  const std::int64_t fan = fan_in(w.shape());
  kaiming_uniform_default(w, fan);
  weight_ = &register_parameter("weight", w);
  if (o.bias) {
    Tensor b = Tensor::empty({out_channels});
    kaiming_uniform_default(b, fan);
    bias_ = &register_parameter("bias", b, /*weight_decay=*/false);
  }
}

Conv2d::Operands Conv2d::forward_operands(const Tensor& x) const {
  const ExecutionSettings s = execution();
  const Tensor xc = x.contiguous();
  if (s.conv2d_observer) s.conv2d_observer(conv2d_dims(xc.shape(), weight_->value.shape(), p_));
  const bool bf16 = s.precision == Precision::BF16;
  // Under autocast y is bf16 too: the activations between layers stay bf16.
  return Operands{bf16 ? to_bf16(xc) : to_f32(xc), bf16 ? to_bf16(weight_->value) : weight_->value,
                  bias_ ? bias_->value : Tensor(), bf16 ? DType::BF16 : DType::F32};
}

void Conv2d::keep_for_backward(const Operands& in) {
  const bool keep = keeps_for_backward();
  save_for_backward(keep ? in.x : Tensor());
  saved_weight_ = keep && in.weight.dtype() == DType::BF16 ? in.weight : Tensor();
}

Tensor Conv2d::forward(const Tensor& x) {
  const Operands in = forward_operands(x);
  Tensor y = conv2d_forward(in.x, in.weight, in.bias, p_, in.y_dtype);
  keep_for_backward(in);
  return y;
}

Tensor Conv2d::backward(const Tensor& dy_in) {
  const Tensor x = saved_input("Conv2d");
  save_for_backward(Tensor());  // release the activation as soon as possible
  // A bf16 input was saved under autocast: the gradient convolutions take bf16 operands too
  // (the bias gradient, a plain sum, stays f32).
  const bool bf16 = x.dtype() == DType::BF16;
  const Tensor w = bf16 ? saved_weight_ : weight_->value;
  saved_weight_ = Tensor();
  const Tensor dy = dy_in.contiguous();
  const Tensor dy_op = bf16 ? to_bf16(dy) : dy;
  if (weight_->trainable) weight_->accumulate_grad(conv2d_backward_weight(dy_op, x, weight_->value.shape(), p_));
  if (bias_ && bias_->trainable) bias_->accumulate_grad(conv2d_backward_bias(dy));
  return input_grad_ ? conv2d_backward_data(dy_op, w, x.shape(), p_) : Tensor();
}

}  // namespace cxr
