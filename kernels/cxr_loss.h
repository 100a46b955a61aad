// The fused training loss of the chest-radiograph model: multi-label classification with
// per-class positive weights plus a masked box regression, and its gradients, in one pass.
//
// Inputs (C = 14 classes in practice, any C works):
//   z  (N, C)     class logits                 y (N, C) targets in {0, 1}
//   pw (C)        positive weight per class
//   b  (N, C, 4)  raw box outputs (before the sigmoid)
//   t  (N, C, 4)  target boxes, normalised (cx, cy, w, h) in [0, 1]
//   m  (N, C)     box mask in {0, 1}            λ: box weight
//   l  (N, C)     optional label mask in {0, 1}: 1 where the label is present, 0 where the
//                 data set has no label (missing; y is then ignored)
// Loss:
//   BCE  = 1/(N C) Σ_{n,c} pw_c y softplus(-z) + (1 - y) softplus(z)
//          (= BCEWithLogitsLoss(pos_weight=pw, reduction='mean'); softplus(x) = log(1 + e^x)
//           computed as max(x, 0) + log1p(e^-|x|), stable for any z)
//   with a label mask: BCE = Σ_{n,c} l_nc term_nc / L,  L = Σ l  (0 when L = 0): the mean over
//          the present labels only. With every label present L = N C and the sum and the
//          gradients are bit-identical to the unmasked form (each term times 1.0, the same
//          divisor). TorchXRayVision instead takes, per class, the mean over the samples that
//          have the label and sums over the classes (Σ_c mean_c); that weighs a class with one
//          present label in the batch as much as one with N, and is C times ours when nothing
//          is missing. Ours keeps the loss scale (and learning rates) of an NIH run.
//   MSE  = Σ_{n,c,j} m_nc (σ(b_ncj) - t_ncj)² / max(1, 4 Σ m)     (0 when no box)
//   loss = BCE + λ MSE
// Data-parallel training (LossShare): a rank holds part of a global batch of N_g rows with M_g
// boxes in all; it divides by N_g C and max(1, 4 M_g) instead, so its loss and gradients are its
// share of the global batch's, and the sum over ranks (the gradient all-reduce) is exactly the
// loss of one process that saw the whole global batch. With a label mask the BCE divisor is the
// global batch's L_g likewise.
// Gradients (of `loss`):
//   dz = (σ(z) (1 - y + pw y) - pw y) / (N C)        (masked: l (...) / L)
//   db = λ 2 m (σ(b) - t) σ(b) (1 - σ(b)) / max(1, 4 Σ m)
#pragma once

#include <cmath>
#include <cstdint>

#include "tensor/host_device.h"
#include "tensor/tensor.h"

namespace cxr {

struct CxrLoss {
  Tensor loss;  // (1)  BCE + λ MSE
  Tensor bce;   // (1)
  Tensor mse;   // (1)
  Tensor dz;    // (N, C)     d loss / d z
  Tensor db;    // (N, C, 4)  d loss / d b
};

// The denominators of the means when this batch is part of a larger global batch.
struct LossShare {
  std::int64_t rows = 0;  // N_g, the global batch's rows; 0: this batch's N
  double boxes = -1;      // M_g, the global batch's Σ m; < 0: this batch's
  double labels = -1;     // L_g, the global batch's Σ l (with a label mask); < 0: this batch's
};

// All tensors f32, contiguous, on one device; shapes as above. The scalars stay on the device.
// label_mask: (N, C) or undefined (every label present: the unmasked form).
CxrLoss cxr_loss(const Tensor& z, const Tensor& y, const Tensor& pw, const Tensor& b, const Tensor& t, const Tensor& m,
                 float box_weight, const LossShare& share = {}, const Tensor& label_mask = Tensor());

namespace loss_math {
template <typename T>
CXR_HD T sigmoid(T x) {
  using std::exp;
  return T(1) / (T(1) + exp(-x));
}
// log(1 + e^x) without overflow.
template <typename T>
CXR_HD T softplus(T x) {
  using std::exp;
  using std::fabs;
  using std::log1p;
  return (x > T(0) ? x : T(0)) + log1p(exp(-fabs(x)));
}
// One logit: the BCE term and its derivative d/dz (before the 1/(N C) of the mean).
template <typename T>
CXR_HD T bce_term(T z, T y, T pw, T* dz) {
  *dz = sigmoid(z) * (T(1) - y + pw * y) - pw * y;
  return pw * y * softplus(-z) + (T(1) - y) * softplus(z);
}
}  // namespace loss_math

namespace cpu {
// out3 = {loss, bce, mse}; dz (N, C), db (N, C, 4). Sums accumulate in double. rows_g: N_g
// (the mean's rows, n in a single process); boxes_g: M_g, or < 0 for this batch's Σ m.
// lm: the label mask or nullptr; labels_g: L_g, or < 0 for this batch's Σ lm.
template <typename T>
void cxr_loss(const T* z, const T* y, const T* pw, const T* b, const T* t, const T* m, std::int64_t n, int classes,
              T box_weight, T* out3, T* dz, T* db, std::int64_t rows_g, double boxes_g, const T* lm = nullptr,
              double labels_g = -1);
}  // namespace cpu

namespace cuda {
// out3 = {loss, bce, mse} on the device; one kernel launch (+ a 4-byte memset).
void cxr_loss(const float* z, const float* y, const float* pw, const float* b, const float* t, const float* m,
              std::int64_t n, int classes, float box_weight, float* out3, float* dz, float* db, std::int64_t rows_g,
              double boxes_g, const float* lm = nullptr, double labels_g = -1);
}  // namespace cuda

}  // namespace cxr
