// CPU reference of layer norm over the last dimension (see kernels/layer_norm.h for the math).
// Row statistics in two passes (mean, then centred squares), accumulated in double (four
// interleaved lanes, kernels/lane_sums.h, as the backward's row sums); dweight and
// dbias as double sums over blocks of rows (the same at any thread count).
// bf16 tensors never reach these loops: kernels/layer_norm.cpp widens them to f32 (exact) and rounds
// the result to bf16 once, which defines the bf16 op that the CUDA kernels must match.
#include "kernels/layer_norm.h"

#include <cmath>
#include <vector>

#include "kernels/cpu/row_block_sums.h"
#include "kernels/lane_sums.h"

namespace cxr::cpu {

template <typename T>
void layer_norm_forward(const T* x, const T* weight, const T* bias, T* y, T* mean, T* rstd, std::int64_t M,
                        std::int64_t C, T eps) {
#pragma omp parallel for schedule(static) if (M * C > (1 << 16))
  for (std::int64_t m = 0; m < M; ++m) {
    const T* xr = x + m * C;
    LaneSums s, ss;
    s.add(C, [&](std::int64_t c) { return static_cast<double>(xr[c]); });
    const double mu = s.total() / static_cast<double>(C);
    ss.add(C, [&](std::int64_t c) { return (xr[c] - mu) * (xr[c] - mu); });
    const T r = static_cast<T>(1.0 / std::sqrt(ss.total() / static_cast<double>(C) + static_cast<double>(eps)));
    const T mu_t = static_cast<T>(mu);
    for (std::int64_t c = 0; c < C; ++c) y[m * C + c] = (xr[c] - mu_t) * r * weight[c] + bias[c];
    mean[m] = mu_t;
    rstd[m] = r;
  }
}

template <typename T>
void layer_norm_backward(const T* dy, const T* x, const T* weight, const T* mean, const T* rstd, T* dx, T* dweight,
                         T* dbias, std::int64_t M, std::int64_t C) {
  // dx, row by row.
#pragma omp parallel for schedule(static) if (M * C > (1 << 16))
  for (std::int64_t m = 0; m < M; ++m) {
    const T* xr = x + m * C;
    const T* gr = dy + m * C;
    LaneSums sg, sgx;
    const auto g_at = [&](std::int64_t c) { return static_cast<double>(gr[c]) * weight[c]; };
    const auto xh_at = [&](std::int64_t c) { return (static_cast<double>(xr[c]) - mean[m]) * rstd[m]; };
    sg.add(C, g_at);
    sgx.add(C, [&](std::int64_t c) { return g_at(c) * xh_at(c); });
    const double mg = sg.total() / static_cast<double>(C), mgx = sgx.total() / static_cast<double>(C);
    for (std::int64_t c = 0; c < C; ++c) {
      const double g = static_cast<double>(gr[c]) * weight[c];
      const double xh = (static_cast<double>(xr[c]) - mean[m]) * rstd[m];
      dx[m * C + c] = static_cast<T>(rstd[m] * (g - mg - xh * mgx));
    }
  }
  // dweight, dbias: column sums over the rows (in blocks of rows, kernels/cpu/row_block_sums.h).
  std::vector<double> sums(static_cast<std::size_t>(2 * C));  // dweight, then dbias
  sum_rows_in_blocks(M, 2 * C, sums.data(), [&](std::int64_t m, double* dw_db) {
    for (std::int64_t c = 0; c < C; ++c) {
      const double xh = (static_cast<double>(x[m * C + c]) - mean[m]) * rstd[m];
      dw_db[c] += dy[m * C + c] * xh;
      dw_db[C + c] += dy[m * C + c];
    }
  });
  for (std::int64_t c = 0; c < C; ++c) {
    dweight[c] = static_cast<T>(sums[static_cast<std::size_t>(c)]);
    dbias[c] = static_cast<T>(sums[static_cast<std::size_t>(C + c)]);
  }
}

template void layer_norm_forward<float>(const float*, const float*, const float*, float*, float*, float*, std::int64_t,
                                        std::int64_t, float);
template void layer_norm_forward<double>(const double*, const double*, const double*, double*, double*, double*,
                                         std::int64_t, std::int64_t, double);
template void layer_norm_backward<float>(const float*, const float*, const float*, const float*, const float*, float*,
                                         float*, float*, std::int64_t, std::int64_t);
template void layer_norm_backward<double>(const double*, const double*, const double*, const double*, const double*,
                                          double*, double*, double*, std::int64_t, std::int64_t);

}  // namespace cxr::cpu
