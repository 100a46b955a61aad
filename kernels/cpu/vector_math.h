// Eight floats at a time with glibc's vector math (libmvec: _ZGVdN8v_expf, _ZGVdN8v_erff, the
// AVX2 variants, part of -lm since glibc 2.35): the activations whose scalar exp / erf calls do
// not vectorise without -ffast-math (SiLU's exp was 15 % and the batch norm that calls it 26 % of
// an EfficientNet-B0 inference profile; GELU's erf 11 % of ConvNeXt-Tiny's).
//
// Each lane function computes the scalar formula of kernels/activation.h operation by
// operation (AVX2 without FMA: the same roundings as the baseline scalar code), only the exp /
// erf differ (libmvec's are within a few ulp of the scalar ones). map8 runs a lane function over
// a whole array, the last partial block padded, so that an element's bits never depend on its
// position or on how the threads split the array. Callers check has_avx2() and keep their
// scalar loop for CPUs without it (and for double).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

extern "C" {
__m256 _ZGVdN8v_expf(__m256);
__m256 _ZGVdN8v_erff(__m256);
}

#define CXR_AVX2 __attribute__((target("avx2")))

namespace cxr::cpu::vec8 {

inline bool has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}

CXR_AVX2 inline __m256 set(float v) { return _mm256_set1_ps(v); }
CXR_AVX2 inline __m256 neg(__m256 x) { return _mm256_xor_ps(x, set(-0.f)); }  // exactly -x
CXR_AVX2 inline __m256 exp(__m256 x) { return _ZGVdN8v_expf(x); }
CXR_AVX2 inline __m256 erf(__m256 x) { return _ZGVdN8v_erff(x); }

// relu(x) = x > 0 ? x : 0 (NaN and -0 give +0, as the scalar compare does)
CXR_AVX2 inline __m256 positive(__m256 x) { return _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ); }
CXR_AVX2 inline __m256 relu(__m256 x) { return _mm256_and_ps(positive(x), x); }
// sigmoid(x) = 1 / (1 + exp(-x))
CXR_AVX2 inline __m256 sigmoid(__m256 x) { return _mm256_div_ps(set(1.f), _mm256_add_ps(set(1.f), exp(neg(x)))); }
// silu(x) = x / (1 + exp(-x))
CXR_AVX2 inline __m256 silu(__m256 x) { return _mm256_div_ps(x, _mm256_add_ps(set(1.f), exp(neg(x)))); }
// gelu(x) = (0.5 x) (1 + erf(x / sqrt 2))
CXR_AVX2 inline __m256 gelu(__m256 x) {
  const __m256 e = erf(_mm256_mul_ps(x, set(0.70710678118654752440f)));
  return _mm256_mul_ps(_mm256_mul_ps(set(0.5f), x), _mm256_add_ps(set(1.f), e));
}

// The derivatives (kernels/activation.h activation_derivative).
// relu' = x > 0 ? 1 : 0
CXR_AVX2 inline __m256 relu_derivative(__m256 x) { return _mm256_and_ps(positive(x), set(1.f)); }
// sigmoid' = s (1 - s)
CXR_AVX2 inline __m256 sigmoid_derivative(__m256 x) {
  const __m256 s = sigmoid(x);
  return _mm256_mul_ps(s, _mm256_sub_ps(set(1.f), s));
}
// silu' = s (1 + x (1 - s)), s = sigmoid(x)
CXR_AVX2 inline __m256 silu_derivative(__m256 x) {
  const __m256 s = sigmoid(x);
  return _mm256_mul_ps(s, _mm256_add_ps(set(1.f), _mm256_mul_ps(x, _mm256_sub_ps(set(1.f), s))));
}
// gelu' = cdf + x pdf, cdf = 0.5 (1 + erf(x / sqrt 2)), pdf = exp((-0.5 x) x) / sqrt(2 pi)
CXR_AVX2 inline __m256 gelu_derivative(__m256 x) {
  const __m256 e = erf(_mm256_mul_ps(x, set(0.70710678118654752440f)));
  const __m256 cdf = _mm256_mul_ps(set(0.5f), _mm256_add_ps(set(1.f), e));
  const __m256 pdf =
      _mm256_mul_ps(set(0.39894228040143267794f), exp(_mm256_mul_ps(_mm256_mul_ps(set(-0.5f), x), x)));
  return _mm256_add_ps(cdf, _mm256_mul_ps(x, pdf));
}

// out[i] = f(a[i], b[i]) for i < n (b may be null: f sees zeros), 8 at a time, the tail padded
// with zeros. f: a functor whose operator() is CXR_AVX2 (so that it inlines here).
template <typename F>
CXR_AVX2 void map8(const float* a, const float* b, float* out, std::int64_t n, F f) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, f(_mm256_loadu_ps(a + i), b ? _mm256_loadu_ps(b + i) : _mm256_setzero_ps()));
  if (i < n) {
    alignas(32) float ta[8] = {}, tb[8] = {}, to[8];
    std::copy(a + i, a + n, ta);
    if (b) std::copy(b + i, b + n, tb);
    _mm256_store_ps(to, f(_mm256_load_ps(ta), _mm256_load_ps(tb)));
    std::copy(to, to + (n - i), out + i);
  }
}

}  // namespace cxr::cpu::vec8
