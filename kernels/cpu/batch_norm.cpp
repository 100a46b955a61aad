// CPU reference of batch norm + activation (math and traffic in kernels/batch_norm.h).
//
//   z = (x - mean_c) invstd_c weight_c + bias_c,   y = act(z)   (identity: the plain batch norm)
//   backward: g = dy act'(z), then batch norm's backward with g in place of dy.
//
// Shapes: x, y, dy, dx (N, C, HW); statistics and parameters (C). Per channel, the statistics
// take two passes over its N*HW values (mean, then centred squares), accumulated in double
// (four interleaved lanes, LaneSums in kernels/lane_sums.h);
// channels (or images x channels) run in parallel. Each loop has the activation as a template
// parameter (branch-free, vectorised: the relu gradient is a select, not a product that GCC
// turns into a mispredicted branch), and no z tensor is stored: z is computed where it is
// needed, by the same float expression everywhere, and every sum is a double sum in the same
// order whatever the activation. So act = identity gives what a batch norm without an
// activation gives, and relu/silu equal that batch norm followed by the activation op (bit for
// bit with this compiler; the tests allow 1e-6 relative; relu's gradient may differ in the sign
// of a zero, see bn_act_grad).
// Passes over the N*C*HW values in memory:
//   training forward  read x twice (statistics, apply) + write y
//   training backward read x, dy + read x + write dx (g of one channel is kept in a per-thread
//                     buffer of N*HW values, so silu's exp runs once per value)
//   eval              forward read x + write y; backward read x, dy + write dx
// Measured (OMP_NUM_THREADS=1, shared 2-core EPYC, interleaved repeats; docs/models.md): a
// training forward + backward of BN + ReLU on 8x256x56x56 takes 0.42-0.47x the time of BN then
// the ReLU op, BN + SiLU on 8x96x112x112 0.83-0.88x (SiLU's exp dominates on the CPU). In f32
// with AVX2, SiLU's value and gradient go 8 lanes at a time through glibc's vector expf
// (kernels/cpu/vector_math.h; z still by the scalar expression, operation by operation).
// A bf16 x is widened to f32 and y rounded to bf16 around these loops, by the tensor-level ops
// (kernels/batch_norm.cpp). The statistics (batch_norm2d_channel_moments, channel_mean_var) are
// also the reference of a convolution's output statistics (kernels/conv2d_bn.h).
#include "kernels/batch_norm.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "kernels/activation.h"
#include "kernels/cpu/vector_math.h"

namespace cxr::cpu {

namespace {
// Asks for the cache lines of the plane [p, p + n) (a channel's next image, C H W floats on):
// the channel loops read one plane of each image in turn, runs of a few lines that the hardware
// prefetchers do not follow from one to the next (the loads of the backward's sums waited on
// memory for 30 % of its time, ResNet-50 at 64 px).
template <typename T>
inline void prefetch_plane(const T* p, std::int64_t n) {
  for (std::int64_t i = 0; i < n; i += 64 / static_cast<std::int64_t>(sizeof(T))) __builtin_prefetch(p + i);
}
}  // namespace

template <typename T>
ChannelMoments batch_norm2d_channel_moments(const T* x, std::int64_t N, std::int64_t C, std::int64_t HW,
                                            std::int64_t c) {
  LaneSums sum, ss;
  for (std::int64_t n = 0; n < N; ++n) {
    const T* xp = x + (n * C + c) * HW;
    if (n + 1 < N) prefetch_plane(xp + C * HW, HW);
    sum.add(HW, [&](std::int64_t i) { return static_cast<double>(xp[i]); });
  }
  const double mean = sum.total() / static_cast<double>(N * HW);
  for (std::int64_t n = 0; n < N; ++n) {
    const T* xp = x + (n * C + c) * HW;
    ss.add(HW, [&](std::int64_t i) {
      const double d = xp[i] - mean;
      return d * d;
    });
  }
  return {mean, ss.total()};
}

template <typename T>
void channel_mean_var(const T* x, T* mean, T* var, std::int64_t N, std::int64_t C, std::int64_t HW) {
#pragma omp parallel for schedule(static) if (N * C * HW > (1 << 16))
  for (std::int64_t c = 0; c < C; ++c) {
    const ChannelMoments m = batch_norm2d_channel_moments(x, N, C, HW, c);
    mean[c] = static_cast<T>(m.mean);
    var[c] = static_cast<T>(m.ss / static_cast<double>(N * HW));
  }
}

namespace {

// Channel c's saved statistics and running-statistic update (skipped when running_mean is
// null) from its batch mean and its sum of squared deviations ss over M values.
template <typename T>
void channel_statistics(double mean, double ss, T* saved_mean, T* saved_invstd, T* running_mean, T* running_var,
                        std::int64_t M, std::int64_t c, T momentum, T eps) {
  const double var = ss / static_cast<double>(M);
  saved_mean[c] = static_cast<T>(mean);
  saved_invstd[c] = static_cast<T>(1.0 / std::sqrt(var + static_cast<double>(eps)));
  if (running_mean) {
    const double unbiased = ss / static_cast<double>(M - 1);
    running_mean[c] = static_cast<T>((1 - momentum) * running_mean[c] + momentum * mean);
    running_var[c] = static_cast<T>((1 - momentum) * running_var[c] + momentum * unbiased);
  }
}

// The same for a channel whose batch mean and biased variance are given (computed elsewhere,
// e.g. in a convolution's epilogue): the same double expressions.
template <typename T>
void channel_statistics_from_moments(T mean_t, T var_t, T* saved_mean, T* saved_invstd, T* running_mean,
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

// SiLU in f32 with glibc's 8-lane expf where the CPU has AVX2 (kernels/cpu/vector_math.h): z by
// the scalar expression operation by operation, then the lanes' silu / silu'.
struct BnSilu8 {
  float mean, invstd, weight, bias;
  CXR_AVX2 __m256 z(__m256 x) const {
    return _mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(x, vec8::set(mean)), vec8::set(invstd)),
                                       vec8::set(weight)),
                         vec8::set(bias));
  }
  CXR_AVX2 __m256 operator()(__m256 x, __m256) const { return vec8::silu(z(x)); }
};
struct BnSiluGrad8 : BnSilu8 {
  CXR_AVX2 __m256 operator()(__m256 x, __m256 dy) const { return _mm256_mul_ps(dy, vec8::silu_derivative(z(x))); }
};

// One (image, channel) plane of HW values: y = act((x - mean) invstd weight + bias).
template <BnActivation A, typename T>
inline void apply_plane(const T* xp, T* yp, std::int64_t HW, T mean, T invstd, T weight, T bias) {
  if constexpr (A == BnActivation::SiLU && std::is_same_v<T, float>) {
    if (vec8::has_avx2()) return vec8::map8(xp, nullptr, yp, HW, BnSilu8{mean, invstd, weight, bias});
  }
#pragma omp simd
  for (std::int64_t i = 0; i < HW; ++i) {
    const T z = (xp[i] - mean) * invstd * weight + bias;
    yp[i] = bn_act_value<A>(z);
  }
}

// y = act((x - mean_c) invstd_c weight_c + bias_c), mean/invstd per channel.
template <BnActivation A, typename T>
void apply_loop(const T* x, const T* weight, const T* bias, const T* mean, const T* invstd, T* y, std::int64_t N,
                std::int64_t C, std::int64_t HW) {
#pragma omp parallel for collapse(2) schedule(static) if (N * C * HW > (1 << 16))
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t c = 0; c < C; ++c)
      apply_plane<A>(x + (n * C + c) * HW, y + (n * C + c) * HW, HW, mean[c], invstd[c], weight[c], bias[c]);
}

// Training forward, per channel (parallel over channels): the statistics, then the apply pass
// while the channel's values are still in cache.
template <BnActivation A, typename T>
void train_loop(const T* x, const T* weight, const T* bias, T* y, T* saved_mean, T* saved_invstd, T* running_mean,
                T* running_var, std::int64_t N, std::int64_t C, std::int64_t HW, T momentum, T eps) {
#pragma omp parallel for schedule(static) if (N * C * HW > (1 << 16))
  for (std::int64_t c = 0; c < C; ++c) {
    const ChannelMoments m = batch_norm2d_channel_moments(x, N, C, HW, c);
    channel_statistics(m.mean, m.ss, saved_mean, saved_invstd, running_mean, running_var, N * HW, c, momentum, eps);
    for (std::int64_t n = 0; n < N; ++n)
      apply_plane<A>(x + (n * C + c) * HW, y + (n * C + c) * HW, HW, saved_mean[c], saved_invstd[c], weight[c],
                     bias[c]);
  }
}

// g[j] = dy act'(z) for `len` consecutive values of one (image, channel) plane. A plain float
// loop, so the compiler vectorises it (relu' as a compare + blend, no branch to mispredict).
template <BnActivation A, typename T>
inline void grad_chunk(const T* x, const T* dy, T mean, T invstd, T w, T b, T* g, std::int64_t len) {
  if constexpr (A == BnActivation::SiLU && std::is_same_v<T, float>) {
    if (vec8::has_avx2()) return vec8::map8(x, dy, g, len, BnSiluGrad8{{mean, invstd, w, b}});
  }
#pragma omp simd
  for (std::int64_t j = 0; j < len; ++j) {
    const T z = (x[j] - mean) * invstd * w + b;
    g[j] = bn_act_grad<A>(dy[j], z);
  }
}

// Training backward, one channel c at a time: g = dy act'(z) for the channel's M values (z
// recomputed from x) into a per-thread buffer of M values (cache-resident for the layer sizes
// here; computing g once keeps silu's exp to one per value), then the two double sums and dx.
// Without an activation g is dy itself (no copy).
template <BnActivation A, typename T>
void backward_loop(const T* dy, const T* x, const T* weight, const T* bias, const T* saved_mean,
                   const T* saved_invstd, T* dx, T* dweight, T* dbias, std::int64_t N, std::int64_t C,
                   std::int64_t HW) {
  const double M = static_cast<double>(N * HW);
  constexpr bool kGIsDy = A == BnActivation::Identity;
#pragma omp parallel if (N * C * HW > (1 << 16))
  {
    std::vector<T> g_channel(kGIsDy ? 0 : static_cast<std::size_t>(N * HW));
    // g of image n's plane of channel c.
    const auto g_plane = [&](std::int64_t n, std::int64_t c) -> const T* {
      return kGIsDy ? dy + (n * C + c) * HW : g_channel.data() + n * HW;
    };
#pragma omp for schedule(static)
    for (std::int64_t c = 0; c < C; ++c) {
      const T mean_t = saved_mean[c], invstd_t = saved_invstd[c], w = weight[c], b = bias[c];
      const double mean = mean_t, invstd = invstd_t;
      LaneSums sum_g, sum_gxhat;
      for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t k0 = (n * C + c) * HW;
        const T* g = g_plane(n, c);
        if (n + 1 < N) prefetch_plane(x + k0 + C * HW, HW), prefetch_plane(dy + k0 + C * HW, HW);
        if constexpr (!kGIsDy)
          grad_chunk<A>(x + k0, dy + k0, mean_t, invstd_t, w, b, g_channel.data() + n * HW, HW);
        add_grad_sums(g, x + k0, mean, invstd, HW, sum_g, sum_gxhat);
      }
      const double sg = sum_g.total(), sgxh = sum_gxhat.total();
      dbias[c] = static_cast<T>(sg);
      dweight[c] = static_cast<T>(sgxh);
      const double scale = static_cast<double>(w) * invstd;
      for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t k0 = (n * C + c) * HW;
        const T* g = g_plane(n, c);
        for (std::int64_t i = 0; i < HW; ++i) {
          const double xhat = (x[k0 + i] - mean) * invstd;
          dx[k0 + i] = static_cast<T>(scale * (g[i] - sg / M - xhat * sgxh / M));
        }
      }
    }
  }
}

// Evaluation backward, one channel at a time: the statistics are constants, so dx is a
// per-channel scaling of g, written in the same pass as the two sums.
template <BnActivation A, typename T>
void eval_backward_loop(const T* dy, const T* x, const T* weight, const T* bias, const T* running_mean,
                        const T* running_var, T* dx, T* dweight, T* dbias, std::int64_t N, std::int64_t C,
                        std::int64_t HW, T eps) {
#pragma omp parallel for schedule(static) if (N * C * HW > (1 << 16))
  for (std::int64_t c = 0; c < C; ++c) {
    // z exactly as the evaluation forward computes it (invstd in T), the sums and dx with
    // invstd in double.
    const T invstd_t = T(1) / std::sqrt(running_var[c] + eps), mean_t = running_mean[c], w = weight[c], b = bias[c];
    const double invstd = 1.0 / std::sqrt(static_cast<double>(running_var[c]) + static_cast<double>(eps));
    const double mean = mean_t;
    const double scale = static_cast<double>(w) * invstd;
    T g[kBnGradChunk];
    LaneSums sum_g, sum_gxhat;
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t i0 = 0; i0 < HW; i0 += kBnGradChunk) {
        const std::int64_t k0 = (n * C + c) * HW + i0, len = std::min(kBnGradChunk, HW - i0);
        grad_chunk<A>(x + k0, dy + k0, mean_t, invstd_t, w, b, g, len);
        sum_g.add(len, [&](std::int64_t j) { return static_cast<double>(g[j]); });
        sum_gxhat.add(len, [&](std::int64_t j) { return g[j] * ((x[k0 + j] - mean) * invstd); });
        for (std::int64_t j = 0; j < len; ++j) dx[k0 + j] = static_cast<T>(g[j] * scale);
      }
    dbias[c] = static_cast<T>(sum_g.total());
    dweight[c] = static_cast<T>(sum_gxhat.total());
  }
}

// Calls f.template operator()<A>() with the activation as a compile-time constant.
template <typename F>
void dispatch(BnActivation act, F&& f) {
  switch (act) {
    case BnActivation::Identity: return f.template operator()<BnActivation::Identity>();
    case BnActivation::ReLU: return f.template operator()<BnActivation::ReLU>();
    case BnActivation::SiLU: return f.template operator()<BnActivation::SiLU>();
  }
}

}  // namespace

template <typename T>
void batch_norm2d_forward_train(BnActivation act, const T* x, const T* weight, const T* bias, T* y, T* saved_mean,
                                T* saved_invstd, T* running_mean, T* running_var, std::int64_t N, std::int64_t C,
                                std::int64_t HW, T momentum, T eps) {
  dispatch(act, [&]<BnActivation A>() {
    train_loop<A>(x, weight, bias, y, saved_mean, saved_invstd, running_mean, running_var, N, C, HW, momentum, eps);
  });
}

template <typename T>
void batch_norm2d_forward_train_from_stats(BnActivation act, const T* x, const T* mean, const T* var,
                                           const T* weight, const T* bias, T* y, T* saved_mean, T* saved_invstd,
                                           T* running_mean, T* running_var, std::int64_t N, std::int64_t C,
                                           std::int64_t HW, T momentum, T eps) {
  for (std::int64_t c = 0; c < C; ++c)
    channel_statistics_from_moments(mean[c], var[c], saved_mean, saved_invstd, running_mean, running_var, N * HW, c,
                                    momentum, eps);
  dispatch(act,
           [&]<BnActivation A>() { apply_loop<A>(x, weight, bias, saved_mean, saved_invstd, y, N, C, HW); });
}

template <typename T>
void batch_norm2d_act_grad(BnActivation act, const T* x, const T* dy, T mean, T invstd, T weight, T bias, T* g,
                           std::int64_t len) {
  dispatch(act, [&]<BnActivation A>() { grad_chunk<A>(x, dy, mean, invstd, weight, bias, g, len); });
}

template <typename T>
void batch_norm2d_eval_invstd(const T* running_var, T eps, T* invstd, std::int64_t C) {
  for (std::int64_t c = 0; c < C; ++c) invstd[c] = T(1) / std::sqrt(running_var[c] + eps);
}

void batch_norm2d_eval_plane(const BnEvalChannels& bn, std::int64_t c, float* h, std::int64_t HW) {
  if (!bn.mean) {  // folded (activation_only): the activation op's kernel, in place
    if (bn.act != BnActivation::Identity) activation_forward<float>(activation_of(bn.act), h, h, HW);
    return;
  }
  dispatch(bn.act, [&]<BnActivation A>() {
    apply_plane<A>(h, h, HW, bn.mean[c], bn.invstd[c], bn.weight[c], bn.bias[c]);
  });
}

template <typename T>
void batch_norm2d_forward_eval(BnActivation act, const T* x, const T* weight, const T* bias, const T* running_mean,
                               const T* running_var, T* y, std::int64_t N, std::int64_t C, std::int64_t HW, T eps) {
  std::vector<T> invstd(static_cast<std::size_t>(C));
  batch_norm2d_eval_invstd(running_var, eps, invstd.data(), C);
  dispatch(act,
           [&]<BnActivation A>() { apply_loop<A>(x, weight, bias, running_mean, invstd.data(), y, N, C, HW); });
}

template <typename T>
void batch_norm2d_backward(BnActivation act, const T* dy, const T* x, const T* weight, const T* bias,
                           const T* saved_mean, const T* saved_invstd, T* dx, T* dweight, T* dbias, std::int64_t N,
                           std::int64_t C, std::int64_t HW) {
  dispatch(act, [&]<BnActivation A>() {
    backward_loop<A>(dy, x, weight, bias, saved_mean, saved_invstd, dx, dweight, dbias, N, C, HW);
  });
}

template <typename T>
void batch_norm2d_eval_backward(BnActivation act, const T* dy, const T* x, const T* weight, const T* bias,
                                const T* running_mean, const T* running_var, T* dx, T* dweight, T* dbias,
                                std::int64_t N, std::int64_t C, std::int64_t HW, T eps) {
  dispatch(act, [&]<BnActivation A>() {
    eval_backward_loop<A>(dy, x, weight, bias, running_mean, running_var, dx, dweight, dbias, N, C, HW, eps);
  });
}

template <typename T>
void batch_norm2d_recompute(const T* x, const T* weight, const T* bias, const T* saved_mean, const T* saved_invstd,
                            T* z, std::int64_t N, std::int64_t C, std::int64_t HW) {
  apply_loop<BnActivation::Identity>(x, weight, bias, saved_mean, saved_invstd, z, N, C, HW);
}

#define CXR_INSTANTIATE(T)                                                                                        \
  template void batch_norm2d_eval_invstd<T>(const T*, T, T*, std::int64_t);                                       \
  template void batch_norm2d_act_grad<T>(BnActivation, const T*, const T*, T, T, T, T, T*, std::int64_t);         \
  template void batch_norm2d_recompute<T>(const T*, const T*, const T*, const T*, const T*, T*, std::int64_t,     \
                                          std::int64_t, std::int64_t);                                            \
  template void batch_norm2d_forward_train<T>(BnActivation, const T*, const T*, const T*, T*, T*, T*, T*, T*,     \
                                              std::int64_t, std::int64_t, std::int64_t, T, T);                    \
  template void batch_norm2d_forward_train_from_stats<T>(BnActivation, const T*, const T*, const T*, const T*,   \
                                                         const T*, T*, T*, T*, T*, T*, std::int64_t,            \
                                                         std::int64_t, std::int64_t, T, T);                     \
  template void batch_norm2d_forward_eval<T>(BnActivation, const T*, const T*, const T*, const T*, const T*, T*,  \
                                             std::int64_t, std::int64_t, std::int64_t, T);                        \
  template void batch_norm2d_backward<T>(BnActivation, const T*, const T*, const T*, const T*, const T*,          \
                                         const T*, T*, T*, T*, std::int64_t, std::int64_t, std::int64_t);         \
  template void batch_norm2d_eval_backward<T>(BnActivation, const T*, const T*, const T*, const T*, const T*,     \
                                              const T*, T*, T*, T*, std::int64_t, std::int64_t, std::int64_t, T); \
  template ChannelMoments batch_norm2d_channel_moments<T>(const T*, std::int64_t, std::int64_t, std::int64_t,     \
                                                          std::int64_t);                                          \
  template void channel_mean_var<T>(const T*, T*, T*, std::int64_t, std::int64_t, std::int64_t);
CXR_INSTANTIATE(float)
CXR_INSTANTIATE(double)
#undef CXR_INSTANTIATE

}  // namespace cxr::cpu
