// What the batch-norm kernels (batch_norm.cu) and the SyncBatchNorm pieces (batch_norm_sync.cu)
// share: the block size, a channel's value addresses, the per-chunk Welford statistics kernel,
// how a channel's M values are split over blocks (so both group their sums alike), and the
// dispatch of the activation as a compile-time constant. Internal to those two files.
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/batch_norm.h"
#include "kernels/common/cuda.cuh"
#include "kernels/common/load_store.h"
#include "kernels/cuda/reduce.cuh"

namespace cxr::cuda {
namespace {

constexpr unsigned kThreads = 256;
constexpr unsigned kWarps = kThreads / 32;

// Address of value i (0 <= i < M) of channel c.
__device__ __forceinline__ std::int64_t channel_offset(std::int64_t i, std::int64_t c, std::int64_t C,
                                                       std::int64_t HW) {
  const std::int64_t n = i / HW;
  return (n * C + c) * HW + (i - n * HW);
}

// partial: (C, S, 3) = (count, mean, M2) of chunk s of channel c.
template <typename T>
__global__ void bn_stats_kernel(const T* __restrict__ x, float* __restrict__ partial, std::int64_t C, std::int64_t HW,
                                std::int64_t M, std::int64_t chunk) {
  const std::int64_t c = blockIdx.x;
  const unsigned s = blockIdx.y, S = gridDim.y;
  const std::int64_t i0 = s * chunk, i1 = min(i0 + chunk, M);
  Welford w{0.f, 0.f, 0.f};
  for (std::int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) {
    const float v = load(x + channel_offset(i, c, C, HW));
    w.n += 1.f;
    const float d = v - w.mean;
    w.mean += d / w.n;
    w.m2 += d * (v - w.mean);
  }
  w = warp_welford(w);
  __shared__ Welford per_warp[kWarps];
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) per_warp[warp] = w;
  __syncthreads();
  if (warp == 0) {
    w = lane < kWarps ? per_warp[lane] : Welford{0.f, 0.f, 0.f};
    w = warp_welford(w);
    if (lane == 0) {
      float* p = partial + (c * S + s) * 3;
      p[0] = w.n;
      p[1] = w.mean;
      p[2] = w.m2;
    }
  }
}

// How a channel's M values are split over S blocks (chunk values each) by the reductions.
struct Split {
  unsigned S;
  std::int64_t chunk;
};
inline Split split_channel(std::int64_t C, std::int64_t M) {
  std::int64_t S = std::max<std::int64_t>(1, (1024 + C - 1) / C);
  S = std::min<std::int64_t>(S, std::max<std::int64_t>(1, (M + 2047) / 2048));
  S = std::min<std::int64_t>(S, 65535);
  const std::int64_t chunk = std::max<std::int64_t>(1, (M + S - 1) / S);
  S = std::max<std::int64_t>(1, (M + chunk - 1) / chunk);
  return {static_cast<unsigned>(S), chunk};
}

// Calls f.template operator()<A>() with the activation as a compile-time constant.
template <typename F>
void dispatch(BnActivation act, F&& f) {
  switch (act) {
    case BnActivation::Identity: return f.template operator()<BnActivation::Identity>();
    case BnActivation::ReLU: return f.template operator()<BnActivation::ReLU>();
    case BnActivation::SiLU: return f.template operator()<BnActivation::SiLU>();
  }
}

}  // namespace
}  // namespace cxr::cuda
