// CPU reference of the reductions. Sums accumulate in double, so the f32 result is the
// correctly rounded value for any realistic size.
#include "kernels/reduce.h"

namespace cxr::cpu {

template <typename T>
void sum(const T* x, std::int64_t n, T scale, T* out) {
  double s = 0.0;
#pragma omp parallel for simd reduction(+ : s) schedule(static) if (n > (1 << 18))
  for (std::int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i]);
  out[0] = static_cast<T>(s * static_cast<double>(scale));
}

template <typename T>
void fill_scaled(const T* dy, T scale, T* y, std::int64_t n) {
  const T v = dy[0] * scale;
  for (std::int64_t i = 0; i < n; ++i) y[i] = v;
}

template <typename T>
void sum_dim(const T* x, T* y, std::int64_t outer, std::int64_t d, std::int64_t inner) {
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t i = 0; i < inner; ++i) {
      double s = 0.0;
      for (std::int64_t k = 0; k < d; ++k) s += static_cast<double>(x[(o * d + k) * inner + i]);
      y[o * inner + i] = static_cast<T>(s);
    }
}

template <typename T>
void sum_dim_backward(const T* dy, T* dx, std::int64_t outer, std::int64_t d, std::int64_t inner) {
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t k = 0; k < d; ++k)
      for (std::int64_t i = 0; i < inner; ++i) dx[(o * d + k) * inner + i] = dy[o * inner + i];
}

template <typename T>
double sum_of_squares(const T* x, std::int64_t n) {
  double s = 0.0;
#pragma omp parallel for simd reduction(+ : s) schedule(static) if (n > (1 << 18))
  for (std::int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  return s;
}

template <typename T>
void scale(T* x, std::int64_t n, T s) {
#pragma omp parallel for simd schedule(static) if (n > (1 << 18))
  for (std::int64_t i = 0; i < n; ++i) x[i] *= s;
}

#define CXR_INSTANTIATE(T)                                                                   \
  template void sum<T>(const T*, std::int64_t, T, T*);                                       \
  template void fill_scaled<T>(const T*, T, T*, std::int64_t);                               \
  template void sum_dim<T>(const T*, T*, std::int64_t, std::int64_t, std::int64_t);          \
  template void sum_dim_backward<T>(const T*, T*, std::int64_t, std::int64_t, std::int64_t); \
  template double sum_of_squares<T>(const T*, std::int64_t);                                 \
  template void scale<T>(T*, std::int64_t, T);
CXR_INSTANTIATE(float)
CXR_INSTANTIATE(double)
#undef CXR_INSTANTIATE

}  // namespace cxr::cpu
