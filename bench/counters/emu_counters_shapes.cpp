// emu_counters_shapes: the project's kernels on the ResNet-50 and EfficientNet-B0 benchmark
// shapes, run once each on the counting build of the emulated device (preset emu-counters).
//
//   CXR_EMU_COUNTERS=counters.jsonl build/emu-counters/emu_counters_shapes [--batch N] [--only TEXT]
//   scripts/emu_counters_table counters.jsonl        # the per-kernel table
//
// Every launch writes one JSON line (cuda_emu/memory_counters.h); each op is labelled with the
// name its benchmark uses (bench_conv2d, bench_norm_pool, bench_pointwise: "<op>/cuda/<shape>")
// and its fewest bytes, computed as those benchmarks do (conv2d: x + w + y once, 4 B each).
// The counts are exact for the batch that runs; the benchmarks' batches (32 for norm/pool,
// 64 for conv2d and pointwise) are the default, --batch N overrides them all, --conv-batch N
// the convolutions' only (emulating a batch-64 convolution takes about a minute; the table
// then scales the counts to the benchmark's batch, see scripts/emu_counters_table). --smoke
// runs the first shape of each op at batch 1 (ctest).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>

#include "cuda_emu/memory_counters.h"
#include "kernels/activation.h"
#include "kernels/add.h"
#include "kernels/batch_norm.h"
#include "kernels/conv2d.h"
#include "kernels/global_avg_pool.h"
#include "kernels/max_pool2d.h"
#include "kernels/reduce.h"
#include "kernels/scale_channels.h"
#include "tensor/backend.h"
#include "tensor/tensor.h"

using namespace cxr;

namespace {

struct Options {
  std::int64_t batch = 0;       // 0: each benchmark's own
  std::int64_t conv_batch = 0;  // the convolutions' batch (0: --batch, else the benchmark's 64)
  bool smoke = false;
  std::string only;
};
Options g_opt;

const Device G = Device::CUDA;

Tensor random(const Shape& s, std::uint64_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937_64 rng(seed);
  return Tensor::uniform(s, rng, lo, hi, G);
}

std::int64_t batch_or(std::int64_t benchmark_batch) {
  return g_opt.smoke ? 1 : g_opt.batch > 0 ? g_opt.batch : benchmark_batch;
}

// Runs `op` labelled `name` (and `batch`) unless filtered out.
void measure(const std::string& name, std::int64_t batch, double floor_bytes, const std::function<void()>& op) {
  if (!g_opt.only.empty() && name.find(g_opt.only) == std::string::npos) return;
  const auto start = std::chrono::steady_clock::now();
  cuda_emu::set_counters_label(name + "@" + std::to_string(batch), floor_bytes);
  op();
  backend::synchronize();
  cuda_emu::set_counters_label("", 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%-60s batch %lld  %.1f s emulated\n", name.c_str(), static_cast<long long>(batch), seconds);
  std::fflush(stdout);
}

template <class T, std::size_t N>
std::size_t count_of(const T (&)[N]) {
  return g_opt.smoke ? 1 : N;
}

// ---- bench_conv2d's layers (conv2d/cuda/<pass>/<layer>, batch 64) -------------------------
struct ConvLayer {
  const char* name;
  int C, H, K, R, stride, pad, groups;
};
const ConvLayer kConvLayers[] = {
    {"r50_stem_7x7s2_3x224", 3, 224, 64, 7, 2, 3, 1},       {"r50_l1_3x3_64x56", 64, 56, 64, 3, 1, 1, 1},
    {"r50_l1_1x1_256to64x56", 256, 56, 64, 1, 1, 0, 1},     {"r50_l1_1x1_64to256x56", 64, 56, 256, 1, 1, 0, 1},
    {"r50_l2_3x3s2_128x56", 128, 56, 128, 3, 2, 1, 1},      {"r50_l3_3x3_256x14", 256, 14, 256, 3, 1, 1, 1},
    {"r50_l4_3x3_512x7", 512, 7, 512, 3, 1, 1, 1},          {"effb0_stem_3x3s2_3x224", 3, 224, 32, 3, 2, 1, 1},
    {"effb0_dw3x3_32x112", 32, 112, 32, 3, 1, 1, 32},       {"effb0_dw3x3s2_96x112", 96, 112, 96, 3, 2, 1, 96},
    {"effb0_dw5x5s2_144x56", 144, 56, 144, 5, 2, 2, 144},   {"effb0_dw5x5_672x14", 672, 14, 672, 5, 1, 2, 672},
    {"effb0_expand_1x1_40to240x28", 40, 28, 240, 1, 1, 0, 1}, {"effb0_head_1x1_320to1280x7", 320, 7, 1280, 1, 1, 0, 1},
};

void conv_layers() {
  for (std::size_t i = 0; i < count_of(kConvLayers); ++i) {
    const ConvLayer& l = kConvLayers[i];
    const std::int64_t N = g_opt.conv_batch > 0 && !g_opt.smoke ? g_opt.conv_batch : batch_or(64);
    Conv2dParams p;
    p.stride_h = p.stride_w = l.stride;
    p.pad_h = p.pad_w = l.pad;
    p.groups = l.groups;
    const Shape xs{N, l.C, l.H, l.H}, ws{l.K, l.C / l.groups, l.R, l.R};
    const Conv2dDims d = conv2d_dims(xs, ws, p);
    Tensor x = random(xs, 1), w = random(ws, 2, -0.1f, 0.1f), b = random({l.K}, 3);
    Tensor dy = random({d.N, d.K, d.P, d.Q}, 4);
    const double bytes = 4.0 * (static_cast<double>(shape_numel(xs)) + static_cast<double>(shape_numel(ws)) +
                                static_cast<double>(d.N * d.K * d.P * d.Q));
    const std::string layer = l.name;
    measure("conv2d/cuda/fwd/" + layer, N, bytes, [&] { conv2d_forward(x, w, b, p); });
    measure("conv2d/cuda/bwd_data/" + layer, N, bytes, [&] { conv2d_backward_data(dy, w, xs, p); });
    measure("conv2d/cuda/bwd_weight/" + layer, N, bytes, [&] { conv2d_backward_weight(dy, x, ws, p); });
  }
}

// ---- bench_norm_pool's layers (batch 32) ------------------------------------------------
struct Layer {
  const char* name;
  std::int64_t C, H, W;
};
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

void norm_pool_layers() {
  for (std::size_t i = 0; i < count_of(kBnLayers); ++i) {
    const Layer& l = kBnLayers[i];
    const std::int64_t N = batch_or(32);
    const Shape s{N, l.C, l.H, l.W};
    const double n = static_cast<double>(shape_numel(s));
    Tensor x = random(s, 1), dy = random(s, 4), w = random({l.C}, 2, 0.5f, 1.5f), b = random({l.C}, 3);
    Tensor rm = Tensor::zeros({l.C}, DType::F32, G), rv = Tensor::full({l.C}, 1.f, G);
    BatchNormOutput f;
    measure(std::string("bn_train_fwd/cuda/") + l.name, N, 8.0 * n,
            [&] { f = batch_norm2d_train(BnActivation::Identity, x, w, b, rm, rv); });
    if (!f.y.defined()) f = batch_norm2d_train(BnActivation::Identity, x, w, b, rm, rv);
    measure(std::string("bn_backward/cuda/") + l.name, N, 12.0 * n, [&] {
      batch_norm2d_backward(BnActivation::Identity, dy, x, w, b, f.saved_mean, f.saved_invstd);
    });
  }
  for (std::size_t i = 0; i < count_of(kPoolLayers); ++i) {
    const Layer& l = kPoolLayers[i];
    const std::int64_t N = batch_or(32);
    const Shape s{N, l.C, l.H, l.W};
    Tensor x = random(s, 1);
    const MaxPool2dParams p{3, 2, 1};
    const double out = static_cast<double>(N * l.C * max_pool2d_out_size(l.H, p) * max_pool2d_out_size(l.W, p));
    MaxPool2dOutput f = max_pool2d(x, p);
    Tensor dy = random(f.y.shape(), 5);
    measure(std::string("max_pool3x3s2_fwd/cuda/") + l.name, N, 4.0 * static_cast<double>(shape_numel(s)) + 8.0 * out,
            [&] { max_pool2d(x, p); });
    measure(std::string("max_pool3x3s2_bwd/cuda/") + l.name, N, 8.0 * out + 4.0 * static_cast<double>(shape_numel(s)),
            [&] { max_pool2d_backward(dy, f.indices, s, p); });
  }
  for (std::size_t i = 0; i < count_of(kGapLayers); ++i) {
    const Layer& l = kGapLayers[i];
    const std::int64_t N = batch_or(32);
    const Shape s{N, l.C, l.H, l.W};
    Tensor x = random(s, 1);
    measure(std::string("global_avg_pool_fwd/cuda/") + l.name, N, 4.0 * static_cast<double>(shape_numel(s)),
            [&] { global_avg_pool(x); });
  }
  for (std::size_t i = 0; i < count_of(kAddLayers); ++i) {
    const Layer& l = kAddLayers[i];
    const std::int64_t N = batch_or(32);
    const Shape s{N, l.C, l.H, l.W};
    Tensor a = random(s, 1), b = random(s, 2);
    measure(std::string("add/cuda/") + l.name, N, 12.0 * static_cast<double>(shape_numel(s)), [&] { add(a, b); });
  }
  for (std::size_t i = 0; i < count_of(kScaleLayers); ++i) {
    const Layer& l = kScaleLayers[i];
    const std::int64_t N = batch_or(32);
    const Shape s{N, l.C, l.H, l.W};
    Tensor x = random(s, 1), dy = random(s, 2), g = random({N, l.C}, 3, 0.f, 1.f);
    measure(std::string("scale_channels_bwd/cuda/") + l.name, N, 12.0 * static_cast<double>(shape_numel(s)),
            [&] { scale_channels_backward(dy, x, g); });
  }
}

// ---- bench_pointwise's sizes (batch 64) ---------------------------------------------------
struct Size {
  const char* name;
  std::int64_t per_image;
};
const Size kActivationSizes[] = {
    {"r50_relu_64x112x112", 64 * 112 * 112},      {"r50_relu_256x56x56", 256 * 56 * 56},
    {"r50_relu_2048x7x7", 2048 * 7 * 7},          {"effb0_silu_96x112x112", 96 * 112 * 112},
    {"effb0_silu_1152x7x7", 1152 * 7 * 7},
};

void pointwise_sizes() {
  for (std::size_t i = 0; i < count_of(kActivationSizes); ++i) {
    const Size& sz = kActivationSizes[i];
    const std::int64_t N = batch_or(64), n = N * sz.per_image;
    Tensor x = random({n}, 1), dy = random({n}, 2);
    const std::string name = sz.name;
    for (Activation a : {Activation::ReLU, Activation::SiLU, Activation::GELU}) {
      const std::string act = activation_name(a);
      measure(act + "/cuda/" + name + "/forward", N, 8.0 * static_cast<double>(n), [&] { activation_forward(a, x); });
      measure(act + "/cuda/" + name + "/backward", N, 12.0 * static_cast<double>(n),
              [&] { activation_backward(a, x, dy); });
    }
    measure("sum/cuda/" + name, N, 4.0 * static_cast<double>(n), [&] { sum(x); });
  }
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--smoke")) g_opt.smoke = true;
    else if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) g_opt.batch = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--conv-batch") && i + 1 < argc) g_opt.conv_batch = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--only") && i + 1 < argc) g_opt.only = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--smoke] [--batch N] [--conv-batch N] [--only TEXT]\n", argv[0]);
      return 2;
    }
  }
  if (!cuda_emu::counting_build()) return 1;
  norm_pool_layers();
  pointwise_sizes();
  conv_layers();
  const auto last = cuda_emu::last_launch_counters();
  std::printf("last kernel: %s, %llu global load requests\n", last.kernel.c_str(),
              static_cast<unsigned long long>(last.global_load.requests));
  return last.kernel.empty() ? 1 : 0;
}
