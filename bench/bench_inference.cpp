// Inference throughput of a CxrModel on the CPU, images/s: what `train_cxr predict` / `eval`
// spend per batch, without the loader.
//   model.eval(), NoGradGuard (nothing cached for a backward), a FrozenWeightsScope (the
//   convolutions pack their weights once, in the warm-up, and fold their batch norms into
//   them, as eval and predict do: kernels/cpu/frozen_weights.h, kernels/fold_batch_norm.h),
//   forward_heads(x) -> the sigmoids of both heads (CxrModel::predict): logits (N, 14) and
//   boxes (N, 14, 4). CXR_INFER_FOLD_BN=0 keeps the batch norms in the convolutions' epilogue
//   instead (the execution setting fold_batch_norm off), to compare the two.
// Rows, name inference/cpu/<model>/px:<pixels>/batch:<batch>, for every architecture of
// model_names() (a new one gets its rows without an edit here):
//   inference/cpu/<model>/px:224/batch:1    one image at a time (latency-bound serving)
//   inference/cpu/<model>/px:224/batch:32   a batch (evaluation of a data set)
// All OpenMP threads (OMP_NUM_THREADS), wall clock. Warm-up calls first (CXR_INFER_WARMUP,
// default 2), then a fixed number of timed calls: CXR_INFER_ITERS if set, else 32 / batch
// (at least 2), one benchmark run per row.
// Counters: items_per_second = images/s, omp_threads, batch.
// scripts/bench_cpu_vs_pytorch runs each row beside PyTorch (torch.inference_mode) and ONNX
// Runtime on the same shapes and threads.
//   OMP_NUM_THREADS=2 build/release/bench_inference --benchmark_filter=resnet50/px:224/batch:1/
#include <benchmark/benchmark.h>

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>

#include "kernels/cpu/frozen_weights.h"
#include "kernels/execution.h"
#include "layers/init.h"
#include "layers/module.h"
#include "models/model_factory.h"
#include "tensor/tensor.h"

using namespace cxr;

namespace {

constexpr int kClasses = 14;

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

void bench_infer(benchmark::State& st, const std::string& arch) {
  const int pixels = static_cast<int>(st.range(0));
  const int batch = static_cast<int>(st.range(1));
  manual_seed(0);
  std::unique_ptr<CxrModel> model = make_model(arch, kClasses);
  model->eval();
  std::mt19937_64 rng(1);
  const Tensor x = Tensor::randn({batch, 3, pixels, pixels}, rng, 0.f, 1.f, Device::CPU);
  NoGradGuard no_grad;
  const ExecutionScope fold({.fold_batch_norm = env_int("CXR_INFER_FOLD_BN", 1) != 0});
  const cpu::FrozenWeightsScope frozen;  // as train_cxr eval / predict: each weight packed once (in the warm-up)
  const int warmup = env_int("CXR_INFER_WARMUP", 2);
  for (int i = 0; i < warmup; ++i) benchmark::DoNotOptimize(model->predict(x));
  for (auto _ : st) {
    Prediction p = model->predict(x);
    benchmark::DoNotOptimize(p);
  }
  st.SetItemsProcessed(st.iterations() * batch);
  st.counters["omp_threads"] = omp_get_max_threads();
  st.counters["batch"] = batch;
}

void register_all() {
  for (const std::string& arch : model_names())
    for (int batch : {1, 32}) {
      const int iters = env_int("CXR_INFER_ITERS", std::max(2, 32 / batch));
      benchmark::RegisterBenchmark(("inference/cpu/" + arch).c_str(), bench_infer, arch)
          ->ArgNames({"px", "batch"})
          ->Args({224, batch})
          ->Iterations(iters)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
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
