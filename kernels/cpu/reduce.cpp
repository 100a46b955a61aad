// CPU reference of the reductions. Sums accumulate in double, so the f32 result is the
// correctly rounded value for any realistic size.
//
// Whole-tensor sums (sum, sum_of_squares) in a fixed order, the same for any number of OpenMP
// threads, bit for bit: x is cut into chunks of kSumChunk elements (a constant, not a function
// of the thread count); a chunk is summed over kSumLanes interleaved partial sums (lane j takes
// elements j, j + kSumLanes, ...; lanes are independent, so the compiler vectorises the loop
// without reordering any sum) which are then added in a fixed tree; the chunk sums land in one
// slot each and are added in chunk order. Threads take whole chunks (only above
// kSumParallelElements: below, one thread is faster), so which thread sums a chunk changes
// nothing. (v1: `omp parallel for simd reduction(+ : s)`, whose per-thread partials, and so the
// last bits of the result, depended on the thread count.) Measured against v1 on the 2-core
// Xeon VM, 1 thread, best of 7 (a quick bench, not in bench/): 65536 floats, sum 37 -> 10 us
// and sum of squares 37 -> 13 us (the 8 lanes hide the latency of the additions); 1M floats
// 221 -> 185 us and 253 -> 223 us; 11.5M floats (resnet18's gradients) 7.0 -> 6.3 ms and
// 7.6 -> 7.0 ms, memory bound. At 2 threads the machine's other jobs made the times vary
// several-fold run to run, with medians within noise of each other.
#include "kernels/reduce.h"

#include <algorithm>
#include <vector>

namespace cxr::cpu {

namespace {

constexpr int kSumLanes = 8;
// Above this many elements the chunks are spread over the threads.
constexpr std::int64_t kSumParallelElements = std::int64_t{1} << 18;

// Σ f(x_i) over one chunk, in the fixed order above.
template <typename T, typename F>
double chunk_sum(const T* x, std::int64_t n, F f) {
  double lane[kSumLanes] = {};
  std::int64_t i = 0;
  for (; i + kSumLanes <= n; i += kSumLanes)
    for (int j = 0; j < kSumLanes; ++j) lane[j] += f(static_cast<double>(x[i + j]));
  for (int j = 0; i < n; ++i, ++j) lane[j] += f(static_cast<double>(x[i]));
  for (int w = kSumLanes / 2; w > 0; w /= 2)
    for (int j = 0; j < w; ++j) lane[j] += lane[j + w];
  return lane[0];
}

// Σ f(x_i) for i < n: chunk sums (in parallel for large n) added in chunk order.
template <typename T, typename F>
double fixed_order_sum(const T* x, std::int64_t n, F f) {
  if (n <= kSumChunk) return chunk_sum(x, n, f);
  const std::int64_t chunks = (n + kSumChunk - 1) / kSumChunk;
  std::vector<double> partial(static_cast<std::size_t>(chunks));
#pragma omp parallel for schedule(static) if (n > kSumParallelElements)
  for (std::int64_t k = 0; k < chunks; ++k) {
    const std::int64_t begin = k * kSumChunk;
    partial[k] = chunk_sum(x + begin, std::min(kSumChunk, n - begin), f);
  }
  double s = 0.0;
  for (double p : partial) s += p;
  return s;
}

}  // namespace

template <typename T>
void sum(const T* x, std::int64_t n, T scale, T* out) {
  const double s = fixed_order_sum(x, n, [](double v) { return v; });
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
  return fixed_order_sum(x, n, [](double v) { return v * v; });
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
