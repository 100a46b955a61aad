// CNBlock (see cnblock.h).
#include "layers/cnblock.h"

#include "kernels/add.h"
#include "kernels/gemm.h"
#include "kernels/reduce.h"
#include "kernels/scale_channels.h"
#include "layers/activation.h"
#include "layers/conv2d.h"
#include "layers/layer_norm.h"
#include "layers/linear.h"
#include "layers/shape_ops.h"

namespace cxr {

CNBlock::CNBlock(std::int64_t dim, float layer_scale, float stochastic_depth_prob) : dim_(dim) {
  CXR_CHECK(dim > 0, "CNBlock: dim must be positive, found ", dim);
  // layer_scale decays like any weight in torchvision's recipe (it is not a norm parameter).
  layer_scale_ = &register_parameter("layer_scale", Tensor::full({dim, 1, 1}, layer_scale));
  auto block = std::make_unique<Sequential>();
  block->add(std::make_unique<Conv2d>(
      dim, dim, Conv2dOptions{.kernel = 7, .padding = 3, .groups = static_cast<int>(dim), .bias = true}));
  block->add(std::make_unique<Permute>(std::vector<int>{0, 2, 3, 1}));
  block->add(std::make_unique<LayerNorm>(dim, 1e-6f));
  block->add(std::make_unique<Linear>(dim, 4 * dim));
  block->add(std::make_unique<GELU>());
  block->add(std::make_unique<Linear>(4 * dim, dim));
  block->add(std::make_unique<Permute>(std::vector<int>{0, 3, 1, 2}));
  block_ = &register_module("block", std::move(block));
  stochastic_depth_ = &register_module("stochastic_depth", std::make_unique<StochasticDepth>(stochastic_depth_prob));
}

// One GEMM (n, 1) x (1, C) instead of n copies: a single launch on the device.
Tensor CNBlock::scale_per_sample(std::int64_t n) const {
  const Tensor& ls = layer_scale_->value;
  return matmul(Tensor::full({n, 1}, 1.f, ls.device()), ls.view({1, dim_}));
}

Tensor CNBlock::forward(const Tensor& x_in) {
  CXR_CHECK(x_in.dim() == 4 && x_in.size(1) == dim_, "CNBlock: expected (N, ", dim_, ", H, W), found ", x_in.str());
  const Tensor x = x_in.contiguous();
  Tensor b = block_->forward(x);
  Tensor s = scale_per_sample(x.size(0));
  if (keeps_for_backward()) block_out_ = b, scale_ = s;
  Tensor r = scale_channels(b, s);
  return add(stochastic_depth_->forward(r), x);
}

Tensor CNBlock::backward(const Tensor& dy_in) {
  CXR_CHECK(block_out_.defined(), "CNBlock.backward() called without a forward that kept its input (a forward under NoGradGuard keeps nothing)");
  const Tensor dy = dy_in.contiguous();
  const Tensor g = stochastic_depth_->backward(dy);
  ScaleChannelsGrads sg = scale_channels_backward(g, block_out_, scale_);
  block_out_ = scale_ = Tensor();
  if (layer_scale_->trainable) layer_scale_->accumulate_grad(sum_dim(sg.ds, 0).view({dim_, 1, 1}));
  return add(block_->backward(sg.dx), dy);
}

}  // namespace cxr
