// ConvNeXt-Tiny with cxr's heads (see convnext.h).
#include "models/convnext.h"

#include "layers/conv2d.h"
#include "layers/init.h"

namespace cxr {

namespace {
constexpr float kNormEps = 1e-6f;
}

std::array<ConvNeXtStage, 4> convnext_tiny_stages() {
  return {{{96, 192, 3}, {192, 384, 3}, {384, 768, 9}, {768, 0, 3}}};
}

ConvNeXt::ConvNeXt(const ConvNeXtOptions& o) {
  const auto& stages = o.stages;
  auto features = std::make_unique<Sequential>();
  const std::int64_t stem_out = stages.front().input_channels;
  auto stem = std::make_unique<Sequential>();
  stem_conv_ = &stem->add(std::make_unique<Conv2d>(3, stem_out, Conv2dOptions{.kernel = 4, .stride = 4, .bias = true}));
  stem->add(std::make_unique<LayerNorm2d>(stem_out, kNormEps));
  features->add(std::move(stem));

  int total_blocks = 0;
  for (const auto& s : stages) total_blocks += s.num_layers;
  int block_id = 0;
  for (const auto& s : stages) {
    auto stage = std::make_unique<Sequential>();
    for (int i = 0; i < s.num_layers; ++i) {
      const float sd_prob = total_blocks > 1 ? o.stochastic_depth_prob * static_cast<float>(block_id) /
                                                   (static_cast<float>(total_blocks) - 1.f)
                                             : 0.f;
      stage->add(std::make_unique<CNBlock>(s.input_channels, o.layer_scale, sd_prob));
      ++block_id;
    }
    features->add(std::move(stage));
    if (s.out_channels > 0) {
      auto down = std::make_unique<Sequential>();
      down->add(std::make_unique<LayerNorm2d>(s.input_channels, kNormEps));
      down->add(std::make_unique<Conv2d>(s.input_channels, s.out_channels,
                                         Conv2dOptions{.kernel = 2, .stride = 2, .bias = true}));
      features->add(std::move(down));
    }
  }
  features_ = &register_module("features", std::move(features));
  const std::int64_t width = stages.back().out_channels > 0 ? stages.back().out_channels : stages.back().input_channels;
  auto classifier = std::make_unique<Sequential>();
  classifier->add(std::make_unique<LayerNorm2d>(width, kNormEps));
  classifier_ = &register_module("classifier", std::move(classifier));
  add_heads(width, o.num_classes);

  // torchvision's init for Conv2d and Linear (heads excluded: add_heads' default).
  for (auto& [name, p] : features_->named_parameters()) {
    const bool weight = name.ends_with(".weight") && p->value.dim() >= 2;
    if (weight)
      trunc_normal_(p->value, 0.f, 0.02f);
    else if (name.ends_with(".bias"))
      p->value.zero_();  // conv / Linear; the norms' are 0 already
  }
}

Tensor ConvNeXt::forward_features(const Tensor& x) {
  CXR_CHECK(x.dim() == 4 && x.size(1) == 3, "convnext_tiny: expected images (N, 3, H, W), found ", x.str());
  return features_->forward(x);
}

Tensor ConvNeXt::backward_features(const Tensor& dfeatures) {
  return features_->backward(dfeatures);
}

void ConvNeXt::set_input_grad(bool on) {
  stem_conv_->set_input_grad(on);
}

Tensor ConvNeXt::forward_pool(const Tensor& features) {
  Tensor pooled = CxrModel::forward_pool(features);  // (N, C)
  const std::int64_t n = pooled.size(0), c = pooled.size(1);
  return classifier_->forward(pooled.view({n, c, 1, 1})).view({n, c});
}

Tensor ConvNeXt::backward_pool(const Tensor& dpooled) {
  const std::int64_t n = dpooled.size(0), c = dpooled.size(1);
  Tensor d = classifier_->backward(dpooled.contiguous().view({n, c, 1, 1})).view({n, c});
  return CxrModel::backward_pool(d);
}

std::unique_ptr<CxrModel> make_convnext_tiny(int num_classes) {
  return std::make_unique<ConvNeXt>(ConvNeXtOptions{.num_classes = num_classes});
}

}  // namespace cxr
