// linear on the CPU (math in kernels/linear.h).
// Reference: the sums as loops, float and double. Fast path: three blocked sgemm calls
//   y = x w^T + b (trans B, the bias added by the GEMM as it stores y), dx = dy w, dw = dy^T x (trans A),
// and db as column sums of dy (accumulated in double, in blocks of rows).
#include <algorithm>
#include <vector>

#include "kernels/cpu/row_block_sums.h"
#include "kernels/gemm.h"
#include "kernels/linear.h"

namespace cxr::cpu {

template <typename T>
void linear_forward_reference(std::int64_t N, std::int64_t in, std::int64_t out, const T* x, const T* w, const T* b,
                              T* y) {
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t o = 0; o < out; ++o) {
      T sum = b ? b[o] : T(0);
      for (std::int64_t i = 0; i < in; ++i) sum += x[n * in + i] * w[o * in + i];
      y[n * out + o] = sum;
    }
}

template <typename T>
void linear_backward_reference(std::int64_t N, std::int64_t in, std::int64_t out, const T* x, const T* w,
                               const T* dy, T* dx, T* dw, T* db) {
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t i = 0; i < in; ++i) {
      T sum = T(0);
      for (std::int64_t o = 0; o < out; ++o) sum += dy[n * out + o] * w[o * in + i];
      dx[n * in + i] = sum;
    }
  for (std::int64_t o = 0; o < out; ++o)
    for (std::int64_t i = 0; i < in; ++i) {
      T sum = T(0);
      for (std::int64_t n = 0; n < N; ++n) sum += dy[n * out + o] * x[n * in + i];
      dw[o * in + i] = sum;
    }
  if (db)
    for (std::int64_t o = 0; o < out; ++o) {
      T sum = T(0);
      for (std::int64_t n = 0; n < N; ++n) sum += dy[n * out + o];
      db[o] = sum;
    }
}

template void linear_forward_reference<float>(std::int64_t, std::int64_t, std::int64_t, const float*, const float*,
                                              const float*, float*);
template void linear_forward_reference<double>(std::int64_t, std::int64_t, std::int64_t, const double*,
                                               const double*, const double*, double*);
template void linear_backward_reference<float>(std::int64_t, std::int64_t, std::int64_t, const float*, const float*,
                                               const float*, float*, float*, float*);
template void linear_backward_reference<double>(std::int64_t, std::int64_t, std::int64_t, const double*,
                                                const double*, const double*, double*, double*, double*);

void linear_forward(std::int64_t N, std::int64_t in, std::int64_t out, const float* x, const float* w, const float* b,
                    float* y) {
  if (b) sgemm_bias(false, true, N, out, in, 1.f, x, in, w, in, b, y, out);
  else sgemm(false, true, N, out, in, 1.f, x, in, w, in, 0.f, y, out);
}

namespace {

// partial[o] += row[o] for o < n, in double: compiled for AVX-512 and AVX2 as well, where the
// conversions and additions (two doubles a vector in the baseline build) bounded db's sums.
// Element by element, so every width gives the same bits.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void add_row_in_double(
    const float* row, double* partial, std::int64_t n) {
  for (std::int64_t o = 0; o < n; ++o) partial[o] += row[o];
}

}  // namespace

void linear_backward(std::int64_t N, std::int64_t in, std::int64_t out, const float* x, const float* w,
                     const float* dy, float* dx, float* dw, float* db) {
  sgemm(false, false, N, in, out, 1.f, dy, out, w, in, 0.f, dx, in);
  sgemm(true, false, out, in, N, 1.f, dy, out, x, in, 0.f, dw, in);
  if (db) {
    // db[o] = sum_n dy[n, o] in double, row by row (dy read in order: the column-at-a-time loop
    // jumped `out` floats per element, a cache miss each at N in the thousands, as in ConvNeXt's
    // MLPs), over blocks of rows in parallel (kernels/cpu/row_block_sums.h).
    std::vector<double> sum(static_cast<std::size_t>(out));
    sum_rows_in_blocks(N, out, sum.data(),
                       [&](std::int64_t n, double* partial) { add_row_in_double(dy + n * out, partial, out); });
    for (std::int64_t o = 0; o < out; ++o) db[o] = static_cast<float>(sum[static_cast<std::size_t>(o)]);
  }
}

}  // namespace cxr::cpu
