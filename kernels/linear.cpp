// Tensor-level linear: shape checks, output allocation, device dispatch.
#include "kernels/linear.h"

#include "kernels/cast.h"

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
}  // namespace

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  // bf16 x bf16 products are exact in f32: the f32 GEMM on the widened operands is the
  // mixed-precision product (kernels/common/bf16.h).
  if (bf16_operands("linear", x, w)) return linear(to_f32(x), to_f32(w), b);
  check_f32_input("linear", "x", x);
  check_f32_input("linear", "w", w, &x);
  check_dim("linear", "x", x, 2);
  check_dim("linear", "w", w, 2);
  const std::int64_t N = x.size(0), in = x.size(1), out = w.size(0);
  CXR_CHECK(w.size(1) == in, "linear: w ", shape_str(w.shape()), " must be (out, in) with in = ", in,
            " features of x ", shape_str(x.shape()), ", found in = ", w.size(1));
  if (b.defined()) {
    check_f32_input("linear", "b", b, &x);
    check_shape("linear", "b", b, {out});
  }
  Tensor y = Tensor::empty({N, out}, DType::F32, x.device());
  const float* bp = b.defined() ? b.f32() : nullptr;
  if (x.is_cpu()) cpu::linear_forward(N, in, out, x.f32(), w.f32(), bp, y.f32());
  else cuda::linear_forward(N, in, out, x.f32(), w.f32(), bp, y.f32());
  return y;
}

LinearGrads linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, bool with_bias) {
  if (bf16_operands("linear_backward", x, w, &dy)) return linear_backward(to_f32(x), to_f32(w), to_f32(dy), with_bias);
  check_f32_input("linear_backward", "x", x);
  check_f32_input("linear_backward", "w", w, &x);
  check_f32_input("linear_backward", "dy", dy, &x);
  check_dim("linear_backward", "x", x, 2);
  check_dim("linear_backward", "w", w, 2);
  const std::int64_t N = x.size(0), in = x.size(1), out = w.size(0);
  CXR_CHECK(w.size(1) == in, "linear_backward: w ", shape_str(w.shape()), " must be (out, in) with in = ", in,
            " features of x ", shape_str(x.shape()), ", found in = ", w.size(1));
  check_shape("linear_backward", "dy", dy, {N, out});
  LinearGrads g;
  g.dx = Tensor::empty({N, in}, DType::F32, x.device());
  g.dw = Tensor::empty({out, in}, DType::F32, x.device());
  if (with_bias) g.db = Tensor::empty({out}, DType::F32, x.device());
  float* db = with_bias ? g.db.f32() : nullptr;
  if (x.is_cpu()) cpu::linear_backward(N, in, out, x.f32(), w.f32(), dy.f32(), g.dx.f32(), g.dw.f32(), db);
  else cuda::linear_backward(N, in, out, x.f32(), w.f32(), dy.f32(), g.dx.f32(), g.dw.f32(), db);
  return g;
}

}  // namespace cxr
