// Where the training loop submits its steps and learns how they went, on any device:
//
//   StepPipeline pipe(step, {.cuda_graph = false});
//   for (batch : loader.epoch(e)) {
//     if (auto done = pipe.submit(batch, ticket)) record(*done);   // CPU: this step; CUDA: the previous one
//   }
//   if (auto done = pipe.drain()) record(*done);                    // before a checkpoint, validation or exit
//   pipe.settle(global_step);
//
// CPU: submit() runs TrainStep::run and returns its outcome at once.
// CUDA (docs/reliability.md, "On the GPU"): submit() enqueues the step (eagerly, or through
// CapturedStep with --cuda-graph), then an asynchronous copy of the step's status into a pinned
// slot and an event; then it waits for the *previous* step's slot, which is normally long done.
// So the host never waits for the step it has just launched: the device runs one step ahead.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/loader.h"
#include "tensor/stream.h"
#include "train/graph_capture.h"
#include "train/train_step.h"

namespace cxr {

// A submitted step, as the trainer describes it (handed back with its outcome).
struct StepTicket {
  std::int64_t step = 0;          // 1-based global step
  int epoch = 0;                  // 1-based
  std::int64_t k = 0;             // 1-based batch of this call's epoch pass (the progress bar)
  std::int64_t batch_number = 0;  // 0-based batch of the epoch
  std::int64_t size = 0;          // images
  double lr = 0;
  std::vector<std::string> names;  // the batch's images, for the message of a bad step
};

struct StepDone {
  StepTicket ticket;
  StepOutcome outcome;
  std::string description;  // not applied: describe_nonfinite(...)
  std::string stopped;      // not applied: how far training went ("without an update", ...)
};

struct PipelineOptions {
  bool cuda_graph = false;          // CUDA: capture the step once and replay it
  std::int64_t full_batch = 0;      // the batch size (only full batches are captured)
};

class StepPipeline {
 public:
  // `log`: the line written when a graph is captured. On CUDA the optimiser must have its device
  // scalars (Optimizer::enable_device_scalars).
  StepPipeline(TrainStep& step, const PipelineOptions& options, std::function<void(const std::string&)> log);
  ~StepPipeline();
  StepPipeline(const StepPipeline&) = delete;
  StepPipeline& operator=(const StepPipeline&) = delete;

  // Runs (CPU) or enqueues (CUDA) the step of `ticket` on b; returns the step the host has just
  // learned about: this one on the CPU, the previous one on CUDA (nothing for the first).
  std::optional<StepDone> submit(const data::Batch& b, StepTicket ticket);
  // The outcome of the step still in flight (CUDA), if any.
  std::optional<StepDone> drain();
  // After drain(), before the model is read or saved: the replays' batch counts into the batch
  // norms, and a check that the device's optimiser counters agree with the host's.
  void settle(std::int64_t global_step);

 private:
  struct Pending {
    StepTicket ticket;
    std::vector<std::size_t> active;  // the parameters the step updates
    int slot = 0;
  };
  StepDone finish(const Pending& p);
  static constexpr int kSlots = 2;
  TrainStep& step_;
  PipelineOptions options_;
  bool on_device_ = false;
  std::optional<CapturedStep> graph_;
  std::optional<Pending> pending_;
  Tensor pinned_;  // (kSlots, 4) page-locked read-back slots of the status
  std::vector<std::unique_ptr<Event>> events_;
  std::int64_t enqueued_ = 0, last_step_ = 0;
};

}  // namespace cxr
