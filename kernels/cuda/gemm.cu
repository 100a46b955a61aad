// SGEMM on CUDA: C = alpha op(A) op(B) + beta C + bias (row-major, see kernels/gemm.h).
//
// sgemm_kernel<TA, TB>: the 64 x 64 x 16 shared-memory tile of kernels/cuda/gemm_tile.cuh,
// 256 threads, 4 x 4 outputs per thread. grid = (ceil(N/64), ceil(M/64), batch).
//   Operand loads: one float4 per thread per tile when the operand's leading dimension is a
//   multiple of 4 and its base is 16-byte aligned (checked at launch), scalar otherwise and
//   at the matrix edges. The transposes only change which loader (contiguous along k or
//   along the rows) fills the k-major shared tiles; the inner loop is the same for all four.
//   Epilogue: alpha, beta (beta == 0 never reads C), optional per-row / per-column bias.
// FLOPs 2 M N K; global traffic per block (64 + 64) x 16 x 4 B per slice: each A element is
// read ceil(N/64) times, each B element ceil(M/64) times (mostly from L2).
// Variants: TF32 = false, the register-tiled 64 x 64 kernel (fp32 FMA); TF32 = true, the same
// tile on the tensor cores (gemm_block_tf32), chosen when cxr::allow_tf32() is set.
// gemm_bf16_kernel<TA, TB>: bf16 operands (mixed precision), the same tile on the BF16 tensor
// cores (gemm_block_bf16): the loaders gather bf16 bits straight into bf16 shared tiles, along
// the operand's contiguous dimension; f32 output through the same epilogue (alpha 1, beta 0).
// Double-buffered cp.async loads come later; cuBLAS is the baseline in bench/bench_gemm.cpp.
#include "kernels/cuda/gemm_tile.cuh"
#include "kernels/execution.h"
#include "kernels/gemm.h"

namespace cxr::cuda {
namespace {

using namespace tile;

struct SgemmEpilogue {
  float* c;
  std::int64_t ldc;
  float alpha, beta;
  const float* bias_row;
  const float* bias_col;
  __device__ void operator()(int m, int n, float v) const {
    v *= alpha;
    if (bias_row) v += bias_row[m];
    if (bias_col) v += bias_col[n];
    float& out = c[m * ldc + n];
    out = beta == 0.f ? v : v + beta * out;
  }
  // Columns n..n+3 (n % 4 == 0): one 16-byte store where C's rows keep them aligned.
  __device__ void operator()(int m, int n, float4 v) const {
    float* out = c + m * ldc + n;
    if (ldc % 4 != 0 || reinterpret_cast<std::uintptr_t>(out) % 16 != 0) {
      (*this)(m, n, v.x), (*this)(m, n + 1, v.y), (*this)(m, n + 2, v.z), (*this)(m, n + 3, v.w);
      return;
    }
    const float a[4] = {v.x, v.y, v.z, v.w};
    float r[4];
    const float4 old = beta == 0.f ? float4{} : *reinterpret_cast<const float4*>(out);
    const float o[4] = {old.x, old.y, old.z, old.w};
    for (int j = 0; j < 4; ++j) {
      r[j] = a[j] * alpha;
      if (bias_row) r[j] += bias_row[m];
      if (bias_col) r[j] += bias_col[n + j];
      if (beta != 0.f) r[j] += beta * o[j];
    }
    *reinterpret_cast<float4*>(out) = make_float4(r[0], r[1], r[2], r[3]);
  }
};

template <bool TA, bool TB, bool TF32>
__global__ void __launch_bounds__(kThreads)
    sgemm_kernel(int M, int N, int K, float alpha, const float* __restrict__ A, std::int64_t lda,
                 std::int64_t stride_a, const float* __restrict__ B, std::int64_t ldb, std::int64_t stride_b,
                 float beta, float* C, std::int64_t ldc, std::int64_t stride_c, const float* bias_row,
                 const float* bias_col, bool vec_a, bool vec_b) {
  const std::int64_t z = blockIdx.z;
  // op(A) rows are m: untransposed A is contiguous along k. op(B) "rows" (tile r) are n:
  // untransposed B is contiguous along n, transposed B along k.
  const StridedOperand<!TA> load_a{A + z * stride_a, lda, M, K, vec_a};
  const StridedOperand<TB> load_b{B + z * stride_b, ldb, N, K, vec_b};
  const SgemmEpilogue epilogue{C + z * stride_c, ldc, alpha, beta, bias_row, bias_col};
  const int m0 = static_cast<int>(blockIdx.y) * kBM, n0 = static_cast<int>(blockIdx.x) * kBN;
  if constexpr (TF32) gemm_block_tf32(load_a, load_b, epilogue, M, N, m0, n0, 0, K);
  else gemm_block(load_a, load_b, epilogue, M, N, m0, n0, 0, K);
}

template <bool TA, bool TB>
void launch(std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A, std::int64_t lda,
            std::int64_t sa, const float* B, std::int64_t ldb, std::int64_t sb, float beta, float* C, std::int64_t ldc,
            std::int64_t sc, std::int64_t batch, GemmBias bias) {
  // float4 loads need every row start 16-byte aligned, for every batch entry.
  const bool vec_a = aligned16(A) && lda % 4 == 0 && sa % 4 == 0;
  const bool vec_b = aligned16(B) && ldb % 4 == 0 && sb % 4 == 0;
  const dim3 grid(blocks_for(N, kBN), blocks_for(M, kBM), static_cast<unsigned>(batch));
  auto* kernel = allow_tf32() ? sgemm_kernel<TA, TB, true> : sgemm_kernel<TA, TB, false>;
  launch_kernel(kernel, grid, dim3(kThreads), 0, static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), alpha,
                A, lda, sa, B, ldb, sb, beta, C, ldc, sc, bias.row, bias.col, vec_a, vec_b);
}

// C = op(A) op(B) + bias with bf16 A and B (bits), f32 C.
template <bool TA, bool TB>
__global__ void __launch_bounds__(kThreads)
    gemm_bf16_kernel(int M, int N, int K, const std::uint16_t* __restrict__ A, std::int64_t lda,
                     const std::uint16_t* __restrict__ B, std::int64_t ldb, float* C, std::int64_t ldc,
                     const float* bias_row, const float* bias_col) {
  // op(A)(m, k) and op(B)(k, n); each loader walks along the operand's contiguous dimension.
  const auto a = [&](int m, int k) { return TA ? A[static_cast<std::int64_t>(k) * lda + m] : A[m * lda + k]; };
  const auto b = [&](int n, int k) { return TB ? B[n * ldb + k] : B[static_cast<std::int64_t>(k) * ldb + n]; };
  const auto load_a = [&](TileRowBf16* t, int m0, int k0) { fill_gather<TA>(t, a, m0, M, k0, K); };
  const auto load_b = [&](TileRowBf16* t, int n0, int k0) { fill_gather<!TB>(t, b, n0, N, k0, K); };
  const SgemmEpilogue epilogue{C, ldc, 1.f, 0.f, bias_row, bias_col};
  gemm_block_bf16(load_a, load_b, epilogue, M, N, static_cast<int>(blockIdx.y) * kBM,
                  static_cast<int>(blockIdx.x) * kBN, 0, K);
}

template <bool TA, bool TB>
void launch_bf16(std::int64_t M, std::int64_t N, std::int64_t K, const std::uint16_t* A, std::int64_t lda,
                 const std::uint16_t* B, std::int64_t ldb, float* C, std::int64_t ldc, GemmBias bias) {
  const dim3 grid(blocks_for(N, kBN), blocks_for(M, kBM), 1);
  launch_kernel(gemm_bf16_kernel<TA, TB>, grid, dim3(kThreads), 0, static_cast<int>(M), static_cast<int>(N),
                static_cast<int>(K), A, lda, B, ldb, C, ldc, bias.row, bias.col);
}

}  // namespace

void gemm_bf16(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, const std::uint16_t* A,
               std::int64_t lda, const std::uint16_t* B, std::int64_t ldb, float* C, std::int64_t ldc,
               GemmBias bias) {
  if (M <= 0 || N <= 0) return;
  CXR_CHECK(M < (1ll << 31) && N < (1ll << 31) && K < (1ll << 31), "gemm_bf16: sizes out of range: M ", M, ", N ",
            N, ", K ", K);
  if (!trans_a && !trans_b) launch_bf16<false, false>(M, N, K, A, lda, B, ldb, C, ldc, bias);
  else if (!trans_a && trans_b) launch_bf16<false, true>(M, N, K, A, lda, B, ldb, C, ldc, bias);
  else if (trans_a && !trans_b) launch_bf16<true, false>(M, N, K, A, lda, B, ldb, C, ldc, bias);
  else launch_bf16<true, true>(M, N, K, A, lda, B, ldb, C, ldc, bias);
}

void sgemm_strided_batched(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                           const float* A, std::int64_t lda, std::int64_t stride_a, const float* B, std::int64_t ldb,
                           std::int64_t stride_b, float beta, float* C, std::int64_t ldc, std::int64_t stride_c,
                           std::int64_t batch, GemmBias bias) {
  if (M <= 0 || N <= 0 || batch <= 0) return;
  CXR_CHECK(M < (1ll << 31) && N < (1ll << 31) && K < (1ll << 31) && batch <= 65535,
            "sgemm: sizes out of range: M ", M, ", N ", N, ", K ", K, ", batch ", batch);
  if (!trans_a && !trans_b) launch<false, false>(M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c, batch, bias);
  else if (!trans_a && trans_b) launch<false, true>(M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c, batch, bias);
  else if (trans_a && !trans_b) launch<true, false>(M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c, batch, bias);
  else launch<true, true>(M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c, batch, bias);
}

void sgemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A,
           std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc, GemmBias bias) {
  sgemm_strided_batched(trans_a, trans_b, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1, bias);
}

}  // namespace cxr::cuda
