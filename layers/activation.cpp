// Activation modules (see activation.h).
#include "layers/activation.h"

namespace cxr {

// ReLU keeps its output, not its input: relu'(x) = [x > 0] = [relu(x) > 0], so the gradient is
// the same, and the output is usually kept anyway by the next layer (a convolution's input),
// so the two share one tensor instead of keeping two (as torch's ReLU saves its result).
Tensor ActivationModule::forward(const Tensor& x_in) {
  const Tensor x = x_in.contiguous();
  Tensor y = activation_forward(a_, x);
  const Tensor& kept = a_ == Activation::ReLU ? y : x;
  save_for_backward(keeps_for_backward() ? kept : Tensor());
  return y;
}

Tensor ActivationModule::backward(const Tensor& dy) {
  const Tensor x = saved_input(activation_name(a_));
  save_for_backward(Tensor());
  return activation_backward(a_, x, dy.contiguous());
}

std::string ActivationModule::type_name() const {
  switch (a_) {
    case Activation::ReLU: return "ReLU";
    case Activation::SiLU: return "SiLU";
    case Activation::GELU: return "GELU";
    case Activation::Sigmoid: return "Sigmoid";
  }
  return "Activation";
}

std::unique_ptr<ActivationModule> make_activation(Activation a) { return std::make_unique<ActivationModule>(a); }

}  // namespace cxr
