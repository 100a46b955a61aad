// Tensor-level average pooling: argument checks, output allocation, device dispatch.
// bf16 x: native kernel on CUDA; on the CPU the f32 reference on the widened x, rounded once.
#include "kernels/avg_pool2d.h"

#include "kernels/float_tensor.h"

namespace cxr {

namespace {
void check_params(const char* op, const AvgPool2dParams& p) {
  CXR_CHECK(p.kernel >= 1 && p.stride >= 1, op, ": expected kernel >= 1 and stride >= 1, found kernel ", p.kernel,
            ", stride ", p.stride);
}

void check_plane(const char* op, const Shape& s, const AvgPool2dParams& p) {
  CXR_CHECK(s.size() == 4, op, ": expected a 4-d input shape (N, C, H, W), found ", shape_str(s));
  CXR_CHECK(s[2] >= p.kernel && s[3] >= p.kernel, op, ": input ", shape_str(s), " is smaller than the kernel ",
            p.kernel);
}
}  // namespace

Tensor avg_pool2d(const Tensor& x, AvgPool2dParams p) {
  const char* op = "avg_pool2d";
  check_params(op, p);
  check_float_input(op, "x", x);
  check_dim(op, "x", x, 4);
  check_plane(op, x.shape(), p);
  if (x.is_cpu() && is_bf16(x)) return to_bf16(avg_pool2d(to_f32(x), p));
  const int H = static_cast<int>(x.size(2)), W = static_cast<int>(x.size(3));
  const int OH = static_cast<int>(avg_pool2d_out_size(H, p)), OW = static_cast<int>(avg_pool2d_out_size(W, p));
  Tensor y = Tensor::empty({x.size(0), x.size(1), OH, OW}, x.dtype(), x.device());
  const std::int64_t planes = x.size(0) * x.size(1);
  if (x.is_cpu()) {
    cpu::avg_pool2d_forward(x.f32(), y.f32(), planes, H, W, OH, OW, p);
    return y;
  }
  visit_float_type(x.dtype(), [&](auto e) {
    using T = decltype(e);
    cuda::avg_pool2d_forward(x.data<T>(), y.data<T>(), planes, H, W, OH, OW, p);
  });
  return y;
}

Tensor avg_pool2d_backward(const Tensor& dy, const Shape& input_shape, AvgPool2dParams p) {
  const char* op = "avg_pool2d_backward";
  check_params(op, p);
  check_plane(op, input_shape, p);
  check_f32_input(op, "dy", dy);
  const int H = static_cast<int>(input_shape[2]), W = static_cast<int>(input_shape[3]);
  const int OH = static_cast<int>(avg_pool2d_out_size(H, p)), OW = static_cast<int>(avg_pool2d_out_size(W, p));
  check_shape(op, "dy", dy, {input_shape[0], input_shape[1], OH, OW});
  Tensor dx = Tensor::empty(input_shape, DType::F32, dy.device());
  const std::int64_t planes = input_shape[0] * input_shape[1];
  if (dy.is_cpu())
    cpu::avg_pool2d_backward(dy.f32(), dx.f32(), planes, H, W, OH, OW, p);
  else
    cuda::avg_pool2d_backward(dy.f32(), dx.f32(), planes, H, W, OH, OW, p);
  return dx;
}

}  // namespace cxr
