// transpose_nc (DenseNet's channel-major concatenation buffer) in the op registry, its writes
// into a channel slice, and bf16 (moved bit for bit).
#include <cstdint>

#include "kernels/cast.h"
#include "kernels/transpose_nc.h"
#include "tensor/backend.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

OpCase transpose_case(Shape shape) {
  OpCase c;
  c.inputs = {{shape, normal()}};
  c.forward = [](Tensors& in) { return Tensors{transpose_nc(in[0])}; };
  c.backward = [](const Tensors&, const Tensors&, const Tensors& dout) { return Tensors{transpose_nc(dout[0])}; };
  c.reference = [shape](const Doubles& in) {
    std::vector<double> y(in[0].size());
    cpu::transpose_nc<double>(in[0].data(), y.data(), shape[0], shape[1], shape[2] * shape[3]);
    return Doubles{y};
  };
  c.forward_tol = {0, 0};
  c.device_tol = {0, 0};
  c.device_grad_tol = {0, 0};
  return c;
}

// x (A, B, H, W) -> the slice [offset, offset + B) of a (total, A, H, W) buffer whose other
// channels hold `fill`.
Tensor into_slice(const Tensor& x, std::int64_t total, std::int64_t offset, float fill) {
  Tensor buffer = Tensor::full({total, x.size(0), x.size(2), x.size(3)}, fill).to(x.device());
  Tensor slice = buffer.narrow(0, offset, x.size(1));
  transpose_nc_into(slice, x);
  return buffer;
}

}  // namespace

CXR_OP_CASE("transpose_nc 2x5x3x4") {
  return transpose_case({2, 5, 3, 4});
}
CXR_OP_CASE("transpose_nc 3x2x7x7 (rows longer than a warp)") {
  return transpose_case({3, 2, 7, 7});
}
CXR_OP_CASE("transpose_nc 1x4x1x1") {
  return transpose_case({1, 4, 1, 1});
}

TEST_CASE("transpose_nc: y[b, a] = x[a, b], its own inverse, and into a channel slice" * doctest::test_suite("cpu")) {
  std::mt19937_64 rng(5);
  const Tensor x = Tensor::randn({2, 3, 2, 2}, rng);
  const Tensor y = transpose_nc(x);
  CHECK(y.shape() == Shape{3, 2, 2, 2});
  const auto vx = x.to_vector(), vy = y.to_vector();
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 3; ++b)
      for (int i = 0; i < 4; ++i) CHECK(vy[(b * 2 + a) * 4 + i] == vx[(a * 3 + b) * 4 + i]);
  CHECK(transpose_nc(y).to_vector() == vx);
  // Into channels 4..6 of a 9-channel channel-major buffer: the rest untouched.
  const auto buf = into_slice(x, 9, 4, -7.f).to_vector();
  for (std::size_t k = 0; k < buf.size(); ++k) {
    const std::size_t c = k / 8;  // 8 = A * H * W per channel
    if (c >= 4 && c < 7) CHECK(buf[k] == vy[k - 4 * 8]);
    else CHECK(buf[k] == -7.f);
  }
  // bf16 moves bit for bit.
  const Tensor xb = to_bf16(x);
  const Tensor yb = transpose_nc(xb);
  CHECK(yb.dtype() == DType::BF16);
  CHECK(to_f32(yb).to_vector() == to_f32(to_bf16(y)).to_vector());
}

TEST_CASE("transpose_nc_into on the device writes only its slice" * doctest::test_suite(gpu_suite()) *
          doctest::skip(skip_gpu_cases())) {
  if (!backend::has_device()) FAIL("CXR_REQUIRE_GPU=1 but no CUDA device");
  std::mt19937_64 rng(6);
  const Tensor x = Tensor::randn({3, 4, 5, 6}, rng);
  CHECK(into_slice(x.to(Device::CUDA), 11, 5, 2.5f).cpu().to_vector() == into_slice(x, 11, 5, 2.5f).to_vector());
  const Tensor xb = to_bf16(x);
  CHECK(to_f32(transpose_nc(xb.to(Device::CUDA)).cpu()).to_vector() == to_f32(transpose_nc(xb)).to_vector());
}

TEST_CASE("transpose_nc rejects bad arguments" * doctest::test_suite("cpu")) {
  CHECK_THROWS_WITH_AS(transpose_nc(Tensor::zeros({2, 3, 4})), doctest::Contains("transpose_nc"), cxr::Error);
  Tensor y = Tensor::zeros({3, 2, 2, 2});
  CHECK_THROWS_WITH_AS(transpose_nc_into(y, Tensor::zeros({2, 2, 2, 2})), doctest::Contains("'y'"), cxr::Error);
  Tensor wide = Tensor::zeros({2, 6, 2, 2});
  Tensor strided = wide.narrow(1, 0, 3);  // not contiguous
  CHECK_THROWS_WITH_AS(transpose_nc_into(strided, Tensor::zeros({3, 2, 2, 2})), doctest::Contains("contiguous"),
                       cxr::Error);
}
