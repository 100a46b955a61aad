// conv2d on CUDA (math and shapes in kernels/conv2d.h): implicit GEMM.
//
// Choice: implicit GEMM rather than im2col + SGEMM. The im2col matrix of a batch is R S times
// the input (ResNet-50 3x3 layers at batch 64: ~0.5 GB), so it is never written: the tile
// loaders of the shared SGEMM core (kernels/cuda/gemm_tile.cuh, 64 x 64 x 16 tiles, 256
// threads, 4 x 4 per thread) compute the address of each im2col element while filling shared
// memory. Every output element is written exactly once (no atomics, deterministic).
// Per group g (grid.z), C' = C/G, K' = K/G:
//   forward          M = K'  N = N P Q  Kdim = C' R S   A = w[g] (strided, float4)  B = im2col(x)
//                    epilogue: y[n, g K' + m, p, q] = acc + b
//   backward-data    M = C'  N = N H W  Kdim = K' R S   A = w[g]^T gathered         B = "col2im" gather of dy:
//                    dx[n,c,h,v] takes dy[n,k,p,q] where p = (h + ph - r dh)/sh when that divides
//                    exactly (with stride 2, 3/4 of B is structural zeros: wasted FMAs, no atomics)
//   backward-weight  M = K'  N = C' R S Kdim = N P Q   A = dy[:, g] gathered        B = im2col(x)^T
//                    the reduction is long and M N small, so it is split in `splits` slices
//                    (grid.z = G x splits) written to a workspace and summed by a second kernel
//   backward-bias    one block per k: a block reduction over N P Q
// Fast paths: 1x1 stride 1 pad 0 with groups 1 is y_n = W x_n: the strided-batched SGEMM
// (batch = images, bias fused in its epilogue) for forward and W^T dy_n for backward-data.
// Depthwise (G == C == K) has direct kernels in conv2d_depthwise.cu.
// FLOPs 2 N K P Q C' R S per pass; gathers cost integer divisions per element (amortised over
// 64 FMAs each). Each GEMM kernel is a template over its math (Math below): FMA in fp32, TF32
// on the tensor cores (the same loaders and epilogue around gemm_block_tf32, chosen when
// cxr::allow_tf32() is set), or BF16 (conv2d_*_bf16: bf16 operands read from memory into bf16
// tiles, gemm_block_bf16, f32 accumulation; mixed precision, kernels/execution.h). The BF16
// forward writes y as f32 or as bf16 (rounded once in the epilogue: the bf16 activations that
// mixed precision keeps between layers, half the bytes written). The BF16 variants
// read half the operand bytes; they take 1x1 convolutions through the implicit GEMM too, and
// depthwise ones to the depthwise kernels' bf16 twins.
// Per-tile statistics of y for a batch norm after it (`stats` not null; kernels/conv2d.h,
// combined by kernels/conv2d_bn.h): after its tile is written, each implicit-GEMM forward block
// re-reads it (its own writes, cache-hot) and writes per channel row the tile's mean and M2
// (conv2d_tile_stats.cuh) to stats (tiles, K, 2), for every math. forward_kernel() below is the
// forward's dispatch, and conv2d_forward_stats_in_epilogue answers from it: a 1x1 convolution
// asked for statistics takes the implicit GEMM instead of the batched SGEMM (the same tile
// core, so the same sums); depthwise ones run their kernel, then conv2d_tile_stats_kernel, a
// separate pass over y (grid (T, ceil(K / 64)), the epilogue's step on each tile; read y once).
// Vectorised gathers and NHWC are later steps (bench_conv2d has cuDNN beside these kernels).
#include <algorithm>

#include "kernels/common/load_store.h"
#include "kernels/conv2d.h"
#include "kernels/cuda/conv2d_tile_stats.cuh"
#include "kernels/cuda/gemm_tile.cuh"
#include "kernels/execution.h"
#include "kernels/gemm.h"

namespace cxr::cuda {
namespace {

using namespace tile;
static_assert(kBN == kConv2dStatsTile, "the statistics' tile is the forward's column tile");

// The math of a GEMM kernel: its operand element in memory (Elem) and its shared tile (Row).
enum class Math { FMA, TF32, BF16 };
template <Math M>
struct MathTraits {
  using Elem = float;
  using Row = TileRow;
};
template <>
struct MathTraits<Math::BF16> {
  using Elem = std::uint16_t;  // bf16 bits
  using Row = TileRowBf16;
};

// The fp32 FMA tile or a tensor-core one (gemm_tile.cuh).
template <Math M, class LoadA, class LoadB, class Epilogue>
__device__ __forceinline__ void run_gemm_block(const LoadA& load_a, const LoadB& load_b, const Epilogue& epilogue,
                                               int Mrows, int N, int m0, int n0, int k_begin, int k_end) {
  if constexpr (M == Math::TF32) gemm_block_tf32(load_a, load_b, epilogue, Mrows, N, m0, n0, k_begin, k_end);
  else if constexpr (M == Math::BF16) gemm_block_bf16(load_a, load_b, epilogue, Mrows, N, m0, n0, k_begin, k_end);
  else gemm_block(load_a, load_b, epilogue, Mrows, N, m0, n0, k_begin, k_end);
}

// ---- forward ----------------------------------------------------------------------------------

// Y: the output's element type, float or (BF16 math only) bf16 bits, rounded once at the store.
template <Math M, class Y>
__global__ void __launch_bounds__(kThreads)
    conv2d_forward_kernel(Conv2dDims d, const typename MathTraits<M>::Elem* __restrict__ x,
                          const typename MathTraits<M>::Elem* __restrict__ w, const float* __restrict__ b,
                          Y* __restrict__ y, bool vec_w, float* __restrict__ stats) {
  using Elem = typename MathTraits<M>::Elem;
  using Row = typename MathTraits<M>::Row;
  const int g = blockIdx.z, Cg = d.Cg(), Kg = d.Kg();
  const int RS = d.R * d.S, CRS = Cg * RS, PQ = d.P * d.Q, NPQ = d.N * PQ;
  const Elem* wg = w + static_cast<std::int64_t>(g) * Kg * CRS;
  // A(m, kk) = w[g K' + m, kk]: float4 rows for f32, a gather for bf16.
  const auto load_a = [&](Row* t, int m0, int k0) {
    if constexpr (M == Math::BF16)
      fill_gather<false>(t, [&](int m, int kk) { return wg[static_cast<std::int64_t>(m) * CRS + kk]; }, m0, Kg, k0,
                         CRS);
    else StridedOperand<true>{wg, CRS, Kg, CRS, vec_w}(t, m0, k0);
  };
  // B(kk = (c, r, s), col = (n, p, q)) = x[n, g C' + c, p sh - ph + r dh, q sw - pw + s dw]
  const auto im2col = [&](int col, int kk) -> Elem {
    const int c = kk / RS, rs = kk - c * RS, r = rs / d.S, s = rs - r * d.S;
    const int n = col / PQ, pq = col - n * PQ, p = pq / d.Q, q = pq - p * d.Q;
    const int h = p * d.sh - d.ph + r * d.dh, v = q * d.sw - d.pw + s * d.dw;
    if (h < 0 || h >= d.H || v < 0 || v >= d.W) return Elem(0);
    return x[((static_cast<std::int64_t>(n) * d.C + g * Cg + c) * d.H + h) * d.W + v];
  };
  const auto load_b = [&](Row* t, int n0, int k0) { fill_gather<true>(t, im2col, n0, NPQ, k0, CRS); };
  const auto store_one = [&](int m, int col, float v) {
    const int n = col / PQ, pq = col - n * PQ;
    const int k = g * Kg + m;
    store(y + (static_cast<std::int64_t>(n) * d.K + k) * PQ + pq, b ? v + b[k] : v);
  };
  // Columns col..col+3 (col % 4 == 0): with PQ % 4 == 0 they lie in one image, contiguous and
  // 16-byte aligned in y, so an f32 y takes them as one float4 (gemm_tile.cuh, "vector epilogue").
  const auto store_four = [&](int m, int col, float4 v) {
    const int n = col / PQ, pq = col - n * PQ;
    const int k = g * Kg + m;
    Y* out = y + (static_cast<std::int64_t>(n) * d.K + k) * PQ + pq;
    if constexpr (std::is_same_v<Y, float>) {
      if (PQ % 4 == 0 && reinterpret_cast<std::uintptr_t>(out) % 16 == 0) {
        const float bk = b ? b[k] : 0.f;
        *reinterpret_cast<float4*>(out) = make_float4(v.x + bk, v.y + bk, v.z + bk, v.w + bk);
        return;
      }
    }
    store_one(m, col, v.x), store_one(m, col + 1, v.y), store_one(m, col + 2, v.z), store_one(m, col + 3, v.w);
  };
  const overloaded epilogue{store_one, store_four};
  const int m0 = static_cast<int>(blockIdx.y) * kBM, n0 = static_cast<int>(blockIdx.x) * kBN;
  run_gemm_block<M>(load_a, load_b, epilogue, Kg, NPQ, m0, n0, 0, CRS);
  if (stats) {  // statistics of the tile just written, as stored (conv2d_tile_stats.cuh)
    __syncthreads();
    const auto y_at = [&](int m, int col) {
      const int n = col / PQ, pq = col - n * PQ;
      return load(y + (static_cast<std::int64_t>(n) * d.K + g * Kg + m) * PQ + pq);
    };
    tile_channel_stats(y_at, [&](int m) { return g * Kg + m; }, Kg, NPQ, m0, n0, d.K, stats);
  }
}

// The per-tile statistics of y (f32 or bf16) as a pass of its own, for the forwards without the
// epilogue (depthwise): grid (T, ceil(K / 64)), block (t, r) takes rows 64 r .. of column tile t.
template <class Y>
__global__ void __launch_bounds__(kThreads)
    conv2d_tile_stats_kernel(Conv2dDims d, const Y* __restrict__ y, float* __restrict__ partial) {
  const int PQ = d.P * d.Q, NPQ = d.N * PQ;
  const auto y_at = [&](int k, int col) {
    const int n = col / PQ, pq = col - n * PQ;
    return load(y + (static_cast<std::int64_t>(n) * d.K + k) * PQ + pq);
  };
  tile_channel_stats(
      y_at, [](int k) { return k; }, d.K, NPQ, static_cast<int>(blockIdx.y) * kBM, static_cast<int>(blockIdx.x) * kBN,
      d.K, partial);
}

// ---- backward-data ----------------------------------------------------------------------------

template <Math M>
__global__ void __launch_bounds__(kThreads)
    conv2d_backward_data_kernel(Conv2dDims d, const typename MathTraits<M>::Elem* __restrict__ dy,
                                const typename MathTraits<M>::Elem* __restrict__ w, float* __restrict__ dx) {
  using Elem = typename MathTraits<M>::Elem;
  using Row = typename MathTraits<M>::Row;
  const int g = blockIdx.z, Cg = d.Cg(), Kg = d.Kg();
  const int RS = d.R * d.S, KRS = Kg * RS, PQ = d.P * d.Q, HW = d.H * d.W, NHW = d.N * HW;
  // A(c, kk = (k, r, s)) = w[g K' + k, c, r, s]
  const auto wt = [&](int c, int kk) -> Elem {
    const int k = kk / RS, rs = kk - k * RS;
    return w[(static_cast<std::int64_t>(g * Kg + k) * Cg + c) * RS + rs];
  };
  // B(kk = (k, r, s), col = (n, h, v)) = dy[n, g K' + k, p, q] with p sh = h + ph - r dh (exactly)
  const auto col2im = [&](int col, int kk) -> Elem {
    const int k = kk / RS, rs = kk - k * RS, r = rs / d.S, s = rs - r * d.S;
    const int n = col / HW, hv = col - n * HW, h = hv / d.W, v = hv - h * d.W;
    const int ph = h + d.ph - r * d.dh, pw = v + d.pw - s * d.dw;
    if (ph < 0 || pw < 0) return Elem(0);
    const int p = ph / d.sh, q = pw / d.sw;
    if (p * d.sh != ph || q * d.sw != pw || p >= d.P || q >= d.Q) return Elem(0);
    return dy[(static_cast<std::int64_t>(n) * d.K + g * Kg + k) * PQ + p * d.Q + q];
  };
  const auto load_a = [&](Row* t, int m0, int k0) { fill_gather<false>(t, wt, m0, Cg, k0, KRS); };
  const auto load_b = [&](Row* t, int n0, int k0) { fill_gather<true>(t, col2im, n0, NHW, k0, KRS); };
  const auto store_one = [&](int c, int col, float v) {
    const int n = col / HW, hv = col - n * HW;
    dx[(static_cast<std::int64_t>(n) * d.C + g * Cg + c) * HW + hv] = v;
  };
  // Columns col..col+3: one float4 where HW % 4 == 0 keeps them in one image and aligned.
  const auto store_four = [&](int c, int col, float4 v) {
    const int n = col / HW, hv = col - n * HW;
    float* out = dx + (static_cast<std::int64_t>(n) * d.C + g * Cg + c) * HW + hv;
    if (HW % 4 == 0 && reinterpret_cast<std::uintptr_t>(out) % 16 == 0) {
      *reinterpret_cast<float4*>(out) = v;
      return;
    }
    store_one(c, col, v.x), store_one(c, col + 1, v.y), store_one(c, col + 2, v.z), store_one(c, col + 3, v.w);
  };
  const overloaded epilogue{store_one, store_four};
  run_gemm_block<M>(load_a, load_b, epilogue, Cg, NHW, static_cast<int>(blockIdx.y) * kBM,
                       static_cast<int>(blockIdx.x) * kBN, 0, KRS);
}

// ---- backward-weight --------------------------------------------------------------------------

// blockIdx.z = g * splits + split; split covers reduction indices [split chunk, (split+1) chunk).
// out: dw itself (splits == 1) or the workspace (splits, K, C', R, S).
template <Math M>
__global__ void __launch_bounds__(kThreads)
    conv2d_backward_weight_kernel(Conv2dDims d, const typename MathTraits<M>::Elem* __restrict__ dy,
                                  const typename MathTraits<M>::Elem* __restrict__ x, float* __restrict__ out,
                                  int splits, int chunk) {
  using Elem = typename MathTraits<M>::Elem;
  using Row = typename MathTraits<M>::Row;
  const int g = blockIdx.z / splits, split = blockIdx.z % splits, Cg = d.Cg(), Kg = d.Kg();
  const int RS = d.R * d.S, CRS = Cg * RS, PQ = d.P * d.Q, NPQ = d.N * PQ;
  const int k_begin = split * chunk, k_end = min(NPQ, k_begin + chunk);
  // A(k, kk = (n, p, q)) = dy[n, g K' + k, p, q]
  const auto grad = [&](int k, int kk) -> Elem {
    const int n = kk / PQ, pq = kk - n * PQ;
    return dy[(static_cast<std::int64_t>(n) * d.K + g * Kg + k) * PQ + pq];
  };
  // B(kk = (n, p, q), col = (c, r, s)) = x[n, g C' + c, p sh - ph + r dh, q sw - pw + s dw]
  const auto im2col_t = [&](int col, int kk) -> Elem {
    const int c = col / RS, rs = col - c * RS, r = rs / d.S, s = rs - r * d.S;
    const int n = kk / PQ, pq = kk - n * PQ, p = pq / d.Q, q = pq - p * d.Q;
    const int h = p * d.sh - d.ph + r * d.dh, v = q * d.sw - d.pw + s * d.dw;
    if (h < 0 || h >= d.H || v < 0 || v >= d.W) return Elem(0);
    return x[((static_cast<std::int64_t>(n) * d.C + g * Cg + c) * d.H + h) * d.W + v];
  };
  const auto load_a = [&](Row* t, int m0, int k0) { fill_gather<false>(t, grad, m0, Kg, k0, k_end); };
  const auto load_b = [&](Row* t, int n0, int k0) { fill_gather<false>(t, im2col_t, n0, CRS, k0, k_end); };
  float* dst = out + static_cast<std::int64_t>(split) * d.K * CRS;
  const auto store_one = [&](int k, int col, float v) { dst[static_cast<std::int64_t>(g * Kg + k) * CRS + col] = v; };
  // Columns col..col+3 of one row of dw: one float4 where CRS % 4 == 0 keeps rows aligned.
  const auto store_four = [&](int k, int col, float4 v) {
    float* out = dst + static_cast<std::int64_t>(g * Kg + k) * CRS + col;
    if (CRS % 4 == 0 && reinterpret_cast<std::uintptr_t>(out) % 16 == 0) {
      *reinterpret_cast<float4*>(out) = v;
      return;
    }
    store_one(k, col, v.x), store_one(k, col + 1, v.y), store_one(k, col + 2, v.z), store_one(k, col + 3, v.w);
  };
  const overloaded epilogue{store_one, store_four};
  run_gemm_block<M>(load_a, load_b, epilogue, Kg, CRS, static_cast<int>(blockIdx.y) * kBM,
                       static_cast<int>(blockIdx.x) * kBN, k_begin, k_end);
}

// dw[i] = sum_s ws[s][i], in split order (deterministic).
__global__ void sum_splits_kernel(const float* __restrict__ ws, float* __restrict__ dw, std::int64_t size,
                                  int splits) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= size) return;
  float sum = 0.f;
  for (int s = 0; s < splits; ++s) sum += ws[s * size + i];
  dw[i] = sum;
}

// ---- backward-bias ----------------------------------------------------------------------------

constexpr int kReduceThreads = 256;

// db[k] = sum_{n, pq} dy[n, k, pq]: block k; strided partial sums, then a shared-memory tree.
__global__ void __launch_bounds__(kReduceThreads)
    conv2d_backward_bias_kernel(Conv2dDims d, const float* __restrict__ dy, float* __restrict__ db) {
  __shared__ float partial[kReduceThreads];
  const int k = blockIdx.x, PQ = d.P * d.Q;
  float sum = 0.f;
  for (int n = 0; n < d.N; ++n) {
    const float* g = dy + (static_cast<std::int64_t>(n) * d.K + k) * PQ;
    for (int i = threadIdx.x; i < PQ; i += blockDim.x) sum += g[i];
  }
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int stride = kReduceThreads / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) db[k] = partial[0];
}

template <class Y>
void tile_stats_pass(const Conv2dDims& d, const Y* y, float* partial) {
  const std::int64_t tiles = conv2d_stats_tiles(d);
  if (tiles == 0 || d.K == 0) return;
  launch_kernel(conv2d_tile_stats_kernel<Y>, dim3(static_cast<unsigned>(tiles), blocks_for(d.K, kBM)), dim3(kThreads),
                0, d, y, partial);
}

// The forward's dispatch: which kernel runs d, for f32 or bf16 operands, with the per-tile
// statistics asked for or not.
enum class ForwardKernel { Depthwise, BatchedSgemm, ImplicitGemm };
ForwardKernel forward_kernel(const Conv2dDims& d, bool bf16, bool stats) {
  if (d.depthwise()) return ForwardKernel::Depthwise;  // conv2d_depthwise.cu, no epilogue
  // 1x1 stride 1 pad 0 with groups 1, fp32 / TF32: y_n (K, HW) = w (K, C) x_n (C, HW) + b, unless
  // statistics are asked for (the SGEMM has no statistics step: the implicit GEMM then).
  if (!bf16 && d.pointwise() && d.G == 1 && !stats) return ForwardKernel::BatchedSgemm;
  return ForwardKernel::ImplicitGemm;  // every math writes the statistics in its epilogue
}

dim3 gemm_grid(std::int64_t M, std::int64_t N, std::int64_t z) {
  CXR_CHECK(z <= 65535, "conv2d: too many groups / splits for one launch: ", z);
  return dim3(blocks_for(N, kBN), blocks_for(M, kBM), static_cast<unsigned>(z));
}

// The implicit-GEMM launches, for any math.
template <Math M, class Elem, class Y>
void implicit_gemm_forward(const Conv2dDims& d, const Elem* x, const Elem* w, const float* b, Y* y, float* stats) {
  const std::int64_t CRS = static_cast<std::int64_t>(d.Cg()) * d.R * d.S;
  const bool vec_w = aligned16(w) && CRS % 4 == 0;
  launch_kernel(conv2d_forward_kernel<M, Y>, gemm_grid(d.Kg(), static_cast<std::int64_t>(d.N) * d.P * d.Q, d.G),
                dim3(kThreads), 0, d, x, w, b, y, vec_w, stats);
}

template <Math M, class Elem>
void implicit_gemm_backward_data(const Conv2dDims& d, const Elem* dy, const Elem* w, float* dx) {
  const std::int64_t HW = static_cast<std::int64_t>(d.H) * d.W;
  launch_kernel(conv2d_backward_data_kernel<M>, gemm_grid(d.Cg(), d.N * HW, d.G), dim3(kThreads), 0, d, dy, w, dx);
}

template <Math M, class Elem>
void implicit_gemm_backward_weight(const Conv2dDims& d, const Elem* dy, const Elem* x, float* dw) {
  const std::int64_t CRS = static_cast<std::int64_t>(d.Cg()) * d.R * d.S;
  const std::int64_t NPQ = static_cast<std::int64_t>(d.N) * d.P * d.Q;
  const std::int64_t size = d.K * CRS;
  // Enough blocks for a large GPU (~2 per SM of an H100), each slice at least 256 long.
  const std::int64_t out_blocks = blocks_for(d.Kg(), kBM) * static_cast<std::int64_t>(blocks_for(CRS, kBN)) * d.G;
  std::int64_t splits = std::clamp<std::int64_t>((264 + out_blocks - 1) / out_blocks, 1, (NPQ + 255) / 256);
  splits = std::min<std::int64_t>(splits, 65535 / d.G);
  const std::int64_t chunk = ((NPQ + splits - 1) / splits + kBK - 1) / kBK * kBK;
  splits = std::max<std::int64_t>(1, (NPQ + chunk - 1) / chunk);
  if (splits == 1) {
    launch_kernel(conv2d_backward_weight_kernel<M>, gemm_grid(d.Kg(), CRS, d.G), dim3(kThreads), 0, d, dy, x, dw, 1,
                  static_cast<int>(chunk));
    return;
  }
  // Released when this returns, before the kernels run: safe, because the caching allocator
  // hands the block out again only to work that is ordered after them on the compute stream.
  Tensor ws = Tensor::empty({splits * size}, DType::F32, Device::CUDA);
  launch_kernel(conv2d_backward_weight_kernel<M>, gemm_grid(d.Kg(), CRS, d.G * splits), dim3(kThreads), 0, d, dy, x,
                ws.f32(), static_cast<int>(splits), static_cast<int>(chunk));
  launch_kernel(sum_splits_kernel, blocks_for(size, 256), dim3(256), 0, static_cast<const float*>(ws.f32()), dw, size,
                static_cast<int>(splits));
}

}  // namespace

bool conv2d_forward_stats_in_epilogue(const Conv2dDims& d, bool bf16) {
  return forward_kernel(d, bf16, /*stats=*/false) == ForwardKernel::ImplicitGemm;
}

void conv2d_forward(const Conv2dDims& d, const float* x, const float* w, const float* b, float* y, float* stats) {
  switch (forward_kernel(d, /*bf16=*/false, stats != nullptr)) {
    case ForwardKernel::Depthwise:
      conv2d_depthwise_forward(d, x, w, b, y);
      if (stats) tile_stats_pass(d, y, stats);  // no epilogue: a separate pass over y
      return;
    case ForwardKernel::BatchedSgemm: {  // y_n (K, HW) = w (K, C) x_n (C, HW) + b
      const std::int64_t HW = static_cast<std::int64_t>(d.H) * d.W;
      sgemm_strided_batched(false, false, d.K, HW, d.C, 1.f, w, d.C, 0, x, HW, d.C * HW, 0.f, y, HW, d.K * HW, d.N,
                            GemmBias{b, nullptr});
      return;
    }
    case ForwardKernel::ImplicitGemm:
      if (allow_tf32()) implicit_gemm_forward<Math::TF32>(d, x, w, b, y, stats);
      else implicit_gemm_forward<Math::FMA>(d, x, w, b, y, stats);
      return;
  }
}

void conv2d_backward_data(const Conv2dDims& d, const float* dy, const float* w, float* dx) {
  if (d.depthwise()) return conv2d_depthwise_backward_data(d, dy, w, dx);
  const std::int64_t HW = static_cast<std::int64_t>(d.H) * d.W;
  if (d.pointwise() && d.G == 1) {  // dx_n (C, HW) = w^T (C, K) dy_n (K, HW)
    sgemm_strided_batched(true, false, d.C, HW, d.K, 1.f, w, d.C, 0, dy, HW, d.K * HW, 0.f, dx, HW, d.C * HW, d.N);
    return;
  }
  if (allow_tf32()) implicit_gemm_backward_data<Math::TF32>(d, dy, w, dx);
  else implicit_gemm_backward_data<Math::FMA>(d, dy, w, dx);
}

void conv2d_backward_weight(const Conv2dDims& d, const float* dy, const float* x, float* dw) {
  if (d.depthwise()) return conv2d_depthwise_backward_weight(d, dy, x, dw);
  if (allow_tf32()) implicit_gemm_backward_weight<Math::TF32>(d, dy, x, dw);
  else implicit_gemm_backward_weight<Math::FMA>(d, dy, x, dw);
}

namespace {
// The bf16 forward for an f32 or a bf16 output y.
template <class Y>
void forward_bf16(const Conv2dDims& d, const std::uint16_t* x, const std::uint16_t* w, const float* b, Y* y,
                  float* stats) {
  if (forward_kernel(d, /*bf16=*/true, stats != nullptr) == ForwardKernel::Depthwise) {
    conv2d_depthwise_forward_bf16(d, x, w, b, y);
    if (stats) tile_stats_pass(d, y, stats);
    return;
  }
  implicit_gemm_forward<Math::BF16>(d, x, w, b, y, stats);
}
}  // namespace

void conv2d_forward_bf16(const Conv2dDims& d, const std::uint16_t* x, const std::uint16_t* w, const float* b, float* y,
                         float* stats) {
  forward_bf16(d, x, w, b, y, stats);
}
void conv2d_forward_bf16(const Conv2dDims& d, const std::uint16_t* x, const std::uint16_t* w, const float* b,
                         std::uint16_t* y, float* stats) {
  forward_bf16(d, x, w, b, y, stats);
}

void conv2d_backward_data_bf16(const Conv2dDims& d, const std::uint16_t* dy, const std::uint16_t* w, float* dx) {
  if (d.depthwise()) return conv2d_depthwise_backward_data_bf16(d, dy, w, dx);
  implicit_gemm_backward_data<Math::BF16>(d, dy, w, dx);
}

void conv2d_backward_weight_bf16(const Conv2dDims& d, const std::uint16_t* dy, const std::uint16_t* x, float* dw) {
  if (d.depthwise()) return conv2d_depthwise_backward_weight_bf16(d, dy, x, dw);
  implicit_gemm_backward_weight<Math::BF16>(d, dy, x, dw);
}

void conv2d_backward_bias(const Conv2dDims& d, const float* dy, float* db) {
  launch_kernel(conv2d_backward_bias_kernel, dim3(static_cast<unsigned>(d.K)), dim3(kReduceThreads), 0, d, dy, db);
}

}  // namespace cxr::cuda
