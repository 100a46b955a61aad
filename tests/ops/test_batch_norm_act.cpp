// Batch norm with its activation fused (kernels/batch_norm.h, act = identity / relu / silu):
//  - op cases (tests/op_check.h): training forward (y, saved statistics, running statistics)
//    and backward, evaluation forward and backward, for all three activations and odd sizes:
//    on the CPU against a double-precision reference that is the composition of two references
//    (cpu::batch_norm2d_forward_* with identity, then cpu::activation_forward) and against
//    central finite differences of it; on the device against the CPU;
//  - the fused op against the unfused composition of ops (batch_norm2d_* with identity, then
//    activation_forward / activation_backward then batch_norm2d_*backward with identity) in
//    f32, on the CPU and on the device (suite "cuda-emu" in cxr_tests_emu);
//  - batch_norm2d_train_from_stats (statistics given) against batch_norm2d_train, on the CPU
//    and the device;
//  - argument checks.
#include <optional>
#include <string>

#include "kernels/activation.h"
#include "kernels/batch_norm.h"
#include "tensor/backend.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

constexpr float kMomentum = 0.1f;
constexpr float kEps = 1e-5f;

std::optional<Activation> unfused(BnActivation a) {
  switch (a) {
    case BnActivation::Identity: return std::nullopt;
    case BnActivation::ReLU: return Activation::ReLU;
    case BnActivation::SiLU: return Activation::SiLU;
  }
  return std::nullopt;
}

// Inputs: x, weight, bias, running_mean, running_var (as tests/ops/test_batch_norm.cpp).
std::vector<Input> bn_inputs(Shape shape) {
  const std::int64_t C = shape[1];
  return {{shape, normal(0.5f, 2.f)},
          {{C}, uniform(0.5f, 1.5f)},
          {{C}, uniform(-0.5f, 0.5f)},
          {{C}, uniform(-0.2f, 0.2f), false},
          {{C}, uniform(0.5f, 2.f), false}};
}

// y = act(y) in place, with the activation op's CPU reference (identity: nothing).
void apply_reference_activation(BnActivation act, std::vector<double>& y) {
  if (const auto a = unfused(act)) {
    std::vector<double> z = y;
    cpu::activation_forward<double>(*a, z.data(), y.data(), static_cast<std::int64_t>(y.size()));
  }
}

OpCase train_case(BnActivation act, Shape shape) {
  OpCase c;
  c.inputs = bn_inputs(shape);
  c.forward = [act](Tensors& in) {
    BatchNormOutput r = batch_norm2d_train(act, in[0], in[1], in[2], in[3], in[4], kMomentum, kEps);
    return Tensors{r.y, r.saved_mean, r.saved_invstd, in[3], in[4]};
  };
  c.differentiable_outputs = {true, false, false, false, false};
  c.backward = [act](const Tensors& in, const Tensors& out, const Tensors& dout) {
    BatchNormGrads g = batch_norm2d_backward(act, dout[0], in[0], in[1], in[2], out[1], out[2]);
    return Tensors{g.dx, g.dweight, g.dbias, Tensor(), Tensor()};
  };
  // The composition of the two existing references: batch norm, then the activation.
  c.reference = [act, shape](const Doubles& in) {
    const std::int64_t N = shape[0], C = shape[1], HW = shape[2] * shape[3];
    std::vector<double> y(in[0].size()), mean(C), invstd(C), rm = in[3], rv = in[4];
    cpu::batch_norm2d_forward_train<double>(BnActivation::Identity, in[0].data(), in[1].data(), in[2].data(), y.data(),
                                            mean.data(), invstd.data(), rm.data(), rv.data(), N, C, HW, kMomentum,
                                            kEps);
    apply_reference_activation(act, y);
    return Doubles{y, mean, invstd, rm, rv};
  };
  c.forward_tol = {2e-5, 1e-4};
  c.device_tol = {2e-5, 1e-4};
  c.device_grad_tol = {1e-4, 1e-3};
  return c;
}

OpCase eval_case(BnActivation act, Shape shape) {
  OpCase c;
  c.inputs = bn_inputs(shape);
  c.forward = [act](Tensors& in) { return Tensors{batch_norm2d_eval(act, in[0], in[1], in[2], in[3], in[4], kEps)}; };
  c.backward = [act](const Tensors& in, const Tensors&, const Tensors& dout) {
    BatchNormGrads g = batch_norm2d_eval_backward(act, dout[0], in[0], in[1], in[2], in[3], in[4], kEps);
    return Tensors{g.dx, g.dweight, g.dbias, Tensor(), Tensor()};
  };
  c.reference = [act, shape](const Doubles& in) {
    const std::int64_t N = shape[0], C = shape[1], HW = shape[2] * shape[3];
    std::vector<double> y(in[0].size());
    cpu::batch_norm2d_forward_eval<double>(BnActivation::Identity, in[0].data(), in[1].data(), in[2].data(),
                                           in[3].data(), in[4].data(), y.data(), N, C, HW, kEps);
    apply_reference_activation(act, y);
    return Doubles{y};
  };
  c.forward_tol = {2e-5, 1e-4};
  c.device_tol = {2e-5, 1e-4};
  c.device_grad_tol = {1e-4, 1e-3};
  return c;
}

// The fused op against the unfused ops on `dev`, f32, training or evaluation: every output,
// the updated running statistics and every gradient. The two compute the same float
// expressions, so the tolerance is tight.
void check_against_composition(Device dev, BnActivation act, Shape shape, bool training) {
  const std::string what = std::string(bn_activation_name(act)) + (training ? " train " : " eval ") +
                           shape_str(shape) + " on " + device_name(dev);
  CAPTURE(what);
  const std::int64_t C = shape[1];
  std::mt19937_64 rng(17 + static_cast<int>(act) + 3 * static_cast<int>(training));
  const Tensor x = Tensor::randn(shape, rng, 0.3f, 1.5f).to(dev);
  const Tensor dy = Tensor::randn(shape, rng, 0.f, 1.f).to(dev);
  const Tensor w = Tensor::uniform({C}, rng, 0.5f, 1.5f).to(dev);
  const Tensor b = Tensor::uniform({C}, rng, -0.5f, 0.5f).to(dev);
  const Tensor rm0 = Tensor::uniform({C}, rng, -0.2f, 0.2f), rv0 = Tensor::uniform({C}, rng, 0.5f, 2.f);
  // Copies (to(CPU) of a CPU tensor shares its storage; the ops update them in place).
  Tensor rm_u = rm0.clone().to(dev), rv_u = rv0.clone().to(dev);
  Tensor rm_f = rm0.clone().to(dev), rv_f = rv0.clone().to(dev);
  const Tol tol{1e-6, 1e-5}, grad_tol{1e-5, 1e-4};
  const std::optional<Activation> a = unfused(act);

  // Unfused: the batch norm op, the activation op; backward the other way round.
  Tensor z, y_u, mean_u, invstd_u;
  if (training) {
    BatchNormOutput r = batch_norm2d_train(BnActivation::Identity, x, w, b, rm_u, rv_u, kMomentum, kEps);
    z = r.y;
    mean_u = r.saved_mean;
    invstd_u = r.saved_invstd;
  } else {
    z = batch_norm2d_eval(BnActivation::Identity, x, w, b, rm_u, rv_u, kEps);
  }
  y_u = a ? activation_forward(*a, z) : z;
  const Tensor g = a ? activation_backward(*a, z, dy) : dy;
  const BatchNormGrads gu = training ? batch_norm2d_backward(BnActivation::Identity, g, x, w, b, mean_u, invstd_u)
                                     : batch_norm2d_eval_backward(BnActivation::Identity, g, x, w, b, rm_u, rv_u, kEps);

  // Fused.
  Tensor y_f;
  BatchNormGrads gf;
  if (training) {
    BatchNormOutput r = batch_norm2d_train(act, x, w, b, rm_f, rv_f, kMomentum, kEps);
    y_f = r.y;
    expect_close("saved_mean " + what, r.saved_mean.cpu(), mean_u.cpu(), tol);
    expect_close("saved_invstd " + what, r.saved_invstd.cpu(), invstd_u.cpu(), tol);
    gf = batch_norm2d_backward(act, dy, x, w, b, r.saved_mean, r.saved_invstd);
  } else {
    y_f = batch_norm2d_eval(act, x, w, b, rm_f, rv_f, kEps);
    gf = batch_norm2d_eval_backward(act, dy, x, w, b, rm_f, rv_f, kEps);
  }
  expect_close("y " + what, y_f.cpu(), y_u.cpu(), tol);
  expect_close("running_mean " + what, rm_f.cpu(), rm_u.cpu(), {0, 0});
  expect_close("running_var " + what, rv_f.cpu(), rv_u.cpu(), {0, 0});
  expect_close("dx " + what, gf.dx.cpu(), gu.dx.cpu(), grad_tol);
  expect_close("dweight " + what, gf.dweight.cpu(), gu.dweight.cpu(), grad_tol);
  expect_close("dbias " + what, gf.dbias.cpu(), gu.dbias.cpu(), grad_tol);
  if (training) {  // the statistics moved (the test would not notice a skipped update otherwise)
    CHECK(rm_f.cpu().to_vector() != rm0.to_vector());
  }
}

void check_all_compositions(Device dev) {
  for (BnActivation act : {BnActivation::Identity, BnActivation::ReLU, BnActivation::SiLU})
    for (const Shape& s : {Shape{2, 3, 5, 5}, Shape{3, 5, 7, 3}, Shape{2, 2, 70, 70}, Shape{4, 16, 1, 1}})
      for (bool training : {true, false}) check_against_composition(dev, act, s, training);
}

// batch_norm2d_train_from_stats with the batch statistics of x given (as a convolution's
// epilogue provides them) against batch_norm2d_train on `dev`: y, saved statistics, running
// statistics and the backward from each one's saved statistics. The statistics are summed in
// another order, so the tolerance is float rounding.
void check_from_stats(Device dev, BnActivation act, Shape shape) {
  const std::string what = std::string(bn_activation_name(act)) + " " + shape_str(shape) + " on " + device_name(dev);
  CAPTURE(what);
  const std::int64_t N = shape[0], C = shape[1], HW = shape[2] * shape[3];
  std::mt19937_64 rng(29 + static_cast<int>(act));
  const Tensor x_cpu = Tensor::randn(shape, rng, 0.3f, 1.5f);
  const Tensor x = x_cpu.to(dev);
  const Tensor dy = Tensor::randn(shape, rng, 0.f, 1.f).to(dev);
  const Tensor w = Tensor::uniform({C}, rng, 0.5f, 1.5f).to(dev);
  const Tensor b = Tensor::uniform({C}, rng, -0.5f, 0.5f).to(dev);
  const Tensor rm0 = Tensor::uniform({C}, rng, -0.2f, 0.2f), rv0 = Tensor::uniform({C}, rng, 0.5f, 2.f);
  Tensor rm_t = rm0.clone().to(dev), rv_t = rv0.clone().to(dev);
  Tensor rm_s = rm0.clone().to(dev), rv_s = rv0.clone().to(dev);
  Tensor mean = Tensor::empty({C}), var = Tensor::empty({C});
  cpu::channel_mean_var<float>(x_cpu.f32(), mean.f32(), var.f32(), N, C, HW);
  const Tol tol{1e-5, 1e-5}, grad_tol{1e-5, 1e-4};

  const BatchNormOutput t = batch_norm2d_train(act, x, w, b, rm_t, rv_t, kMomentum, kEps);
  const BatchNormOutput s =
      batch_norm2d_train_from_stats(act, x, mean.to(dev), var.to(dev), w, b, rm_s, rv_s, kMomentum, kEps);
  expect_close("y " + what, s.y.cpu(), t.y.cpu(), tol);
  expect_close("saved_mean " + what, s.saved_mean.cpu(), t.saved_mean.cpu(), tol);
  expect_close("saved_invstd " + what, s.saved_invstd.cpu(), t.saved_invstd.cpu(), tol);
  expect_close("running_mean " + what, rm_s.cpu(), rm_t.cpu(), tol);
  expect_close("running_var " + what, rv_s.cpu(), rv_t.cpu(), tol);
  CHECK(rv_s.cpu().to_vector() != rv0.to_vector());
  const BatchNormGrads gt = batch_norm2d_backward(act, dy, x, w, b, t.saved_mean, t.saved_invstd);
  const BatchNormGrads gs = batch_norm2d_backward(act, dy, x, w, b, s.saved_mean, s.saved_invstd);
  expect_close("dx " + what, gs.dx.cpu(), gt.dx.cpu(), grad_tol);
  expect_close("dweight " + what, gs.dweight.cpu(), gt.dweight.cpu(), grad_tol);
  expect_close("dbias " + what, gs.dbias.cpu(), gt.dbias.cpu(), grad_tol);
}

void check_all_from_stats(Device dev) {
  for (BnActivation act : {BnActivation::Identity, BnActivation::ReLU, BnActivation::SiLU})
    for (const Shape& s : {Shape{2, 3, 5, 5}, Shape{3, 16, 1, 1}, Shape{2, 2, 70, 70}}) check_from_stats(dev, act, s);
}

}  // namespace

TEST_CASE("batch_norm_act_train_from_stats equals batch_norm_act_train, forward and backward [cpu]" *
          doctest::test_suite("cpu")) {
  check_all_from_stats(Device::CPU);
}

TEST_CASE("batch_norm_act_train_from_stats equals batch_norm_act_train, forward and backward [gpu]" *
          doctest::test_suite(gpu_suite()) * doctest::skip(skip_gpu_cases())) {
  check_all_from_stats(Device::CUDA);
}

TEST_CASE("batch_norm_act_train_from_stats rejects bad statistics" * doctest::test_suite("cpu")) {
  const Tensor x = Tensor::zeros({2, 3, 2, 2}), w = Tensor::full({3}, 1.f), b = Tensor::zeros({3});
  Tensor rm = Tensor::zeros({3}), rv = Tensor::full({3}, 1.f);
  CHECK_THROWS_WITH_AS(
      batch_norm2d_train_from_stats(BnActivation::ReLU, x, Tensor::zeros({4}), Tensor::zeros({3}), w, b, rm, rv),
      doctest::Contains("batch_norm_act_train_from_stats(relu)"), cxr::Error);
  CHECK_THROWS_WITH_AS(
      batch_norm2d_train_from_stats(BnActivation::ReLU, x, Tensor::zeros({3}), Tensor::zeros({2}), w, b, rm, rv),
      doctest::Contains("var"), cxr::Error);
}

// Training: odd sizes, one value per image and channel, and channels split over several
// blocks on the device (M = 9800 values).
CXR_OP_CASE("batch_norm_act train identity 2x3x5x5") { return train_case(BnActivation::Identity, {2, 3, 5, 5}); }
CXR_OP_CASE("batch_norm_act train relu 2x3x5x5") { return train_case(BnActivation::ReLU, {2, 3, 5, 5}); }
CXR_OP_CASE("batch_norm_act train silu 2x3x5x5") { return train_case(BnActivation::SiLU, {2, 3, 5, 5}); }
CXR_OP_CASE("batch_norm_act train identity 3x5x7x3") { return train_case(BnActivation::Identity, {3, 5, 7, 3}); }
CXR_OP_CASE("batch_norm_act train relu 3x5x7x3") { return train_case(BnActivation::ReLU, {3, 5, 7, 3}); }
CXR_OP_CASE("batch_norm_act train silu 3x5x7x3") { return train_case(BnActivation::SiLU, {3, 5, 7, 3}); }
CXR_OP_CASE("batch_norm_act train relu 3x16x1x1 (3 values per channel)") {
  return train_case(BnActivation::ReLU, {3, 16, 1, 1});
}
CXR_OP_CASE("batch_norm_act train silu 3x16x1x1 (3 values per channel)") {
  return train_case(BnActivation::SiLU, {3, 16, 1, 1});
}
CXR_OP_CASE("batch_norm_act train relu 2x2x70x70 (split channels)") {
  return train_case(BnActivation::ReLU, {2, 2, 70, 70});
}
CXR_OP_CASE("batch_norm_act train silu 2x2x70x70 (split channels)") {
  return train_case(BnActivation::SiLU, {2, 2, 70, 70});
}
// Evaluation (running statistics, frozen in backward).
CXR_OP_CASE("batch_norm_act eval identity 2x3x5x5") { return eval_case(BnActivation::Identity, {2, 3, 5, 5}); }
CXR_OP_CASE("batch_norm_act eval relu 2x3x5x5") { return eval_case(BnActivation::ReLU, {2, 3, 5, 5}); }
CXR_OP_CASE("batch_norm_act eval silu 2x3x5x5") { return eval_case(BnActivation::SiLU, {2, 3, 5, 5}); }
CXR_OP_CASE("batch_norm_act eval relu 1x7x9x11") { return eval_case(BnActivation::ReLU, {1, 7, 9, 11}); }
CXR_OP_CASE("batch_norm_act eval silu 1x7x9x11") { return eval_case(BnActivation::SiLU, {1, 7, 9, 11}); }
CXR_OP_CASE("batch_norm_act eval silu 2x2x70x70 (split channels)") {
  return eval_case(BnActivation::SiLU, {2, 2, 70, 70});
}

TEST_CASE("batch_norm_act equals batch norm then the activation op, forward and backward [cpu]" *
          doctest::test_suite("cpu")) {
  check_all_compositions(Device::CPU);
}

TEST_CASE("batch_norm_act equals batch norm then the activation op, forward and backward [gpu]" *
          doctest::test_suite(gpu_suite()) * doctest::skip(skip_gpu_cases())) {
  check_all_compositions(Device::CUDA);
}

TEST_CASE("batch_norm_act: which activations fuse" * doctest::test_suite("cpu")) {
  CHECK(fusable_activation(Activation::ReLU) == BnActivation::ReLU);
  CHECK(fusable_activation(Activation::SiLU) == BnActivation::SiLU);
  CHECK_FALSE(fusable_activation(Activation::GELU).has_value());
  CHECK_FALSE(fusable_activation(Activation::Sigmoid).has_value());
  CHECK(std::string(bn_activation_name(BnActivation::SiLU)) == "silu");
}

TEST_CASE("batch_norm_act rejects bad arguments with clear messages" * doctest::test_suite("cpu")) {
  const BnActivation relu = BnActivation::ReLU;
  const Tensor x = Tensor::zeros({2, 3, 2, 2}), dy = Tensor::zeros({2, 3, 2, 2});
  const Tensor w = Tensor::full({3}, 1.f), b = Tensor::zeros({3});
  Tensor rm = Tensor::zeros({3}), rv = Tensor::full({3}, 1.f), none;
  CHECK_THROWS_WITH_AS(batch_norm2d_train(relu, Tensor::zeros({1, 3, 1, 1}), w, b, rm, rv),
                       doctest::Contains("batch_norm_act_train(relu): expected more than 1 value per channel"),
                       cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_train(relu, x, Tensor::full({4}, 1.f), b, rm, rv), doctest::Contains("weight"),
                       cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_train(relu, x, w, Tensor::zeros({3, 1}), rm, rv), doctest::Contains("bias"),
                       cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_train(relu, x, w, b, rm, none), doctest::Contains("both"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_train(relu, Tensor::zeros({6, 2, 2}), w, b, rm, rv),
                       doctest::Contains("batch_norm_act_train(relu)"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_eval(BnActivation::SiLU, x, w, b, Tensor::zeros({2}), rv),
                       doctest::Contains("batch_norm_act_eval(silu)"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_eval(BnActivation::SiLU, x, w, b, rm, Tensor::zeros({2})),
                       doctest::Contains("running_var"), cxr::Error);
  const Tensor mean = Tensor::zeros({3}), invstd = Tensor::full({3}, 1.f);
  CHECK_THROWS_WITH_AS(batch_norm2d_backward(relu, Tensor::zeros({2, 3, 2, 3}), x, w, b, mean, invstd),
                       doctest::Contains("dy"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_backward(relu, dy, x, w, Tensor::zeros({2}), mean, invstd),
                       doctest::Contains("bias"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_backward(relu, dy, x, w, b, mean, Tensor::zeros({4})),
                       doctest::Contains("saved_invstd"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_eval_backward(relu, dy, x, w, b, Tensor::zeros({5}), rv),
                       doctest::Contains("batch_norm_act_eval_backward(relu)"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_eval_backward(relu, dy, x, w, b, rm, rv, -1.f), doctest::Contains("eps"),
                       cxr::Error);
}
