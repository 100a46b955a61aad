// batch_norm2d against PyTorch (tests/gen/batch_norm.py -> tests/golden/batch_norm.json):
// one training step (outputs, saved statistics, running statistics after momentum 0.1),
// the backward for a given dy, and the evaluation forward; on the CPU and on the device.
#include "kernels/batch_norm.h"
#include "tensor/backend.h"
#include "tests/golden.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

void check_golden_on(Device dev) {
  const nlohmann::json g = load_golden("batch_norm");
  const float momentum = g.at("momentum").get<float>(), eps = g.at("eps").get<float>();
  for (const nlohmann::json& c : g.at("cases")) {
    auto t = [&](const char* k) { return golden_tensor(c.at(k)).to(dev); };
    const Tensor x = t("x"), w = t("weight"), b = t("bias"), dy = t("dy");
    Tensor rm = t("running_mean").clone(), rv = t("running_var").clone();
    const std::string shape = shape_str(x.shape()) + " on " + device_name(dev);
    BatchNormOutput r = batch_norm2d_train(BnActivation::Identity, x, w, b, rm, rv, momentum, eps);
    expect_close("y " + shape, r.y, golden_tensor(c.at("y")), {2e-5, 1e-4});
    expect_close("saved_mean " + shape, r.saved_mean, golden_tensor(c.at("saved_mean")), {1e-5, 1e-4});
    expect_close("saved_invstd " + shape, r.saved_invstd, golden_tensor(c.at("saved_invstd")), {1e-5, 1e-4});
    expect_close("running_mean " + shape, rm, golden_tensor(c.at("running_mean_after")), {1e-6, 1e-5});
    expect_close("running_var " + shape, rv, golden_tensor(c.at("running_var_after")), {1e-6, 1e-5});
    BatchNormGrads gr = batch_norm2d_backward(BnActivation::Identity, dy, x, w, b, r.saved_mean, r.saved_invstd);
    expect_close("dx " + shape, gr.dx, golden_tensor(c.at("dx")), {2e-5, 1e-4});
    expect_close("dweight " + shape, gr.dweight, golden_tensor(c.at("dweight")), {1e-4, 1e-4});
    expect_close("dbias " + shape, gr.dbias, golden_tensor(c.at("dbias")), {1e-4, 1e-4});
    expect_close("y_eval " + shape, batch_norm2d_eval(BnActivation::Identity, x, w, b, rm, rv, eps),
                 golden_tensor(c.at("y_eval")), {2e-5, 1e-4});
  }
}

}  // namespace

TEST_CASE("batch_norm2d matches PyTorch (golden) [cpu]" * doctest::test_suite("cpu")) {
  check_golden_on(Device::CPU);
}

TEST_CASE("batch_norm2d matches PyTorch (golden) [gpu]" * doctest::test_suite(gpu_suite()) *
          doctest::skip(skip_gpu_cases())) {
  if (!backend::has_device()) FAIL("CXR_REQUIRE_GPU=1 but no CUDA device");
  check_golden_on(Device::CUDA);
}
