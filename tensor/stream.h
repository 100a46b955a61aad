// Streams, events and CUDA graphs (RAII). On the emulated device they are synchronous.
#pragma once

#include <cstdint>

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

// A CUDA graph captured from a stream, with its private memory pool (tensor/allocator.h):
//   Graph g;
//   g.begin_capture(Stream::compute());   // work on the stream is recorded, not run;
//   ... launch ops ...                     // this thread's device allocations use g's pool
//   g.end_capture();                       // instantiates (throws if the capture failed)
//   g.replay();                            // runs the recorded work again, same addresses
// Tensors allocated during the capture keep pool memory; the pool's blocks are reserved for
// this graph until it is destroyed. A synchronising call (a host read, item(), a blocking
// copy) during the capture makes end_capture throw.
class Graph {
 public:
  Graph();
  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  void begin_capture(Stream& stream);
  void end_capture();   // also ends the pool scope when the capture failed
  void replay();
  bool ready() const { return exec_ != nullptr; }
  std::uint64_t pool() const { return pool_; }

 private:
  void* exec_ = nullptr;
  Stream* stream_ = nullptr;
  bool capturing_ = false;
  std::uint64_t pool_ = 0;
};

}  // namespace cxr
