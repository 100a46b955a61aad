// GEMM benchmarks, GFLOP/s (2 M N K per call), square row-major C = A B:
//   cpu/blocked/<n>   cpu::sgemm (packed, register-tiled, OpenMP; all OMP threads)
//   cpu/naive/<n>     cpu::gemm_reference<float> (the triple loop), n <= 512
//   cuda/tiled/<n>    cuda::sgemm (64 x 64 shared-memory tiles), CUDA events
//   cuda/cublas/<n>   cublasSgemm on the same operands (FP32, no TF32), CUDA events
//   cuda/tiled_tf32/<n>, cuda/cublas_tf32/<n>: the same with TF32 tensor cores
//                     (ExecutionScope({.allow_tf32 = true}) / CUBLAS_TF32_TENSOR_OP_MATH)
//   cuda/tiled_bf16/<n>  cuda::gemm_bf16: bf16 A and B, f32 C, BF16 tensor cores
//   cuda/cublas_bf16/<n> cublasGemmEx on the same bf16 operands, f32 C, CUBLAS_COMPUTE_32F
//   cpu/linear/<layer>/<pass>  cpu::sgemm on the products of a linear layer as kernels/cpu/linear.cpp
//                     calls them (fwd: y = x w^T; dx = dy w; dw = dy^T x), at ConvNeXt-Tiny's MLP
//                     sizes for batch 16 at 224 px (rows = 16 H W pixels, C -> 4C and 4C -> C)
// GPU rows skip with "no GPU" on machines without one (and on the emulated device).
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cast.h"
#include "kernels/execution.h"
#include "kernels/gemm.h"
#include "tensor/backend.h"
#include "tensor/stream.h"
#include "tensor/tensor.h"

#if defined(CXR_HAVE_CUDNN)  // cuBLAS is linked whenever cuDNN is (CXR_CUDA builds)
#include <cublas_v2.h>
#endif

using namespace cxr;

namespace {

bool have_gpu() { return backend::has_device() && !backend::is_emulated(); }

void set_flops(benchmark::State& st, double flops) {
  st.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void cpu_blocked(benchmark::State& st) {
  const std::int64_t n = st.range(0);
  std::mt19937_64 rng(1);
  Tensor a = Tensor::randn({n, n}, rng), b = Tensor::randn({n, n}, rng), c = Tensor::zeros({n, n});
  for (auto _ : st) {
    cpu::sgemm(false, false, n, n, n, 1.f, a.f32(), n, b.f32(), n, 0.f, c.f32(), n);
    benchmark::ClobberMemory();
  }
  set_flops(st, 2.0 * n * n * n);
}

void cpu_naive(benchmark::State& st) {
  const std::int64_t n = st.range(0);
  std::mt19937_64 rng(1);
  Tensor a = Tensor::randn({n, n}, rng), b = Tensor::randn({n, n}, rng), c = Tensor::zeros({n, n});
  for (auto _ : st) {
    cpu::gemm_reference<float>(false, false, n, n, n, 1.f, a.f32(), n, b.f32(), n, 0.f, c.f32(), n);
    benchmark::ClobberMemory();
  }
  set_flops(st, 2.0 * n * n * n);
}

// One product of a linear layer with `rows` input rows, `in` -> `out` features.
enum class LinearPass { Forward, Data, Weight };
void cpu_linear(benchmark::State& st, std::int64_t rows, std::int64_t in, std::int64_t out, LinearPass pass) {
  std::mt19937_64 rng(1);
  Tensor x = Tensor::randn({rows, in}, rng), w = Tensor::randn({out, in}, rng), dy = Tensor::randn({rows, out}, rng);
  Tensor y = Tensor::empty({rows, out}), dx = Tensor::empty({rows, in}), dw = Tensor::empty({out, in});
  for (auto _ : st) {
    if (pass == LinearPass::Forward)
      cpu::sgemm(false, true, rows, out, in, 1.f, x.f32(), in, w.f32(), in, 0.f, y.f32(), out);
    else if (pass == LinearPass::Data)
      cpu::sgemm(false, false, rows, in, out, 1.f, dy.f32(), out, w.f32(), in, 0.f, dx.f32(), in);
    else
      cpu::sgemm(true, false, out, in, rows, 1.f, dy.f32(), out, x.f32(), in, 0.f, dw.f32(), in);
    benchmark::ClobberMemory();
  }
  set_flops(st, 2.0 * rows * in * out);
}
void register_linear_rows() {
  struct Layer {
    const char* name;
    std::int64_t rows, in, out;
  };
  const Layer layers[] = {{"cnxt_s1_fc1_96x384", 16 * 56 * 56, 96, 384},
                          {"cnxt_s1_fc2_384x96", 16 * 56 * 56, 384, 96},
                          {"cnxt_s3_fc1_384x1536", 16 * 14 * 14, 384, 1536},
                          {"cnxt_s3_fc2_1536x384", 16 * 14 * 14, 1536, 384}};
  const std::pair<const char*, LinearPass> passes[] = {
      {"fwd", LinearPass::Forward}, {"bwd_data", LinearPass::Data}, {"bwd_weight", LinearPass::Weight}};
  for (const Layer& l : layers)
    for (const auto& [pass_name, pass] : passes)
      benchmark::RegisterBenchmark((std::string("gemm/cpu/linear/") + l.name + "/" + pass_name).c_str(), cpu_linear,
                                   l.rows, l.in, l.out, pass)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
}
const bool linear_rows_registered = (register_linear_rows(), true);
// Times `op` with CUDA events on the compute stream, after warm-up.
template <class Op>
void time_gpu(benchmark::State& st, double flops, Op op) {
  for (int i = 0; i < 3; ++i) op();
  backend::synchronize();
  Event start(true), stop(true);
  for (auto _ : st) {
    start.record(Stream::compute());
    op();
    stop.record(Stream::compute());
    stop.synchronize();
    st.SetIterationTime(stop.elapsed_ms_since(start) * 1e-3);
  }
  set_flops(st, flops);
}

void cuda_tiled(benchmark::State& st, bool tf32) {
  if (!have_gpu()) return st.SkipWithError("no GPU");
  ExecutionScope scope({.allow_tf32 = tf32});
  const std::int64_t n = st.range(0);
  std::mt19937_64 rng(1);
  Tensor a = Tensor::randn({n, n}, rng, 0.f, 1.f, Device::CUDA), b = Tensor::randn({n, n}, rng, 0.f, 1.f, Device::CUDA);
  Tensor c = Tensor::empty({n, n}, DType::F32, Device::CUDA);
  time_gpu(st, 2.0 * n * n * n,
           [&] { cuda::sgemm(false, false, n, n, n, 1.f, a.f32(), n, b.f32(), n, 0.f, c.f32(), n); });
}

void cuda_cublas(benchmark::State& st, bool tf32) {
#if defined(CXR_HAVE_CUDNN)
  if (!have_gpu()) return st.SkipWithError("no GPU");
  const int n = static_cast<int>(st.range(0));
  std::mt19937_64 rng(1);
  Tensor a = Tensor::randn({n, n}, rng, 0.f, 1.f, Device::CUDA), b = Tensor::randn({n, n}, rng, 0.f, 1.f, Device::CUDA);
  Tensor c = Tensor::empty({n, n}, DType::F32, Device::CUDA);
  cublasHandle_t h;
  if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) return st.SkipWithError("cublasCreate failed");
  cublasSetStream(h, static_cast<cudaStream_t>(backend::compute_stream_handle()));
  cublasSetMathMode(h, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH);  // like the tiled kernel
  const float one = 1.f, zero = 0.f;
  // Row-major C = A B is column-major C^T = B^T A^T.
  time_gpu(st, 2.0 * n * n * n,
           [&] { cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, b.f32(), n, a.f32(), n, &zero, c.f32(), n); });
  cublasDestroy(h);
#else
  (void)tf32;
  st.SkipWithError("built without cuBLAS");
#endif
}

void cuda_tiled_bf16(benchmark::State& st) {
  if (!have_gpu()) return st.SkipWithError("no GPU");
  const std::int64_t n = st.range(0);
  std::mt19937_64 rng(1);
  const Tensor a = to_bf16(Tensor::randn({n, n}, rng, 0.f, 1.f, Device::CUDA));
  const Tensor b = to_bf16(Tensor::randn({n, n}, rng, 0.f, 1.f, Device::CUDA));
  Tensor c = Tensor::empty({n, n}, DType::F32, Device::CUDA);
  time_gpu(st, 2.0 * n * n * n, [&] {
    cuda::gemm_bf16(false, false, n, n, n, a.data<std::uint16_t>(), n, b.data<std::uint16_t>(), n, c.f32(), n);
  });
}

void cuda_cublas_bf16(benchmark::State& st) {
#if defined(CXR_HAVE_CUDNN)
  if (!have_gpu()) return st.SkipWithError("no GPU");
  const int n = static_cast<int>(st.range(0));
  std::mt19937_64 rng(1);
  const Tensor a = to_bf16(Tensor::randn({n, n}, rng, 0.f, 1.f, Device::CUDA));
  const Tensor b = to_bf16(Tensor::randn({n, n}, rng, 0.f, 1.f, Device::CUDA));
  Tensor c = Tensor::empty({n, n}, DType::F32, Device::CUDA);
  cublasHandle_t h;
  if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) return st.SkipWithError("cublasCreate failed");
  cublasSetStream(h, static_cast<cudaStream_t>(backend::compute_stream_handle()));
  const float one = 1.f, zero = 0.f;
  // Row-major C = A B is column-major C^T = B^T A^T.
  time_gpu(st, 2.0 * n * n * n, [&] {
    cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, b.raw_data(), CUDA_R_16BF, n, a.raw_data(), CUDA_R_16BF, n,
                 &zero, c.raw_data(), CUDA_R_32F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  });
  cublasDestroy(h);
#else
  st.SkipWithError("built without cuBLAS");
#endif
}

}  // namespace

BENCHMARK(cpu_blocked)->Name("gemm/cpu/blocked")->Arg(256)->Arg(512)->Arg(1024)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(cpu_naive)->Name("gemm/cpu/naive")->Arg(256)->Arg(512)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(cuda_tiled, fp32, false)->Name("gemm/cuda/tiled")->Arg(1024)->Arg(2048)->Arg(4096)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(cuda_cublas, fp32, false)->Name("gemm/cuda/cublas")->Arg(1024)->Arg(2048)->Arg(4096)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(cuda_tiled, tf32, true)->Name("gemm/cuda/tiled_tf32")->Arg(1024)->Arg(2048)->Arg(4096)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(cuda_cublas, tf32, true)->Name("gemm/cuda/cublas_tf32")->Arg(1024)->Arg(2048)->Arg(4096)->UseManualTime()->Unit(benchmark::kMillisecond);

BENCHMARK(cuda_tiled_bf16)->Name("gemm/cuda/tiled_bf16")->Arg(1024)->Arg(2048)->Arg(4096)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(cuda_cublas_bf16)->Name("gemm/cuda/cublas_bf16")->Arg(1024)->Arg(2048)->Arg(4096)->UseManualTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
