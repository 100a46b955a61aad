// Conv2dNormActivation (see conv_norm_activation.h): builds the three children.
#include "layers/conv_norm_activation.h"

#include "layers/activation.h"
#include "layers/conv2d.h"
#include "layers/layer_norm.h"

namespace cxr {

Conv2dNormActivation::Conv2dNormActivation(std::int64_t in_channels, std::int64_t out_channels, ConvNormActOptions o)
    : out_channels_(out_channels) {
  const Conv2dOptions conv{.kernel = o.kernel,
                           .stride = o.stride,
                           .padding = o.padding >= 0 ? o.padding : (o.kernel - 1) / 2,
                           .dilation = 1,
                           .groups = o.groups,
                           .bias = o.bias.value_or(o.norm == NormKind::None),
                           .input_grad = o.input_grad};
  add(std::make_unique<Conv2d>(in_channels, out_channels, conv));
  // BatchNorm2d followed by ReLU/SiLU: one fused module at "1" and no "2" (the activation has
  // no parameters or buffers, so the state_dict is unchanged; kernels/batch_norm_act.h).
  const bool fuse = o.norm == NormKind::BatchNorm2d && o.activation && fusable_activation(*o.activation) &&
                    fuse_batch_norm_activation();
  switch (o.norm) {
    case NormKind::BatchNorm2d: {
      BatchNormOptions bn = o.bn;
      bn.activation = fuse ? o.activation : std::nullopt;
      add(std::make_unique<BatchNorm2d>(out_channels, bn));
      break;
    }
    case NormKind::LayerNorm2d:
      add(std::make_unique<LayerNorm2d>(out_channels, o.layer_norm_eps));
      break;
    case NormKind::None:
      break;
  }
  if (o.activation && !fuse) add(make_activation(*o.activation));
}

}  // namespace cxr
