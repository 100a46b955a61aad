// Linear layer (see linear.h).
#include "layers/linear.h"

#include <utility>

#include "kernels/cast.h"
#include "kernels/execution.h"
#include "kernels/linear.h"
#include "layers/init.h"

namespace cxr {

Linear::Linear(std::int64_t in_features, std::int64_t out_features, bool bias) : in_(in_features), out_(out_features) {
  CXR_CHECK(in_features > 0 && out_features > 0, "Linear: sizes must be positive, found ", in_features, " -> ",
            out_features);
  Tensor w = Tensor::empty({out_features, in_features});
  kaiming_uniform_default(w, in_features);
  weight_ = &register_parameter("weight", w);
  if (bias) {
    Tensor b = Tensor::empty({out_features});
    kaiming_uniform_default(b, in_features);
    bias_ = &register_parameter("bias", b, /*weight_decay=*/false);
  }
}

Tensor Linear::forward(const Tensor& x_in) {
  CXR_CHECK(x_in.dim() >= 1 && x_in.size(-1) == in_, "Linear: expected x of shape (..., ", in_, "), found ",
            x_in.str());
  const bool bf16 = autocast_bf16();
  const Tensor x = bf16 ? to_bf16(x_in.contiguous().view({-1, in_})) : to_f32(x_in.contiguous().view({-1, in_}));
  const Tensor w = bf16 ? to_bf16(weight_->value) : weight_->value;
  Tensor y = linear(x, w, bias_ ? bias_->value : Tensor());
  // Under autocast the output is a bf16 activation too (ConvNeXt's MLP keeps it for GELU's
  // backward), rounded after the GEMM: one extra pass over y, which is small beside the product.
  if (bf16) y = to_bf16(y);
  const bool keep = keeps_for_backward();
  save_for_backward(keep ? x.view(x_in.shape()) : Tensor());
  saved_weight_ = keep && bf16 ? w : Tensor();
  Shape out_shape = x_in.shape();
  out_shape.back() = out_;
  return y.view(out_shape);
}

Tensor Linear::backward(const Tensor& dy_in) {
  const Tensor x_saved = saved_input("Linear");
  save_for_backward(Tensor());
  const Tensor x = x_saved.view({-1, in_});
  // A bf16 input was saved under autocast: the gradient products take bf16 operands too.
  const bool bf16 = x.dtype() == DType::BF16;
  const Tensor w = bf16 ? saved_weight_ : weight_->value;
  saved_weight_ = Tensor();
  const Tensor dy = bf16 ? to_bf16(dy_in.contiguous().view({-1, out_})) : dy_in.contiguous().view({-1, out_});
  LinearGrads g = linear_backward(x, w, dy, bias_ != nullptr);
  if (weight_->trainable) weight_->accumulate_grad(std::move(g.dw));
  if (bias_ && bias_->trainable) bias_->accumulate_grad(std::move(g.db));
  return g.dx.view(x_saved.shape());
}

}  // namespace cxr
