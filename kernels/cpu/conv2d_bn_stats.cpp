// CPU reference of the batch-norm statistics of a convolution's output (kernels/conv2d_bn_stats.h):
// per channel, double sums in two passes (mean, then squared deviations), the arithmetic of
// cpu::batch_norm2d_channel_statistics; channels in parallel.
#include "kernels/conv2d_bn_stats.h"

namespace cxr::cpu {

template <typename T>
void channel_mean_var(const T* y, T* mean, T* var, std::int64_t N, std::int64_t C, std::int64_t HW) {
  const double M = static_cast<double>(N * HW);
#pragma omp parallel for schedule(static) if (N * C * HW > (1 << 16))
  for (std::int64_t c = 0; c < C; ++c) {
    double sum = 0.0;
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t i = 0; i < HW; ++i) sum += y[(n * C + c) * HW + i];
    const double m = sum / M;
    double ss = 0.0;
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t i = 0; i < HW; ++i) {
        const double dev = y[(n * C + c) * HW + i] - m;
        ss += dev * dev;
      }
    mean[c] = static_cast<T>(m);
    var[c] = static_cast<T>(ss / M);
  }
}

template void channel_mean_var<float>(const float*, float*, float*, std::int64_t, std::int64_t, std::int64_t);
template void channel_mean_var<double>(const double*, double*, double*, std::int64_t, std::int64_t, std::int64_t);

}  // namespace cxr::cpu
