// Math modes of the fp32 matrix products on the GPU.
//
// allow_tf32: whether convolutions (implicit GEMM) and GEMMs (linear layers, 1x1 convolutions)
// on the CUDA device may run on the tensor cores with TF32 operands (10-bit mantissa, fp32
// accumulation; relative error ~1e-3 instead of ~1e-6). The analogue of PyTorch's
// torch.backends.cudnn.allow_tf32 / torch.backends.cuda.matmul.allow_tf32. Off by default, so
// device results match the CPU reference to fp32 rounding. CPU ops ignore it. Process-wide;
// set it before launching work (train_cxr --tf32).
#pragma once

namespace cxr {

void set_allow_tf32(bool on);
bool allow_tf32();

// Sets allow_tf32 for a scope and restores the previous value (tests, benchmarks).
class AllowTf32Scope {
 public:
  explicit AllowTf32Scope(bool on) : previous_(allow_tf32()) { set_allow_tf32(on); }
  ~AllowTf32Scope() { set_allow_tf32(previous_); }
  AllowTf32Scope(const AllowTf32Scope&) = delete;
  AllowTf32Scope& operator=(const AllowTf32Scope&) = delete;

 private:
  bool previous_;
};

}  // namespace cxr
