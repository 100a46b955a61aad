// Modules that only rearrange: Identity, Flatten (torch.flatten(x, start_dim)), Permute
// (torchvision.ops.misc.Permute: x.permute(order), made contiguous). No parameters.
#pragma once

#include <vector>

#include "layers/module.h"

namespace cxr {

class Identity : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
  Tensor backward(const Tensor& dy) override { return dy; }
  std::string type_name() const override { return "Identity"; }
};

class Flatten : public Module {
 public:
  explicit Flatten(int start_dim = 1) : start_dim_(start_dim) {}
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::string type_name() const override { return "Flatten"; }

 private:
  int start_dim_;
  Shape input_shape_;
};

class Permute : public Module {
 public:
  explicit Permute(std::vector<int> order);  // e.g. {0, 2, 3, 1}: NCHW -> NHWC
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::string type_name() const override { return "Permute"; }

 private:
  std::vector<int> order_, inverse_;
};

}  // namespace cxr
