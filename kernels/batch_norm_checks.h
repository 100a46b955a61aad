// The argument checks and message names of the batch-norm ops (kernels/batch_norm.cpp and
// kernels/batch_norm_sync.cpp): one wording for the whole family.
#pragma once

#include <string>

#include "kernels/batch_norm.h"
#include "kernels/float_tensor.h"

namespace cxr::bn_checks {

// The op's name in every message: "batch_norm2d_train" (identity), "batch_norm_act_train(relu)".
inline std::string op_name(const char* what, BnActivation act) {
  if (act == BnActivation::Identity) return std::string("batch_norm2d_") + what;
  return std::string("batch_norm_act_") + what + "(" + bn_activation_name(act) + ")";
}

// x of every op: defined, f32 or bf16, contiguous, 4-D.
inline void check_x(const char* op, const Tensor& x) {
  check_float_input(op, "x", x);
  check_dim(op, "x", x, 4);
}

// A per-channel vector of x's C channels, f32 on x's device.
inline void check_channel_vector(const char* op, const char* name, const Tensor& t, const Tensor& x) {
  check_f32_input(op, name, t, &x);
  check_shape(op, name, t, {x.size(1)});
}

}  // namespace cxr::bn_checks
