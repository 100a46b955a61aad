// ResNet-18/34/50 (torchvision.models.resnet, V1.5: the stride of a Bottleneck sits in its
// 3x3 conv2) with cxr's two heads instead of "fc" (see heads.h).
//
//   stem:   conv1 7x7/2 (no bias) -> bn1 -> relu -> maxpool 3x3/2 pad 1
//   layer1..layer4: blocks of widths 64, 128, 256, 512 (x4 for Bottleneck); the first block
//           of layer2..4 has stride 2, and a "downsample" Sequential(conv1x1/stride, bn)
//           whenever the stride or the width changes.
//   BasicBlock (expansion 1): conv1 3x3/s -> bn1 -> relu -> conv2 3x3 -> bn2 (+ identity) -> relu
//   Bottleneck (expansion 4): conv1 1x1 -> bn1 -> relu -> conv2 3x3/s -> bn2 -> relu
//                             -> conv3 1x1 -> bn3 (+ identity) -> relu
//   F = 512 (18, 34) or 2048 (50) features; feature map stride 32 (224 -> 7x7).
//
// state_dict names are torchvision's: conv1.weight, bn1.running_mean, layer1.0.conv1.weight,
// layer2.0.downsample.0.weight, layer2.0.downsample.1.num_batches_tracked, ..., then
// cls_head.* and box_head.*. Inside a block, torchvision's single stateless "relu" child is
// applied twice; here each bn -> relu pair is one BatchNorm2d with the ReLU fused
// (layers/batch_norm.h: one pass, and no pre-activation kept), and the relu after the residual
// add is a call of kernels/activation.h on the saved sum. The stem's bn1 fuses its relu too, so
// the model has no "relu" child (it has no parameters or buffers: the state_dict is unchanged).
// With the execution setting fuse_batch_norm_activation off (kernels/execution.h) at
// construction the blocks call the ReLU op after each bn and save the pre-activations, and the
// stem has its "relu" module, as before.
// Every conv -> bn pair (stem, blocks, downsample) runs through conv_bn_forward
// (layers/conv_norm_activation.h): in training on a CUDA device the batch statistics come from
// the convolution's epilogue (the execution setting fuse_conv_batch_norm_statistics turns it off).
// Init as torchvision: convolutions kaiming_normal_(fan_out, relu), BN weight 1, bias 0.
#pragma once

#include <array>

#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/pooling.h"
#include "models/heads.h"

namespace cxr {

class BasicBlock : public Module {
 public:
  static constexpr int kExpansion = 1;
  BasicBlock(std::int64_t in_channels, std::int64_t width, int stride);
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::string type_name() const override { return "BasicBlock"; }

 private:
  Conv2d *conv1_, *conv2_;
  BatchNorm2d *bn1_, *bn2_;
  Sequential* downsample_ = nullptr;
  bool fused_;                       // bn1 carries the relu (fuse_batch_norm_activation at construction)
  // Kept when training: the ReLU outputs (relu'(z) = [relu(z) > 0], and the next layer keeps
  // them anyway as its input); relu1_out_ only unfused.
  Tensor relu1_out_, out_;
};

class Bottleneck : public Module {
 public:
  static constexpr int kExpansion = 4;
  Bottleneck(std::int64_t in_channels, std::int64_t width, int stride);
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::string type_name() const override { return "Bottleneck"; }

 private:
  Conv2d *conv1_, *conv2_, *conv3_;
  BatchNorm2d *bn1_, *bn2_, *bn3_;
  Sequential* downsample_ = nullptr;
  bool fused_;  // bn1, bn2 carry their relu (fuse_batch_norm_activation at construction)
  Tensor relu1_out_, relu2_out_, out_;  // the ReLU outputs, as BasicBlock; relu1/2 only unfused
};

enum class ResNetBlock { Basic, Bottleneck };

struct ResNetConfig {
  const char* name;             // "resnet50"
  ResNetBlock block;
  std::array<int, 4> layers;    // blocks per stage: {3, 4, 6, 3} for 34 and 50
};

class ResNet : public CxrModel {
 public:
  ResNet(const ResNetConfig& config, int num_classes = 14);
  Tensor forward_features(const Tensor& x) override;
  Tensor backward_features(const Tensor& dfeatures) override;
  void set_input_grad(bool on) override { conv1_->set_input_grad(on); }
  std::string architecture() const override { return config_.name; }
  std::string type_name() const override { return "ResNet"; }

 private:
  ResNetConfig config_;
  Conv2d* conv1_;
  BatchNorm2d* bn1_;
  Module* relu_ = nullptr;  // only unfused; fused, bn1 applies the relu
  MaxPool2d* maxpool_;
  std::array<Sequential*, 4> stages_{};
};

// torchvision's configurations: resnet18 {2,2,2,2} Basic, resnet34 {3,4,6,3} Basic,
// resnet50 {3,4,6,3} Bottleneck.
std::unique_ptr<CxrModel> make_resnet18(int num_classes = 14);
std::unique_ptr<CxrModel> make_resnet34(int num_classes = 14);
std::unique_ptr<CxrModel> make_resnet50(int num_classes = 14);

}  // namespace cxr
