// Tensor-level batch norm (+ activation): argument checks, output allocation, device dispatch
// (math and memory traffic in kernels/batch_norm.h). x (and y) may be f32 or bf16: the CPU
// widens x and rounds y around its f32 loops, the CUDA kernels read and write bf16 themselves.
#include "kernels/batch_norm.h"

#include <functional>
#include <string>

#include "kernels/batch_norm_checks.h"
#include "kernels/cast.h"
#include "kernels/float_tensor.h"
#include "kernels/library.h"

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

Activation activation_of(BnActivation act) { return act == BnActivation::SiLU ? Activation::SiLU : Activation::ReLU; }

namespace {

using bn_checks::check_channel_vector;
using bn_checks::check_x;
using bn_checks::op_name;

void check_dy(const char* op, const Tensor& dy, const Tensor& x) {
  check_f32_input(op, "dy", dy, &x);
  check_same_shape(op, "dy", dy, "x", x);
}

struct Sizes {
  std::int64_t N, C, HW;
};
Sizes sizes_of(const Tensor& x) { return {x.size(0), x.size(1), x.size(2) * x.size(3)}; }

// What every training forward shares: more than one value per channel; running_mean /
// running_var both given (C values) or both undefined; y (x's dtype) and the saved statistics
// (f32) allocated. running_mean / running_var: their data, or null.
struct TrainForward {
  Sizes s;
  BatchNormOutput out;
  float* running_mean = nullptr;
  float* running_var = nullptr;
};
TrainForward train_forward(const char* op, const Tensor& x, Tensor& running_mean, Tensor& running_var) {
  TrainForward t;
  t.s = sizes_of(x);
  CXR_CHECK(t.s.N * t.s.HW > 1, op, ": expected more than 1 value per channel when training, found x of shape ",
            shape_str(x.shape()));
  CXR_CHECK(running_mean.defined() == running_var.defined(), op,
            ": running_mean and running_var must both be given or both be undefined");
  if (running_mean.defined()) {
    check_channel_vector(op, "running_mean", running_mean, x);
    check_channel_vector(op, "running_var", running_var, x);
    t.running_mean = running_mean.f32();
    t.running_var = running_var.f32();
  }
  t.out = BatchNormOutput{Tensor::empty(x.shape(), x.dtype(), x.device()),
                          Tensor::empty({t.s.C}, DType::F32, x.device()),
                          Tensor::empty({t.s.C}, DType::F32, x.device())};
  return t;
}

// dx (x's shape), dweight and dbias (C), f32, on x's device.
BatchNormGrads empty_grads(const Tensor& x) {
  const std::int64_t C = x.size(1);
  return BatchNormGrads{Tensor::empty(x.shape(), DType::F32, x.device()), Tensor::empty({C}, DType::F32, x.device()),
                        Tensor::empty({C}, DType::F32, x.device())};
}

// The CPU path for either dtype of x (the definition of the bf16 ops): kernel(x32, y32), the
// f32 CPU loops, on x widened to f32 (x itself when F32) into an f32 y32 (y itself when F32)
// that is then rounded once into y when y is BF16.
void cpu_in_f32(const Tensor& x, Tensor& y, const std::function<void(const float* x32, float* y32)>& kernel) {
  const Tensor x32 = to_f32(x);
  Tensor y32 = y.dtype() == DType::F32 ? y : Tensor::empty(y.shape());
  kernel(x32.f32(), y32.f32());
  if (y.dtype() == DType::BF16) cpu::f32_to_bf16(y32.f32(), y.data<std::uint16_t>(), y.numel());
}

// The library path (kernels/library.h): cuDNN's batch norm on f32 activations; a fused
// activation runs after it as the activation op.
bool library_batch_norm(const Tensor& x) { return library::wanted(x) && x.dtype() == DType::F32; }

// y = act(z) in place of the batch norm's output z (nothing for identity).
Tensor activate(BnActivation act, Tensor z) {
  return act == BnActivation::Identity ? z : activation_forward(activation_of(act), z);
}

}  // namespace

BatchNormOutput batch_norm2d_train(BnActivation act, const Tensor& x, const Tensor& weight, const Tensor& bias,
                                   Tensor& running_mean, Tensor& running_var, float momentum, float eps) {
  const std::string name = op_name("train", act);
  const char* op = name.c_str();
  check_x(op, x);
  check_channel_vector(op, "weight", weight, x);
  check_channel_vector(op, "bias", bias, x);
  TrainForward t = train_forward(op, x, running_mean, running_var);
  // Members, not a structured binding: clang 14 (the fuzz build) cannot capture one in a lambda.
  BatchNormOutput& r = t.out;
  const Sizes& s = t.s;
  if (library_batch_norm(x)) {
    library::batch_norm2d_forward_train(x, weight, bias, r.y, r.saved_mean, r.saved_invstd, running_mean, running_var,
                                        momentum, eps);
    r.y = activate(act, r.y);
    return r;
  }
  if (x.is_cpu())
    cpu_in_f32(x, r.y, [&](const float* x32, float* y32) {
      cpu::batch_norm2d_forward_train(act, x32, weight.f32(), bias.f32(), y32, r.saved_mean.f32(),
                                      r.saved_invstd.f32(), t.running_mean, t.running_var, s.N, s.C, s.HW, momentum,
                                      eps);
    });
  else
    visit_float_type(x.dtype(), [&](auto e) {
      using T = decltype(e);
      cuda::batch_norm2d_forward_train(act, x.data<T>(), weight.f32(), bias.f32(), r.y.data<T>(), r.saved_mean.f32(),
                                       r.saved_invstd.f32(), t.running_mean, t.running_var, s.N, s.C, s.HW, momentum,
                                       eps);
    });
  return r;
}

BatchNormOutput batch_norm2d_train_from_stats(BnActivation act, const Tensor& x, const Tensor& mean,
                                              const Tensor& var, const Tensor& weight, const Tensor& bias,
                                              Tensor& running_mean, Tensor& running_var, float momentum, float eps) {
  const std::string name = op_name("train_from_stats", act);
  const char* op = name.c_str();
  check_x(op, x);
  check_channel_vector(op, "mean", mean, x);
  check_channel_vector(op, "var", var, x);
  check_channel_vector(op, "weight", weight, x);
  check_channel_vector(op, "bias", bias, x);
  TrainForward t = train_forward(op, x, running_mean, running_var);
  BatchNormOutput& r = t.out;
  const Sizes& s = t.s;
  if (x.is_cpu())
    cpu_in_f32(x, r.y, [&](const float* x32, float* y32) {
      cpu::batch_norm2d_forward_train_from_stats(act, x32, mean.f32(), var.f32(), weight.f32(), bias.f32(), y32,
                                                 r.saved_mean.f32(), r.saved_invstd.f32(), t.running_mean,
                                                 t.running_var, s.N, s.C, s.HW, momentum, eps);
    });
  else
    visit_float_type(x.dtype(), [&](auto e) {
      using T = decltype(e);
      cuda::batch_norm2d_forward_train_from_stats(act, x.data<T>(), mean.f32(), var.f32(), weight.f32(), bias.f32(),
                                                  r.y.data<T>(), r.saved_mean.f32(), r.saved_invstd.f32(),
                                                  t.running_mean, t.running_var, s.N, s.C, s.HW, momentum, eps);
    });
  return r;
}

Tensor batch_norm2d_eval(BnActivation act, const Tensor& x, const Tensor& weight, const Tensor& bias,
                         const Tensor& running_mean, const Tensor& running_var, float eps) {
  const std::string name = op_name("eval", act);
  const char* op = name.c_str();
  check_x(op, x);
  check_channel_vector(op, "weight", weight, x);
  check_channel_vector(op, "bias", bias, x);
  check_channel_vector(op, "running_mean", running_mean, x);
  check_channel_vector(op, "running_var", running_var, x);
  const Sizes s = sizes_of(x);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (library_batch_norm(x)) {
    library::batch_norm2d_forward_eval(x, weight, bias, running_mean, running_var, y, eps);
    return activate(act, y);
  }
  if (x.is_cpu())
    cpu_in_f32(x, y, [&](const float* x32, float* y32) {
      cpu::batch_norm2d_forward_eval(act, x32, weight.f32(), bias.f32(), running_mean.f32(), running_var.f32(), y32,
                                     s.N, s.C, s.HW, eps);
    });
  else
    visit_float_type(x.dtype(), [&](auto e) {
      using T = decltype(e);
      cuda::batch_norm2d_forward_eval(act, x.data<T>(), weight.f32(), bias.f32(), running_mean.f32(),
                                      running_var.f32(), y.data<T>(), s.N, s.C, s.HW, eps);
    });
  return y;
}

BatchNormGrads batch_norm2d_backward(BnActivation act, const Tensor& dy, const Tensor& x, const Tensor& weight,
                                     const Tensor& bias, const Tensor& saved_mean, const Tensor& saved_invstd) {
  const std::string name = op_name("backward", act);
  const char* op = name.c_str();
  check_x(op, x);
  check_dy(op, dy, x);
  check_channel_vector(op, "weight", weight, x);
  check_channel_vector(op, "bias", bias, x);
  check_channel_vector(op, "saved_mean", saved_mean, x);
  check_channel_vector(op, "saved_invstd", saved_invstd, x);
  const Sizes s = sizes_of(x);
  BatchNormGrads g = empty_grads(x);
  if (library_batch_norm(x)) {
    // A fused activation: dL/dz = dy act'(z), z recomputed from the saved statistics.
    const Tensor dz = act == BnActivation::Identity
                          ? dy
                          : activation_backward(activation_of(act),
                                                batch_norm2d_recompute(x, weight, bias, saved_mean, saved_invstd), dy);
    library::batch_norm2d_backward(dz, x, weight, saved_mean, saved_invstd, g.dx, g.dweight, g.dbias);
    return g;
  }
  if (x.is_cpu())
    cpu::batch_norm2d_backward(act, dy.f32(), to_f32(x).f32(), weight.f32(), bias.f32(), saved_mean.f32(),
                               saved_invstd.f32(), g.dx.f32(), g.dweight.f32(), g.dbias.f32(), s.N, s.C, s.HW);
  else
    visit_float_type(x.dtype(), [&](auto e) {
      using T = decltype(e);
      cuda::batch_norm2d_backward(act, dy.f32(), x.data<T>(), weight.f32(), bias.f32(), saved_mean.f32(),
                                  saved_invstd.f32(), g.dx.f32(), g.dweight.f32(), g.dbias.f32(), s.N, s.C, s.HW);
    });
  return g;
}

Tensor batch_norm2d_recompute(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& saved_mean,
                              const Tensor& saved_invstd) {
  const char* op = "batch_norm2d_recompute";
  check_f32_input(op, "x", x);
  check_x(op, x);
  check_channel_vector(op, "weight", weight, x);
  check_channel_vector(op, "bias", bias, x);
  check_channel_vector(op, "saved_mean", saved_mean, x);
  check_channel_vector(op, "saved_invstd", saved_invstd, x);
  const Sizes s = sizes_of(x);
  Tensor z = Tensor::empty(x.shape(), DType::F32, x.device());
  if (x.is_cpu())
    cpu::batch_norm2d_recompute(x.f32(), weight.f32(), bias.f32(), saved_mean.f32(), saved_invstd.f32(), z.f32(), s.N,
                                s.C, s.HW);
  else
    cuda::batch_norm2d_recompute(x.f32(), weight.f32(), bias.f32(), saved_mean.f32(), saved_invstd.f32(), z.f32(),
                                 s.N, s.C, s.HW);
  return z;
}

BatchNormGrads batch_norm2d_eval_backward(BnActivation act, const Tensor& dy, const Tensor& x, const Tensor& weight,
                                          const Tensor& bias, const Tensor& running_mean, const Tensor& running_var,
                                          float eps) {
  const std::string name = op_name("eval_backward", act);
  const char* op = name.c_str();
  check_x(op, x);
  check_dy(op, dy, x);
  check_channel_vector(op, "weight", weight, x);
  check_channel_vector(op, "bias", bias, x);
  check_channel_vector(op, "running_mean", running_mean, x);
  check_channel_vector(op, "running_var", running_var, x);
  CXR_CHECK(eps >= 0.f, op, ": expected eps >= 0, found ", eps);
  const Sizes s = sizes_of(x);
  BatchNormGrads g = empty_grads(x);
  if (x.is_cpu())
    cpu::batch_norm2d_eval_backward(act, dy.f32(), to_f32(x).f32(), weight.f32(), bias.f32(), running_mean.f32(),
                                    running_var.f32(), g.dx.f32(), g.dweight.f32(), g.dbias.f32(), s.N, s.C, s.HW,
                                    eps);
  else
    visit_float_type(x.dtype(), [&](auto e) {
      using T = decltype(e);
      cuda::batch_norm2d_eval_backward(act, dy.f32(), x.data<T>(), weight.f32(), bias.f32(), running_mean.f32(),
                                       running_var.f32(), g.dx.f32(), g.dweight.f32(), g.dbias.f32(), s.N, s.C, s.HW,
                                       eps);
    });
  return g;
}

}  // namespace cxr
