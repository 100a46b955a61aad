// The op-test registry: one description of an op case, checked on every device present and at
// every precision the case declares (as ggml's test-backend-ops runs each case per type, each
// with its own error bound).
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
// Those are the fp32 checks, with the tolerances of OpCase (Tol: elementwise). A case may also
// declare lower precisions (OpCase::precisions), each with its own bound on relative L2 errors,
// checked in the same two doctest cases after the fp32 checks (messages say "[tf32]", "[bf16]"):
//   TF32  [gpu] only (TF32 changes device results only; the CPU has no TF32 path): the device
//         result under TF32 against the CPU fp32 result; the device fp32 result against the CPU
//         too; and the TF32 result away from the fp32 device result (the tensor-core path ran).
//   BF16  [cpu] and [gpu], under autocast (kernels/execution.h): the result against the double
//         reference of the operands as autocast rounds them (inputs marked matmul_operand and
//         the output gradients rounded to bf16: reference, reference_backward); and away from
//         the fp32 result of the unrounded operands (the operands really were rounded).
// Device outputs are allocated from poisoned memory (NaN), so an element a kernel forgets to
// write fails the comparison.
#pragma once

#include <doctest/doctest.h>

#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels/execution.h"
#include "kernels/gemm.h"
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
  // An operand of the op's matrix products (a convolution's x and w, not its bias): autocast
  // rounds it to bf16, the TF32 tensor cores read it at 10 mantissa bits, and its gradient is a
  // matrix product too. Used by the TF32 and BF16 checks only.
  bool matmul_operand = false;
};

// The precisions of the registry: fp32 (every case), TF32 tensor cores (allow_tf32), bf16
// autocast (autocast_bf16). (cxr::Precision, kernels/execution.h, is the switch: fp32 or bf16.)
enum class OpPrecision { FP32, TF32, BF16 };
const char* precision_name(OpPrecision p);  // "fp32", "tf32", "bf16"

// The math switches of a precision for a scope (FP32: TF32 and autocast off; TF32: TF32 on;
// BF16: autocast on), restoring the previous ones at its end. Tests set kernels/execution.h's
// switches through this class only.
class PrecisionScope {
 public:
  explicit PrecisionScope(OpPrecision p)
      : scope_({.precision = p == OpPrecision::BF16 ? Precision::BF16 : Precision::FP32,
                .allow_tf32 = p == OpPrecision::TF32}) {}
  PrecisionScope(const PrecisionScope&) = delete;
  PrecisionScope& operator=(const PrecisionScope&) = delete;

 private:
  ExecutionScope scope_;
};
// The precision the switches select now (FP32 when neither is on).
OpPrecision current_precision();
// An operand of a matrix product as autocast hands it to the op: its bf16 copy under BF16, x
// itself otherwise (for OpCase::forward / backward of cases that declare BF16).
Tensor autocast_operand(const Tensor& x);

// The bound of a case at TF32 or BF16 (see the top of the file). Errors are relative L2 norms,
// ||got - want|| / ||want||, of each output and each gradient.
struct PrecisionBound {
  OpPrecision precision = OpPrecision::BF16;
  double max_error = 0;       // every output and gradient against its reference
  double min_change = 0;      // outputs and gradients of matmul operands: at least this far from fp32
  double max_fp32_error = 0;  // TF32: the fp32 device result against the same (CPU) reference
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
  // The gradients in double precision: (inputs, output gradients) -> one per input (empty for
  // non-differentiable ones). Required by BF16 when the case has a backward.
  std::function<Doubles(const Doubles& inputs, const Doubles& grad_outputs)> reference_backward;
  std::vector<bool> differentiable_outputs;  // default: all; others get zero gradient
  Tol forward_tol{1e-5, 1e-4};   // CPU f32 vs double reference
  Tol grad_tol{1e-3, 1e-2};      // CPU analytic gradient vs finite differences of the reference
  Tol device_tol{1e-5, 1e-4};    // device vs CPU, outputs
  Tol device_grad_tol{1e-4, 1e-3};  // device vs CPU, gradients
  int fd_samples = 32;  // elements of each input probed by finite differences
  double fd_step = 1e-4;
  // Lower precisions the case also runs at, each with its bound (fp32 always runs, with the
  // tolerances above).
  std::vector<PrecisionBound> precisions;
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

// ||got - want|| / ||want|| over all elements (got on any device); infinite when got holds a
// non-finite value, 0 when both are all zero.
double relative_error(const Tensor& got, const std::vector<double>& want);
double relative_error(const Tensor& got, const Tensor& want);

void check_op_on_cpu(const std::string& name, const OpCase& c);
void check_op_on_gpu(const std::string& name, const OpCase& c);

// Test-suite names and skip decision for GPU cases (evaluated when the binary starts).
const char* gpu_suite();
// The suite of a device case that takes minutes on the emulator (whole models under training):
// "cuda-emu-slow" there (ctest cuda-emu-slow, label slow: the sanitizer run leaves it out), "cuda" on a GPU.
const char* gpu_suite_slow();
bool skip_gpu_cases();
bool gpu_required();  // CXR_REQUIRE_GPU=1

// The OpenMP thread count of the CPU kernels for a scope (ctest sets OMP_NUM_THREADS=1).
class ThreadCountScope {
 public:
  explicit ThreadCountScope(int threads);
  ~ThreadCountScope();
  ThreadCountScope(const ThreadCountScope&) = delete;
  ThreadCountScope& operator=(const ThreadCountScope&) = delete;

 private:
  int saved_;
};

// The CPU GEMM's register tile for a scope (the process-wide setting restored after).
class GemmKernelScope {
 public:
  explicit GemmKernelScope(cpu::CpuGemmKernel k);
  ~GemmKernelScope();
  GemmKernelScope(const GemmKernelScope&) = delete;
  GemmKernelScope& operator=(const GemmKernelScope&) = delete;
};

// The register tiles this CPU runs: AVX2, and AVX-512 where the CPU has it (a MESSAGE says when
// it does not).
std::vector<cpu::CpuGemmKernel> available_gemm_kernels();

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
