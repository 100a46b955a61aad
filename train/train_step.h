// One training step: forward, the fused loss, backward, the global gradient norm, and the
// optimiser update guarded against non-finite values (docs/reliability.md). The trainer, the
// tests and every device path run this same step:
//
//   TrainStep step(model, optim, {.pos_weight = pw, .box_loss_weight = 1});
//   StepOutcome r = step.run(batch, lr, /*step=*/1, /*epoch=*/1);        // CPU: checked on the host
//   auto active = step.enqueue(batch, /*step=*/1, /*run_hooks=*/true);  // CUDA: checked on the device
//
// The two forms share forward_backward(). They differ only in who checks the loss and the norm:
//  - run() (CPU) reads both back and calls the optimiser only if both are finite;
//  - enqueue() (CUDA) writes them into a device status [loss, norm, flag, latch] and the
//    optimiser skips itself when the flag is 0: nothing waits for the host, so the step can be
//    captured as a CUDA graph (train/graph_capture.h) and the host learns the outcome one step
//    later (train/step_pipeline.h).
// With skip_nonfinite a bad step changes nothing: no update, and the batch-norm running
// statistics are restored from a copy taken before the forward pass. Without it, the step
// reports what was not finite and the trainer stops.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cxr_loss.h"
#include "models/heads.h"
#include "train/optimizer.h"

namespace cxr {

class GradientReducer;
namespace dist {
class Communicator;
}

namespace data {
struct Batch;
}

// Test hooks of the training step (unset in train_cxr): called with the 1-based optimiser step.
struct TrainHooks {
  std::function<void(std::int64_t step, const data::Batch& batch)> before_forward;  // e.g. poison an input
  std::function<void(std::int64_t step, CxrModel& model)> after_backward;           // e.g. poison a gradient
  std::function<void(std::int64_t step)> after_step;                                // e.g. raise(SIGINT)
  // CUDA only: right after step `step` was enqueued, before the host reads step - 1's results
  // (tests count host synchronisations between before_forward and this point).
  std::function<void(std::int64_t step)> after_enqueue;
};

struct StepConfig {
  Tensor pos_weight;            // (classes) BCE positive weights, on the model's device
  float box_loss_weight = 1.f;
  double grad_clip = 0;         // > 0: clip the global gradient norm (the coefficient stays on the device)
  bool skip_nonfinite = false;  // a non-finite step is skipped (else the trainer stops)
};

// What the host knows of a step once it is done.
struct StepOutcome {
  bool applied = true;
  double loss = 0;
  double norm = 0;
  std::vector<std::string> nonfinite_parameters;  // when not applied: gradients that were not finite
};

// The device tensors a step leaves before its update.
struct StepGradients {
  Tensor loss;                      // (1)
  GradNorm norm;                    // undefined when nothing is trainable
  std::vector<std::size_t> active;  // the parameters with a gradient (optimiser indices)
};

class TrainStep {
 public:
  TrainStep(CxrModel& model, Optimizer& optim, StepConfig config, const TrainHooks* hooks = nullptr);
  ~TrainStep();
  TrainStep(const TrainStep&) = delete;
  TrainStep& operator=(const TrainStep&) = delete;

  // Forward (training mode), loss, zero_grad, backward, the global norm of the active gradients.
  StepGradients forward_backward(const data::Batch& b, std::int64_t step, bool run_hooks);

  // CPU: the whole step, checked on the host (one read-back of loss and norm).
  StepOutcome run(const data::Batch& b, double lr, std::int64_t step);

  // CUDA: the whole step with the device-side guard into status(); no host wait. Returns the
  // parameters it updates. run_hooks = false while a CUDA graph is captured. Unlike run(), it
  // does not call hooks->before_forward: the pipeline does, before it copies the batch into a
  // captured graph's buffers.
  std::vector<std::size_t> enqueue(const data::Batch& b, std::int64_t step, bool run_hooks);
  // [loss, norm, flag, latch] of the last enqueued step (device).
  const Tensor& status() const { return status_; }

  CxrModel& model() { return model_; }
  Optimizer& optimizer() { return optim_; }
  const StepConfig& config() const { return config_; }
  const TrainHooks* hooks() const { return hooks_; }

  // Data-parallel training (train/grad_reducer.h): backward's gradients are summed over the
  // ranks of `comm` by `reducer`, and the loss is summed too, before the norm and the guard, so
  // every rank takes the same decision and the same update.
  void set_data_parallel(dist::Communicator* comm, GradientReducer* reducer) {
    comm_ = comm;
    reducer_ = reducer;
  }
  // The next steps' batches are parts of a global batch (cxr_loss's LossShare); {}: not.
  void set_loss_share(const LossShare& share) { share_ = share; }

 private:
  void save_buffers();     // the batch-norm buffers before the forward (skip_nonfinite)
  void restore_buffers();  // ... put back after a skipped CPU step
  CxrModel& model_;
  Optimizer& optim_;
  StepConfig config_;
  const TrainHooks* hooks_;
  std::vector<Tensor> buffers_, saved_buffers_;  // handles sharing the model's buffers; their copies
  Tensor status_;                                // CUDA
  dist::Communicator* comm_ = nullptr;
  GradientReducer* reducer_ = nullptr;
  LossShare share_;
};

// "non-finite values at step S (epoch E, batch B): the training loss is nan; the gradient norm
// is inf, first in the gradient of P (and N more parameters); images of the batch: ..."
std::string describe_nonfinite(std::int64_t step, int epoch, std::int64_t batch_number,
                               const std::vector<std::string>& image_names, const StepOutcome& outcome);

}  // namespace cxr
