// Activation modules (see activation.h).
#include "layers/activation.h"

namespace cxr {

Tensor ActivationModule::forward(const Tensor& x_in) {
  const Tensor x = x_in.contiguous();
  save_for_backward(keeps_for_backward() ? x : Tensor());
  return activation_forward(a_, x);
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
