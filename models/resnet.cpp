// ResNet-18/34/50 with cxr's heads (see resnet.h). Each block's backward mirrors its
// forward: the main path in reverse, the shortcut (downsample or identity) beside it, the
// two gradients summed where the paths forked.
#include "models/resnet.h"

#include "kernels/activation.h"
#include "kernels/add.h"
#include "kernels/execution.h"
#include "layers/activation.h"
#include "layers/conv_norm_activation.h"
#include "layers/init.h"

namespace cxr {

namespace {

std::unique_ptr<Conv2d> conv3x3(std::int64_t in, std::int64_t out, int stride) {
  return std::make_unique<Conv2d>(in, out, Conv2dOptions{.kernel = 3, .stride = stride, .padding = 1, .bias = false});
}

std::unique_ptr<Conv2d> conv1x1(std::int64_t in, std::int64_t out, int stride = 1) {
  return std::make_unique<Conv2d>(in, out, Conv2dOptions{.kernel = 1, .stride = stride, .padding = 0, .bias = false});
}

// Sequential(conv1x1/stride, bn) when the shortcut changes shape, else null (identity).
std::unique_ptr<Sequential> make_downsample(std::int64_t in, std::int64_t out, int stride) {
  if (stride == 1 && in == out) return nullptr;
  auto ds = std::make_unique<Sequential>();
  ds->add(conv1x1(in, out, stride));
  ds->add(std::make_unique<BatchNorm2d>(out));
  return ds;
}

// A BatchNorm2d that applies the ReLU after it when `fused`.
std::unique_ptr<BatchNorm2d> bn_relu(std::int64_t channels, bool fused) {
  BatchNormOptions o;
  if (fused) o.activation = Activation::ReLU;
  return std::make_unique<BatchNorm2d>(channels, o);
}

// The shortcut's Sequential(conv1x1, bn) with conv_bn_forward (statistics in the conv's
// epilogue on a CUDA device when training); backward is the Sequential's.
Tensor downsample_forward(Sequential& ds, const Tensor& x) {
  return conv_bn_forward(static_cast<Conv2d&>(ds[0]), static_cast<BatchNorm2d&>(ds[1]), x);
}

Tensor relu(const Tensor& x) { return activation_forward(Activation::ReLU, x); }
// dy [z > 0] from the ReLU's output y = relu(z): [y > 0] = [z > 0], so the blocks keep y.
Tensor relu_backward(const Tensor& y, const Tensor& dy) { return activation_backward(Activation::ReLU, y, dy); }

}  // namespace

// --- BasicBlock ----------------------------------------------------------------------------

BasicBlock::BasicBlock(std::int64_t in, std::int64_t width, int stride) : fused_(execution().fuse_batch_norm_activation) {
  conv1_ = &register_module("conv1", conv3x3(in, width, stride));
  bn1_ = &register_module("bn1", bn_relu(width, fused_));
  conv2_ = &register_module("conv2", conv3x3(width, width, 1));
  bn2_ = &register_module("bn2", std::make_unique<BatchNorm2d>(width));
  if (auto ds = make_downsample(in, width * kExpansion, stride)) downsample_ = &register_module("downsample", std::move(ds));
}

Tensor BasicBlock::forward(const Tensor& x) {
  Tensor h = conv_bn_forward(*conv1_, *bn1_, x);  // fused: relu(bn1(...)) already
  if (!fused_) {
    h = relu(h);
    relu1_out_ = keeps_for_backward() ? h : Tensor();
  }
  h = conv_bn_forward(*conv2_, *bn2_, h);
  // Under autocast x is bf16 already (the activations between layers are), so conv1 and the
  // shortcut's convolution keep the same tensor: no copies.
  Tensor identity = downsample_ ? downsample_forward(*downsample_, x) : x;
  add_(h, identity);
  Tensor out = relu(h);
  out_ = keeps_for_backward() ? out : Tensor();  // relu'(sum) = [out > 0]; the next block keeps out too
  return out;
}

Tensor BasicBlock::backward(const Tensor& dy) {
  CXR_CHECK(out_.defined(), "BasicBlock.backward() called without a forward that kept its input (a forward under NoGradGuard keeps nothing)");
  Tensor d = relu_backward(out_, dy);  // gradient at the sum: both paths get it
  Tensor dmain = conv2_->backward(bn2_->backward(d));
  if (!fused_) dmain = relu_backward(relu1_out_, dmain);
  dmain = conv1_->backward(bn1_->backward(dmain));
  add_(dmain, downsample_ ? downsample_->backward(d) : d);
  relu1_out_ = out_ = Tensor();
  return dmain;
}

// --- Bottleneck ----------------------------------------------------------------------------

Bottleneck::Bottleneck(std::int64_t in, std::int64_t width, int stride) : fused_(execution().fuse_batch_norm_activation) {
  conv1_ = &register_module("conv1", conv1x1(in, width));
  bn1_ = &register_module("bn1", bn_relu(width, fused_));
  conv2_ = &register_module("conv2", conv3x3(width, width, stride));
  bn2_ = &register_module("bn2", bn_relu(width, fused_));
  conv3_ = &register_module("conv3", conv1x1(width, width * kExpansion));
  bn3_ = &register_module("bn3", std::make_unique<BatchNorm2d>(width * kExpansion));
  if (auto ds = make_downsample(in, width * kExpansion, stride)) downsample_ = &register_module("downsample", std::move(ds));
}

Tensor Bottleneck::forward(const Tensor& x) {
  Tensor h = conv_bn_forward(*conv1_, *bn1_, x);  // fused: relu(bn1(...)) already
  if (!fused_) {
    h = relu(h);
    relu1_out_ = keeps_for_backward() ? h : Tensor();
  }
  h = conv_bn_forward(*conv2_, *bn2_, h);
  if (!fused_) {
    h = relu(h);
    relu2_out_ = keeps_for_backward() ? h : Tensor();
  }
  h = conv_bn_forward(*conv3_, *bn3_, h);
  // Under autocast x is bf16 already (the activations between layers are), so conv1 and the
  // shortcut's convolution keep the same tensor: no copies.
  Tensor identity = downsample_ ? downsample_forward(*downsample_, x) : x;
  add_(h, identity);
  Tensor out = relu(h);
  out_ = keeps_for_backward() ? out : Tensor();  // relu'(sum) = [out > 0]; the next block keeps out too
  return out;
}

Tensor Bottleneck::backward(const Tensor& dy) {
  CXR_CHECK(out_.defined(), "Bottleneck.backward() called without a forward that kept its input (a forward under NoGradGuard keeps nothing)");
  Tensor d = relu_backward(out_, dy);
  Tensor dmain = conv3_->backward(bn3_->backward(d));
  if (!fused_) dmain = relu_backward(relu2_out_, dmain);
  dmain = conv2_->backward(bn2_->backward(dmain));
  if (!fused_) dmain = relu_backward(relu1_out_, dmain);
  dmain = conv1_->backward(bn1_->backward(dmain));
  add_(dmain, downsample_ ? downsample_->backward(d) : d);
  relu1_out_ = relu2_out_ = out_ = Tensor();
  return dmain;
}

// --- ResNet --------------------------------------------------------------------------------

ResNet::ResNet(const ResNetConfig& config, int num_classes) : config_(config) {
  conv1_ = &register_module("conv1", std::make_unique<Conv2d>(3, 64, Conv2dOptions{.kernel = 7, .stride = 2,
                                                                                     .padding = 3, .bias = false}));
  const bool fused = execution().fuse_batch_norm_activation;
  bn1_ = &register_module("bn1", bn_relu(64, fused));
  if (!fused) relu_ = &register_module("relu", std::make_unique<ReLU>());
  maxpool_ = &register_module("maxpool", std::make_unique<MaxPool2d>(3, 2, 1));
  const bool bottleneck = config.block == ResNetBlock::Bottleneck;
  const int expansion = bottleneck ? Bottleneck::kExpansion : BasicBlock::kExpansion;
  std::int64_t in = 64;
  for (int s = 0; s < 4; ++s) {
    const std::int64_t width = 64 << s;
    auto stage = std::make_unique<Sequential>();
    for (int b = 0; b < config.layers[s]; ++b) {
      const int stride = (s > 0 && b == 0) ? 2 : 1;
      if (bottleneck) stage->add(std::make_unique<Bottleneck>(in, width, stride));
      else stage->add(std::make_unique<BasicBlock>(in, width, stride));
      in = width * expansion;
    }
    stages_[s] = &register_module("layer" + std::to_string(s + 1), std::move(stage));
  }
  add_heads(in, num_classes);
  // torchvision: kaiming_normal_(fan_out, relu) for every convolution; BN 1 and 0 (defaults).
  for (auto& [name, p] : named_parameters())
    if (p->value.dim() == 4) kaiming_normal_fan_out(p->value);
}

Tensor ResNet::forward_features(const Tensor& x) {
  CXR_CHECK(x.dim() == 4 && x.size(1) == 3, config_.name, ": expected images (N, 3, H, W), found ", x.str());
  Tensor h = conv_bn_forward(*conv1_, *bn1_, x);  // fused: relu(bn1(conv1(x)))
  if (relu_) h = relu_->forward(h);
  h = maxpool_->forward(h);
  for (Sequential* stage : stages_) h = stage->forward(h);
  return h;
}

Tensor ResNet::backward_features(const Tensor& dfeatures) {
  Tensor d = dfeatures;
  for (auto it = stages_.rbegin(); it != stages_.rend(); ++it) d = (*it)->backward(d);
  d = maxpool_->backward(d);
  if (relu_) d = relu_->backward(d);
  return conv1_->backward(bn1_->backward(d));
}

std::unique_ptr<CxrModel> make_resnet18(int num_classes) {
  return std::make_unique<ResNet>(ResNetConfig{"resnet18", ResNetBlock::Basic, {2, 2, 2, 2}}, num_classes);
}
std::unique_ptr<CxrModel> make_resnet34(int num_classes) {
  return std::make_unique<ResNet>(ResNetConfig{"resnet34", ResNetBlock::Basic, {3, 4, 6, 3}}, num_classes);
}
std::unique_ptr<CxrModel> make_resnet50(int num_classes) {
  return std::make_unique<ResNet>(ResNetConfig{"resnet50", ResNetBlock::Bottleneck, {3, 4, 6, 3}}, num_classes);
}

}  // namespace cxr
