// GEMM, the building block of linear and conv2d:
//
//   C = alpha * op(A) op(B) + beta * C        op(X) = X or X^T
//
// Every matrix is row-major with a leading dimension (elements between two rows):
//   op(A): (M, K)   stored (M, K) with lda >= K, or, transposed, (K, M) with lda >= M
//   op(B): (K, N)   stored (K, N) with ldb >= N, or, transposed, (N, K) with ldb >= K
//   C:     (M, N)   ldc >= N
// beta == 0 overwrites C without reading it (NaN in C does not propagate), as in BLAS.
// FLOPs: 2 M N K. Minimum traffic: 4 (M K + K N + 2 M N) bytes.
//
//   cpu::gemm_reference<T>  the triple loop, float and double (tests, double precision)
//   cpu::sgemm              blocked, packed, register-tiled, OpenMP (kernels/cpu/gemm.cpp)
//   cuda::sgemm             shared-memory tiled kernel (kernels/cuda/gemm.cu), device pointers
//   cuda::gemm_bf16         bf16 operands, f32 result, BF16 tensor cores (mixed precision)
//   matmul                  Tensor level: 2-D tensors on either device
#pragma once

#include <algorithm>
#include <cstdint>

#include "tensor/tensor.h"

namespace cxr {

// Tensor level: op(a) op(b) for 2-D f32 contiguous tensors on the same device.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);

namespace cpu {

template <typename T>
void gemm_reference(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, T alpha, const T* A,
                    std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc);

// The fast CPU path. Runs on all OpenMP threads unless called inside a parallel region
// (then on the calling thread only), so callers may parallelise over images themselves.
void sgemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A,
           std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc);
// C = alpha op(A) op(B) + bias, bias (N) added to every row (a linear layer's y = x w^T + b):
// the bits of sgemm with beta = 1 on a C whose rows hold the bias, without writing those rows
// first (the bias is added where the first K block stores its tile).
void sgemm_bias(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                const float* A, std::int64_t lda, const float* B, std::int64_t ldb, const float* bias, float* C,
                std::int64_t ldc);

// op(B) given as the columns of a convolution instead of a matrix (implicit im2col). For a
// convolution with stride 1 whose output rows are as wide as its input rows (Q = W: "same"
// padding across), image n, channel c:
//   B[(c R + r) S + s][n P W + p W + q] = x[n, c, p - ph + r dh, q - pw + s dw]   (0 outside)
// so K = C R S and N = images P W. sgemm_conv_columns packs B's slivers straight from x: the
// (C R S, N) matrix im2col would write and the GEMM read back (9x the input for a 3x3) never
// exists. R S at most kMaxConvTaps.
enum class CpuGemmKernel;

struct ConvColumns {
  const float* x = nullptr;  // image 0, channel 0
  std::int64_t image = 0;    // floats from one image to the next
  int C = 0, H = 0, W = 0, R = 0, S = 0, ph = 0, pw = 0, dh = 1, dw = 1, P = 0, images = 1;
};
constexpr int kMaxConvTaps = 49;  // up to 7 x 7

// C = alpha A op(B) + beta C, B the columns above, A (M, K) stored with lda, C (M, N) with ldc:
//   trans_b false: op(B) = B,   K = C R S, N = images P W   (forward, backward-data)
//   trans_b true:  op(B) = B^T, K = images P W, N = C R S   (backward-weight: dy B^T)
// The same bits as sgemm over the explicit im2col matrix.
void sgemm_conv_columns(bool trans_b, std::int64_t M, float alpha, const float* A, std::int64_t lda,
                        const ConvColumns& cols, float beta, float* C, std::int64_t ldc);

// op(A) packed once for several products that share it (a convolution's weights over its panels
// of images): sgemm would otherwise pack it again in every call, in every thread. `room` (at
// least floats_for(M, K) floats) holds the packed copy and must outlive the PackedA; the
// register tile is the one in force when it is packed. The products give the same bits as
// sgemm with A itself.
//
// An A can also be written straight into the packing by the one who computes it (Winograd's
// filter transform, kernels/cpu/winograd.cpp): PackedA(M, K, room) lays out the room and zeroes
// the padding rows, and element (i, k) of op(A) then belongs at room[offset(i, k)].
class PackedA {
 public:
  static std::int64_t floats_for(std::int64_t M, std::int64_t K);
  PackedA(bool trans_a, std::int64_t M, std::int64_t K, const float* A, std::int64_t lda, float* room);
  PackedA(std::int64_t M, std::int64_t K, float* room);
  // A packing made earlier by the constructor above and filled since (kept by frozen_derived).
  static PackedA view(std::int64_t M, std::int64_t K, const float* packed);
  std::int64_t M() const { return M_; }
  std::int64_t K() const { return K_; }
  CpuGemmKernel kernel() const { return kernel_; }
  const float* data() const { return data_; }
  std::int64_t tile_rows() const { return mr_; }  // MR: offset(i, k + 1) - offset(i, k) within a K block
  std::int64_t k_block() const { return kc_; }    // KC: K blocks start at multiples of it
  std::int64_t offset(std::int64_t i, std::int64_t k) const {
    const std::int64_t pc = k / kc_ * kc_, kc = std::min(kc_, K_ - pc);
    return pc * m_padded_ + (i / mr_) * kc * mr_ + (k - pc) * mr_ + i % mr_;
  }

 private:
  std::int64_t M_, K_;
  CpuGemmKernel kernel_;
  const float* data_;
  std::int64_t mr_ = 1, kc_ = 1, m_padded_ = 0;  // the tile's rows, its K block, M rounded up to mr
};

// C = alpha op(A) B + beta C with A packed (B stored (K, N), ldb); and the forward product of
// convolution columns with A packed (op(B) = the columns, as with trans_b false above).
// row_bias (M), with beta 0 only: C = alpha op(A) op(B) + row_bias[i] on each row i, added where
// the first K block stores its tile (a convolution's bias per output channel): the bits of
// beta = 1 on a C whose rows hold the bias, without writing those rows first.
void sgemm(const PackedA& a, std::int64_t N, float alpha, const float* B, std::int64_t ldb, float beta, float* C,
           std::int64_t ldc, const float* row_bias = nullptr);
void sgemm_conv_columns(const PackedA& a, float alpha, const ConvColumns& cols, float beta, float* C, std::int64_t ldc,
                        const float* row_bias = nullptr);

// sgemm's register tile: Auto (the default) takes AVX-512 where the CPU has it (unless
// CXR_CPU_GEMM=avx2), else AVX2. Both give the same bits; the setter is for tests and benchmarks.
enum class CpuGemmKernel { Auto, Avx2, Avx512 };
void set_cpu_gemm_kernel(CpuGemmKernel k);  // process-wide
CpuGemmKernel cpu_gemm_kernel();            // the one sgemm uses now (never Auto)
bool cpu_gemm_kernel_available(CpuGemmKernel k);
const char* cpu_gemm_kernel_name(CpuGemmKernel k);

}  // namespace cpu

namespace cuda {

// Optional fused epilogue: C[m, n] += bias_row[m] (per row) and/or bias_col[n] (per column).
struct GemmBias {
  const float* row = nullptr;
  const float* col = nullptr;
};

// Device pointers. `batch` independent products with element strides between them
// (stride 0 shares an operand across the batch).
void sgemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A,
           std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc,
           GemmBias bias = {});
void sgemm_strided_batched(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                           const float* A, std::int64_t lda, std::int64_t stride_a, const float* B, std::int64_t ldb,
                           std::int64_t stride_b, float beta, float* C, std::int64_t ldc, std::int64_t stride_c,
                           std::int64_t batch, GemmBias bias = {});

// C = op(A) op(B) (+ bias) with bf16 operands (bits, tensor/bf16.h) and an f32 C
// (alpha 1, beta 0: C is overwritten); the BF16 tensor cores, f32 accumulation.
void gemm_bf16(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, const std::uint16_t* A,
               std::int64_t lda, const std::uint16_t* B, std::int64_t ldb, float* C, std::int64_t ldc,
               GemmBias bias = {});

}  // namespace cuda

}  // namespace cxr
