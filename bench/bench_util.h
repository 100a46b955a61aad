// Shared helpers of the benchmarks.
//
// Timing (bench_norm_pool, bench_pointwise, bench_conv2d, bench_conv_layers). CPU: wall clock
// per iteration (Google Benchmark's own timer). GPU: CUDA events on the compute stream around
// one call, reported as manual time (register with UseManualTime()), after three warm-up calls.
// A GPU benchmark without a real GPU (none, or the emulated one) is marked skipped with
// "no GPU". The GB/s counter of time_op is `bytes` (the op's minimum traffic) per call.
//
// cuDNN (bench_conv2d, bench_conv_layers; only where CXR_HAVE_CUDNN is defined): CudnnConv sets
// up one convolution pass (descriptors, the algorithm cuDNN's heuristics rank first for the
// math mode, its workspace) on the process-wide handle cudnn_handle().
#pragma once

#include <benchmark/benchmark.h>

#include <functional>
#include <string>

#include "kernels/conv2d.h"
#include "tensor/backend.h"
#include "tensor/stream.h"
#include "tensor/tensor.h"

#if defined(CXR_HAVE_CUDNN)
#include <cuda_runtime.h>
#include <cudnn.h>
#endif

namespace cxr::bench {

inline bool have_gpu() {
  return backend::has_device() && !backend::is_emulated();
}

// True, with the benchmark marked skipped, when `dev` is CUDA and no real GPU exists.
inline bool skip_without_gpu(benchmark::State& st, Device dev) {
  if (dev == Device::CUDA && !have_gpu()) {
    st.SkipWithError("no GPU");
    return true;
  }
  return false;
}

// Times `op` on the device's compute stream with CUDA events, one call per iteration, after
// `warmup` untimed calls; sets each iteration's manual time. Returns the summed seconds.
inline double time_gpu(benchmark::State& st, const std::function<void()>& op, int warmup = 3) {
  for (int i = 0; i < warmup; ++i) op();
  backend::synchronize();
  Event start(true), stop(true);
  double seconds = 0.0;
  for (auto _ : st) {
    start.record(Stream::compute());
    op();
    stop.record(Stream::compute());
    stop.synchronize();
    const double s = stop.elapsed_ms_since(start) * 1e-3;
    st.SetIterationTime(s);
    seconds += s;
  }
  return seconds;
}

inline void time_op(benchmark::State& st, Device dev, double bytes, const std::function<void()>& op) {
  if (skip_without_gpu(st, dev)) return;
  if (dev == Device::CPU) {
    op();
    for (auto _ : st) op();
    st.counters["GB/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate);
    return;
  }
  const double seconds = time_gpu(st, op);
  st.counters["GB/s"] = bytes * static_cast<double>(st.iterations()) / seconds * 1e-9;
}

// The three passes of a convolution (kernels/conv2d.h).
enum class ConvPass { Fwd, BwdData, BwdWeight };
inline const char* conv_pass_name(ConvPass p) {
  return p == ConvPass::Fwd ? "fwd" : p == ConvPass::BwdData ? "bwd_data" : "bwd_weight";
}

// The math of a cuDNN convolution: fp32 FMA, TF32 tensor cores (fp32 tensors), or BF16 tensor
// cores (bf16 tensors, fp32 accumulation; PyTorch's autocast).
enum class ConvMath { Fp32, Tf32, Bf16 };

#if defined(CXR_HAVE_CUDNN)
// One cuDNN handle for the process, on cxr's compute stream (null if cuDNN cannot start).
inline cudnnHandle_t cudnn_handle() {
  static cudnnHandle_t h = [] {
    cudnnHandle_t made = nullptr;
    if (cudnnCreate(&made) != CUDNN_STATUS_SUCCESS) return static_cast<cudnnHandle_t>(nullptr);
    cudnnSetStream(made, static_cast<cudaStream_t>(backend::compute_stream_handle()));
    return made;
  }();
  return h;
}

// One pass of one convolution in cuDNN, NCHW. Fp32: CUDNN_FMA_MATH (no tensor cores); Tf32:
// CUDNN_TENSOR_OP_MATH on fp32 tensors (TF32 allowed, as PyTorch's default); Bf16: every tensor
// bf16, fp32 compute type, tensor-op math. The algorithm is the first that cuDNN's heuristics
// (cudnnGet*Algorithm_v7) rank and that succeeds, with its own math type; no search by timing.
// error() is empty when ready.
//   run(a, b, out): fwd (x, w -> y), bwd_data (dy, w -> dx), bwd_weight (x, dy -> dw).
class CudnnConv {
 public:
  CudnnConv(const Conv2dDims& d, ConvPass pass, bool tf32)
      : CudnnConv(d, pass, tf32 ? ConvMath::Tf32 : ConvMath::Fp32) {}
  CudnnConv(const Conv2dDims& d, ConvPass pass, ConvMath math) : pass_(pass) {
    const bool tensor_ops = math != ConvMath::Fp32;
    const cudnnDataType_t type = math == ConvMath::Bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    h_ = cudnn_handle();
    if (!h_) {
      fail("cudnnCreate");
      return;
    }
    if (!ok(cudnnCreateTensorDescriptor(&xd_), "cudnnCreateTensorDescriptor") ||
        !ok(cudnnCreateTensorDescriptor(&yd_), "cudnnCreateTensorDescriptor") ||
        !ok(cudnnCreateFilterDescriptor(&wd_), "cudnnCreateFilterDescriptor") ||
        !ok(cudnnCreateConvolutionDescriptor(&cd_), "cudnnCreateConvolutionDescriptor"))
      return;
    if (!ok(cudnnSetTensor4dDescriptor(xd_, CUDNN_TENSOR_NCHW, type, d.N, d.C, d.H, d.W), "x desc") ||
        !ok(cudnnSetTensor4dDescriptor(yd_, CUDNN_TENSOR_NCHW, type, d.N, d.K, d.P, d.Q), "y desc") ||
        !ok(cudnnSetFilter4dDescriptor(wd_, type, CUDNN_TENSOR_NCHW, d.K, d.C / d.G, d.R, d.S), "w desc") ||
        !ok(cudnnSetConvolution2dDescriptor(cd_, d.ph, d.pw, d.sh, d.sw, d.dh, d.dw, CUDNN_CROSS_CORRELATION,
                                            CUDNN_DATA_FLOAT),
            "conv desc") ||
        !ok(cudnnSetConvolutionGroupCount(cd_, d.G), "group count") ||
        !ok(cudnnSetConvolutionMathType(cd_, tensor_ops ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH), "math type"))
      return;
    if (!choose_algorithm(tensor_ops)) return;
    if (workspace_bytes_ > 0)
      workspace_ = Tensor::empty({static_cast<std::int64_t>(workspace_bytes_ / 4 + 1)}, DType::F32, Device::CUDA);
  }
  ~CudnnConv() {
    if (cd_) cudnnDestroyConvolutionDescriptor(cd_);
    if (wd_) cudnnDestroyFilterDescriptor(wd_);
    if (yd_) cudnnDestroyTensorDescriptor(yd_);
    if (xd_) cudnnDestroyTensorDescriptor(xd_);
  }
  CudnnConv(const CudnnConv&) = delete;
  CudnnConv& operator=(const CudnnConv&) = delete;

  const std::string& error() const { return error_; }
  int algorithm() const { return algo_; }
  std::size_t workspace_bytes() const { return workspace_bytes_; }

  void run(const void* a, const void* b, void* out) {
    const float one = 1.f, zero = 0.f;
    void* ws = workspace_bytes_ > 0 ? workspace_.f32() : nullptr;
    cudnnStatus_t s = CUDNN_STATUS_SUCCESS;
    switch (pass_) {
      case ConvPass::Fwd:
        s = cudnnConvolutionForward(h_, &one, xd_, a, wd_, b, cd_, static_cast<cudnnConvolutionFwdAlgo_t>(algo_), ws,
                                    workspace_bytes_, &zero, yd_, out);
        break;
      case ConvPass::BwdData:
        s = cudnnConvolutionBackwardData(h_, &one, wd_, b, yd_, a, cd_,
                                         static_cast<cudnnConvolutionBwdDataAlgo_t>(algo_), ws, workspace_bytes_, &zero,
                                         xd_, out);
        break;
      case ConvPass::BwdWeight:
        s = cudnnConvolutionBackwardFilter(h_, &one, xd_, a, yd_, b, cd_,
                                           static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo_), ws, workspace_bytes_,
                                           &zero, wd_, out);
        break;
    }
    if (s != CUDNN_STATUS_SUCCESS && error_.empty()) error_ = std::string("cuDNN call: ") + cudnnGetErrorString(s);
  }

 private:
  bool ok(cudnnStatus_t s, const char* what) {
    if (s == CUDNN_STATUS_SUCCESS) return true;
    fail(std::string(what) + ": " + cudnnGetErrorString(s));
    return false;
  }
  void fail(const std::string& what) {
    if (error_.empty()) error_ = what;
  }
  // The first heuristic result that succeeds. Tensor ops (TF32, BF16): sets the result's math
  // type on the descriptor (as PyTorch does). FP32: skips tensor-op results; the descriptor
  // stays FMA.
  template <typename Perf>
  bool take_first(const Perf* perf, int found, bool tf32) {
    for (int i = 0; i < found; ++i) {
      if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
      const bool tensor_op =
          perf[i].mathType == CUDNN_TENSOR_OP_MATH || perf[i].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
      if (!tf32 && tensor_op) continue;
      algo_ = static_cast<int>(perf[i].algo);
      return !tf32 || ok(cudnnSetConvolutionMathType(cd_, perf[i].mathType), "algorithm math type");
    }
    fail(tf32 ? "no cuDNN algorithm for this shape" : "no cuDNN FMA algorithm for this shape");
    return false;
  }
  bool choose_algorithm(bool tf32) {
    int found = 0;
    std::size_t bytes = 0;
    if (pass_ == ConvPass::Fwd) {
      cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
      if (!ok(cudnnGetConvolutionForwardAlgorithm_v7(h_, xd_, wd_, cd_, yd_, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &found,
                                                     perf),
              "forward heuristics") ||
          !take_first(perf, found, tf32) ||
          !ok(cudnnGetConvolutionForwardWorkspaceSize(h_, xd_, wd_, cd_, yd_,
                                                      static_cast<cudnnConvolutionFwdAlgo_t>(algo_), &bytes),
              "forward workspace"))
        return false;
    } else if (pass_ == ConvPass::BwdData) {
      cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
      if (!ok(cudnnGetConvolutionBackwardDataAlgorithm_v7(h_, wd_, yd_, cd_, xd_, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                                          &found, perf),
              "backward-data heuristics") ||
          !take_first(perf, found, tf32) ||
          !ok(cudnnGetConvolutionBackwardDataWorkspaceSize(h_, wd_, yd_, cd_, xd_,
                                                           static_cast<cudnnConvolutionBwdDataAlgo_t>(algo_), &bytes),
              "backward-data workspace"))
        return false;
    } else {
      cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
      if (!ok(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h_, xd_, yd_, cd_, wd_,
                                                            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &found, perf),
              "backward-weight heuristics") ||
          !take_first(perf, found, tf32) ||
          !ok(cudnnGetConvolutionBackwardFilterWorkspaceSize(
                  h_, xd_, yd_, cd_, wd_, static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo_), &bytes),
              "backward-weight workspace"))
        return false;
    }
    workspace_bytes_ = bytes;
    return true;
  }

  ConvPass pass_;
  cudnnHandle_t h_ = nullptr;
  cudnnTensorDescriptor_t xd_ = nullptr, yd_ = nullptr;
  cudnnFilterDescriptor_t wd_ = nullptr;
  cudnnConvolutionDescriptor_t cd_ = nullptr;
  int algo_ = -1;
  std::size_t workspace_bytes_ = 0;
  Tensor workspace_;
  std::string error_;
};
#endif  // CXR_HAVE_CUDNN

}  // namespace cxr::bench
