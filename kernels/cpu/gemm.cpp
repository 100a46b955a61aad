// GEMM on the CPU: C = alpha op(A) op(B) + beta C (row-major, see kernels/gemm.h).
//
// gemm_reference<T>: the triple loop, reads like the math; float and double.
//
// sgemm: the Goto/BLIS scheme.
//   parallel over tasks = (MC-row block ic) x (column chunk jc, <= NC wide):
//     for pc in K step KC:
//       pack op(A)[ic:ic+mc, pc:pc+kc] into MR-row slivers     Ap[s][k][0..MR)   (L2)
//       pack op(B)[pc:pc+kc, jc:jc+nc] into NR-column slivers  Bp[t][k][0..NR)   (L3)
//       for each NR sliver of the chunk:                        B sliver (KC x NR) in L1
//         for each MR sliver of the block:
//           micro-kernel: MR x NR accumulators in registers, kc rank-1 updates
// v1 packed A and B once per (jc, pc) into shared buffers, with three barriers per KC step;
// on this 2-core machine shared with other jobs every barrier could cost a scheduler slice
// (1024^3 at 2 threads: 8.5 GFLOP/s wall vs 29 single-threaded). v2 (this) gives each task
// its own packing and has no barrier but the last.
// Packing makes every operand layout (both transposes) look the same to the micro-kernel and
// pads partial slivers with zeros, so edges only matter when the tile is written back.
//
// Micro-kernel: MR x NR = 6 x 16 floats = 12 vectors of 8 (GCC vector extensions): with AVX2
// 12 ymm accumulators + 2 for B + 1 broadcast of A = 15 of the 16 registers; each k step is
// 2 loads of B, 6 broadcasts and 12 FMAs. The macro-kernel is compiled twice with
// target_clones (x86-64-v3 = AVX2+FMA, and the baseline SSE2, chosen at load time), so the
// build needs no -march=native.
// FLOPs 2MNK; packing reads M K n_chunks + K N m_blocks floats, negligible next to them.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/gemm.h"

namespace cxr::cpu {

template <typename T>
void gemm_reference(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, T alpha, const T* A,
                    std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc) {
  for (std::int64_t i = 0; i < M; ++i)
    for (std::int64_t j = 0; j < N; ++j) {
      T sum = T(0);
      for (std::int64_t k = 0; k < K; ++k) {
        const T a = trans_a ? A[k * lda + i] : A[i * lda + k];
        const T b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
        sum += a * b;
      }
      T& c = C[i * ldc + j];
      c = alpha * sum + (beta == T(0) ? T(0) : beta * c);
    }
}

template void gemm_reference<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t, float, const float*,
                                    std::int64_t, const float*, std::int64_t, float, float*, std::int64_t);
template void gemm_reference<double>(bool, bool, std::int64_t, std::int64_t, std::int64_t, double, const double*,
                                     std::int64_t, const double*, std::int64_t, double, double*, std::int64_t);

namespace {

constexpr std::int64_t MR = 6, NR = 16;
constexpr std::int64_t KC = 256;   // 16 KiB B sliver in L1
constexpr std::int64_t MC = 120;   // 120 KiB A block in L2 (20 slivers)
constexpr std::int64_t NC = 3072;  // 3 MiB B panel in L3

typedef float v8 __attribute__((vector_size(32)));
// The helpers below are always inlined into the target_clones bodies, so the ABI of a v8
// passed by value (which differs with and without AVX) never matters.
#pragma GCC diagnostic ignored "-Wpsabi"

__attribute__((always_inline)) inline v8 load8(const float* p) {
  v8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
__attribute__((always_inline)) inline void store8(float* p, v8 v) { std::memcpy(p, &v, sizeof v); }

// MR x NR tile: C[0:mr, 0:nr] += alpha * Ap (MR x kc) Bp (kc x NR).
__attribute__((always_inline)) inline void micro_kernel(std::int64_t kc, const float* __restrict__ ap,
                                                        const float* __restrict__ bp, float* __restrict__ c,
                                                        std::int64_t ldc, std::int64_t mr, std::int64_t nr,
                                                        float alpha) {
  v8 acc[MR][2];
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = v8{};
  for (std::int64_t k = 0; k < kc; ++k) {
    const v8 b0 = load8(bp), b1 = load8(bp + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      acc[i][0] += ap[i] * b0;
      acc[i][1] += ap[i] * b1;
    }
    ap += MR;
    bp += NR;
  }
  if (mr == MR && nr == NR) {
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      float* row = c + i * ldc;
      store8(row, load8(row) + alpha * acc[i][0]);
      store8(row + 8, load8(row + 8) + alpha * acc[i][1]);
    }
  } else {
    float tile[MR][NR];
    for (int i = 0; i < MR; ++i) {
      store8(tile[i], acc[i][0]);
      store8(tile[i] + 8, acc[i][1]);
    }
    for (std::int64_t i = 0; i < mr; ++i)
      for (std::int64_t j = 0; j < nr; ++j) c[i * ldc + j] += alpha * tile[i][j];
  }
}

// C[0:mc, 0:nc] += alpha * (packed A block) (packed B chunk); nc may end in a partial sliver.
__attribute__((target_clones("arch=x86-64-v3", "default"))) void macro_kernel(
    std::int64_t mc, std::int64_t nc, std::int64_t kc, const float* ap, const float* bp, float* c,
    std::int64_t ldc, float alpha) {
  for (std::int64_t jr = 0; jr < nc; jr += NR) {
    const std::int64_t nr = std::min(NR, nc - jr);
    const float* b = bp + (jr / NR) * kc * NR;
    for (std::int64_t ir = 0; ir < mc; ir += MR) {
      const std::int64_t mr = std::min(MR, mc - ir);
      micro_kernel(kc, ap + (ir / MR) * kc * MR, b, c + ir * ldc + jr, ldc, mr, nr, alpha);
    }
  }
}

// Sliver s of op(A)[:, pc:pc+kc]: Ap[k * MR + i] = op(A)(s*MR + i, pc + k), zero past M.
void pack_a_sliver(bool trans_a, const float* A, std::int64_t lda, std::int64_t M, std::int64_t row0,
                   std::int64_t pc, std::int64_t kc, float* ap) {
  const std::int64_t mr = std::min(MR, M - row0);
  if (!trans_a) {
    for (std::int64_t k = 0; k < kc; ++k) {
      for (std::int64_t i = 0; i < mr; ++i) ap[k * MR + i] = A[(row0 + i) * lda + pc + k];
      for (std::int64_t i = mr; i < MR; ++i) ap[k * MR + i] = 0.f;
    }
  } else {
    for (std::int64_t k = 0; k < kc; ++k) {
      const float* src = A + (pc + k) * lda + row0;
      for (std::int64_t i = 0; i < mr; ++i) ap[k * MR + i] = src[i];
      for (std::int64_t i = mr; i < MR; ++i) ap[k * MR + i] = 0.f;
    }
  }
}

// Sliver t of op(B)[pc:pc+kc, jc:jc+nc]: Bp[k * NR + j] = op(B)(pc + k, col0 + j), zero past N.
void pack_b_sliver(bool trans_b, const float* B, std::int64_t ldb, std::int64_t N, std::int64_t col0,
                   std::int64_t pc, std::int64_t kc, float* bp) {
  const std::int64_t nr = std::min(NR, N - col0);
  if (!trans_b) {
    for (std::int64_t k = 0; k < kc; ++k) {
      const float* src = B + (pc + k) * ldb + col0;
      for (std::int64_t j = 0; j < nr; ++j) bp[k * NR + j] = src[j];
      for (std::int64_t j = nr; j < NR; ++j) bp[k * NR + j] = 0.f;
    }
  } else {
    for (std::int64_t k = 0; k < kc; ++k) {
      for (std::int64_t j = 0; j < nr; ++j) bp[k * NR + j] = B[(col0 + j) * ldb + pc + k];
      for (std::int64_t j = nr; j < NR; ++j) bp[k * NR + j] = 0.f;
    }
  }
}

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

}  // namespace

void sgemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A,
           std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (beta != 1.f)
    for (std::int64_t i = 0; i < M; ++i) {
      float* row = C + i * ldc;
      if (beta == 0.f) std::fill(row, row + N, 0.f);
      else for (std::int64_t j = 0; j < N; ++j) row[j] *= beta;
    }
  if (K <= 0 || alpha == 0.f) return;

  const double flops = 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  const int threads = (omp_in_parallel() || flops < 2e6) ? 1 : omp_get_max_threads();

  // Tasks: MC-row blocks x column chunks (at most NC wide, a multiple of NR), enough for two
  // per thread when M is small (linear heads, late conv layers).
  const std::int64_t m_blocks = ceil_div(M, MC);
  const std::int64_t n_slivers = ceil_div(N, NR);
  const std::int64_t want_chunks = std::max(ceil_div(N, NC), ceil_div(2 * threads, m_blocks));
  const std::int64_t chunk = std::min(NC, ceil_div(n_slivers, std::min(n_slivers, want_chunks)) * NR);
  const std::int64_t n_chunks = ceil_div(N, chunk);

  // Every task packs its own A block and B chunk, so the threads never wait for each other
  // (one barrier at the end; on a busy machine each barrier can cost a scheduler time slice).
  // The duplicated packing is M K n_chunks + K N m_blocks floats: ~1/(2 MC) + 1/(2 chunk) of
  // the FLOPs.
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads)
  for (std::int64_t ib = 0; ib < m_blocks; ++ib)
    for (std::int64_t jb = 0; jb < n_chunks; ++jb) {
      thread_local std::vector<float> a_buf, b_buf;  // per thread, reused between calls
      a_buf.resize(static_cast<std::size_t>(MC * KC));
      b_buf.resize(static_cast<std::size_t>(NC * KC));
      const std::int64_t ic = ib * MC, jc = jb * chunk;
      const std::int64_t mc = std::min(MC, M - ic), nc = std::min(chunk, N - jc);
      for (std::int64_t pc = 0; pc < K; pc += KC) {
        const std::int64_t kc = std::min(KC, K - pc);
        for (std::int64_t s = 0; s * MR < mc; ++s)
          pack_a_sliver(trans_a, A, lda, M, ic + s * MR, pc, kc, a_buf.data() + s * kc * MR);
        for (std::int64_t t = 0; t * NR < nc; ++t)
          pack_b_sliver(trans_b, B, ldb, N, jc + t * NR, pc, kc, b_buf.data() + t * kc * NR);
        macro_kernel(mc, nc, kc, a_buf.data(), b_buf.data(), C + ic * ldc + jc, ldc, alpha);
      }
    }
}

}  // namespace cxr::cpu
