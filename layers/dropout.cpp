// Dropout and StochasticDepth modules (see dropout.h).
#include "layers/dropout.h"

#include "layers/init.h"

namespace cxr {

Dropout::Dropout(float p) : p_(p), seed_(next_layer_seed()) {
  CXR_CHECK(p >= 0.f && p <= 1.f, "Dropout: p must be in [0, 1], found ", p);
}

Tensor Dropout::forward(const Tensor& x) {
  last_ = DropoutParams{p_, seed_, offset_, training()};
  if (training()) offset_ += static_cast<std::uint64_t>(x.numel());
  return dropout(x.contiguous(), last_);
}

Tensor Dropout::backward(const Tensor& dy) { return dropout_backward(dy.contiguous(), last_); }

StochasticDepth::StochasticDepth(float p) : p_(p), seed_(next_layer_seed()) {
  CXR_CHECK(p >= 0.f && p <= 1.f, "StochasticDepth: p must be in [0, 1], found ", p);
}

Tensor StochasticDepth::forward(const Tensor& x) {
  last_ = DropoutParams{p_, seed_, offset_, training()};
  if (training()) offset_ += static_cast<std::uint64_t>(x.dim() > 0 ? x.size(0) : 1);
  return drop_path(x.contiguous(), last_);
}

Tensor StochasticDepth::backward(const Tensor& dy) { return drop_path_backward(dy.contiguous(), last_); }

}  // namespace cxr
