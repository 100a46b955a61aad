// CPU reference of the activations: y[i] = f(x[i]), dx[i] = dy[i] f'(x[i]).
// bf16 tensors never reach these loops: kernels/activation.cpp widens them to f32 (exact) and rounds
// the result to bf16 once, which defines the bf16 op that the CUDA kernels must match.
//
// In f32, SiLU, sigmoid and GELU take glibc's 8-lane expf / erff where the CPU has AVX2
// (kernels/cpu/vector_math.h: the same formulas, every element through the same lanes, so the
// bits do not depend on the thread count). ReLU takes the 8-lane path too, as a compare and a
// mask: the same bits as the scalar x > 0 ? x : 0 and dy * (x > 0 ? 1 : 0), but GCC compiles
// those as a branch per element (it may not if-convert a multiply that could trap), which made
// ReLU's backward 4 % of a ResNet-50 training step.
#include "kernels/activation.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "kernels/cpu/vector_math.h"

namespace cxr::cpu {

namespace {

// y = f(x) and dx = dy f'(x), as functors for vec8::map8.
template <Activation A>
struct Value8 {
  CXR_AVX2 __m256 operator()(__m256 x, __m256) const {
    if constexpr (A == Activation::ReLU) return vec8::relu(x);
    else if constexpr (A == Activation::SiLU) return vec8::silu(x);
    else if constexpr (A == Activation::Sigmoid) return vec8::sigmoid(x);
    else return vec8::gelu(x);
  }
};
template <Activation A>
struct Grad8 {
  CXR_AVX2 __m256 operator()(__m256 x, __m256 dy) const {
    if constexpr (A == Activation::ReLU) return _mm256_mul_ps(dy, vec8::relu_derivative(x));
    else if constexpr (A == Activation::SiLU) return _mm256_mul_ps(dy, vec8::silu_derivative(x));
    else if constexpr (A == Activation::Sigmoid) return _mm256_mul_ps(dy, vec8::sigmoid_derivative(x));
    else return _mm256_mul_ps(dy, vec8::gelu_derivative(x));
  }
};

// The tensor in blocks of kBlock floats (a multiple of 8) over the OpenMP threads.
constexpr std::int64_t kBlock = 4096;

template <typename F>
void over_blocks(std::int64_t n, F&& f) {
  const std::int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (std::int64_t b = 0; b < blocks; ++b) f(b * kBlock, std::min(kBlock, n - b * kBlock));
}

// out = F<a>(x, b) over n floats through the 8-lane code (b: dy, or null), when the CPU has
// AVX2; false (nothing done) otherwise.
template <template <Activation> class F>
bool vector_path(Activation a, const float* x, const float* b, float* out, std::int64_t n) {
  if (!vec8::has_avx2()) return false;
  const auto run = [&]<Activation A>() {
    over_blocks(n, [&](std::int64_t i, std::int64_t len) { vec8::map8(x + i, b ? b + i : nullptr, out + i, len, F<A>{}); });
  };
  if (a == Activation::ReLU) run.template operator()<Activation::ReLU>();
  else if (a == Activation::SiLU) run.template operator()<Activation::SiLU>();
  else if (a == Activation::Sigmoid) run.template operator()<Activation::Sigmoid>();
  else run.template operator()<Activation::GELU>();
  return true;
}

// The activation is a template parameter so that each loop is branch-free and vectorisable.
template <Activation A, typename T>
void forward_loop(const T* x, T* y, std::int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > (1 << 16))
  for (std::int64_t i = 0; i < n; ++i) y[i] = activation_value(A, x[i]);
}

template <Activation A, typename T>
void backward_loop(const T* x, const T* dy, T* dx, std::int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > (1 << 16))
  for (std::int64_t i = 0; i < n; ++i) dx[i] = dy[i] * activation_derivative(A, x[i]);
}

}  // namespace

template <typename T>
void activation_forward(Activation a, const T* x, T* y, std::int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    if (vector_path<Value8>(a, x, nullptr, y, n)) return;
  }
  switch (a) {
    case Activation::ReLU: return forward_loop<Activation::ReLU>(x, y, n);
    case Activation::SiLU: return forward_loop<Activation::SiLU>(x, y, n);
    case Activation::Sigmoid: return forward_loop<Activation::Sigmoid>(x, y, n);
    case Activation::GELU: return forward_loop<Activation::GELU>(x, y, n);
  }
}

template <typename T>
void activation_backward(Activation a, const T* x, const T* dy, T* dx, std::int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    if (vector_path<Grad8>(a, x, dy, dx, n)) return;
  }
  switch (a) {
    case Activation::ReLU: return backward_loop<Activation::ReLU>(x, dy, dx, n);
    case Activation::SiLU: return backward_loop<Activation::SiLU>(x, dy, dx, n);
    case Activation::Sigmoid: return backward_loop<Activation::Sigmoid>(x, dy, dx, n);
    case Activation::GELU: return backward_loop<Activation::GELU>(x, dy, dx, n);
  }
}

template void activation_forward<float>(Activation, const float*, float*, std::int64_t);
template void activation_forward<double>(Activation, const double*, double*, std::int64_t);
template void activation_backward<float>(Activation, const float*, const float*, float*, std::int64_t);
template void activation_backward<double>(Activation, const double*, const double*, double*, std::int64_t);

}  // namespace cxr::cpu
