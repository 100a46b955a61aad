// Pointwise and row-wise ops: activations (forward, backward), dropout, layer norm, ConvNeXt's
// NCHW <-> NHWC permutes, sum, on the
// CPU and on CUDA at ResNet-50 / EfficientNet-B0 / ConvNeXt-Tiny tensor sizes. On the GPU the
// activations run beside cudnnActivationForward on the same tensors.
//
//   build/release/bench_pointwise --benchmark_filter=cpu --benchmark_min_time=0.1
//   build/release/bench_pointwise --benchmark_filter=cuda     (real GPU; skipped otherwise)
//
// All are memory bound: the GB/s counter uses the minimum traffic (inputs read once, outputs
// written once): activation forward 8 B/elem, backward 12 B/elem; dropout 8 B/elem; layer norm
// forward 8 B/elem (+ 8 B/row), backward 12 B/elem; permutes 8 B/elem; sum 4 B/elem. Compare with the memory
// bandwidth (H100 SXM: 3.35 TB/s). CPU at batch 8, CUDA at batch 64.
#include <benchmark/benchmark.h>

#include <cmath>
#include <functional>
#include <random>

#include "kernels/activation.h"
#include "kernels/dropout.h"
#include "kernels/layer_norm.h"
#include "kernels/reduce.h"
#include "bench/bench_util.h"
#include "tensor/backend.h"
#include "tensor/stream.h"
#include "tensor/tensor.h"

#if defined(CXR_HAVE_CUDNN)
#include <cuda_runtime.h>
#include <cudnn.h>
#endif

using namespace cxr;

namespace {

constexpr std::int64_t kCpuBatch = 8;
constexpr std::int64_t kGpuBatch = 64;

struct Size {
  const char* name;
  std::int64_t per_image;  // elements per image
};
const Size kActivationSizes[] = {
    {"r50_relu_64x112x112", 64 * 112 * 112},
    {"r50_relu_256x56x56", 256 * 56 * 56},
    {"r50_relu_2048x7x7", 2048 * 7 * 7},
    {"effb0_silu_96x112x112", 96 * 112 * 112},
    {"effb0_silu_1152x7x7", 1152 * 7 * 7},
};
// ConvNeXt-Tiny's LayerNorm rows: (N*H*W, C).
struct Rows {
  const char* name;
  std::int64_t rows_per_image, C;
};
const Rows kLayerNormRows[] = {{"cnxt_s1_56x56x96", 56 * 56, 96}, {"cnxt_s4_7x7x768", 7 * 7, 768}};

std::int64_t batch(Device d) { return d == Device::CPU ? kCpuBatch : kGpuBatch; }

void run(benchmark::State& st, Device dev, double bytes, const std::function<void()>& op) {
  bench::time_op(st, dev, bytes, op);
}

Tensor random(const Shape& s, Device dev, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  return Tensor::uniform(s, rng, -3.f, 3.f, dev);
}

void activation_fwd(benchmark::State& st, Device dev, Activation a, Size sz) {
  if (bench::skip_without_gpu(st, dev)) return;
  const std::int64_t n = batch(dev) * sz.per_image;
  Tensor x = random({n}, dev, 1);
  run(st, dev, 8.0 * n, [&] { benchmark::DoNotOptimize(activation_forward(a, x)); });
}

void activation_bwd(benchmark::State& st, Device dev, Activation a, Size sz) {
  if (bench::skip_without_gpu(st, dev)) return;
  const std::int64_t n = batch(dev) * sz.per_image;
  Tensor x = random({n}, dev, 1), dy = random({n}, dev, 2);
  run(st, dev, 12.0 * n, [&] { benchmark::DoNotOptimize(activation_backward(a, x, dy)); });
}

#if defined(CXR_HAVE_CUDNN)
void cudnn_activation_fwd(benchmark::State& st, Activation a, Size sz) {
  if (!bench::have_gpu()) {
    st.SkipWithError("no GPU");
    return;
  }
  const std::int64_t n = kGpuBatch * sz.per_image;
  Tensor x = random({n}, Device::CUDA, 1);
  Tensor y = Tensor::empty({n}, DType::F32, Device::CUDA);
  cudnnHandle_t h;
  cudnnCreate(&h);
  cudnnSetStream(h, static_cast<cudaStream_t>(Stream::compute().handle()));
  cudnnTensorDescriptor_t desc;
  cudnnCreateTensorDescriptor(&desc);
  cudnnSetTensor4dDescriptor(desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, 1, static_cast<int>(n));
  cudnnActivationDescriptor_t act;
  cudnnCreateActivationDescriptor(&act);
  const cudnnActivationMode_t mode = a == Activation::ReLU      ? CUDNN_ACTIVATION_RELU
                                     : a == Activation::Sigmoid ? CUDNN_ACTIVATION_SIGMOID
                                                                : CUDNN_ACTIVATION_SWISH;
  cudnnSetActivationDescriptor(act, mode, CUDNN_NOT_PROPAGATE_NAN, 0.0);
  if (mode == CUDNN_ACTIVATION_SWISH) cudnnSetActivationDescriptorSwishBeta(act, 1.0);
  const float one = 1.f, zero = 0.f;
  run(st, Device::CUDA, 8.0 * n, [&] { cudnnActivationForward(h, act, &one, desc, x.f32(), &zero, desc, y.f32()); });
  cudnnDestroyActivationDescriptor(act);
  cudnnDestroyTensorDescriptor(desc);
  cudnnDestroy(h);
}
#endif

void dropout_fwd(benchmark::State& st, Device dev, Size sz) {
  if (bench::skip_without_gpu(st, dev)) return;
  const std::int64_t n = batch(dev) * sz.per_image;
  Tensor x = random({n}, dev, 1);
  DropoutParams p{0.2f, 7, 0, true};
  run(st, dev, 8.0 * n, [&] { benchmark::DoNotOptimize(dropout(x, p)); });
}

void layer_norm_fwd(benchmark::State& st, Device dev, Rows r) {
  if (bench::skip_without_gpu(st, dev)) return;
  const std::int64_t m = batch(dev) * r.rows_per_image;
  Tensor x = random({m, r.C}, dev, 1), w = random({r.C}, dev, 2), b = random({r.C}, dev, 3);
  run(st, dev, 8.0 * m * r.C + 8.0 * m, [&] { benchmark::DoNotOptimize(layer_norm(x, w, b)); });
}

void layer_norm_bwd(benchmark::State& st, Device dev, Rows r) {
  if (bench::skip_without_gpu(st, dev)) return;
  const std::int64_t m = batch(dev) * r.rows_per_image;
  Tensor x = random({m, r.C}, dev, 1), w = random({r.C}, dev, 2), b = random({r.C}, dev, 3);
  Tensor dy = random({m, r.C}, dev, 4);
  LayerNormOutput f = layer_norm(x, w, b);
  run(st, dev, 12.0 * m * r.C, [&] { benchmark::DoNotOptimize(layer_norm_backward(dy, x, w, f.mean, f.rstd)); });
}

// ConvNeXt's permutes: (N, C, H, W) -> (N, H, W, C) made contiguous, and back.
void permute_nhwc(benchmark::State& st, Device dev, Rows r, bool to_channels_last) {
  if (bench::skip_without_gpu(st, dev)) return;
  const std::int64_t N = batch(dev), HW = r.rows_per_image;
  const std::int64_t side = static_cast<std::int64_t>(std::lround(std::sqrt(static_cast<double>(HW))));
  Tensor x = to_channels_last ? random({N, r.C, side, side}, dev, 1) : random({N, side, side, r.C}, dev, 1);
  const std::vector<int> order = to_channels_last ? std::vector<int>{0, 2, 3, 1} : std::vector<int>{0, 3, 1, 2};
  run(st, dev, 8.0 * N * HW * r.C, [&] { benchmark::DoNotOptimize(x.permute(order).contiguous()); });
}

void sum_all(benchmark::State& st, Device dev, Size sz) {
  if (bench::skip_without_gpu(st, dev)) return;
  const std::int64_t n = batch(dev) * sz.per_image;
  Tensor x = random({n}, dev, 1);
  run(st, dev, 4.0 * n, [&] { benchmark::DoNotOptimize(sum(x)); });
}

const char* dev_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

void register_all() {
  for (Device dev : {Device::CPU, Device::CUDA}) {
    for (const Size& sz : kActivationSizes) {
      for (Activation a : {Activation::ReLU, Activation::SiLU, Activation::GELU}) {
        const std::string base = std::string(activation_name(a)) + "/" + dev_name(dev) + "/" + sz.name;
        auto* f = benchmark::RegisterBenchmark((base + "/forward").c_str(), activation_fwd, dev, a, sz);
        auto* b = benchmark::RegisterBenchmark((base + "/backward").c_str(), activation_bwd, dev, a, sz);
        if (dev == Device::CUDA) {
          f->UseManualTime();
          b->UseManualTime();
        }
      }
#if defined(CXR_HAVE_CUDNN)
      if (dev == Device::CUDA)
        for (Activation a : {Activation::ReLU, Activation::SiLU})
          benchmark::RegisterBenchmark(
              (std::string(activation_name(a)) + "/cudnn/" + sz.name + "/forward").c_str(), cudnn_activation_fwd, a, sz)
              ->UseManualTime();
#endif
      auto* d = benchmark::RegisterBenchmark((std::string("dropout/") + dev_name(dev) + "/" + sz.name).c_str(),
                                             dropout_fwd, dev, sz);
      auto* s = benchmark::RegisterBenchmark((std::string("sum/") + dev_name(dev) + "/" + sz.name).c_str(), sum_all,
                                             dev, sz);
      if (dev == Device::CUDA) {
        d->UseManualTime();
        s->UseManualTime();
      }
    }
    for (const Rows& r : kLayerNormRows) {
      const std::string base = std::string("layer_norm/") + dev_name(dev) + "/" + r.name;
      auto* f = benchmark::RegisterBenchmark((base + "/forward").c_str(), layer_norm_fwd, dev, r);
      auto* b = benchmark::RegisterBenchmark((base + "/backward").c_str(), layer_norm_bwd, dev, r);
      const std::string perm = std::string("permute/") + dev_name(dev) + "/" + r.name;
      auto* p = benchmark::RegisterBenchmark((perm + "/to_nhwc").c_str(), permute_nhwc, dev, r, true);
      auto* q = benchmark::RegisterBenchmark((perm + "/to_nchw").c_str(), permute_nhwc, dev, r, false);
      if (dev == Device::CUDA)
        for (benchmark::internal::Benchmark* x : {f, b, p, q}) x->UseManualTime();
    }
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
