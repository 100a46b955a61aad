// TF32 tensor-core paths (execution setting allow_tf32, kernels/execution.h): the implicit-GEMM
// convolutions (forward, data and weight gradients, incl. split-K) and the SGEMM (linear layers,
// 1x1 convolutions) on the device, against the CPU reference in fp32.
//
// TF32 keeps 10 mantissa bits, so the relative error ||out - ref|| / ||ref|| lands near 3e-4
// (METHOD: "tf32 near 3e-4"); the bound here is 2e-3. Each check also requires the result to
// differ from the fp32 device result by more than fp32 rounding: that proves the tensor-core
// kernel ran, not the FMA one. On the emulated device the same kernels run through
// cuda_emu/wmma.h; on a GPU through the real tensor cores.
#include <cmath>
#include <random>
#include <string>

#include "kernels/conv2d.h"
#include "kernels/execution.h"
#include "kernels/gemm.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

double relative_error(const Tensor& a, const Tensor& ref) {
  const std::vector<float> x = a.to(Device::CPU).to_vector(), r = ref.to(Device::CPU).to_vector();
  REQUIRE(x.size() == r.size());
  double num = 0, den = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) return INFINITY;
    num += (double(x[i]) - r[i]) * (double(x[i]) - r[i]);
    den += double(r[i]) * r[i];
  }
  return std::sqrt(num / den);
}

// `tf32` within 2e-3 of the CPU result, and further from the fp32 device result than rounding.
void check_tf32(const std::string& what, const Tensor& tf32, const Tensor& fp32_device, const Tensor& cpu) {
  const double err = relative_error(tf32, cpu), err_fp32 = relative_error(fp32_device, cpu);
  const double apart = relative_error(tf32, fp32_device);
  INFO(what, ": TF32 rel. error ", err, ", fp32 device rel. error ", err_fp32, ", TF32 vs fp32 ", apart);
  CHECK(err < 2e-3);
  CHECK(err_fp32 < 1e-5);
  CHECK(apart > 1e-5);
}

struct ConvCase {
  const char* name;
  int N, C, H, W, K, R, S;
  Conv2dParams p;
};

}  // namespace

TEST_CASE("TF32 convolutions on the device match the CPU within TF32 accuracy" * doctest::test_suite(gpu_suite()) *
          doctest::skip(skip_gpu_cases())) {
  const ConvCase cases[] = {
      {"3x3 p1", 2, 12, 9, 8, 20, 3, 3, {1, 1, 1, 1, 1, 1, 1}},
      {"3x3 s2 p1", 2, 8, 11, 10, 70, 3, 3, {2, 2, 1, 1, 1, 1, 1}},
      {"7x7 s2 p3 stem", 1, 3, 16, 14, 8, 7, 7, {2, 2, 3, 3, 1, 1, 1}},
      {"3x3 p1 groups 2", 2, 8, 6, 7, 12, 3, 3, {1, 1, 1, 1, 1, 1, 2}},
      {"1x1 (GEMM path)", 2, 40, 6, 6, 24, 1, 1, {1, 1, 0, 0, 1, 1, 1}},
      {"1x1 s2", 2, 16, 7, 9, 10, 1, 1, {2, 2, 0, 0, 1, 1, 1}},
      {"3x3 long reduction (split-K weight gradient)", 8, 16, 16, 16, 16, 3, 3, {1, 1, 1, 1, 1, 1, 1}},
  };
  for (const ConvCase& c : cases) {
    CAPTURE(c.name);
    std::mt19937_64 rng(17);
    const Tensor x = Tensor::randn({c.N, c.C, c.H, c.W}, rng);
    const Tensor w = Tensor::randn({c.K, c.C / c.p.groups, c.R, c.S}, rng);
    const Tensor b = Tensor::randn({c.K}, rng);
    const Tensor y_cpu = conv2d_forward(x, w, b, c.p);
    const Tensor dy = Tensor::randn(y_cpu.shape(), rng);
    const Tensor dx_cpu = conv2d_backward_data(dy, w, x.shape(), c.p);
    const Tensor dw_cpu = conv2d_backward_weight(dy, x, w.shape(), c.p);

    const Tensor xd = x.to(Device::CUDA), wd = w.to(Device::CUDA), bd = b.to(Device::CUDA), dyd = dy.to(Device::CUDA);
    const Tensor y32 = conv2d_forward(xd, wd, bd, c.p);
    const Tensor dx32 = conv2d_backward_data(dyd, wd, x.shape(), c.p);
    const Tensor dw32 = conv2d_backward_weight(dyd, xd, w.shape(), c.p);
    ExecutionScope tf32({.allow_tf32 = true});
    check_tf32(std::string(c.name) + " forward", conv2d_forward(xd, wd, bd, c.p), y32, y_cpu);
    check_tf32(std::string(c.name) + " data gradient", conv2d_backward_data(dyd, wd, x.shape(), c.p), dx32, dx_cpu);
    check_tf32(std::string(c.name) + " weight gradient", conv2d_backward_weight(dyd, xd, w.shape(), c.p), dw32,
               dw_cpu);
  }
  CHECK_FALSE(allow_tf32());  // the scope restored the default
}

TEST_CASE("TF32 matmul on the device matches the CPU within TF32 accuracy, every transpose" *
          doctest::test_suite(gpu_suite()) * doctest::skip(skip_gpu_cases())) {
  std::mt19937_64 rng(23);
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      CAPTURE(ta);
      CAPTURE(tb);
      const Tensor a = ta ? Tensor::randn({70, 37}, rng) : Tensor::randn({37, 70}, rng);
      const Tensor b = tb ? Tensor::randn({45, 70}, rng) : Tensor::randn({70, 45}, rng);
      const Tensor ref = matmul(a, b, ta, tb);
      const Tensor ad = a.to(Device::CUDA), bd = b.to(Device::CUDA);
      const Tensor fp32 = matmul(ad, bd, ta, tb);
      ExecutionScope tf32({.allow_tf32 = true});
      check_tf32("matmul", matmul(ad, bd, ta, tb), fp32, ref);
    }
}
