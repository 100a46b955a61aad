// Tensor-level max pooling: argument checks, output allocation, device dispatch.
// bf16 x: native kernel on CUDA; on the CPU the f32 reference on the widened x, rounded back
// (exactly: the maxima are inputs).
#include "kernels/max_pool2d.h"

#include <limits>

#include "kernels/float_tensor.h"

namespace cxr {

namespace {
void check_params(const char* op, const MaxPool2dParams& p) {
  CXR_CHECK(p.kernel >= 1 && p.stride >= 1 && p.padding >= 0, op,
            ": expected kernel >= 1, stride >= 1, padding >= 0, found kernel ", p.kernel, ", stride ", p.stride,
            ", padding ", p.padding);
  CXR_CHECK(2 * p.padding <= p.kernel, op, ": padding must be at most half the kernel, found padding ", p.padding,
            " for kernel ", p.kernel);
}

void check_plane(const char* op, const Shape& s, const MaxPool2dParams& p) {
  CXR_CHECK(s.size() == 4, op, ": expected a 4-d input shape (N, C, H, W), found ", shape_str(s));
  CXR_CHECK(s[2] <= std::numeric_limits<std::int32_t>::max() / std::max<std::int64_t>(s[3], 1), op,
            ": plane too large for 32-bit indices: ", shape_str(s));
  CXR_CHECK(max_pool2d_out_size(s[2], p) >= 1 && max_pool2d_out_size(s[3], p) >= 1, op, ": input ", shape_str(s),
            " is smaller than the kernel ", p.kernel, " with padding ", p.padding);
}
}  // namespace

MaxPool2dOutput max_pool2d(const Tensor& x, MaxPool2dParams p) {
  const char* op = "max_pool2d";
  check_params(op, p);
  check_float_input(op, "x", x);
  check_dim(op, "x", x, 4);
  check_plane(op, x.shape(), p);
  if (x.is_cpu() && is_bf16(x)) {
    MaxPool2dOutput r = max_pool2d(to_f32(x), p);
    r.y = to_bf16(r.y);
    return r;
  }
  const int H = static_cast<int>(x.size(2)), W = static_cast<int>(x.size(3));
  const int OH = static_cast<int>(max_pool2d_out_size(H, p)), OW = static_cast<int>(max_pool2d_out_size(W, p));
  const Shape out{x.size(0), x.size(1), OH, OW};
  MaxPool2dOutput r{Tensor::empty(out, x.dtype(), x.device()), Tensor::empty(out, DType::I32, x.device())};
  const std::int64_t planes = x.size(0) * x.size(1);
  std::int32_t* indices = r.indices.data<std::int32_t>();
  if (x.is_cpu()) {
    cpu::max_pool2d_forward_rows(x.f32(), r.y.f32(), indices, planes, H, W, OH, OW, p);
    return r;
  }
  visit_float_type(x.dtype(), [&](auto e) {
    using T = decltype(e);
    cuda::max_pool2d_forward(x.data<T>(), r.y.data<T>(), indices, planes, H, W, OH, OW, p);
  });
  return r;
}

Tensor max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Shape& input_shape, MaxPool2dParams p) {
  const char* op = "max_pool2d_backward";
  check_params(op, p);
  check_plane(op, input_shape, p);
  check_f32_input(op, "dy", dy);
  check_defined(op, "indices", indices);
  check_dtype(op, "indices", indices, DType::I32);
  check_contiguous(op, "indices", indices);
  check_same_device(op, "dy", dy, "indices", indices);
  const int H = static_cast<int>(input_shape[2]), W = static_cast<int>(input_shape[3]);
  const int OH = static_cast<int>(max_pool2d_out_size(H, p)), OW = static_cast<int>(max_pool2d_out_size(W, p));
  const Shape out{input_shape[0], input_shape[1], OH, OW};
  check_shape(op, "dy", dy, out);
  check_shape(op, "indices", indices, out);
  Tensor dx = Tensor::empty(input_shape, DType::F32, dy.device());
  const std::int64_t planes = input_shape[0] * input_shape[1];
  if (dy.is_cpu())
    cpu::max_pool2d_backward(dy.f32(), indices.data<std::int32_t>(), dx.f32(), planes, H, W, OH, OW);
  else
    cuda::max_pool2d_backward(dy.f32(), indices.data<std::int32_t>(), dx.f32(), planes, H, W, OH, OW, p);
  return dx;
}

}  // namespace cxr
