// Tensor-level convolution + batch norm (math, traffic and the fusion decision in
// kernels/conv2d_bn.h): the convolution with or without its statistics epilogue, the combine
// kernel on CUDA or the CPU reference statistics, then the batch norm.
#include "kernels/conv2d_bn.h"

#include <vector>

#include "kernels/cast.h"
#include "kernels/cpu/frozen_weights.h"
#include "kernels/execution.h"
#include "kernels/fold_batch_norm.h"
#include "kernels/library.h"

namespace cxr {

Conv2dBnStats conv2d_forward_bn_stats(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p,
                                      DType y_dtype) {
  Conv2dBnStats r;
  Tensor partial;
  r.y = conv2d_forward_tile_stats(x, w, bias, p, partial, /*want_stats=*/true, y_dtype);
  const std::int64_t N = r.y.size(0), K = r.y.size(1), HW = r.y.size(2) * r.y.size(3);
  r.mean = Tensor::empty({K}, DType::F32, r.y.device());
  r.var = Tensor::empty({K}, DType::F32, r.y.device());
  if (r.y.is_cpu()) {
    const Tensor y = to_f32(r.y);  // the values as stored (rounded, for a bf16 y), widened exactly
    cpu::channel_mean_var(y.f32(), r.mean.f32(), r.var.f32(), N, K, HW);
  } else {
    CXR_CHECK(partial.defined(), "conv2d_forward_bn_stats: the CUDA convolution returned no tile statistics");
    cuda::conv2d_bn_stats_combine(partial.f32(), partial.size(0), K, N * HW, r.mean.f32(), r.var.f32());
  }
  return r;
}

namespace {

// w' then b' (kernels/fold_batch_norm.h), K C' R S + K floats, kept in the frozen-weights cache
// for the rest of the scope (and its packing then kept under w''s address); nullptr outside a
// FrozenWeightsScope, where folding on every call would cost a pass over the weights. The
// entry's identity includes the batch norm's tensors (and the conv bias), so one w used with two
// batch norms has two entries.
const float* folded_weights(const Conv2dDims& d, const float* w, const float* conv_bias, const BatchNormArgs& bn) {
  const std::int64_t per_channel = static_cast<std::int64_t>(d.Cg()) * d.R * d.S;
  std::uint64_t sources = cpu::digest_floats(&bn.eps, 1);
  for (const Tensor* t : {&bn.weight, &bn.bias, &bn.running_mean, &bn.running_var})
    sources = cpu::digest_floats(t->f32(), d.K, sources);
  if (conv_bias) sources = cpu::digest_floats(conv_bias, d.K, sources);
  return cpu::frozen_derived(
      cpu::FrozenKind::FoldedBatchNorm, w, d.K, per_channel, d.K * per_channel + d.K,
      [&](float* room) {
        cpu::fold_batch_norm(w, conv_bias, bn.weight.f32(), bn.bias.f32(), bn.running_mean.f32(),
                             bn.running_var.f32(), bn.eps, d.K, per_channel, room, room + d.K * per_channel);
      },
      sources);
}

// Evaluation's batch norm as the CPU convolution's epilogue: y = act(batch_norm(conv(x))) with no
// h tensor (kernels/conv2d_bn.h). x and w are checked by the caller's conditions and
// conv2d_dims; the conv bias and the batch norm's four (K) tensors here, each error naming them.
Tensor conv2d_bn_eval_cpu(const Tensor& x, const Tensor& w, const Tensor& conv_bias, const Conv2dParams& p,
                          const BatchNormArgs& bn) {
  const Conv2dDims d = conv2d_dims(x.shape(), w.shape(), p);
  if (conv_bias.defined()) {
    CXR_CHECK(conv_bias.is_cpu() && conv_bias.dtype() == DType::F32 && conv_bias.is_contiguous() &&
                  conv_bias.shape() == Shape{d.K},
              "conv2d: bias must be a contiguous f32 (", d.K, ") CPU tensor, got ", conv_bias.str());
  }
  for (const Tensor* t : {&bn.weight, &bn.bias, &bn.running_mean, &bn.running_var})
    CXR_CHECK(t->defined() && t->is_cpu() && t->dtype() == DType::F32 && t->is_contiguous() &&
                  t->shape() == Shape{d.K},
              "batch_norm2d (evaluation): weight, bias and running statistics must be contiguous f32 (", d.K,
              ") CPU tensors, one per channel of the convolution's output; got ", t->defined() ? t->str() : "none");
  Tensor y = Tensor::empty({d.N, d.K, d.P, d.Q}, DType::F32, Device::CPU);
  const float* b = conv_bias.defined() ? conv_bias.f32() : nullptr;
  if (execution().fold_batch_norm) {
    if (const float* folded = folded_weights(d, w.f32(), b, bn)) {
      const std::int64_t weights = w.numel();
      const cpu::BnEvalChannels act = cpu::BnEvalChannels::activation_only(bn.act);
      cpu::conv2d_forward(d, x.f32(), folded, folded + weights, y.f32(),
                          bn.act == BnActivation::Identity ? nullptr : &act);
      return y;
    }
  }
  std::vector<float> invstd(static_cast<std::size_t>(d.K));
  cpu::batch_norm2d_eval_invstd(bn.running_var.f32(), bn.eps, invstd.data(), d.K);
  const cpu::BnEvalChannels channels{bn.running_mean.f32(), invstd.data(), bn.weight.f32(), bn.bias.f32(), bn.act};
  cpu::conv2d_forward(d, x.f32(), w.f32(), b, y.f32(), &channels);
  return y;
}

}  // namespace

Conv2dBnOutput conv2d_bn_forward(const Tensor& x, const Tensor& w, const Tensor& conv_bias, const Conv2dParams& p,
                                 DType y_dtype, const BatchNormArgs& bn, bool want_h) {
  Conv2dBnOutput r;
  if (!bn.training && !want_h && x.is_cpu() && w.is_cpu() && x.dtype() == DType::F32 && w.dtype() == DType::F32 &&
      y_dtype == DType::F32 && x.is_contiguous() && w.is_contiguous()) {
    r.y = conv2d_bn_eval_cpu(x, w, conv_bias, p, bn);
    return r;
  }
  Tensor running_mean = bn.running_mean, running_var = bn.running_var;  // handles: updated in place
  // The library path's convolutions (cuDNN) have no statistics epilogue.
  r.stats_in_epilogue = bn.training && x.is_cuda() && !library::wanted(x) && execution().fuse_conv_batch_norm_statistics &&
                        cuda::conv2d_forward_stats_in_epilogue(conv2d_dims(x.shape(), w.shape(), p),
                                                               w.dtype() == DType::BF16);
  BatchNormOutput o;
  if (r.stats_in_epilogue) {
    Conv2dBnStats s = conv2d_forward_bn_stats(x, w, conv_bias, p, y_dtype);
    r.h = std::move(s.y);
    o = batch_norm2d_train_from_stats(bn.act, r.h, s.mean, s.var, bn.weight, bn.bias, running_mean, running_var,
                                      bn.momentum, bn.eps);
  } else {
    r.h = conv2d_forward(x, w, conv_bias, p, y_dtype);
    if (bn.training)
      o = batch_norm2d_train(bn.act, r.h, bn.weight, bn.bias, running_mean, running_var, bn.momentum, bn.eps);
    else
      o.y = batch_norm2d_eval(bn.act, r.h, bn.weight, bn.bias, running_mean, running_var, bn.eps);
  }
  r.y = std::move(o.y);
  r.saved_mean = std::move(o.saved_mean);
  r.saved_invstd = std::move(o.saved_invstd);
  return r;
}

}  // namespace cxr
