// --cuda-graph: the training step captured once as a CUDA graph and replayed (docs/speed.md,
// "CUDA graphs"). The policy, in one object:
//   - the batch is copied into static device buffers (a graph replays fixed addresses);
//   - after a (re)start, kGraphWarmupSteps steps run eagerly: the first creates the lazily
//     allocated state (gradients, tables) that must not be allocated inside a capture;
//   - then the step is captured once (GraphCaptureScope) and replayed from then on;
//   - a change of the trainable set (--freeze-backbone-epochs) or of the batch shape starts
//     again: warm-up, capture. Partial batches never reach it (the pipeline runs them eagerly).
// BatchNorm2d counts its forward passes on the host, which a replay skips: account_replays()
// adds them to num_batches_tracked before anything reads or saves the buffers.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/loader.h"
#include "tensor/stream.h"
#include "train/train_step.h"

namespace cxr {

// Eager steps before the step is captured, after the start and after each change of the
// trainable set.
inline constexpr int kGraphWarmupSteps = 2;

// Begins a capture on the compute stream for its scope. finish() ends it and returns the graph;
// a scope left by an exception ends the capture and drops the graph, so the stream is usable again.
class GraphCaptureScope {
 public:
  GraphCaptureScope();
  ~GraphCaptureScope();
  GraphCaptureScope(const GraphCaptureScope&) = delete;
  GraphCaptureScope& operator=(const GraphCaptureScope&) = delete;
  std::unique_ptr<Graph> finish();

 private:
  std::unique_ptr<Graph> graph_;
};

class CapturedStep {
 public:
  // `log`: one line when the step is (re)captured.
  explicit CapturedStep(std::function<void(const std::string&)> log);

  // Step `step_number` of `step` on b (a full batch): warm-up, capture or replay. Returns the
  // parameters the step updates.
  std::vector<std::size_t> run(TrainStep& step, const data::Batch& b, std::int64_t step_number);
  // Adds the forward passes of the replays since the last call to every num_batches_tracked.
  void account_replays(Module& model);

  std::int64_t captures() const { return captures_; }
  std::int64_t replays() const { return replays_; }

 private:
  std::function<void(const std::string&)> log_;
  std::unique_ptr<Graph> graph_;
  data::Batch static_;              // the batch's tensors at fixed device addresses
  std::vector<std::size_t> active_;  // the trainable set the graph updates
  int warm_ = 0;                     // eager steps since the last (re)start
  std::int64_t captures_ = 0, replays_ = 0, uncounted_forwards_ = 0;
};

}  // namespace cxr
