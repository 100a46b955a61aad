// Streams and events (RAII). On the emulated device they are synchronous.
#pragma once

namespace cxr {

class Stream {
 public:
  Stream();  // a new stream, for copies that overlap compute
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  static Stream& compute();  // the stream every op launches on
  void synchronize();
  void* handle() const { return handle_; }

 private:
  explicit Stream(void* borrowed) : handle_(borrowed), owned_(false) {}
  void* handle_ = nullptr;
  bool owned_ = true;
};

class Event {
 public:
  explicit Event(bool timing = false);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  void record(Stream& stream);
  void synchronize();
  bool query();  // true when the work before the record has finished
  void block(Stream& stream);  // `stream` waits for this event
  float elapsed_ms_since(const Event& start) const;
  void* handle() const { return handle_; }

 private:
  void* handle_ = nullptr;
};

}  // namespace cxr
