// Dropout and StochasticDepth (drop-path, torchvision mode "row") over kernels/dropout.h.
//
// Each module owns a mask seed (drawn from the init generator at construction, see init.h)
// and a counter offset that advances after every training forward, so successive batches get
// fresh masks while the CPU, the GPU and the emulated device drop the same elements. The
// backward regenerates the forward's mask from (seed, offset): nothing is stored.
// In eval mode (or p = 0) both are the identity.
//
//   Dropout(0.2)                     nn.Dropout(p=0.2): element-wise, kept ones scaled by 1/(1-p)
//   StochasticDepth(0.1)             torchvision.ops.StochasticDepth(0.1, "row"): per sample
#pragma once

#include "kernels/dropout.h"
#include "layers/module.h"

namespace cxr {

class Dropout : public Module {
 public:
  explicit Dropout(float p);
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::string type_name() const override { return "Dropout"; }
  float p() const { return p_; }
  // Fixes the mask stream (tests; reproducing a run).
  void set_rng(std::uint64_t seed, std::uint64_t offset) {
    seed_ = seed;
    offset_ = offset;
  }
  std::uint64_t offset() const { return offset_; }

 private:
  float p_;
  std::uint64_t seed_, offset_ = 0;
  DropoutParams last_{0.f, 0, 0, false};  // the last forward's mask (identity before any)
};

class StochasticDepth : public Module {
 public:
  explicit StochasticDepth(float p);
  Tensor forward(const Tensor& x) override;  // x: (N, ...)
  Tensor backward(const Tensor& dy) override;
  std::string type_name() const override { return "StochasticDepth"; }
  float p() const { return p_; }
  void set_rng(std::uint64_t seed, std::uint64_t offset) {
    seed_ = seed;
    offset_ = offset;
  }
  std::uint64_t offset() const { return offset_; }

 private:
  float p_;
  std::uint64_t seed_, offset_ = 0;
  DropoutParams last_{0.f, 0, 0, false};  // the last forward's mask (identity before any)
};

}  // namespace cxr
