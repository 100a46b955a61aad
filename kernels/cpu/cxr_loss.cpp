// CPU reference of the fused loss (see kernels/cxr_loss.h for the math). Reads like the math:
// first the mask totals, then the BCE over the (present) logits, then the masked box MSE.
#include "kernels/cxr_loss.h"

#include <algorithm>

namespace cxr::cpu {

template <typename T>
void cxr_loss(const T* z, const T* y, const T* pw, const T* b, const T* t, const T* m, std::int64_t n, int classes,
              T box_weight, T* out3, T* dz, T* db, std::int64_t rows_g, double boxes_g, const T* lm,
              double labels_g) {
  const std::int64_t nc = n * classes;
  double mask_total = 0.0;
  for (std::int64_t i = 0; i < nc; ++i) mask_total += static_cast<double>(m[i]);
  if (boxes_g >= 0) mask_total = boxes_g;  // part of a global batch: its box count
  const double box_denom = std::max(1.0, 4.0 * mask_total);
  const std::int64_t nc_g = rows_g * classes;
  double inv_nc = nc_g > 0 ? 1.0 / static_cast<double>(nc_g) : 0.0;
  if (lm) {  // the mean over the present labels: L = Σ l (or the global batch's)
    double label_total = 0.0;
    for (std::int64_t i = 0; i < nc; ++i) label_total += static_cast<double>(lm[i]);
    if (labels_g >= 0) label_total = labels_g;
    inv_nc = label_total > 0 ? 1.0 / label_total : 0.0;
  }

  double bce = 0.0;
  for (std::int64_t i = 0; i < nc; ++i) {
    const int c = static_cast<int>(i % classes);
    T d;
    const T term = loss_math::bce_term<T>(z[i], y[i], pw[c], &d);
    const T l = lm ? lm[i] : T(1);
    bce += static_cast<double>(l * term);
    dz[i] = static_cast<T>(static_cast<double>(l * d) * inv_nc);
  }

  double sq = 0.0;
  const double grad_scale = 2.0 * static_cast<double>(box_weight) / box_denom;
  for (std::int64_t i = 0; i < nc; ++i)
    for (int j = 0; j < 4; ++j) {
      const std::int64_t k = i * 4 + j;
      const T s = loss_math::sigmoid<T>(b[k]);
      const T diff = s - t[k];
      sq += static_cast<double>(m[i] * diff * diff);
      db[k] = static_cast<T>(grad_scale * static_cast<double>(m[i] * diff * s * (T(1) - s)));
    }

  const double bce_mean = bce * inv_nc;
  const double mse = sq / box_denom;
  out3[0] = static_cast<T>(bce_mean + static_cast<double>(box_weight) * mse);
  out3[1] = static_cast<T>(bce_mean);
  out3[2] = static_cast<T>(mse);
}

template void cxr_loss<float>(const float*, const float*, const float*, const float*, const float*, const float*,
                              std::int64_t, int, float, float*, float*, float*, std::int64_t, double, const float*,
                              double);
template void cxr_loss<double>(const double*, const double*, const double*, const double*, const double*, const double*,
                               std::int64_t, int, double, double*, double*, double*, std::int64_t,
                               double, const double*, double);

}  // namespace cxr::cpu
