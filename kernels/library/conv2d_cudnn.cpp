// Convolutions through cuDNN (kernels/library.h): forward, backward-data, backward-weight.
//
// Per (shape, operand type, math mode, direction) the plan (layout, algorithm, math type,
// workspace) is found once and cached, as torch.backends.cudnn.benchmark does:
//   NCHW   cudnnFind*AlgorithmEx on the tensors themselves;
//   NHWC   the same on NHWC copies, plus the measured time of the three cudnnTransformTensor calls
//          that a call in NHWC needs (the two inputs in, the output back);
// the fastest deterministic algorithm of the two wins. The search's workspace is as large as the
// caching allocator gives (up to 1 GiB); a call's workspace is its plan's. During a CUDA graph
// capture, where timing is impossible, an uncached shape takes cuDNN's heuristic choice (NCHW)
// without caching it.
//
// bf16: cuDNN's BFLOAT16 configuration has one type for x, w and y, so an f32 result (the
// gradients, or an f32 y) is computed in bf16 and widened (kernels/cast.h).
#include <array>
#include <functional>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "kernels/cast.h"
#include "kernels/execution.h"
#include "kernels/library.h"
#include "kernels/library/library_context.h"
#include "tensor/backend.h"
#include "tensor/stream.h"

namespace cxr::library {

namespace {

enum class Direction { Forward, BackwardData, BackwardWeight };
enum class Layout { NCHW, NHWC };

const char* direction_name(Direction dir) {
  switch (dir) {
    case Direction::Forward: return "forward";
    case Direction::BackwardData: return "backward-data";
    case Direction::BackwardWeight: return "backward-weight";
  }
  return "?";
}

struct ConvKey {
  std::array<int, 16> dims{};
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  cudnnMathType_t math = CUDNN_FMA_MATH;
  Direction dir = Direction::Forward;
  bool operator==(const ConvKey&) const = default;
};

struct ConvKeyHash {
  std::size_t operator()(const ConvKey& k) const {
    std::size_t h = static_cast<std::size_t>(k.type) * 31 + static_cast<std::size_t>(k.math) * 7 +
                    static_cast<std::size_t>(k.dir);
    for (int v : k.dims) h = h * 1000003u ^ static_cast<std::size_t>(v);
    return h;
  }
};

struct ConvPlan {
  Layout layout = Layout::NCHW;
  int algo = 0;  // cudnnConvolutionFwdAlgo_t, ...BwdDataAlgo_t or ...BwdFilterAlgo_t
  cudnnMathType_t math = CUDNN_FMA_MATH;
  std::size_t workspace = 0;
};

// One candidate of cuDNN's search, whichever direction.
struct Candidate {
  int algo = 0;
  float ms = 0.f;
  std::size_t memory = 0;
  cudnnMathType_t math = CUDNN_FMA_MATH;
  bool usable = false;  // succeeded and deterministic
};

std::mutex g_plans_mutex;
std::unordered_map<ConvKey, ConvPlan, ConvKeyHash> g_plans;

// fp32: FMA math unless TF32 is allowed (CUDNN_DEFAULT_MATH would allow TF32 on Ampere and
// later); bf16: the tensor cores.
cudnnMathType_t requested_math(cudnnDataType_t type) {
  return type == CUDNN_DATA_BFLOAT16 || allow_tf32() ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
}

// The descriptors of one convolution in one layout.
struct ConvDescriptors {
  TensorDescriptor x, y;
  FilterDescriptor w;
  ConvolutionDescriptor conv;
  ConvDescriptors(const Conv2dDims& d, cudnnDataType_t type, Layout layout, cudnnMathType_t math)
      : x(format(layout), type, d.N, d.C, d.H, d.W),
        y(format(layout), type, d.N, d.K, d.P, d.Q),
        w(format(layout), type, d.K, d.C / d.G, d.R, d.S) {
    const CudnnApi& api = library_api().cudnn;
    check_cudnn(api.cudnnSetConvolution2dDescriptor(conv, d.ph, d.pw, d.sh, d.sw, d.dh, d.dw,
                                                    CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                "cudnnSetConvolution2dDescriptor");
    check_cudnn(api.cudnnSetConvolutionGroupCount(conv, d.G), "cudnnSetConvolutionGroupCount");
    check_cudnn(api.cudnnSetConvolutionMathType(conv, math), "cudnnSetConvolutionMathType");
  }
  static cudnnTensorFormat_t format(Layout l) { return l == Layout::NHWC ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW; }
};

// The three buffers of a convolution by role: x-shaped (x or dx), the filter (w or dw) and
// y-shaped (y or dy). Which one is written depends on the direction.
struct Buffers {
  void* x = nullptr;
  void* w = nullptr;
  void* y = nullptr;
};

void execute(Direction dir, const ConvDescriptors& c, int algo, Tensor& ws, std::size_t ws_bytes, const Buffers& b) {
  const CudnnApi& api = library_api().cudnn;
  const float one = 1.f, zero = 0.f;
  cudnnHandle_t h = cudnn_handle();
  void* wsp = workspace_ptr(ws);
  switch (dir) {
    case Direction::Forward:
      check_cudnn(api.cudnnConvolutionForward(h, &one, c.x, b.x, c.w, b.w, c.conv,
                                              static_cast<cudnnConvolutionFwdAlgo_t>(algo), wsp, ws_bytes, &zero,
                                              c.y, b.y),
                  "cudnnConvolutionForward");
      break;
    case Direction::BackwardData:
      check_cudnn(api.cudnnConvolutionBackwardData(h, &one, c.w, b.w, c.y, b.y, c.conv,
                                                   static_cast<cudnnConvolutionBwdDataAlgo_t>(algo), wsp, ws_bytes,
                                                   &zero, c.x, b.x),
                  "cudnnConvolutionBackwardData");
      break;
    case Direction::BackwardWeight:
      check_cudnn(api.cudnnConvolutionBackwardFilter(h, &one, c.x, b.x, c.y, b.y, c.conv,
                                                     static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo), wsp,
                                                     ws_bytes, &zero, c.w, b.w),
                  "cudnnConvolutionBackwardFilter");
      break;
  }
}

template <typename Perf>
std::vector<Candidate> to_candidates(const std::vector<Perf>& perf, int count) {
  std::vector<Candidate> out;
  for (int i = 0; i < count; ++i) {
    const Perf& p = perf[static_cast<std::size_t>(i)];
    out.push_back({static_cast<int>(p.algo), p.time, p.memory, p.mathType,
                   p.status == CUDNN_STATUS_SUCCESS && p.determinism == CUDNN_DETERMINISTIC});
  }
  return out;
}

// cuDNN's candidates for `dir`, best first: timed on the buffers b when `timed` (the Find*Ex
// search: every algorithm runs, the output is overwritten, with a workspace of up to ws_bytes),
// else its heuristic ranking (nothing runs: usable inside a graph capture).
std::vector<Candidate> candidates(Direction dir, bool timed, const ConvDescriptors& c, const Buffers& b, Tensor& ws,
                                  std::size_t ws_bytes) {
  const CudnnApi& api = library_api().cudnn;
  cudnnHandle_t h = cudnn_handle();
  void* wsp = workspace_ptr(ws);
  int max = 0, count = 0;
  switch (dir) {
    case Direction::Forward: {
      check_cudnn(api.cudnnGetConvolutionForwardAlgorithmMaxCount(h, &max), "cudnnGetConvolutionForwardAlgorithmMaxCount");
      std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(static_cast<std::size_t>(max));
      check_cudnn(timed ? api.cudnnFindConvolutionForwardAlgorithmEx(h, c.x, b.x, c.w, b.w, c.conv, c.y, b.y, max,
                                                                     &count, perf.data(), wsp, ws_bytes)
                        : api.cudnnGetConvolutionForwardAlgorithm_v7(h, c.x, c.w, c.conv, c.y, max, &count,
                                                                     perf.data()),
                  "cudnn{Find,Get}ConvolutionForwardAlgorithm");
      return to_candidates(perf, count);
    }
    case Direction::BackwardData: {
      check_cudnn(api.cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &max),
                  "cudnnGetConvolutionBackwardDataAlgorithmMaxCount");
      std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(static_cast<std::size_t>(max));
      check_cudnn(timed ? api.cudnnFindConvolutionBackwardDataAlgorithmEx(h, c.w, b.w, c.y, b.y, c.conv, c.x, b.x,
                                                                          max, &count, perf.data(), wsp, ws_bytes)
                        : api.cudnnGetConvolutionBackwardDataAlgorithm_v7(h, c.w, c.y, c.conv, c.x, max, &count,
                                                                          perf.data()),
                  "cudnn{Find,Get}ConvolutionBackwardDataAlgorithm");
      return to_candidates(perf, count);
    }
    case Direction::BackwardWeight: {
      check_cudnn(api.cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &max),
                  "cudnnGetConvolutionBackwardFilterAlgorithmMaxCount");
      std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(static_cast<std::size_t>(max));
      check_cudnn(timed ? api.cudnnFindConvolutionBackwardFilterAlgorithmEx(h, c.x, b.x, c.y, b.y, c.conv, c.w, b.w,
                                                                            max, &count, perf.data(), wsp, ws_bytes)
                        : api.cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, c.x, c.y, c.conv, c.w, max, &count,
                                                                            perf.data()),
                  "cudnn{Find,Get}ConvolutionBackwardFilterAlgorithm");
      return to_candidates(perf, count);
    }
  }
  return {};
}

// The largest workspace the allocator gives for the search, from 1 GiB down by halves.
Tensor search_workspace(std::size_t& bytes) {
  for (bytes = std::size_t(1) << 30; bytes >= (std::size_t(1) << 20); bytes /= 2) {
    try {
      return workspace(bytes);
    } catch (const Error&) {
      // out of memory: try half
    }
  }
  bytes = 0;
  return Tensor();
}

// Element counts of the three buffers.
std::int64_t x_elems(const Conv2dDims& d) { return std::int64_t(d.N) * d.C * d.H * d.W; }
std::int64_t w_elems(const Conv2dDims& d) { return std::int64_t(d.K) * (d.C / d.G) * d.R * d.S; }
std::int64_t y_elems(const Conv2dDims& d) { return std::int64_t(d.N) * d.K * d.P * d.Q; }

// NHWC copies of the three buffers and the layout transforms between them and the NCHW ones.
struct NhwcCopies {
  Tensor x, w, y;
  NhwcCopies(const Conv2dDims& d, DType type)
      : x(Tensor::empty({x_elems(d)}, type, Device::CUDA)),
        w(Tensor::empty({w_elems(d)}, type, Device::CUDA)),
        y(Tensor::empty({y_elems(d)}, type, Device::CUDA)) {}
  Buffers buffers() { return {x.raw_data(), w.raw_data(), y.raw_data()}; }
};

// dst = src in the other layout; the descriptors give the logical (n, c, h, w) and each format.
void transform(const TensorDescriptor& src_desc, const void* src, const TensorDescriptor& dst_desc, void* dst) {
  const float one = 1.f, zero = 0.f;
  check_cudnn(library_api().cudnn.cudnnTransformTensor(cudnn_handle(), &one, src_desc, src, &zero, dst_desc, dst),
              "cudnnTransformTensor");
}

// The layout descriptors of all three buffers (filters as 4-d tensors, for the transforms).
struct TransformDescriptors {
  TensorDescriptor x_nchw, x_nhwc, w_nchw, w_nhwc, y_nchw, y_nhwc;
  TransformDescriptors(const Conv2dDims& d, cudnnDataType_t t)
      : x_nchw(CUDNN_TENSOR_NCHW, t, d.N, d.C, d.H, d.W),
        x_nhwc(CUDNN_TENSOR_NHWC, t, d.N, d.C, d.H, d.W),
        w_nchw(CUDNN_TENSOR_NCHW, t, d.K, d.C / d.G, d.R, d.S),
        w_nhwc(CUDNN_TENSOR_NHWC, t, d.K, d.C / d.G, d.R, d.S),
        y_nchw(CUDNN_TENSOR_NCHW, t, d.N, d.K, d.P, d.Q),
        y_nhwc(CUDNN_TENSOR_NHWC, t, d.N, d.K, d.P, d.Q) {}
};

// Runs the convolution of `dir` in NHWC: the two inputs into the copies, the call, the output
// back into its NCHW buffer.
void run_nhwc(Direction dir, const Conv2dDims& d, cudnnDataType_t type, DType dtype, const ConvPlan& plan,
              const Buffers& nchw) {
  const TransformDescriptors t(d, type);
  NhwcCopies copies(d, dtype);
  Buffers n = copies.buffers();
  if (dir != Direction::BackwardData) transform(t.x_nchw, nchw.x, t.x_nhwc, n.x);
  if (dir != Direction::BackwardWeight) transform(t.w_nchw, nchw.w, t.w_nhwc, n.w);
  if (dir != Direction::Forward) transform(t.y_nchw, nchw.y, t.y_nhwc, n.y);
  const ConvDescriptors c(d, type, Layout::NHWC, plan.math);
  Tensor ws = workspace(plan.workspace);
  execute(dir, c, plan.algo, ws, plan.workspace, n);
  if (dir == Direction::Forward) transform(t.y_nhwc, n.y, t.y_nchw, nchw.y);
  if (dir == Direction::BackwardData) transform(t.x_nhwc, n.x, t.x_nchw, nchw.x);
  if (dir == Direction::BackwardWeight) transform(t.w_nhwc, n.w, t.w_nchw, nchw.w);
}

// The fastest usable candidate (time plus `extra_ms`) that fits `ws_bytes`, into best. Strict fp32
// (FMA math asked for) takes FMA algorithms only: another math type could round through TF32.
void take_best(const std::vector<Candidate>& candidates, Layout layout, float extra_ms, std::size_t ws_bytes,
               cudnnMathType_t requested, ConvPlan& best, float& best_ms) {
  for (const Candidate& c : candidates) {
    if (requested == CUDNN_FMA_MATH && c.math != CUDNN_FMA_MATH) continue;
    if (!c.usable || c.memory > ws_bytes || c.ms + extra_ms >= best_ms) continue;
    best = ConvPlan{layout, c.algo, c.math, c.memory};
    best_ms = c.ms + extra_ms;
  }
}

ConvPlan search(Direction dir, const Conv2dDims& d, cudnnDataType_t type, DType dtype, cudnnMathType_t math,
                const Buffers& nchw) {
  ConvPlan best;
  float best_ms = 1e30f;
  if (backend::stream_is_capturing(backend::compute_stream_handle())) {
    const ConvDescriptors c(d, type, Layout::NCHW, math);
    Tensor no_workspace;
    take_best(candidates(dir, false, c, nchw, no_workspace, 0), Layout::NCHW, 0.f, std::size_t(1) << 30, math, best,
              best_ms);
    CXR_CHECK(best_ms < 1e30f, "--kernels library: cuDNN has no deterministic ", direction_name(dir),
              " algorithm for this convolution (N=", d.N, " C=", d.C, " H=", d.H, " W=", d.W, " K=", d.K, " R=", d.R,
              " S=", d.S, " groups=", d.G, ")");
    return best;
  }
  std::size_t ws_bytes = 0;
  Tensor ws = search_workspace(ws_bytes);
  {
    const ConvDescriptors c(d, type, Layout::NCHW, math);
    take_best(candidates(dir, true, c, nchw, ws, ws_bytes), Layout::NCHW, 0.f, ws_bytes, math, best, best_ms);
  }
  {
    // NHWC: the search on the copies, plus the three transforms timed as a call would run them.
    const TransformDescriptors t(d, type);
    NhwcCopies copies(d, dtype);
    Buffers n = copies.buffers();
    Event start(true), stop(true);
    start.record(Stream::compute());
    transform(t.x_nchw, nchw.x, t.x_nhwc, n.x);
    transform(t.w_nchw, nchw.w, t.w_nhwc, n.w);
    transform(t.y_nchw, nchw.y, t.y_nhwc, n.y);
    stop.record(Stream::compute());
    stop.synchronize();
    const float transforms_ms = stop.elapsed_ms_since(start);
    const ConvDescriptors c(d, type, Layout::NHWC, math);
    take_best(candidates(dir, true, c, n, ws, ws_bytes), Layout::NHWC, transforms_ms, ws_bytes, math, best, best_ms);
  }
  CXR_CHECK(best_ms < 1e30f, "--kernels library: cuDNN found no deterministic ", direction_name(dir),
            " algorithm for this convolution (N=", d.N, " C=", d.C, " H=", d.H, " W=", d.W, " K=", d.K, " R=", d.R,
            " S=", d.S, " groups=", d.G, ", workspace up to ", ws_bytes, " bytes)");
  return best;
}

ConvKey key_of(Direction dir, const Conv2dDims& d, cudnnDataType_t type, cudnnMathType_t math) {
  return ConvKey{{d.N, d.C, d.H, d.W, d.K, d.R, d.S, d.P, d.Q, d.sh, d.sw, d.ph, d.pw, d.dh, d.dw, d.G},
                 type, math, dir};
}

// The convolution of `dir` on NCHW buffers of `dtype` (all three), planned once per key.
void convolve(Direction dir, const Conv2dDims& d, DType dtype, const Buffers& nchw) {
  const cudnnDataType_t type = cudnn_type(dtype);
  const cudnnMathType_t math = requested_math(type);
  const ConvKey key = key_of(dir, d, type, math);
  std::optional<ConvPlan> plan;
  {
    std::lock_guard<std::mutex> lock(g_plans_mutex);
    if (auto it = g_plans.find(key); it != g_plans.end()) plan = it->second;
  }
  if (!plan) {
    plan = search(dir, d, type, dtype, math, nchw);
    if (!backend::stream_is_capturing(backend::compute_stream_handle())) {
      std::lock_guard<std::mutex> lock(g_plans_mutex);
      g_plans.emplace(key, *plan);
    }
  }
  if (plan->layout == Layout::NHWC) {
    run_nhwc(dir, d, type, dtype, *plan, nchw);
    return;
  }
  const ConvDescriptors c(d, type, Layout::NCHW, plan->math);
  Tensor ws = workspace(plan->workspace);
  execute(dir, c, plan->algo, ws, plan->workspace, nchw);
}

void* mutable_data(const Tensor& t) { return const_cast<Tensor&>(t).raw_data(); }

}  // namespace

void conv2d_forward(const Conv2dDims& d, const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y) {
  const DType type = x.dtype();
  // bf16 operands: y in bf16 (cuDNN's one type), widened below when f32 was asked for.
  Tensor out = y.dtype() == type ? y : Tensor::empty(y.shape(), type, Device::CUDA);
  convolve(Direction::Forward, d, type, {mutable_data(x), mutable_data(w), out.raw_data()});
  if (bias.defined()) {
    // y += b over (N, P, Q); b in y's type (a bf16 y adds b rounded to bf16, as autocast does).
    const Tensor b = type == DType::BF16 ? to_bf16(bias) : bias;
    const TensorDescriptor b_desc(CUDNN_TENSOR_NCHW, cudnn_type(type), 1, d.K, 1, 1);
    const TensorDescriptor y_desc(CUDNN_TENSOR_NCHW, cudnn_type(type), d.N, d.K, d.P, d.Q);
    const float one = 1.f;
    check_cudnn(library_api().cudnn.cudnnAddTensor(cudnn_handle(), &one, b_desc, b.raw_data(), &one, y_desc,
                                                   out.raw_data()),
                "cudnnAddTensor (convolution bias)");
  }
  if (out.dtype() != y.dtype()) y = to_f32(out);
}

void conv2d_backward_data(const Conv2dDims& d, const Tensor& dy, const Tensor& w, Tensor& dx) {
  const DType type = dy.dtype();
  Tensor out = dx.dtype() == type ? dx : Tensor::empty(dx.shape(), type, Device::CUDA);
  convolve(Direction::BackwardData, d, type, {out.raw_data(), mutable_data(w), mutable_data(dy)});
  if (out.dtype() != dx.dtype()) dx = to_f32(out);
}

void conv2d_backward_weight(const Conv2dDims& d, const Tensor& dy, const Tensor& x, Tensor& dw) {
  const DType type = dy.dtype();
  Tensor out = dw.dtype() == type ? dw : Tensor::empty(dw.shape(), type, Device::CUDA);
  convolve(Direction::BackwardWeight, d, type, {mutable_data(x), out.raw_data(), mutable_data(dy)});
  if (out.dtype() != dw.dtype()) dw = to_f32(out);
}

}  // namespace cxr::library
