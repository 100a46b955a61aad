// The batch norm's pieces for a batch split over processes: argument checks, output allocation,
// device dispatch (math in kernels/batch_norm_sync.h). x may be f32 or bf16: the CPU widens it to
// f32 around its loops, the CUDA kernels read bf16 themselves.
#include "kernels/batch_norm_sync.h"

#include <string>

#include "kernels/batch_norm_checks.h"
#include "kernels/cast.h"
#include "kernels/float_tensor.h"

namespace cxr {

namespace {

using bn_checks::check_channel_vector;
using bn_checks::check_x;
using bn_checks::op_name;

// The checks both backward pieces share: x, dy of x's shape, weight, bias, mean, invstd (C).
void check_backward(const char* op, const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& bias,
                    const Tensor& mean, const Tensor& invstd) {
  check_x(op, x);
  check_f32_input(op, "dy", dy, &x);
  check_same_shape(op, "dy", dy, "x", x);
  check_channel_vector(op, "weight", weight, x);
  check_channel_vector(op, "bias", bias, x);
  check_channel_vector(op, "mean", mean, x);
  check_channel_vector(op, "invstd", invstd, x);
}

struct Sizes {
  std::int64_t N, C, HW;
};
Sizes sizes_of(const Tensor& x) { return {x.size(0), x.size(1), x.size(2) * x.size(3)}; }

}  // namespace

BatchStats batch_norm2d_batch_stats(const Tensor& x) {
  const char* op = "batch_norm2d_batch_stats";
  check_x(op, x);
  const Sizes s = sizes_of(x);
  CXR_CHECK(s.N * s.HW >= 1, op, ": expected at least 1 value per channel, found x of shape ", shape_str(x.shape()));
  BatchStats r{Tensor::empty({s.C}, DType::F32, x.device()), Tensor::empty({s.C}, DType::F32, x.device())};
  if (x.is_cpu())
    cpu::batch_norm2d_batch_stats(to_f32(x).f32(), r.mean.f32(), r.var.f32(), s.N, s.C, s.HW);
  else
    visit_float_type(x.dtype(), [&](auto e) {
      using T = decltype(e);
      cuda::batch_norm2d_batch_stats(x.data<T>(), r.mean.f32(), r.var.f32(), s.N, s.C, s.HW);
    });
  return r;
}

BatchNormGradSums batch_norm2d_backward_reduce(BnActivation act, const Tensor& dy, const Tensor& x,
                                               const Tensor& weight, const Tensor& bias, const Tensor& mean,
                                               const Tensor& invstd) {
  const std::string name = op_name("backward_reduce", act);
  const char* op = name.c_str();
  check_backward(op, dy, x, weight, bias, mean, invstd);
  const Sizes s = sizes_of(x);
  BatchNormGradSums r{Tensor::empty({s.C}, DType::F32, x.device()), Tensor::empty({s.C}, DType::F32, x.device())};
  if (x.is_cpu())
    cpu::batch_norm2d_backward_reduce(act, dy.f32(), to_f32(x).f32(), weight.f32(), bias.f32(), mean.f32(),
                                      invstd.f32(), r.sum_g.f32(), r.sum_gxhat.f32(), s.N, s.C, s.HW);
  else
    visit_float_type(x.dtype(), [&](auto e) {
      using T = decltype(e);
      cuda::batch_norm2d_backward_reduce(act, dy.f32(), x.data<T>(), weight.f32(), bias.f32(), mean.f32(),
                                         invstd.f32(), r.sum_g.f32(), r.sum_gxhat.f32(), s.N, s.C, s.HW);
    });
  return r;
}

Tensor batch_norm2d_backward_elemt(BnActivation act, const Tensor& dy, const Tensor& x, const Tensor& weight,
                                   const Tensor& bias, const Tensor& mean, const Tensor& invstd,
                                   const Tensor& sum_g, const Tensor& sum_gxhat, std::int64_t count) {
  const std::string name = op_name("backward_elemt", act);
  const char* op = name.c_str();
  check_backward(op, dy, x, weight, bias, mean, invstd);
  check_channel_vector(op, "sum_g", sum_g, x);
  check_channel_vector(op, "sum_gxhat", sum_gxhat, x);
  const Sizes s = sizes_of(x);
  CXR_CHECK(count >= 1, op, ": expected count (the whole batch's N*H*W) >= 1, found ", count);
  CXR_CHECK(count >= s.N * s.HW, op, ": count (the whole batch's N*H*W) must be at least this part's ", s.N * s.HW,
            ", found ", count);
  Tensor dx = Tensor::empty(x.shape(), DType::F32, x.device());
  if (x.is_cpu())
    cpu::batch_norm2d_backward_elemt(act, dy.f32(), to_f32(x).f32(), weight.f32(), bias.f32(), mean.f32(),
                                     invstd.f32(), sum_g.f32(), sum_gxhat.f32(), dx.f32(), s.N, s.C, s.HW, count);
  else
    visit_float_type(x.dtype(), [&](auto e) {
      using T = decltype(e);
      cuda::batch_norm2d_backward_elemt(act, dy.f32(), x.data<T>(), weight.f32(), bias.f32(), mean.f32(),
                                        invstd.f32(), sum_g.f32(), sum_gxhat.f32(), dx.f32(), s.N, s.C, s.HW, count);
    });
  return dx;
}

}  // namespace cxr
