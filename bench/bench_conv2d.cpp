// conv2d benchmarks at ResNet-50 and EfficientNet-B0 layer shapes, GFLOP/s (2 N K P Q C/G R S
// per pass):
//   conv2d/cpu/<pass>/<layer>     the CPU fast path (im2col + blocked GEMM, 1x1 GEMM,
//                                 depthwise loops), batch 2, all OpenMP threads, wall clock
//   conv2d/cpu/<pass>/r18_64_*    the same at every conv shape of ResNet-18 at 64x64 pixels,
//                                 batch 32: the CPU training benchmark (docs/speed.md)
//   conv2d/cpu3x3/<algo>/<pass>/<layer>/batch:<n>
//                                 ResNet's and DenseNet's 3x3 stride-1 convolutions at the
//                                 batches of training and inference, by the direct path
//                                 (implicit im2col + GEMM) and by Winograd F(2x2, 3x3)
//                                 (kernels/cpu/winograd.h): the measurements behind
//                                 conv2d.cpp's winograd_pays
//   conv2d/cuda/<pass>/<layer>    the CUDA kernels (implicit GEMM, depthwise), batch 64
//   conv2d/cudnn/<pass>/<layer>   cuDNN on the same tensors (FP32 FMA math, no TF32; the
//                                 algorithm cuDNN's heuristics rank first), batch 64
// pass: fwd, bwd_data, bwd_weight. GPU rows use CUDA events on the compute stream and skip
// with "no GPU" where there is none (and on the emulated device).
#include <benchmark/benchmark.h>

#include <functional>
#include <random>
#include <string>
#include <utility>

#include "bench/bench_util.h"
#include "kernels/conv2d.h"
#include "kernels/cpu/winograd.h"
#include "tensor/backend.h"
#include "tensor/stream.h"
#include "tensor/tensor.h"

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
    {"r50_64_l1_1x1_64to256x16", 64, 16, 256, 1, 1, 0, 1},
    {"r50_64_l2_1x1_128to512x8", 128, 8, 512, 1, 1, 0, 1},
    {"r50_64_l3_1x1_1024to256x4", 1024, 4, 256, 1, 1, 0, 1},
};

// ResNet's 3x3 stride-1 convolutions: 224 px (layers 1-4) and 64 px; DenseNet's (growth 32).
const Layer kResnet3x3[] = {
    {"r34_l1_3x3_64x56", 64, 56, 64, 3, 1, 1, 1},     {"r34_l2_3x3_128x28", 128, 28, 128, 3, 1, 1, 1},
    {"r34_l3_3x3_256x14", 256, 14, 256, 3, 1, 1, 1},  {"r34_l4_3x3_512x7", 512, 7, 512, 3, 1, 1, 1},
    {"r34_64_l1_3x3_64x16", 64, 16, 64, 3, 1, 1, 1},  {"r34_64_l2_3x3_128x8", 128, 8, 128, 3, 1, 1, 1},
    {"r34_64_l3_3x3_256x4", 256, 4, 256, 3, 1, 1, 1}, {"r34_64_l4_3x3_512x2", 512, 2, 512, 3, 1, 1, 1},
    {"d121_3x3_128to32x56", 128, 56, 32, 3, 1, 1, 1}, {"d121_3x3_128to32x7", 128, 7, 32, 3, 1, 1, 1},
};

using Pass = bench::ConvPass;
const char* pass_name(Pass p) { return bench::conv_pass_name(p); }

constexpr int kCpuBatch = 2;
constexpr int kCpuTrainBatch = 32;
constexpr int kGpuBatch = 64;

using bench::have_gpu;

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
  bench::time_gpu(st, op);
  set_flops(st, flops);
}

void bench_cpu(benchmark::State& st, Layer l, Pass pass, int batch) {
  Problem pr(l, batch, Device::CPU);
  pr.run(pass);  // warm-up: im2col and packing buffers
  for (auto _ : st) pr.run(pass);
  set_flops(st, pr.d.flops());
}

void bench_cpu_3x3(benchmark::State& st, Layer l, Pass pass, int batch, cpu::Conv3x3Algorithm algo) {
  cpu::set_cpu_conv3x3_algorithm(algo);
  bench_cpu(st, l, pass, batch);
  cpu::set_cpu_conv3x3_algorithm(cpu::Conv3x3Algorithm::Auto);
}

void bench_cuda(benchmark::State& st, Layer l, Pass pass) {
  if (!have_gpu()) return st.SkipWithError("no GPU");
  Problem pr(l, kGpuBatch, Device::CUDA);
  time_gpu(st, pr.d.flops(), [&] { pr.run(pass); });
}

void bench_cudnn(benchmark::State& st, Layer l, Pass pass) {
#if defined(CXR_HAVE_CUDNN)
  if (!have_gpu()) return st.SkipWithError("no GPU");
  Problem pr(l, kGpuBatch, Device::CUDA);
  bench::CudnnConv conv(pr.d, pass, /*tf32=*/false);
  if (!conv.error().empty()) return st.SkipWithError(conv.error().c_str());
  Tensor y = Tensor::empty({pr.d.N, pr.d.K, pr.d.P, pr.d.Q}, DType::F32, Device::CUDA);
  Tensor dx = Tensor::empty(pr.x.shape(), DType::F32, Device::CUDA);
  Tensor dw = Tensor::empty(pr.w.shape(), DType::F32, Device::CUDA);
  std::function<void()> op;
  switch (pass) {
    case Pass::Fwd: op = [&] { conv.run(pr.x.f32(), pr.w.f32(), y.f32()); }; break;
    case Pass::BwdData: op = [&] { conv.run(pr.dy.f32(), pr.w.f32(), dx.f32()); }; break;
    case Pass::BwdWeight: op = [&] { conv.run(pr.x.f32(), pr.dy.f32(), dw.f32()); }; break;
  }
  time_gpu(st, pr.d.flops(), op);
  if (!conv.error().empty()) st.SkipWithError(conv.error().c_str());
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
  for (const auto& [algo, name] : {std::pair{cpu::Conv3x3Algorithm::Direct, "direct"},
                                   std::pair{cpu::Conv3x3Algorithm::Winograd, "winograd"}})
    for (Pass pass : {Pass::Fwd, Pass::BwdData, Pass::BwdWeight})
      for (const Layer& l : kResnet3x3)
        for (int batch : {1, 16, 32})
          benchmark::RegisterBenchmark(("conv2d/cpu3x3/" + std::string(name) + "/" + pass_name(pass) + "/" + l.name +
                                        "/batch:" + std::to_string(batch))
                                           .c_str(),
                                       bench_cpu_3x3, l, pass, batch, algo)
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
