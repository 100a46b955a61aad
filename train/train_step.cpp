// One training step (see train_step.h).
#include "train/train_step.h"

#include <cmath>
#include <sstream>

#include "data/loader.h"
#include "dist/communicator.h"
#include "train/grad_reducer.h"
#include "kernels/cxr_loss.h"
#include "kernels/optimizer_step.h"

namespace cxr {
namespace {
// The optimiser's gradient scale: the clip coefficient when clipping, else none.
Tensor clip_scale(const StepConfig& c, const StepGradients& g) {
  return c.grad_clip > 0 && g.norm.clip_coef.defined() ? g.norm.clip_coef : Tensor();
}
}  // namespace

TrainStep::TrainStep(CxrModel& model, Optimizer& optim, StepConfig config, const TrainHooks* hooks)
    : model_(model), optim_(optim), config_(std::move(config)), hooks_(hooks) {
  const Device device = optim_.size() > 0 ? optim_.param(0).value.device() : Device::CPU;
  if (config_.skip_nonfinite)
    for (auto& [name, b] : model_.named_buffers()) {  // once: named_buffers() may synchronise
      buffers_.push_back(*b);
      saved_buffers_.push_back(b->clone());
    }
  if (device == Device::CUDA) status_ = make_step_status(device);
}

TrainStep::~TrainStep() = default;

void TrainStep::save_buffers() {
  if (config_.skip_nonfinite) copy_tensors_(saved_buffers_, buffers_);  // one launch on a device
}

void TrainStep::restore_buffers() {
  if (config_.skip_nonfinite) copy_tensors_(buffers_, saved_buffers_);
}

StepGradients TrainStep::forward_backward(const data::Batch& b, std::int64_t step, bool run_hooks) {
  HeadOutputs o = model_.forward_heads(b.images);
  CxrLoss l = cxr_loss(o.logits, b.labels, config_.pos_weight, o.boxes, b.boxes, b.box_mask, config_.box_loss_weight,
                       share_, b.label_mask);  // label_mask undefined (NIH): the unmasked loss
  model_.zero_grad_deferred();     // CPU: the backward's gradients replace the old ones
  if (reducer_) reducer_->begin();  // gradient buckets start their all-reduce during backward
  model_.backward_heads(l.dz, l.db);
  model_.settle_grads();  // zeroes the gradients that got none
  if (reducer_) reducer_->finish();
  if (comm_) comm_->all_reduce_sum(l.loss);  // this rank's share -> the global batch's loss
  if (run_hooks && hooks_ && hooks_->after_backward) hooks_->after_backward(step, model_);
  StepGradients g;
  g.loss = l.loss;
  g.active = optim_.active();
  if (!g.active.empty()) g.norm = optim_.global_norm(g.active, config_.grad_clip);
  return g;
}

StepOutcome TrainStep::run(const data::Batch& b, double lr, std::int64_t step) {
  if (hooks_ && hooks_->before_forward) hooks_->before_forward(step, b);
  save_buffers();
  const StepGradients g = forward_backward(b, step, /*run_hooks=*/true);
  StepOutcome r;
  r.loss = g.loss.item();
  r.norm = g.norm.norm.defined() ? static_cast<double>(g.norm.norm.item()) : 0.0;
  r.applied = std::isfinite(r.loss) && std::isfinite(r.norm);
  if (r.applied) {
    optim_.step(lr, g.active, clip_scale(config_, g));
  } else {
    if (!std::isfinite(r.norm)) r.nonfinite_parameters = optim_.nonfinite_gradients(g.active);
    restore_buffers();
  }
  return r;
}

std::vector<std::size_t> TrainStep::enqueue(const data::Batch& b, std::int64_t step, bool run_hooks) {
  CXR_CHECK(status_.defined(), "TrainStep::enqueue is the CUDA form of the step; the model is on the CPU");
  save_buffers();
  const StepGradients g = forward_backward(b, step, run_hooks);
  step_status_(status_, g.loss, g.norm.norm, /*latch=*/!config_.skip_nonfinite);
  if (config_.skip_nonfinite) restore_if_skipped_(buffers_, saved_buffers_, status_);
  optim_.guarded_step(g.active, clip_scale(config_, g), status_);
  return g.active;
}

std::string describe_nonfinite(std::int64_t step, int epoch, std::int64_t batch_number,
                               const std::vector<std::string>& names, const StepOutcome& r) {
  std::ostringstream os;
  os << "non-finite values at step " << step << " (epoch " << epoch << ", batch " << batch_number + 1 << "): ";
  if (!std::isfinite(r.loss)) os << "the training loss is " << r.loss;
  if (!std::isfinite(r.norm)) {
    os << (std::isfinite(r.loss) ? "" : "; ") << "the gradient norm is " << r.norm;
    const auto& bad = r.nonfinite_parameters;
    if (!bad.empty()) {
      os << ", first in the gradient of " << bad.front();
      if (bad.size() > 1) os << " (and " << bad.size() - 1 << " more parameters)";
    }
  }
  os << "; images of the batch: ";
  for (std::size_t i = 0; i < names.size() && i < 4; ++i) os << (i ? ", " : "") << names[i];
  if (names.size() > 4) os << " and " << names.size() - 4 << " more";
  return os.str();
}

}  // namespace cxr
