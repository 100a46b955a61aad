// 2-D max pooling on CUDA. x: planes = N*C planes of H x W; y, indices: planes of OH x OW.
//
// max_pool2d_forward_kernel: one thread per output element (flat over planes*OH*OW, so
//   consecutive threads write consecutive outputs); scans its clipped kernel x kernel window
//   row-major with `v > best || isnan(v)`: the same first-maximum rule as the CPU reference,
//   hence the same indices. Traffic: reads ~ (kernel/stride)^2 x 4 bytes per output (mostly
//   L1/L2 hits: the windows overlap), writes 8 bytes per output (y + i32 index).
//   ResNet-50 stem pool at N=32: 32x64x112x112 in (102.8 MB) -> 32x64x56x56 out (25.7 MB + 25.7 MB
//   of indices): ~46 us floor at 3.35 TB/s.
//   bf16 x and y (mixed precision): the kernel is templated on the storage type (float or
//   std::uint16_t, kernels/common/load_store.h); values compare widened to f32, and the stored
//   maximum, being an input, rounds back exactly. 2 bytes per read, 6 per output: the stem
//   pool's floor drops to ~31 us.
// max_pool2d_backward_kernel: a gather, one thread per INPUT element: the outputs whose
//   window can contain (h, w) are oh in [ceil((h + pad - kernel + 1) / stride), (h + pad) / stride]
//   (clipped), likewise ow; it sums dy over those whose recorded index is h*W + w. No atomics,
//   deterministic, every dx element written exactly once (so no zero-fill pass). For 3x3 s2
//   each input checks at most 4 outputs.
#include <algorithm>
#include <cmath>

#include "kernels/common/cuda.cuh"
#include "kernels/common/load_store.h"
#include "kernels/max_pool2d.h"

namespace cxr::cuda {
namespace {

constexpr unsigned kThreads = 256;

template <typename T>
__global__ void max_pool2d_forward_kernel(const T* __restrict__ x, T* __restrict__ y,
                                          std::int32_t* __restrict__ indices, std::int64_t n, int H, int W, int OH,
                                          int OW, int kernel, int stride, int pad) {
  const std::int64_t gstride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t o = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < n; o += gstride) {
    const int ow = static_cast<int>(o % OW);
    const int oh = static_cast<int>((o / OW) % OH);
    const std::int64_t plane = o / (static_cast<std::int64_t>(OW) * OH);
    const T* xp = x + plane * H * W;
    const int h0 = oh * stride - pad, w0 = ow * stride - pad;
    const int hs = max(h0, 0), he = min(h0 + kernel, H);
    const int ws = max(w0, 0), we = min(w0 + kernel, W);
    float best = -INFINITY;
    int arg = hs * W + ws;
    for (int h = hs; h < he; ++h)
      for (int w = ws; w < we; ++w) {
        const float v = load(xp + h * W + w);
        if (v > best || v != v) {  // v != v: NaN
          best = v;
          arg = h * W + w;
        }
      }
    store(y + o, best);
    indices[o] = arg;
  }
}

__global__ void max_pool2d_backward_kernel(const float* __restrict__ dy, const std::int32_t* __restrict__ indices,
                                           float* __restrict__ dx, std::int64_t n, int H, int W, int OH, int OW,
                                           int kernel, int stride, int pad) {
  const std::int64_t gstride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += gstride) {
    const int w = static_cast<int>(i % W);
    const int h = static_cast<int>((i / W) % H);
    const std::int64_t plane = i / (static_cast<std::int64_t>(W) * H);
    // Outputs oh with oh*stride - pad <= h < oh*stride - pad + kernel.
    const int ohs = (h + pad < kernel) ? 0 : (h + pad - kernel) / stride + 1;
    const int ohe = min((h + pad) / stride + 1, OH);
    const int ows = (w + pad < kernel) ? 0 : (w + pad - kernel) / stride + 1;
    const int owe = min((w + pad) / stride + 1, OW);
    const std::int64_t base = plane * OH * OW;
    const int me = h * W + w;
    float acc = 0.f;
    for (int oh = ohs; oh < ohe; ++oh)
      for (int ow = ows; ow < owe; ++ow) {
        const std::int64_t o = base + oh * OW + ow;
        if (indices[o] == me) acc += dy[o];
      }
    dx[i] = acc;
  }
}

}  // namespace

template <typename T>
void max_pool2d_forward(const T* x, T* y, std::int32_t* indices, std::int64_t planes, int H, int W, int OH, int OW,
                        MaxPool2dParams p) {
  const std::int64_t n = planes * OH * OW;
  const unsigned blocks = std::min(blocks_for(n, kThreads), 65535u * 8u);
  launch_kernel(max_pool2d_forward_kernel<T>, blocks, kThreads, 0, x, y, indices, n, H, W, OH, OW, p.kernel, p.stride,
                p.padding);
}

void max_pool2d_backward(const float* dy, const std::int32_t* indices, float* dx, std::int64_t planes, int H, int W,
                         int OH, int OW, MaxPool2dParams p) {
  const std::int64_t n = planes * H * W;
  const unsigned blocks = std::min(blocks_for(n, kThreads), 65535u * 8u);
  launch_kernel(max_pool2d_backward_kernel, blocks, kThreads, 0, dy, indices, dx, n, H, W, OH, OW, p.kernel, p.stride,
                p.padding);
}

template void max_pool2d_forward<float>(const float*, float*, std::int32_t*, std::int64_t, int, int, int, int,
                                        MaxPool2dParams);
template void max_pool2d_forward<std::uint16_t>(const std::uint16_t*, std::uint16_t*, std::int32_t*, std::int64_t, int,
                                                int, int, int, MaxPool2dParams);

}  // namespace cxr::cuda
