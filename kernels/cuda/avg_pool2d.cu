// 2-D average pooling on CUDA (no padding). x: planes = N*C planes of H x W; y: OH x OW.
//
// avg_pool2d_forward_kernel: one thread per output element (flat over planes*OH*OW:
//   consecutive threads write consecutive outputs), sums its kernel x kernel window in f32
//   and scales by 1 / kernel^2. Traffic with kernel = stride = 2 (DenseNet's transitions):
//   each input read once (4 bytes, 2 for bf16), a quarter of that written; 4 FLOPs per
//   output. DenseNet-121 transition 1 at batch 32, 224 px: 32x128x56x56 in (51 MB), 12.8 MB
//   out: ~19 us at 3.35 TB/s. bf16 x and y: templated on the storage type
//   (kernels/common/load_store.h), the sum in f32, rounded once.
// avg_pool2d_backward_kernel: a gather, one thread per INPUT element: the windows holding
//   (h, w) are oh in [ceil((h - kernel + 1) / stride), h / stride] (clipped to [0, OH)),
//   likewise ow; dx = (sum of their dy) / kernel^2. No atomics, every dx element written once
//   (rows and columns the floor drops get 0). With kernel = stride each input has one window:
//   read dy once per input element (L1/L2 hits), write 4 bytes.
#include <algorithm>

#include "kernels/avg_pool2d.h"
#include "kernels/common/cuda.cuh"
#include "kernels/common/load_store.h"

namespace cxr::cuda {
namespace {

constexpr unsigned kThreads = 256;

template <typename T>
__global__ void avg_pool2d_forward_kernel(const T* __restrict__ x, T* __restrict__ y, std::int64_t n, int H, int W,
                                          int OH, int OW, int kernel, int stride) {
  const float inv = 1.f / static_cast<float>(kernel * kernel);
  const std::int64_t gstride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t o = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < n; o += gstride) {
    const int ow = static_cast<int>(o % OW);
    const int oh = static_cast<int>((o / OW) % OH);
    const std::int64_t plane = o / (static_cast<std::int64_t>(OW) * OH);
    const T* xp = x + plane * H * W;
    float sum = 0.f;
    for (int h = oh * stride; h < oh * stride + kernel; ++h)
      for (int w = ow * stride; w < ow * stride + kernel; ++w) sum += load(xp + h * W + w);
    store(y + o, sum * inv);
  }
}

__global__ void avg_pool2d_backward_kernel(const float* __restrict__ dy, float* __restrict__ dx, std::int64_t n, int H,
                                           int W, int OH, int OW, int kernel, int stride) {
  const float inv = 1.f / static_cast<float>(kernel * kernel);
  const std::int64_t gstride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += gstride) {
    const int w = static_cast<int>(i % W);
    const int h = static_cast<int>((i / W) % H);
    const std::int64_t plane = i / (static_cast<std::int64_t>(W) * H);
    // Windows oh with oh*stride <= h < oh*stride + kernel.
    const int ohs = h < kernel ? 0 : (h - kernel) / stride + 1;
    const int ohe = min(h / stride + 1, OH);
    const int ows = w < kernel ? 0 : (w - kernel) / stride + 1;
    const int owe = min(w / stride + 1, OW);
    const float* dyp = dy + plane * OH * OW;
    float acc = 0.f;
    for (int oh = ohs; oh < ohe; ++oh)
      for (int ow = ows; ow < owe; ++ow) acc += dyp[oh * OW + ow];
    dx[i] = acc * inv;
  }
}

}  // namespace

template <typename T>
void avg_pool2d_forward(const T* x, T* y, std::int64_t planes, int H, int W, int OH, int OW, AvgPool2dParams p) {
  const std::int64_t n = planes * OH * OW;
  const unsigned blocks = std::min(blocks_for(n, kThreads), 65535u * 8u);
  launch_kernel(avg_pool2d_forward_kernel<T>, blocks, kThreads, 0, x, y, n, H, W, OH, OW, p.kernel, p.stride);
}

void avg_pool2d_backward(const float* dy, float* dx, std::int64_t planes, int H, int W, int OH, int OW,
                         AvgPool2dParams p) {
  const std::int64_t n = planes * H * W;
  const unsigned blocks = std::min(blocks_for(n, kThreads), 65535u * 8u);
  launch_kernel(avg_pool2d_backward_kernel, blocks, kThreads, 0, dy, dx, n, H, W, OH, OW, p.kernel, p.stride);
}

template void avg_pool2d_forward<float>(const float*, float*, std::int64_t, int, int, int, int, AvgPool2dParams);
template void avg_pool2d_forward<std::uint16_t>(const std::uint16_t*, std::uint16_t*, std::int64_t, int, int, int, int,
                                                AvgPool2dParams);

}  // namespace cxr::cuda
