// bf16 activations through the pointwise and pooling ops (mixed precision: between two
// convolutions the activations stay bf16, kernels/float_tensor.h).
//
// The contract: a bf16 activation gives a bf16 output, computed in f32 and rounded once; the
// gradients are f32. On the CPU that is the definition: the f32 op on the widened inputs,
// rounded to bf16 (checked bit for bit, and against a scalar oracle for add). On the (emulated)
// device the native bf16 kernels are checked against the CPU on the same bf16 data:
// elementwise outputs bit-equal (up to 1 bf16 ulp where expf/erff may differ between the host
// and the GPU), reductions within 1 bf16 ulp, f32 outputs and gradients within f32 tolerance.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "kernels/activation.h"
#include "kernels/add.h"
#include "kernels/avg_pool2d.h"
#include "kernels/cast.h"
#include "kernels/dropout.h"
#include "kernels/global_avg_pool.h"
#include "kernels/layer_norm.h"
#include "kernels/max_pool2d.h"
#include "kernels/scale_channels.h"
#include "kernels/transpose_nc.h"
#include "tensor/bf16.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

struct TypedInput {
  Shape shape;
  bool bf16 = true;
  Generator init = normal();
};

// One op with some bf16 inputs. forward's first output is the activation (in the first
// input's dtype); backward gets the inputs, the forward outputs and an f32 gradient of the
// first output, and returns f32 gradients.
struct Bf16Case {
  std::string name;
  std::vector<TypedInput> inputs;
  std::function<Tensors(const Tensors& in)> forward;
  std::function<Tensors(const Tensors& in, const Tensors& out, const Tensor& dy)> backward;
  int device_ulps = 0;  // bf16 outputs, device vs CPU
};

Tensors make_inputs(const Bf16Case& c, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Tensors ins;
  for (const TypedInput& in : c.inputs) {
    std::vector<float> v(static_cast<std::size_t>(shape_numel(in.shape)));
    for (float& e : v) e = in.init(rng);
    const Tensor t = Tensor::from_vector(v, in.shape);
    ins.push_back(in.bf16 ? to_bf16(t) : t);
  }
  return ins;
}

Tensors to_device(const Tensors& ts, Device d) {
  Tensors r;
  for (const Tensor& t : ts) r.push_back(t.to(d));
  return r;
}

Tensors widened(const Tensors& ts) {
  Tensors r;
  for (const Tensor& t : ts) r.push_back(t.dtype() == DType::BF16 ? to_f32(t) : t);
  return r;
}

template <typename T>
std::vector<T> host_values(const Tensor& t) {
  const Tensor h = t.contiguous().cpu();
  const T* p = h.data<T>();
  return std::vector<T>(p, p + h.numel());
}

// Distance in representable bf16 values (sign-magnitude bits mapped to a monotonic integer).
int bf16_ulps_apart(std::uint16_t a, std::uint16_t b) {
  const auto ordered = [](std::uint16_t h) { return (h & 0x8000u) ? -static_cast<int>(h & 0x7fffu) : int(h); };
  return std::abs(ordered(a) - ordered(b));
}

bool bf16_is_nan(std::uint16_t h) {
  return (h & 0x7fffu) > 0x7f80u;
}

void expect_bf16_within(const std::string& what, const Tensor& actual, const Tensor& expected, int max_ulps) {
  REQUIRE_MESSAGE(actual.dtype() == DType::BF16, what, ": dtype ", dtype_name(actual.dtype()), ", expected bf16");
  REQUIRE_MESSAGE(expected.dtype() == DType::BF16, what, ": expected tensor is ", dtype_name(expected.dtype()));
  REQUIRE(actual.shape() == expected.shape());
  const std::vector<std::uint16_t> a = host_values<std::uint16_t>(actual), e = host_values<std::uint16_t>(expected);
  int bad = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const bool ok = (bf16_is_nan(a[i]) && bf16_is_nan(e[i])) || bf16_ulps_apart(a[i], e[i]) <= max_ulps;
    if (!ok && ++bad <= 5)
      FAIL_CHECK(what, "[", i, "] = ", bf16_to_f32(a[i]), " (bits ", a[i], "), expected ", bf16_to_f32(e[i]), " (bits ",
                 e[i], "), more than ", max_ulps, " bf16 ulp apart");
  }
  CHECK_MESSAGE(bad == 0, what, ": ", bad, " of ", a.size(), " elements differ");
}

// The same output of the op from two runs: bf16 within max_ulps, f32 within tol, i32 equal.
void expect_same_output(const std::string& what, const Tensor& actual, const Tensor& expected, int max_ulps, Tol tol) {
  REQUIRE_MESSAGE(actual.dtype() == expected.dtype(), what, ": dtype ", dtype_name(actual.dtype()), ", expected ",
                  dtype_name(expected.dtype()));
  switch (actual.dtype()) {
    case DType::BF16:
      return expect_bf16_within(what, actual, expected, max_ulps);
    case DType::I32:
      CHECK(host_values<std::int32_t>(actual) == host_values<std::int32_t>(expected));
      return;
    default:
      return expect_close(what, actual, expected, tol);
  }
}

// --- the cases ---------------------------------------------------------------------------------

Bf16Case activation_case(Activation a, Shape shape) {
  Bf16Case c;
  c.name = std::string(activation_name(a)) + " " + shape_str(shape);
  c.inputs = {{shape}};
  c.forward = [a](const Tensors& in) { return Tensors{activation_forward(a, in[0])}; };
  c.backward = [a](const Tensors& in, const Tensors&, const Tensor& dy) {
    return Tensors{activation_backward(a, in[0], dy)};
  };
  // expf / erff of a GPU may differ from the host's; the emulated device runs the host's.
  const bool same_math_library = device_name(Device::CUDA) == "cuda-emu";
  c.device_ulps = a == Activation::ReLU || same_math_library ? 0 : 1;
  return c;
}

// a and b each bf16 or f32.
Bf16Case add_case(bool a_bf16, bool b_bf16) {
  Bf16Case c;
  c.name = std::string("add a ") + (a_bf16 ? "bf16" : "f32") + " b " + (b_bf16 ? "bf16" : "f32");
  const Shape shape{2, 8, 6, 6};
  c.inputs = {{shape, a_bf16}, {shape, b_bf16}};
  c.forward = [](const Tensors& in) { return Tensors{add(in[0], in[1])}; };
  c.backward = [](const Tensors&, const Tensors&, const Tensor& dy) {
    auto [da, db] = add_backward(dy);
    return Tensors{da, db};
  };
  return c;
}

Bf16Case scale_channels_case(bool x_bf16, bool s_bf16) {
  Bf16Case c;
  c.name = std::string("scale_channels x ") + (x_bf16 ? "bf16" : "f32") + " s " + (s_bf16 ? "bf16" : "f32");
  c.inputs = {{{2, 5, 7, 9}, x_bf16}, {{2, 5}, s_bf16, uniform(0.f, 1.f)}};
  c.forward = [](const Tensors& in) { return Tensors{scale_channels(in[0], in[1])}; };
  c.backward = [](const Tensors& in, const Tensors&, const Tensor& dy) {
    ScaleChannelsGrads g = scale_channels_backward(dy, in[0], in[1]);
    return Tensors{g.dx, g.ds};
  };
  return c;
}

Bf16Case max_pool_case() {
  Bf16Case c;
  const MaxPool2dParams p{3, 2, 1};
  c.name = "max_pool2d 3x3 s2 p1";
  c.inputs = {{{2, 3, 9, 10}}};
  c.forward = [p](const Tensors& in) {
    MaxPool2dOutput r = max_pool2d(in[0], p);
    return Tensors{r.y, r.indices};
  };
  c.backward = [p](const Tensors& in, const Tensors& out, const Tensor& dy) {
    return Tensors{max_pool2d_backward(dy, out[1], in[0].shape(), p)};
  };
  return c;
}

Bf16Case avg_pool_case() {
  Bf16Case c;
  const AvgPool2dParams p{2, 2};
  c.name = "avg_pool2d 2x2 s2";
  c.inputs = {{{2, 3, 9, 10}}};
  c.forward = [p](const Tensors& in) { return Tensors{avg_pool2d(in[0], p)}; };
  c.backward = [p](const Tensors& in, const Tensors&, const Tensor& dy) {
    return Tensors{avg_pool2d_backward(dy, in[0].shape(), p)};
  };
  return c;
}

Bf16Case transpose_nc_case() {
  Bf16Case c;
  c.name = "transpose_nc";
  c.inputs = {{{2, 3, 5, 7}}};
  c.forward = [](const Tensors& in) { return Tensors{transpose_nc(in[0])}; };
  c.backward = [](const Tensors&, const Tensors&, const Tensor& dy) { return Tensors{transpose_nc(dy)}; };
  return c;
}

Bf16Case global_avg_pool_case(Shape shape) {
  Bf16Case c;
  c.name = "global_avg_pool " + shape_str(shape);
  c.inputs = {{shape}};
  c.forward = [](const Tensors& in) { return Tensors{global_avg_pool(in[0])}; };
  c.backward = [](const Tensors& in, const Tensors&, const Tensor& dy) {
    return Tensors{global_avg_pool_backward(dy, in[0].shape())};
  };
  c.device_ulps = 1;  // the CPU sums in double, the device in f32
  return c;
}

Bf16Case dropout_case(bool per_sample) {
  Bf16Case c;
  const DropoutParams d{0.3f, 1234, 77, true};
  c.name = per_sample ? "drop_path p=0.3" : "dropout p=0.3";
  c.inputs = {{{8, 3, 5, 5}}};
  c.forward = [d, per_sample](const Tensors& in) {
    return Tensors{per_sample ? drop_path(in[0], d) : dropout(in[0], d)};
  };
  c.backward = [d, per_sample](const Tensors&, const Tensors&, const Tensor& dy) {
    return Tensors{per_sample ? drop_path_backward(dy, d) : dropout_backward(dy, d)};
  };
  return c;
}

Bf16Case layer_norm_case(Shape shape) {
  Bf16Case c;
  const std::int64_t C = shape.back();
  c.name = "layer_norm " + shape_str(shape);
  c.inputs = {{shape}, {{C}, false, uniform(0.5f, 1.5f)}, {{C}, false}};
  c.forward = [](const Tensors& in) {
    LayerNormOutput r = layer_norm(in[0], in[1], in[2]);
    return Tensors{r.y, r.mean, r.rstd};
  };
  c.backward = [](const Tensors& in, const Tensors& out, const Tensor& dy) {
    LayerNormGrads g = layer_norm_backward(dy, in[0], in[1], out[1], out[2]);
    return Tensors{g.dx, g.dweight, g.dbias};
  };
  c.device_ulps = 1;  // statistics in double on the CPU, f32 on the device
  return c;
}

std::vector<Bf16Case> all_cases() {
  std::vector<Bf16Case> cases;
  for (Activation a : {Activation::ReLU, Activation::SiLU, Activation::Sigmoid, Activation::GELU}) {
    cases.push_back(activation_case(a, {2, 3, 5, 7}));
    cases.push_back(activation_case(a, {1000}));  // a partial block
  }
  const std::pair<bool, bool> bf16_pairs[] = {{true, true}, {true, false}, {false, true}};
  for (auto [a, b] : bf16_pairs) cases.push_back(add_case(a, b));
  for (auto [x, s] : bf16_pairs) cases.push_back(scale_channels_case(x, s));
  cases.push_back(max_pool_case());
  cases.push_back(avg_pool_case());
  cases.push_back(transpose_nc_case());
  cases.push_back(global_avg_pool_case({2, 8, 7, 7}));
  cases.push_back(global_avg_pool_case({2, 3, 13, 11}));  // a plane longer than a warp
  cases.push_back(dropout_case(false));
  cases.push_back(dropout_case(true));
  cases.push_back(layer_norm_case({2, 4, 4, 96}));
  cases.push_back(layer_norm_case({300, 40}));  // row slices for the weight gradient
  cases.push_back(layer_norm_case({3, 77}));    // a partial warp
  return cases;
}

Tensor output_gradient(const Tensor& y, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  return Tensor::randn(y.shape(), rng);
}

// On the CPU: the outputs have the first input's dtype and are the f32 op on the widened
// inputs, rounded once; the gradients are f32 and those of the widened inputs.
void check_on_cpu(const Bf16Case& c) {
  INFO("case ", c.name);
  const Tensors in = make_inputs(c, 11), in_f32 = widened(in);
  const Tensors out = c.forward(in), out_f32 = c.forward(in_f32);
  REQUIRE(out.size() == out_f32.size());
  CHECK(out[0].dtype() == in[0].dtype());
  const Tensor y_rounded_once = out[0].dtype() == DType::BF16 ? to_bf16(out_f32[0]) : out_f32[0];
  expect_same_output(c.name + " y", out[0], y_rounded_once, 0, {0, 0});
  for (std::size_t k = 1; k < out.size(); ++k)
    expect_same_output(c.name + " output " + std::to_string(k), out[k], out_f32[k], 0, {0, 0});
  const Tensor dy = output_gradient(out[0], 12);
  const Tensors g = c.backward(in, out, dy), g_f32 = c.backward(in_f32, out_f32, dy);
  REQUIRE(g.size() == g_f32.size());
  for (std::size_t k = 0; k < g.size(); ++k) {
    CHECK(g[k].dtype() == DType::F32);
    expect_close(c.name + " gradient " + std::to_string(k), g[k], g_f32[k], {0, 0});
  }
}

// On the device: the native bf16 kernels against the CPU on the same bf16 data.
void check_on_device(const Bf16Case& c) {
  INFO("case ", c.name);
  const Tensors in = make_inputs(c, 21), in_dev = to_device(in, Device::CUDA);
  const Tensors out = c.forward(in), out_dev = c.forward(in_dev);
  REQUIRE(out.size() == out_dev.size());
  CHECK(out_dev[0].dtype() == in[0].dtype());
  CHECK(out_dev[0].device() == Device::CUDA);
  for (std::size_t k = 0; k < out.size(); ++k)
    expect_same_output(c.name + " output " + std::to_string(k), out_dev[k], out[k], c.device_ulps, {1e-5, 1e-4});
  const Tensor dy = output_gradient(out[0], 22);
  const Tensors g = c.backward(in, out, dy), g_dev = c.backward(in_dev, out_dev, dy.to(Device::CUDA));
  REQUIRE(g.size() == g_dev.size());
  for (std::size_t k = 0; k < g.size(); ++k) {
    CHECK(g_dev[k].dtype() == DType::F32);
    expect_close(c.name + " gradient " + std::to_string(k), g_dev[k], g[k], {1e-4, 1e-3});
  }
}

}  // namespace

TEST_CASE("pointwise and pooling ops with bf16 activations on the CPU: the f32 op, rounded once" *
          doctest::test_suite("cpu")) {
  for (const Bf16Case& c : all_cases()) check_on_cpu(c);
}

TEST_CASE("pointwise and pooling ops with bf16 activations on the device: native kernels, as the CPU" *
          doctest::test_suite(gpu_suite()) * doctest::skip(skip_gpu_cases())) {
  for (const Bf16Case& c : all_cases()) check_on_device(c);
}

TEST_CASE("bf16 add against a scalar oracle: widen, add in f32, round once" * doctest::test_suite("cpu")) {
  std::mt19937_64 rng(3);
  const Tensor a = to_bf16(Tensor::randn({257}, rng)), b = to_bf16(Tensor::randn({257}, rng, 0.f, 1e-2f));
  const std::vector<std::uint16_t> av = host_values<std::uint16_t>(a), bv = host_values<std::uint16_t>(b);
  const std::vector<std::uint16_t> y = host_values<std::uint16_t>(add(a, b));
  for (std::size_t i = 0; i < y.size(); ++i) CHECK(y[i] == f32_to_bf16(bf16_to_f32(av[i]) + bf16_to_f32(bv[i])));
}

namespace {
// add_ on `device`: a bf16 accumulator stays bf16 and equals add(a, b); an f32 one takes a bf16 b.
void check_add_in_place(Device device) {
  INFO("device ", device_name(device));
  std::mt19937_64 rng(4);
  const Tensor a = Tensor::randn({3, 5, 7}, rng, 0.f, 1.f, device), b = Tensor::randn({3, 5, 7}, rng, 0.f, 1.f, device);
  Tensor acc = to_bf16(a).clone();
  add_(acc, to_bf16(b));
  CHECK(acc.dtype() == DType::BF16);
  CHECK(host_values<std::uint16_t>(acc) == host_values<std::uint16_t>(add(to_bf16(a), to_bf16(b))));
  Tensor acc_f32 = a.clone();
  add_(acc_f32, to_bf16(b));
  CHECK(acc_f32.dtype() == DType::F32);
  CHECK(acc_f32.to_vector() == add(a, to_f32(to_bf16(b))).to_vector());
}

// The dropped elements of a bf16 and an f32 input on `device` are the same ones.
void check_same_mask(Device device) {
  INFO("device ", device_name(device));
  std::mt19937_64 rng(5);
  const Tensor x = Tensor::uniform({6, 4, 5, 5}, rng, 0.5f, 1.5f, device);  // no zeros: a zero is a drop
  const DropoutParams d{0.4f, 99, 1000, true};
  for (bool per_sample : {false, true}) {
    const auto apply = [&](const Tensor& t) { return per_sample ? drop_path(t, d) : dropout(t, d); };
    const std::vector<float> y32 = apply(x).to_vector(), y16 = to_f32(apply(to_bf16(x))).to_vector();
    std::int64_t dropped = 0;
    for (std::size_t i = 0; i < y32.size(); ++i) {
      CHECK((y32[i] == 0.f) == (y16[i] == 0.f));
      dropped += y32[i] == 0.f;
    }
    CHECK(dropped > 0);
    CHECK(dropped < static_cast<std::int64_t>(y32.size()));
  }
}
}  // namespace

TEST_CASE("add_ with bf16 operands, and the same dropout mask for bf16 and f32, on the CPU" *
          doctest::test_suite("cpu")) {
  check_add_in_place(Device::CPU);
  check_same_mask(Device::CPU);
}

TEST_CASE("add_ with bf16 operands, and the same dropout mask for bf16 and f32, on the device" *
          doctest::test_suite(gpu_suite()) * doctest::skip(skip_gpu_cases())) {
  check_add_in_place(Device::CUDA);
  check_same_mask(Device::CUDA);
}

TEST_CASE("the bf16-capable ops refuse other dtypes, naming the op, the tensor and f32 or bf16" *
          doctest::test_suite("cpu")) {
  const Tensor i32 = Tensor::zeros({2, 3, 4, 4}, DType::I32), u8 = Tensor::zeros({2, 3, 4, 4}, DType::U8);
  const Tensor f32 = Tensor::zeros({2, 3, 4, 4}), s = Tensor::zeros({2, 3});
  const auto expects = [](const char* what) { return doctest::Contains(what); };
  CHECK_THROWS_WITH_AS(activation_forward(Activation::GELU, i32), expects("gelu: 'x' must be f32 or bf16, found i32"),
                       cxr::Error);
  CHECK_THROWS_WITH_AS(activation_backward(Activation::ReLU, u8, f32),
                       expects("relu: 'x' must be f32 or bf16, found u8"), cxr::Error);
  CHECK_THROWS_WITH_AS(activation_backward(Activation::ReLU, f32, to_bf16(f32)), expects("relu: 'dy' must be f32"),
                       cxr::Error);
  CHECK_THROWS_WITH_AS(add(f32, i32), expects("add: 'b' must be f32 or bf16, found i32"), cxr::Error);
  Tensor acc = u8;
  CHECK_THROWS_WITH_AS(add_(acc, f32), expects("add_: 'a' must be f32 or bf16, found u8"), cxr::Error);
  CHECK_THROWS_WITH_AS(max_pool2d(i32, {}), expects("max_pool2d: 'x' must be f32 or bf16"), cxr::Error);
  CHECK_THROWS_WITH_AS(global_avg_pool(u8), expects("global_avg_pool: 'x' must be f32 or bf16"), cxr::Error);
  CHECK_THROWS_WITH_AS(scale_channels(f32, Tensor::zeros({2, 3}, DType::I32)),
                       expects("scale_channels: 's' must be f32 or bf16, found i32"), cxr::Error);
  CHECK_THROWS_WITH_AS(scale_channels_backward(f32, i32, s),
                       expects("scale_channels_backward: 'x' must be f32 or bf16"), cxr::Error);
  CHECK_THROWS_WITH_AS(dropout(u8, {}), expects("dropout: 'x' must be f32 or bf16, found u8"), cxr::Error);
  CHECK_THROWS_WITH_AS(drop_path(i32, {}), expects("drop_path: 'x' must be f32 or bf16"), cxr::Error);
  CHECK_THROWS_WITH_AS(dropout_backward(to_bf16(f32), {}), expects("dropout_backward: 'dy' must be f32"), cxr::Error);
  const Tensor w = Tensor::zeros({4}), b = Tensor::zeros({4});
  CHECK_THROWS_WITH_AS(layer_norm(i32, w, b), expects("layer_norm: 'x' must be f32 or bf16, found i32"), cxr::Error);
}
