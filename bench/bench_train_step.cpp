// One full training step of a CxrModel, images/s (issue 5, point 9: "speed"):
//   forward_heads -> fused cxr_loss (random targets, box masks, pos_weight) -> zero_grad_deferred ->
//   backward_heads (no input gradient, as the trainer) -> settle_grads -> AdamW over every parameter.
// Rows, name train_step/<device>/<model>/<pixels>/<batch>:
//   train_step/cpu/<model>/64/32           all OpenMP threads (OMP_NUM_THREADS), wall clock;
//   train_step/cpu/<model>/224/16          every architecture of model_names()
//   train_step/cpu/resnet18/64/16          (scripts/bench_cpu_vs_pytorch runs them all, one
//                                          row per process, beside PyTorch; a 224 px row of a
//                                          large model takes minutes on 2 cores)
//   train_step/cuda/<model>/224/128        fp32, skipped without a real GPU (and on cuda-emu);
//                                          models resnet50, efficientnet_b0, densenet121
//   train_step/cuda_tf32/<model>/224/128   the same with TF32 tensor cores (execution setting allow_tf32)
//   train_step/cuda_bf16/<model>/224/128   mixed precision (execution setting precision bf16, fp32 weights)
//   train_step/library/<model>/224/128     the three rows above with --kernels library (cuDNN
//   train_step/library_tf32/<model>/...    convolutions and batch norm, cuBLASLt linear layers:
//   train_step/library_bf16/<model>/...    kernels/library.h): how far the hand-written kernels
//                                          are from the libraries in a whole step
//   train_step/<any cuda or library row>_graph/...    the same step captured once as a CUDA graph after the
//                                          warm-up and replayed (train_cxr --cuda-graph): the
//                                          launch overhead taken out. The replays repeat the
//                                          captured AdamW step count (the trainer keeps it on
//                                          the device); the work per step is the same. Their
//                                          peak_MiB adds the graph's memory pool.
// Counters: items_per_second = images/s; omp_threads; on the CPU the mean time per step
// of each phase (fwd_ms, loss_ms, bwd_ms, opt_ms); on CUDA peak_MiB = the allocator's
// high-water mark over the timed steps (reset after the warm-up; it includes the weights,
// gradients and AdamW state, as torch.cuda.max_memory_allocated does).
// Warm-up steps come first (CXR_TRAIN_WARMUP, default 3), then a fixed number of timed steps
// (CXR_TRAIN_STEPS, default 10 on the CPU and 30 on CUDA), one benchmark run per row.
// scripts/bench_train_vs_pytorch runs this and scripts/bench_train_pytorch.py side by side.
//   OMP_NUM_THREADS=2 build/release/bench_train_step --benchmark_filter=cpu/resnet18/px:64/
#include <benchmark/benchmark.h>

#include <omp.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/cxr_loss.h"
#include "kernels/execution.h"
#include "kernels/library.h"
#include "kernels/optimizer_step.h"
#include "layers/init.h"
#include "models/model_factory.h"
#include "tensor/allocator.h"
#include "tensor/backend.h"
#include "tensor/stream.h"
#include "tensor/tensor.h"

using namespace cxr;

namespace {

constexpr int kClasses = 14;

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

bool have_gpu() { return backend::has_device() && !backend::is_emulated(); }

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

struct TrainStep {
  Device dev;
  std::unique_ptr<CxrModel> model;
  Tensor x, y, pw, t, mask;
  std::vector<Tensor> params, grads, exp_avg, exp_avg_sq;
  std::vector<Parameter*> parameters;
  AdamWOptions opt;  // torch.optim.AdamW defaults: lr 1e-3, weight decay 1e-2 on every tensor
  std::int64_t step = 0;
  double fwd_ms = 0, loss_ms = 0, bwd_ms = 0, opt_ms = 0;  // host wall clock, CPU only

  TrainStep(const std::string& arch, int pixels, int batch, Device d) : dev(d) {
    manual_seed(0);
    model = make_model(arch, kClasses);
    model->to(dev);
    model->train();
    model->set_input_grad(false);
    std::mt19937_64 rng(1);
    x = Tensor::randn({batch, 3, pixels, pixels}, rng, 0.f, 1.f, dev);
    // Targets: labels ~ Bernoulli(0.3), a box for every positive label, pos_weight in [1, 5].
    std::vector<float> yv(static_cast<std::size_t>(batch) * kClasses);
    std::bernoulli_distribution pos(0.3);
    for (float& v : yv) v = pos(rng) ? 1.f : 0.f;
    y = Tensor::from_vector(yv, {batch, kClasses}, dev);
    mask = Tensor::from_vector(yv, {batch, kClasses}, dev);
    pw = Tensor::uniform({kClasses}, rng, 1.f, 5.f, dev);
    t = Tensor::uniform({batch, kClasses, kBoxCoords}, rng, 0.f, 1.f, dev);
    model->zero_grad();
    for (auto& [name, p] : model->named_parameters()) {
      parameters.push_back(p);
      params.push_back(p->value);
      grads.push_back(p->grad);
      exp_avg.push_back(Tensor::zeros(p->value.shape(), DType::F32, dev));
      exp_avg_sq.push_back(Tensor::zeros(p->value.shape(), DType::F32, dev));
    }
  }

  void run(bool timed_phases) {
    auto t0 = Clock::now();
    HeadOutputs out = model->forward_heads(x);
    if (timed_phases) fwd_ms += ms_since(t0), t0 = Clock::now();
    CxrLoss l = cxr_loss(out.logits, y, pw, out.boxes, t, mask, 1.f);
    if (timed_phases) loss_ms += ms_since(t0), t0 = Clock::now();
    model->zero_grad_deferred();  // as TrainStep: the backward's gradients replace the old ones
    model->backward_heads(l.dz, l.db);
    model->settle_grads();
    if (timed_phases) bwd_ms += ms_since(t0), t0 = Clock::now();
    for (std::size_t i = 0; i < parameters.size(); ++i) grads[i] = parameters[i]->grad;  // may be new tensors
    adamw_step(params, grads, exp_avg, exp_avg_sq, ++step, opt);
    if (timed_phases) opt_ms += ms_since(t0);
    benchmark::DoNotOptimize(l.loss);
  }
};

enum class Math { Fp32, Tf32, Bf16 };

void bench_train(benchmark::State& st, const std::string& arch, Device dev, Math math, bool graph,
                 KernelChoice kernels) {
  ExecutionScope kernel_choice({.kernels = kernels});
  ExecutionScope tf32({.allow_tf32 = math == Math::Tf32});
  ExecutionScope bf16({.precision = math == Math::Bf16 ? Precision::BF16 : Precision::FP32});
  const int pixels = static_cast<int>(st.range(0));
  const int batch = static_cast<int>(st.range(1));
  if (dev == Device::CUDA && !have_gpu()) return st.SkipWithError("no GPU");
  if (kernels == KernelChoice::Library) {
    try {
      library::require(dev);
    } catch (const Error& e) {
      return st.SkipWithError(e.what());
    }
  }
  TrainStep ts(arch, pixels, batch, dev);
  const int warmup = env_int("CXR_TRAIN_WARMUP", 3);
  for (int i = 0; i < warmup; ++i) ts.run(false);
  const bool cpu = dev == Device::CPU;
  if (!cpu) {
    backend::synchronize();
    reset_peak_device_memory();
  }
  Graph step_graph;
  if (graph) {
    step_graph.begin_capture(Stream::compute());
    ts.run(false);
    step_graph.end_capture();
    backend::synchronize();
    reset_peak_device_memory();
  }
  for (auto _ : st) {
    if (graph) step_graph.replay();
    else ts.run(cpu);
    if (!cpu) backend::synchronize();
  }
  st.SetItemsProcessed(st.iterations() * batch);
  st.counters["omp_threads"] = omp_get_max_threads();
  st.counters["batch"] = batch;
  if (cpu) {
    const double n = static_cast<double>(st.iterations());
    st.counters["fwd_ms"] = ts.fwd_ms / n;
    st.counters["loss_ms"] = ts.loss_ms / n;
    st.counters["bwd_ms"] = ts.bwd_ms / n;
    st.counters["opt_ms"] = ts.opt_ms / n;
  } else {
    // A replay allocates nothing: its temporaries live in the graph's pool, reserved at the
    // capture, so the pool is added (an upper bound where a pool block outlives the step).
    const DeviceMemoryStats m = device_memory_stats();
    const std::size_t peak = m.peak_in_use + (graph ? m.graph_pool_reserved : 0);
    st.counters["peak_MiB"] = static_cast<double>(peak) / (1024.0 * 1024.0);
  }
}

void register_all() {
  const int cpu_steps = env_int("CXR_TRAIN_STEPS", 10);
  const int gpu_steps = env_int("CXR_TRAIN_STEPS", 30);
  // CPU: every architecture at 64 px batch 32 and 224 px batch 16 (resnet18 also 64 px batch
  // 16, the row of issue 5); a new architecture of model_names() gets its rows without an edit.
  for (const std::string& arch : model_names()) {
    auto* b = benchmark::RegisterBenchmark(("train_step/cpu/" + arch).c_str(), bench_train, arch, Device::CPU,
                                           Math::Fp32, false, KernelChoice::Cxr);
    b->ArgNames({"px", "batch"})->Args({64, 32});
    if (arch == "resnet18") b->Args({64, 16});
    b->Args({224, 16})->Iterations(cpu_steps)->UseRealTime()->Unit(benchmark::kMillisecond);
  }
  const std::pair<Math, const char*> maths[] = {{Math::Fp32, ""}, {Math::Tf32, "_tf32"}, {Math::Bf16, "_bf16"}};
  for (KernelChoice kernels : {KernelChoice::Cxr, KernelChoice::Library})
    for (bool graph : {false, true})
      for (const char* arch : {"resnet50", "efficientnet_b0", "densenet121"})
        for (const auto& [math, suffix] : maths)
          benchmark::RegisterBenchmark(
              (std::string("train_step/") + (kernels == KernelChoice::Library ? "library" : "cuda") + suffix +
               (graph ? "_graph/" : "/") + arch)
                  .c_str(),
              bench_train, std::string(arch), Device::CUDA, Math(math), graph, kernels)
            ->ArgNames({"px", "batch"})
            ->Args({224, 128})
            ->Iterations(gpu_steps)
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
