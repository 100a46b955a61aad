#include "tensor/stream.h"

#include "tensor/allocator.h"
#include "tensor/backend.h"
#include "tensor/error.h"

namespace cxr {

Stream::Stream() : handle_(backend::stream_create()), owned_(true) {}
Stream::~Stream() {
  if (owned_ && handle_) backend::stream_destroy(handle_);
}
Stream& Stream::compute() {
  static Stream* s = new Stream(backend::compute_stream_handle());
  return *s;
}
void Stream::synchronize() { backend::stream_synchronize(handle_); }

Event::Event(bool timing) : handle_(backend::event_create(timing)) {}
Event::~Event() {
  if (handle_) backend::event_destroy(handle_);
}
void Event::record(Stream& stream) { backend::event_record(handle_, stream.handle()); }
void Event::synchronize() { backend::event_synchronize(handle_); }
bool Event::query() { return backend::event_query(handle_); }
void Event::block(Stream& stream) { backend::stream_wait_event(stream.handle(), handle_); }
float Event::elapsed_ms_since(const Event& start) const { return backend::event_elapsed_ms(start.handle_, handle_); }

Graph::Graph() : pool_(create_graph_pool()) {}

Graph::~Graph() {
  if (capturing_) {
    end_graph_pool();
    try {
      backend::graph_destroy(backend::stream_end_capture(stream_->handle()));
    } catch (const Error&) {
    }
  }
  backend::graph_destroy(exec_);
  release_graph_pool(pool_);
}

void Graph::begin_capture(Stream& stream) {
  CXR_CHECK(!capturing_ && exec_ == nullptr, "Graph::begin_capture: this graph was already captured");
  backend::stream_begin_capture(stream.handle());
  stream_ = &stream;
  capturing_ = true;
  begin_graph_pool(pool_);
}

void Graph::end_capture() {
  CXR_CHECK(capturing_, "Graph::end_capture: no capture in progress");
  end_graph_pool();
  capturing_ = false;
  exec_ = backend::stream_end_capture(stream_->handle());
}

void Graph::replay() {
  CXR_CHECK(exec_ != nullptr, "Graph::replay: nothing was captured");
  backend::graph_launch(exec_, stream_->handle());
}

}  // namespace cxr
