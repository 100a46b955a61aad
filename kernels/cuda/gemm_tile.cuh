// The shared-memory tiled GEMM core, shared by the plain SGEMM (kernels/cuda/gemm.cu) and the
// implicit-GEMM convolutions (kernels/cuda/conv2d.cu).
//
// One block of 256 threads computes a BM x BN = 64 x 64 tile of C = A B (A: M x Kdim,
// B: Kdim x N) over the reduction range [k_begin, k_end):
//   for each BK = 16 slice of the reduction:
//     the A loader fills sa[k][m] (64 x 16), the B loader fills sb[k][n] (16 x 64), zeros
//     outside the matrices, so partial tiles need no other care;
//     __syncthreads; every thread accumulates a 4 x 4 register tile (rows ty*4.., columns
//     tx*4..; ty, tx in 0..15) with 16 rank-1 updates read as float4 from shared memory;
//     __syncthreads.
//   The epilogue functor receives each (m, n, value) inside the matrix. An epilogue that also
//   takes (m, n, float4) (see `overloaded` below) receives a thread's 4 columns n..n+3 at once
//   where all 4 lie inside the matrix, so that it can store them as one 16-byte vector: the
//   scalar stores put 16 lanes' values 16 bytes apart, 16 sectors per warp store where 4 would
//   do (counted by the emulator's counting build, docs/emulation.md); one float4 per lane makes
//   the warp's store 16 sectors for 16 sectors of data.
// Both tiles are stored k-major, so the inner loop reads 2 float4 per 16 FMAs. Rows are
// padded to 68 floats: stores along k then meet at most 2..4-way bank conflicts, and rows
// stay 16-byte aligned for the float4 reads.
// Per tile slice: 2 x 4 KiB of global loads for 64 x 64 x 16 x 2 = 131 kFLOP (32 FLOP/B from
// L2/shared). No double buffering.
//
// gemm_block_tf32: the same tile, loaders and epilogue contract on the tensor cores (TF32
// inputs, FP32 accumulation; wmma m16n16k8). Warp w of the 8 computes rows 16 (w % 4).. and
// columns 32 (w / 4).. of the tile: two 16x16 accumulators, 2 x 2 mma per BK slice. The shared
// tiles are read in place: A(m, k) at sa[k][m] is a col_major 16x8 fragment with ldm 68, B(k,
// n) at sb[k][n] a row_major 8x16 one. Operands are rounded to TF32 (nearest) after loading.
// The accumulators go through a 64 x 68 shared tile so the epilogue sees (m, n, value) as
// before. Accuracy: relative error ~1e-3 (10-bit mantissa operands), so it is opt-in (execution
// setting allow_tf32, kernels/execution.h, like torch.backends.cudnn.allow_tf32); on the emulated
// device the same code runs through cuda_emu/wmma.h.
//
// gemm_block_bf16: the same tile on the BF16 tensor cores (wmma m16n16k16, FP32 accumulation):
// one mma per BK = 16 slice per 16x16 accumulator. The loaders fill bf16 shared tiles
// (TileRowBf16, rows of 72 elements: wmma wants ldm a multiple of 8 16-bit elements) straight
// from bf16 operands in memory, half the bytes of the f32 tiles. Products of bf16 values are
// exact and the sums are f32, so the result matches the CPU's f32 GEMM on the widened operands
// to f32 rounding (tensor/bf16.h).
//
// Loaders are functors `void operator()(float (*tile)[kTileLd], int r0, int k0) const` where
// r0 is the first row (m) of A or the first column (n) of B. Helpers below build them from
// strided memory (with float4 loads where the layout allows) or from any gather function.
#pragma once

#include "kernels/common/cuda.cuh"

#if CXR_REAL_GPU
#include <cuda_bf16.h>
#include <mma.h>
#else
#include "cuda_emu/wmma.h"
#endif

namespace cxr::cuda::tile {

constexpr int kBM = 64, kBN = 64, kBK = 16, kTM = 4, kTN = 4;
constexpr int kThreads = (kBM / kTM) * (kBN / kTN);  // 256
constexpr int kTileLd = kBM + 4;                      // padded row of a shared tile
static_assert(kBM == kBN, "the loaders assume square tiles");
static_assert(kBK * kBM == 4 * kThreads, "each thread loads one float4 (or 4 scalars) per operand tile");

using TileRow = float[kTileLd];

// Several lambdas as one overloaded functor: overloaded{scalar_epilogue, vector_epilogue}.
template <class... F>
struct overloaded : F... {
  using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;
constexpr int kTileLdBf16 = kBM + 8;  // 72 bf16 = 144 bytes: ldm % 8 == 0 for wmma
using TileRowBf16 = __nv_bfloat16[kTileLdBf16];

// What a gather function returns, as stored in a tile: f32 as it is, bf16 bits as __nv_bfloat16.
__device__ __forceinline__ float tile_element(float v) { return v; }
__device__ __forceinline__ __nv_bfloat16 tile_element(std::uint16_t bits) { return __ushort_as_bfloat16(bits); }

// Operand element (r, k) at p[r * ld + k] (contiguous along k): A untransposed, B transposed.
// Thread t loads 4 consecutive k of row t / 4; one float4 when `vec` and inside the matrix.
__device__ __forceinline__ void fill_contig_k(TileRow* t, const float* __restrict__ p, std::int64_t ld, int r0,
                                              int rows, int k0, int k_end, bool vec) {
  const int r = threadIdx.x / 4, k = (threadIdx.x % 4) * 4;
  const int gr = r0 + r, gk = k0 + k;
  if (vec && gr < rows && gk + 3 < k_end) {
    const float4 v = *reinterpret_cast<const float4*>(p + gr * ld + gk);
    t[k][r] = v.x;
    t[k + 1][r] = v.y;
    t[k + 2][r] = v.z;
    t[k + 3][r] = v.w;
  } else {
#pragma unroll
    for (int j = 0; j < 4; ++j) t[k + j][r] = (gr < rows && gk + j < k_end) ? p[gr * ld + gk + j] : 0.f;
  }
}

// Operand element (r, k) at p[k * ld + r] (contiguous along r): A transposed, B untransposed.
// Thread t loads 4 consecutive r of slice k = t / 16 and stores them as one float4.
__device__ __forceinline__ void fill_contig_r(TileRow* t, const float* __restrict__ p, std::int64_t ld, int r0,
                                              int rows, int k0, int k_end, bool vec) {
  const int k = threadIdx.x / 16, r = (threadIdx.x % 16) * 4;
  const int gr = r0 + r, gk = k0 + k;
  float4 v;
  if (vec && gk < k_end && gr + 3 < rows) {
    v = *reinterpret_cast<const float4*>(p + gk * ld + gr);
  } else {
    const bool kin = gk < k_end;
    v.x = (kin && gr < rows) ? p[gk * ld + gr] : 0.f;
    v.y = (kin && gr + 1 < rows) ? p[gk * ld + gr + 1] : 0.f;
    v.z = (kin && gr + 2 < rows) ? p[gk * ld + gr + 2] : 0.f;
    v.w = (kin && gr + 3 < rows) ? p[gk * ld + gr + 3] : 0.f;
  }
  *reinterpret_cast<float4*>(&t[k][r]) = v;
}

// Any operand: tile element (r, k) = f(r0 + r, k0 + k) inside [0, rows) x [k0, k_end), else 0.
// AlongR: consecutive threads take consecutive r (coalesced when f is contiguous in r);
// otherwise consecutive k. f returns float for an f32 tile (TileRow), bf16 bits
// (std::uint16_t) for a bf16 tile (TileRowBf16); 0 is +0 in both.
template <bool AlongR, class Row, class F>
__device__ __forceinline__ void fill_gather(Row* t, const F& f, int r0, int rows, int k0, int k_end) {
  using Value = decltype(f(0, 0));
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int e = threadIdx.x + i * kThreads;
    const int r = AlongR ? e % kBM : e / kBK;
    const int k = AlongR ? e / kBM : e % kBK;
    const int gr = r0 + r, gk = k0 + k;
    t[k][r] = tile_element((gr < rows && gk < k_end) ? f(gr, gk) : Value(0));
  }
}

// A strided operand as a loader. ContigK: element (r, k) at p[r * ld + k], else p[k * ld + r].
// `vec`: float4 loads allowed (p 16-byte aligned, ld a multiple of 4, k0 a multiple of 4).
template <bool ContigK>
struct StridedOperand {
  const float* p;
  std::int64_t ld;
  int rows, k_end;
  bool vec;
  __device__ void operator()(TileRow* t, int r0, int k0) const {
    if constexpr (ContigK) fill_contig_k(t, p, ld, r0, rows, k0, k_end, vec);
    else fill_contig_r(t, p, ld, r0, rows, k0, k_end, vec);
  }
};

// The block's tile of C at rows m0.., columns n0.., reduction over [k_begin, k_end).
template <class LoadA, class LoadB, class Epilogue>
__device__ __forceinline__ void gemm_block(const LoadA& load_a, const LoadB& load_b, const Epilogue& epilogue, int M,
                                           int N, int m0, int n0, int k_begin, int k_end) {
  __shared__ __align__(16) float sa[kBK][kTileLd];
  __shared__ __align__(16) float sb[kBK][kTileLd];
  const int tx = threadIdx.x % (kBN / kTN), ty = threadIdx.x / (kBN / kTN);
  float acc[kTM][kTN];
#pragma unroll
  for (int i = 0; i < kTM; ++i)
#pragma unroll
    for (int j = 0; j < kTN; ++j) acc[i][j] = 0.f;

  for (int k0 = k_begin; k0 < k_end; k0 += kBK) {
    load_a(sa, m0, k0);
    load_b(sb, n0, k0);
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kBK; ++kk) {
      const float4 a = *reinterpret_cast<const float4*>(&sa[kk][ty * kTM]);
      const float4 b = *reinterpret_cast<const float4*>(&sb[kk][tx * kTN]);
      const float av[4] = {a.x, a.y, a.z, a.w}, bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
      for (int i = 0; i < kTM; ++i)
#pragma unroll
        for (int j = 0; j < kTN; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    __syncthreads();
  }

  static_assert(kTN == 4, "the vector epilogue passes one float4 per row");
#pragma unroll
  for (int i = 0; i < kTM; ++i) {
    const int m = m0 + ty * kTM + i;
    if (m >= M) continue;
    if constexpr (requires { epilogue(m, n0, float4{}); }) {
      const int n = n0 + tx * kTN;
      if (n + kTN <= N) {
        epilogue(m, n, make_float4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]));
        continue;
      }
    }
#pragma unroll
    for (int j = 0; j < kTN; ++j) {
      const int n = n0 + tx * kTN + j;
      if (n < N) epilogue(m, n, acc[i][j]);
    }
  }
}

// The tensor-core tiles' write-out: warp (wm, wn)'s two 16x16 accumulators go through the
// shared tile sc, so the epilogue sees (m, n, value) exactly as gemm_block's does.
template <class Acc, class Epilogue>
__device__ __forceinline__ void write_accumulators(const Acc (&acc)[2], float (*sc)[kTileLd], int wm, int wn,
                                                   const Epilogue& epilogue, int M, int N, int m0, int n0) {
  namespace wmma = nvcuda::wmma;
  wmma::store_matrix_sync(&sc[wm][wn], acc[0], kTileLd, wmma::mem_row_major);
  wmma::store_matrix_sync(&sc[wm][wn + 16], acc[1], kTileLd, wmma::mem_row_major);
  __syncthreads();
  const int tx = threadIdx.x % (kBN / kTN), ty = threadIdx.x / (kBN / kTN);
#pragma unroll
  for (int i = 0; i < kTM; ++i) {
    const int m = ty * kTM + i;
    if (m0 + m >= M) continue;
#pragma unroll
    for (int j = 0; j < kTN; ++j) {
      const int n = tx * kTN + j;
      if (n0 + n < N) epilogue(m0 + m, n0 + n, sc[m][n]);
    }
  }
}

// The tile of gemm_block on the tensor cores (see the top of this file).
template <class LoadA, class LoadB, class Epilogue>
__device__ __forceinline__ void gemm_block_tf32(const LoadA& load_a, const LoadB& load_b, const Epilogue& epilogue,
                                                int M, int N, int m0, int n0, int k_begin, int k_end) {
  namespace wmma = nvcuda::wmma;
  constexpr int kWarpRows = 16, kWarpCols = 32, kMmaK = 8;
  __shared__ __align__(32) float sa[kBK][kTileLd];
  __shared__ __align__(32) float sb[kBK][kTileLd];
  __shared__ __align__(32) float sc[kBM][kTileLd];
  const int warp = threadIdx.x / 32;
  const int wm = (warp % (kBM / kWarpRows)) * kWarpRows, wn = (warp / (kBM / kWarpRows)) * kWarpCols;
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc[2];
  wmma::fill_fragment(acc[0], 0.f);
  wmma::fill_fragment(acc[1], 0.f);

  for (int k0 = k_begin; k0 < k_end; k0 += kBK) {
    load_a(sa, m0, k0);
    load_b(sb, n0, k0);
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kBK; kk += kMmaK) {
      wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::col_major> a;
      wmma::load_matrix_sync(a, &sa[kk][wm], kTileLd);
#pragma unroll
      for (int i = 0; i < a.num_elements; ++i) a.x[i] = wmma::__float_to_tf32(a.x[i]);
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> b;
        wmma::load_matrix_sync(b, &sb[kk][wn + 16 * j], kTileLd);
#pragma unroll
        for (int i = 0; i < b.num_elements; ++i) b.x[i] = wmma::__float_to_tf32(b.x[i]);
        wmma::mma_sync(acc[j], a, b, acc[j]);
      }
    }
    __syncthreads();
  }

  write_accumulators(acc, sc, wm, wn, epilogue, M, N, m0, n0);
}

// The bf16 tile (see the top of this file); the loaders fill TileRowBf16 tiles.
template <class LoadA, class LoadB, class Epilogue>
__device__ __forceinline__ void gemm_block_bf16(const LoadA& load_a, const LoadB& load_b, const Epilogue& epilogue,
                                                int M, int N, int m0, int n0, int k_begin, int k_end) {
  namespace wmma = nvcuda::wmma;
  constexpr int kWarpRows = 16, kWarpCols = 32;
  static_assert(kBK == 16, "one m16n16k16 mma per slice");
  __shared__ __align__(32) __nv_bfloat16 sa[kBK][kTileLdBf16];
  __shared__ __align__(32) __nv_bfloat16 sb[kBK][kTileLdBf16];
  __shared__ __align__(32) float sc[kBM][kTileLd];
  const int warp = threadIdx.x / 32;
  const int wm = (warp % (kBM / kWarpRows)) * kWarpRows, wn = (warp / (kBM / kWarpRows)) * kWarpCols;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2];
  wmma::fill_fragment(acc[0], 0.f);
  wmma::fill_fragment(acc[1], 0.f);

  for (int k0 = k_begin; k0 < k_end; k0 += kBK) {
    load_a(sa, m0, k0);
    load_b(sb, n0, k0);
    __syncthreads();
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::col_major> a;
    wmma::load_matrix_sync(a, &sa[0][wm], kTileLdBf16);
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> b;
      wmma::load_matrix_sync(b, &sb[0][wn + 16 * j], kTileLdBf16);
      wmma::mma_sync(acc[j], a, b, acc[j]);
    }
    __syncthreads();
  }
  write_accumulators(acc, sc, wm, wn, epilogue, M, N, m0, n0);
}

}  // namespace cxr::cuda::tile
