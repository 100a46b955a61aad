// Speed of the emulated CUDA device (cuda_emu/): launch overhead, plain-mode throughput,
// fiber switches at barriers, warp shuffles. Linked with libcxr_emu.a (the name contains
// "emu"). Kernels are written inline here with cuda_emu.h, like any .cu file under emulation.
//   build-emu/bench_emu                  (CXR_EMU_THREADS=n to change the worker count)
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "cuda_emu/cuda_emu.h"

namespace {

template <typename T>
struct device_vector {
  T* ptr = nullptr;
  explicit device_vector(std::size_t n, T value = T{}) {
    cudaMalloc(reinterpret_cast<void**>(&ptr), n * sizeof(T));
    std::vector<T> host(n, value);
    cudaMemcpy(ptr, host.data(), n * sizeof(T), cudaMemcpyHostToDevice);
  }
  ~device_vector() { cudaFree(ptr); }
  device_vector(const device_vector&) = delete;
  device_vector& operator=(const device_vector&) = delete;
};

__global__ void empty_kernel() {}

__global__ void saxpy_kernel(const float* __restrict__ x, float* __restrict__ y, float a, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) y[i] = a * x[i] + y[i];
}

// Block-wide tree reduction: log2(256) + 1 barriers per block.
__global__ void block_reduce_kernel(const float* __restrict__ in, float* __restrict__ out) {
  __shared__ float s[256];
  const unsigned t = threadIdx.x;
  s[t] = in[blockIdx.x * 256 + t];
  __syncthreads();
  for (unsigned stride = 128; stride > 0; stride /= 2) {
    if (t < stride) s[t] += s[t + stride];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = s[0];
}

constexpr int kTile = 16;
__global__ void tiled_matmul_kernel(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ c,
                                    int n) {
  __shared__ float ta[kTile][kTile];
  __shared__ float tb[kTile][kTile];
  const int row = static_cast<int>(blockIdx.y * kTile + threadIdx.y);
  const int col = static_cast<int>(blockIdx.x * kTile + threadIdx.x);
  float acc = 0.0f;
  for (int k0 = 0; k0 < n; k0 += kTile) {
    ta[threadIdx.y][threadIdx.x] = a[row * n + k0 + static_cast<int>(threadIdx.x)];
    tb[threadIdx.y][threadIdx.x] = b[(k0 + static_cast<int>(threadIdx.y)) * n + col];
    __syncthreads();
    for (int i = 0; i < kTile; ++i) acc = fmaf(ta[threadIdx.y][i], tb[i][threadIdx.x], acc);
    __syncthreads();
  }
  c[row * n + col] = acc;
}

__global__ void warp_reduce_kernel(const float* __restrict__ in, float* __restrict__ out) {
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  float v = in[i];
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  if (threadIdx.x % 32 == 0) out[i / 32] = v;
}

void add_switch_rate(benchmark::State& state, std::uint64_t switches_before) {
  state.counters["switches/s"] = benchmark::Counter(
      static_cast<double>(cuda_emu::context_switches() - switches_before), benchmark::Counter::kIsRate);
}

void BM_empty_launch(benchmark::State& state) {
  const dim3 grid(static_cast<unsigned>(state.range(0))), block(static_cast<unsigned>(state.range(1)));
  for (auto _ : state) cuda_emu::launch(grid, block, 0, [] { empty_kernel(); });
  state.SetItemsProcessed(state.iterations());  // launches
  state.counters["threads"] = static_cast<double>(grid.x * block.x);
}
BENCHMARK(BM_empty_launch)->Args({1, 1})->Args({1, 256})->Args({64, 256})->UseRealTime();

void BM_elementwise_plain(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  device_vector<float> x(static_cast<std::size_t>(n), 1.0f), y(static_cast<std::size_t>(n), 2.0f);
  const unsigned blocks = static_cast<unsigned>((n + 255) / 256);
  const std::uint64_t before = cuda_emu::context_switches();
  for (auto _ : state)
    cuda_emu::launch(dim3(blocks), dim3(256), 0, [&] { saxpy_kernel(x.ptr, y.ptr, 0.5f, n); });
  state.SetItemsProcessed(state.iterations() * n);  // elements
  add_switch_rate(state, before);                   // 0: plain mode
}
BENCHMARK(BM_elementwise_plain)->Arg(1 << 20)->UseRealTime();

void BM_block_reduce_syncthreads(benchmark::State& state) {
  const unsigned blocks = 1024;
  device_vector<float> in(blocks * 256, 1.0f), out(blocks);
  const std::uint64_t before = cuda_emu::context_switches();
  for (auto _ : state) cuda_emu::launch(dim3(blocks), dim3(256), 0, [&] { block_reduce_kernel(in.ptr, out.ptr); });
  state.SetItemsProcessed(state.iterations() * blocks * 256);  // elements
  add_switch_rate(state, before);
}
BENCHMARK(BM_block_reduce_syncthreads)->UseRealTime();

void BM_tiled_matmul(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const std::size_t nn = static_cast<std::size_t>(n) * n;
  device_vector<float> a(nn, 1.0f), b(nn, 0.5f), c(nn);
  const dim3 grid(static_cast<unsigned>(n / kTile), static_cast<unsigned>(n / kTile)), block(kTile, kTile);
  const std::uint64_t before = cuda_emu::context_switches();
  for (auto _ : state) cuda_emu::launch(grid, block, 0, [&] { tiled_matmul_kernel(a.ptr, b.ptr, c.ptr, n); });
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(nn) * n * 1e-9 *
                                                     static_cast<double>(state.iterations()),
                                                 benchmark::Counter::kIsRate);
  add_switch_rate(state, before);
}
BENCHMARK(BM_tiled_matmul)->Arg(256)->UseRealTime();

void BM_warp_shuffle_reduce(benchmark::State& state) {
  const unsigned blocks = 1024;
  device_vector<float> in(blocks * 256, 1.0f), out(blocks * 8);
  const std::uint64_t before = cuda_emu::context_switches();
  for (auto _ : state) cuda_emu::launch(dim3(blocks), dim3(256), 0, [&] { warp_reduce_kernel(in.ptr, out.ptr); });
  state.SetItemsProcessed(state.iterations() * blocks * 256);  // elements
  state.counters["shuffles/s"] =
      benchmark::Counter(5.0 * blocks * 256 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  add_switch_rate(state, before);
}
BENCHMARK(BM_warp_shuffle_reduce)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
