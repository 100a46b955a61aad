// The process-wide math and execution switches, in one place: how the ops compute (precision,
// TF32), which fusions the layers use, and the benchmarks' hook into the convolutions. Like
// PyTorch's autocast and backend flags, they are set around work, not passed to each op:
//
//   const ExecutionSettings s = execution();                 // the current values
//   { ExecutionScope bf16({.precision = Precision::BF16});   // changes the named ones ...
//     model.forward(x); }                                    // ... and restores them at scope end
//
// A value that must be recorded (a run's precision in its checkpoint) is carried in the run's
// options and set from there; reading it back from here is only for code that has no options.
//
// The settings, and when each is read (which is when a change takes effect):
//   precision     Precision::FP32, or BF16: mixed precision, the analogue of
//                 torch.autocast(dtype=torch.bfloat16). The Conv2d and Linear layers round their
//                 input, their weight and, in backward, the output gradient to bf16 (round to
//                 nearest even) and multiply with f32 accumulation. A convolution's output is
//                 bf16, and the ops between convolutions (batch norm, activations, residual adds,
//                 pooling, squeeze-excitation, dropout) take bf16 activations and write bf16 ones,
//                 computing in f32: the activations between layers, and what the layers keep for
//                 backward, are bf16 (half the memory), as PyTorch's autocast keeps them; Linear
//                 outputs too (the heads widen their logits and boxes to f32 for the loss).
//                 Gradients, parameters ("fp32 master weights"), the optimiser state, batch-norm
//                 statistics and the loss stay f32. CPU and CUDA (where the convolutions run on
//                 the BF16 tensor cores). Default FP32 (train_cxr --precision bf16).
//                 Read at every forward of a Conv2d or Linear layer (a backward follows what its
//                 forward kept, so a change between the two does not mix precisions).
//   allow_tf32    whether fp32 convolutions (implicit GEMM) and GEMMs (linear layers, 1x1
//                 convolutions) on the CUDA device may run on the tensor cores with TF32 operands
//                 (10-bit mantissa, fp32 accumulation; relative error ~1e-3 instead of ~1e-6):
//                 torch.backends.cudnn.allow_tf32 / torch.backends.cuda.matmul.allow_tf32. Off by
//                 default, so device results match the CPU reference to fp32 rounding. CPU ops
//                 ignore it (train_cxr --tf32). Read at every launch of such a kernel.
//   fuse_batch_norm_activation   whether a BatchNorm2d followed by ReLU or SiLU is built as one
//                 BatchNorm2d with the activation fused (kernels/batch_norm.h; ResNet,
//                 Conv2dNormActivation). Default on; off builds the separate activation modules,
//                 to compare or time the two. Read when a block is constructed: it decides the
//                 module structure (which modules and saved tensors exist), which must not change
//                 under a built model; the state_dict is the same either way.
//   fuse_conv_batch_norm_statistics   whether a training Conv2d + BatchNorm2d on a CUDA device
//                 computes the batch statistics in the convolution's epilogue where its kernel
//                 has one (kernels/conv2d_bn.h). Default on; off: the convolution, then the batch
//                 norm's own statistics pass. Read at every conv2d_bn_forward (it changes no
//                 state, only the order of the sums).
//   fold_batch_norm   whether an evaluation Conv2d + BatchNorm2d on the CPU, inside a
//                 FrozenWeightsScope (train_cxr eval and predict, bench_inference), runs the
//                 convolution on folded weights, w' = w gamma / sqrt(var + eps) and
//                 b' = beta + (b - mean) gamma / sqrt(var + eps), with only the activation left
//                 for its epilogue, as inference engines do (kernels/cpu/fold_batch_norm.h).
//                 Default on. Off: the batch norm as the convolution's epilogue, the bits of the
//                 model as trained (the folded outputs differ from them by float rounding). Read
//                 at every conv2d_bn_forward.
//   kernels       KernelChoice::Cxr (default): every op runs on the hand-written kernels. Library:
//                 on a CUDA device, convolutions (forward, backward-data, backward-weight) and f32
//                 batch norm through cuDNN, linear layers through cuBLASLt (kernels/library.h),
//                 like llm.c's cuBLAS matmuls; everything else stays hand-written. The choice is
//                 made in each op's dispatch file. CPU tensors ignore it (train_cxr checks the run
//                 first: --kernels library on the CPU or the emulated device is an error naming the
//                 reason). Read at every dispatch of such an op (train_cxr --kernels cxr|library).
//   conv2d_observer   called with the sizes of every Conv2d forward while set (empty by
//                 default): benchmarks list a model's convolution shapes with it
//                 (bench/bench_conv_layers.cpp). Read at every Conv2d forward; set it around a
//                 single-threaded forward.
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace cxr {

struct Conv2dDims;  // kernels/conv2d.h

enum class Precision { FP32, BF16 };
const char* precision_name(Precision p);  // "fp32", "bf16"

enum class KernelChoice { Cxr, Library };
const char* kernel_choice_name(KernelChoice k);  // "cxr", "library"
// "cxr" or "library"; nullopt for anything else.
std::optional<KernelChoice> parse_kernel_choice(const std::string& name);

using Conv2dObserver = std::function<void(const Conv2dDims&)>;

struct ExecutionSettings {
  Precision precision = Precision::FP32;
  bool allow_tf32 = false;
  bool fuse_batch_norm_activation = true;
  bool fuse_conv_batch_norm_statistics = true;
  bool fold_batch_norm = true;
  KernelChoice kernels = KernelChoice::Cxr;
  Conv2dObserver conv2d_observer;
};

// A copy of the current settings (thread-safe).
ExecutionSettings execution();
// execution().precision == Precision::BF16 and execution().allow_tf32, without the copy (read
// at every launch by the GEMM and convolution dispatch).
bool autocast_bf16();
bool allow_tf32();
KernelChoice kernel_choice();

// The settings a scope changes; those left unset keep their value. (The initializers let a
// designated initializer name only some members without -Wmissing-field-initializers.)
struct ExecutionChanges {
  std::optional<Precision> precision = std::nullopt;
  std::optional<bool> allow_tf32 = std::nullopt;
  std::optional<bool> fuse_batch_norm_activation = std::nullopt;
  std::optional<bool> fuse_conv_batch_norm_statistics = std::nullopt;
  std::optional<bool> fold_batch_norm = std::nullopt;
  std::optional<KernelChoice> kernels = std::nullopt;
  std::optional<Conv2dObserver> conv2d_observer = std::nullopt;
};

// Sets the given settings for its lifetime and then restores each of them to the value it had
// before (also when an exception unwinds the scope). Scopes nest; the settings it did not name
// are left alone, so scopes that change different settings may end in any order.
//   ExecutionScope tf32({.allow_tf32 = true});
class ExecutionScope {
 public:
  explicit ExecutionScope(ExecutionChanges changes);
  ~ExecutionScope();
  ExecutionScope(const ExecutionScope&) = delete;
  ExecutionScope& operator=(const ExecutionScope&) = delete;

 private:
  ExecutionChanges previous_;  // the values before, of exactly the settings this scope set
};

}  // namespace cxr
