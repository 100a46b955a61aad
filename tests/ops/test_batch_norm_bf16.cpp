// Batch norm with bf16 activations (mixed precision; kernels/batch_norm.h):
// x may be bf16, y then is bf16, everything else (dy, dx, parameters, statistics) stays f32.
//  - CPU, the definition: every one of the nine ops on a bf16 x gives y = to_bf16(the f32 op on
//    to_f32(x)) bit for bit, and the statistics and gradients of the f32 op on to_f32(x); an f32
//    x still gives the f32 y of the raw f32 kernels;
//  - device (suite "cuda-emu" in cxr_tests_emu, "cuda" on a GPU), where the kernels read and
//    write bf16 themselves: the same bf16 x as the CPU (rounded values on both sides), y within
//    one bf16 ulp of the CPU and mostly bit-equal, statistics and gradients within f32
//    tolerance; a small shape, one whose elementwise passes span many blocks (4x8x17x19), and
//    one whose channels are split over several reduction blocks (2x2x70x70);
//  - argument checks: an x that is neither f32 nor bf16, a bf16 dy.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/batch_norm.h"
#include "kernels/cast.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

constexpr float kMomentum = 0.1f;
constexpr float kEps = 1e-5f;
const BnActivation kActivations[] = {BnActivation::Identity, BnActivation::ReLU, BnActivation::SiLU};
// 3x5x7x9: 945 values, not a multiple of the 8 bf16 a CUDA thread takes at once (a tail).
const Shape kShapes[] = {{2, 3, 4, 5}, {4, 8, 17, 19}, {2, 2, 70, 70}, {3, 5, 7, 9}};

// The arguments of the nine ops; x bf16 (or its f32 widening), all others f32.
struct BnData {
  Tensor x, dy, weight, bias, running_mean, running_var;
  Tensor mean, var;  // the batch mean and biased variance of x, for batch_norm2d_train_from_stats

  BnData to(Device dev) const {
    return {x.to(dev),           dy.to(dev),   weight.to(dev), bias.to(dev), running_mean.to(dev),
            running_var.to(dev), mean.to(dev), var.to(dev)};
  }
  BnData with_x(const Tensor& other) const {
    BnData d = *this;
    d.x = other;
    return d;
  }
};

// On the CPU, x already rounded to bf16.
BnData make_data(const Shape& shape, std::uint64_t seed) {
  const std::int64_t N = shape[0], C = shape[1], HW = shape[2] * shape[3];
  std::mt19937_64 rng(seed);
  BnData d;
  d.x = to_bf16(Tensor::randn(shape, rng, 0.5f, 2.f));
  d.dy = Tensor::randn(shape, rng);
  d.weight = Tensor::uniform({C}, rng, 0.5f, 1.5f);
  d.bias = Tensor::uniform({C}, rng, -0.5f, 0.5f);
  d.running_mean = Tensor::uniform({C}, rng, -0.2f, 0.2f);
  d.running_var = Tensor::uniform({C}, rng, 0.5f, 2.f);
  d.mean = Tensor::empty({C});
  d.var = Tensor::empty({C});
  cpu::channel_mean_var<float>(to_f32(d.x).f32(), d.mean.f32(), d.var.f32(), N, C, HW);
  return d;
}

// One output of one op, on the CPU, and how it is compared.
enum class Kind { Activation, Statistic, Gradient };
struct Named {
  std::string name;
  Kind kind;
  Tensor value;
};
using Results = std::vector<Named>;

void add_train(Results& r, const std::string& op, const BatchNormOutput& out, const Tensor& rm, const Tensor& rv) {
  r.push_back({op + " y", Kind::Activation, out.y.cpu()});
  r.push_back({op + " saved_mean", Kind::Statistic, out.saved_mean.cpu()});
  r.push_back({op + " saved_invstd", Kind::Statistic, out.saved_invstd.cpu()});
  r.push_back({op + " running_mean", Kind::Statistic, rm.cpu()});
  r.push_back({op + " running_var", Kind::Statistic, rv.cpu()});
}

void add_grads(Results& r, const std::string& op, const BatchNormGrads& g) {
  r.push_back({op + " dx", Kind::Gradient, g.dx.cpu()});
  r.push_back({op + " dweight", Kind::Gradient, g.dweight.cpu()});
  r.push_back({op + " dbias", Kind::Gradient, g.dbias.cpu()});
}

// The four batch_norm2d_* ops without an activation on d's device; each backward from its own forward's statistics.
Results run_plain(const BnData& d) {
  Results r;
  // Copies: the training forward updates the running statistics in place.
  Tensor rm = d.running_mean.clone(), rv = d.running_var.clone();
  const BatchNormOutput t = batch_norm2d_train(BnActivation::Identity, d.x, d.weight, d.bias, rm, rv, kMomentum, kEps);
  add_train(r, "batch_norm2d_train", t, rm, rv);
  r.push_back(
      {"batch_norm2d_eval y", Kind::Activation,
       batch_norm2d_eval(BnActivation::Identity, d.x, d.weight, d.bias, d.running_mean, d.running_var, kEps).cpu()});
  add_grads(r, "batch_norm2d_backward",
            batch_norm2d_backward(BnActivation::Identity, d.dy, d.x, d.weight, d.bias, t.saved_mean, t.saved_invstd));
  add_grads(r, "batch_norm2d_eval_backward",
            batch_norm2d_eval_backward(BnActivation::Identity, d.dy, d.x, d.weight, d.bias, d.running_mean,
                                       d.running_var, kEps));
  return r;
}

// The five batch_norm2d_* ops with `act` on d's device.
Results run_fused(BnActivation act, const BnData& d) {
  Results r;
  const std::string a = std::string("(") + bn_activation_name(act) + ")";
  Tensor rm = d.running_mean.clone(), rv = d.running_var.clone();
  const BatchNormOutput t = batch_norm2d_train(act, d.x, d.weight, d.bias, rm, rv, kMomentum, kEps);
  add_train(r, "batch_norm_act_train" + a, t, rm, rv);
  Tensor rm_s = d.running_mean.clone(), rv_s = d.running_var.clone();
  add_train(r, "batch_norm_act_train_from_stats" + a,
            batch_norm2d_train_from_stats(act, d.x, d.mean, d.var, d.weight, d.bias, rm_s, rv_s, kMomentum, kEps), rm_s,
            rv_s);
  r.push_back({"batch_norm_act_eval" + a + " y", Kind::Activation,
               batch_norm2d_eval(act, d.x, d.weight, d.bias, d.running_mean, d.running_var, kEps).cpu()});
  add_grads(r, "batch_norm_act_backward" + a,
            batch_norm2d_backward(act, d.dy, d.x, d.weight, d.bias, t.saved_mean, t.saved_invstd));
  add_grads(r, "batch_norm_act_eval_backward" + a,
            batch_norm2d_eval_backward(act, d.dy, d.x, d.weight, d.bias, d.running_mean, d.running_var, kEps));
  return r;
}

std::vector<std::uint16_t> bf16_bits(const Tensor& t) {
  REQUIRE(t.dtype() == DType::BF16);
  const Tensor c = t.cpu();
  const std::uint16_t* p = c.data<std::uint16_t>();
  return {p, p + c.numel()};
}

std::vector<double> as_doubles(const std::vector<float>& v) {
  return {v.begin(), v.end()};
}

// A bf16 y of the device against the CPU's: within one bf16 ulp (relative 2^-7; plus 1e-5 for
// values near zero, where the f32 values before the rounding already differ by more than a
// bf16 ulp of theirs), and mostly bit-equal: the two compute the same f32 value up to a few
// f32 ulps (fmaf with the folded scale and shift there, the unfolded expression here), so the
// rounding to bf16 rarely falls differently.
void expect_bf16_close(const std::string& what, const Tensor& actual, const Tensor& expected) {
  const std::vector<std::uint16_t> a = bf16_bits(actual), e = bf16_bits(expected);
  REQUIRE(a.size() == e.size());
  expect_close(what, to_f32(actual).to_vector(), as_doubles(to_f32(expected).to_vector()), Tol{1e-5, 1.0 / 128});
  std::size_t equal = 0;
  for (std::size_t i = 0; i < a.size(); ++i) equal += a[i] == e[i];
  INFO(what, ": ", equal, " of ", a.size(), " elements bit-equal");
  CHECK(static_cast<double>(equal) >= 0.99 * static_cast<double>(a.size()));
}

// Device results against the CPU's, output by output.
void expect_device_matches_cpu(const std::string& what, const Results& device, const Results& cpu) {
  REQUIRE(device.size() == cpu.size());
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    const std::string name = device[i].name + " " + what;
    const Tensor& d = device[i].value;
    const Tensor& c = cpu[i].value;
    CAPTURE(name);
    REQUIRE(d.dtype() == c.dtype());
    switch (cpu[i].kind) {
      case Kind::Activation:
        expect_bf16_close(name, d, c);
        break;
      case Kind::Statistic:
        expect_close(name, d, c, Tol{2e-5, 1e-4});
        break;
      case Kind::Gradient:
        expect_close(name, d, c, Tol{1e-4, 1e-3});
        break;
    }
  }
}

// The CPU on a bf16 x against the f32 ops on the widened x: y rounded once, all else the same.
void expect_bf16_is_rounded_f32(const Results& bf16, const Results& f32) {
  REQUIRE(bf16.size() == f32.size());
  for (std::size_t i = 0; i < f32.size(); ++i) {
    CAPTURE(bf16[i].name);
    if (bf16[i].kind == Kind::Activation) {
      CHECK(bf16[i].value.dtype() == DType::BF16);
      CHECK(bf16_bits(bf16[i].value) == bf16_bits(to_bf16(f32[i].value)));
    } else {
      CHECK(bf16[i].value.dtype() == DType::F32);
      CHECK(bf16[i].value.to_vector() == f32[i].value.to_vector());
    }
  }
}

}  // namespace

TEST_CASE("batch norm ops on a bf16 x on the CPU: the f32 ops on the widened x, y rounded once" *
          doctest::test_suite("cpu")) {
  for (const Shape& shape : kShapes) {
    CAPTURE(shape_str(shape));
    const BnData bf16 = make_data(shape, 41);
    const BnData f32 = bf16.with_x(to_f32(bf16.x));
    expect_bf16_is_rounded_f32(run_plain(bf16), run_plain(f32));
    for (BnActivation act : kActivations) expect_bf16_is_rounded_f32(run_fused(act, bf16), run_fused(act, f32));
  }
}

TEST_CASE("batch norm ops on an f32 x on the CPU: an f32 y, that of the raw f32 kernels" * doctest::test_suite("cpu")) {
  const Shape shape{2, 3, 4, 5};
  const std::int64_t N = 2, C = 3, HW = 20;
  std::mt19937_64 rng(5);
  const BnData d = make_data(shape, 43).with_x(Tensor::randn(shape, rng));
  Tensor rm = d.running_mean.clone(), rv = d.running_var.clone();
  const BatchNormOutput t = batch_norm2d_train(BnActivation::Identity, d.x, d.weight, d.bias, rm, rv, kMomentum, kEps);
  const Tensor e = batch_norm2d_eval(BnActivation::SiLU, d.x, d.weight, d.bias, d.running_mean, d.running_var, kEps);
  CHECK(t.y.dtype() == DType::F32);
  CHECK(e.dtype() == DType::F32);

  std::vector<float> y(d.x.numel()), mean(C), invstd(C), y_eval(d.x.numel());
  std::vector<float> rm_raw = d.running_mean.to_vector(), rv_raw = d.running_var.to_vector();
  cpu::batch_norm2d_forward_train<float>(BnActivation::Identity, d.x.f32(), d.weight.f32(), d.bias.f32(), y.data(),
                                         mean.data(), invstd.data(), rm_raw.data(), rv_raw.data(), N, C, HW, kMomentum,
                                         kEps);
  cpu::batch_norm2d_forward_eval<float>(BnActivation::SiLU, d.x.f32(), d.weight.f32(), d.bias.f32(),
                                        d.running_mean.f32(), d.running_var.f32(), y_eval.data(), N, C, HW, kEps);
  CHECK(t.y.to_vector() == y);
  CHECK(t.saved_mean.to_vector() == mean);
  CHECK(t.saved_invstd.to_vector() == invstd);
  CHECK(rm.to_vector() == rm_raw);
  CHECK(rv.to_vector() == rv_raw);
  CHECK(e.to_vector() == y_eval);
}

TEST_CASE("batch norm ops on a bf16 x on the device: bf16 y within one ulp of the CPU's, f32 statistics and gradients" *
          doctest::test_suite(gpu_suite()) * doctest::skip(skip_gpu_cases())) {
  for (const Shape& shape : kShapes) {
    const std::string what = "on " + shape_str(shape);
    const BnData cpu_data = make_data(shape, 47);
    const BnData dev_data = cpu_data.to(Device::CUDA);
    CHECK(dev_data.x.dtype() == DType::BF16);
    expect_device_matches_cpu(what, run_plain(dev_data), run_plain(cpu_data));
    for (BnActivation act : kActivations)
      expect_device_matches_cpu(what, run_fused(act, dev_data), run_fused(act, cpu_data));
  }
}

// t on the device as a view 105 elements into a larger tensor: an offset that is not 16-byte
// aligned, so the elementwise kernels cannot take 16 bytes at a time.
Tensor unaligned_on_device(const Tensor& t) {
  const std::int64_t skip = 105;
  Tensor big = Tensor::zeros({t.numel() + skip}, t.dtype());
  big.narrow(0, skip, t.numel()).copy_(t.contiguous().view({t.numel()}));
  return big.to(Device::CUDA).narrow(0, skip, t.numel()).view(t.shape());
}

TEST_CASE("batch norm ops on the device: x and dy at an unaligned offset give the same results" *
          doctest::test_suite(gpu_suite()) * doctest::skip(skip_gpu_cases())) {
  const Shape shape{2, 3, 5, 7};
  const BnData cpu_data = make_data(shape, 59);
  BnData dev_data = cpu_data.to(Device::CUDA);
  dev_data.x = unaligned_on_device(cpu_data.x);
  dev_data.dy = unaligned_on_device(cpu_data.dy);
  REQUIRE(reinterpret_cast<std::uintptr_t>(dev_data.x.raw_data()) % 16 != 0);
  for (BnActivation act : kActivations)
    expect_device_matches_cpu("unaligned " + shape_str(shape), run_fused(act, dev_data), run_fused(act, cpu_data));
}

TEST_CASE("batch norm ops name the op and x when x is neither f32 nor bf16, and refuse a bf16 dy" *
          doctest::test_suite("cpu")) {
  const Shape shape{2, 3, 2, 2};
  const Tensor x_i32 = Tensor::zeros(shape, DType::I32), x_u8 = Tensor::zeros(shape, DType::U8);
  const Tensor x = Tensor::zeros(shape), dy = Tensor::zeros(shape), dy_bf16 = to_bf16(dy);
  const Tensor w = Tensor::full({3}, 1.f), b = Tensor::zeros({3}), mean = Tensor::zeros({3});
  const Tensor invstd = Tensor::full({3}, 1.f);
  Tensor rm = Tensor::zeros({3}), rv = Tensor::full({3}, 1.f);
  const BnActivation relu = BnActivation::ReLU;
  CHECK_THROWS_WITH_AS(batch_norm2d_train(BnActivation::Identity, x_i32, w, b, rm, rv),
                       doctest::Contains("batch_norm2d_train: 'x' must be f32 or bf16, found i32"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_eval(BnActivation::Identity, x_u8, w, b, rm, rv),
                       doctest::Contains("batch_norm2d_eval: 'x' must be f32 or bf16, found u8"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_backward(BnActivation::Identity, dy, x_i32, w, b, mean, invstd),
                       doctest::Contains("batch_norm2d_backward: 'x' must be f32 or bf16"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_eval_backward(BnActivation::Identity, dy, x_u8, w, b, rm, rv),
                       doctest::Contains("batch_norm2d_eval_backward: 'x' must be f32 or bf16"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_train(relu, x_u8, w, b, rm, rv),
                       doctest::Contains("batch_norm_act_train(relu): 'x' must be f32 or bf16, found u8"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_train_from_stats(relu, x_i32, mean, rv, w, b, rm, rv),
                       doctest::Contains("batch_norm_act_train_from_stats(relu): 'x' must be f32 or bf16"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_eval(relu, x_i32, w, b, rm, rv),
                       doctest::Contains("batch_norm_act_eval(relu): 'x' must be f32 or bf16"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_backward(relu, dy, x_u8, w, b, mean, invstd),
                       doctest::Contains("batch_norm_act_backward(relu): 'x' must be f32 or bf16"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_eval_backward(relu, dy, x_i32, w, b, rm, rv),
                       doctest::Contains("batch_norm_act_eval_backward(relu): 'x' must be f32 or bf16"), cxr::Error);
  // Gradients stay f32, whatever the dtype of x.
  CHECK_THROWS_WITH_AS(batch_norm2d_backward(BnActivation::Identity, dy_bf16, to_bf16(x), w, b, mean, invstd),
                       doctest::Contains("batch_norm2d_backward: 'dy' must be f32"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_eval_backward(relu, dy_bf16, x, w, b, rm, rv),
                       doctest::Contains("batch_norm_act_eval_backward(relu): 'dy' must be f32"), cxr::Error);
}
