// The TF32 tensor-core SGEMM (ExecutionSettings::allow_tf32; linear layers, 1x1 convolutions) on the
// device, every transpose, against the CPU reference in fp32. The convolutions at TF32 are
// op-registry cases at the TF32 precision (tests/ops/test_conv2d.cpp), with the same bounds.
//
// TF32 keeps 10 mantissa bits, so the relative error ||out - ref|| / ||ref|| lands near 3e-4
// (METHOD: "tf32 near 3e-4"); the bound here is 2e-3. Each check also requires the result to
// differ from the fp32 device result by more than fp32 rounding: that proves the tensor-core
// kernel ran, not the FMA one. On the emulated device the same kernels run through
// cuda_emu/wmma.h; on a GPU through the real tensor cores.
#include <cmath>
#include <random>
#include <string>

#include "kernels/gemm.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

// `tf32` within 2e-3 of the CPU result, and further from the fp32 device result than rounding.
void check_tf32(const std::string& what, const Tensor& tf32, const Tensor& fp32_device, const Tensor& cpu) {
  const double err = relative_error(tf32, cpu), err_fp32 = relative_error(fp32_device, cpu);
  const double apart = relative_error(tf32, fp32_device);
  INFO(what, ": TF32 rel. error ", err, ", fp32 device rel. error ", err_fp32, ", TF32 vs fp32 ", apart);
  CHECK(err < 2e-3);
  CHECK(err_fp32 < 1e-5);
  CHECK(apart > 1e-5);
}

}  // namespace

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
      const PrecisionScope tf32(OpPrecision::TF32);
      check_tf32("matmul", matmul(ad, bd, ta, tb), fp32, ref);
    }
}
