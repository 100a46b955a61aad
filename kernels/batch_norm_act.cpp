// Tensor-level fused batch norm + activation: argument checks, output allocation, device
// dispatch (math and memory traffic in kernels/batch_norm_act.h). x (and y) may be f32 or bf16,
// handled as batch_norm2d_* do (kernels/batch_norm.cpp).
#include "kernels/batch_norm_act.h"

#include <string>

#include "kernels/cast.h"
#include "kernels/float_tensor.h"

namespace cxr {

const char* bn_activation_name(BnActivation a) {
  switch (a) {
    case BnActivation::Identity: return "identity";
    case BnActivation::ReLU: return "relu";
    case BnActivation::SiLU: return "silu";
  }
  return "?";
}

std::optional<BnActivation> fusable_activation(Activation a) {
  switch (a) {
    case Activation::ReLU: return BnActivation::ReLU;
    case Activation::SiLU: return BnActivation::SiLU;
    default: return std::nullopt;
  }
}

namespace {

// "batch_norm_act_train(relu)" etc.: the op name in every message.
std::string op_name(const char* base, BnActivation act) {
  return std::string(base) + "(" + bn_activation_name(act) + ")";
}

void check_channel_vector(const char* op, const char* name, const Tensor& t, const Tensor& x) {
  check_f32_input(op, name, t, &x);
  check_shape(op, name, t, {x.size(1)});
}

void check_dy(const char* op, const Tensor& dy, const Tensor& x) {
  check_f32_input(op, "dy", dy, &x);
  check_same_shape(op, "dy", dy, "x", x);
}

}  // namespace

BatchNormOutput batch_norm_act_train(BnActivation act, const Tensor& x, const Tensor& weight, const Tensor& bias,
                                     Tensor& running_mean, Tensor& running_var, float momentum, float eps) {
  const std::string name = op_name("batch_norm_act_train", act);
  const char* op = name.c_str();
  check_batch_norm_x(op, x);
  check_channel_vector(op, "weight", weight, x);
  check_channel_vector(op, "bias", bias, x);
  TrainForwardBuffers b = batch_norm_train_buffers(op, x, running_mean, running_var);
  BatchNormOutput& r = b.out;  // (members, not a structured binding: see batch_norm2d_train)
  if (x.is_cpu())
    batch_norm_cpu_in_f32(x, r.y, [&](const float* x32, float* y32) {
      cpu::batch_norm_act_forward_train(act, x32, weight.f32(), bias.f32(), y32, r.saved_mean.f32(),
                                        r.saved_invstd.f32(), b.running_mean, b.running_var, b.N, b.C, b.HW, momentum,
                                        eps);
    });
  else
    visit_float_type(x.dtype(), [&](auto e) {
      using T = decltype(e);
      cuda::batch_norm_act_forward_train(act, x.data<T>(), weight.f32(), bias.f32(), r.y.data<T>(), r.saved_mean.f32(),
                                         r.saved_invstd.f32(), b.running_mean, b.running_var, b.N, b.C, b.HW, momentum,
                                         eps);
    });
  return r;
}

BatchNormOutput batch_norm_act_train_from_stats(BnActivation act, const Tensor& x, const Tensor& mean,
                                                const Tensor& var, const Tensor& weight, const Tensor& bias,
                                                Tensor& running_mean, Tensor& running_var, float momentum, float eps) {
  const std::string name = op_name("batch_norm_act_train_from_stats", act);
  const char* op = name.c_str();
  check_batch_norm_x(op, x);
  check_channel_vector(op, "mean", mean, x);
  check_channel_vector(op, "var", var, x);
  check_channel_vector(op, "weight", weight, x);
  check_channel_vector(op, "bias", bias, x);
  TrainForwardBuffers b = batch_norm_train_buffers(op, x, running_mean, running_var);
  BatchNormOutput& r = b.out;
  if (x.is_cpu())
    batch_norm_cpu_in_f32(x, r.y, [&](const float* x32, float* y32) {
      cpu::batch_norm_act_forward_train_from_stats(act, x32, mean.f32(), var.f32(), weight.f32(), bias.f32(), y32,
                                                   r.saved_mean.f32(), r.saved_invstd.f32(), b.running_mean,
                                                   b.running_var, b.N, b.C, b.HW, momentum, eps);
    });
  else
    visit_float_type(x.dtype(), [&](auto e) {
      using T = decltype(e);
      cuda::batch_norm_act_forward_train_from_stats(act, x.data<T>(), mean.f32(), var.f32(), weight.f32(), bias.f32(),
                                                    r.y.data<T>(), r.saved_mean.f32(), r.saved_invstd.f32(),
                                                    b.running_mean, b.running_var, b.N, b.C, b.HW, momentum, eps);
    });
  return r;
}

Tensor batch_norm_act_eval(BnActivation act, const Tensor& x, const Tensor& weight, const Tensor& bias,
                           const Tensor& running_mean, const Tensor& running_var, float eps) {
  const std::string name = op_name("batch_norm_act_eval", act);
  const char* op = name.c_str();
  check_batch_norm_x(op, x);
  check_channel_vector(op, "weight", weight, x);
  check_channel_vector(op, "bias", bias, x);
  check_channel_vector(op, "running_mean", running_mean, x);
  check_channel_vector(op, "running_var", running_var, x);
  const std::int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.is_cpu())
    batch_norm_cpu_in_f32(x, y, [&](const float* x32, float* y32) {
      cpu::batch_norm_act_forward_eval(act, x32, weight.f32(), bias.f32(), running_mean.f32(), running_var.f32(), y32,
                                       N, C, HW, eps);
    });
  else
    visit_float_type(x.dtype(), [&](auto e) {
      using T = decltype(e);
      cuda::batch_norm_act_forward_eval(act, x.data<T>(), weight.f32(), bias.f32(), running_mean.f32(),
                                        running_var.f32(), y.data<T>(), N, C, HW, eps);
    });
  return y;
}

BatchNormGrads batch_norm_act_backward(BnActivation act, const Tensor& dy, const Tensor& x, const Tensor& weight,
                                       const Tensor& bias, const Tensor& saved_mean, const Tensor& saved_invstd) {
  const std::string name = op_name("batch_norm_act_backward", act);
  const char* op = name.c_str();
  check_batch_norm_x(op, x);
  check_dy(op, dy, x);
  check_channel_vector(op, "weight", weight, x);
  check_channel_vector(op, "bias", bias, x);
  check_channel_vector(op, "saved_mean", saved_mean, x);
  check_channel_vector(op, "saved_invstd", saved_invstd, x);
  const std::int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  BatchNormGrads g = empty_batch_norm_grads(x);
  if (x.is_cpu())
    cpu::batch_norm_act_backward(act, dy.f32(), to_f32(x).f32(), weight.f32(), bias.f32(), saved_mean.f32(),
                                 saved_invstd.f32(), g.dx.f32(), g.dweight.f32(), g.dbias.f32(), N, C, HW);
  else
    visit_float_type(x.dtype(), [&](auto e) {
      using T = decltype(e);
      cuda::batch_norm_act_backward(act, dy.f32(), x.data<T>(), weight.f32(), bias.f32(), saved_mean.f32(),
                                    saved_invstd.f32(), g.dx.f32(), g.dweight.f32(), g.dbias.f32(), N, C, HW);
    });
  return g;
}

BatchNormGrads batch_norm_act_eval_backward(BnActivation act, const Tensor& dy, const Tensor& x, const Tensor& weight,
                                            const Tensor& bias, const Tensor& running_mean, const Tensor& running_var,
                                            float eps) {
  const std::string name = op_name("batch_norm_act_eval_backward", act);
  const char* op = name.c_str();
  check_batch_norm_x(op, x);
  check_dy(op, dy, x);
  check_channel_vector(op, "weight", weight, x);
  check_channel_vector(op, "bias", bias, x);
  check_channel_vector(op, "running_mean", running_mean, x);
  check_channel_vector(op, "running_var", running_var, x);
  CXR_CHECK(eps >= 0.f, op, ": expected eps >= 0, found ", eps);
  const std::int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  BatchNormGrads g = empty_batch_norm_grads(x);
  if (x.is_cpu())
    cpu::batch_norm_act_eval_backward(act, dy.f32(), to_f32(x).f32(), weight.f32(), bias.f32(), running_mean.f32(),
                                      running_var.f32(), g.dx.f32(), g.dweight.f32(), g.dbias.f32(), N, C, HW, eps);
  else
    visit_float_type(x.dtype(), [&](auto e) {
      using T = decltype(e);
      cuda::batch_norm_act_eval_backward(act, dy.f32(), x.data<T>(), weight.f32(), bias.f32(), running_mean.f32(),
                                         running_var.f32(), g.dx.f32(), g.dweight.f32(), g.dbias.f32(), N, C, HW, eps);
    });
  return g;
}

}  // namespace cxr
