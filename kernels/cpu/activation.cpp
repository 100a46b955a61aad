// CPU reference of the activations: y[i] = f(x[i]), dx[i] = dy[i] f'(x[i]).
// bf16 tensors never reach these loops: kernels/activation.cpp widens them to f32 (exact) and rounds
// the result to bf16 once, which defines the bf16 op that the CUDA kernels must match.
//
// GELU in f32 takes glibc's vector erff / expf (libmvec, the AVX2 variants _ZGVdN8v_*, at most
// a few ulp from the scalar ones) where the CPU has AVX2: the scalar erff call was 11 % of a
// ConvNeXt-Tiny inference profile, and a loop calling it does not vectorise without
// -ffast-math. Every element goes through the same 8-lane code, the last partial block padded,
// so the bits do not depend on where the threads split the tensor.
#include "kernels/activation.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

extern "C" {
__m256 _ZGVdN8v_erff(__m256);  // libmvec (glibc >= 2.35), part of -lm
__m256 _ZGVdN8v_expf(__m256);
}

namespace cxr::cpu {

namespace {

// --- GELU, 8 lanes (AVX2, no FMA: the scalar formulas' roundings, operation by operation) ----

constexpr float kInvSqrt2 = 0.70710678118654752440f;
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;

// y = (0.5 x) (1 + erf(x / sqrt 2))
__attribute__((target("avx2"))) __m256 gelu8(__m256 x) {
  const __m256 e = _ZGVdN8v_erff(_mm256_mul_ps(x, _mm256_set1_ps(kInvSqrt2)));
  return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(_mm256_set1_ps(1.f), e));
}

// dx = dy (cdf + x pdf), cdf = 0.5 (1 + erf(x / sqrt 2)), pdf = exp((-0.5 x) x) / sqrt(2 pi)
__attribute__((target("avx2"))) __m256 gelu_grad8(__m256 x, __m256 dy) {
  const __m256 e = _ZGVdN8v_erff(_mm256_mul_ps(x, _mm256_set1_ps(kInvSqrt2)));
  const __m256 cdf = _mm256_mul_ps(_mm256_set1_ps(0.5f), _mm256_add_ps(_mm256_set1_ps(1.f), e));
  const __m256 g = _ZGVdN8v_expf(_mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(-0.5f), x), x));
  const __m256 pdf = _mm256_mul_ps(_mm256_set1_ps(kInvSqrt2Pi), g);
  return _mm256_mul_ps(dy, _mm256_add_ps(cdf, _mm256_mul_ps(x, pdf)));
}

__attribute__((target("avx2"))) void gelu_forward_avx2(const float* x, float* y, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, gelu8(_mm256_loadu_ps(x + i)));
  if (i < n) {
    alignas(32) float in[8] = {}, out[8];
    std::copy(x + i, x + n, in);
    _mm256_store_ps(out, gelu8(_mm256_load_ps(in)));
    std::copy(out, out + (n - i), y + i);
  }
}

__attribute__((target("avx2"))) void gelu_backward_avx2(const float* x, const float* dy, float* dx, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dx + i, gelu_grad8(_mm256_loadu_ps(x + i), _mm256_loadu_ps(dy + i)));
  if (i < n) {
    alignas(32) float in[8] = {}, g[8] = {}, out[8];
    std::copy(x + i, x + n, in);
    std::copy(dy + i, dy + n, g);
    _mm256_store_ps(out, gelu_grad8(_mm256_load_ps(in), _mm256_load_ps(g)));
    std::copy(out, out + (n - i), dx + i);
  }
}

bool has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}

// The tensor in blocks of kBlock floats (a multiple of 8) over the OpenMP threads.
constexpr std::int64_t kBlock = 4096;

template <typename F>
void over_blocks(std::int64_t n, F&& f) {
  const std::int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (std::int64_t b = 0; b < blocks; ++b) f(b * kBlock, std::min(kBlock, n - b * kBlock));
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
    if (a == Activation::GELU && has_avx2())
      return over_blocks(n, [&](std::int64_t i, std::int64_t len) { gelu_forward_avx2(x + i, y + i, len); });
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
    if (a == Activation::GELU && has_avx2())
      return over_blocks(n, [&](std::int64_t i, std::int64_t len) { gelu_backward_avx2(x + i, dy + i, dx + i, len); });
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
