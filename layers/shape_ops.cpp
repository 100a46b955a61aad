// Identity, Flatten, Permute (see shape_ops.h).
#include "layers/shape_ops.h"

namespace cxr {

Tensor Flatten::forward(const Tensor& x) {
  input_shape_ = x.shape();
  return x.contiguous().flatten(start_dim_);
}

Tensor Flatten::backward(const Tensor& dy) {
  CXR_CHECK(!input_shape_.empty(), "Flatten.backward() called without a forward");
  return dy.contiguous().view(input_shape_);
}

Permute::Permute(std::vector<int> order) : order_(std::move(order)), inverse_(order_.size(), -1) {
  for (std::size_t i = 0; i < order_.size(); ++i) {
    const int d = order_[i];
    CXR_CHECK(d >= 0 && d < static_cast<int>(order_.size()) && inverse_[d] < 0, "Permute: order is not a permutation");
    inverse_[d] = static_cast<int>(i);
  }
}

Tensor Permute::forward(const Tensor& x) { return x.permute(order_).contiguous(); }

Tensor Permute::backward(const Tensor& dy) { return dy.permute(inverse_).contiguous(); }

}  // namespace cxr
