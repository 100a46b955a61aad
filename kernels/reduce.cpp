// Tensor-level reductions: argument checks, output allocation, device dispatch.
#include "kernels/reduce.h"

#include <cmath>

namespace cxr {
namespace {

Tensor sum_scaled(const char* op, const Tensor& x, bool is_mean) {
  check_f32_input(op, "x", x);
  Tensor out = Tensor::empty({1}, DType::F32, x.device());
  const std::int64_t n = x.numel();
  const float scale = is_mean ? (n > 0 ? 1.0f / static_cast<float>(n) : std::nanf("")) : 1.0f;
  if (x.is_cpu())
    cpu::sum(x.f32(), n, scale, out.f32());
  else
    cuda::sum(x.f32(), n, scale, out.f32());
  return out;
}

Tensor fill_from(const char* op, const Tensor& dy, const Shape& shape, bool is_mean) {
  check_f32_input(op, "dy", dy);
  CXR_CHECK(dy.numel() == 1, op, ": dy must have one element, found ", shape_str(dy.shape()));
  Tensor dx = Tensor::empty(shape, DType::F32, dy.device());
  const std::int64_t n = dx.numel();
  const float scale = is_mean ? (n > 0 ? 1.0f / static_cast<float>(n) : 0.0f) : 1.0f;
  if (dy.is_cpu())
    cpu::fill_scaled(dy.f32(), scale, dx.f32(), n);
  else
    cuda::fill_scaled(dy.f32(), scale, dx.f32(), n);
  return dx;
}

int wrap_dim(const char* op, int dim, int rank) {
  const int d = dim < 0 ? dim + rank : dim;
  CXR_CHECK(d >= 0 && d < rank, op, ": dim ", dim, " out of range for a tensor of rank ", rank);
  return d;
}

void split_at(const Shape& shape, int d, std::int64_t& outer, std::int64_t& len, std::int64_t& inner) {
  outer = 1;
  inner = 1;
  for (int i = 0; i < d; ++i) outer *= shape[i];
  len = shape[d];
  for (std::size_t i = d + 1; i < shape.size(); ++i) inner *= shape[i];
}

void check_list(const char* op, const std::vector<Tensor>& ts) {
  for (std::size_t k = 0; k < ts.size(); ++k) {
    const std::string name = "tensors[" + std::to_string(k) + "]";
    check_f32_input(op, name.c_str(), ts[k], k ? &ts[0] : nullptr);
  }
}

GradNorm norm_impl(const char* op, const std::vector<Tensor>& ts, float max_norm, bool want_coef) {
  check_list(op, ts);
  const Device dev = ts.empty() ? Device::CPU : ts[0].device();
  Tensor out = Tensor::empty({2}, DType::F32, dev);
  GradNorm r{out.narrow(0, 0, 1), want_coef ? out.narrow(0, 1, 1) : Tensor()};
  if (dev == Device::CPU) {
    double ss = 0.0;
    for (const Tensor& t : ts) ss += cpu::sum_of_squares(t.f32(), t.numel());
    const double norm = std::sqrt(ss);
    out.f32()[0] = static_cast<float>(norm);
    // f32 arithmetic, as torch does it on f32 tensors.
    const float coef = max_norm / (static_cast<float>(norm) + kClipEps);
    out.f32()[1] = coef < 1.0f ? coef : 1.0f;
  } else {
    std::vector<const float*> ptrs;
    std::vector<std::int64_t> numel;
    for (const Tensor& t : ts) {
      ptrs.push_back(t.f32());
      numel.push_back(t.numel());
    }
    cuda::global_norm(ptrs, numel, out.f32(), want_coef ? out.f32() + 1 : nullptr, max_norm);
  }
  return r;
}

}  // namespace

Tensor sum(const Tensor& x) {
  return sum_scaled("sum", x, false);
}
Tensor mean(const Tensor& x) {
  return sum_scaled("mean", x, true);
}
Tensor sum_backward(const Tensor& dy, const Shape& shape) {
  return fill_from("sum_backward", dy, shape, false);
}
Tensor mean_backward(const Tensor& dy, const Shape& shape) {
  return fill_from("mean_backward", dy, shape, true);
}

Tensor sum_dim(const Tensor& x, int dim, bool keepdim) {
  check_f32_input("sum_dim", "x", x);
  const int d = wrap_dim("sum_dim", dim, x.dim());
  std::int64_t outer, len, inner;
  split_at(x.shape(), d, outer, len, inner);
  Shape out_shape = x.shape();
  if (keepdim)
    out_shape[d] = 1;
  else
    out_shape.erase(out_shape.begin() + d);
  Tensor y = Tensor::empty(out_shape, DType::F32, x.device());
  if (x.is_cpu())
    cpu::sum_dim(x.f32(), y.f32(), outer, len, inner);
  else
    cuda::sum_dim(x.f32(), y.f32(), outer, len, inner);
  return y;
}

Tensor sum_dim_backward(const Tensor& dy, const Shape& shape, int dim) {
  check_f32_input("sum_dim_backward", "dy", dy);
  const int d = wrap_dim("sum_dim_backward", dim, static_cast<int>(shape.size()));
  std::int64_t outer, len, inner;
  split_at(shape, d, outer, len, inner);
  CXR_CHECK(dy.numel() == outer * inner, "sum_dim_backward: dy has ", dy.numel(), " elements ", shape_str(dy.shape()),
            ", expected ", outer * inner, " for input shape ", shape_str(shape), " and dim ", dim);
  Tensor dx = Tensor::empty(shape, DType::F32, dy.device());
  if (dy.is_cpu())
    cpu::sum_dim_backward(dy.f32(), dx.f32(), outer, len, inner);
  else
    cuda::sum_dim_backward(dy.f32(), dx.f32(), outer, len, inner);
  return dx;
}

Tensor global_norm(const std::vector<Tensor>& tensors) {
  return norm_impl("global_norm", tensors, 0.0f, false).norm;
}

GradNorm grad_norm(const std::vector<Tensor>& grads, float max_norm) {
  CXR_CHECK(max_norm > 0.0f, "grad_norm: max_norm must be positive, found ", max_norm);
  return norm_impl("grad_norm", grads, max_norm, true);
}

void scale_(std::vector<Tensor>& tensors, const Tensor& scale) {
  check_list("scale_", tensors);
  check_f32_input("scale_", "scale", scale);
  CXR_CHECK(scale.numel() == 1, "scale_: scale must have one element, found ", shape_str(scale.shape()));
  if (tensors.empty()) return;
  check_same_device("scale_", "tensors[0]", tensors[0], "scale", scale);
  if (scale.is_cpu()) {
    const float s = scale.f32()[0];
    for (Tensor& t : tensors) cpu::scale(t.f32(), t.numel(), s);
  } else {
    std::vector<float*> ptrs;
    std::vector<std::int64_t> numel;
    for (Tensor& t : tensors) {
      ptrs.push_back(t.f32());
      numel.push_back(t.numel());
    }
    cuda::scale(ptrs, numel, scale.f32());
  }
}

Tensor clip_grad_norm_(std::vector<Tensor>& grads, float max_norm) {
  GradNorm g = grad_norm(grads, max_norm);
  scale_(grads, g.clip_coef);
  return g.norm;
}

}  // namespace cxr
