// Dropout and StochasticDepth (drop-path, torchvision mode "row") over kernels/dropout.h.
//
// Each module owns a mask seed (drawn from the init generator at construction, see init.h)
// and a counter offset that advances after every training forward, so successive batches get
// fresh masks while the CPU, the GPU and the emulated device drop the same elements. The
// backward regenerates the forward's mask from (seed, offset): nothing is stored.
// In eval mode (or p = 0) both are the identity.
//
// Where the counter lives (MaskStream): on the host while the module runs on the CPU; from
// the first forward on the CUDA device (or place_counter(Device::CUDA)) in device memory
// (DeviceMaskCounter), advanced by a one-thread kernel before the mask kernel, so a captured
// CUDA graph advances it on every replay. A forward on the CPU (or place_counter(CPU)) reads
// it back. set_rng() and offset() work wherever it is (on the device: a blocking copy, so not
// during a graph capture). Module::to() moves no counter: the next forward does.
//
//   Dropout(0.2)                     nn.Dropout(p=0.2): element-wise, kept ones scaled by 1/(1-p)
//   StochasticDepth(0.1)             torchvision.ops.StochasticDepth(0.1, "row"): per sample
#pragma once

#include <memory>

#include "kernels/dropout.h"
#include "layers/module.h"

namespace cxr {

// Data-parallel training: this process holds rows [row_begin, row_begin + N) of a global batch
// of global_rows rows. Each mask stream then draws the counters those rows would draw in one
// process that ran the whole global batch, and advances by the global batch's count, so a
// sample's mask depends on (seed, its position in the global batch), not on which rank drew
// it. global_rows = 0 (the default): a single process. Set per step by the trainer (thread-local).
struct MaskShard {
  std::int64_t row_begin = 0;
  std::int64_t global_rows = 0;
};
void set_mask_shard(const MaskShard& shard);
const MaskShard& mask_shard();

// The (seed, offset) mask stream of one module, with its counter on the host or the device.
class MaskStream {
 public:
  explicit MaskStream(std::uint64_t seed) : seed_(seed) {}
  void set(std::uint64_t seed, std::uint64_t offset);
  std::uint64_t offset() const;  // the counter of the next training forward
  void place(Device device);     // moves the counter (an upload or a read-back; none if there)
  bool on_device() const { return device_ != nullptr; }
  // The mask of a forward of x that uses `count` counters, advancing the stream when training.
  DropoutParams next(float p, bool training, const Tensor& x, std::uint64_t count);

 private:
  std::uint64_t seed_, offset_ = 0;             // offset_: while the counter is on the host
  std::unique_ptr<DeviceMaskCounter> device_;  // set while it is on the CUDA device
};

class Dropout : public Module {
 public:
  explicit Dropout(float p);
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::string type_name() const override { return "Dropout"; }
  float p() const { return p_; }
  // Fixes the mask stream (tests; reproducing a run).
  void set_rng(std::uint64_t seed, std::uint64_t offset) { stream_.set(seed, offset); }
  std::uint64_t offset() const { return stream_.offset(); }
  // Puts the mask counter on `device` now (forward does it too; before a CUDA graph capture,
  // whose first forward must not upload it).
  void place_counter(Device device) { stream_.place(device); }

 private:
  float p_;
  MaskStream stream_;
  DropoutParams last_{0.f, 0, 0, false};  // the last forward's mask (identity before any)
};

class StochasticDepth : public Module {
 public:
  explicit StochasticDepth(float p);
  Tensor forward(const Tensor& x) override;  // x: (N, ...)
  Tensor backward(const Tensor& dy) override;
  std::string type_name() const override { return "StochasticDepth"; }
  float p() const { return p_; }
  void set_rng(std::uint64_t seed, std::uint64_t offset) { stream_.set(seed, offset); }
  std::uint64_t offset() const { return stream_.offset(); }
  void place_counter(Device device) { stream_.place(device); }

 private:
  float p_;
  MaskStream stream_;
  DropoutParams last_{0.f, 0, 0, false};  // the last forward's mask (identity before any)
};

}  // namespace cxr
