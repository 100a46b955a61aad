// Bucketed, overlapped gradient all-reduce (see grad_reducer.h).
#include "train/grad_reducer.h"

#include <chrono>

#include "tensor/error.h"

namespace cxr {

GradientReducer::GradientReducer(dist::Communicator& comm, std::vector<std::pair<std::string, Parameter*>> params,
                                 std::size_t bucket_bytes)
    : comm_(comm), params_(std::move(params)), bucket_bytes_(bucket_bytes) {}

GradientReducer::~GradientReducer() {
  if (active_) set_grad_ready_hook(previous_hook_);
}

void GradientReducer::build_buckets() {
  buckets_.clear();
  bucket_of_.clear();
  trainable_.assign(params_.size(), false);
  Bucket current;
  std::size_t bytes = 0;
  for (std::size_t k = params_.size(); k-- > 0;) {  // reverse registration order: backward's order
    Parameter& p = *params_[k].second;
    if (!p.trainable) continue;
    trainable_[k] = true;
    current.members.push_back(k);
    bytes += p.value.nbytes();
    if (bytes >= bucket_bytes_) {
      buckets_.push_back(std::move(current));
      current = Bucket{};
      bytes = 0;
    }
  }
  if (!current.members.empty()) buckets_.push_back(std::move(current));
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    Bucket& bk = buckets_[b];
    std::int64_t n = 0;
    for (std::size_t k : bk.members) {
      bk.offsets.push_back(n);
      n += params_[k].second->value.numel();
      bucket_of_[params_[k].second] = b;
    }
    bk.flat = Tensor::empty({n}, DType::F32, params_[bk.members.front()].second->value.device());
  }
}

void GradientReducer::begin() {
  bool changed = trainable_.size() != params_.size();
  for (std::size_t k = 0; k < params_.size() && !changed; ++k) changed = trainable_[k] != params_[k].second->trainable;
  if (changed) build_buckets();
  for (Bucket& b : buckets_) {
    b.pending = b.members.size();
    b.work.reset();
  }
  next_start_ = 0;
  if (active_) set_grad_ready_hook(previous_hook_);  // a backward that threw before finish()
  previous_hook_ = set_grad_ready_hook(this);
  active_ = true;
}

void GradientReducer::grad_ready(Parameter& p) {
  if (previous_hook_ != nullptr) previous_hook_->grad_ready(p);
  const auto it = bucket_of_.find(&p);
  if (it == bucket_of_.end()) return;  // not trainable: not reduced
  Bucket& b = buckets_[it->second];
  CXR_CHECK(!b.work, "rank ", comm_.rank(), ": a parameter received a second gradient after its bucket's all-reduce "
                     "had started (a parameter used twice in one forward is not supported by the gradient buckets)");
  --b.pending;
  start_ready_buckets();
}

void GradientReducer::start_ready_buckets() {
  while (next_start_ < buckets_.size() && buckets_[next_start_].pending == 0) start(buckets_[next_start_++]);
}

void GradientReducer::start(Bucket& b) {
  for (std::size_t i = 0; i < b.members.size(); ++i) {
    Parameter& p = *params_[b.members[i]].second;
    Tensor slot = b.flat.narrow(0, b.offsets[i], p.value.numel());
    if (p.grad.defined()) slot.copy_(p.grad.contiguous().view({p.value.numel()}));
    else slot.zero_();  // no gradient this step (an unused parameter): contributes zeros
  }
  b.work = comm_.all_reduce_sum_async(b.flat);
}

void GradientReducer::finish() {
  set_grad_ready_hook(previous_hook_);
  active_ = false;
  for (Bucket& b : buckets_) b.pending = 0;  // parameters without a gradient: their buckets go now
  start_ready_buckets();
  const auto t0 = std::chrono::steady_clock::now();
  std::int64_t bytes = 0;
  for (Bucket& b : buckets_) {
    b.work->wait();
    stats_.comm_seconds += b.work->seconds();
    bytes += static_cast<std::int64_t>(b.flat.nbytes());
  }
  stats_.exposed_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (Bucket& b : buckets_)
    for (std::size_t i = 0; i < b.members.size(); ++i) {
      Parameter& p = *params_[b.members[i]].second;
      if (!p.grad.defined()) p.grad = Tensor::zeros(p.value.shape(), DType::F32, p.value.device());
      p.grad.copy_(b.flat.narrow(0, b.offsets[i], p.value.numel()).view(p.value.shape()));
    }
  stats_.bytes = bytes;
  ++stats_.steps;
}

}  // namespace cxr
