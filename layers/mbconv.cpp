// MBConv (see mbconv.h).
#include "layers/mbconv.h"

#include <algorithm>
#include <cmath>

#include "kernels/add.h"
#include "layers/conv_norm_activation.h"
#include "layers/squeeze_excitation.h"

namespace cxr {

std::int64_t make_divisible(double v, std::int64_t divisor, std::int64_t min_value) {
  if (min_value < 0) min_value = divisor;
  const auto rounded = static_cast<std::int64_t>(v + static_cast<double>(divisor) / 2.0) / divisor * divisor;
  std::int64_t new_v = std::max(min_value, rounded);
  if (static_cast<double>(new_v) < 0.9 * v) new_v += divisor;
  return new_v;
}

MBConv::MBConv(const MBConvConfig& cnf, float stochastic_depth_prob, BatchNormOptions bn) {
  CXR_CHECK(cnf.stride == 1 || cnf.stride == 2, "MBConv: illegal stride ", cnf.stride);
  CXR_CHECK(cnf.input_channels > 0 && cnf.out_channels > 0, "MBConv: channels must be positive, found ",
            cnf.input_channels, " -> ", cnf.out_channels);
  use_res_connect_ = cnf.stride == 1 && cnf.input_channels == cnf.out_channels;

  auto block = std::make_unique<Sequential>();
  const std::int64_t expanded = make_divisible(static_cast<double>(cnf.input_channels) * cnf.expand_ratio, 8);
  if (expanded != cnf.input_channels)
    block->add(std::make_unique<Conv2dNormActivation>(
        cnf.input_channels, expanded, ConvNormActOptions{.kernel = 1, .bn = bn, .activation = Activation::SiLU}));
  block->add(std::make_unique<Conv2dNormActivation>(expanded, expanded,
                                                    ConvNormActOptions{.kernel = cnf.kernel,
                                                                       .stride = cnf.stride,
                                                                       .groups = static_cast<int>(expanded),
                                                                       .bn = bn,
                                                                       .activation = Activation::SiLU}));
  const std::int64_t squeeze = std::max<std::int64_t>(1, cnf.input_channels / 4);
  block->add(std::make_unique<SqueezeExcitation>(expanded, squeeze, Activation::SiLU, Activation::Sigmoid));
  block->add(std::make_unique<Conv2dNormActivation>(
      expanded, cnf.out_channels, ConvNormActOptions{.kernel = 1, .bn = bn, .activation = std::nullopt}));
  block_ = &register_module("block", std::move(block));
  stochastic_depth_ = &register_module("stochastic_depth", std::make_unique<StochasticDepth>(stochastic_depth_prob));
}

Tensor MBConv::forward(const Tensor& x) {
  Tensor r = block_->forward(x);
  if (!use_res_connect_) return r;
  return add(stochastic_depth_->forward(r), x.contiguous());
}

Tensor MBConv::backward(const Tensor& dy) {
  if (!use_res_connect_) return block_->backward(dy);
  Tensor dx = block_->backward(stochastic_depth_->backward(dy));
  return add(dx, dy.contiguous());  // a fresh tensor: dx may alias buffers a child still holds
}

}  // namespace cxr
