// ConvNeXt-Tiny (torchvision.models.convnext_tiny, 0.14) with cxr's two heads instead of the
// Linear of torchvision's classifier; see heads.h.
//
//   features.0   stem: Conv2d(3 -> 96, 4x4 /4, bias) "0", LayerNorm2d(96, eps 1e-6) "1"
//   features.1   3 x CNBlock(96)          (layers/cnblock.h)
//   features.2   downsample: LayerNorm2d(96) "0", Conv2d(96 -> 192, 2x2 /2, bias) "1"
//   features.3   3 x CNBlock(192)     features.4  downsample 192 -> 384
//   features.5   9 x CNBlock(384)     features.6  downsample 384 -> 768
//   features.7   3 x CNBlock(768)
//   avgpool, classifier.0 = LayerNorm2d(768, eps 1e-6) on the pooled features (kept from
//   torchvision's classifier, so its pretrained keys load), cls_head, box_head: F = 768.
// Stochastic depth: block i of the 18 drops its residual branch with p = 0.1 i / 17;
// layer_scale init 1e-6.
// state_dict keys are torchvision's: features.0.0.weight, features.1.0.layer_scale,
// features.1.0.block.0.weight, features.1.0.block.2.weight (LayerNorm), block.3 / block.5
// (Linear), features.2.0.weight (LayerNorm2d), features.2.1.weight, classifier.0.weight,
// then the heads.
// Init as torchvision: Conv2d and Linear weights trunc_normal_(std 0.02), their biases 0,
// norms 1 and 0; the heads keep PyTorch's default Linear init.
#pragma once

#include <array>
#include <memory>

#include "layers/cnblock.h"
#include "layers/conv2d.h"
#include "layers/layer_norm.h"
#include "models/heads.h"

namespace cxr {

struct ConvNeXtStage {
  std::int64_t input_channels;
  std::int64_t out_channels;  // 0: no downsampling after the stage (the last one)
  int num_layers;
};
// torchvision's Tiny table: (96, 192, 3), (192, 384, 3), (384, 768, 9), (768, -, 3).
std::array<ConvNeXtStage, 4> convnext_tiny_stages();

struct ConvNeXtOptions {
  int num_classes = 14;
  float stochastic_depth_prob = 0.1f;  // of the last block; 0 disables drop-path
  float layer_scale = 1e-6f;
  // Tiny by default; tests run a narrow, shallow table through the same code on the
  // emulated device (torchvision's Small/Base/Large are other tables, too).
  std::array<ConvNeXtStage, 4> stages = convnext_tiny_stages();
};

class ConvNeXt : public CxrModel {
 public:
  explicit ConvNeXt(const ConvNeXtOptions& o = {});
  Tensor forward_features(const Tensor& x) override;
  Tensor backward_features(const Tensor& dfeatures) override;
  void set_input_grad(bool on) override;
  // "convnext_tiny" (also with another stage table: those are a test device).
  std::string architecture() const override { return "convnext_tiny"; }
  std::string type_name() const override { return "ConvNeXt"; }
  // Global average pool, then classifier.0 (LayerNorm2d) on the (N, C) pooled features.
  Tensor forward_pool(const Tensor& features) override;
  Tensor backward_pool(const Tensor& dpooled) override;
  Sequential& features() { return *features_; }

 private:
  Sequential* features_;
  Sequential* classifier_;
  Conv2d* stem_conv_;
};

std::unique_ptr<CxrModel> make_convnext_tiny(int num_classes = 14);

}  // namespace cxr
