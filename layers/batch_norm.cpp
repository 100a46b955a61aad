// BatchNorm2d layer (see batch_norm.h).
#include "layers/batch_norm.h"

#include "kernels/batch_norm.h"

namespace cxr {

BatchNorm2d::BatchNorm2d(std::int64_t num_features, BatchNormOptions o) : o_(o) {
  CXR_CHECK(num_features > 0, "BatchNorm2d: num_features must be positive, found ", num_features);
  weight_ = &register_parameter("weight", Tensor::full({num_features}, 1.f), /*weight_decay=*/false);
  bias_ = &register_parameter("bias", Tensor::zeros({num_features}), /*weight_decay=*/false);
  running_mean_ = &register_buffer("running_mean", Tensor::zeros({num_features}));
  running_var_ = &register_buffer("running_var", Tensor::full({num_features}, 1.f));
  num_batches_ = &register_buffer("num_batches_tracked", Tensor::zeros({}, DType::I32));
}

Tensor BatchNorm2d::forward(const Tensor& x_in) {
  const Tensor x = x_in.contiguous();
  if (!training()) {
    // Frozen statistics: backward needs only x (batch_norm2d_eval_backward).
    save_for_backward(keeps_for_backward() ? x : Tensor());
    saved_mean_ = saved_invstd_ = Tensor();
    return batch_norm2d_eval(x, weight_->value, bias_->value, *running_mean_, *running_var_, o_.eps);
  }
  BatchNormOutput r =
      batch_norm2d_train(x, weight_->value, bias_->value, *running_mean_, *running_var_, o_.momentum, o_.eps);
  if (num_batches_->is_cpu()) num_batches_->data<std::int32_t>()[0] += 1;
  else ++pending_batches_;
  save_for_backward(x);
  saved_mean_ = r.saved_mean;
  saved_invstd_ = r.saved_invstd;
  return r.y;
}

void BatchNorm2d::sync_buffers() {
  if (pending_batches_ == 0) return;
  if (!num_batches_->is_cpu()) {
    Tensor host = num_batches_->cpu();
    host.data<std::int32_t>()[0] += static_cast<std::int32_t>(pending_batches_);
    num_batches_->copy_(host);
  } else {
    num_batches_->data<std::int32_t>()[0] += static_cast<std::int32_t>(pending_batches_);
  }
  pending_batches_ = 0;
}

Tensor BatchNorm2d::backward(const Tensor& dy) {
  const Tensor x = saved_input("BatchNorm2d");
  // Saved statistics: after a training forward; none: after an eval forward.
  BatchNormGrads g = saved_mean_.defined()
                         ? batch_norm2d_backward(dy.contiguous(), x, weight_->value, saved_mean_, saved_invstd_)
                         : batch_norm2d_eval_backward(dy.contiguous(), x, weight_->value, *running_mean_,
                                                      *running_var_, o_.eps);
  save_for_backward(Tensor());
  saved_mean_ = saved_invstd_ = Tensor();
  if (weight_->trainable) weight_->accumulate_grad(g.dweight);
  if (bias_->trainable) bias_->accumulate_grad(g.dbias);
  return g.dx;
}

}  // namespace cxr
