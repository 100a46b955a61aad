// EfficientNet-B0 (torchvision.models.efficientnet_b0, 0.14) with cxr's two heads instead of
// torchvision's classifier (Dropout(0.2) + Linear(1280, 1000)); see heads.h.
//
//   features.0        Conv2dNormActivation(3 -> 32, 3x3 /2, BN, SiLU)
//   features.1 .. 7   stages of MBConv (layers/mbconv.h), torchvision's B0 table:
//                     expand  kernel  stride  in -> out  blocks
//                       1       3       1     32 -> 16     1
//                       6       3       2     16 -> 24     2
//                       6       5       2     24 -> 40     2
//                       6       3       2     40 -> 80     3
//                       6       5       1     80 -> 112    3
//                       6       5       2    112 -> 192    4
//                       6       3       1    192 -> 320    1
//                     (the first block of a stage has its stride and width change)
//   features.8        Conv2dNormActivation(320 -> 1280, 1x1, BN, SiLU)
//   avgpool, dropout (p = 0.2, when > 0), cls_head, box_head: F = 1280, stride 32.
// BatchNorm2d: eps 1e-5, momentum 0.1 (torchvision's defaults for B0..B7). Stochastic depth:
// block i of the 16 drops its residual branch with p = 0.2 i / 16.
// state_dict keys are torchvision's: features.0.0.weight, features.1.0.block.0.0.weight,
// features.1.0.block.1.fc1.weight, features.2.0.block.0.1.running_var, ..., then the heads.
// Init as torchvision: convolutions kaiming_normal_(fan_out), zero conv biases (the SE
// convolutions), BN weight 1, bias 0; the heads keep PyTorch's default Linear init.
#pragma once

#include <memory>
#include <vector>

#include "layers/conv2d.h"
#include "layers/conv_norm_activation.h"
#include "layers/mbconv.h"
#include "models/heads.h"

namespace cxr {

struct EfficientNetOptions {
  int num_classes = 14;
  float dropout = 0.2f;                // before the heads (torchvision's classifier dropout)
  float stochastic_depth_prob = 0.2f;  // of the last block; 0 disables drop-path
  BatchNormOptions bn = {};
  // torchvision's scaling of the B0 table (B1..B7 use other values; B0: 1, 1): every width
  // becomes make_divisible(width * width_mult, 8), every stage depth ceil(depth * depth_mult).
  // Tests use small multipliers to run the same code on the emulated device in seconds.
  double width_mult = 1.0;
  double depth_mult = 1.0;
};

class EfficientNet : public CxrModel {
 public:
  explicit EfficientNet(const EfficientNetOptions& o = {});
  Tensor forward_features(const Tensor& x) override;
  Tensor backward_features(const Tensor& dfeatures) override;
  void set_input_grad(bool on) override;
  // "efficientnet_b0" (also when scaled: the multipliers are a test device).
  std::string architecture() const override { return "efficientnet_b0"; }
  std::string type_name() const override { return "EfficientNet"; }
  Sequential& features() { return *features_; }

 private:
  Sequential* features_;
  Conv2d* stem_conv_;
};

// torchvision's B0 stage table, scaled by the multipliers: (config of the first block, depth).
std::vector<std::pair<MBConvConfig, int>> efficientnet_b0_stages(double width_mult = 1.0, double depth_mult = 1.0);

std::unique_ptr<CxrModel> make_efficientnet_b0(int num_classes = 14);

}  // namespace cxr
