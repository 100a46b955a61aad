// Submitting training steps and learning their outcome (see step_pipeline.h).
#include "train/step_pipeline.h"

#include <algorithm>
#include <cmath>

#include "tensor/backend.h"

namespace cxr {

StepPipeline::StepPipeline(TrainStep& step, const PipelineOptions& options,
                           std::function<void(const std::string&)> log)
    : step_(step), options_(options), on_device_(step.status().defined()) {
  if (!on_device_) return;
  CXR_CHECK(step.optimizer().has_device_scalars(),
            "StepPipeline: on CUDA the optimiser needs its device scalars (enable_device_scalars)");
  if (options_.cuda_graph) graph_.emplace(std::move(log));
  pinned_ = Tensor::empty_pinned({kSlots, 4});
  for (int i = 0; i < kSlots; ++i) events_.push_back(std::make_unique<Event>());
}

StepPipeline::~StepPipeline() = default;

std::optional<StepDone> StepPipeline::submit(const data::Batch& b, StepTicket ticket) {
  last_step_ = ticket.step;
  if (!on_device_) {
    StepDone d;
    d.outcome = step_.run(b, ticket.lr, ticket.step);
    if (!d.outcome.applied) {
      d.description = describe_nonfinite(ticket.step, ticket.epoch, ticket.batch_number, ticket.names, d.outcome);
      d.stopped = "without an update";
    }
    d.ticket = std::move(ticket);
    return d;
  }
  const TrainHooks* hooks = step_.hooks();
  if (hooks && hooks->before_forward) hooks->before_forward(ticket.step, b);
  Pending now;
  if (graph_ && b.size() == options_.full_batch)
    now.active = graph_->run(step_, b, ticket.step);
  else
    now.active = step_.enqueue(b, ticket.step, /*run_hooks=*/true);
  // The status into pinned slot `slot`, and its event: no wait.
  now.slot = static_cast<int>(enqueued_++ % kSlots);
  backend::copy_async(pinned_.f32() + 4 * now.slot, step_.status().f32(), 4 * sizeof(float),
                      backend::CopyKind::DeviceToHost, Stream::compute().handle());
  events_[static_cast<std::size_t>(now.slot)]->record(Stream::compute());
  now.ticket = std::move(ticket);
  if (hooks && hooks->after_enqueue) hooks->after_enqueue(now.ticket.step);
  std::optional<StepDone> done = drain();  // the previous step: finished on the device by now, or soon
  pending_ = std::move(now);
  return done;
}

std::optional<StepDone> StepPipeline::drain() {
  if (!pending_) return std::nullopt;
  const Pending p = std::move(*pending_);
  pending_.reset();
  return finish(p);
}

// Waits for step p's slot (the only host synchronisation of a step) and applies it on the host.
StepDone StepPipeline::finish(const Pending& p) {
  events_[static_cast<std::size_t>(p.slot)]->synchronize();
  const float* h = pinned_.f32() + 4 * p.slot;
  StepDone d;
  d.ticket = p.ticket;
  d.outcome.loss = h[0];
  d.outcome.norm = h[1];
  d.outcome.applied = h[2] != 0.f;
  Optimizer& optim = step_.optimizer();
  if (d.outcome.applied) {
    optim.confirm_applied(p.active);
    return d;
  }
  if (!std::isfinite(d.outcome.norm)) d.outcome.nonfinite_parameters = optim.nonfinite_of_step(p.ticket.step, p.active);
  d.description = describe_nonfinite(p.ticket.step, p.ticket.epoch, p.ticket.batch_number, p.ticket.names, d.outcome);
  d.stopped = "at step " + std::to_string(std::max(last_step_, p.ticket.step)) +
              " (the host learns of a step one step late) without an update from step " +
              std::to_string(p.ticket.step) + " or after";
  return d;
}

void StepPipeline::settle(std::int64_t global_step) {
  if (!on_device_) return;
  if (graph_) graph_->account_replays(step_.model());
  step_.optimizer().check_device_counts(global_step);
}

}  // namespace cxr
