// Pooling modules (see pooling.h).
#include "layers/pooling.h"

#include "kernels/global_avg_pool.h"

namespace cxr {

Tensor MaxPool2d::forward(const Tensor& x) {
  MaxPool2dOutput r = max_pool2d(x.contiguous(), p_);
  indices_ = keeps_for_backward() ? r.indices : Tensor();
  input_shape_ = x.shape();
  return r.y;
}

Tensor MaxPool2d::backward(const Tensor& dy) {
  CXR_CHECK(indices_.defined(), "MaxPool2d.backward() called without a forward that kept its input (a forward under NoGradGuard keeps nothing)");
  Tensor dx = max_pool2d_backward(dy.contiguous(), indices_, input_shape_, p_);
  indices_ = Tensor();
  return dx;
}

Tensor AvgPool2d::forward(const Tensor& x) {
  input_shape_ = x.shape();
  return avg_pool2d(x.contiguous(), p_);
}

Tensor AvgPool2d::backward(const Tensor& dy) {
  CXR_CHECK(!input_shape_.empty(), "AvgPool2d.backward() called without a forward");
  return avg_pool2d_backward(dy.contiguous(), input_shape_, p_);
}

Tensor GlobalAvgPool::forward(const Tensor& x) {
  check_dim("AdaptiveAvgPool2d", "x", x, 4);
  input_shape_ = x.shape();
  Tensor y = global_avg_pool(x.contiguous());  // (N, C)
  return flatten_ ? y : y.view({x.size(0), x.size(1), 1, 1});
}

Tensor GlobalAvgPool::backward(const Tensor& dy) {
  CXR_CHECK(!input_shape_.empty(), "AdaptiveAvgPool2d.backward() called without a forward");
  CXR_CHECK(dy.numel() == input_shape_[0] * input_shape_[1], "AdaptiveAvgPool2d.backward(): dy ", dy.str(),
            " does not match the input ", shape_str(input_shape_));
  return global_avg_pool_backward(dy.contiguous().view({input_shape_[0], input_shape_[1]}), input_shape_);
}

}  // namespace cxr
