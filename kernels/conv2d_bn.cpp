// Tensor-level convolution + batch norm (math, traffic and the fusion decision in
// kernels/conv2d_bn.h): the convolution with or without its statistics epilogue, the combine
// kernel on CUDA or the CPU reference statistics, then the batch norm.
#include "kernels/conv2d_bn.h"

#include "kernels/cast.h"
#include "kernels/execution.h"
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

Conv2dBnOutput conv2d_bn_forward(const Tensor& x, const Tensor& w, const Tensor& conv_bias, const Conv2dParams& p,
                                 DType y_dtype, const BatchNormArgs& bn) {
  Conv2dBnOutput r;
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
