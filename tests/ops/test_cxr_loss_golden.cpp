// The fused loss against PyTorch (tests/gen/cxr_loss.py): BCEWithLogitsLoss(pos_weight) +
// λ masked MSE on sigmoid boxes, gradients from autograd. CPU, and the CUDA device if any.
#include "kernels/cxr_loss.h"
#include "tensor/backend.h"
#include "tests/golden.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

void check_against_torch(Device dev) {
  const nlohmann::json g = load_golden("cxr_loss");
  auto in = [&](const char* k) { return golden_tensor(g.at(k)).to(dev); };
  const float lam = g.at("box_weight").get<float>();
  CxrLoss r = cxr_loss(in("z"), in("y"), in("pw"), in("b"), in("t"), in("m"), lam);
  const Tol scalar{1e-6, 1e-5}, grad{1e-8, 1e-5};
  expect_close("loss vs torch", r.loss.cpu(), golden_tensor(g.at("loss")), scalar);
  expect_close("bce vs torch", r.bce.cpu(), golden_tensor(g.at("bce")), scalar);
  expect_close("mse vs torch", r.mse.cpu(), golden_tensor(g.at("mse")), scalar);
  expect_close("dz vs torch", r.dz.cpu(), golden_tensor(g.at("dz")), grad);
  expect_close("db vs torch", r.db.cpu(), golden_tensor(g.at("db")), grad);
}

}  // namespace

TEST_CASE("cxr_loss matches PyTorch [cpu]" * doctest::test_suite("cpu")) {
  check_against_torch(Device::CPU);
}

TEST_CASE("cxr_loss matches PyTorch [gpu]" * doctest::test_suite(gpu_suite()) * doctest::skip(skip_gpu_cases())) {
  REQUIRE_MESSAGE(backend::has_device(), "CXR_REQUIRE_GPU=1 but no CUDA device");
  check_against_torch(Device::CUDA);
}
