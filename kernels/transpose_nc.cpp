// Tensor-level transpose of the first two axes: argument checks, output allocation, dispatch.
#include "kernels/transpose_nc.h"

#include <cstring>

namespace cxr {

namespace {
void run(Tensor& y, const Tensor& x) {
  const std::int64_t A = x.size(0), B = x.size(1), hw = x.size(2) * x.size(3);
  if (x.numel() == 0) return;
  if (x.is_cpu()) {
    switch (dtype_size(x.dtype())) {
      case 2:
        cpu::transpose_nc(x.data<std::uint16_t>(), y.data<std::uint16_t>(), A, B, hw);
        return;
      case 4:
        cpu::transpose_nc(static_cast<const std::uint32_t*>(x.raw_data()), static_cast<std::uint32_t*>(y.raw_data()),
                          A, B, hw);
        return;
      default:
        cpu::transpose_nc(static_cast<const unsigned char*>(x.raw_data()), static_cast<unsigned char*>(y.raw_data()),
                          A, B, hw * static_cast<std::int64_t>(dtype_size(x.dtype())));
        return;
    }
  }
  cuda::transpose_nc(x.raw_data(), y.raw_data(), A, B, hw, dtype_size(x.dtype()));
}
}  // namespace

Tensor transpose_nc(const Tensor& x) {
  const char* op = "transpose_nc";
  check_defined(op, "x", x);
  check_dim(op, "x", x, 4);
  check_contiguous(op, "x", x);
  Tensor y = Tensor::empty({x.size(1), x.size(0), x.size(2), x.size(3)}, x.dtype(), x.device());
  run(y, x);
  return y;
}

void transpose_nc_into(Tensor& y, const Tensor& x) {
  const char* op = "transpose_nc_into";
  check_defined(op, "x", x);
  check_dim(op, "x", x, 4);
  check_contiguous(op, "x", x);
  check_defined(op, "y", y);
  check_contiguous(op, "y", y);
  check_shape(op, "y", y, {x.size(1), x.size(0), x.size(2), x.size(3)});
  check_same_dtype(op, "y", y, "x", x);
  check_same_device(op, "y", y, "x", x);
  run(y, x);
}

}  // namespace cxr
