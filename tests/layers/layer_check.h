// Checks for layers (Modules), the counterpart of tests/op_check.h for ops:
//
//   CXR_LAYER_CASE("conv2d 3x3 s2") {
//     LayerCase c;
//     c.make = [] { return std::make_unique<Conv2d>(3, 4, Conv2dOptions{.stride = 2, .padding = 1}); };
//     c.input_shape = {2, 3, 7, 7};
//     return c;
//   }
//
// registers two doctest cases:
//   "<name> [cpu]"  suite "cpu": the layer's backward (d input and every parameter gradient)
//                   against central finite differences of L = sum(R * forward(x)), R fixed
//                   random. The layer runs in f32, L is summed in double; the step is
//                   absolute (fd_step), so inputs should be of order 1 and away from kinks.
//   "<name> [gpu]"  suite gpu_suite() ("cuda-emu" or "cuda"), skipped without a device: the
//                   same layer built twice from the same seed, on the CPU and on the device:
//                   training forward, backward (dx, every parameter gradient), the buffers
//                   after the step, then an eval-mode forward, device against CPU.
#pragma once

#include <functional>
#include <memory>
#include <random>
#include <string>

#include "layers/module.h"
#include "tests/op_check.h"

namespace cxr::test {

struct LayerCase {
  std::function<std::unique_ptr<Module>()> make;  // called after manual_seed(seed)
  Shape input_shape;
  // Fills the input (CPU f32); default: standard normal.
  std::function<Tensor(std::mt19937_64&)> make_input;
  // Called before every training forward (e.g. to replay a dropout mask).
  std::function<void(Module&)> before_forward;
  bool input_grad = true;   // check d input
  bool check_eval = true;   // also compare an eval-mode forward on the device
  double fd_step = 1e-2;
  int fd_samples = 12;      // elements probed per input / parameter
  Tol grad_tol{2e-3, 2e-2};
  Tol device_tol{1e-5, 1e-4};
  Tol device_grad_tol{1e-4, 1e-3};
};

void check_layer_on_cpu(const std::string& name, const LayerCase& c);
void check_layer_on_gpu(const std::string& name, const LayerCase& c);

// Inputs: a random permutation of distinct values spaced `gap` apart, centred on 0 (for max
// pooling: no two window values within a finite-difference step).
std::function<Tensor(std::mt19937_64&)> distinct_values(const Shape& shape, float gap);
// Uniform in [-hi, hi] with |x| >= gap (ReLU kinks).
std::function<Tensor(std::mt19937_64&)> away_from_zero_input(const Shape& shape, float hi, float gap);

}  // namespace cxr::test

#define CXR_LAYER_CASE_IMPL(NAME, FN)                                                               \
  static ::cxr::test::LayerCase FN();                                                               \
  TEST_CASE(NAME " [cpu]" * doctest::test_suite("cpu")) { ::cxr::test::check_layer_on_cpu(NAME, FN()); } \
  TEST_CASE(NAME " [gpu]" * doctest::test_suite(::cxr::test::gpu_suite()) *                          \
            doctest::skip(::cxr::test::skip_gpu_cases())) {                                         \
    ::cxr::test::check_layer_on_gpu(NAME, FN());                                                    \
  }                                                                                                 \
  static ::cxr::test::LayerCase FN()

#define CXR_LAYER_CASE(NAME) CXR_LAYER_CASE_IMPL(NAME, DOCTEST_ANONYMOUS(cxr_layer_case_))
