// Depthwise conv2d on CUDA (G == C == K: one R x S filter per channel; EfficientNet-B0's
// 3x3 and 5x5 stride 1/2 layers). A GEMM with K' = C' = 1 would leave the tile 98% empty, so
// these are direct kernels:
//   forward:          one thread per output y[n,c,p,q] = b[c] + sum_{r,s} x[n,c,h,v] w[c,r,s]
//   backward-data:    one thread per input dx[n,c,h,v] = sum_{r,s} dy[n,c,p,q] w[c,r,s] over the
//                     (p, q) with p sh = h + ph - r dh exactly (a gather: no atomics)
//   backward-weight:  one block per (c, r, s): dw[c,r,s] = sum_{n,p,q} dy[n,c,p,q] x[n,c,h,v],
//                     strided partial sums, then a shared-memory tree (deterministic)
// Traffic: forward reads x and writes y once (R S FMAs per 8 bytes: memory bound, floor =
// (|x| + |y|) 4 B / bandwidth); neighbouring threads share x through L1/L2. Backward-weight
// reads dy and x R S times (from L2 for the model's shapes).
// Element types: every kernel is a template over its operand type T, float or bf16 bits
// (std::uint16_t, mixed precision: conv2d_depthwise_*_bf16); operands are widened when read
// (exactly) and the sums are f32 either way, so bf16 halves the bytes read and changes nothing
// else. Gradients are f32; the forward's output y is f32, or bf16 (rounded once at the store)
// for bf16 activations between layers, which halves its write too.
// Variants: v1 (this). Shared-memory input tiles with halos are the obvious next step.
#include "kernels/common/cuda.cuh"
#include "kernels/common/load_store.h"
#include "kernels/conv2d.h"

namespace cxr::cuda {
namespace {

constexpr unsigned kThreads = 256;
constexpr int kReduceThreads = 128;

template <class T, class Y>
__global__ void depthwise_forward_kernel(Conv2dDims d, const T* __restrict__ x, const T* __restrict__ w,
                                         const float* __restrict__ b, Y* __restrict__ y, std::int64_t total) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const int q = static_cast<int>(i % d.Q), p = static_cast<int>((i / d.Q) % d.P);
  const std::int64_t nc = i / (static_cast<std::int64_t>(d.P) * d.Q);
  const int c = static_cast<int>(nc % d.C);
  const T* plane = x + nc * d.H * d.W;
  const T* wc = w + static_cast<std::int64_t>(c) * d.R * d.S;
  float sum = b ? b[c] : 0.f;
  for (int r = 0; r < d.R; ++r) {
    const int h = p * d.sh - d.ph + r * d.dh;
    if (h < 0 || h >= d.H) continue;
    for (int s = 0; s < d.S; ++s) {
      const int v = q * d.sw - d.pw + s * d.dw;
      if (v >= 0 && v < d.W) sum = fmaf(load(plane + h * d.W + v), load(wc + r * d.S + s), sum);
    }
  }
  store(y + i, sum);
}

template <class T>
__global__ void depthwise_backward_data_kernel(Conv2dDims d, const T* __restrict__ dy, const T* __restrict__ w,
                                               float* __restrict__ dx, std::int64_t total) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const int v = static_cast<int>(i % d.W), h = static_cast<int>((i / d.W) % d.H);
  const std::int64_t nc = i / (static_cast<std::int64_t>(d.H) * d.W);
  const int c = static_cast<int>(nc % d.C);
  const T* g = dy + nc * d.P * d.Q;
  const T* wc = w + static_cast<std::int64_t>(c) * d.R * d.S;
  float sum = 0.f;
  for (int r = 0; r < d.R; ++r) {
    const int ph = h + d.ph - r * d.dh;
    if (ph < 0) continue;
    const int p = ph / d.sh;
    if (p * d.sh != ph || p >= d.P) continue;
    for (int s = 0; s < d.S; ++s) {
      const int pw = v + d.pw - s * d.dw;
      if (pw < 0) continue;
      const int q = pw / d.sw;
      if (q * d.sw != pw || q >= d.Q) continue;
      sum = fmaf(load(g + p * d.Q + q), load(wc + r * d.S + s), sum);
    }
  }
  dx[i] = sum;
}

// grid = C R S blocks; block (c, r, s) reduces over n, p, q.
template <class T>
__global__ void __launch_bounds__(kReduceThreads)
    depthwise_backward_weight_kernel(Conv2dDims d, const T* __restrict__ dy, const T* __restrict__ x,
                                     float* __restrict__ dw) {
  __shared__ float partial[kReduceThreads];
  const int RS = d.R * d.S, c = blockIdx.x / RS, rs = blockIdx.x % RS, r = rs / d.S, s = rs % d.S;
  const int PQ = d.P * d.Q;
  float sum = 0.f;
  for (int n = 0; n < d.N; ++n) {
    const std::int64_t nc = static_cast<std::int64_t>(n) * d.C + c;
    const T* g = dy + nc * PQ;
    const T* plane = x + nc * d.H * d.W;
    for (int pq = threadIdx.x; pq < PQ; pq += blockDim.x) {
      const int p = pq / d.Q, q = pq - p * d.Q;
      const int h = p * d.sh - d.ph + r * d.dh, v = q * d.sw - d.pw + s * d.dw;
      if (h >= 0 && h < d.H && v >= 0 && v < d.W) sum = fmaf(load(g + pq), load(plane + h * d.W + v), sum);
    }
  }
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int stride = kReduceThreads / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) dw[blockIdx.x] = partial[0];
}

template <class T, class Y>
void forward(const Conv2dDims& d, const T* x, const T* w, const float* b, Y* y) {
  const std::int64_t total = static_cast<std::int64_t>(d.N) * d.C * d.P * d.Q;
  launch_kernel(depthwise_forward_kernel<T, Y>, blocks_for(total, kThreads), dim3(kThreads), 0, d, x, w, b, y, total);
}

template <class T>
void backward_data(const Conv2dDims& d, const T* dy, const T* w, float* dx) {
  const std::int64_t total = static_cast<std::int64_t>(d.N) * d.C * d.H * d.W;
  launch_kernel(depthwise_backward_data_kernel<T>, blocks_for(total, kThreads), dim3(kThreads), 0, d, dy, w, dx,
                total);
}

template <class T>
void backward_weight(const Conv2dDims& d, const T* dy, const T* x, float* dw) {
  launch_kernel(depthwise_backward_weight_kernel<T>, dim3(static_cast<unsigned>(d.C * d.R * d.S)),
                dim3(kReduceThreads), 0, d, dy, x, dw);
}

}  // namespace

void conv2d_depthwise_forward(const Conv2dDims& d, const float* x, const float* w, const float* b, float* y) {
  forward(d, x, w, b, y);
}
void conv2d_depthwise_backward_data(const Conv2dDims& d, const float* dy, const float* w, float* dx) {
  backward_data(d, dy, w, dx);
}
void conv2d_depthwise_backward_weight(const Conv2dDims& d, const float* dy, const float* x, float* dw) {
  backward_weight(d, dy, x, dw);
}

void conv2d_depthwise_forward_bf16(const Conv2dDims& d, const std::uint16_t* x, const std::uint16_t* w,
                                   const float* b, float* y) {
  forward(d, x, w, b, y);
}
void conv2d_depthwise_forward_bf16(const Conv2dDims& d, const std::uint16_t* x, const std::uint16_t* w, const float* b,
                                   std::uint16_t* y) {
  forward(d, x, w, b, y);
}
void conv2d_depthwise_backward_data_bf16(const Conv2dDims& d, const std::uint16_t* dy, const std::uint16_t* w,
                                         float* dx) {
  backward_data(d, dy, w, dx);
}
void conv2d_depthwise_backward_weight_bf16(const Conv2dDims& d, const std::uint16_t* dy, const std::uint16_t* x,
                                           float* dw) {
  backward_weight(d, dy, x, dw);
}

}  // namespace cxr::cuda
