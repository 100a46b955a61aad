// Mixed precision building blocks: the f32 <-> bf16 rounding, the casts on both devices, and
// the linear products with bf16 operands (kernels/execution.h). The convolutions with bf16
// operands are op-registry cases at the BF16 precision (tests/ops/test_conv2d.cpp).
//
// The rounding is checked against an independent oracle (the nearer of the two bf16
// neighbours, in double; ties to the even one) and against values torch.bfloat16 gives. The
// bf16 products are checked against a double-precision sum over the rounded operands: "bf16
// operands, f32 accumulation" must land within f32 summation error of it (rel. ~1e-6), and
// away from the f32 result of the unrounded operands (rel. ~1e-3), which proves the operands
// really were rounded.
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "kernels/cast.h"
#include "tensor/bf16.h"
#include "kernels/conv2d.h"
#include "kernels/linear.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

// The nearest bf16 to v by search over the two candidates around it; ties to even mantissa.
std::uint16_t nearest_bf16_oracle(float v) {
  std::uint32_t u;
  std::memcpy(&u, &v, 4);
  const std::uint16_t lo = static_cast<std::uint16_t>(u >> 16);
  const std::uint16_t hi = static_cast<std::uint16_t>(lo + 1);
  const double dv = v, dlo = bf16_to_f32(lo), dhi = bf16_to_f32(hi);
  const double elo = std::abs(dv - dlo), ehi = std::abs(dv - dhi);
  if (elo < ehi) return lo;
  if (ehi < elo) return hi;
  return (lo & 1u) == 0 ? lo : hi;
}

std::vector<double> rounded_doubles(const Tensor& t) {
  std::vector<double> v;
  for (float f : t.to(Device::CPU).to_vector()) v.push_back(round_bf16(f));
  return v;
}

}  // namespace

TEST_CASE("f32_to_bf16 rounds to the nearest bf16, ties to even, as torch.bfloat16 does" *
          doctest::test_suite("cpu")) {
  // torch.tensor([1.0, 1.00390625, 1.01171875, -2.5, 3.1415926, 1e-40, 65504.0]).to(torch.bfloat16)
  //   .view(torch.int16): 16256, 16256, 16258, -16416, 16457, 0, 18304 (as uint16: 0xbfe0 for -2.5)
  CHECK(f32_to_bf16(1.0f) == 0x3f80);
  CHECK(f32_to_bf16(1.00390625f) == 0x3f80);  // 1 + 2^-8: a tie, to the even 0x3f80
  CHECK(f32_to_bf16(1.01171875f) == 0x3f82);  // 1 + 3 2^-8: a tie, to the even 0x3f82
  CHECK(f32_to_bf16(-2.5f) == 0xc020);
  CHECK(f32_to_bf16(3.1415926f) == 0x4049);
  CHECK(f32_to_bf16(65504.0f) == 0x4780);
  CHECK(f32_to_bf16(std::numeric_limits<float>::infinity()) == 0x7f80);
  CHECK(f32_to_bf16(-std::numeric_limits<float>::infinity()) == 0xff80);
  CHECK(f32_to_bf16(std::numeric_limits<float>::max()) == 0x7f80);  // rounds up to +inf
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  // A NaN whose payload sits in the low bits only must not become inf.
  float low_nan;
  const std::uint32_t low_nan_bits = 0x7f800001u;
  std::memcpy(&low_nan, &low_nan_bits, 4);
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(low_nan))));

  std::mt19937_64 rng(3);
  std::uniform_int_distribution<std::uint32_t> any_bits;
  int checked = 0;
  for (int i = 0; i < 200000; ++i) {
    std::uint32_t u = any_bits(rng);
    if (i % 2) u = (u & 0xffff0000u) | 0x8000u;  // half of them exact ties
    float v;
    std::memcpy(&v, &u, 4);
    if (!std::isfinite(v) || std::abs(v) >= 3.38e38f) continue;  // the oracle needs a finite upper neighbour
    const std::uint16_t got = f32_to_bf16(v), want = nearest_bf16_oracle(v);
    if (got != want) FAIL_CHECK("f32_to_bf16(" << v << ") = " << got << ", the nearest is " << want);
    ++checked;
  }
  CHECK(checked > 190000);
}

TEST_CASE("to_bf16 and to_f32 agree on every device and round-trip bf16 values exactly" *
          doctest::test_suite(gpu_suite()) * doctest::skip(skip_gpu_cases())) {
  std::mt19937_64 rng(5);
  Tensor x = Tensor::randn({3, 5, 7, 11}, rng, 0.f, 100.f);
  x.f32()[0] = std::numeric_limits<float>::infinity();
  x.f32()[1] = std::numeric_limits<float>::quiet_NaN();
  x.f32()[2] = 1.00390625f;
  const Tensor on_cpu = to_bf16(x), on_gpu = to_bf16(x.to(Device::CUDA));
  CHECK(on_gpu.dtype() == DType::BF16);
  const std::uint16_t* a = on_cpu.data<std::uint16_t>();
  const Tensor gpu_bits = on_gpu.cpu();
  const std::uint16_t* b = gpu_bits.data<std::uint16_t>();
  for (std::int64_t i = 0; i < x.numel(); ++i) REQUIRE(a[i] == b[i]);
  const Tensor back = to_f32(on_gpu).cpu();
  for (std::int64_t i = 3; i < x.numel(); ++i) REQUIRE(back.f32()[i] == round_bf16(x.f32()[i]));
  CHECK(std::isinf(back.f32()[0]));
  CHECK(std::isnan(back.f32()[1]));
}

TEST_CASE("casts: an f32 tensor stays shared by to_f32, a wrong dtype is named" * doctest::test_suite("cpu")) {
  Tensor x = Tensor::zeros({4});
  CHECK(to_f32(x).f32() == x.f32());
  const Tensor b = to_bf16(x);
  CHECK(to_bf16(b).data<std::uint16_t>() == b.data<std::uint16_t>());
  CHECK_THROWS_WITH(to_bf16(Tensor::zeros({2}, DType::I32)), doctest::Contains("to_bf16: expected an f32 tensor"));
}

TEST_CASE("conv2d refuses mixed operand types, naming both" * doctest::test_suite("cpu")) {
  std::mt19937_64 rng(1);
  const Tensor x = Tensor::randn({1, 2, 4, 4}, rng), w = Tensor::randn({3, 2, 3, 3}, rng);
  CHECK_THROWS_WITH(conv2d_forward(to_bf16(x), w, Tensor(), {}),
                    doctest::Contains("x and w must both be f32 or both bf16, found x bf16 [1, 2, 4, 4] and w f32 [3, 2, 3, 3]"));
}

namespace {

// Forward and gradients with bf16 operands on `device` against double sums of the rounded
// operands. Sizes that are not tile multiples, so the edges of the GEMM tiles are covered.
void check_bf16_linear(Device device) {
  INFO("device ", device_name(device));
  std::mt19937_64 rng(9);
  const std::int64_t N = 70, in = 40, out = 9;
  const Tensor x = Tensor::randn({N, in}, rng), w = Tensor::randn({out, in}, rng), b = Tensor::randn({out}, rng);
  const Tensor dy = Tensor::randn({N, out}, rng);
  const std::vector<double> xr = rounded_doubles(x), wr = rounded_doubles(w), dyr = rounded_doubles(dy);
  std::vector<double> y_ref(N * out), dx_ref(N * in), dw_ref(out * in), db_ref(out);
  const std::vector<double> bd = to_doubles(b);
  cpu::linear_forward_reference<double>(N, in, out, xr.data(), wr.data(), bd.data(), y_ref.data());
  cpu::linear_backward_reference<double>(N, in, out, xr.data(), wr.data(), dyr.data(), dx_ref.data(), dw_ref.data(),
                                         db_ref.data());
  const Tensor xb = to_bf16(x.to(device)), wb = to_bf16(w.to(device)), dyb = to_bf16(dy.to(device));
  const Tensor y = linear(xb, wb, b.to(device));
  const LinearGrads g = linear_backward(xb, wb, dyb, true);
  CHECK(y.device() == device);
  CHECK(relative_error(y, y_ref) < 1e-6);
  CHECK(relative_error(g.dx, dx_ref) < 1e-6);
  CHECK(relative_error(g.dw, dw_ref) < 1e-6);
  CHECK(relative_error(g.db, db_ref) < 1e-6);
  CHECK(relative_error(linear(x, w, b), y_ref) > 3e-4);
}

}  // namespace

TEST_CASE("linear with bf16 operands on the CPU: the bf16 sums with f32 accumulation" * doctest::test_suite("cpu")) {
  check_bf16_linear(Device::CPU);
  std::mt19937_64 rng(1);
  const Tensor x = Tensor::randn({2, 3}, rng), w = Tensor::randn({4, 3}, rng);
  CHECK_THROWS_WITH(linear(to_bf16(x), w, Tensor()), doctest::Contains("w must be bf16 too"));
}

TEST_CASE("linear with bf16 operands on the device: BF16 tensor-core GEMMs, as the CPU" *
          doctest::test_suite(gpu_suite()) * doctest::skip(skip_gpu_cases())) {
  check_bf16_linear(Device::CUDA);
}
