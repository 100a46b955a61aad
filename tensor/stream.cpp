#include "tensor/stream.h"

#include "tensor/backend.h"

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

}  // namespace cxr
