// The op-test registry: one description of an op case, checked on every device present.
//
//   CXR_OP_CASE("relu 2x3x5x7") { return relu_case({2, 3, 5, 7}); }
//
// registers two doctest cases:
//   "relu 2x3x5x7 [cpu]"  suite "cpu":  forward against the double-precision reference,
//                         backward against central finite differences of that reference;
//   "relu 2x3x5x7 [gpu]"  suite "cuda-emu" in cxr_tests_emu (the emulated device) and "cuda"
//                         in cxr_tests_cuda (the real GPU): forward and every gradient against
//                         the CPU implementation. Skipped where no GPU exists, unless
//                         CXR_REQUIRE_GPU=1, which makes a missing GPU a failure.
// Device outputs are allocated from poisoned memory (NaN), so an element a kernel forgets to
// write fails the comparison.
#pragma once

#include <doctest/doctest.h>

#include <functional>
#include <random>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace cxr::test {

struct Tol {
  double atol = 1e-5;
  double rtol = 1e-4;
};

using Tensors = std::vector<Tensor>;
using Doubles = std::vector<std::vector<double>>;
using Generator = std::function<float(std::mt19937_64&)>;

struct Input {
  Shape shape;
  Generator init;             // default: standard normal
  bool differentiable = true;  // checked by finite differences / compared on devices
};

struct OpCase {
  std::vector<Input> inputs;
  // The op on the inputs' device (inputs are fresh copies each call; the op may update them,
  // like running statistics, and may return them as outputs).
  std::function<Tensors(Tensors&)> forward;
  // Gradients of the inputs (one per input; undefined for non-differentiable ones) given the
  // inputs, the forward outputs and the gradients of the outputs. Empty: a forward-only op.
  std::function<Tensors(const Tensors& inputs, const Tensors& outputs, const Tensors& grad_outputs)> backward;
  // The math in double precision: inputs -> outputs. Used for the CPU forward check and for
  // finite differences. Required.
  std::function<Doubles(const Doubles&)> reference;
  std::vector<bool> differentiable_outputs;  // default: all; others get zero gradient
  Tol forward_tol{1e-5, 1e-4};   // CPU f32 vs double reference
  Tol grad_tol{1e-3, 1e-2};      // CPU analytic gradient vs finite differences of the reference
  Tol device_tol{1e-5, 1e-4};    // device vs CPU, outputs
  Tol device_grad_tol{1e-4, 1e-3};  // device vs CPU, gradients
  int fd_samples = 32;  // elements of each input probed by finite differences
  double fd_step = 1e-4;
};

// Generators for Input::init.
Generator normal(float mean = 0.f, float stddev = 1.f);
Generator uniform(float lo, float hi);
// Uniform in [lo, hi] but at least `gap` away from zero in magnitude (for ReLU-like kinks).
Generator away_from_zero(float lo, float hi, float gap);

// Helpers for reference lambdas and backward lambdas.
std::vector<double> to_doubles(const Tensor& t);
Tensor from_doubles(const std::vector<double>& v, const Shape& shape);

// Elementwise |a - b| <= atol + rtol * |b|; reports the first mismatches with indices.
void expect_close(const std::string& what, const std::vector<float>& actual, const std::vector<double>& expected,
                  Tol tol);
void expect_close(const std::string& what, const Tensor& actual, const Tensor& expected, Tol tol);

void check_op_on_cpu(const std::string& name, const OpCase& c);
void check_op_on_gpu(const std::string& name, const OpCase& c);

// Test-suite names and skip decision for GPU cases (evaluated when the binary starts).
const char* gpu_suite();
// The suite of a device case that takes minutes on the emulator (whole models under training):
// "cuda-emu-slow" there (ctest cuda-emu-slow, label slow: the sanitizer run leaves it out), "cuda" on a GPU.
const char* gpu_suite_slow();
bool skip_gpu_cases();
bool gpu_required();  // CXR_REQUIRE_GPU=1

}  // namespace cxr::test

#define CXR_OP_CASE_IMPL(NAME, FN)                                                                 \
  static ::cxr::test::OpCase FN();                                                                 \
  TEST_CASE(NAME " [cpu]" * doctest::test_suite("cpu")) { ::cxr::test::check_op_on_cpu(NAME, FN()); } \
  TEST_CASE(NAME " [gpu]" * doctest::test_suite(::cxr::test::gpu_suite()) *                         \
            doctest::skip(::cxr::test::skip_gpu_cases())) {                                        \
    ::cxr::test::check_op_on_gpu(NAME, FN());                                                      \
  }                                                                                                \
  static ::cxr::test::OpCase FN()

#define CXR_OP_CASE(NAME) CXR_OP_CASE_IMPL(NAME, DOCTEST_ANONYMOUS(cxr_op_case_))
