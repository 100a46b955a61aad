// Activations on CUDA.
//
// activation_forward_kernel:  y[i] = f(x[i])              one thread per element
// activation_backward_kernel: dx[i] = dy[i] * f'(x[i])
// Shapes: flat, n elements. Traffic: 8n bytes forward, 12n backward; memory bound, so the
// floor is bytes / bandwidth (H100: 12n / 3.35 TB/s). The scalar math is shared with the CPU
// reference (kernels/activation.h). The activation is a template parameter so each kernel
// has no branch in its loop.
// bf16 activations (mixed precision): the kernels are templated on the storage type of x and
// y (float or std::uint16_t, kernels/common/load_store.h): x widened exactly, f in f32, y
// rounded once. Forward traffic 4n bytes for bf16 (half); backward 10n (bf16 x, f32 dy and dx).
#include "kernels/activation.h"
#include "kernels/common/cuda.cuh"
#include "kernels/common/load_store.h"

namespace cxr::cuda {
namespace {

template <Activation A, typename T>
__global__ void activation_forward_kernel(const T* __restrict__ x, T* __restrict__ y, std::int64_t n) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) store(y + i, activation_value<float>(A, load(x + i)));
}

template <Activation A, typename TX>
__global__ void activation_backward_kernel(const TX* __restrict__ x, const float* __restrict__ dy,
                                           float* __restrict__ dx, std::int64_t n) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dx[i] = dy[i] * activation_derivative<float>(A, load(x + i));
}

constexpr unsigned kThreads = 256;

template <Activation A, typename T>
void forward(const T* x, T* y, std::int64_t n) {
  launch_kernel(activation_forward_kernel<A, T>, blocks_for(n, kThreads), kThreads, 0, x, y, n);
}

template <Activation A, typename TX>
void backward(const TX* x, const float* dy, float* dx, std::int64_t n) {
  launch_kernel(activation_backward_kernel<A, TX>, blocks_for(n, kThreads), kThreads, 0, x, dy, dx, n);
}

}  // namespace

template <typename T>
void activation_forward(Activation a, const T* x, T* y, std::int64_t n) {
  switch (a) {
    case Activation::ReLU: return forward<Activation::ReLU>(x, y, n);
    case Activation::SiLU: return forward<Activation::SiLU>(x, y, n);
    case Activation::Sigmoid: return forward<Activation::Sigmoid>(x, y, n);
    case Activation::GELU: return forward<Activation::GELU>(x, y, n);
  }
}

template <typename TX>
void activation_backward(Activation a, const TX* x, const float* dy, float* dx, std::int64_t n) {
  switch (a) {
    case Activation::ReLU: return backward<Activation::ReLU>(x, dy, dx, n);
    case Activation::SiLU: return backward<Activation::SiLU>(x, dy, dx, n);
    case Activation::Sigmoid: return backward<Activation::Sigmoid>(x, dy, dx, n);
    case Activation::GELU: return backward<Activation::GELU>(x, dy, dx, n);
  }
}

template void activation_forward<float>(Activation, const float*, float*, std::int64_t);
template void activation_forward<std::uint16_t>(Activation, const std::uint16_t*, std::uint16_t*, std::int64_t);
template void activation_backward<float>(Activation, const float*, const float*, float*, std::int64_t);
template void activation_backward<std::uint16_t>(Activation, const std::uint16_t*, const float*, float*, std::int64_t);

}  // namespace cxr::cuda
