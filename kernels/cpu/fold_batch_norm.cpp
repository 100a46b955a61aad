// Folding an evaluation batch norm into a convolution's weights (math in kernels/fold_batch_norm.h).
#include "kernels/fold_batch_norm.h"

#include <cmath>

namespace cxr::cpu {

void fold_batch_norm(const float* w, const float* conv_bias, const float* gamma, const float* beta,
                     const float* mean, const float* var, float eps, std::int64_t K, std::int64_t per_channel,
                     float* w_out, float* b_out) {
#pragma omp parallel for schedule(static) if (K * per_channel > (1 << 16))
  for (std::int64_t k = 0; k < K; ++k) {
    const double scale = double(gamma[k]) / std::sqrt(double(var[k]) + double(eps));
    const double b = conv_bias ? double(conv_bias[k]) : 0.0;
    b_out[k] = static_cast<float>(double(beta[k]) + (b - double(mean[k])) * scale);
    const float* from = w + k * per_channel;
    float* to = w_out + k * per_channel;
    for (std::int64_t i = 0; i < per_channel; ++i) to[i] = static_cast<float>(double(from[i]) * scale);
  }
}

}  // namespace cxr::cpu
