// Tensor-level fused loss: argument checks, output allocation, device dispatch.
#include "kernels/cxr_loss.h"

namespace cxr {

CxrLoss cxr_loss(const Tensor& z, const Tensor& y, const Tensor& pw, const Tensor& b, const Tensor& t, const Tensor& m,
                 float box_weight, const LossShare& share, const Tensor& label_mask) {
  const char* op = "cxr_loss";
  check_f32_input(op, "z", z);
  check_dim(op, "z", z, 2);
  const std::int64_t n = z.size(0);
  const std::int64_t c = z.size(1);
  CXR_CHECK(c > 0 && c < (1 << 20), op, ": z must have at least one class, found ", shape_str(z.shape()));
  check_f32_input(op, "y", y, &z);
  check_shape(op, "y", y, {n, c});
  check_f32_input(op, "pw", pw, &z);
  check_shape(op, "pw", pw, {c});
  check_f32_input(op, "b", b, &z);
  check_shape(op, "b", b, {n, c, 4});
  check_f32_input(op, "t", t, &z);
  check_shape(op, "t", t, {n, c, 4});
  check_f32_input(op, "m", m, &z);
  check_shape(op, "m", m, {n, c});
  if (label_mask.defined()) {
    check_f32_input(op, "label_mask", label_mask, &z);
    check_shape(op, "label_mask", label_mask, {n, c});
  }
  const float* lm = label_mask.defined() ? label_mask.f32() : nullptr;

  CXR_CHECK(share.rows == 0 || share.rows >= n, op, ": the global batch (", share.rows, " rows) is smaller than this "
            "part of it (", n, ")");
  const std::int64_t rows_g = share.rows > 0 ? share.rows : n;
  CxrLoss r;
  Tensor out = Tensor::empty({3}, DType::F32, z.device());
  r.loss = out.narrow(0, 0, 1);
  r.bce = out.narrow(0, 1, 1);
  r.mse = out.narrow(0, 2, 1);
  r.dz = Tensor::empty({n, c}, DType::F32, z.device());
  r.db = Tensor::empty({n, c, 4}, DType::F32, z.device());
  const int classes = static_cast<int>(c);
  if (z.is_cpu())
    cpu::cxr_loss(z.f32(), y.f32(), pw.f32(), b.f32(), t.f32(), m.f32(), n, classes, box_weight, out.f32(), r.dz.f32(),
                  r.db.f32(), rows_g, share.boxes, lm, share.labels);
  else
    cuda::cxr_loss(z.f32(), y.f32(), pw.f32(), b.f32(), t.f32(), m.f32(), n, classes, box_weight, out.f32(), r.dz.f32(),
                   r.db.f32(), rows_g, share.boxes, lm, share.labels);
  return r;
}

}  // namespace cxr
