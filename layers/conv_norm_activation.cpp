// Conv2dNormActivation (see conv_norm_activation.h): builds the three children.
#include "layers/conv_norm_activation.h"

#include <atomic>

#include "kernels/conv2d_bn.h"
#include "kernels/execution.h"
#include "layers/activation.h"
#include "layers/conv2d.h"
#include "layers/layer_norm.h"

namespace cxr {

namespace {
std::atomic<std::int64_t> g_conv_bn_fused{0};
}  // namespace

std::int64_t conv_bn_fused_forwards() { return g_conv_bn_fused.load(); }

Tensor conv_bn_forward(Conv2d& conv, BatchNorm2d& bn, const Tensor& x) {
  // --sync-bn: the batch norm needs the global batch's statistics, so the two ops run apart.
  if (bn.training() && sync_batch_norm_comm() != nullptr) return bn.forward(conv.forward(x));
  const Conv2d::Operands in = conv.forward_operands(x);
  Conv2dBnOutput r = conv2d_bn_forward(in.x, in.weight, in.bias, conv.params(), in.y_dtype, bn.op_args(),
                                       /*want_h=*/bn.keeps_for_backward());
  conv.keep_for_backward(in);
  bn.keep_forward(r.h, r.saved_mean, r.saved_invstd);
  if (r.stats_in_epilogue) g_conv_bn_fused.fetch_add(1);
  return r.y;
}

Tensor Conv2dNormActivation::forward(const Tensor& x) {
  if (!bn_) return Sequential::forward(x);
  const Tensor h = conv_bn_forward(*conv_, *bn_, x);
  return activation_ ? activation_->forward(h) : h;
}

Conv2dNormActivation::Conv2dNormActivation(std::int64_t in_channels, std::int64_t out_channels, ConvNormActOptions o)
    : out_channels_(out_channels) {
  const Conv2dOptions conv{.kernel = o.kernel,
                           .stride = o.stride,
                           .padding = o.padding >= 0 ? o.padding : (o.kernel - 1) / 2,
                           .dilation = 1,
                           .groups = o.groups,
                           .bias = o.bias.value_or(o.norm == NormKind::None),
                           .input_grad = o.input_grad};
  conv_ = &add(std::make_unique<Conv2d>(in_channels, out_channels, conv));
  // BatchNorm2d followed by ReLU/SiLU: one fused module at "1" and no "2" (the activation has
  // no parameters or buffers, so the state_dict is unchanged; kernels/batch_norm.h).
  const bool fuse = o.norm == NormKind::BatchNorm2d && o.activation && fusable_activation(*o.activation) &&
                    execution().fuse_batch_norm_activation;
  switch (o.norm) {
    case NormKind::BatchNorm2d: {
      BatchNormOptions bn = o.bn;
      bn.activation = fuse ? o.activation : std::nullopt;
      bn_ = &add(std::make_unique<BatchNorm2d>(out_channels, bn));
      break;
    }
    case NormKind::LayerNorm2d:
      add(std::make_unique<LayerNorm2d>(out_channels, o.layer_norm_eps));
      break;
    case NormKind::None:
      break;
  }
  if (o.activation && !fuse) activation_ = &add(make_activation(*o.activation));
}

}  // namespace cxr
