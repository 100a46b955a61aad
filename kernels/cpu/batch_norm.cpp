// CPU reference of 2-D batch norm (math in kernels/batch_norm.h). Per channel, two passes
// over its N*HW values (mean, then centred squares), accumulated in double; channels in
// parallel. The statistics of a channel are a function of their own
// (batch_norm2d_channel_statistics), shared with the fused batch norm + activation
// (kernels/cpu/batch_norm_act.cpp). A bf16 x is widened to f32 and y rounded to bf16 around
// these loops, by the tensor-level ops (batch_norm_cpu_in_f32 in kernels/batch_norm.cpp).
#include "kernels/batch_norm.h"

#include <cmath>

namespace cxr::cpu {

template <typename T>
ChannelMoments batch_norm2d_channel_moments(const T* x, std::int64_t N, std::int64_t C, std::int64_t HW,
                                            std::int64_t c) {
  double sum = 0.0;
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t i = 0; i < HW; ++i) sum += x[(n * C + c) * HW + i];
  const double mean = sum / static_cast<double>(N * HW);
  double ss = 0.0;
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t i = 0; i < HW; ++i) {
      const double d = x[(n * C + c) * HW + i] - mean;
      ss += d * d;
    }
  return {mean, ss};
}

template <typename T>
void batch_norm2d_channel_statistics(const T* x, T* saved_mean, T* saved_invstd, T* running_mean, T* running_var,
                                     std::int64_t N, std::int64_t C, std::int64_t HW, std::int64_t c, T momentum,
                                     T eps) {
  const std::int64_t M = N * HW;
  const auto [mean, ss] = batch_norm2d_channel_moments(x, N, C, HW, c);
  const double var = ss / static_cast<double>(M);
  saved_mean[c] = static_cast<T>(mean);
  saved_invstd[c] = static_cast<T>(1.0 / std::sqrt(var + static_cast<double>(eps)));
  if (running_mean) {
    const double unbiased = ss / static_cast<double>(M - 1);
    running_mean[c] = static_cast<T>((1 - momentum) * running_mean[c] + momentum * mean);
    running_var[c] = static_cast<T>((1 - momentum) * running_var[c] + momentum * unbiased);
  }
}

template <typename T>
void batch_norm2d_channel_statistics_from_moments(T mean_t, T var_t, T* saved_mean, T* saved_invstd, T* running_mean,
                                                  T* running_var, std::int64_t M, std::int64_t c, T momentum, T eps) {
  const double mean = mean_t, var = var_t;
  saved_mean[c] = mean_t;
  saved_invstd[c] = static_cast<T>(1.0 / std::sqrt(var + static_cast<double>(eps)));
  if (running_mean) {
    const double unbiased = var * static_cast<double>(M) / static_cast<double>(M - 1);
    running_mean[c] = static_cast<T>((1 - momentum) * running_mean[c] + momentum * mean);
    running_var[c] = static_cast<T>((1 - momentum) * running_var[c] + momentum * unbiased);
  }
}

template <typename T>
void batch_norm2d_forward_train(const T* x, const T* weight, const T* bias, T* y, T* saved_mean, T* saved_invstd,
                                T* running_mean, T* running_var, std::int64_t N, std::int64_t C, std::int64_t HW,
                                T momentum, T eps) {
#pragma omp parallel for schedule(static) if (N * C * HW > (1 << 16))
  for (std::int64_t c = 0; c < C; ++c) {
    batch_norm2d_channel_statistics(x, saved_mean, saved_invstd, running_mean, running_var, N, C, HW, c, momentum,
                                    eps);
    const T mean = saved_mean[c], invstd = saved_invstd[c];
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t i = 0; i < HW; ++i) {
        const std::int64_t k = (n * C + c) * HW + i;
        y[k] = (x[k] - mean) * invstd * weight[c] + bias[c];
      }
  }
}

template <typename T>
void batch_norm2d_forward_eval(const T* x, const T* weight, const T* bias, const T* running_mean, const T* running_var,
                               T* y, std::int64_t N, std::int64_t C, std::int64_t HW, T eps) {
#pragma omp parallel for collapse(2) schedule(static) if (N * C * HW > (1 << 16))
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t c = 0; c < C; ++c) {
      const T invstd = T(1) / std::sqrt(running_var[c] + eps);
      for (std::int64_t i = 0; i < HW; ++i) {
        const std::int64_t k = (n * C + c) * HW + i;
        y[k] = (x[k] - running_mean[c]) * invstd * weight[c] + bias[c];
      }
    }
}

template <typename T>
void batch_norm2d_backward(const T* dy, const T* x, const T* weight, const T* saved_mean, const T* saved_invstd, T* dx,
                           T* dweight, T* dbias, std::int64_t N, std::int64_t C, std::int64_t HW) {
  const double M = static_cast<double>(N * HW);
#pragma omp parallel for schedule(static) if (N * C * HW > (1 << 16))
  for (std::int64_t c = 0; c < C; ++c) {
    const double mean = saved_mean[c], invstd = saved_invstd[c];
    double sdy = 0.0, sdyxh = 0.0;
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t i = 0; i < HW; ++i) {
        const std::int64_t k = (n * C + c) * HW + i;
        sdy += dy[k];
        sdyxh += dy[k] * (x[k] - mean) * invstd;
      }
    dbias[c] = static_cast<T>(sdy);
    dweight[c] = static_cast<T>(sdyxh);
    const double scale = static_cast<double>(weight[c]) * invstd;
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t i = 0; i < HW; ++i) {
        const std::int64_t k = (n * C + c) * HW + i;
        const double xhat = (x[k] - mean) * invstd;
        dx[k] = static_cast<T>(scale * (dy[k] - sdy / M - xhat * sdyxh / M));
      }
  }
}

// Evaluation backward: the statistics are constants, so dx is a per-channel scaling of dy;
// the two parameter gradients are per-channel sums, accumulated in double.
template <typename T>
void batch_norm2d_eval_backward(const T* dy, const T* x, const T* weight, const T* running_mean,
                                const T* running_var, T* dx, T* dweight, T* dbias, std::int64_t N, std::int64_t C,
                                std::int64_t HW, T eps) {
#pragma omp parallel for schedule(static) if (N * C * HW > (1 << 16))
  for (std::int64_t c = 0; c < C; ++c) {
    const double invstd = 1.0 / std::sqrt(static_cast<double>(running_var[c]) + static_cast<double>(eps));
    const double mean = running_mean[c];
    const double scale = static_cast<double>(weight[c]) * invstd;
    double sdy = 0.0, sdyxh = 0.0;
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t i = 0; i < HW; ++i) {
        const std::int64_t k = (n * C + c) * HW + i;
        const double xhat = (x[k] - mean) * invstd;
        sdy += dy[k];
        sdyxh += dy[k] * xhat;
        dx[k] = static_cast<T>(dy[k] * scale);
      }
    dbias[c] = static_cast<T>(sdy);
    dweight[c] = static_cast<T>(sdyxh);
  }
}

template void batch_norm2d_forward_train<float>(const float*, const float*, const float*, float*, float*, float*,
                                                float*, float*, std::int64_t, std::int64_t, std::int64_t, float, float);
template void batch_norm2d_forward_train<double>(const double*, const double*, const double*, double*, double*, double*,
                                                 double*, double*, std::int64_t, std::int64_t, std::int64_t, double,
                                                 double);
template void batch_norm2d_forward_eval<float>(const float*, const float*, const float*, const float*, const float*,
                                               float*, std::int64_t, std::int64_t, std::int64_t, float);
template void batch_norm2d_forward_eval<double>(const double*, const double*, const double*, const double*,
                                                const double*, double*, std::int64_t, std::int64_t, std::int64_t,
                                                double);
template void batch_norm2d_backward<float>(const float*, const float*, const float*, const float*, const float*, float*,
                                           float*, float*, std::int64_t, std::int64_t, std::int64_t);
template void batch_norm2d_backward<double>(const double*, const double*, const double*, const double*, const double*,
                                            double*, double*, double*, std::int64_t, std::int64_t, std::int64_t);

template void batch_norm2d_channel_statistics<float>(const float*, float*, float*, float*, float*, std::int64_t,
                                                     std::int64_t, std::int64_t, std::int64_t, float, float);
template void batch_norm2d_channel_statistics<double>(const double*, double*, double*, double*, double*, std::int64_t,
                                                      std::int64_t, std::int64_t, std::int64_t, double, double);

template ChannelMoments batch_norm2d_channel_moments<float>(const float*, std::int64_t, std::int64_t, std::int64_t,
                                                            std::int64_t);
template ChannelMoments batch_norm2d_channel_moments<double>(const double*, std::int64_t, std::int64_t, std::int64_t,
                                                             std::int64_t);
template void batch_norm2d_channel_statistics_from_moments<float>(float, float, float*, float*, float*, float*,
                                                                  std::int64_t, std::int64_t, float, float);
template void batch_norm2d_channel_statistics_from_moments<double>(double, double, double*, double*, double*, double*,
                                                                   std::int64_t, std::int64_t, double, double);

template void batch_norm2d_eval_backward<float>(const float*, const float*, const float*, const float*, const float*,
                                                float*, float*, float*, std::int64_t, std::int64_t, std::int64_t,
                                                float);
template void batch_norm2d_eval_backward<double>(const double*, const double*, const double*, const double*,
                                                 const double*, double*, double*, double*, std::int64_t,
                                                 std::int64_t, std::int64_t, double);

}  // namespace cxr::cpu
