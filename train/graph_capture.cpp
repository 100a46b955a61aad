// --cuda-graph (see graph_capture.h).
#include "train/graph_capture.h"

#include "tensor/backend.h"

namespace cxr {

GraphCaptureScope::GraphCaptureScope() : graph_(std::make_unique<Graph>()) { graph_->begin_capture(Stream::compute()); }

GraphCaptureScope::~GraphCaptureScope() {
  if (!graph_) return;
  try {
    graph_->end_capture();  // left by an exception: end the capture, drop the graph
  } catch (const Error&) {
  }
}

std::unique_ptr<Graph> GraphCaptureScope::finish() {
  graph_->end_capture();
  return std::move(graph_);
}

CapturedStep::CapturedStep(std::function<void(const std::string&)> log) : log_(std::move(log)) {}

namespace {
// dst = src on the compute stream, dst (re)allocated when its shape differs.
void copy_into(Tensor& dst, const Tensor& src) {
  if (!dst.defined() || dst.shape() != src.shape()) dst = Tensor::empty(src.shape(), src.dtype(), src.device());
  backend::copy_async(dst.raw_data(), src.raw_data(), src.nbytes(), backend::CopyKind::DeviceToDevice,
                      Stream::compute().handle());
}
}  // namespace

std::vector<std::size_t> CapturedStep::run(TrainStep& step, const data::Batch& b, std::int64_t step_number) {
  const std::vector<std::size_t> trainable = step.optimizer().trainable();
  if (graph_ && (trainable != active_ || static_.images.shape() != b.images.shape())) {
    graph_.reset();  // recapture after a new warm-up (its pool goes back to the cache)
    warm_ = 0;
  }
  copy_into(static_.images, b.images);
  copy_into(static_.labels, b.labels);
  copy_into(static_.boxes, b.boxes);
  copy_into(static_.box_mask, b.box_mask);  // the step reads only these tensors
  if (b.label_mask.defined()) copy_into(static_.label_mask, b.label_mask);
  if (graph_) {
    graph_->replay();
    ++replays_;
    ++uncounted_forwards_;
    return active_;
  }
  if (warm_ < kGraphWarmupSteps) {
    ++warm_;
    return step.enqueue(static_, step_number, /*run_hooks=*/true);
  }
  std::vector<std::size_t> active;
  {
    GraphCaptureScope capture;
    active = step.enqueue(static_, step_number, /*run_hooks=*/false);
    graph_ = capture.finish();
  }
  CXR_CHECK(active == trainable, "--cuda-graph: the captured step updates other parameters than the trainable ones");
  active_ = active;
  ++captures_;
  graph_->replay();  // capturing ran nothing: this step runs now
  ++replays_;
  if (log_)
    log_("--cuda-graph: captured the training step at step " + std::to_string(step_number) + " (batch shape " +
         shape_str(b.images.shape()) + "); replayed from then on");
  return active_;
}

void CapturedStep::account_replays(Module& model) {
  if (uncounted_forwards_ == 0) return;
  for (auto& [name, buf] : model.named_buffers()) {
    if (name.size() < 19 || name.compare(name.size() - 19, 19, "num_batches_tracked") != 0) continue;
    Tensor h = buf->cpu();
    h.data<std::int32_t>()[0] += static_cast<std::int32_t>(uncounted_forwards_);
    buf->copy_(h);
  }
  uncounted_forwards_ = 0;
}

}  // namespace cxr
