// Activations on CUDA.
//
// activation_forward_kernel:  y[i] = f(x[i])              one thread per element
// activation_backward_kernel: dx[i] = dy[i] * f'(x[i])
// Shapes: flat, n elements. Traffic: 8n bytes forward, 12n backward; memory bound, so the
// floor is bytes / bandwidth (H100: 12n / 3.35 TB/s). The scalar math is shared with the CPU
// reference (kernels/activation.h). The activation is a template parameter so each kernel
// has no branch in its loop.
#include "kernels/activation.h"
#include "kernels/common/cuda.cuh"

namespace cxr::cuda {
namespace {

template <Activation A>
__global__ void activation_forward_kernel(const float* __restrict__ x, float* __restrict__ y, std::int64_t n) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) y[i] = activation_value<float>(A, x[i]);
}

template <Activation A>
__global__ void activation_backward_kernel(const float* __restrict__ x, const float* __restrict__ dy,
                                           float* __restrict__ dx, std::int64_t n) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dx[i] = dy[i] * activation_derivative<float>(A, x[i]);
}

constexpr unsigned kThreads = 256;

template <Activation A>
void forward(const float* x, float* y, std::int64_t n) {
  launch_kernel(activation_forward_kernel<A>, blocks_for(n, kThreads), kThreads, 0, x, y, n);
}

template <Activation A>
void backward(const float* x, const float* dy, float* dx, std::int64_t n) {
  launch_kernel(activation_backward_kernel<A>, blocks_for(n, kThreads), kThreads, 0, x, dy, dx, n);
}

}  // namespace

void activation_forward(Activation a, const float* x, float* y, std::int64_t n) {
  switch (a) {
    case Activation::ReLU: return forward<Activation::ReLU>(x, y, n);
    case Activation::SiLU: return forward<Activation::SiLU>(x, y, n);
    case Activation::Sigmoid: return forward<Activation::Sigmoid>(x, y, n);
    case Activation::GELU: return forward<Activation::GELU>(x, y, n);
  }
}

void activation_backward(Activation a, const float* x, const float* dy, float* dx, std::int64_t n) {
  switch (a) {
    case Activation::ReLU: return backward<Activation::ReLU>(x, dy, dx, n);
    case Activation::SiLU: return backward<Activation::SiLU>(x, dy, dx, n);
    case Activation::Sigmoid: return backward<Activation::Sigmoid>(x, dy, dx, n);
    case Activation::GELU: return backward<Activation::GELU>(x, dy, dx, n);
  }
}

}  // namespace cxr::cuda
