// Tensor-level dropout / drop-path: argument checks, identity shortcuts, device dispatch.
// bf16 x: native kernel on CUDA; on the CPU the f32 reference on the widened x, rounded once.
#include "kernels/dropout.h"

#include <cstring>

#include "kernels/float_tensor.h"

namespace cxr {

namespace {

// x: f32 or bf16 (the backwards check for f32 dy first); y in x's dtype.
Tensor apply(const char* op, const char* name, const Tensor& x, const DropoutParams& d, bool per_sample) {
  check_float_input(op, name, x);
  CXR_CHECK(d.p >= 0.f && d.p <= 1.f, op, ": p must be in [0, 1], found ", d.p);
  if (per_sample) CXR_CHECK(x.dim() >= 1, op, ": ", name, " must have a batch dimension, found ", x.str());
  CXR_CHECK(d.device_offset == nullptr || x.is_cuda(), op, ": a device-side mask offset needs ", name,
            " on the CUDA device, found it on the CPU");
  if (!d.training || d.p == 0.f) return x;
  if (x.is_cpu() && is_bf16(x)) return to_bf16(apply(op, name, to_f32(x), d, per_sample));
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  const std::int64_t n = x.numel();
  const std::int64_t group = per_sample ? (x.size(0) > 0 ? n / x.size(0) : 1) : 1;
  if (n == 0) return y;
  const float scale = d.p < 1.f ? 1.f / (1.f - d.p) : 0.f;
  if (x.is_cpu()) {
    cpu::dropout_apply(x.f32(), y.f32(), n, group, d.p, scale, d.seed, d.offset);
    return y;
  }
  visit_float_type(x.dtype(), [&](auto e) {
    using T = decltype(e);
    if (d.device_offset != nullptr)
      cuda::dropout_apply(x.data<T>(), y.data<T>(), n, group, d.p, scale, d.seed, d.device_offset);
    else
      cuda::dropout_apply(x.data<T>(), y.data<T>(), n, group, d.p, scale, d.seed, d.offset);
  });
  return y;
}

// {next, used} as the 4 I32 words of a host tensor.
Tensor counter_words(std::uint64_t next, std::uint64_t used) {
  Tensor h = Tensor::empty({4}, DType::I32);
  const std::uint64_t v[2] = {next, used};
  std::memcpy(h.raw_data(), v, sizeof v);
  return h;
}

}  // namespace

DeviceMaskCounter::DeviceMaskCounter(std::uint64_t next) : buf_(counter_words(next, next).to(Device::CUDA)) {}

void DeviceMaskCounter::set(std::uint64_t next) { buf_.copy_(counter_words(next, next)); }

std::uint64_t DeviceMaskCounter::next() const {
  const Tensor h = buf_.cpu();
  std::uint64_t v = 0;
  std::memcpy(&v, h.raw_data(), sizeof v);
  return v;
}

const std::uint64_t* DeviceMaskCounter::advance(std::uint64_t count, std::uint64_t skip) {
  cuda::mask_counter_advance(static_cast<std::uint64_t*>(buf_.raw_data()), count, skip);
  return used();
}

const std::uint64_t* DeviceMaskCounter::used() const {
  return static_cast<const std::uint64_t*>(buf_.raw_data()) + 1;
}

Tensor dropout(const Tensor& x, const DropoutParams& d) {
  return apply("dropout", "x", x, d, false);
}
Tensor dropout_backward(const Tensor& dy, const DropoutParams& d) {
  check_f32_input("dropout_backward", "dy", dy);
  return apply("dropout_backward", "dy", dy, d, false);
}
Tensor drop_path(const Tensor& x, const DropoutParams& d) {
  return apply("drop_path", "x", x, d, true);
}
Tensor drop_path_backward(const Tensor& dy, const DropoutParams& d) {
  check_f32_input("drop_path_backward", "dy", dy);
  return apply("drop_path_backward", "dy", dy, d, true);
}

}  // namespace cxr
