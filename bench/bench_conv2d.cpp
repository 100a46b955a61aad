// conv2d benchmarks at ResNet-50 and EfficientNet-B0 layer shapes, GFLOP/s (2 N K P Q C/G R S
// per pass):
//   conv2d/cpu/<pass>/<layer>     the CPU fast path (im2col + blocked GEMM, 1x1 GEMM,
//                                 depthwise loops), batch 2, all OpenMP threads, wall clock
//   conv2d/cpu/<pass>/r18_64_*    the same at every conv shape of ResNet-18 at 64x64 pixels,
//                                 batch 32: the CPU training benchmark (docs/speed.md)
//   conv2d/cuda/<pass>/<layer>    the CUDA kernels (implicit GEMM, depthwise), batch 64
//   conv2d/cudnn/<pass>/<layer>   cuDNN on the same tensors (FP32 FMA math, no TF32; the
//                                 algorithm cuDNN's heuristics rank first), batch 64
// pass: fwd, bwd_data, bwd_weight. GPU rows use CUDA events on the compute stream and skip
// with "no GPU" where there is none (and on the emulated device).
#include <benchmark/benchmark.h>

#include <functional>
#include <random>
#include <string>

#include "kernels/conv2d.h"
#include "tensor/backend.h"
#include "tensor/stream.h"
#include "tensor/tensor.h"

#if defined(CXR_HAVE_CUDNN)
#include <cuda_runtime.h>
#include <cudnn.h>
#endif

using namespace cxr;

namespace {

struct Layer {
  const char* name;
  int C, H, K, R, stride, pad, groups;
};

const Layer kLayers[] = {
    {"r50_stem_7x7s2_3x224", 3, 224, 64, 7, 2, 3, 1},
    {"r50_l1_3x3_64x56", 64, 56, 64, 3, 1, 1, 1},
    {"r50_l1_1x1_256to64x56", 256, 56, 64, 1, 1, 0, 1},
    {"r50_l1_1x1_64to256x56", 64, 56, 256, 1, 1, 0, 1},
    {"r50_l2_3x3s2_128x56", 128, 56, 128, 3, 2, 1, 1},
    {"r50_l3_3x3_256x14", 256, 14, 256, 3, 1, 1, 1},
    {"r50_l4_3x3_512x7", 512, 7, 512, 3, 1, 1, 1},
    {"effb0_stem_3x3s2_3x224", 3, 224, 32, 3, 2, 1, 1},
    {"effb0_dw3x3_32x112", 32, 112, 32, 3, 1, 1, 32},
    {"effb0_dw3x3s2_96x112", 96, 112, 96, 3, 2, 1, 96},
    {"effb0_dw5x5s2_144x56", 144, 56, 144, 5, 2, 2, 144},
    {"effb0_dw5x5_672x14", 672, 14, 672, 5, 1, 2, 672},
    {"effb0_expand_1x1_40to240x28", 40, 28, 240, 1, 1, 0, 1},
    {"effb0_head_1x1_320to1280x7", 320, 7, 1280, 1, 1, 0, 1},
};

// ResNet-18 at 64x64 (the CPU row of bench_train_step), CPU only, batch kCpuTrainBatch.
const Layer kResnet18At64[] = {
    {"r18_64_stem_7x7s2_3x64", 3, 64, 64, 7, 2, 3, 1},
    {"r18_64_l1_3x3_64x16", 64, 16, 64, 3, 1, 1, 1},
    {"r18_64_l2_3x3s2_64x16", 64, 16, 128, 3, 2, 1, 1},
    {"r18_64_l2_1x1s2_64x16", 64, 16, 128, 1, 2, 0, 1},
    {"r18_64_l2_3x3_128x8", 128, 8, 128, 3, 1, 1, 1},
    {"r18_64_l3_3x3s2_128x8", 128, 8, 256, 3, 2, 1, 1},
    {"r18_64_l3_3x3_256x4", 256, 4, 256, 3, 1, 1, 1},
    {"r18_64_l4_3x3s2_256x4", 256, 4, 512, 3, 2, 1, 1},
    {"r18_64_l4_3x3_512x2", 512, 2, 512, 3, 1, 1, 1},
};

enum class Pass { Fwd, BwdData, BwdWeight };
const char* pass_name(Pass p) { return p == Pass::Fwd ? "fwd" : p == Pass::BwdData ? "bwd_data" : "bwd_weight"; }

constexpr int kCpuBatch = 2;
constexpr int kCpuTrainBatch = 32;
constexpr int kGpuBatch = 64;

bool have_gpu() { return backend::has_device() && !backend::is_emulated(); }

Conv2dParams params_of(const Layer& l) {
  Conv2dParams p;
  p.stride_h = p.stride_w = l.stride;
  p.pad_h = p.pad_w = l.pad;
  p.groups = l.groups;
  return p;
}

struct Problem {
  Conv2dParams p;
  Conv2dDims d;
  Tensor x, w, b, dy;
  Problem(const Layer& l, int N, Device dev) : p(params_of(l)) {
    const Shape xs{N, l.C, l.H, l.H}, ws{l.K, l.C / l.groups, l.R, l.R};
    d = conv2d_dims(xs, ws, p);
    std::mt19937_64 rng(1);
    x = Tensor::randn(xs, rng, 0.f, 1.f, dev);
    w = Tensor::uniform(ws, rng, -0.1f, 0.1f, dev);
    b = Tensor::randn({l.K}, rng, 0.f, 1.f, dev);
    dy = Tensor::randn({d.N, d.K, d.P, d.Q}, rng, 0.f, 1.f, dev);
  }
  void run(Pass pass) {
    switch (pass) {
      case Pass::Fwd: benchmark::DoNotOptimize(conv2d_forward(x, w, b, p)); break;
      case Pass::BwdData: benchmark::DoNotOptimize(conv2d_backward_data(dy, w, x.shape(), p)); break;
      case Pass::BwdWeight: benchmark::DoNotOptimize(conv2d_backward_weight(dy, x, w.shape(), p)); break;
    }
  }
};

void set_flops(benchmark::State& st, double flops) {
  st.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void time_gpu(benchmark::State& st, double flops, const std::function<void()>& op) {
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

void bench_cpu(benchmark::State& st, Layer l, Pass pass, int batch) {
  Problem pr(l, batch, Device::CPU);
  pr.run(pass);  // warm-up: im2col and packing buffers
  for (auto _ : st) pr.run(pass);
  set_flops(st, pr.d.flops());
}

void bench_cuda(benchmark::State& st, Layer l, Pass pass) {
  if (!have_gpu()) return st.SkipWithError("no GPU");
  Problem pr(l, kGpuBatch, Device::CUDA);
  time_gpu(st, pr.d.flops(), [&] { pr.run(pass); });
}

#if defined(CXR_HAVE_CUDNN)
#define CUDNN_OK(expr)                                                    \
  do {                                                                    \
    if ((expr) != CUDNN_STATUS_SUCCESS) return st.SkipWithError(#expr);   \
  } while (0)
#endif

void bench_cudnn(benchmark::State& st, Layer l, Pass pass) {
#if defined(CXR_HAVE_CUDNN)
  if (!have_gpu()) return st.SkipWithError("no GPU");
  Problem pr(l, kGpuBatch, Device::CUDA);
  const Conv2dDims& d = pr.d;
  cudnnHandle_t h;
  cudnnTensorDescriptor_t xd, yd;
  cudnnFilterDescriptor_t wd;
  cudnnConvolutionDescriptor_t cd;
  CUDNN_OK(cudnnCreate(&h));
  CUDNN_OK(cudnnSetStream(h, static_cast<cudaStream_t>(backend::compute_stream_handle())));
  CUDNN_OK(cudnnCreateTensorDescriptor(&xd));
  CUDNN_OK(cudnnCreateTensorDescriptor(&yd));
  CUDNN_OK(cudnnCreateFilterDescriptor(&wd));
  CUDNN_OK(cudnnCreateConvolutionDescriptor(&cd));
  CUDNN_OK(cudnnSetTensor4dDescriptor(xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d.N, d.C, d.H, d.W));
  CUDNN_OK(cudnnSetTensor4dDescriptor(yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d.N, d.K, d.P, d.Q));
  CUDNN_OK(cudnnSetFilter4dDescriptor(wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, d.K, d.C / d.G, d.R, d.S));
  CUDNN_OK(cudnnSetConvolution2dDescriptor(cd, d.ph, d.pw, d.sh, d.sw, 1, 1, CUDNN_CROSS_CORRELATION,
                                           CUDNN_DATA_FLOAT));
  CUDNN_OK(cudnnSetConvolutionGroupCount(cd, d.G));
  CUDNN_OK(cudnnSetConvolutionMathType(cd, CUDNN_FMA_MATH));
  Tensor y = Tensor::empty({d.N, d.K, d.P, d.Q}, DType::F32, Device::CUDA);
  Tensor dx = Tensor::empty(pr.x.shape(), DType::F32, Device::CUDA);
  Tensor dw = Tensor::empty(pr.w.shape(), DType::F32, Device::CUDA);
  const float one = 1.f, zero = 0.f;
  std::size_t bytes = 0;
  int found = 0;
  std::function<void()> op;
  Tensor ws;
  auto workspace = [&](std::size_t n) {
    ws = Tensor::empty({static_cast<std::int64_t>(n / 4 + 1)}, DType::F32, Device::CUDA);
  };
  if (pass == Pass::Fwd) {
    cudnnConvolutionFwdAlgoPerf_t perf;
    CUDNN_OK(cudnnGetConvolutionForwardAlgorithm_v7(h, xd, wd, cd, yd, 1, &found, &perf));
    CUDNN_OK(cudnnGetConvolutionForwardWorkspaceSize(h, xd, wd, cd, yd, perf.algo, &bytes));
    workspace(bytes);
    op = [&, algo = perf.algo] {
      cudnnConvolutionForward(h, &one, xd, pr.x.f32(), wd, pr.w.f32(), cd, algo, ws.f32(), bytes, &zero, yd, y.f32());
    };
  } else if (pass == Pass::BwdData) {
    cudnnConvolutionBwdDataAlgoPerf_t perf;
    CUDNN_OK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, wd, yd, cd, xd, 1, &found, &perf));
    CUDNN_OK(cudnnGetConvolutionBackwardDataWorkspaceSize(h, wd, yd, cd, xd, perf.algo, &bytes));
    workspace(bytes);
    op = [&, algo = perf.algo] {
      cudnnConvolutionBackwardData(h, &one, wd, pr.w.f32(), yd, pr.dy.f32(), cd, algo, ws.f32(), bytes, &zero, xd,
                                   dx.f32());
    };
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t perf;
    CUDNN_OK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, xd, yd, cd, wd, 1, &found, &perf));
    CUDNN_OK(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, xd, yd, cd, wd, perf.algo, &bytes));
    workspace(bytes);
    op = [&, algo = perf.algo] {
      cudnnConvolutionBackwardFilter(h, &one, xd, pr.x.f32(), yd, pr.dy.f32(), cd, algo, ws.f32(), bytes, &zero, wd,
                                     dw.f32());
    };
  }
  time_gpu(st, d.flops(), op);
  cudnnDestroyConvolutionDescriptor(cd);
  cudnnDestroyFilterDescriptor(wd);
  cudnnDestroyTensorDescriptor(yd);
  cudnnDestroyTensorDescriptor(xd);
  cudnnDestroy(h);
#else
  (void)l;
  (void)pass;
  st.SkipWithError("built without cuDNN");
#endif
}

void register_all() {
  for (Pass pass : {Pass::Fwd, Pass::BwdData, Pass::BwdWeight})
    for (const Layer& l : kLayers) {
      const std::string suffix = std::string(pass_name(pass)) + "/" + l.name;
      benchmark::RegisterBenchmark(("conv2d/cpu/" + suffix).c_str(), bench_cpu, l, pass, kCpuBatch)
          ->UseRealTime()  // OpenMP workers' time is not in the main thread's CPU time
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("conv2d/cuda/" + suffix).c_str(), bench_cuda, l, pass)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("conv2d/cudnn/" + suffix).c_str(), bench_cudnn, l, pass)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
    }
  for (Pass pass : {Pass::Fwd, Pass::BwdData, Pass::BwdWeight})
    for (const Layer& l : kResnet18At64)
      benchmark::RegisterBenchmark(("conv2d/cpu/" + std::string(pass_name(pass)) + "/" + l.name).c_str(), bench_cpu,
                                   l, pass, kCpuTrainBatch)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
