// Pooling modules.
//
//   MaxPool2d(3, 2, 1)     nn.MaxPool2d(kernel_size=3, stride=2, padding=1): (N,C,H,W) -> (N,C,OH,OW);
//                          saves the argmax indices when training.
//   AvgPool2d(2, 2)        nn.AvgPool2d(kernel_size=2, stride=2) (no padding): DenseNet's transitions;
//   GlobalAvgPool()        nn.AdaptiveAvgPool2d(1): (N,C,H,W) -> (N,C,1,1);
//   GlobalAvgPool(true)    ... followed by torch.flatten(x, 1): -> (N,C).
#pragma once

#include "kernels/avg_pool2d.h"
#include "kernels/max_pool2d.h"
#include "layers/module.h"

namespace cxr {

class MaxPool2d : public Module {
 public:
  MaxPool2d(int kernel, int stride, int padding = 0) : p_{kernel, stride, padding} {}
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::string type_name() const override { return "MaxPool2d"; }

 private:
  MaxPool2dParams p_;
  Tensor indices_;
  Shape input_shape_;
};

class AvgPool2d : public Module {
 public:
  AvgPool2d(int kernel, int stride) : p_{kernel, stride} {}
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::string type_name() const override { return "AvgPool2d"; }

 private:
  AvgPool2dParams p_;
  Shape input_shape_;
};

class GlobalAvgPool : public Module {
 public:
  explicit GlobalAvgPool(bool flatten = false) : flatten_(flatten) {}
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;  // dy: (N,C) or (N,C,1,1)
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }

 private:
  bool flatten_;
  Shape input_shape_;
};

}  // namespace cxr
