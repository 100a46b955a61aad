// DenseNet-121 (torchvision.models.densenet121, 0.14: growth 32, blocks (6, 12, 24, 16),
// bn_size 4, 64 initial features, drop_rate 0), CheXNet's and TorchXRayVision's
// architecture, with cxr's two heads instead of torchvision's "classifier" (see heads.h).
//
//   features.conv0   7x7/2 conv 3 -> 64 (no bias), norm0 + relu0, pool0 (max 3x3/2 pad 1)
//   features.denseblockB (B = 1..4), L = 6, 12, 24, 16 layers; layer M (1-based) sees
//       c_in = c_block + (M - 1) 32 channels, the concatenation of the block's input and the
//       outputs of the layers before it, and adds 32 (the growth rate):
//     denselayerM: norm1 + relu1 (c_in) -> conv1 1x1 c_in -> 128 (bn_size x growth)
//                  -> norm2 + relu2 -> conv2 3x3 pad 1, 128 -> 32
//   features.transitionB (B = 1..3): norm + relu -> conv 1x1 C -> C/2 -> pool (avg 2x2/2)
//   features.norm5 (1024), then the ReLU and the global average pool of torchvision's forward.
//   F = 1024 features; feature map stride 32 (224 -> 7x7). 6,953,856 parameters without the
//   heads (torchvision: 7,978,856 with its 1000-class classifier).
// No parameter has a bias except the batch norms'. Each "normX + reluX" pair is one
// BatchNorm2d with the ReLU fused (layers/batch_norm.h); torchvision's relu modules have no
// parameters or buffers, so the state_dict keys are torchvision's:
//   features.conv0.weight, features.norm0.running_mean, features.denseblock1.denselayer1.norm1.weight,
//   features.denseblock1.denselayer1.conv2.weight, features.transition1.conv.weight,
//   features.norm5.num_batches_tracked, ..., then cls_head.* and box_head.*.
// The final ReLU is fused into norm5, so forward_features (and the CAMs' feature map) is
// relu(norm5(...)), the map torchvision pools.
//
// The concatenation (kernels/transpose_nc.h): a dense block keeps its features channel-major,
// (C, N, H, W), in one buffer as wide as its output. A layer's input, the first c_in channels,
// is then a contiguous prefix of the buffer: norm1 and the 1x1 conv1 read it in place, viewed as
// (1, c_in, N H, W) (a batch norm's statistics and a 1x1 convolution do not care how the N H W
// positions of a channel are arranged). Only the 3x3 conv2 needs the images apart: norm2's
// 128-channel output goes to (N, 128, H, W), and conv2's 32 output channels are written into the
// buffer's slice by transpose_nc_into. Backward: the gradient buffer has the same layout; layer
// M, last first, reads its 32-channel slice (complete by then: the layers after it have added
// their parts) and adds its d(input) to the prefix. Per layer a fixed number of channels is
// copied (32 + 128, and back): the block's copies grow linearly with its depth, torch.cat's in
// every layer quadratically. The block's input and output are (N, C, H, W), as everywhere else.
//
// Memory-efficient mode (DenseNetOptions::memory_efficient, on by default: torchvision's
// memory_efficient=True, which CheXNet-style training at 224 px and batch 16+ needs): the
// bottleneck's input, relu1(norm1(concatenation)), c_in channels per layer (quadratic in the
// depth of a block over the whole block), is not kept for conv1's weight gradient but
// recomputed in backward from the buffer and norm1's batch statistics (kept: 2 c_in floats).
// What stays per layer: conv1's output (norm2's input) and conv2's input, 128 channels each, and
// the block's buffer. Off: conv1 keeps its input, as torchvision's default. Both modes compute
// the same values: the recomputation runs the forward's op on the forward's inputs
// (tests/models/test_densenet.cpp). Under SyncBatchNorm (--sync-bn) norm1 takes the global
// batch's statistics from its own forward and the layer keeps the bottleneck's input instead.
// Init as torchvision: convolutions kaiming_normal_ (fan_in, gain sqrt 2), BN weight 1, bias 0;
// the heads keep the default of add_heads.
#pragma once

#include <array>
#include <memory>
#include <vector>

#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/pooling.h"
#include "models/heads.h"

namespace cxr {

struct DenseNetOptions {
  int num_classes = 14;
  int growth_rate = 32;
  std::array<int, 4> block_config = {6, 12, 24, 16};
  int num_init_features = 64;
  int bn_size = 4;
  bool memory_efficient = true;
  // Tests build smaller networks with the same code (other growth rates, depths and widths);
  // architecture() still says "densenet121".
};

// One dense layer. It runs inside its block, on the block's channel-major buffers: forward()
// and backward() of Module are not used (they throw).
class DenseLayer : public Module {
 public:
  DenseLayer(std::int64_t in_channels, int growth_rate, int bn_size, bool memory_efficient);
  // buffer: (C_block_out, N, H, W); reads channels [0, c_in), writes [c_in, c_in + growth).
  void forward_into(Tensor& buffer);
  // dbuffer (f32, same shape): reads the layer's slice, adds d(input) to channels [0, c_in).
  void backward_into(Tensor& dbuffer);
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::string type_name() const override { return "_DenseLayer"; }
  std::int64_t in_channels() const { return in_channels_; }

 private:
  std::int64_t in_channels_;
  int growth_;
  bool memory_efficient_;
  BatchNorm2d *norm1_, *norm2_;  // ReLU fused
  Conv2d *conv1_, *conv2_;
  // Kept for the recomputation: the buffer (a view: the prefix is read again), norm1's batch
  // mean and biased variance (training) and whether the operands were bf16; undefined mean:
  // an eval forward (the running statistics are used again).
  Tensor buffer_, mean1_, var1_;
  bool recompute_ = false, bf16_operands_ = false;
  Shape image_shape_;  // (N, H, W) of the last forward
  Tensor bottleneck_input(const Tensor& prefix, bool for_backward);
};

class DenseBlock : public Module {
 public:
  DenseBlock(int num_layers, std::int64_t in_channels, int growth_rate, int bn_size, bool memory_efficient);
  Tensor forward(const Tensor& x) override;    // (N, C, H, W) -> (N, C + L growth, H, W)
  Tensor backward(const Tensor& dy) override;  // the reverse, f32
  std::string type_name() const override { return "_DenseBlock"; }
  std::int64_t out_channels() const { return out_channels_; }

 private:
  std::int64_t in_channels_, out_channels_;
  std::vector<DenseLayer*> layers_;
  Tensor buffer_;  // (C_out, N, H, W), kept for backward: the layers' inputs
};

class DenseNet : public CxrModel {
 public:
  explicit DenseNet(const DenseNetOptions& o = {});
  Tensor forward_features(const Tensor& x) override;
  Tensor backward_features(const Tensor& dfeatures) override;
  void set_input_grad(bool on) override { conv0_->set_input_grad(on); }
  std::string architecture() const override { return "densenet121"; }
  std::string type_name() const override { return "DenseNet"; }
  Sequential& features() { return *features_; }

 private:
  Sequential* features_;
  Conv2d* conv0_;
  BatchNorm2d* norm0_;
  MaxPool2d* pool0_;
  std::vector<Module*> stages_;  // denseblock1, transition1, ..., denseblock4
  BatchNorm2d* norm5_;
};

std::unique_ptr<CxrModel> make_densenet121(int num_classes = 14);

}  // namespace cxr
