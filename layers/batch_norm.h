// BatchNorm2d: nn.BatchNorm2d over kernels/batch_norm.h (math there).
//
// Parameters "weight" (C, init 1) and "bias" (C, init 0), both without weight decay.
// Buffers "running_mean" (C, 0), "running_var" (C, 1), "num_batches_tracked" (0-dim).
// training(): normalises with the batch statistics, updates the running ones with
// `momentum` (unbiased variance, as PyTorch), counts the batch; saves x, mean, invstd.
// eval: normalises with the running statistics (frozen) and saves x; backward then gives
// PyTorch's eval-mode gradients (batch_norm2d_eval_backward: statistics are constants).
//
// Fused activation (options.activation = ReLU or SiLU): forward returns act(BatchNorm2d(x)) in
// one pass (the op's activation, BnActivation) and backward takes dL/d(act output); the layer
// still saves only x and the statistics (z is recomputed in backward), so a fused BN +
// activation keeps one tensor instead of two. Names, parameters and buffers are those of a
// plain BatchNorm2d: the activation has none, so the state_dict is torchvision's. Backward
// recomputes z from the current weight and bias, so they must not change between forward and
// backward (as for every layer here). Which blocks build their batch norms fused is the
// execution setting fuse_batch_norm_activation (kernels/execution.h).
// After a Conv2d the pair runs as one op (conv_bn_forward, layers/conv_norm_activation.h), which
// takes op_args() and hands the forward's state back through keep_forward().
//
// num_batches_tracked is an I32 scalar (PyTorch: int64; checkpoints widen it). On a CUDA
// device the count is kept on the host and added to the buffer when named_buffers() is
// called (sync_buffers), so training never waits for the device to count.
#pragma once

#include <optional>

#include "kernels/activation.h"
#include "kernels/batch_norm.h"
#include "layers/module.h"

namespace cxr {

namespace dist {
class Communicator;
}

// SyncBatchNorm (train_cxr train --sync-bn, docs/distributed.md): while a scope with a
// communicator is active on this thread, every training forward of a BatchNorm2d normalises
// with the statistics of the global batch over the communicator's ranks, as
// torch.nn.SyncBatchNorm: each rank's (count, mean, var) per channel are gathered and combined
// in rank order (Chan's formula, in double), the running statistics updated with the global
// count; backward all-reduces (sum g, sum g xhat) before dx. Two small collectives per layer
// and step. The fused conv + BN op then runs as its two ops. Null: per-rank statistics.
class SyncBatchNormScope {
 public:
  explicit SyncBatchNormScope(dist::Communicator* comm);
  ~SyncBatchNormScope();
  SyncBatchNormScope(const SyncBatchNormScope&) = delete;
  SyncBatchNormScope& operator=(const SyncBatchNormScope&) = delete;

 private:
  dist::Communicator* previous_;
};
dist::Communicator* sync_batch_norm_comm();  // this thread's, or null

struct BatchNormOptions {
  float eps = 1e-5f;
  float momentum = 0.1f;
  // The activation after the norm, fused into it: ReLU or SiLU (others are an error); none:
  // a plain BatchNorm2d.
  std::optional<Activation> activation = std::nullopt;
};

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(std::int64_t num_features, BatchNormOptions o = {});
  Tensor forward(const Tensor& x) override;    // x: (N, C, H, W)
  Tensor backward(const Tensor& dy) override;  // after a training or an eval forward
  std::string type_name() const override { return "BatchNorm2d"; }
  // The training forward with the batch mean and biased variance (C) of x given: no statistics
  // pass over x; running statistics, the batch count, the saved state and backward as
  // forward() in training mode. Requires training().
  Tensor forward_from_stats(const Tensor& x, const Tensor& mean, const Tensor& var);

  // For an op that runs this batch norm itself (kernels/conv2d_bn.h's conv2d_bn_forward): its
  // arguments (the parameters, the buffers, whose storage the op updates, the fused activation
  // and the mode), and the state its forward leaves for backward: x (the batch norm's input)
  // and, after a training forward, the saved statistics (undefined after an eval one).
  // keep_forward also counts a training batch.
  BatchNormArgs op_args() const;
  void keep_forward(const Tensor& x, const Tensor& saved_mean, const Tensor& saved_invstd);

  Parameter& weight() { return *weight_; }
  Parameter& bias() { return *bias_; }
  Tensor& running_mean() { return *running_mean_; }
  Tensor& running_var() { return *running_var_; }
  Tensor& num_batches_tracked() { return *num_batches_; }
  const BatchNormOptions& options() const { return o_; }
  std::optional<Activation> fused_activation() const { return o_.activation; }

 protected:
  void sync_buffers() override;

 private:
  BatchNormOptions o_;
  BnActivation act_ = BnActivation::Identity;  // the fused activation, if any
  Parameter* weight_ = nullptr;
  Parameter* bias_ = nullptr;
  Tensor* running_mean_ = nullptr;
  Tensor* running_var_ = nullptr;
  Tensor* num_batches_ = nullptr;
  std::int64_t pending_batches_ = 0;  // counted on the host, not yet in *num_batches_
  Tensor saved_mean_, saved_invstd_;
  std::int64_t sync_count_ = 0;  // > 0: the last forward was synchronised over this many values
  dist::Communicator* sync_comm_ = nullptr;  // ... over these ranks
  Tensor forward_sync(const Tensor& x, dist::Communicator& comm);
  Tensor backward_sync(const Tensor& dy, const Tensor& x, dist::Communicator& comm);
};

}  // namespace cxr
