// Tensor-level linear: shape checks, output allocation, device dispatch.
#include "kernels/linear.h"

#include "kernels/cast.h"
#include "kernels/library.h"
#include "kernels/reduce.h"

namespace cxr {

namespace {
// bf16 operands (mixed precision) when x is bf16; then w (and dy) must be bf16 too.
bool bf16_operands(const char* op, const Tensor& x, const Tensor& w, const Tensor* dy = nullptr) {
  if (!x.defined() || x.dtype() != DType::BF16) return false;
  CXR_CHECK(w.defined() && w.dtype() == DType::BF16 && (!dy || (dy->defined() && dy->dtype() == DType::BF16)), op,
            ": with a bf16 x ", shape_str(x.shape()), ", w", dy ? " and dy" : "", " must be bf16 too, found w ",
            w.defined() ? dtype_name(w.dtype()) : "undefined");
  return true;
}

// The shapes of linear / linear_backward, checked for any operand type.
struct LinearSizes {
  std::int64_t N, in, out;
};
LinearSizes linear_sizes(const char* op, const Tensor& x, const Tensor& w) {
  check_dim(op, "x", x, 2);
  check_dim(op, "w", w, 2);
  CXR_CHECK(w.size(1) == x.size(1), op, ": w ", shape_str(w.shape()), " must be (out, in) with in = ", x.size(1),
            " features of x ", shape_str(x.shape()), ", found in = ", w.size(1));
  CXR_CHECK(x.device() == w.device(), op, ": x is on ", device_name(x.device()), ", w on ", device_name(w.device()));
  return {x.size(0), x.size(1), w.size(0)};
}

Tensor linear_bf16_cuda(const Tensor& x_in, const Tensor& w_in, const Tensor& b) {
  const Tensor x = x_in.contiguous(), w = w_in.contiguous();
  const LinearSizes s = linear_sizes("linear", x, w);
  if (b.defined()) {
    check_f32_input("linear", "b", b);
    check_shape("linear", "b", b, {s.out});
  }
  Tensor y = Tensor::empty({s.N, s.out}, DType::F32, x.device());
  if (library::wanted(x)) {
    library::linear_forward(x, w, b, y);
    return y;
  }
  cuda::linear_forward_bf16(s.N, s.in, s.out, x.data<std::uint16_t>(), w.data<std::uint16_t>(),
                            b.defined() ? b.f32() : nullptr, y.f32());
  return y;
}

LinearGrads linear_backward_bf16_cuda(const Tensor& x_in, const Tensor& w_in, const Tensor& dy_in, bool with_bias) {
  const Tensor x = x_in.contiguous(), w = w_in.contiguous(), dy = dy_in.contiguous();
  const LinearSizes s = linear_sizes("linear_backward", x, w);
  check_shape("linear_backward", "dy", dy, {s.N, s.out});
  LinearGrads g;
  g.dx = Tensor::empty({s.N, s.in}, DType::F32, x.device());
  g.dw = Tensor::empty({s.out, s.in}, DType::F32, x.device());
  Tensor dy_f32;
  if (with_bias) {
    g.db = Tensor::empty({s.out}, DType::F32, x.device());
    dy_f32 = to_f32(dy);
  }
  if (library::wanted(x)) {
    library::linear_backward(x, w, dy, g.dx, g.dw);
    if (with_bias) g.db = sum_dim(dy_f32, 0);
    return g;
  }
  cuda::linear_backward_bf16(s.N, s.in, s.out, x.data<std::uint16_t>(), w.data<std::uint16_t>(),
                             dy.data<std::uint16_t>(), with_bias ? dy_f32.f32() : nullptr, g.dx.f32(), g.dw.f32(),
                             with_bias ? g.db.f32() : nullptr);
  return g;
}
}  // namespace

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  // bf16 x bf16 products are exact in f32: on the CPU the f32 GEMM on the widened operands is
  // the mixed-precision product (tensor/bf16.h); CUDA has BF16 tensor-core GEMMs.
  if (bf16_operands("linear", x, w)) {
    if (x.is_cpu()) return linear(to_f32(x), to_f32(w), b);
    return linear_bf16_cuda(x, w, b);
  }
  check_f32_input("linear", "x", x);
  check_f32_input("linear", "w", w, &x);
  const auto [N, in, out] = linear_sizes("linear", x, w);
  if (b.defined()) {
    check_f32_input("linear", "b", b, &x);
    check_shape("linear", "b", b, {out});
  }
  Tensor y = Tensor::empty({N, out}, DType::F32, x.device());
  if (library::wanted(x)) {
    library::linear_forward(x.contiguous(), w.contiguous(), b, y);
    return y;
  }
  const float* bp = b.defined() ? b.f32() : nullptr;
  if (x.is_cpu()) cpu::linear_forward(N, in, out, x.f32(), w.f32(), bp, y.f32());
  else cuda::linear_forward(N, in, out, x.f32(), w.f32(), bp, y.f32());
  return y;
}

LinearGrads linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, bool with_bias) {
  if (bf16_operands("linear_backward", x, w, &dy)) {
    if (x.is_cpu()) return linear_backward(to_f32(x), to_f32(w), to_f32(dy), with_bias);
    return linear_backward_bf16_cuda(x, w, dy, with_bias);
  }
  check_f32_input("linear_backward", "x", x);
  check_f32_input("linear_backward", "w", w, &x);
  check_f32_input("linear_backward", "dy", dy, &x);
  const auto [N, in, out] = linear_sizes("linear_backward", x, w);
  check_shape("linear_backward", "dy", dy, {N, out});
  LinearGrads g;
  g.dx = Tensor::empty({N, in}, DType::F32, x.device());
  g.dw = Tensor::empty({out, in}, DType::F32, x.device());
  if (with_bias) g.db = Tensor::empty({out}, DType::F32, x.device());
  if (library::wanted(x)) {
    library::linear_backward(x.contiguous(), w.contiguous(), dy.contiguous(), g.dx, g.dw);
    if (with_bias) g.db = sum_dim(dy, 0);
    return g;
  }
  float* db = with_bias ? g.db.f32() : nullptr;
  if (x.is_cpu()) cpu::linear_backward(N, in, out, x.f32(), w.f32(), dy.f32(), g.dx.f32(), g.dw.f32(), db);
  else cuda::linear_backward(N, in, out, x.f32(), w.f32(), dy.f32(), g.dx.f32(), g.dw.f32(), db);
  return g;
}

}  // namespace cxr
