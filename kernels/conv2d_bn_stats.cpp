// Tensor-level convolution + batch-norm statistics (math and traffic in kernels/conv2d_bn_stats.h):
// the convolution with its statistics epilogue (conv2d_forward_tile_stats), then the combine
// kernel on CUDA, or the CPU reference statistics.
#include "kernels/conv2d_bn_stats.h"

#include "kernels/cast.h"

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

}  // namespace cxr
