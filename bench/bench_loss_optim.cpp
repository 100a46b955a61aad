// Fused loss, optimiser steps and the gradient norm, CPU and CUDA.
//   cxr_loss           N = 64, 256 samples x 14 classes (+ 4 box coordinates each)
//   adamw / sgd        over ResNet-50's parameter list (161 tensors, 25,557,032 floats)
//   grad_norm          the same list (norm + clip coefficient, the clip stays on the device)
// Counters: GB/s of the minimum traffic (AdamW 28 B/param, SGD with momentum 20 B/param,
// norm 4 B/param, loss 64 B/(sample, class)). GPU times from CUDA events (manual time).
//   build/bench_loss_optim --benchmark_filter=cpu
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "kernels/cxr_loss.h"
#include "kernels/optimizer_step.h"
#include "kernels/reduce.h"
#include "tensor/backend.h"
#include "tensor/stream.h"
#include "tensor/tensor.h"

using namespace cxr;

namespace {

// torchvision resnet50: conv weights, BN weight + bias, fc weight + bias (161 tensors).
std::vector<Shape> resnet50_parameter_shapes() {
  std::vector<Shape> s;
  auto conv = [&](std::int64_t out, std::int64_t in, std::int64_t k) { s.push_back({out, in, k, k}); };
  auto bn = [&](std::int64_t c) {
    s.push_back({c});
    s.push_back({c});
  };
  conv(64, 3, 7);
  bn(64);
  std::int64_t in = 64;
  const int blocks[4] = {3, 4, 6, 3};
  for (int layer = 0; layer < 4; ++layer) {
    const std::int64_t width = 64 << layer;
    for (int b = 0; b < blocks[layer]; ++b) {
      conv(width, in, 1);
      bn(width);
      conv(width, width, 3);
      bn(width);
      conv(width * 4, width, 1);
      bn(width * 4);
      if (b == 0) {
        conv(width * 4, in, 1);
        bn(width * 4);
      }
      in = width * 4;
    }
  }
  s.push_back({1000, 2048});
  s.push_back({1000});
  return s;
}

// stddev 0: zeros (optimiser state before the first step).
std::vector<Tensor> make_list(Device dev, std::uint64_t seed, float stddev) {
  std::mt19937_64 rng(seed);
  std::vector<Tensor> r;
  for (const Shape& s : resnet50_parameter_shapes())
    r.push_back(stddev > 0.f ? Tensor::randn(s, rng, 0.f, stddev, dev) : Tensor::zeros(s, DType::F32, dev));
  return r;
}

std::int64_t total_numel(const std::vector<Tensor>& ts) {
  std::int64_t n = 0;
  for (const Tensor& t : ts) n += t.numel();
  return n;
}

bool skip_gpu(benchmark::State& state) {
  if (!backend::has_device() || backend::is_emulated()) {
    state.SkipWithError("no GPU");
    return true;
  }
  return false;
}

// Runs fn once per iteration; on the GPU timed with CUDA events.
template <class Fn>
void run(benchmark::State& state, Device dev, double bytes, Fn&& fn) {
  fn();  // warm-up (and the multi-tensor table upload)
  if (dev == Device::CUDA) {
    Event start(true), stop(true);
    for (auto _ : state) {
      start.record(Stream::compute());
      fn();
      stop.record(Stream::compute());
      stop.synchronize();
      state.SetIterationTime(stop.elapsed_ms_since(start) / 1e3);
    }
  } else {
    for (auto _ : state) fn();
  }
  state.counters["GB/s"] =
      benchmark::Counter(bytes * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
}

void BM_cxr_loss(benchmark::State& state, Device dev) {
  if (dev == Device::CUDA && skip_gpu(state)) return;
  const std::int64_t n = state.range(0), c = 14;
  std::mt19937_64 rng(5);
  Tensor z = Tensor::randn({n, c}, rng, 0.f, 2.f, dev), b = Tensor::randn({n, c, 4}, rng, 0.f, 1.f, dev);
  Tensor y = Tensor::uniform({n, c}, rng, 0.f, 1.f, dev), t = Tensor::uniform({n, c, 4}, rng, 0.f, 1.f, dev);
  Tensor m = Tensor::uniform({n, c}, rng, 0.f, 1.f, dev), pw = Tensor::full({c}, 3.f, dev);
  run(state, dev, 64.0 * static_cast<double>(n * c),
      [&] { benchmark::DoNotOptimize(cxr_loss(z, y, pw, b, t, m, 5.f)); });
}

void BM_adamw(benchmark::State& state, Device dev) {
  if (dev == Device::CUDA && skip_gpu(state)) return;
  std::vector<Tensor> p = make_list(dev, 1, 0.02f), g = make_list(dev, 2, 1e-3f), m = make_list(dev, 3, 0.f),
                      v = make_list(dev, 4, 0.f);
  Tensor scale = Tensor::full({1}, 0.5f, dev);
  std::int64_t step = 0;
  run(state, dev, 28.0 * static_cast<double>(total_numel(p)),
      [&] { adamw_step(p, g, m, v, ++step, AdamWOptions{}, scale); });
  state.counters["tensors"] = static_cast<double>(p.size());
}

void BM_sgd(benchmark::State& state, Device dev) {
  if (dev == Device::CUDA && skip_gpu(state)) return;
  std::vector<Tensor> p = make_list(dev, 1, 0.02f), g = make_list(dev, 2, 1e-3f), buf = make_list(dev, 3, 0.f);
  const SgdOptions opt{.lr = 0.1f, .momentum = 0.9f, .dampening = 0.f, .weight_decay = 1e-4f, .nesterov = true};
  std::int64_t step = 0;
  run(state, dev, 20.0 * static_cast<double>(total_numel(p)), [&] { sgd_step(p, g, buf, ++step, opt); });
}

void BM_grad_norm(benchmark::State& state, Device dev) {
  if (dev == Device::CUDA && skip_gpu(state)) return;
  std::vector<Tensor> g = make_list(dev, 2, 1e-3f);
  run(state, dev, 4.0 * static_cast<double>(total_numel(g)), [&] { benchmark::DoNotOptimize(grad_norm(g, 1.0f)); });
}

}  // namespace

BENCHMARK_CAPTURE(BM_cxr_loss, cpu, Device::CPU)->Arg(64)->Arg(256)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_cxr_loss, cuda, Device::CUDA)->Arg(64)->Arg(256)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_adamw, cpu, Device::CPU)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_adamw, cuda, Device::CUDA)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_sgd, cpu, Device::CPU)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_sgd, cuda, Device::CUDA)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_grad_norm, cpu, Device::CPU)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_grad_norm, cuda, Device::CUDA)->UseManualTime()->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
