// GEMM on the CPU: C = alpha op(A) op(B) + beta C (row-major, see kernels/gemm.h).
//
// gemm_reference<T>: the triple loop, reads like the math; float and double.
//
// sgemm: the Goto/BLIS scheme.
//   Threads: C is cut into tm x tn rectangles (tm tn = threads), one per thread, with edges on
//   register-tile boundaries; the split is the one that packs the fewest floats per thread,
//   K (M / tm + N / tn) (a thread packs the A rows and B columns its rectangle touches).
//   Each thread then runs the serial loops below on its rectangle, with its own packing
//   buffers: no barrier but the one that ends the parallel region.
//     for jc in its columns step NC:
//       for pc in 0..K step KC:
//         pack op(B)[pc:pc+kc, jc:jc+nc] into NR-column slivers  Bp[t][k][0..NR)   (L3/L2)
//         for ic in its rows step MC:
//           pack op(A)[ic:ic+mc, pc:pc+kc] into MR-row slivers   Ap[s][k][0..MR)   (L2)
//           for each NR sliver of Bp:                             B sliver (KC x NR) in L1
//             for each MR sliver of Ap:
//               micro-kernel: MR x NR accumulators in registers, kc rank-1 updates
//   Every element of C is summed the same way (KC blocks in order, each added to C) whatever
//   the rectangle it falls in, so the result does not depend on the thread count.
//   (v1 packed shared buffers with three barriers per KC step, which on this 2-core machine
//   shared with other jobs could cost a scheduler slice each; v2 split C into MC x chunk
//   tasks, each repacking its own A block and B chunk, which for the small-N GEMMs of
//   per-image convolutions packed as many floats as it multiplied.)
//   When a thread's rows fit one A block (M <= MC), each B sliver is packed right before the A
//   block sweeps it instead of a whole NC panel first (rectangle()). When the B panel of all of
//   K fits in half of L2 (K nc <= 256 Ki floats), it is packed first and the pc loop runs inside
//   the ic loop (the whole-K order): each C tile takes all its K blocks while in cache. With
//   that order, a row-major op(A) and at most 128 columns per thread, A is not packed at all:
//   the micro-kernel broadcasts its elements from the rows in place (micro_kernel<T, true>).
//   Both keep every addition and its order, so the bits do not change.
// Operands that are not plain matrices:
//   op(A) packed once (PackedA): K blocks of padded-M slivers, shared by every thread and every
//     call that passes it (a convolution's weights over its panels of images);
//   op(B) = convolution columns (ConvColumns, implicit im2col): the B slivers are packed from
//     the image itself, with lane masks for the padding (pack_b_columns, and
//     pack_b_columns_transposed for backward-weight's columns^T).
// Packing makes every operand layout (both transposes) look the same to the micro-kernel and
// pads partial slivers with zeros, so edges only matter when the tile is written back.
// Two of the packings are transposes: op(A) = A stored (M, K) (slivers want MR rows side by
// side; conv2d's forward weights, backward-weight's dY) and op(B) = B^T stored (N, K)
// (conv2d's backward-weight, dW = dY col^T). They go through 8 x 8 register transposes, 8
// floats of a row at a time, instead of reading one float per row per step. With beta == 0
// the first K block stores C instead of adding to it (no zeroing pass, no read of C).
//
// Micro-kernels (GCC vector extensions), one register tile per instruction set (struct Tile):
//   AVX-512 (x86-64-v4)   MR x NR = 14 x 32 floats: 28 zmm accumulators, 2 FMAs of 16 lanes per
//                         broadcast of A;
//   AVX2 (x86-64-v3)      6 x 16 floats: 12 ymm accumulators (and the baseline SSE2 clone).
// The per-thread body (packing + macro-kernel) is compiled for each (target / target_clones),
// and the AVX-512 one is taken where the CPU has AVX-512F/BW/DQ/VL/CD (checked once per
// process; CXR_CPU_GEMM=avx2 or set_cpu_gemm_kernel to compare), so the build needs no
// -march=native. Every element of C gets the same fused multiply-adds in the same order with
// either tile, so the two give the same bits.
// FLOPs 2MNK. Packing per thread: (M/tm) K ceil(N/(tn NC)) + K N/tn floats; with N/tn <= NC
// (every conv of the CNNs here) that is each operand once, K (M + N) over all threads at
// tm = tn = 1, i.e. 1/(2N) + 1/(2M) of the FLOPs.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/gemm.h"
#include "tensor/error.h"

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

typedef float v8 __attribute__((vector_size(32)));
typedef float v16 __attribute__((vector_size(64)));
// The helpers below are always inlined into the target-specific bodies, so the ABI of a vector
// passed by value (which differs with and without AVX) never matters.
#pragma GCC diagnostic ignored "-Wpsabi"
#define CXR_INLINE __attribute__((always_inline)) inline

// A register tile and the blocking around it:
//   Avx2Tile    6 x 16: 12 ymm accumulators + 2 for B + 1 broadcast of A = 15 of 16 registers;
//               each k step 2 loads of B, 6 broadcasts, 12 FMAs of 8 lanes.
//   Avx512Tile  14 x 32: 28 zmm accumulators + 2 for B + 1 broadcast = 31 of 32 registers; each k
//               step 2 loads of B, 14 broadcasts, 28 FMAs of 16 lanes (twice the FLOPs per
//               instruction; two 512-bit FMA ports where the core has them).
// KC: a B sliver (KC x NR) stays in L1 (16 KiB / 32 KiB); MC: the packed A block (MC x KC) in L2;
// NC: the packed B panel in L3.
template <class V, int kMR, int kNV, int kMC>
struct Tile {
  using Vec = V;
  static constexpr std::int64_t MR = kMR, NV = kNV, L = sizeof(V) / sizeof(float), NR = kNV * L, MC = kMC;
  static constexpr std::int64_t KC = 256, NC = 3072;
};
using Avx2Tile = Tile<v8, 6, 2, 120>;
using Avx512Tile = Tile<v16, 14, 2, 112>;
constexpr std::int64_t kMaxMC = 120, kMaxKC = 256, kMaxNC = 3072;  // the buffers fit either tile
// rectangle's whole-K order when a B panel of all of K is at most this many floats (1 MiB, half
// of L2).
constexpr std::int64_t kWholeKFloats = std::int64_t{1} << 18;
// rectangle reads a row-major op(A) in place when the thread has at most this many columns.
constexpr std::int64_t kRowsAColumns = 128;

template <class V>
CXR_INLINE V loadv(const void* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class V>
CXR_INLINE void storev(void* p, V v) {
  std::memcpy(p, &v, sizeof v);
}

// r[i][j] <- r[j][i]: three rounds of two-input shuffles (with AVX: unpck, shufps, vperm2f128).
CXR_INLINE void transpose8x8(v8 r[8]) {
  v8 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
  for (int i = 0; i < 8; i += 4)
    for (int h = 0; h < 2; ++h) {
      u[i + 2 * h] = __builtin_shufflevector(t[i + h], t[i + h + 2], 0, 1, 8, 9, 4, 5, 12, 13);
      u[i + 2 * h + 1] = __builtin_shufflevector(t[i + h], t[i + h + 2], 2, 3, 10, 11, 6, 7, 14, 15);
    }
  for (int i = 0; i < 4; ++i) {
    r[i] = __builtin_shufflevector(u[i], u[i + 4], 0, 1, 2, 3, 8, 9, 10, 11);
    r[i + 4] = __builtin_shufflevector(u[i], u[i + 4], 4, 5, 6, 7, 12, 13, 14, 15);
  }
}

// MR x NR tile: C[0:mr, 0:nr] = (first ? 0 : C) + alpha * Ap (MR x kc) Bp (kc x NR). `first`:
// the first K block of a beta == 0 product, which writes C without reading it. Each element of
// C gets the same operations in the same order whatever the tile (fused multiply-adds over k,
// then one multiply-add into C), so both tiles give the same bits.
//
// bias (the first K block only): C = alpha acc + bias[j], the column bias of the tile's columns;
// row_bias likewise, C = alpha acc + row_bias[i], of the tile's rows (a convolution's bias per
// output channel). Either is the bits of adding alpha acc to a C that holds the bias.
// kRowsA: ap is not a packed sliver but row 0 of MR rows of a row-major op(A), lda floats apart
// (element (i, k) at ap[i lda + k]); each row is prefetched 64 floats ahead every 16 k. The same
// operations on the same values: the same bits as with the sliver packed.
template <class T, bool kRowsA = false>
CXR_INLINE void micro_kernel(std::int64_t kc, const float* __restrict__ ap, const float* __restrict__ bp,
                             float* __restrict__ c, std::int64_t ldc, std::int64_t mr, std::int64_t nr, float alpha,
                             bool first, const float* bias = nullptr, const float* row_bias = nullptr,
                             std::int64_t lda = 0) {
  using V = typename T::Vec;
  constexpr std::int64_t MR = T::MR, NV = T::NV, L = T::L, NR = T::NR;
  // Ask for C's lines (for writing) before the k loop, so that fetching them overlaps the FMAs:
  // C is often fresh memory (a convolution's output) and, with a short K (1x1 convolutions:
  // K = 64, 256 FMAs per element of the tile), waiting for its lines at the stores halved the
  // rate (cold C, M 256 N 3136 K 64, one thread: 45 GFLOP/s against 108 with C in cache).
  for (std::int64_t i = 0; i < mr; ++i) {
    __builtin_prefetch(c + i * ldc, 1);
    __builtin_prefetch(c + i * ldc + nr - 1, 1);
  }
  V acc[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) acc[i][v] = V{};
  for (std::int64_t k = 0; k < kc; ++k) {
    V b[NV];
    for (int v = 0; v < NV; ++v) b[v] = loadv<V>(bp + v * L);
    if constexpr (kRowsA) {
      if (k % 16 == 0)
        for (int i = 0; i < MR; ++i) __builtin_prefetch(ap + i * lda + 64);
#pragma GCC unroll 14
      for (int i = 0; i < MR; ++i)
        for (int v = 0; v < NV; ++v) acc[i][v] += ap[i * lda] * b[v];
      ap += 1;
    } else {
#pragma GCC unroll 14
      for (int i = 0; i < MR; ++i)
        for (int v = 0; v < NV; ++v) acc[i][v] += ap[i] * b[v];
      ap += MR;
    }
    bp += NR;
  }
  if (mr == MR && nr == NR) {
#pragma GCC unroll 14
    for (int i = 0; i < MR; ++i) {
      float* row = c + i * ldc;
      for (int v = 0; v < NV; ++v) {
        if (first && bias) storev(row + v * L, alpha * acc[i][v] + loadv<V>(bias + v * L));
        else if (first && row_bias) storev(row + v * L, alpha * acc[i][v] + row_bias[i]);
        else if (first) storev(row + v * L, alpha * acc[i][v]);
        else storev(row + v * L, loadv<V>(row + v * L) + alpha * acc[i][v]);
      }
    }
  } else {
    float tile[MR][NR];
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < NV; ++v) storev(tile[i] + v * L, acc[i][v]);
    for (std::int64_t i = 0; i < mr; ++i)
      for (std::int64_t j = 0; j < nr; ++j) {
        const float before = !first ? c[i * ldc + j] : bias ? bias[j] : row_bias ? row_bias[i] : 0.f;
        c[i * ldc + j] = before + alpha * tile[i][j];
      }
  }
}

// The operands of one sgemm call.
struct Operands {
  bool trans_a, trans_b;
  std::int64_t M, N, K;
  float alpha;
  bool overwrite;  // beta == 0: the first K block writes C without reading it
  const float* A;
  std::int64_t lda;
  const float* B;
  std::int64_t ldb;
  float* C;
  std::int64_t ldc;
  const ConvColumns* cols = nullptr;  // when set, op(B) is these convolution columns (B, ldb unused)
  std::uint64_t call = 0;             // with cols: this call's number (pack_b_columns_transposed's tables)
  const float* a_packed = nullptr;    // when set, op(A) already packed (PackedA; A, lda unused)
  const float* bias = nullptr;        // when set (with overwrite): C = alpha op(A) op(B) + bias[j] on each row
  const float* row_bias = nullptr;    // the same per row: C = alpha op(A) op(B) + row_bias[i] (not with bias)
};

// How far ahead (floats) the packing of a row-major A asks for each row: MR rows of at most KC
// floats each are short streams that the hardware prefetchers barely catch, and with a large A
// (a linear layer's input, 50176 x 384 in ConvNeXt-Tiny's first stage) waiting for its lines was
// most of the GEMM's time: M 50176 N 96 K 384, 2 threads, 101-114 -> 131-144 GFLOP/s.
constexpr std::int64_t kPackAhead = 64;

// op(A)[ic:ic+mc, pc:pc+kc] -> mc/MR slivers, Ap[s][k][i] = op(A)(ic + s MR + i, pc + k),
// zero past row `m_end`.
template <class T>
CXR_INLINE void pack_a(const Operands& o, std::int64_t ic, std::int64_t mc, std::int64_t m_end, std::int64_t pc,
                       std::int64_t kc, float* ap) {
  constexpr std::int64_t MR = T::MR;
  for (std::int64_t s = 0; s * MR < mc; ++s, ap += kc * MR) {
    const std::int64_t row0 = ic + s * MR, mr = std::min(MR, m_end - row0);
    if (mr < MR) std::fill(ap, ap + kc * MR, 0.f);
    if (o.trans_a) {  // op(A)(i, k) = A[k, i]: MR neighbours in each row of A
      // A whole sliver copies MR floats a row in a loop of constant length (it vectorises); a
      // memcpy call per row of 14 floats was 30 % of backward-data's time at 7 x 7 x 512.
      if (mr == MR)
        for (std::int64_t k = 0; k < kc; ++k) {
          const float* src = o.A + (pc + k) * o.lda + row0;
          for (std::int64_t i = 0; i < MR; ++i) ap[k * MR + i] = src[i];
        }
      else
        for (std::int64_t k = 0; k < kc; ++k)
          std::memcpy(ap + k * MR, o.A + (pc + k) * o.lda + row0, sizeof(float) * mr);
    } else {  // op(A)(i, k) = A[i, k]: a transpose, 8 rows x 8 k at a time through registers
      std::int64_t k = 0;
      if (mr == MR)
        for (; k + 8 <= kc; k += 8)
          for (std::int64_t g = 0; g < MR; g += 8) {  // rows g .. g + rows - 1 of the sliver
            const std::int64_t rows = std::min<std::int64_t>(8, MR - g);
            v8 r[8] = {};
            for (int i = 0; i < rows; ++i) {
              const float* row = o.A + (row0 + g + i) * o.lda + pc + k;
              __builtin_prefetch(row + kPackAhead);
              r[i] = loadv<v8>(row);
            }
            transpose8x8(r);
            for (int j = 0; j < 8; ++j) std::memcpy(ap + (k + j) * MR + g, &r[j], sizeof(float) * rows);
          }
      for (std::int64_t i = 0; i < mr; ++i)
        for (std::int64_t kk = k; kk < kc; ++kk) ap[kk * MR + i] = o.A[(row0 + i) * o.lda + pc + kk];
    }
  }
}

// op(B)[pc:pc+kc, jc:jc+nc] for B = convolution columns (kernels/gemm.h: ConvColumns), the same
// slivers as pack_b would make from the explicit im2col matrix. Per sliver, a table for each tap
// (r, s): each lane's offset into channel 0 of its image and whether it lies inside the image.
// Row k = (c R + r) S + s of the sliver then reads x at c H W + offset. Lanes from one image
// are a single span of x, (r dh - ph) W + s dw - pw away from the output pixels: NR floats
// loaded as vectors and ANDed with the lane mask (the lanes outside the image, or past
// `n_end`, read a neighbouring pixel and become +0), unless the span leaves the image's
// memory (its first and last rows), where lanes are read one at a time, the valid ones only.
// A sliver that straddles two images (planes narrower than NR, in panels) takes that path
// for every row.
template <class T>
CXR_INLINE void pack_b_columns(const Operands& o, std::int64_t jc, std::int64_t nc, std::int64_t n_end,
                               std::int64_t pc, std::int64_t kc, float* bp) {
  using V = typename T::Vec;
  using VI = decltype(V{} < V{});  // the int vector of V's width
  constexpr std::int64_t NR = T::NR, NV = T::NV, L = T::L;
  const ConvColumns& v = *o.cols;
  const int taps = v.R * v.S;
  const std::int64_t W = v.W, HW = static_cast<std::int64_t>(v.H) * W, PQ = static_cast<std::int64_t>(v.P) * W;
  const std::int64_t image_floats = v.C * HW;  // one image of this operand: [0, C H W) from its channel 0
  alignas(64) std::int32_t mask[kMaxConvTaps][NR];
  std::int64_t offset[kMaxConvTaps][NR];
  std::int64_t lane_image[NR], lane_p[NR], lane_q[NR];
  for (std::int64_t t = 0; t * NR < nc; ++t, bp += kc * NR) {
    const std::int64_t col0 = jc + t * NR, nr = std::min(NR, n_end - col0);
    for (std::int64_t i = 0; i < NR; ++i) {
      const std::int64_t j = col0 + std::min(i, nr - 1), n = j / PQ;  // lanes past nr repeat the last (masked)
      lane_image[i] = n;
      lane_p[i] = (j - n * PQ) / W;
      lane_q[i] = (j - n * PQ) % W;
    }
    for (int tap = 0; tap < taps; ++tap) {
      const std::int64_t dr = (tap / v.S) * v.dh - v.ph, ds = (tap % v.S) * v.dw - v.pw;
      for (std::int64_t i = 0; i < NR; ++i) {
        const std::int64_t h = lane_p[i] + dr, w = lane_q[i] + ds;
        const bool inside = i < nr && h >= 0 && h < v.H && w >= 0 && w < W;
        mask[tap][i] = inside ? -1 : 0;
        offset[tap][i] = lane_image[i] * v.image + h * W + w;
      }
    }
    const bool one_image = lane_image[0] == lane_image[NR - 1];
    const std::int64_t first = lane_image[0] * v.image;  // the image of a one-image sliver
    std::int64_t c = pc / taps;
    int tap = static_cast<int>(pc % taps);
    for (std::int64_t k = 0; k < kc; ++k) {
      float* dst = bp + k * NR;
      const std::int64_t at = c * HW + offset[tap][0];  // lane 0's float (its lane may be masked)
      if (one_image && at - first >= 0 && at - first + NR <= image_floats) {
        const float* src = v.x + at;
        for (std::int64_t h = 0; h < NV; ++h)
          storev(dst + h * L, loadv<VI>(src + h * L) & loadv<VI>(mask[tap] + h * L));
      } else {
        for (std::int64_t i = 0; i < NR; ++i) dst[i] = mask[tap][i] ? v.x[c * HW + offset[tap][i]] : 0.f;
      }
      if (++tap == taps) tap = 0, ++c;
    }
  }
}

// The same for op(B) = columns^T (backward-weight: dw = dy columns^T), B(k, u) = columns(u, k):
// lane u = c taps + tap of a sliver is a span of x along the pixels k, so 8 pixels of 8 lanes
// are 8 loads of 8 floats, each ANDed with its tap's pixel mask, and one 8 x 8 transpose (as
// pack_b does for a stored B^T). Groups of 8 pixels that straddle two images, leave the
// image's memory or pass kc are read one float at a time.
template <class T>
CXR_INLINE void pack_b_columns_transposed(const Operands& o, std::int64_t jc, std::int64_t nc, std::int64_t n_end,
                                          std::int64_t pc, std::int64_t kc, float* bp) {
  constexpr std::int64_t NR = T::NR;
  const ConvColumns& v = *o.cols;
  const int taps = v.R * v.S;
  const std::int64_t W = v.W, HW = static_cast<std::int64_t>(v.H) * W, PQ = static_cast<std::int64_t>(v.P) * W;
  const std::int64_t image_floats = v.C * HW;
  // Per tap, pixel k of the block: inside the image (mask) and its offset from channel 0 of image 0.
  // The same for every sliver of the block: kept per thread for the call and K block it was made for.
  thread_local std::vector<std::int32_t> mask_buf;
  thread_local std::vector<std::int64_t> offset_buf;
  thread_local std::uint64_t made_for_call = 0;
  thread_local std::int64_t made_for_pc = -1;
  if (made_for_call != o.call || made_for_pc != pc) {
    made_for_call = o.call;
    made_for_pc = pc;
    mask_buf.resize(static_cast<std::size_t>(taps * kc));
    offset_buf.resize(static_cast<std::size_t>(taps * kc));
    for (std::int64_t k = 0; k < kc; ++k) {
      const std::int64_t j = pc + k, n = j / PQ, p = (j - n * PQ) / W, q = (j - n * PQ) % W;
      for (int tap = 0; tap < taps; ++tap) {
        const std::int64_t h = p + (tap / v.S) * v.dh - v.ph, w = q + (tap % v.S) * v.dw - v.pw;
        mask_buf[tap * kc + k] = h >= 0 && h < v.H && w >= 0 && w < W ? -1 : 0;
        offset_buf[tap * kc + k] = n * v.image + h * W + w;
      }
    }
  }
  const std::int32_t* mask = mask_buf.data();
  const std::int64_t* offset = offset_buf.data();
  typedef std::int32_t vi8 __attribute__((vector_size(32)));
  for (std::int64_t t = 0; t * NR < nc; ++t, bp += kc * NR) {
    const std::int64_t col0 = jc + t * NR, nr = std::min(NR, n_end - col0);
    std::int64_t lane_channel[NR];
    int lane_tap[NR];
    for (std::int64_t i = 0; i < NR; ++i) {
      const std::int64_t u = col0 + std::min(i, nr - 1);
      lane_channel[i] = u / taps;
      lane_tap[i] = static_cast<int>(u % taps);
    }
    const auto one = [&](std::int64_t k, std::int64_t i) {
      const std::int64_t at = lane_tap[i] * kc + k;
      return i < nr && mask[at] ? v.x[lane_channel[i] * HW + offset[at]] : 0.f;
    };
    std::int64_t k = 0;
    for (; k + 8 <= kc; k += 8) {
      const std::int64_t j = pc + k, n = j / PQ;
      const bool one_image = (j + 7) / PQ == n;
      for (std::int64_t g = 0; g < NR; g += 8) {
        v8 r[8];
        bool vector = one_image && g + 8 <= nr;
        for (int i = 0; i < 8 && vector; ++i) {
          const std::int64_t at = lane_channel[g + i] * HW + offset[lane_tap[g + i] * kc + k] - n * v.image;
          vector = at >= 0 && at + 8 <= image_floats;
        }
        if (vector) {
          for (int i = 0; i < 8; ++i) {
            const std::int64_t at = lane_tap[g + i] * kc + k;
            const vi8 bits = loadv<vi8>(v.x + lane_channel[g + i] * HW + offset[at]) & loadv<vi8>(mask + at);
            std::memcpy(&r[i], &bits, sizeof bits);
          }
          transpose8x8(r);
          for (int i = 0; i < 8; ++i) storev(bp + (k + i) * NR + g, r[i]);
        } else {
          for (int kk = 0; kk < 8; ++kk)
            for (int i = 0; i < 8; ++i) bp[(k + kk) * NR + g + i] = one(k + kk, g + i);
        }
      }
    }
    for (; k < kc; ++k)
      for (std::int64_t i = 0; i < NR; ++i) bp[k * NR + i] = one(k, i);
  }
}

// op(B)[pc:pc+kc, jc:jc+nc] -> nc/NR slivers, Bp[t][k][j] = op(B)(pc + k, jc + t NR + j),
// zero past column `n_end`.
template <class T>
CXR_INLINE void pack_b(const Operands& o, std::int64_t jc, std::int64_t nc, std::int64_t n_end, std::int64_t pc,
                       std::int64_t kc, float* bp) {
  constexpr std::int64_t NR = T::NR;
  if (o.cols && o.trans_b) return pack_b_columns_transposed<T>(o, jc, nc, n_end, pc, kc, bp);
  if (o.cols) return pack_b_columns<T>(o, jc, nc, n_end, pc, kc, bp);
  for (std::int64_t t = 0; t * NR < nc; ++t, bp += kc * NR) {
    const std::int64_t col0 = jc + t * NR, nr = std::min(NR, n_end - col0);
    if (!o.trans_b) {  // a row of B is a row of the sliver
      for (std::int64_t k = 0; k < kc; ++k) {
        const float* src = o.B + (pc + k) * o.ldb + col0;
        float* dst = bp + k * NR;
        if (nr == NR) {
          for (std::int64_t h = 0; h < NR; h += 8) storev(dst + h, loadv<v8>(src + h));
        } else {
          std::memcpy(dst, src, sizeof(float) * nr);
          std::fill(dst + nr, dst + NR, 0.f);
        }
      }
      continue;
    }
    // op(B)(k, j) = B[j, k]: NR rows of B, each contributing one column of the sliver.
    std::int64_t k = 0;
    if (nr == NR)
      for (; k + 8 <= kc; k += 8)
        for (std::int64_t h = 0; h < NR; h += 8) {  // columns h .. h+7 of the sliver
          v8 r[8];
          for (int j = 0; j < 8; ++j) r[j] = loadv<v8>(o.B + (col0 + h + j) * o.ldb + pc + k);
          transpose8x8(r);
          for (int i = 0; i < 8; ++i) storev(bp + (k + i) * NR + h, r[i]);
        }
    for (; k < kc; ++k) {
      for (std::int64_t j = 0; j < nr; ++j) bp[k * NR + j] = o.B[(col0 + j) * o.ldb + pc + k];
      for (std::int64_t j = nr; j < NR; ++j) bp[k * NR + j] = 0.f;
    }
  }
}

// C[0:mc, 0:nc] (+)= alpha * (packed A block) (packed B panel); nc may end in a partial sliver.
template <class T>
CXR_INLINE void macro_kernel(std::int64_t mc, std::int64_t nc, std::int64_t kc, const float* ap, const float* bp,
                             float* c, std::int64_t ldc, float alpha, bool first, const float* bias,
                             const float* row_bias) {
  constexpr std::int64_t MR = T::MR, NR = T::NR;
  for (std::int64_t jr = 0; jr < nc; jr += NR) {
    const std::int64_t nr = std::min(NR, nc - jr);
    const float* b = bp + (jr / NR) * kc * NR;
    for (std::int64_t ir = 0; ir < mc; ir += MR) {
      const std::int64_t mr = std::min(MR, mc - ir);
      micro_kernel<T>(kc, ap + (ir / MR) * kc * MR, b, c + ir * ldc + jr, ldc, mr, nr, alpha, first,
                      bias ? bias + jr : nullptr, row_bias ? row_bias + ir : nullptr);
    }
  }
}

// macro_kernel with op(A) read in place (row-major A, no transpose): rows [ic, ic + mc) of A from
// column pc. A partial sliver at the matrix's last rows is packed (rows past m_end read as 0).
template <class T>
CXR_INLINE void macro_kernel_rows(const Operands& o, std::int64_t ic, std::int64_t mc, std::int64_t m_end,
                                  std::int64_t nc, std::int64_t pc, std::int64_t kc, const float* bp, float* c,
                                  bool first, const float* bias, const float* row_bias, float* a_edge) {
  constexpr std::int64_t MR = T::MR, NR = T::NR;
  const std::int64_t full = std::min(mc, m_end - ic) / MR * MR;  // rows in whole slivers
  if (full < mc) pack_a<T>(o, ic + full, mc - full, m_end, pc, kc, a_edge);
  for (std::int64_t jr = 0; jr < nc; jr += NR) {
    const std::int64_t nr = std::min(NR, nc - jr);
    const float* b = bp + (jr / NR) * kc * NR;
    for (std::int64_t ir = 0; ir < mc; ir += MR) {
      float* cij = c + ir * o.ldc + jr;
      const float* bias_j = bias ? bias + jr : nullptr;
      const float* row_bias_i = row_bias ? row_bias + ir : nullptr;
      if (ir < full)
        micro_kernel<T, true>(kc, o.A + (ic + ir) * o.lda + pc, b, cij, o.ldc, MR, nr, o.alpha, first, bias_j,
                              row_bias_i, o.lda);
      else
        micro_kernel<T>(kc, a_edge + ((ir - full) / MR) * kc * MR, b, cij, o.ldc, std::min(MR, mc - ir), nr, o.alpha,
                        first, bias_j, row_bias_i);
    }
  }
}

// One thread's rectangle C[m0:m1, n0:n1] += alpha op(A) op(B), the serial Goto loops. When its
// rows fit one A block (m1 - m0 <= MC: the per-image convolutions of 64-112 output channels),
// each B sliver is packed right before the A block sweeps it, while it is still in L1, instead
// of packing a whole NC-column panel (3 MiB, past L2) first; every element of C still gets the
// same operations in the same order.
template <class T>
CXR_INLINE void rectangle(const Operands& o, std::int64_t m0, std::int64_t m1, std::int64_t n0, std::int64_t n1,
                          float* a_buf, float* b_buf) {
  // The A block of rows [ic, ic + mc) and K block pc: packed here, or read from o.a_packed
  // (see PackedA: K blocks of padded-M slivers).
  const std::int64_t m_padded = (o.M + T::MR - 1) / T::MR * T::MR;
  const auto a_block = [&](std::int64_t ic, std::int64_t mc, std::int64_t pc, std::int64_t kc) -> const float* {
    if (o.a_packed) return o.a_packed + pc * m_padded + ic / T::MR * kc * T::MR;
    pack_a<T>(o, ic, mc, m1, pc, kc, a_buf);
    return a_buf;
  };
  // the row bias of rows [ic, ...)
  const auto row_bias = [&](std::int64_t ic) { return o.row_bias ? o.row_bias + ic : nullptr; };
  if (m1 - m0 <= T::MC) {
    for (std::int64_t pc = 0; pc < o.K; pc += T::KC) {
      const std::int64_t kc = std::min(T::KC, o.K - pc);
      const float* ap = a_block(m0, m1 - m0, pc, kc);
      for (std::int64_t jr = n0; jr < n1; jr += T::NR) {
        const std::int64_t nr = std::min(T::NR, n1 - jr);
        pack_b<T>(o, jr, nr, n1, pc, kc, b_buf);
        macro_kernel<T>(m1 - m0, nr, kc, ap, b_buf, o.C + m0 * o.ldc + jr, o.ldc, o.alpha, o.overwrite && pc == 0,
                        o.bias ? o.bias + jr : nullptr, row_bias(m0));
      }
    }
    return;
  }
  // A row-major op(A) (not transposed, not packed) is read in place when the thread's columns
  // are few (and all of K fits one B panel, below): packing it is a transpose through registers
  // per float, as much work as the multiply when each packed sliver serves only a few B
  // slivers (ConvNeXt-Tiny's first-stage linear layers: 96 columns).
  const bool rows_a = !o.trans_a && !o.a_packed && n1 - n0 <= kRowsAColumns;
  for (std::int64_t jc = n0; jc < n1; jc += T::NC) {
    const std::int64_t nc = std::min(T::NC, n1 - jc), nc_padded = (nc + T::NR - 1) / T::NR * T::NR;
    const float* bias = o.bias ? o.bias + jc : nullptr;
    if (o.K * nc_padded <= kWholeKFloats) {
      // Every K block of the B panel packed first (it fits in L2), then each A block runs all
      // of them while its C tile is still in cache: C goes to memory once instead of once per
      // K block, and each row of A is read in one sweep. The same additions in the same order
      // (with one K block, the loops below it).
      for (std::int64_t pc = 0; pc < o.K; pc += T::KC)
        pack_b<T>(o, jc, nc, n1, pc, std::min(T::KC, o.K - pc), b_buf + pc * nc_padded);
      for (std::int64_t ic = m0; ic < m1; ic += T::MC) {
        const std::int64_t mc = std::min(T::MC, m1 - ic);
        for (std::int64_t pc = 0; pc < o.K; pc += T::KC) {
          const std::int64_t kc = std::min(T::KC, o.K - pc);
          float* c = o.C + ic * o.ldc + jc;
          if (rows_a)
            macro_kernel_rows<T>(o, ic, mc, m1, nc, pc, kc, b_buf + pc * nc_padded, c, o.overwrite && pc == 0, bias,
                                 row_bias(ic), a_buf);
          else
            macro_kernel<T>(mc, nc, kc, a_block(ic, mc, pc, kc), b_buf + pc * nc_padded, c, o.ldc, o.alpha,
                            o.overwrite && pc == 0, bias, row_bias(ic));
        }
      }
      continue;
    }
    for (std::int64_t pc = 0; pc < o.K; pc += T::KC) {
      const std::int64_t kc = std::min(T::KC, o.K - pc);
      pack_b<T>(o, jc, nc, n1, pc, kc, b_buf);
      for (std::int64_t ic = m0; ic < m1; ic += T::MC) {
        const std::int64_t mc = std::min(T::MC, m1 - ic);
        macro_kernel<T>(mc, nc, kc, a_block(ic, mc, pc, kc), b_buf, o.C + ic * o.ldc + jc, o.ldc, o.alpha,
                        o.overwrite && pc == 0, bias, row_bias(ic));
      }
    }
  }
}

// The per-thread body, compiled for each instruction set (chosen once per process, below).
__attribute__((target_clones("arch=x86-64-v3", "default"))) void rectangle_avx2(const Operands& o, std::int64_t m0,
                                                                                 std::int64_t m1, std::int64_t n0,
                                                                                 std::int64_t n1, float* a_buf,
                                                                                 float* b_buf) {
  rectangle<Avx2Tile>(o, m0, m1, n0, n1, a_buf, b_buf);
}

__attribute__((target("arch=x86-64-v4"))) void rectangle_avx512(const Operands& o, std::int64_t m0, std::int64_t m1,
                                                               std::int64_t n0, std::int64_t n1, float* a_buf,
                                                               float* b_buf) {
  rectangle<Avx512Tile>(o, m0, m1, n0, n1, a_buf, b_buf);
}

// PackedA's layout: K blocks of KC rows in order, each ceil(M / MR) slivers of kc x MR (pack_a's),
// so block pc starts pc * M_padded floats in and the sliver of row ic at (ic / MR) kc MR within.
template <class T>
CXR_INLINE void pack_a_all(const Operands& o, float* room) {
  const std::int64_t m_padded = (o.M + T::MR - 1) / T::MR * T::MR;
  const std::int64_t blocks = (o.K + T::KC - 1) / T::KC;
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && m_padded * o.K > (1 << 16))
  for (std::int64_t b = 0; b < blocks; ++b) {
    const std::int64_t pc = b * T::KC, kc = std::min(T::KC, o.K - pc);
    pack_a<T>(o, 0, o.M, o.M, pc, kc, room + pc * m_padded);
  }
}

__attribute__((target_clones("arch=x86-64-v3", "default"))) void pack_a_all_avx2(const Operands& o, float* room) {
  pack_a_all<Avx2Tile>(o, room);
}

__attribute__((target("arch=x86-64-v4"))) void pack_a_all_avx512(const Operands& o, float* room) {
  pack_a_all<Avx512Tile>(o, room);
}

bool cpu_has_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512cd");
}

// The kernel of this process: CXR_CPU_GEMM=avx2 keeps the AVX2 tile on an AVX-512 machine (to
// compare); set_cpu_gemm_kernel overrides both.
std::atomic<CpuGemmKernel> g_kernel{CpuGemmKernel::Auto};

CpuGemmKernel resolved_kernel() {
  static const CpuGemmKernel automatic = [] {
    const char* env = std::getenv("CXR_CPU_GEMM");
    if (env && std::string(env) == "avx2") return CpuGemmKernel::Avx2;
    return cpu_has_avx512() ? CpuGemmKernel::Avx512 : CpuGemmKernel::Avx2;
  }();
  const CpuGemmKernel k = g_kernel.load(std::memory_order_relaxed);
  return k == CpuGemmKernel::Auto ? automatic : k;
}

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// tm x tn = threads rectangles with the fewest packed floats per thread, K (M/tm + N/tn); each
// part at least one register tile (mr x nr). Falls back to fewer threads when no split fits.
void choose_split(std::int64_t M, std::int64_t N, std::int64_t mr, std::int64_t nr, int threads, int& tm, int& tn) {
  for (; threads > 1; --threads) {
    double best = std::numeric_limits<double>::max();
    tm = tn = 0;
    for (int d = 1; d <= threads; ++d) {
      if (threads % d != 0 || ceil_div(M, mr) < d || ceil_div(N, nr) < threads / d) continue;
      const double cost = static_cast<double>(ceil_div(M, d)) + static_cast<double>(ceil_div(N, threads / d));
      if (cost < best) best = cost, tm = d, tn = threads / d;
    }
    if (tm > 0) return;
  }
  tm = tn = 1;
}

// sgemm and sgemm_conv_columns: C split among the threads, each running its rectangle.
void run(const Operands& o, float beta, CpuGemmKernel packed_kernel = CpuGemmKernel::Auto) {
  const std::int64_t M = o.M, N = o.N, K = o.K, ldc = o.ldc;
  float* C = o.C;
  if (M <= 0 || N <= 0) return;
  const bool multiply = K > 0 && o.alpha != 0.f;

  const double flops = 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  const bool avx512 = (o.a_packed ? packed_kernel : resolved_kernel()) == CpuGemmKernel::Avx512;
  const std::int64_t MR = avx512 ? Avx512Tile::MR : Avx2Tile::MR, NR = avx512 ? Avx512Tile::NR : Avx2Tile::NR;
  int tm = 1, tn = 1;
  if (!omp_in_parallel() && flops >= 2e6) choose_split(M, N, MR, NR, omp_get_max_threads(), tm, tn);
  // Rows of a part: a multiple of MR; columns: a multiple of NR (the last part takes the rest).
  const std::int64_t rows = ceil_div(ceil_div(M, MR), tm) * MR, cols = ceil_div(ceil_div(N, NR), tn) * NR;

#pragma omp parallel num_threads(tm * tn) if (tm * tn > 1)
  {
    const int t = omp_get_thread_num();
    const std::int64_t m0 = std::min(M, (t / tn) * rows), m1 = std::min(M, m0 + rows);
    const std::int64_t n0 = std::min(N, (t % tn) * cols), n1 = std::min(N, n0 + cols);
    // beta == 0 overwrites C (NaN in C does not propagate): the first K block does, unless
    // there is nothing to multiply.
    if (beta != 1.f && !(beta == 0.f && multiply))
      for (std::int64_t i = m0; i < m1; ++i) {
        float* row = C + i * ldc;
        if (beta == 0.f && o.bias) std::copy(o.bias + n0, o.bias + n1, row + n0);
        else if (beta == 0.f && o.row_bias) std::fill(row + n0, row + n1, o.row_bias[i]);
        else if (beta == 0.f) std::fill(row + n0, row + n1, 0.f);
        else for (std::int64_t j = n0; j < n1; ++j) row[j] *= beta;
      }
    if (multiply && m0 < m1 && n0 < n1) {
      thread_local std::vector<float> a_buf, b_buf;  // per thread, reused between calls
      a_buf.resize(static_cast<std::size_t>(kMaxMC * kMaxKC));
      b_buf.resize(static_cast<std::size_t>(kMaxNC * kMaxKC));
      if (avx512) rectangle_avx512(o, m0, m1, n0, n1, a_buf.data(), b_buf.data());
      else rectangle_avx2(o, m0, m1, n0, n1, a_buf.data(), b_buf.data());
    }
  }
}

Operands columns_operands(bool trans_b, std::int64_t M, float alpha, const float* A, std::int64_t lda,
                          const ConvColumns& cols, float beta, float* C, std::int64_t ldc) {
  CXR_CHECK(cols.R * cols.S <= kMaxConvTaps, "sgemm_conv_columns: a ", cols.R, " x ", cols.S, " kernel has ",
            cols.R * cols.S, " taps, at most ", kMaxConvTaps, " are supported");
  const std::int64_t pixels = static_cast<std::int64_t>(cols.images) * cols.P * cols.W;
  const std::int64_t rows = static_cast<std::int64_t>(cols.C) * cols.R * cols.S;
  Operands o{false, trans_b, M, trans_b ? rows : pixels, trans_b ? pixels : rows, alpha, beta == 0.f, A, lda,
             nullptr, 0, C, ldc};
  static std::atomic<std::uint64_t> calls{0};
  o.cols = &cols;
  o.call = ++calls;
  return o;
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A,
           std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc) {
  run(Operands{trans_a, trans_b, M, N, K, alpha, beta == 0.f, A, lda, B, ldb, C, ldc}, beta);
}

void sgemm_bias(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                const float* A, std::int64_t lda, const float* B, std::int64_t ldb, const float* bias, float* C,
                std::int64_t ldc) {
  Operands o{trans_a, trans_b, M, N, K, alpha, true, A, lda, B, ldb, C, ldc};
  o.bias = bias;
  run(o, 0.f);
}

std::int64_t PackedA::floats_for(std::int64_t M, std::int64_t K) {
  const auto padded = [M](std::int64_t mr) { return (M + mr - 1) / mr * mr; };
  return std::max(padded(Avx2Tile::MR), padded(Avx512Tile::MR)) * K;  // M padded to the tile's MR
}

PackedA PackedA::view(std::int64_t M, std::int64_t K, const float* packed) {
  PackedA a(M, K, nullptr);
  a.data_ = packed;
  return a;
}

PackedA::PackedA(std::int64_t M, std::int64_t K, float* room) : M_(M), K_(K), kernel_(resolved_kernel()), data_(room) {
  const bool avx512 = kernel_ == CpuGemmKernel::Avx512;
  mr_ = avx512 ? Avx512Tile::MR : Avx2Tile::MR;
  kc_ = avx512 ? Avx512Tile::KC : Avx2Tile::KC;
  m_padded_ = (M + mr_ - 1) / mr_ * mr_;
  if (room)
    for (std::int64_t k = 0; k < K; ++k)  // the padding rows of the last sliver
      for (std::int64_t i = M; i < m_padded_; ++i) room[offset(i, k)] = 0.f;
}

PackedA::PackedA(bool trans_a, std::int64_t M, std::int64_t K, const float* A, std::int64_t lda, float* room)
    : PackedA(M, K, room) {
  const Operands o{trans_a, false, M, 0, K, 1.f, false, A, lda, nullptr, 0, nullptr, 0};
  if (M <= 0 || K <= 0) return;
  if (kernel_ == CpuGemmKernel::Avx512) pack_a_all_avx512(o, room);
  else pack_a_all_avx2(o, room);
}

void sgemm(const PackedA& a, std::int64_t N, float alpha, const float* B, std::int64_t ldb, float beta, float* C,
           std::int64_t ldc, const float* row_bias) {
  CXR_CHECK(!row_bias || beta == 0.f, "sgemm: a row bias needs beta = 0, got ", beta);
  Operands o{false, false, a.M(), N, a.K(), alpha, beta == 0.f, nullptr, 0, B, ldb, C, ldc};
  o.a_packed = a.data();
  o.row_bias = row_bias;
  run(o, beta, a.kernel());
}

void sgemm_conv_columns(const PackedA& a, float alpha, const ConvColumns& cols, float beta, float* C,
                        std::int64_t ldc, const float* row_bias) {
  CXR_CHECK(!row_bias || beta == 0.f, "sgemm_conv_columns: a row bias needs beta = 0, got ", beta);
  Operands o = columns_operands(false, a.M(), alpha, nullptr, 0, cols, beta, C, ldc);
  CXR_CHECK(o.K == a.K(), "sgemm_conv_columns: the packed A has K = ", a.K(), ", the columns ", o.K, " rows");
  o.a_packed = a.data();
  o.row_bias = row_bias;
  run(o, beta, a.kernel());
}

void sgemm_conv_columns(bool trans_b, std::int64_t M, float alpha, const float* A, std::int64_t lda,
                        const ConvColumns& cols, float beta, float* C, std::int64_t ldc) {
  run(columns_operands(trans_b, M, alpha, A, lda, cols, beta, C, ldc), beta);
}

void set_cpu_gemm_kernel(CpuGemmKernel k) { g_kernel.store(k, std::memory_order_relaxed); }

CpuGemmKernel cpu_gemm_kernel() { return resolved_kernel(); }

bool cpu_gemm_kernel_available(CpuGemmKernel k) { return k != CpuGemmKernel::Avx512 || cpu_has_avx512(); }

const char* cpu_gemm_kernel_name(CpuGemmKernel k) {
  switch (k) {
    case CpuGemmKernel::Auto: return "auto";
    case CpuGemmKernel::Avx2: return "avx2 (6x16)";
    case CpuGemmKernel::Avx512: return "avx512 (14x32)";
  }
  return "?";
}

}  // namespace cxr::cpu
