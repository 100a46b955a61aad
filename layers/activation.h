// Pointwise activation modules over kernels/activation.h: ReLU, SiLU, GELU (exact erf form,
// nn.GELU()), Sigmoid. No parameters. forward saves its input when training; backward
// returns dy * f'(x). A module instance serves one call per forward pass (use one module per
// place in the network; torchvision's reuse of one inplace ReLU is written out explicitly).
#pragma once

#include "kernels/activation.h"
#include "layers/module.h"

namespace cxr {

class ActivationModule : public Module {
 public:
  explicit ActivationModule(Activation a) : a_(a) {}
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::string type_name() const override;
  Activation activation() const { return a_; }

 private:
  Activation a_;
};

class ReLU : public ActivationModule {
 public:
  ReLU() : ActivationModule(Activation::ReLU) {}
};
class SiLU : public ActivationModule {
 public:
  SiLU() : ActivationModule(Activation::SiLU) {}
};
class GELU : public ActivationModule {
 public:
  GELU() : ActivationModule(Activation::GELU) {}
};
class Sigmoid : public ActivationModule {
 public:
  Sigmoid() : ActivationModule(Activation::Sigmoid) {}
};

std::unique_ptr<ActivationModule> make_activation(Activation a);

}  // namespace cxr
