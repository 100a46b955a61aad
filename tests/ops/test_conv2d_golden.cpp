// conv2d against PyTorch (tests/golden/conv2d.json, written by tests/gen/conv2d.py): the
// forward output and dx, dw, db for a given upstream gradient, on the CPU fast path and on
// each CUDA device.
#include "kernels/conv2d.h"
#include "tests/golden.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

void check_golden(Device device) {
  const nlohmann::json golden = load_golden("conv2d");
  const std::string dev = device_name(device);
  REQUIRE(golden.at("cases").size() >= 6);
  for (const nlohmann::json& c : golden.at("cases")) {
    const std::string name = "conv2d golden '" + c.at("name").get<std::string>() + "' " + dev;
    Conv2dParams p;
    p.stride_h = c.at("stride")[0];
    p.stride_w = c.at("stride")[1];
    p.pad_h = c.at("padding")[0];
    p.pad_w = c.at("padding")[1];
    p.dilation_h = c.at("dilation")[0];
    p.dilation_w = c.at("dilation")[1];
    p.groups = c.at("groups");
    const bool has_bias = !c.at("b").is_null();
    const Tensor x = golden_tensor(c.at("x")).to(device), w = golden_tensor(c.at("w")).to(device);
    const Tensor b = has_bias ? golden_tensor(c.at("b")).to(device) : Tensor();
    const Tensor dy = golden_tensor(c.at("dy")).to(device);
    const Tol tol{1e-4, 1e-4};
    expect_close(name + " y", conv2d_forward(x, w, b, p), golden_tensor(c.at("y")), tol);
    const Conv2dGrads g = conv2d_backward(x, w, dy, p, has_bias);
    expect_close(name + " dx", g.dx, golden_tensor(c.at("dx")), tol);
    expect_close(name + " dw", g.dw, golden_tensor(c.at("dw")), tol);
    if (has_bias) expect_close(name + " db", g.db, golden_tensor(c.at("db")), tol);
  }
}

}  // namespace

TEST_CASE("conv2d matches PyTorch (golden) on the cpu" * doctest::test_suite("cpu")) { check_golden(Device::CPU); }

TEST_CASE("conv2d matches PyTorch (golden) on the device" * doctest::test_suite(gpu_suite()) *
          doctest::skip(skip_gpu_cases())) {
  check_golden(Device::CUDA);
}
