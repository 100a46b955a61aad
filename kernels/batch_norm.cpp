// Tensor-level batch norm: argument checks, output allocation, device dispatch. x (and y) may be
// f32 or bf16: the CPU widens x and rounds y around its f32 kernels, the CUDA kernels read and
// write bf16 themselves (kernels/batch_norm.h).
#include "kernels/batch_norm.h"

#include "kernels/cast.h"
#include "kernels/float_tensor.h"

namespace cxr {

namespace {
void check_bn_input(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_batch_norm_x(op, x);
  check_f32_input(op, "weight", weight, &x);
  check_shape(op, "weight", weight, {x.size(1)});
  check_f32_input(op, "bias", bias, &x);
  check_shape(op, "bias", bias, {x.size(1)});
}

void check_channel_vector(const char* op, const char* name, const Tensor& t, const Tensor& x) {
  check_f32_input(op, name, t, &x);
  check_shape(op, name, t, {x.size(1)});
}
}  // namespace

TrainForwardBuffers batch_norm_train_buffers(const char* op, const Tensor& x, Tensor& running_mean,
                                             Tensor& running_var) {
  TrainForwardBuffers b;
  b.N = x.size(0);
  b.C = x.size(1);
  b.HW = x.size(2) * x.size(3);
  CXR_CHECK(b.N * b.HW > 1, op, ": expected more than 1 value per channel when training, found x of shape ",
            shape_str(x.shape()));
  CXR_CHECK(running_mean.defined() == running_var.defined(), op,
            ": running_mean and running_var must both be given or both be undefined");
  if (running_mean.defined()) {
    check_channel_vector(op, "running_mean", running_mean, x);
    check_channel_vector(op, "running_var", running_var, x);
    b.running_mean = running_mean.f32();
    b.running_var = running_var.f32();
  }
  b.out = BatchNormOutput{Tensor::empty(x.shape(), x.dtype(), x.device()), Tensor::empty({b.C}, DType::F32, x.device()),
                          Tensor::empty({b.C}, DType::F32, x.device())};
  return b;
}

BatchNormGrads empty_batch_norm_grads(const Tensor& x) {
  const std::int64_t C = x.size(1);
  return BatchNormGrads{Tensor::empty(x.shape(), DType::F32, x.device()), Tensor::empty({C}, DType::F32, x.device()),
                        Tensor::empty({C}, DType::F32, x.device())};
}

void check_batch_norm_x(const char* op, const Tensor& x) {
  check_float_input(op, "x", x);
  check_dim(op, "x", x, 4);
}

void batch_norm_cpu_in_f32(const Tensor& x, Tensor& y,
                           const std::function<void(const float* x32, float* y32)>& kernel) {
  const Tensor x32 = to_f32(x);
  Tensor y32 = y.dtype() == DType::F32 ? y : Tensor::empty(y.shape());
  kernel(x32.f32(), y32.f32());
  if (y.dtype() == DType::BF16) cpu::f32_to_bf16(y32.f32(), y.data<std::uint16_t>(), y.numel());
}

BatchNormOutput batch_norm2d_train(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                                   Tensor& running_var, float momentum, float eps) {
  const char* op = "batch_norm2d_train";
  check_bn_input(op, x, weight, bias);
  TrainForwardBuffers b = batch_norm_train_buffers(op, x, running_mean, running_var);
  // Members, not a structured binding: clang 14 (the fuzz build) cannot capture one in a lambda.
  BatchNormOutput& r = b.out;
  if (x.is_cpu())
    batch_norm_cpu_in_f32(x, r.y, [&](const float* x32, float* y32) {
      cpu::batch_norm2d_forward_train(x32, weight.f32(), bias.f32(), y32, r.saved_mean.f32(), r.saved_invstd.f32(),
                                      b.running_mean, b.running_var, b.N, b.C, b.HW, momentum, eps);
    });
  else
    visit_float_type(x.dtype(), [&](auto e) {
      using T = decltype(e);
      cuda::batch_norm2d_forward_train(x.data<T>(), weight.f32(), bias.f32(), r.y.data<T>(), r.saved_mean.f32(),
                                       r.saved_invstd.f32(), b.running_mean, b.running_var, b.N, b.C, b.HW, momentum,
                                       eps);
    });
  return r;
}

Tensor batch_norm2d_eval(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                         const Tensor& running_var, float eps) {
  const char* op = "batch_norm2d_eval";
  check_bn_input(op, x, weight, bias);
  check_channel_vector(op, "running_mean", running_mean, x);
  check_channel_vector(op, "running_var", running_var, x);
  const std::int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.is_cpu())
    batch_norm_cpu_in_f32(x, y, [&](const float* x32, float* y32) {
      cpu::batch_norm2d_forward_eval(x32, weight.f32(), bias.f32(), running_mean.f32(), running_var.f32(), y32, N, C,
                                     HW, eps);
    });
  else
    visit_float_type(x.dtype(), [&](auto e) {
      using T = decltype(e);
      cuda::batch_norm2d_forward_eval(x.data<T>(), weight.f32(), bias.f32(), running_mean.f32(), running_var.f32(),
                                      y.data<T>(), N, C, HW, eps);
    });
  return y;
}

BatchNormGrads batch_norm2d_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& saved_mean,
                                     const Tensor& saved_invstd) {
  const char* op = "batch_norm2d_backward";
  check_batch_norm_x(op, x);
  check_f32_input(op, "dy", dy, &x);
  check_same_shape(op, "dy", dy, "x", x);
  check_channel_vector(op, "weight", weight, x);
  check_channel_vector(op, "saved_mean", saved_mean, x);
  check_channel_vector(op, "saved_invstd", saved_invstd, x);
  const std::int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  BatchNormGrads g = empty_batch_norm_grads(x);
  if (x.is_cpu())
    cpu::batch_norm2d_backward(dy.f32(), to_f32(x).f32(), weight.f32(), saved_mean.f32(), saved_invstd.f32(),
                               g.dx.f32(), g.dweight.f32(), g.dbias.f32(), N, C, HW);
  else
    visit_float_type(x.dtype(), [&](auto e) {
      using T = decltype(e);
      cuda::batch_norm2d_backward(dy.f32(), x.data<T>(), weight.f32(), saved_mean.f32(), saved_invstd.f32(), g.dx.f32(),
                                  g.dweight.f32(), g.dbias.f32(), N, C, HW);
    });
  return g;
}

BatchNormGrads batch_norm2d_eval_backward(const Tensor& dy, const Tensor& x, const Tensor& weight,
                                          const Tensor& running_mean, const Tensor& running_var, float eps) {
  const char* op = "batch_norm2d_eval_backward";
  check_batch_norm_x(op, x);
  check_f32_input(op, "dy", dy, &x);
  check_same_shape(op, "dy", dy, "x", x);
  check_channel_vector(op, "weight", weight, x);
  check_channel_vector(op, "running_mean", running_mean, x);
  check_channel_vector(op, "running_var", running_var, x);
  CXR_CHECK(eps >= 0.f, op, ": expected eps >= 0, found ", eps);
  const std::int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  BatchNormGrads g = empty_batch_norm_grads(x);
  if (x.is_cpu())
    cpu::batch_norm2d_eval_backward(dy.f32(), to_f32(x).f32(), weight.f32(), running_mean.f32(), running_var.f32(),
                                    g.dx.f32(), g.dweight.f32(), g.dbias.f32(), N, C, HW, eps);
  else
    visit_float_type(x.dtype(), [&](auto e) {
      using T = decltype(e);
      cuda::batch_norm2d_eval_backward(dy.f32(), x.data<T>(), weight.f32(), running_mean.f32(), running_var.f32(),
                                       g.dx.f32(), g.dweight.f32(), g.dbias.f32(), N, C, HW, eps);
    });
  return g;
}

}  // namespace cxr
