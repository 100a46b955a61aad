// CPU reference of the batch-norm statistics of a convolution's output (kernels/conv2d_bn_stats.h):
// per channel, batch norm's own two-pass double sums (cpu::batch_norm2d_channel_moments);
// channels in parallel.
#include "kernels/conv2d_bn_stats.h"

#include "kernels/batch_norm.h"

namespace cxr::cpu {

template <typename T>
void channel_mean_var(const T* y, T* mean, T* var, std::int64_t N, std::int64_t C, std::int64_t HW) {
#pragma omp parallel for schedule(static) if (N * C * HW > (1 << 16))
  for (std::int64_t c = 0; c < C; ++c) {
    const ChannelMoments m = batch_norm2d_channel_moments(y, N, C, HW, c);
    mean[c] = static_cast<T>(m.mean);
    var[c] = static_cast<T>(m.ss / static_cast<double>(N * HW));
  }
}

template void channel_mean_var<float>(const float*, float*, float*, std::int64_t, std::int64_t, std::int64_t);
template void channel_mean_var<double>(const double*, double*, double*, std::int64_t, std::int64_t, std::int64_t);

}  // namespace cxr::cpu
