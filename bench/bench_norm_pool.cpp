// Batch norm (training forward / backward), max pool, global average pool, residual add and
// SE channel scaling, CPU and CUDA, at ResNet-50 and EfficientNet-B0 layer shapes; DenseNet-121's
// transition pool (avg 2x2/2) and its concatenation copies (transpose_nc) at its shapes.
//
//   build-norm/bench_norm_pool --benchmark_filter=cpu --benchmark_min_time=0.2s
//   build-norm/bench_norm_pool --benchmark_filter=cuda        (real GPU; skipped otherwise)
//
// All these ops are memory bound. The GB/s counter uses the MINIMUM traffic of each op (every
// input read once, every output written once), so it reads directly against the memory
// bandwidth (H100 SXM 3.35 TB/s); kernels that read an input twice (batch norm: a stats pass
// then an apply pass) show below the hardware figure by that factor:
//   bn_train_fwd  min 8 B/elem (x, y)            cxr kernels: 12 B/elem
//   bn_backward   min 12 B/elem (x, dy, dx)      cxr kernels: 20 B/elem
//   max_pool fwd  4 B/in + 8 B/out (y + i32 idx) add 12 B/elem   gap 4 B/in
//   avg_pool fwd  4 B/in + 4 B/out; bwd 4 B/out + 4 B/in          transpose_nc 8 B/elem
//   bn_act_step   a training forward + backward of batch norm + ReLU (r50_*) or SiLU (effb0_*):
//                 min 20 B/elem; "unfused" = BN op (identity), activation op, activation
//                 backward, BN backward (52 B/elem); "fused" = the BN op with the activation
//                 (kernels/batch_norm.h, 32 B/elem);
//                 "fused_bf16" = the same on a bf16 x and y (mixed precision; dy, dx f32):
//                 min 14 B/elem, the kernels 22
//   conv_bn_fwd   convolution + BN + ReLU training forward at ResNet-50 layer1 shapes (GPU only):
//                 "unfused" = conv2d_forward, batch_norm2d_train (stats pass + apply);
//                 "fused" = conv2d_forward_bn_stats (statistics in the conv's epilogue),
//                 batch_norm2d_train_from_stats (apply only): one read of y fewer (4 B/elem of
//                 y); the 1x1 shape then runs the implicit GEMM instead of the batched SGEMM;
//                 "*_bf16": bf16 operands and a bf16 y and output, as under --precision bf16
// GPU timings: CUDA events on the compute stream around one op call (outputs come from the
// caching allocator, as in training), Google Benchmark's manual time. The cuDNN batch norm
// runs beside ours on the same tensors (cudnnBatchNormalizationForwardTraining / Backward).
// CPU runs at batch 8 (OpenMP threads = OMP_NUM_THREADS), CUDA at batch 32.
#include <benchmark/benchmark.h>

#include <functional>
#include <random>
#include <string>

#include "bench/bench_util.h"
#include "kernels/activation.h"
#include "kernels/add.h"
#include "kernels/avg_pool2d.h"
#include "kernels/batch_norm.h"
#include "kernels/cast.h"
#include "kernels/conv2d.h"
#include "kernels/conv2d_bn.h"
#include "kernels/global_avg_pool.h"
#include "kernels/max_pool2d.h"
#include "kernels/scale_channels.h"
#include "kernels/transpose_nc.h"
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
  std::int64_t C, H, W;
};

// Batch-norm layers (the tensors after convolutions).
const Layer kBnLayers[] = {
    {"r50_bn1_64x112x112", 64, 112, 112},  {"r50_l1_256x56x56", 256, 56, 56},   {"r50_l2_512x28x28", 512, 28, 28},
    {"r50_l3_1024x14x14", 1024, 14, 14},   {"r50_l4_2048x7x7", 2048, 7, 7},     {"effb0_stem_32x112x112", 32, 112, 112},
    {"effb0_s2_96x112x112", 96, 112, 112}, {"effb0_s3_144x56x56", 144, 56, 56}, {"effb0_s5_480x14x14", 480, 14, 14},
    {"effb0_head_1280x7x7", 1280, 7, 7},
};
const Layer kAddLayers[] = {{"r50_l1_256x56x56", 256, 56, 56},
                            {"r50_l4_2048x7x7", 2048, 7, 7},
                            {"effb0_s3_40x28x28", 40, 28, 28},
                            {"effb0_s6_192x7x7", 192, 7, 7}};
const Layer kGapLayers[] = {{"r50_2048x7x7", 2048, 7, 7}, {"effb0_1280x7x7", 1280, 7, 7}};
const Layer kScaleLayers[] = {{"effb0_s2_96x56x56", 96, 56, 56}, {"effb0_s6_1152x7x7", 1152, 7, 7}};
const Layer kPoolLayers[] = {{"r50_stem_64x112x112", 64, 112, 112}};
// DenseNet-121 at 224 px: the transitions' pools (after the 1x1 conv), and the concatenation's
// copies of one dense layer of block 1 (its 128-channel bottleneck to the 3x3 conv, its 32 new
// channels into the block's buffer).
const Layer kAvgPoolLayers[] = {{"dn121_t1_128x56x56", 128, 56, 56}, {"dn121_t3_512x14x14", 512, 14, 14}};
const Layer kTransposeLayers[] = {{"dn121_b1_128x56x56", 128, 56, 56}, {"dn121_b1_32x56x56", 32, 56, 56}};

constexpr std::int64_t kCpuBatch = 8;
constexpr std::int64_t kGpuBatch = 32;


void run(benchmark::State& st, Device dev, double bytes, const std::function<void()>& op) {
  bench::time_op(st, dev, bytes, op);
}

Tensor random_tensor(const Shape& s, Device dev, std::uint64_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937_64 rng(seed);
  return Tensor::uniform(s, rng, lo, hi, dev);
}

void bn_forward(benchmark::State& st, Device dev, std::int64_t N, Layer l) {
  if (bench::skip_without_gpu(st, dev)) return;
  const Shape s{N, l.C, l.H, l.W};
  Tensor x = random_tensor(s, dev, 1), w = random_tensor({l.C}, dev, 2, 0.5f, 1.5f), b = random_tensor({l.C}, dev, 3);
  Tensor rm = Tensor::zeros({l.C}, DType::F32, dev), rv = Tensor::full({l.C}, 1.f, dev);
  run(st, dev, 8.0 * shape_numel(s),
      [&] { benchmark::DoNotOptimize(batch_norm2d_train(BnActivation::Identity, x, w, b, rm, rv)); });
}

void bn_backward(benchmark::State& st, Device dev, std::int64_t N, Layer l) {
  if (bench::skip_without_gpu(st, dev)) return;
  const Shape s{N, l.C, l.H, l.W};
  Tensor x = random_tensor(s, dev, 1), dy = random_tensor(s, dev, 4), w = random_tensor({l.C}, dev, 2, 0.5f, 1.5f),
         b = random_tensor({l.C}, dev, 3);
  Tensor rm, rv;
  BatchNormOutput f = batch_norm2d_train(BnActivation::Identity, x, w, b, rm, rv);
  run(st, dev, 12.0 * shape_numel(s), [&] {
    benchmark::DoNotOptimize(batch_norm2d_backward(BnActivation::Identity, dy, x, w, b, f.saved_mean, f.saved_invstd));
  });
}

// One training step of batch norm + activation (forward, then backward from dy), fused or not;
// Bf16: fused, on a bf16 x (y bf16, dy and dx f32).
template <bool Fused, bool Bf16 = false>
void bn_act_step(benchmark::State& st, Device dev, std::int64_t N, Layer l) {
  static_assert(Fused || !Bf16, "the bf16 rows are the fused op's");
  if (bench::skip_without_gpu(st, dev)) return;
  const Shape s{N, l.C, l.H, l.W};
  const bool silu = std::string(l.name).rfind("effb0", 0) == 0;
  const Activation a = silu ? Activation::SiLU : Activation::ReLU;
  const BnActivation fa = silu ? BnActivation::SiLU : BnActivation::ReLU;
  Tensor x = random_tensor(s, dev, 1), dy = random_tensor(s, dev, 4), w = random_tensor({l.C}, dev, 2, 0.5f, 1.5f),
         b = random_tensor({l.C}, dev, 3);
  if constexpr (Bf16) x = to_bf16(x);
  Tensor rm = Tensor::zeros({l.C}, DType::F32, dev), rv = Tensor::full({l.C}, 1.f, dev);
  run(st, dev, (Bf16 ? 14.0 : 20.0) * shape_numel(s), [&] {
    if constexpr (Fused) {
      BatchNormOutput f = batch_norm2d_train(fa, x, w, b, rm, rv);
      benchmark::DoNotOptimize(batch_norm2d_backward(fa, dy, x, w, b, f.saved_mean, f.saved_invstd));
    } else {
      BatchNormOutput f = batch_norm2d_train(BnActivation::Identity, x, w, b, rm, rv);
      Tensor y = activation_forward(a, f.y);
      benchmark::DoNotOptimize(y);
      Tensor g = activation_backward(a, f.y, dy);
      benchmark::DoNotOptimize(batch_norm2d_backward(BnActivation::Identity, g, x, w, b, f.saved_mean, f.saved_invstd));
    }
  });
}

// Convolution + batch norm + ReLU, training forward: the batch statistics from the
// convolution's epilogue (kernels/conv2d_bn.h: conv2d_forward_bn_stats, then batch_norm2d_train_from_stats) or
// not (conv2d_forward, then batch_norm2d_train with its statistics pass). Bytes: the minimum
// x + w + y (write) + y (read) + out.
struct ConvLayer {
  const char* name;
  std::int64_t C, H, W, K, R;  // x (N, C, H, W), w (K, C, R, R), stride 1, padding R / 2
};
const ConvLayer kConvBnLayers[] = {{"r50_l1_conv2_3x3_64x56x56", 64, 56, 56, 64, 3},
                                   {"r50_l1_conv3_1x1_64to256x56x56", 64, 56, 56, 256, 1}};

template <bool Fused, bool Bf16 = false>
void conv_bn_forward(benchmark::State& st, Device dev, std::int64_t N, ConvLayer l) {
  if (bench::skip_without_gpu(st, dev)) return;
  const Shape xs{N, l.C, l.H, l.W}, ws{l.K, l.C, l.R, l.R};
  Conv2dParams p;
  p.pad_h = p.pad_w = static_cast<int>(l.R / 2);
  Tensor x = random_tensor(xs, dev, 1), w = random_tensor(ws, dev, 2, -0.1f, 0.1f);
  if constexpr (Bf16) {
    x = to_bf16(x);
    w = to_bf16(w);
  }
  const DType y_dtype = Bf16 ? DType::BF16 : DType::F32;
  Tensor g = random_tensor({l.K}, dev, 3, 0.5f, 1.5f), b = random_tensor({l.K}, dev, 4);
  Tensor rm = Tensor::zeros({l.K}, DType::F32, dev), rv = Tensor::full({l.K}, 1.f, dev);
  const double y = static_cast<double>(N * l.K * l.H * l.W);
  run(st, dev, (Bf16 ? 2.0 : 4.0) * (shape_numel(xs) + shape_numel(ws) + 3 * y), [&] {
    if constexpr (Fused) {
      Conv2dBnStats c = conv2d_forward_bn_stats(x, w, Tensor(), p, y_dtype);
      benchmark::DoNotOptimize(batch_norm2d_train_from_stats(BnActivation::ReLU, c.y, c.mean, c.var, g, b, rm, rv).y);
    } else {
      Tensor c = conv2d_forward(x, w, Tensor(), p, y_dtype);
      benchmark::DoNotOptimize(batch_norm2d_train(BnActivation::ReLU, c, g, b, rm, rv).y);
    }
  });
}

void pool_forward(benchmark::State& st, Device dev, std::int64_t N, Layer l) {
  if (bench::skip_without_gpu(st, dev)) return;
  const Shape s{N, l.C, l.H, l.W};
  Tensor x = random_tensor(s, dev, 1);
  const MaxPool2dParams p{3, 2, 1};
  const double out = static_cast<double>(N * l.C * max_pool2d_out_size(l.H, p) * max_pool2d_out_size(l.W, p));
  run(st, dev, 4.0 * shape_numel(s) + 8.0 * out, [&] { benchmark::DoNotOptimize(max_pool2d(x, p)); });
}

void pool_backward(benchmark::State& st, Device dev, std::int64_t N, Layer l) {
  if (bench::skip_without_gpu(st, dev)) return;
  const Shape s{N, l.C, l.H, l.W};
  Tensor x = random_tensor(s, dev, 1);
  const MaxPool2dParams p{3, 2, 1};
  MaxPool2dOutput f = max_pool2d(x, p);
  Tensor dy = random_tensor(f.y.shape(), dev, 5);
  run(st, dev, 8.0 * f.y.numel() + 4.0 * shape_numel(s),
      [&] { benchmark::DoNotOptimize(max_pool2d_backward(dy, f.indices, s, p)); });
}

void avg_pool_forward(benchmark::State& st, Device dev, std::int64_t N, Layer l) {
  if (bench::skip_without_gpu(st, dev)) return;
  const Shape s{N, l.C, l.H, l.W};
  Tensor x = random_tensor(s, dev, 1);
  const AvgPool2dParams p{2, 2};
  const double out = static_cast<double>(N * l.C * avg_pool2d_out_size(l.H, p) * avg_pool2d_out_size(l.W, p));
  run(st, dev, 4.0 * shape_numel(s) + 4.0 * out, [&] { benchmark::DoNotOptimize(avg_pool2d(x, p)); });
}

void avg_pool_backward(benchmark::State& st, Device dev, std::int64_t N, Layer l) {
  if (bench::skip_without_gpu(st, dev)) return;
  const Shape s{N, l.C, l.H, l.W};
  const AvgPool2dParams p{2, 2};
  Tensor dy = random_tensor({N, l.C, avg_pool2d_out_size(l.H, p), avg_pool2d_out_size(l.W, p)}, dev, 5);
  run(st, dev, 4.0 * dy.numel() + 4.0 * shape_numel(s),
      [&] { benchmark::DoNotOptimize(avg_pool2d_backward(dy, s, p)); });
}

void transpose_forward(benchmark::State& st, Device dev, std::int64_t N, Layer l) {
  if (bench::skip_without_gpu(st, dev)) return;
  const Shape s{N, l.C, l.H, l.W};
  Tensor x = random_tensor(s, dev, 1);
  run(st, dev, 8.0 * shape_numel(s), [&] { benchmark::DoNotOptimize(transpose_nc(x)); });
}

void gap_forward(benchmark::State& st, Device dev, std::int64_t N, Layer l) {
  if (bench::skip_without_gpu(st, dev)) return;
  const Shape s{N, l.C, l.H, l.W};
  Tensor x = random_tensor(s, dev, 1);
  run(st, dev, 4.0 * shape_numel(s), [&] { benchmark::DoNotOptimize(global_avg_pool(x)); });
}

void add_forward(benchmark::State& st, Device dev, std::int64_t N, Layer l) {
  if (bench::skip_without_gpu(st, dev)) return;
  const Shape s{N, l.C, l.H, l.W};
  Tensor a = random_tensor(s, dev, 1), b = random_tensor(s, dev, 2);
  run(st, dev, 12.0 * shape_numel(s), [&] { benchmark::DoNotOptimize(add(a, b)); });
}

void scale_backward(benchmark::State& st, Device dev, std::int64_t N, Layer l) {
  if (bench::skip_without_gpu(st, dev)) return;
  const Shape s{N, l.C, l.H, l.W};
  Tensor x = random_tensor(s, dev, 1), dy = random_tensor(s, dev, 2), g = random_tensor({N, l.C}, dev, 3, 0.f, 1.f);
  run(st, dev, 12.0 * shape_numel(s), [&] { benchmark::DoNotOptimize(scale_channels_backward(dy, x, g)); });
}

#if defined(CXR_HAVE_CUDNN)
struct Cudnn {
  cudnnHandle_t h = nullptr;
  cudnnTensorDescriptor_t xd = nullptr, cd = nullptr;
  Cudnn(const Shape& s) {
    cudnnCreate(&h);
    cudnnSetStream(h, static_cast<cudaStream_t>(backend::compute_stream_handle()));
    cudnnCreateTensorDescriptor(&xd);
    cudnnCreateTensorDescriptor(&cd);
    cudnnSetTensor4dDescriptor(xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, static_cast<int>(s[0]), static_cast<int>(s[1]),
                               static_cast<int>(s[2]), static_cast<int>(s[3]));
    cudnnDeriveBNTensorDescriptor(cd, xd, CUDNN_BATCHNORM_SPATIAL);
  }
  ~Cudnn() {
    cudnnDestroyTensorDescriptor(cd);
    cudnnDestroyTensorDescriptor(xd);
    cudnnDestroy(h);
  }
};

void cudnn_bn(benchmark::State& st, bool backward, std::int64_t N, Layer l) {
  if (!bench::have_gpu()) {
    st.SkipWithError("no GPU");
    return;
  }
  const Device G = Device::CUDA;
  const Shape s{N, l.C, l.H, l.W};
  Tensor x = random_tensor(s, G, 1), dy = random_tensor(s, G, 4), y = Tensor::empty(s, DType::F32, G),
         dx = Tensor::empty(s, DType::F32, G);
  Tensor w = random_tensor({l.C}, G, 2, 0.5f, 1.5f), b = random_tensor({l.C}, G, 3);
  Tensor rm = Tensor::zeros({l.C}, DType::F32, G), rv = Tensor::full({l.C}, 1.f, G);
  Tensor mean = Tensor::empty({l.C}, DType::F32, G), invstd = Tensor::empty({l.C}, DType::F32, G),
         dw = Tensor::empty({l.C}, DType::F32, G), db = Tensor::empty({l.C}, DType::F32, G);
  Cudnn c(s);
  const float one = 1.f, zero = 0.f;
  auto fwd = [&] {
    cudnnBatchNormalizationForwardTraining(c.h, CUDNN_BATCHNORM_SPATIAL, &one, &zero, c.xd, x.f32(), c.xd, y.f32(),
                                           c.cd, w.f32(), b.f32(), 0.1, rm.f32(), rv.f32(), 1e-5, mean.f32(),
                                           invstd.f32());
  };
  fwd();
  auto bwd = [&] {
    cudnnBatchNormalizationBackward(c.h, CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, c.xd, x.f32(), c.xd,
                                    dy.f32(), c.xd, dx.f32(), c.cd, w.f32(), dw.f32(), db.f32(), 1e-5, mean.f32(),
                                    invstd.f32());
  };
  run(st, G, (backward ? 12.0 : 8.0) * shape_numel(s), [&] { backward ? bwd() : fwd(); });
}
#endif

template <typename Fn, std::size_t K>
void register_all(const char* op, Fn fn, const Layer (&layers)[K]) {
  for (const Layer& l : layers) {
    benchmark::RegisterBenchmark((std::string(op) + "/cpu/" + l.name).c_str(),
                                 [fn, l](benchmark::State& st) { fn(st, Device::CPU, kCpuBatch, l); })
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((std::string(op) + "/cuda/" + l.name).c_str(),
                                 [fn, l](benchmark::State& st) { fn(st, Device::CUDA, kGpuBatch, l); })
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
  }
}

const bool registered = [] {
  register_all("bn_train_fwd", bn_forward, kBnLayers);
  register_all("bn_backward", bn_backward, kBnLayers);
  register_all("bn_act_step/unfused", bn_act_step<false>, kBnLayers);
  register_all("bn_act_step/fused", bn_act_step<true>, kBnLayers);
  register_all("bn_act_step/fused_bf16", bn_act_step<true, true>, kBnLayers);
  register_all("max_pool3x3s2_fwd", pool_forward, kPoolLayers);
  register_all("max_pool3x3s2_bwd", pool_backward, kPoolLayers);
  register_all("avg_pool2x2s2_fwd", avg_pool_forward, kAvgPoolLayers);
  register_all("avg_pool2x2s2_bwd", avg_pool_backward, kAvgPoolLayers);
  register_all("transpose_nc", transpose_forward, kTransposeLayers);
  register_all("global_avg_pool_fwd", gap_forward, kGapLayers);
  register_all("add", add_forward, kAddLayers);
  register_all("scale_channels_bwd", scale_backward, kScaleLayers);
  // GPU only (on the CPU both run the same passes).
  for (const ConvLayer& l : kConvBnLayers) {
    benchmark::RegisterBenchmark((std::string("conv_bn_fwd/unfused/cuda/") + l.name).c_str(),
                                 [l](benchmark::State& st) { conv_bn_forward<false>(st, Device::CUDA, kGpuBatch, l); })
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark((std::string("conv_bn_fwd/fused/cuda/") + l.name).c_str(),
                                 [l](benchmark::State& st) { conv_bn_forward<true>(st, Device::CUDA, kGpuBatch, l); })
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(
        (std::string("conv_bn_fwd/unfused_bf16/cuda/") + l.name).c_str(),
        [l](benchmark::State& st) { conv_bn_forward<false, true>(st, Device::CUDA, kGpuBatch, l); })
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(
        (std::string("conv_bn_fwd/fused_bf16/cuda/") + l.name).c_str(),
        [l](benchmark::State& st) { conv_bn_forward<true, true>(st, Device::CUDA, kGpuBatch, l); })
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
  }
#if defined(CXR_HAVE_CUDNN)
  for (const Layer& l : kBnLayers) {
    benchmark::RegisterBenchmark((std::string("bn_train_fwd/cudnn/") + l.name).c_str(),
                                 [l](benchmark::State& st) { cudnn_bn(st, false, kGpuBatch, l); })
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark((std::string("bn_backward/cudnn/") + l.name).c_str(),
                                 [l](benchmark::State& st) { cudnn_bn(st, true, kGpuBatch, l); })
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
  }
#endif
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
