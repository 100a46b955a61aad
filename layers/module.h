// Module: a layer or a model, with hand-written forward and backward (as in llm.c and
// darknet), named parameters and buffers (torchvision's state_dict names), train/eval mode.
//
//   Conv2d conv(3, 64, {.kernel = 7, .stride = 2, .padding = 3, .bias = false});
//   Tensor y  = conv.forward(x);      // caches what backward needs (see keeps_for_backward)
//   Tensor dx = conv.backward(dy);    // accumulates conv's parameter gradients, returns dx
//
// backward() must be called once, in reverse order of the forward calls. It works after a
// forward in training mode and, as in PyTorch, after one in eval mode (frozen batch norm,
// saliency) unless the forward ran under a NoGradGuard, which evaluation and prediction use so
// that nothing is cached. Parameter gradients accumulate (+=) until zero_grad().
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace cxr {

// Whether forwards cache what backward needs (thread-local, on by default), like
// torch.is_grad_enabled(). NoGradGuard turns it off for a scope, like `with torch.no_grad():`.
bool grad_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

struct Parameter {
  Tensor value;
  Tensor grad;  // same shape and device as value; allocated by zero_grad() / first backward
  bool trainable = true;
  bool weight_decay = true;  // false for biases and normalisation weights (a common recipe)
  // Set by Module::zero_grad_deferred(): grad (if defined) holds an old value that the next
  // accumulate_grad replaces instead of adding to; Module::settle_grads() zeroes it if none came.
  bool grad_stale = false;
  // grad += g, or grad = a copy of g when grad is undefined or stale, then the hook.
  void accumulate_grad(const Tensor& g);
  // The same for a g the caller gives up: taken as the gradient itself (no copy) when it is a CPU
  // tensor whose storage nothing else shares.
  void accumulate_grad(Tensor&& g);
};

// Called after each Parameter::accumulate_grad on this thread, i.e. as soon as a layer's backward
// has produced that parameter's gradient: data-parallel training starts the all-reduce of a
// bucket of gradients from here while the rest of backward runs (train/grad_reducer.h).
// Null (the default): nothing is called. The hook object must outlive its installation.
class GradReadyHook {
 public:
  virtual ~GradReadyHook() = default;
  virtual void grad_ready(Parameter& p) = 0;
};
// Installs `hook` (or null) for this thread; returns the previous one.
GradReadyHook* set_grad_ready_hook(GradReadyHook* hook);

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual Tensor forward(const Tensor& x) = 0;
  virtual Tensor backward(const Tensor& dy) = 0;
  virtual std::string type_name() const = 0;

  void train(bool on = true);  // recursive
  void eval() { train(false); }
  bool training() const { return training_; }
  // Whether this forward must cache what backward needs: in training mode, and in eval mode
  // unless a NoGradGuard is active.
  bool keeps_for_backward() const { return training_ || grad_enabled(); }

  // Every parameter and buffer of this module and its children, with dotted names in
  // registration order: "layer1.0.conv1.weight", "bn1.running_mean", ...
  std::vector<std::pair<std::string, Parameter*>> named_parameters(const std::string& prefix = "");
  std::vector<std::pair<std::string, Tensor*>> named_buffers(const std::string& prefix = "");
  std::vector<std::pair<std::string, Module*>> named_children() const { return children_; }

  void to(Device device);  // moves parameters, gradients and buffers
  void zero_grad();        // allocates gradients as zeros where missing
  // zero_grad for a training step without a pass over memory (CPU parameters): each gradient is
  // marked stale and the first accumulate_grad of the backward takes its value as it comes (the
  // layer's result itself, as PyTorch's AccumulateGrad after zero_grad(set_to_none=True)), instead
  // of zeroing every gradient and then adding to it: ResNet-34 moves 3 x 85 MB less per step.
  // settle_grads(), once backward is done, zeroes those that got no gradient, so that afterwards
  // the gradients are zero_grad()'s plus the backward's, as always. In between, a gradient not
  // yet accumulated holds its last value. Device parameters are zeroed as by zero_grad() (their
  // buffers keep their addresses, which a captured CUDA graph replays).
  void zero_grad_deferred();
  void settle_grads();
  void set_trainable(bool trainable);  // e.g. freeze the backbone
  std::int64_t parameter_count();

 protected:
  Parameter& register_parameter(const std::string& name, Tensor value, bool weight_decay = true);
  Tensor& register_buffer(const std::string& name, Tensor value);
  template <typename M>
  M& register_module(const std::string& name, std::unique_ptr<M> m) {
    M& ref = *m;
    children_.emplace_back(name, m.get());
    owned_.push_back(std::move(m));
    return ref;
  }
  // Called by named_buffers() before it lists this module's buffers: a module that keeps part
  // of its state on the host (BatchNorm2d's batch count on a CUDA device) writes it in here.
  virtual void sync_buffers() {}
  // The cached input of the last forward; errors if backward comes without one.
  void save_for_backward(const Tensor& x) { saved_input_ = x; }
  const Tensor& saved_input(const char* who) const;

 private:
  bool training_ = true;
  std::vector<std::pair<std::string, std::unique_ptr<Parameter>>> params_;
  std::vector<std::pair<std::string, std::unique_ptr<Tensor>>> buffers_;
  std::vector<std::pair<std::string, Module*>> children_;
  std::vector<std::unique_ptr<Module>> owned_;
  Tensor saved_input_;
};

// Runs children in order; backward in reverse. Children are named "0", "1", ... as in
// torch.nn.Sequential, or by the name given.
class Sequential : public Module {
 public:
  template <typename M>
  M& add(std::unique_ptr<M> m, std::string name = "") {
    if (name.empty()) name = std::to_string(layers_.size());
    M& ref = register_module(name, std::move(m));
    layers_.push_back(&ref);
    return ref;
  }
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::string type_name() const override { return "Sequential"; }
  std::size_t size() const { return layers_.size(); }
  Module& operator[](std::size_t i) { return *layers_[i]; }

 private:
  std::vector<Module*> layers_;
};

}  // namespace cxr
