// GradientReducer: the gradient all-reduce of data-parallel training, as PyTorch DDP does it.
//
// The trainable parameters are grouped into buckets of about `bucket_bytes` (25 MB, DDP's
// default) in reverse registration order, i.e. roughly the order in which backward produces
// their gradients. During backward, every Parameter::accumulate_grad marks its parameter ready
// (the GradReadyHook of layers/module.h); when every parameter of a bucket is ready, the
// bucket's gradients are copied into one flat buffer and its all-reduce starts on the
// communicator while backward goes on with the earlier layers. Buckets start strictly in
// bucket order (so every rank issues the same collectives in the same order); finish() starts
// any that are left (parameters that got no gradient), waits for all and copies the sums back.
//
// The sums are the gradient of the global loss: each rank's loss is already its share of the
// mean over the global batch (cxr_loss's LossShare), so no division follows.
//
// Overlap, measured: seconds() is the time the back end spent communicating; exposed_seconds()
// the part of it that finish() waited for after backward ended. The rest was hidden behind
// backward.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "dist/communicator.h"
#include "layers/module.h"

namespace cxr {

class GradientReducer final : public GradReadyHook {
 public:
  struct Stats {
    std::int64_t steps = 0;
    std::int64_t bytes = 0;          // per step
    double comm_seconds = 0;         // the back end's time on the all-reduces
    double exposed_seconds = 0;      // the part finish() waited for
  };

  // params: the model's parameters in registration order (the optimiser's), with their names.
  GradientReducer(dist::Communicator& comm, std::vector<std::pair<std::string, Parameter*>> params,
                  std::size_t bucket_bytes = 25u << 20);
  ~GradientReducer() override;

  // Before backward: installs the hook for this thread; rebuilds the buckets when the trainable
  // set changed (--freeze-backbone-epochs).
  void begin();
  void grad_ready(Parameter& p) override;
  // After backward: every gradient is the sum over ranks. Removes the hook.
  void finish();

  const Stats& stats() const { return stats_; }
  std::size_t bucket_count() const { return buckets_.size(); }

 private:
  struct Bucket {
    std::vector<std::size_t> members;  // indices into params_
    std::vector<std::int64_t> offsets;
    Tensor flat;
    std::size_t pending = 0;
    std::shared_ptr<dist::Work> work;
  };
  void build_buckets();
  void start_ready_buckets();  // in bucket order, as far as they are complete
  void start(Bucket& b);

  dist::Communicator& comm_;
  std::vector<std::pair<std::string, Parameter*>> params_;
  std::size_t bucket_bytes_;
  std::vector<bool> trainable_;  // the set the buckets were built for
  std::vector<Bucket> buckets_;
  std::unordered_map<const Parameter*, std::size_t> bucket_of_;
  std::size_t next_start_ = 0;
  GradReadyHook* previous_hook_ = nullptr;
  bool active_ = false;
  Stats stats_;
};

}  // namespace cxr
