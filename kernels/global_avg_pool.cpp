// Tensor-level global average pooling: argument checks, output allocation, device dispatch.
// bf16 x: native kernel on CUDA; on the CPU the f32 reference on the widened x, rounded once.
#include "kernels/global_avg_pool.h"

#include "kernels/float_tensor.h"

namespace cxr {

Tensor global_avg_pool(const Tensor& x) {
  const char* op = "global_avg_pool";
  check_float_input(op, "x", x);
  check_dim(op, "x", x, 4);
  CXR_CHECK(x.size(2) * x.size(3) > 0, op, ": x must have a non-empty plane, found shape ", shape_str(x.shape()));
  if (x.is_cpu() && is_bf16(x)) return to_bf16(global_avg_pool(to_f32(x)));
  Tensor y = Tensor::empty({x.size(0), x.size(1)}, x.dtype(), x.device());
  const std::int64_t planes = x.size(0) * x.size(1), hw = x.size(2) * x.size(3);
  if (x.is_cpu()) {
    cpu::global_avg_pool_forward(x.f32(), y.f32(), planes, hw);
    return y;
  }
  visit_float_type(x.dtype(), [&](auto e) {
    using T = decltype(e);
    cuda::global_avg_pool_forward(x.data<T>(), y.data<T>(), planes, hw);
  });
  return y;
}

Tensor global_avg_pool_backward(const Tensor& dy, const Shape& input_shape) {
  const char* op = "global_avg_pool_backward";
  check_f32_input(op, "dy", dy);
  CXR_CHECK(input_shape.size() == 4, op, ": input_shape must have 4 dimensions, found ", shape_str(input_shape));
  check_shape(op, "dy", dy, {input_shape[0], input_shape[1]});
  const std::int64_t planes = input_shape[0] * input_shape[1], hw = input_shape[2] * input_shape[3];
  CXR_CHECK(hw > 0, op, ": input_shape must have a non-empty plane, found ", shape_str(input_shape));
  Tensor dx = Tensor::empty(input_shape, DType::F32, dy.device());
  if (dy.is_cpu())
    cpu::global_avg_pool_backward(dy.f32(), dx.f32(), planes, hw);
  else
    cuda::global_avg_pool_backward(dy.f32(), dx.f32(), planes, hw);
  return dx;
}

}  // namespace cxr
