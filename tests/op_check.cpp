#include "tests/op_check.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <sstream>

#include "kernels/cast.h"
#include "kernels/execution.h"
#include "tensor/bf16.h"
#include "tensor/backend.h"

namespace cxr::test {

Generator normal(float mean, float stddev) {
  return [=](std::mt19937_64& rng) { return std::normal_distribution<float>(mean, stddev)(rng); };
}

Generator uniform(float lo, float hi) {
  return [=](std::mt19937_64& rng) { return std::uniform_real_distribution<float>(lo, hi)(rng); };
}

Generator away_from_zero(float lo, float hi, float gap) {
  return [=](std::mt19937_64& rng) {
    std::uniform_real_distribution<float> d(lo, hi);
    float v;
    do v = d(rng); while (std::fabs(v) < gap);
    return v;
  };
}

std::vector<double> to_doubles(const Tensor& t) {
  std::vector<float> f = t.to_vector();
  return std::vector<double>(f.begin(), f.end());
}

Tensor from_doubles(const std::vector<double>& v, const Shape& shape) {
  return Tensor::from_vector(std::vector<float>(v.begin(), v.end()), shape);
}

const char* precision_name(OpPrecision p) {
  switch (p) {
    case OpPrecision::FP32: return "fp32";
    case OpPrecision::TF32: return "tf32";
    case OpPrecision::BF16: return "bf16";
  }
  return "?";
}

OpPrecision current_precision() {
  if (autocast_bf16()) return OpPrecision::BF16;
  if (allow_tf32()) return OpPrecision::TF32;
  return OpPrecision::FP32;
}

Tensor autocast_operand(const Tensor& x) { return autocast_bf16() ? to_bf16(x) : x; }

ThreadCountScope::ThreadCountScope(int threads) : saved_(omp_get_max_threads()) { omp_set_num_threads(threads); }
ThreadCountScope::~ThreadCountScope() { omp_set_num_threads(saved_); }

GemmKernelScope::GemmKernelScope(cpu::CpuGemmKernel k) { cpu::set_cpu_gemm_kernel(k); }
GemmKernelScope::~GemmKernelScope() { cpu::set_cpu_gemm_kernel(cpu::CpuGemmKernel::Auto); }

std::vector<cpu::CpuGemmKernel> available_gemm_kernels() {
  std::vector<cpu::CpuGemmKernel> ks = {cpu::CpuGemmKernel::Avx2};
  if (cpu::cpu_gemm_kernel_available(cpu::CpuGemmKernel::Avx512)) ks.push_back(cpu::CpuGemmKernel::Avx512);
  else MESSAGE("no AVX-512 on this CPU: only the AVX2 tile is checked");
  return ks;
}

namespace {

std::string index_str(std::size_t i) { return std::to_string(i); }

}  // namespace

void expect_close(const std::string& what, const std::vector<float>& actual, const std::vector<double>& expected,
                  Tol tol) {
  REQUIRE_MESSAGE(actual.size() == expected.size(), what, ": ", actual.size(), " elements, expected ",
                  expected.size());
  std::size_t bad = 0;
  double worst = 0.0;
  std::ostringstream first;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double a = actual[i], e = expected[i];
    const double err = std::fabs(a - e);
    const double limit = tol.atol + tol.rtol * std::fabs(e);
    if (!(err <= limit)) {  // also catches NaN
      if (bad < 5) first << "\n    [" << index_str(i) << "] got " << a << ", expected " << e << " (|diff| " << err
                         << " > " << limit << ")";
      ++bad;
    }
    if (std::isfinite(err)) worst = std::max(worst, err);
  }
  CHECK_MESSAGE(bad == 0, what, ": ", bad, " of ", actual.size(), " elements differ (atol ", tol.atol, ", rtol ",
                tol.rtol, ", max |diff| ", worst, ")", first.str());
}

void expect_close(const std::string& what, const Tensor& actual, const Tensor& expected, Tol tol) {
  REQUIRE_MESSAGE(actual.shape() == expected.shape(), what, ": shape ", shape_str(actual.shape()), ", expected ",
                  shape_str(expected.shape()));
  expect_close(what, actual.to_vector(), to_doubles(expected), tol);
}

double relative_error(const Tensor& got, const std::vector<double>& want) {
  const std::vector<float> x = got.to(Device::CPU).to_vector();
  REQUIRE_MESSAGE(x.size() == want.size(), x.size(), " elements, expected ", want.size());
  double num = 0, den = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) return INFINITY;
    num += (x[i] - want[i]) * (x[i] - want[i]);
    den += want[i] * want[i];
  }
  if (den == 0) return num == 0 ? 0.0 : INFINITY;
  return std::sqrt(num / den);
}

double relative_error(const Tensor& got, const Tensor& want) { return relative_error(got, to_doubles(want.cpu())); }

namespace {

std::uint64_t seed_of(const std::string& name) { return std::hash<std::string>{}(name) ^ 0x9e3779b97f4a7c15ull; }

Tensors make_inputs(const OpCase& c, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Tensors ins;
  for (const Input& in : c.inputs) {
    Tensor t = Tensor::empty(in.shape);
    Generator g = in.init ? in.init : normal();
    float* p = t.f32();
    for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = g(rng);
    ins.push_back(t);
  }
  return ins;
}

Tensors clone_to(const Tensors& ts, Device d) {
  Tensors out;
  for (const Tensor& t : ts) out.push_back(t.defined() ? t.to(d).clone() : Tensor());
  return out;
}

bool output_differentiable(const OpCase& c, std::size_t k) {
  return c.differentiable_outputs.empty() || (k < c.differentiable_outputs.size() && c.differentiable_outputs[k]);
}

// Random weights R_k for the scalar L = sum_k <R_k, out_k>; zero for outputs without gradient.
Tensors output_weights(const OpCase& c, const Tensors& outs, std::uint64_t seed) {
  std::mt19937_64 rng(seed + 1);
  Tensors r;
  for (std::size_t k = 0; k < outs.size(); ++k) {
    if (output_differentiable(c, k)) r.push_back(Tensor::randn(outs[k].shape(), rng));
    else r.push_back(Tensor::zeros(outs[k].shape()));
  }
  return r;
}

double weighted_sum(const Doubles& outs, const std::vector<std::vector<double>>& r) {
  double s = 0.0;
  for (std::size_t k = 0; k < outs.size(); ++k)
    for (std::size_t i = 0; i < outs[k].size(); ++i) s += r[k][i] * outs[k][i];
  return s;
}

// A CPU f32 tensor's values rounded to bf16 (still f32).
Tensor rounded_bf16(const Tensor& t) {
  Tensor r = t.cpu().clone();
  float* p = r.f32();
  for (std::int64_t i = 0; i < r.numel(); ++i) p[i] = round_bf16(p[i]);
  return r;
}

std::string out_name(const std::string& name, OpPrecision p, std::size_t k) {
  return name + " [" + precision_name(p) + "] output " + std::to_string(k);
}
std::string grad_name(const std::string& name, OpPrecision p, std::size_t i) {
  return name + " [" + precision_name(p) + "] d(input " + std::to_string(i) + ")";
}

void check_below(const std::string& what, double err, double bound) {
  CHECK_MESSAGE(err < bound, what, ": relative error ", err, ", bound ", bound);
}
void check_above(const std::string& what, double err, double bound) {
  CHECK_MESSAGE(err > bound, what, ": relative difference ", err, ", at least ", bound, " expected");
}

// TF32 on the device (see op_check.h): the CPU fp32 result is the reference.
void check_tf32_on_gpu(const std::string& name, const OpCase& c, const PrecisionBound& b) {
  const OpPrecision p = OpPrecision::TF32;
  const std::uint64_t seed = seed_of(name);
  const Tensors originals = make_inputs(c, seed);
  Tensors ins_cpu = clone_to(originals, Device::CPU), ins32 = clone_to(originals, Device::CUDA),
          ins = clone_to(originals, Device::CUDA);
  const Tensors outs_cpu = c.forward(ins_cpu), outs32 = c.forward(ins32);
  Tensors outs;
  {
    PrecisionScope scope(p);
    outs = c.forward(ins);
  }
  REQUIRE(outs.size() == outs_cpu.size());
  for (std::size_t k = 0; k < outs.size(); ++k) {
    const std::string what = out_name(name, p, k);
    REQUIRE_MESSAGE(outs[k].device() == Device::CUDA, what, " is not on the device");
    check_below(what + " vs cpu", relative_error(outs[k], outs_cpu[k]), b.max_error);
    check_below(what + " (fp32 on the device) vs cpu", relative_error(outs32[k], outs_cpu[k]), b.max_fp32_error);
    check_above(what + " vs fp32 on the device", relative_error(outs[k], outs32[k]), b.min_change);
  }
  if (c.backward) {
    const Tensors r = output_weights(c, outs_cpu, seed);
    const Tensors r_dev = clone_to(r, Device::CUDA);
    Tensors in2_cpu = clone_to(originals, Device::CPU), in2_32 = clone_to(originals, Device::CUDA),
            in2 = clone_to(originals, Device::CUDA);
    const Tensors g_cpu = c.backward(in2_cpu, outs_cpu, r), g32 = c.backward(in2_32, outs32, r_dev);
    Tensors g;
    {
      PrecisionScope scope(p);
      g = c.backward(in2, outs, r_dev);
    }
    REQUIRE(g.size() == g_cpu.size());
    for (std::size_t i = 0; i < g.size(); ++i) {
      if (!c.inputs[i].differentiable || !g_cpu[i].defined()) continue;
      const std::string what = grad_name(name, p, i);
      REQUIRE_MESSAGE(g[i].defined(), what, ": no gradient");
      check_below(what + " vs cpu", relative_error(g[i], g_cpu[i]), b.max_error);
      check_below(what + " (fp32 on the device) vs cpu", relative_error(g32[i], g_cpu[i]), b.max_fp32_error);
      if (c.inputs[i].matmul_operand)
        check_above(what + " vs fp32 on the device", relative_error(g[i], g32[i]), b.min_change);
    }
  }
  CHECK_MESSAGE(current_precision() == OpPrecision::FP32, name, ": the TF32 scope did not restore fp32");
}

// BF16 autocast on `device` (see op_check.h): the double reference of the rounded operands.
void check_bf16(const std::string& name, const OpCase& c, const PrecisionBound& b, Device device) {
  const OpPrecision p = OpPrecision::BF16;
  const std::uint64_t seed = seed_of(name);
  const Tensors originals = make_inputs(c, seed);
  Doubles din;  // as autocast hands them to the products
  for (std::size_t i = 0; i < originals.size(); ++i)
    din.push_back(to_doubles(c.inputs[i].matmul_operand ? rounded_bf16(originals[i]) : originals[i]));

  Tensors ins = clone_to(originals, device), ins32 = clone_to(originals, device);
  Tensors outs;
  {
    PrecisionScope scope(p);
    outs = c.forward(ins);
  }
  const Tensors outs32 = c.forward(ins32);
  const Doubles ref = c.reference(din);
  REQUIRE_MESSAGE(outs.size() == ref.size(), name, ": ", outs.size(), " outputs but the reference gives ", ref.size());
  for (std::size_t k = 0; k < outs.size(); ++k) {
    const std::string what = out_name(name, p, k);
    REQUIRE_MESSAGE(outs[k].dtype() == DType::F32, what, " is ", std::string(dtype_name(outs[k].dtype())),
                    ", expected f32");
    REQUIRE_MESSAGE(outs[k].device() == device, what, " is on ", device_name(outs[k].device()));
    check_below(what + " vs double reference", relative_error(outs[k], ref[k]), b.max_error);
    check_above(what + " (fp32, operands not rounded) vs double reference", relative_error(outs32[k], ref[k]),
                b.min_change);
  }
  if (c.backward) {
    REQUIRE_MESSAGE(c.reference_backward, name, ": BF16 needs reference_backward");
    const Tensors r = output_weights(c, outs, seed);
    Tensors r16;  // autocast takes the output gradient of a product as bf16
    Doubles dr;
    for (const Tensor& t : r) {
      r16.push_back(rounded_bf16(t).to(device));
      dr.push_back(to_doubles(r16.back().cpu()));
    }
    Tensors in2 = clone_to(originals, device), in2_32 = clone_to(originals, device);
    Tensors g;
    {
      PrecisionScope scope(p);
      g = c.backward(in2, outs, r16);
    }
    const Tensors g32 = c.backward(in2_32, outs32, clone_to(r, device));
    const Doubles gref = c.reference_backward(din, dr);
    REQUIRE(g.size() == c.inputs.size());
    REQUIRE(gref.size() == c.inputs.size());
    for (std::size_t i = 0; i < g.size(); ++i) {
      if (!c.inputs[i].differentiable) continue;
      const std::string what = grad_name(name, p, i);
      REQUIRE_MESSAGE(g[i].defined(), what, ": no gradient");
      check_below(what + " vs double reference", relative_error(g[i], gref[i]), b.max_error);
      if (c.inputs[i].matmul_operand)
        check_above(what + " (fp32, operands not rounded) vs double reference", relative_error(g32[i], gref[i]),
                    b.min_change);
    }
  }
  CHECK_MESSAGE(current_precision() == OpPrecision::FP32, name, ": the BF16 scope did not restore fp32");
}

void check_fp32_on_cpu(const std::string& name, const OpCase& c) {
  const std::uint64_t seed = seed_of(name);
  const Tensors originals = make_inputs(c, seed);
  Doubles din;
  for (const Tensor& t : originals) din.push_back(to_doubles(t));

  Tensors ins = clone_to(originals, Device::CPU);
  const Tensors outs = c.forward(ins);
  const Doubles ref = c.reference(din);
  REQUIRE_MESSAGE(outs.size() == ref.size(), name, ": ", outs.size(), " outputs but the reference gives ", ref.size());
  for (std::size_t k = 0; k < outs.size(); ++k)
    expect_close(name + " output " + std::to_string(k) + " vs double reference", outs[k].to_vector(), ref[k],
                 c.forward_tol);

  if (!c.backward) return;
  const Tensors r = output_weights(c, outs, seed);
  std::vector<std::vector<double>> rd;
  for (const Tensor& t : r) rd.push_back(to_doubles(t));
  Tensors ins2 = clone_to(originals, Device::CPU);
  const Tensors grads = c.backward(ins2, outs, r);
  REQUIRE_MESSAGE(grads.size() == c.inputs.size(), name, ": backward returned ", grads.size(), " gradients for ",
                  c.inputs.size(), " inputs");

  std::mt19937_64 pick(seed + 2);
  for (std::size_t i = 0; i < c.inputs.size(); ++i) {
    if (!c.inputs[i].differentiable) continue;
    REQUIRE_MESSAGE(grads[i].defined(), name, ": no gradient for input ", i);
    REQUIRE_MESSAGE(grads[i].shape() == originals[i].shape(), name, ": gradient of input ", i, " has shape ",
                    shape_str(grads[i].shape()), ", expected ", shape_str(originals[i].shape()));
    const std::vector<float> g = grads[i].to_vector();
    const std::size_t n = din[i].size();
    std::vector<std::size_t> idx(n);
    for (std::size_t j = 0; j < n; ++j) idx[j] = j;
    if (n > static_cast<std::size_t>(c.fd_samples)) {
      std::shuffle(idx.begin(), idx.end(), pick);
      idx.resize(c.fd_samples);
    }
    std::vector<float> analytic;
    std::vector<double> numeric;
    for (std::size_t j : idx) {
      Doubles d = din;
      const double x = din[i][j];
      const double h = c.fd_step * std::max(1.0, std::fabs(x));
      d[i][j] = x + h;
      const double lp = weighted_sum(c.reference(d), rd);
      d[i][j] = x - h;
      const double lm = weighted_sum(c.reference(d), rd);
      numeric.push_back((lp - lm) / (2 * h));
      analytic.push_back(g[j]);
    }
    expect_close(name + " d(input " + std::to_string(i) + ") vs finite differences", analytic, numeric, c.grad_tol);
  }
}

void check_fp32_on_gpu(const std::string& name, const OpCase& c) {
  const std::uint64_t seed = seed_of(name);
  const Tensors originals = make_inputs(c, seed);
  const std::string dev = device_name(Device::CUDA);

  Tensors ins_cpu = clone_to(originals, Device::CPU);
  Tensors ins_dev = clone_to(originals, Device::CUDA);
  const Tensors outs_cpu = c.forward(ins_cpu);
  const Tensors outs_dev = c.forward(ins_dev);
  REQUIRE(outs_cpu.size() == outs_dev.size());
  for (std::size_t k = 0; k < outs_cpu.size(); ++k) {
    REQUIRE_MESSAGE(outs_dev[k].device() == Device::CUDA, name, ": output ", k, " is not on the device");
    expect_close(name + " output " + std::to_string(k) + " " + dev + " vs cpu", outs_dev[k], outs_cpu[k],
                 c.device_tol);
  }
  // Inputs the op updates in place (running statistics, optimiser state) must agree too.
  for (std::size_t i = 0; i < originals.size(); ++i)
    expect_close(name + " input " + std::to_string(i) + " after forward, " + dev + " vs cpu", ins_dev[i], ins_cpu[i],
                 c.device_tol);

  if (!c.backward) return;
  const Tensors r = output_weights(c, outs_cpu, seed);
  Tensors r_dev = clone_to(r, Device::CUDA);
  Tensors in2_cpu = clone_to(originals, Device::CPU);
  Tensors in2_dev = clone_to(originals, Device::CUDA);
  const Tensors g_cpu = c.backward(in2_cpu, outs_cpu, r);
  const Tensors g_dev = c.backward(in2_dev, outs_dev, r_dev);
  REQUIRE(g_cpu.size() == g_dev.size());
  for (std::size_t i = 0; i < g_cpu.size(); ++i) {
    if (!c.inputs[i].differentiable || !g_cpu[i].defined()) continue;
    REQUIRE_MESSAGE(g_dev[i].defined(), name, ": no ", dev, " gradient for input ", i);
    expect_close(name + " d(input " + std::to_string(i) + ") " + dev + " vs cpu", g_dev[i], g_cpu[i],
                 c.device_grad_tol);
  }
}

// Every listed precision is a lower one with a bound (fp32 always runs, with the Tol fields).
void check_precision_list(const std::string& name, const OpCase& c) {
  for (const PrecisionBound& b : c.precisions)
    REQUIRE_MESSAGE((b.precision != OpPrecision::FP32 && b.max_error > 0), name, ": OpCase::precisions lists ",
                    std::string(precision_name(b.precision)), " with bound ", b.max_error,
                    " (list TF32 / BF16 with a bound > 0; fp32 always runs, with the Tol fields)");
}

}  // namespace

void check_op_on_cpu(const std::string& name, const OpCase& c) {
  REQUIRE(c.forward);
  REQUIRE(c.reference);
  check_precision_list(name, c);
  check_fp32_on_cpu(name, c);
  for (const PrecisionBound& b : c.precisions)
    if (b.precision == OpPrecision::BF16) check_bf16(name, c, b, Device::CPU);
  // TF32 leaves CPU results as they are: checked on the device only.
}

void check_op_on_gpu(const std::string& name, const OpCase& c) {
  if (!backend::has_device()) {
    FAIL("CXR_REQUIRE_GPU=1 but no CUDA device was found (" << backend::device_description() << ")");
  }
  check_precision_list(name, c);
  auto check_all = [&] {
    check_fp32_on_gpu(name, c);
    for (const PrecisionBound& b : c.precisions) {
      if (b.precision == OpPrecision::TF32) check_tf32_on_gpu(name, c, b);
      if (b.precision == OpPrecision::BF16) check_bf16(name, c, b, Device::CUDA);
    }
  };
  check_all();
  // On a real GPU, the same case again on the library path (--kernels library: cuDNN and
  // cuBLASLt where the op has them, kernels/library.h), against the same CPU results and bounds.
  if (!backend::is_emulated()) {
    INFO("--kernels library");
    const ExecutionScope library({.kernels = KernelChoice::Library});
    check_all();
  }
}

bool gpu_required() {
  const char* v = std::getenv("CXR_REQUIRE_GPU");
  return v && std::string(v) == "1";
}

const char* gpu_suite() { return backend::is_emulated() ? "cuda-emu" : "cuda"; }
const char* gpu_suite_slow() { return backend::is_emulated() ? "cuda-emu-slow" : "cuda"; }

bool skip_gpu_cases() { return !backend::has_device() && !gpu_required(); }

}  // namespace cxr::test
