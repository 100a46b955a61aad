// DenseNet-121 with cxr's heads (see densenet.h for the layout of the concatenation and the
// memory-efficient mode).
#include "models/densenet.h"

#include <cmath>
#include <string>

#include "kernels/add.h"
#include "kernels/batch_norm_sync.h"
#include "kernels/cast.h"
#include "kernels/execution.h"
#include "kernels/transpose_nc.h"
#include "layers/conv_norm_activation.h"
#include "layers/init.h"

namespace cxr {

namespace {

std::unique_ptr<BatchNorm2d> bn_relu(std::int64_t channels) {
  return std::make_unique<BatchNorm2d>(channels, BatchNormOptions{.activation = Activation::ReLU});
}

std::unique_ptr<Conv2d> conv(std::int64_t in, std::int64_t out, int kernel, int stride = 1, int padding = 0) {
  return std::make_unique<Conv2d>(in, out,
                                  Conv2dOptions{.kernel = kernel, .stride = stride, .padding = padding, .bias = false});
}

// The dtype of the activations between layers: bf16 under autocast (the convolutions' outputs
// are), f32 otherwise.
DType activation_dtype() {
  return execution().precision == Precision::BF16 ? DType::BF16 : DType::F32;
}

// A (C, N, H, W) prefix of channels [0, c) viewed as one image (1, c, N H, W): the batch norm's
// statistics and the 1x1 convolution see every position of a channel either way.
Tensor as_one_image(const Tensor& channel_major, std::int64_t c) {
  return channel_major.narrow(0, 0, c).view({1, c, channel_major.size(1) * channel_major.size(2),
                                             channel_major.size(3)});
}

}  // namespace

// --- DenseLayer ----------------------------------------------------------------------------

DenseLayer::DenseLayer(std::int64_t in_channels, int growth_rate, int bn_size, bool memory_efficient)
    : in_channels_(in_channels), growth_(growth_rate), memory_efficient_(memory_efficient) {
  const std::int64_t width = static_cast<std::int64_t>(bn_size) * growth_rate;
  norm1_ = &register_module("norm1", bn_relu(in_channels));
  conv1_ = &register_module("conv1", conv(in_channels, width, 1));
  norm2_ = &register_module("norm2", bn_relu(width));
  conv2_ = &register_module("conv2", conv(width, growth_rate, 3, 1, 1));
}

Tensor DenseLayer::forward(const Tensor&) {
  CXR_FAIL("_DenseLayer.forward: a dense layer runs inside its _DenseBlock (forward_into)");
}
Tensor DenseLayer::backward(const Tensor&) {
  CXR_FAIL("_DenseLayer.backward: a dense layer runs inside its _DenseBlock (backward_into)");
}

// relu1(norm1(prefix)). In the forward (for_backward false) through norm1, which updates its
// running statistics and keeps what its backward needs; in training without SyncBatchNorm from
// batch statistics computed here and kept (mean1_, var1_), so that the recomputation in
// backward (for_backward true) runs the same op on the same inputs and gives the same values,
// without touching norm1's state.
Tensor DenseLayer::bottleneck_input(const Tensor& prefix, bool for_backward) {
  if (for_backward) {
    const BatchNormArgs a = norm1_->op_args();
    if (mean1_.defined()) {
      Tensor no_running_mean, no_running_var;
      return batch_norm2d_train_from_stats(BnActivation::ReLU, prefix, mean1_, var1_, a.weight, a.bias,
                                           no_running_mean, no_running_var, a.momentum, a.eps)
          .y;
    }
    return batch_norm2d_eval(BnActivation::ReLU, prefix, a.weight, a.bias, a.running_mean, a.running_var, a.eps);
  }
  mean1_ = var1_ = Tensor();
  if (!training() || sync_batch_norm_comm() != nullptr) return norm1_->forward(prefix);
  const BatchStats st = batch_norm2d_batch_stats(prefix);
  mean1_ = st.mean;
  var1_ = st.var;
  return norm1_->forward_from_stats(prefix, st.mean, st.var);
}

void DenseLayer::forward_into(Tensor& buffer) {
  CXR_CHECK(buffer.dim() == 4 && buffer.size(0) >= in_channels_ + growth_,
            "_DenseLayer: expected a channel-major buffer of at least ", in_channels_ + growth_, " channels, found ",
            buffer.str());
  const std::int64_t N = buffer.size(1), H = buffer.size(2), W = buffer.size(3);
  image_shape_ = {N, H, W};
  const Tensor prefix = as_one_image(buffer, in_channels_);
  const Tensor z1 = bottleneck_input(prefix, false);
  bf16_operands_ = execution().precision == Precision::BF16;
  const Tensor h = conv_bn_forward(*conv1_, *norm2_, z1);  // relu2(norm2(conv1(z1))): (1, 4g, N H, W)
  recompute_ = memory_efficient_ && keeps_for_backward() && sync_batch_norm_comm() == nullptr;
  if (recompute_) {
    conv1_->keep_for_backward(Conv2d::Operands{});  // drop z1: backward recomputes it
    buffer_ = buffer;
  } else {
    buffer_ = mean1_ = var1_ = Tensor();
  }
  // conv2 is 3x3: the images apart again, (N, 4g, H, W).
  const Tensor z2 = transpose_nc(h.view({h.size(1), N, H, W}));
  Tensor y = conv2_->forward(z2);  // (N, g, H, W)
  if (y.dtype() != buffer.dtype()) y = buffer.dtype() == DType::BF16 ? to_bf16(y) : to_f32(y);
  Tensor slice = buffer.narrow(0, in_channels_, growth_);
  transpose_nc_into(slice, y);
}

void DenseLayer::backward_into(Tensor& dbuffer) {
  CXR_CHECK(image_shape_.size() == 3, "_DenseLayer.backward_into called without a forward");
  const std::int64_t N = image_shape_[0], H = image_shape_[1], W = image_shape_[2];
  CXR_CHECK(dbuffer.dim() == 4 && dbuffer.size(0) >= in_channels_ + growth_ && dbuffer.size(1) == N &&
                dbuffer.size(2) == H && dbuffer.size(3) == W,
            "_DenseLayer.backward_into: gradient buffer ", dbuffer.str(), " does not match the forward's (C, ", N, ", ",
            H, ", ", W, ")");
  const Tensor dy = transpose_nc(dbuffer.narrow(0, in_channels_, growth_));  // (N, g, H, W)
  const Tensor dz2 = conv2_->backward(dy);                                   // (N, 4g, H, W)
  const Tensor dh = transpose_nc(dz2);
  const Tensor dz1 = norm2_->backward(dh.view({1, dh.size(0), N * H, W}));
  if (recompute_) {
    const Tensor z1 = bottleneck_input(as_one_image(buffer_, in_channels_), true);
    const Tensor& w = conv1_->weight().value;
    conv1_->keep_for_backward(Conv2d::Operands{bf16_operands_ ? to_bf16(z1) : to_f32(z1),
                                               bf16_operands_ ? to_bf16(w) : w, Tensor(),
                                               bf16_operands_ ? DType::BF16 : DType::F32});
    buffer_ = mean1_ = var1_ = Tensor();
    recompute_ = false;
  }
  const Tensor dprefix = norm1_->backward(conv1_->backward(dz1));  // (1, c_in, N H, W) f32
  Tensor dst = as_one_image(dbuffer, in_channels_);
  add_(dst, dprefix);
}

// --- DenseBlock ----------------------------------------------------------------------------

DenseBlock::DenseBlock(int num_layers, std::int64_t in_channels, int growth_rate, int bn_size, bool memory_efficient)
    : in_channels_(in_channels), out_channels_(in_channels + static_cast<std::int64_t>(num_layers) * growth_rate) {
  for (int i = 0; i < num_layers; ++i)
    layers_.push_back(&register_module(
        "denselayer" + std::to_string(i + 1),
        std::make_unique<DenseLayer>(in_channels + static_cast<std::int64_t>(i) * growth_rate, growth_rate, bn_size,
                                     memory_efficient)));
}

Tensor DenseBlock::forward(const Tensor& x_in) {
  CXR_CHECK(x_in.dim() == 4 && x_in.size(1) == in_channels_, "_DenseBlock: expected (N, ", in_channels_,
            ", H, W), found ", x_in.str());
  const DType dt = activation_dtype();
  Tensor x = x_in.contiguous();
  if (x.dtype() != dt) x = dt == DType::BF16 ? to_bf16(x) : to_f32(x);
  Tensor buffer = Tensor::empty({out_channels_, x.size(0), x.size(2), x.size(3)}, dt, x.device());
  Tensor head = buffer.narrow(0, 0, in_channels_);
  transpose_nc_into(head, x);
  for (DenseLayer* layer : layers_) layer->forward_into(buffer);
  return transpose_nc(buffer);  // (N, C_out, H, W)
}

Tensor DenseBlock::backward(const Tensor& dy) {
  CXR_CHECK(dy.dim() == 4 && dy.size(1) == out_channels_, "_DenseBlock.backward: expected dy (N, ", out_channels_,
            ", H, W), found ", dy.str());
  Tensor dbuffer = transpose_nc(to_f32(dy.contiguous()));  // (C_out, N, H, W)
  for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) (*it)->backward_into(dbuffer);
  return transpose_nc(dbuffer.narrow(0, 0, in_channels_));
}

// --- DenseNet ------------------------------------------------------------------------------

DenseNet::DenseNet(const DenseNetOptions& o) {
  CXR_CHECK(o.growth_rate > 0 && o.bn_size > 0 && o.num_init_features > 0,
            "DenseNet: growth_rate, bn_size and num_init_features must be positive");
  auto features = std::make_unique<Sequential>();
  conv0_ = &features->add(conv(3, o.num_init_features, 7, 2, 3), "conv0");
  norm0_ = &features->add(bn_relu(o.num_init_features), "norm0");  // norm0 + relu0
  pool0_ = &features->add(std::make_unique<MaxPool2d>(3, 2, 1), "pool0");
  std::int64_t c = o.num_init_features;
  for (int b = 0; b < 4; ++b) {
    CXR_CHECK(o.block_config[b] > 0, "DenseNet: every block needs at least one layer");
    auto& block = features->add(
        std::make_unique<DenseBlock>(o.block_config[b], c, o.growth_rate, o.bn_size, o.memory_efficient),
        "denseblock" + std::to_string(b + 1));
    stages_.push_back(&block);
    c = block.out_channels();
    if (b == 3) break;
    auto transition = std::make_unique<Sequential>();
    transition->add(bn_relu(c), "norm");  // norm + relu
    transition->add(conv(c, c / 2, 1), "conv");
    transition->add(std::make_unique<AvgPool2d>(2, 2), "pool");
    stages_.push_back(&features->add(std::move(transition), "transition" + std::to_string(b + 1)));
    c /= 2;
  }
  norm5_ = &features->add(bn_relu(c), "norm5");  // with the ReLU of torchvision's forward
  features_ = &register_module("features", std::move(features));
  add_heads(c, o.num_classes);

  // torchvision: kaiming_normal_ (fan_in, a = 0: std sqrt(2 / fan_in)) for every convolution;
  // BatchNorm2d weight 1, bias 0 (their defaults).
  for (auto& [name, p] : features_->named_parameters())
    if (p->value.dim() == 4)
      normal_(p->value, 0.f, static_cast<float>(std::sqrt(2.0 / static_cast<double>(fan_in(p->value.shape())))));
}

namespace {
// Whether an image side survives the stem (conv0 7x7/2 pad 3, pool0 3x3/2 pad 1) and the three
// transitions' 2x2 pools (each needs a side of 2 or more): 29 px and up.
bool side_fits(std::int64_t side) {
  std::int64_t s = (side - 1) / 2 + 1;  // conv0
  s = (s - 1) / 2 + 1;                  // pool0
  for (int t = 0; t < 3; ++t) {
    if (s < 2) return false;
    s /= 2;
  }
  return side >= 1;
}
}  // namespace

Tensor DenseNet::forward_features(const Tensor& x) {
  CXR_CHECK(x.dim() == 4 && x.size(1) == 3, "densenet121: expected images (N, 3, H, W), found ", x.str());
  CXR_CHECK(side_fits(x.size(2)) && side_fits(x.size(3)), "densenet121: images of ", x.size(2), "x", x.size(3),
            " px are too small: the third transition pools 2x2 after a stride of 16; use 29 px or more");
  Tensor h = conv_bn_forward(*conv0_, *norm0_, x);  // relu0(norm0(conv0(x)))
  h = pool0_->forward(h);
  for (Module* stage : stages_) h = stage->forward(h);
  return norm5_->forward(h);  // relu(norm5(...))
}

Tensor DenseNet::backward_features(const Tensor& dfeatures) {
  Tensor d = norm5_->backward(dfeatures);
  for (auto it = stages_.rbegin(); it != stages_.rend(); ++it) d = (*it)->backward(d);
  d = pool0_->backward(d);
  return conv0_->backward(norm0_->backward(d));
}

std::unique_ptr<CxrModel> make_densenet121(int num_classes) {
  return std::make_unique<DenseNet>(DenseNetOptions{.num_classes = num_classes});
}

}  // namespace cxr
