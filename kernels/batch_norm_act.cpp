// Tensor-level fused batch norm + activation: argument checks, output allocation, device
// dispatch (math and memory traffic in kernels/batch_norm_act.h).
#include "kernels/batch_norm_act.h"

#include <string>

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

void check_x(const char* op, const Tensor& x) {
  check_f32_input(op, "x", x);
  check_dim(op, "x", x, 4);
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
  check_x(op, x);
  check_channel_vector(op, "weight", weight, x);
  check_channel_vector(op, "bias", bias, x);
  auto [N, C, HW, r, rm, rv] = batch_norm_train_buffers(op, x, running_mean, running_var);
  if (x.is_cpu())
    cpu::batch_norm_act_forward_train(act, x.f32(), weight.f32(), bias.f32(), r.y.f32(), r.saved_mean.f32(),
                                      r.saved_invstd.f32(), rm, rv, N, C, HW, momentum, eps);
  else
    cuda::batch_norm_act_forward_train(act, x.f32(), weight.f32(), bias.f32(), r.y.f32(), r.saved_mean.f32(),
                                       r.saved_invstd.f32(), rm, rv, N, C, HW, momentum, eps);
  return r;
}

BatchNormOutput batch_norm_act_train_from_stats(BnActivation act, const Tensor& x, const Tensor& mean,
                                                const Tensor& var, const Tensor& weight, const Tensor& bias,
                                                Tensor& running_mean, Tensor& running_var, float momentum, float eps) {
  const std::string name = op_name("batch_norm_act_train_from_stats", act);
  const char* op = name.c_str();
  check_x(op, x);
  check_channel_vector(op, "mean", mean, x);
  check_channel_vector(op, "var", var, x);
  check_channel_vector(op, "weight", weight, x);
  check_channel_vector(op, "bias", bias, x);
  auto [N, C, HW, r, rm, rv] = batch_norm_train_buffers(op, x, running_mean, running_var);
  if (x.is_cpu())
    cpu::batch_norm_act_forward_train_from_stats(act, x.f32(), mean.f32(), var.f32(), weight.f32(), bias.f32(),
                                                 r.y.f32(), r.saved_mean.f32(), r.saved_invstd.f32(), rm, rv, N, C,
                                                 HW, momentum, eps);
  else
    cuda::batch_norm_act_forward_train_from_stats(act, x.f32(), mean.f32(), var.f32(), weight.f32(), bias.f32(),
                                                  r.y.f32(), r.saved_mean.f32(), r.saved_invstd.f32(), rm, rv, N, C,
                                                  HW, momentum, eps);
  return r;
}

Tensor batch_norm_act_eval(BnActivation act, const Tensor& x, const Tensor& weight, const Tensor& bias,
                           const Tensor& running_mean, const Tensor& running_var, float eps) {
  const std::string name = op_name("batch_norm_act_eval", act);
  const char* op = name.c_str();
  check_x(op, x);
  check_channel_vector(op, "weight", weight, x);
  check_channel_vector(op, "bias", bias, x);
  check_channel_vector(op, "running_mean", running_mean, x);
  check_channel_vector(op, "running_var", running_var, x);
  const std::int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  if (x.is_cpu())
    cpu::batch_norm_act_forward_eval(act, x.f32(), weight.f32(), bias.f32(), running_mean.f32(), running_var.f32(),
                                     y.f32(), N, C, HW, eps);
  else
    cuda::batch_norm_act_forward_eval(act, x.f32(), weight.f32(), bias.f32(), running_mean.f32(), running_var.f32(),
                                      y.f32(), N, C, HW, eps);
  return y;
}

BatchNormGrads batch_norm_act_backward(BnActivation act, const Tensor& dy, const Tensor& x, const Tensor& weight,
                                       const Tensor& bias, const Tensor& saved_mean, const Tensor& saved_invstd) {
  const std::string name = op_name("batch_norm_act_backward", act);
  const char* op = name.c_str();
  check_x(op, x);
  check_dy(op, dy, x);
  check_channel_vector(op, "weight", weight, x);
  check_channel_vector(op, "bias", bias, x);
  check_channel_vector(op, "saved_mean", saved_mean, x);
  check_channel_vector(op, "saved_invstd", saved_invstd, x);
  const std::int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  BatchNormGrads g = empty_batch_norm_grads(x);
  if (x.is_cpu())
    cpu::batch_norm_act_backward(act, dy.f32(), x.f32(), weight.f32(), bias.f32(), saved_mean.f32(),
                                 saved_invstd.f32(), g.dx.f32(), g.dweight.f32(), g.dbias.f32(), N, C, HW);
  else
    cuda::batch_norm_act_backward(act, dy.f32(), x.f32(), weight.f32(), bias.f32(), saved_mean.f32(),
                                  saved_invstd.f32(), g.dx.f32(), g.dweight.f32(), g.dbias.f32(), N, C, HW);
  return g;
}

BatchNormGrads batch_norm_act_eval_backward(BnActivation act, const Tensor& dy, const Tensor& x, const Tensor& weight,
                                            const Tensor& bias, const Tensor& running_mean, const Tensor& running_var,
                                            float eps) {
  const std::string name = op_name("batch_norm_act_eval_backward", act);
  const char* op = name.c_str();
  check_x(op, x);
  check_dy(op, dy, x);
  check_channel_vector(op, "weight", weight, x);
  check_channel_vector(op, "bias", bias, x);
  check_channel_vector(op, "running_mean", running_mean, x);
  check_channel_vector(op, "running_var", running_var, x);
  CXR_CHECK(eps >= 0.f, op, ": expected eps >= 0, found ", eps);
  const std::int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  BatchNormGrads g = empty_batch_norm_grads(x);
  if (x.is_cpu())
    cpu::batch_norm_act_eval_backward(act, dy.f32(), x.f32(), weight.f32(), bias.f32(), running_mean.f32(),
                                      running_var.f32(), g.dx.f32(), g.dweight.f32(), g.dbias.f32(), N, C, HW, eps);
  else
    cuda::batch_norm_act_eval_backward(act, dy.f32(), x.f32(), weight.f32(), bias.f32(), running_mean.f32(),
                                       running_var.f32(), g.dx.f32(), g.dweight.f32(), g.dbias.f32(), N, C, HW, eps);
  return g;
}

}  // namespace cxr
