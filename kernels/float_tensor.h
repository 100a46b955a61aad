// Tensor-level helpers for the ops whose activations may be f32 or bf16 (mixed precision,
// docs/mixed_precision.md: between two convolutions the activations stay bf16).
//
//   check_float_input("add", "a", a);          // F32 or BF16, contiguous
//   visit_float_type(x.dtype(), [&](auto e) {  // e: float{} or std::uint16_t{} (bf16 bits)
//     using T = decltype(e);
//     cuda::op(x.data<T>(), y.data<T>(), n);
//   });
//   visit_float_types(a.dtype(), b.dtype(), [&](auto ea, auto eb) { ... });  // two independent dtypes
// The CPU reference of a bf16 op is the f32 op on the widened input, rounded once to bf16:
//   if (x.is_cpu() && is_bf16(x)) return to_bf16(op(to_f32(x)));
#pragma once

#include <cstdint>

#include "kernels/cast.h"
#include "tensor/tensor.h"

namespace cxr {

inline bool is_bf16(const Tensor& t) {
  return t.dtype() == DType::BF16;
}

// Defined, F32 or BF16, contiguous, and on like's device when given.
inline void check_float_input(const char* op, const char* name, const Tensor& t, const Tensor* like = nullptr) {
  check_defined(op, name, t);
  CXR_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::BF16, op, ": '", name, "' must be f32 or bf16, found ",
            t.str());
  check_contiguous(op, name, t);
  if (like)
    CXR_CHECK(t.device() == like->device(), op, ": '", name, "' is on ", device_name(t.device()),
              " but the other inputs are on ", device_name(like->device()));
}

// Calls f(float{}) for F32 and f(std::uint16_t{}) for BF16: the storage type that picks a
// kernel's instantiation.
template <typename F>
void visit_float_type(DType t, F&& f) {
  if (t == DType::BF16)
    f(std::uint16_t{});
  else
    f(float{});
}

// The same for two tensors whose dtypes are independent: f(TA{}, TB{}).
template <typename F>
void visit_float_types(DType a, DType b, F&& f) {
  visit_float_type(a, [&](auto ea) { visit_float_type(b, [&](auto eb) { f(ea, eb); }); });
}

// y (f32) in like's dtype: rounded to bf16 when like is bf16.
inline Tensor in_dtype_of(const Tensor& like, const Tensor& y) {
  return is_bf16(like) ? to_bf16(y) : y;
}

}  // namespace cxr
