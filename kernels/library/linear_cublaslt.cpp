// Linear layers through cuBLASLt (kernels/library.h). Row-major tensors seen as column-major
// matrices (a row-major (r, c) buffer is the column-major (c, r) matrix), so with x (N, in),
// W (out, in), dy (N, out):
//   forward          y^T  (out x N)  = op_T(W: in x out) * (x^T: in x N)       + b   (epilogue BIAS)
//   backward-data    dx^T (in x N)   = (W: in x out)     * (dy^T: out x N)
//   backward-weight  dW^T (in x out) = (x^T: in x N)     * op_T(dy^T: out x N)
// f32 operands: CUBLAS_COMPUTE_32F (FMA), or CUBLAS_COMPUTE_32F_FAST_TF32 with --tf32; bf16
// operands: CUBLAS_COMPUTE_32F with f32 outputs. The algorithm is cuBLASLt's heuristic first
// choice, cached per GEMM; its workspace (up to 32 MiB) comes from the caching allocator.
#include <array>
#include <mutex>
#include <unordered_map>

#include "kernels/execution.h"
#include "kernels/library.h"
#include "kernels/library/library_context.h"

namespace cxr::library {

namespace {

constexpr std::size_t kMaxWorkspace = std::size_t(32) << 20;

struct Gemm {
  cublasOperation_t ta = CUBLAS_OP_N, tb = CUBLAS_OP_N;
  int m = 0, n = 0, k = 0, lda = 0, ldb = 0, ldc = 0;
  cudaDataType_t ab = CUDA_R_32F;  // A and B; C/D are f32
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  bool bias = false;
  std::array<int, 11> key() const {
    return {static_cast<int>(ta), static_cast<int>(tb), m, n, k, lda, ldb, ldc, static_cast<int>(ab),
            static_cast<int>(compute), bias ? 1 : 0};
  }
};

struct KeyHash {
  std::size_t operator()(const std::array<int, 11>& k) const {
    std::size_t h = 0;
    for (int v : k) h = h * 1000003u ^ static_cast<std::size_t>(v);
    return h;
  }
};

std::mutex g_algos_mutex;
std::unordered_map<std::array<int, 11>, cublasLtMatmulHeuristicResult_t, KeyHash> g_algos;

template <typename T, typename Destroy>
struct Owned {
  T p = nullptr;
  Destroy destroy;
  explicit Owned(Destroy d) : destroy(d) {}
  ~Owned() {
    if (p) destroy(p);
  }
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
};

void set_attribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, const void* value,
                   std::size_t size, const char* what) {
  check_cublas(library_api().lt.cublasLtMatmulDescSetAttribute(desc, attr, value, size), what);
}

// C (m x n, f32, ldc) = op(A) op(B) [+ bias (m)], all on the compute stream.
void matmul(const Gemm& g, const void* A, const void* B, float* C, const float* bias) {
  const CublasLtApi& api = library_api().lt;
  cublasLtHandle_t lt = cublaslt_handle();
  Owned<cublasLtMatmulDesc_t, decltype(api.cublasLtMatmulDescDestroy)> desc(api.cublasLtMatmulDescDestroy);
  check_cublas(api.cublasLtMatmulDescCreate(&desc.p, g.compute, CUDA_R_32F), "cublasLtMatmulDescCreate");
  set_attribute(desc.p, CUBLASLT_MATMUL_DESC_TRANSA, &g.ta, sizeof(g.ta), "CUBLASLT_MATMUL_DESC_TRANSA");
  set_attribute(desc.p, CUBLASLT_MATMUL_DESC_TRANSB, &g.tb, sizeof(g.tb), "CUBLASLT_MATMUL_DESC_TRANSB");
  if (g.bias) {
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    const cudaDataType_t bias_type = CUDA_R_32F;
    set_attribute(desc.p, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue), "CUBLASLT_MATMUL_DESC_EPILOGUE");
    set_attribute(desc.p, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias), "CUBLASLT_MATMUL_DESC_BIAS_POINTER");
    set_attribute(desc.p, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof(bias_type),
                  "CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE");
  }
  using Layout = Owned<cublasLtMatrixLayout_t, decltype(api.cublasLtMatrixLayoutDestroy)>;
  Layout a(api.cublasLtMatrixLayoutDestroy), b(api.cublasLtMatrixLayoutDestroy), c(api.cublasLtMatrixLayoutDestroy);
  // Stored shapes: op N keeps (rows, cols) = (m, k) for A, (k, n) for B; op T stores the transpose.
  check_cublas(api.cublasLtMatrixLayoutCreate(&a.p, g.ab, g.ta == CUBLAS_OP_N ? g.m : g.k,
                                              g.ta == CUBLAS_OP_N ? g.k : g.m, g.lda),
               "cublasLtMatrixLayoutCreate(A)");
  check_cublas(api.cublasLtMatrixLayoutCreate(&b.p, g.ab, g.tb == CUBLAS_OP_N ? g.k : g.n,
                                              g.tb == CUBLAS_OP_N ? g.n : g.k, g.ldb),
               "cublasLtMatrixLayoutCreate(B)");
  check_cublas(api.cublasLtMatrixLayoutCreate(&c.p, CUDA_R_32F, g.m, g.n, g.ldc), "cublasLtMatrixLayoutCreate(C)");

  cublasLtMatmulHeuristicResult_t algo{};
  bool cached = false;
  {
    std::lock_guard<std::mutex> lock(g_algos_mutex);
    if (auto it = g_algos.find(g.key()); it != g_algos.end()) {
      algo = it->second;
      cached = true;
    }
  }
  if (!cached) {
    Owned<cublasLtMatmulPreference_t, decltype(api.cublasLtMatmulPreferenceDestroy)> pref(
        api.cublasLtMatmulPreferenceDestroy);
    check_cublas(api.cublasLtMatmulPreferenceCreate(&pref.p), "cublasLtMatmulPreferenceCreate");
    const std::size_t max_ws = kMaxWorkspace;
    check_cublas(api.cublasLtMatmulPreferenceSetAttribute(pref.p, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_ws,
                                                          sizeof(max_ws)),
                 "CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES");
    int found = 0;
    check_cublas(api.cublasLtMatmulAlgoGetHeuristic(lt, desc.p, a.p, b.p, c.p, c.p, pref.p, 1, &algo, &found),
                 "cublasLtMatmulAlgoGetHeuristic");
    CXR_CHECK(found > 0, "--kernels library: cuBLASLt has no algorithm for the GEMM m=", g.m, " n=", g.n, " k=", g.k);
    std::lock_guard<std::mutex> lock(g_algos_mutex);
    g_algos.emplace(g.key(), algo);
  }
  Tensor ws = workspace(algo.workspaceSize);
  const float one = 1.f, zero = 0.f;
  check_cublas(api.cublasLtMatmul(lt, desc.p, &one, A, a.p, B, b.p, &zero, C, c.p, C, c.p, &algo.algo,
                                  workspace_ptr(ws), algo.workspaceSize, compute_stream()),
               "cublasLtMatmul");
}

// Operand type and compute type of a linear layer's GEMMs.
void set_types(Gemm& g, DType operands) {
  g.ab = operands == DType::BF16 ? CUDA_R_16BF : CUDA_R_32F;
  g.compute = operands == DType::F32 && allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}

int to_int(std::int64_t v) { return static_cast<int>(v); }

}  // namespace

void linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y) {
  const int N = to_int(x.size(0)), in = to_int(x.size(1)), out = to_int(w.size(0));
  Gemm g;
  g.ta = CUBLAS_OP_T;
  g.tb = CUBLAS_OP_N;
  g.m = out, g.n = N, g.k = in, g.lda = in, g.ldb = in, g.ldc = out;
  g.bias = b.defined();
  set_types(g, x.dtype());
  matmul(g, w.raw_data(), x.raw_data(), y.f32(), b.defined() ? b.f32() : nullptr);
}

void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor& dx, Tensor& dw) {
  const int N = to_int(x.size(0)), in = to_int(x.size(1)), out = to_int(w.size(0));
  Gemm data;
  data.ta = CUBLAS_OP_N;
  data.tb = CUBLAS_OP_N;
  data.m = in, data.n = N, data.k = out, data.lda = in, data.ldb = out, data.ldc = in;
  set_types(data, x.dtype());
  matmul(data, w.raw_data(), dy.raw_data(), dx.f32(), nullptr);
  Gemm weight;
  weight.ta = CUBLAS_OP_N;
  weight.tb = CUBLAS_OP_T;
  weight.m = in, weight.n = out, weight.k = N, weight.lda = in, weight.ldb = out, weight.ldc = in;
  set_types(weight, x.dtype());
  matmul(weight, x.raw_data(), dy.raw_data(), dw.f32(), nullptr);
}

}  // namespace cxr::library
