// Math modes of the matrix products (convolutions, GEMMs): process-wide switches, set before
// launching work, like PyTorch's backend flags and autocast.
//
// allow_tf32: whether convolutions (implicit GEMM) and GEMMs (linear layers, 1x1 convolutions)
// on the CUDA device may run on the tensor cores with TF32 operands (10-bit mantissa, fp32
// accumulation; relative error ~1e-3 instead of ~1e-6). The analogue of PyTorch's
// torch.backends.cudnn.allow_tf32 / torch.backends.cuda.matmul.allow_tf32. Off by default, so
// device results match the CPU reference to fp32 rounding. CPU ops ignore it (train_cxr --tf32).
//
// autocast_bf16: mixed precision, the analogue of torch.autocast(dtype=torch.bfloat16). The
// Conv2d and Linear layers round their input, their weight and, in backward, the output
// gradient to bf16 (round to nearest even) and multiply with f32 accumulation. A convolution's
// output is bf16, and the ops between convolutions (batch norm, activations, residual adds,
// pooling, squeeze-excitation, dropout) take bf16 activations and write bf16 ones, computing in
// f32: the activations between layers, and what the layers keep for backward, are bf16 (half
// the memory), as PyTorch's autocast keeps them; Linear outputs too (the heads widen their
// logits and boxes to f32 for the loss). Gradients, parameters ("fp32 master weights"), the optimiser state, batch-norm
// statistics and the loss stay f32. Applies on the CPU and on CUDA (where the convolutions run
// on the BF16 tensor cores). Off by default (train_cxr --precision bf16).
#pragma once

namespace cxr {

void set_allow_tf32(bool on);
bool allow_tf32();

void set_autocast_bf16(bool on);
bool autocast_bf16();

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

// Sets autocast_bf16 for a scope and restores the previous value.
class AutocastBf16Scope {
 public:
  explicit AutocastBf16Scope(bool on) : previous_(autocast_bf16()) { set_autocast_bf16(on); }
  ~AutocastBf16Scope() { set_autocast_bf16(previous_); }
  AutocastBf16Scope(const AutocastBf16Scope&) = delete;
  AutocastBf16Scope& operator=(const AutocastBf16Scope&) = delete;

 private:
  bool previous_;
};

}  // namespace cxr
