// Dropout and StochasticDepth modules (see dropout.h).
#include "layers/dropout.h"

#include "layers/init.h"

namespace cxr {
namespace {
thread_local MaskShard t_mask_shard;
}  // namespace

void set_mask_shard(const MaskShard& shard) { t_mask_shard = shard; }
const MaskShard& mask_shard() { return t_mask_shard; }

void MaskStream::set(std::uint64_t seed, std::uint64_t offset) {
  seed_ = seed;
  offset_ = offset;
  if (device_) device_->set(offset);
}

std::uint64_t MaskStream::offset() const { return device_ ? device_->next() : offset_; }

void MaskStream::place(Device device) {
  if (device == Device::CUDA && !device_) {
    device_ = std::make_unique<DeviceMaskCounter>(offset_);
  } else if (device == Device::CPU && device_) {
    offset_ = device_->next();
    device_.reset();
  }
}

DropoutParams MaskStream::next(float p, bool training, const Tensor& x, std::uint64_t count) {
  place(x.device());
  DropoutParams d{p, seed_, offset_, training};
  if (!training) return d;
  // A rank's part of a global batch (MaskShard): its rows start `skip` counters in, and the
  // stream moves past the whole global batch.
  std::uint64_t skip = 0, advance = count;
  const MaskShard& shard = mask_shard();
  if (shard.global_rows > 0 && x.dim() > 0 && x.size(0) > 0) {
    const auto per_row = count / static_cast<std::uint64_t>(x.size(0));
    skip = static_cast<std::uint64_t>(shard.row_begin) * per_row;
    advance = static_cast<std::uint64_t>(shard.global_rows) * per_row;
  }
  if (device_) {
    d.device_offset = device_->advance(advance, skip);  // the kernels read the offset when they run
  } else {
    d.offset = offset_ + skip;
    offset_ += advance;
  }
  return d;
}

Dropout::Dropout(float p) : p_(p), stream_(next_layer_seed()) {
  CXR_CHECK(p >= 0.f && p <= 1.f, "Dropout: p must be in [0, 1], found ", p);
}

Tensor Dropout::forward(const Tensor& x) {
  last_ = stream_.next(p_, training(), x, static_cast<std::uint64_t>(x.numel()));
  return dropout(x.contiguous(), last_);
}

Tensor Dropout::backward(const Tensor& dy) { return dropout_backward(dy.contiguous(), last_); }

StochasticDepth::StochasticDepth(float p) : p_(p), stream_(next_layer_seed()) {
  CXR_CHECK(p >= 0.f && p <= 1.f, "StochasticDepth: p must be in [0, 1], found ", p);
}

Tensor StochasticDepth::forward(const Tensor& x) {
  last_ = stream_.next(p_, training(), x, static_cast<std::uint64_t>(x.dim() > 0 ? x.size(0) : 1));
  return drop_path(x.contiguous(), last_);
}

Tensor StochasticDepth::backward(const Tensor& dy) { return drop_path_backward(dy.contiguous(), last_); }

}  // namespace cxr
