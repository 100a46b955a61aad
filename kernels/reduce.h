// Reductions: sum / mean of a whole tensor, sum over one dimension, and the global L2 norm
// of a list of tensors with gradient clipping.
//
//   sum(x)  = Σ_i x_i            -> one-element tensor      d sum / dx_i  = 1
//   mean(x) = Σ_i x_i / n        -> one-element tensor      d mean / dx_i = 1 / n
//   sum_dim(x, d): x viewed as (outer, D, inner) -> (outer, inner)   dx[o, k, i] = dy[o, i]
//   global_norm(g_1..g_T) = sqrt(Σ_t Σ_i g_t,i²)
//   clip coefficient      = min(1, max_norm / (norm + 1e-6))   (torch.nn.utils.clip_grad_norm_)
//
// Device results stay on the device: the clip coefficient is computed there and either
// applied with scale_() or handed to the optimisers as their gradient scale (no host sync).
// Accumulation: CUDA in f32 (per-thread partial sums, warp shuffles, block trees, a fixed
// two-pass order: deterministic); CPU in double, in a fixed order whatever the number of
// OpenMP threads (chunks of kSumChunk elements, their sums added in chunk order; see
// kernels/cpu/reduce.cpp): bit-identical at any thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace cxr {

// x: any shape, f32, contiguous. Returns a (1) tensor on x's device.
Tensor sum(const Tensor& x);
Tensor mean(const Tensor& x);
// dy: (1). Returns dx of `shape` on dy's device: dx_i = dy (sum) or dy / numel (mean).
Tensor sum_backward(const Tensor& dy, const Shape& shape);
Tensor mean_backward(const Tensor& dy, const Shape& shape);

// Sum over dimension `dim` (negative counts from the end); the dimension is removed
// (keepdim = false) or kept with size 1.
Tensor sum_dim(const Tensor& x, int dim, bool keepdim = false);
// dy: the output of sum_dim (either keepdim form); returns dx of `shape`.
Tensor sum_dim_backward(const Tensor& dy, const Shape& shape, int dim);

// sqrt(Σ over all tensors and elements of t²) as a (1) tensor on the tensors' device.
// Every tensor: f32, contiguous, the same device (an empty list gives 0 on the CPU).
Tensor global_norm(const std::vector<Tensor>& tensors);

struct GradNorm {
  Tensor norm;       // (1): the total norm before clipping
  Tensor clip_coef;  // (1): min(1, max_norm / (norm + 1e-6))
};
// The norm and the clip coefficient in one pass (both on the device of the gradients).
GradNorm grad_norm(const std::vector<Tensor>& grads, float max_norm);

// tensors[k] *= scale[0] in place, for every k. scale: (1) f32 on the tensors' device.
void scale_(std::vector<Tensor>& tensors, const Tensor& scale);

// torch.nn.utils.clip_grad_norm_(grads, max_norm): scales the gradients in place by the
// clip coefficient; returns the total norm before clipping (on the device).
Tensor clip_grad_norm_(std::vector<Tensor>& grads, float max_norm);

inline constexpr float kClipEps = 1e-6f;

namespace cpu {
// The whole-tensor sums below cut x into chunks of this many elements, a constant (not a
// function of the thread count): chunk sums in any thread, added in chunk order.
inline constexpr std::int64_t kSumChunk = std::int64_t{1} << 14;
// out[0] = Σ x (accumulated in double) * scale.
template <typename T>
void sum(const T* x, std::int64_t n, T scale, T* out);
// y[i] = dy[0] * scale for i < n.
template <typename T>
void fill_scaled(const T* dy, T scale, T* y, std::int64_t n);
// y[o, i] = Σ_k x[o, k, i].
template <typename T>
void sum_dim(const T* x, T* y, std::int64_t outer, std::int64_t d, std::int64_t inner);
// dx[o, k, i] = dy[o, i].
template <typename T>
void sum_dim_backward(const T* dy, T* dx, std::int64_t outer, std::int64_t d, std::int64_t inner);
// Σ_i x_i² in double.
template <typename T>
double sum_of_squares(const T* x, std::int64_t n);
template <typename T>
void scale(T* x, std::int64_t n, T s);
}  // namespace cpu

namespace cuda {
// out[0] = Σ x * scale. Deterministic two-pass tree reduction.
void sum(const float* x, std::int64_t n, float scale, float* out);
void fill_scaled(const float* dy, float scale, float* y, std::int64_t n);
void sum_dim(const float* x, float* y, std::int64_t outer, std::int64_t d, std::int64_t inner);
void sum_dim_backward(const float* dy, float* dx, std::int64_t outer, std::int64_t d, std::int64_t inner);
// norm[0] = sqrt(Σ_t Σ_i x_t,i²); if clip_coef: clip_coef[0] = min(1, max_norm / (norm + 1e-6)).
void global_norm(const std::vector<const float*>& tensors, const std::vector<std::int64_t>& numel, float* norm,
                 float* clip_coef, float max_norm);
// x_t *= scale[0] for every tensor, one launch.
void scale(const std::vector<float*>& tensors, const std::vector<std::int64_t>& numel, const float* scale);
}  // namespace cuda

}  // namespace cxr
