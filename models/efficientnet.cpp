// EfficientNet-B0 with cxr's heads (see efficientnet.h).
#include "models/efficientnet.h"

#include <cmath>

#include "layers/conv2d.h"
#include "layers/init.h"

namespace cxr {

std::vector<std::pair<MBConvConfig, int>> efficientnet_b0_stages(double width_mult, double depth_mult) {
  // {expand_ratio, kernel, stride, input_channels, out_channels}, num_layers
  std::vector<std::pair<MBConvConfig, int>> t = {
      {{1, 3, 1, 32, 16}, 1},  {{6, 3, 2, 16, 24}, 2},   {{6, 5, 2, 24, 40}, 2},  {{6, 3, 2, 40, 80}, 3},
      {{6, 5, 1, 80, 112}, 3}, {{6, 5, 2, 112, 192}, 4}, {{6, 3, 1, 192, 320}, 1}};
  for (auto& [c, n] : t) {
    c.input_channels = make_divisible(static_cast<double>(c.input_channels) * width_mult, 8);
    c.out_channels = make_divisible(static_cast<double>(c.out_channels) * width_mult, 8);
    n = static_cast<int>(std::ceil(n * depth_mult));
  }
  return t;
}

EfficientNet::EfficientNet(const EfficientNetOptions& o) {
  const auto stages = efficientnet_b0_stages(o.width_mult, o.depth_mult);
  auto features = std::make_unique<Sequential>();
  auto& stem = features->add(std::make_unique<Conv2dNormActivation>(
      3, stages.front().first.input_channels,
      ConvNormActOptions{.kernel = 3, .stride = 2, .bn = o.bn, .activation = Activation::SiLU}));
  stem_conv_ = static_cast<Conv2d*>(&stem[0]);

  int total_blocks = 0;
  for (const auto& [cnf, n] : stages) total_blocks += n;
  int block_id = 0;
  for (const auto& [cnf, n] : stages) {
    auto stage = std::make_unique<Sequential>();
    for (int i = 0; i < n; ++i) {
      MBConvConfig c = cnf;
      if (i > 0) {
        c.input_channels = c.out_channels;
        c.stride = 1;
      }
      const float sd_prob = o.stochastic_depth_prob * static_cast<float>(block_id) / static_cast<float>(total_blocks);
      stage->add(std::make_unique<MBConv>(c, sd_prob, o.bn));
      ++block_id;
    }
    features->add(std::move(stage));
  }
  const std::int64_t last_in = stages.back().first.out_channels, last_out = 4 * last_in;
  features->add(std::make_unique<Conv2dNormActivation>(
      last_in, last_out, ConvNormActOptions{.kernel = 1, .bn = o.bn, .activation = Activation::SiLU}));
  features_ = &register_module("features", std::move(features));
  add_heads(last_out, o.num_classes, o.dropout);

  // torchvision's init (heads excluded: they keep the default of add_heads).
  for (auto& [name, p] : features_->named_parameters()) {
    if (p->value.dim() == 4)
      kaiming_normal_fan_out(p->value);
    else if (name.ends_with(".bias"))
      p->value.zero_();
    else
      p->value.fill_(1.f);  // BatchNorm2d weights
  }
}

Tensor EfficientNet::forward_features(const Tensor& x) {
  CXR_CHECK(x.dim() == 4 && x.size(1) == 3, "efficientnet_b0: expected images (N, 3, H, W), found ", x.str());
  return features_->forward(x);
}

Tensor EfficientNet::backward_features(const Tensor& dfeatures) {
  return features_->backward(dfeatures);
}

void EfficientNet::set_input_grad(bool on) {
  stem_conv_->set_input_grad(on);
}

std::unique_ptr<CxrModel> make_efficientnet_b0(int num_classes) {
  return std::make_unique<EfficientNet>(EfficientNetOptions{.num_classes = num_classes});
}

}  // namespace cxr
