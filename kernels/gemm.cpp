// Tensor-level matmul: argument checks, output allocation, device dispatch to the GEMMs.
#include "kernels/gemm.h"

namespace cxr {

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  check_f32_input("matmul", "a", a);
  check_f32_input("matmul", "b", b, &a);
  check_dim("matmul", "a", a, 2);
  check_dim("matmul", "b", b, 2);
  const std::int64_t M = trans_a ? a.size(1) : a.size(0), K = trans_a ? a.size(0) : a.size(1);
  const std::int64_t Kb = trans_b ? b.size(1) : b.size(0), N = trans_b ? b.size(0) : b.size(1);
  CXR_CHECK(K == Kb, "matmul: inner dimensions differ: op(a) is ", M, "x", K, " (a ", shape_str(a.shape()),
            trans_a ? " transposed" : "", "), op(b) is ", Kb, "x", N, " (b ", shape_str(b.shape()),
            trans_b ? " transposed" : "", ")");
  Tensor c = Tensor::empty({M, N}, DType::F32, a.device());
  if (a.is_cpu())
    cpu::sgemm(trans_a, trans_b, M, N, K, 1.f, a.f32(), a.size(1), b.f32(), b.size(1), 0.f, c.f32(), N);
  else
    cuda::sgemm(trans_a, trans_b, M, N, K, 1.f, a.f32(), a.size(1), b.f32(), b.size(1), 0.f, c.f32(), N);
  return c;
}

}  // namespace cxr
