// CPU reference of the batch norm's pieces for a batch split over processes (math in
// kernels/batch_norm_sync.h).
//
//   batch_stats      mean_c = (1/M) sum x,  var_c = (1/M) sum (x - mean_c)^2   (two passes, double)
//   backward_reduce  g = dy act'(z), z = (x - mean_c) invstd_c weight_c + bias_c
//                    sum_g_c = sum g,  sum_gxhat_c = sum g (x - mean_c) invstd_c  (double)
//   backward_elemt   dx = weight_c invstd_c (g - sum_g_c / count - xhat sum_gxhat_c / count)
//
// Shapes: x, dy, dx (N, C, HW); everything else (C). The statistics are channel_mean_var's (the
// training forward's, kernels/cpu/batch_norm.cpp), and backward_reduce / backward_elemt compute z,
// g, the sums and dx by the same expressions, in the same order, as batch_norm2d_backward's loop:
// on the whole batch the sums are its dbias and dweight bit for bit, and dx differs from its dx
// only through sum_g and sum_gxhat arriving rounded to T.
// g comes from batch_norm2d_act_grad (kernels/batch_norm.h), the function the whole-batch
// backward takes it from, 256 values at a time.
// Parallel over channels (the sums: one channel's values in order, so any thread count gives the
// same bits) and over (image, channel) planes (dx, no sums).
// Passes over the N*C*HW values: batch_stats reads x twice; backward_reduce reads x, dy;
// backward_elemt reads x, dy and writes dx.
#include "kernels/batch_norm_sync.h"

#include <algorithm>

#include "kernels/batch_norm.h"

namespace cxr::cpu {

namespace {

template <typename T>
void reduce_loop(BnActivation act, const T* dy, const T* x, const T* weight, const T* bias, const T* mean_c,
                 const T* invstd_c, T* sum_g, T* sum_gxhat, std::int64_t N, std::int64_t C, std::int64_t HW) {
#pragma omp parallel for schedule(static) if (N * C * HW > (1 << 16))
  for (std::int64_t c = 0; c < C; ++c) {
    const T mean_t = mean_c[c], invstd_t = invstd_c[c], w = weight[c], b = bias[c];
    const double mean = mean_t, invstd = invstd_t;
    LaneSums sg, sgxh;
    T g[kBnGradChunk];
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t i0 = 0; i0 < HW; i0 += kBnGradChunk) {
        const std::int64_t k0 = (n * C + c) * HW + i0, len = std::min(kBnGradChunk, HW - i0);
        batch_norm2d_act_grad(act, x + k0, dy + k0, mean_t, invstd_t, w, b, g, len);
        add_grad_sums(g, x + k0, mean, invstd, len, sg, sgxh);
      }
    sum_g[c] = static_cast<T>(sg.total());
    sum_gxhat[c] = static_cast<T>(sgxh.total());
  }
}

template <typename T>
void elemt_loop(BnActivation act, const T* dy, const T* x, const T* weight, const T* bias, const T* mean_c,
                const T* invstd_c, const T* sum_g, const T* sum_gxhat, T* dx, std::int64_t N, std::int64_t C,
                std::int64_t HW, std::int64_t count) {
  const double M = static_cast<double>(count);
#pragma omp parallel for collapse(2) schedule(static) if (N * C * HW > (1 << 16))
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t c = 0; c < C; ++c) {
      const T mean_t = mean_c[c], invstd_t = invstd_c[c], w = weight[c], b = bias[c];
      const double mean = mean_t, invstd = invstd_t, sg = sum_g[c], sgxh = sum_gxhat[c];
      const double scale = static_cast<double>(w) * invstd;
      T g[kBnGradChunk];
      for (std::int64_t i0 = 0; i0 < HW; i0 += kBnGradChunk) {
        const std::int64_t k0 = (n * C + c) * HW + i0, len = std::min(kBnGradChunk, HW - i0);
        batch_norm2d_act_grad(act, x + k0, dy + k0, mean_t, invstd_t, w, b, g, len);
        for (std::int64_t j = 0; j < len; ++j) {
          const double xhat = (x[k0 + j] - mean) * invstd;
          dx[k0 + j] = static_cast<T>(scale * (g[j] - sg / M - xhat * sgxh / M));
        }
      }
    }
}

}  // namespace

template <typename T>
void batch_norm2d_batch_stats(const T* x, T* mean, T* var, std::int64_t N, std::int64_t C, std::int64_t HW) {
  channel_mean_var(x, mean, var, N, C, HW);
}

template <typename T>
void batch_norm2d_backward_reduce(BnActivation act, const T* dy, const T* x, const T* weight, const T* bias,
                                  const T* mean, const T* invstd, T* sum_g, T* sum_gxhat, std::int64_t N,
                                  std::int64_t C, std::int64_t HW) {
  reduce_loop(act, dy, x, weight, bias, mean, invstd, sum_g, sum_gxhat, N, C, HW);
}

template <typename T>
void batch_norm2d_backward_elemt(BnActivation act, const T* dy, const T* x, const T* weight, const T* bias,
                                 const T* mean, const T* invstd, const T* sum_g, const T* sum_gxhat, T* dx,
                                 std::int64_t N, std::int64_t C, std::int64_t HW, std::int64_t count) {
  elemt_loop(act, dy, x, weight, bias, mean, invstd, sum_g, sum_gxhat, dx, N, C, HW, count);
}

#define CXR_INSTANTIATE(T)                                                                                        \
  template void batch_norm2d_batch_stats<T>(const T*, T*, T*, std::int64_t, std::int64_t, std::int64_t);          \
  template void batch_norm2d_backward_reduce<T>(BnActivation, const T*, const T*, const T*, const T*, const T*,   \
                                                const T*, T*, T*, std::int64_t, std::int64_t, std::int64_t);      \
  template void batch_norm2d_backward_elemt<T>(BnActivation, const T*, const T*, const T*, const T*, const T*,    \
                                               const T*, const T*, const T*, T*, std::int64_t, std::int64_t,      \
                                               std::int64_t, std::int64_t);
CXR_INSTANTIATE(float)
CXR_INSTANTIATE(double)
#undef CXR_INSTANTIATE

}  // namespace cxr::cpu
