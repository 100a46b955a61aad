// conv2d on the CPU (math and shapes in kernels/conv2d.h).
//
// conv2d_*_reference<T>: the sums of the definition as plain loops, float and double; the
// specification the tests check everything else against.
//
// The fast f32 path is one GEMM per pass over a *panel* of nb images at once (C' = C/G,
// K' = K/G, PQ = P Q; per group g):
//   col = im2col of the panel                 (C' R S, nb PQ)   column n PQ + p Q + q is
//                                                                 output pixel (p, q) of image n
//   forward:         Y = w[g] (K', C' R S) col                     sgemm -> (K', nb PQ),
//                    y[n, g K' + k, pq] = Y[k, n PQ + pq] + b      scattered back per image
//   backward-data:   dY = dy gathered to (K', nb PQ)
//                    col = w[g]^T (C' R S, K') dY                  sgemm, trans A
//                    dx[n, g] = col2im(col)                        scatter-add of the patches
//   backward-weight: dw[g] += dY (K', nb PQ) col^T (nb PQ, C' R S) sgemm, trans B
//   backward-bias:   db[k] = sum_{n,p,q} dy[n,k,p,q]
//   forward with bn (evaluation's batch norm as the epilogue, kernels/conv2d_bn.h): each
//                    (image, channel) plane of y gets act(batch_norm) right after it is written
//                    (in from_columns, after the in-place GEMM, in the depthwise plane loop)
// Why panels: at 64x64 ResNet-18's layer4 has PQ = 2 x 2, layer3 4 x 4. One GEMM per image
// then has N = 4 or 16 columns, so a 16-wide register tile is mostly padding and packing the
// 512 x 4608 weights costs as much as multiplying them; over a panel of 32 images N = 128.
// Panel size: about kPanelColumns = 256 GEMM columns (ceil(256 / PQ) images), fewer when a
// panel buffer (max(C' R S, K') x nb PQ floats) would pass kPanelFloats (8 MiB), at least one
// image, spread evenly over the panels. ResNet-18 at 64x64, batch 32: stem (PQ = 1024) and
// layer1 (PQ = 256) one image at a time, layer2 (PQ = 64) 8 panels of 4, layer3 (PQ = 16) 2
// of 16, layer4 (PQ = 4) the whole batch; at 224 px every layer but the last one or two runs
// image by image. 256 columns are plenty for the 32-wide register tile, and each image beyond
// one costs a gather of its columns and a scatter of its outputs (memmove and from_columns were
// 9 % of a ResNet-50 training step at 224 px with 4096). Measured, 2 threads, Xeon (AVX-512),
// images/s with 4096 -> 256 columns: ResNet-50 224 px b16 training 4.4 -> 4.7-4.9, ResNet-18
// 64 px b32 training 100 -> 109, ResNet-18 224 px b32 inference 31 -> 32-34 (128 to 512 within
// the machine's noise of each other).
// Implicit im2col (stride 1 and Q = W: every 3x3 / 7x7 "same" convolution of the models): col
// is never written. The GEMM packs its B slivers straight from x (sgemm_conv_columns,
// kernels/gemm.h), forward and backward-weight; backward-data is then the forward convolution
// of dy with the flipped, transposed weights w'[c, k, R-1-r, S-1-s] and padding dh (R-1) - ph,
// whose columns come straight from dy, so there is no col2im either. For a 3x3 layer im2col
// wrote 9x the input per pass and the GEMM read it back; now only the input is read.
// Measured (Xeon, bench_conv2d r50_l1_3x3_64x56, batch 2, one thread, old and new binary back to
// back): forward 6.6 -> 4.0 ms, backward-data 5.6 -> 4.1, backward-weight 6.1 -> 4.9; resnet18
// 224 px b16 training step 12.1 -> 13.3 images/s (2 threads).
// Other shapes (strides of 2, the 7x7 stem, 1x1 with stride) keep im2col and col2im.
// Winograd F(2x2, 3x3) (kernels/cpu/winograd.h) takes the 3x3, stride-1, padding-1 convolutions
// with enough channels and tiles (winograd_pays below): 16 instead of 36 multiply-adds per 2 x 2
// outputs and channel pair, forward and backward-data; backward-weight with 128+ channels.
// With CXR_CPU_CONV3X3=measure the choice is timed instead, per pass and shape at its first call
// (measure_plan), and kept for the process.
// With one image per panel nothing is gathered or scattered: the GEMM reads and writes the
// tensors in place. 1x1 stride 1 pad 0: col is x itself (gathered to (C', nb PQ) when nb > 1;
// no im2col, no col2im); 1x1 stride 2 goes through im2col, which then is just a subsampling
// copy (C' PQ floats per image).
// depthwise (G == C == K): direct loops, R S FMAs per output, memory bound; a GEMM of
// K' = C' = 1 would waste the micro-kernel. Stride 1 goes through a zero-padded copy of each
// plane, 8 outputs per vector (kernels/cpu/depthwise_padded.h); strides of 2 keep the loops
// below.
// Threads: sgemm splits C among all OpenMP threads (kernels/cpu/gemm.cpp); im2col, col2im and
// the gathers run in parallel over (image, channel) with disjoint writes. No sum is split
// between threads -- backward-weight accumulates the panels into dw one after the other --
// so every result is bit-identical run to run and for any thread count.
// Memory traffic per panel and pass, next to 2 K' C' R S nb PQ FLOPs: im2col writes and the
// GEMM reads C' R S nb PQ floats (col2im the same in reverse), none of it with implicit
// columns (the B slivers are read from x R S times, from cache); the gathers and scatters move
// K' nb PQ (and C' nb PQ for 1x1) floats; backward-data's flip reads and writes the weights.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "kernels/batch_norm.h"
#include "kernels/conv2d.h"
#include "kernels/cpu/depthwise_padded.h"
#include "kernels/cpu/frozen_weights.h"
#include "kernels/cpu/winograd.h"
#include "kernels/gemm.h"

namespace cxr::cpu {

// ---- reference ------------------------------------------------------------------------------

template <typename T>
void conv2d_forward_reference(const Conv2dDims& d, const T* x, const T* w, const T* b, T* y) {
  const int Cg = d.Cg(), Kg = d.Kg();
  for (int n = 0; n < d.N; ++n)
    for (int k = 0; k < d.K; ++k) {
      const int g = k / Kg;
      for (int p = 0; p < d.P; ++p)
        for (int q = 0; q < d.Q; ++q) {
          T sum = b ? b[k] : T(0);
          for (int c = 0; c < Cg; ++c)
            for (int r = 0; r < d.R; ++r)
              for (int s = 0; s < d.S; ++s) {
                const int h = p * d.sh - d.ph + r * d.dh, v = q * d.sw - d.pw + s * d.dw;
                if (h < 0 || h >= d.H || v < 0 || v >= d.W) continue;
                sum += x[((static_cast<std::int64_t>(n) * d.C + g * Cg + c) * d.H + h) * d.W + v] *
                       w[((static_cast<std::int64_t>(k) * Cg + c) * d.R + r) * d.S + s];
              }
          y[((static_cast<std::int64_t>(n) * d.K + k) * d.P + p) * d.Q + q] = sum;
        }
    }
}

template <typename T>
void conv2d_backward_data_reference(const Conv2dDims& d, const T* dy, const T* w, T* dx) {
  const int Cg = d.Cg(), Kg = d.Kg();
  std::fill(dx, dx + static_cast<std::int64_t>(d.N) * d.C * d.H * d.W, T(0));
  for (int n = 0; n < d.N; ++n)
    for (int k = 0; k < d.K; ++k) {
      const int g = k / Kg;
      for (int p = 0; p < d.P; ++p)
        for (int q = 0; q < d.Q; ++q) {
          const T grad = dy[((static_cast<std::int64_t>(n) * d.K + k) * d.P + p) * d.Q + q];
          for (int c = 0; c < Cg; ++c)
            for (int r = 0; r < d.R; ++r)
              for (int s = 0; s < d.S; ++s) {
                const int h = p * d.sh - d.ph + r * d.dh, v = q * d.sw - d.pw + s * d.dw;
                if (h < 0 || h >= d.H || v < 0 || v >= d.W) continue;
                dx[((static_cast<std::int64_t>(n) * d.C + g * Cg + c) * d.H + h) * d.W + v] +=
                    grad * w[((static_cast<std::int64_t>(k) * Cg + c) * d.R + r) * d.S + s];
              }
        }
    }
}

template <typename T>
void conv2d_backward_weight_reference(const Conv2dDims& d, const T* dy, const T* x, T* dw) {
  const int Cg = d.Cg(), Kg = d.Kg();
  for (int k = 0; k < d.K; ++k) {
    const int g = k / Kg;
    for (int c = 0; c < Cg; ++c)
      for (int r = 0; r < d.R; ++r)
        for (int s = 0; s < d.S; ++s) {
          T sum = T(0);
          for (int n = 0; n < d.N; ++n)
            for (int p = 0; p < d.P; ++p)
              for (int q = 0; q < d.Q; ++q) {
                const int h = p * d.sh - d.ph + r * d.dh, v = q * d.sw - d.pw + s * d.dw;
                if (h < 0 || h >= d.H || v < 0 || v >= d.W) continue;
                sum += dy[((static_cast<std::int64_t>(n) * d.K + k) * d.P + p) * d.Q + q] *
                       x[((static_cast<std::int64_t>(n) * d.C + g * Cg + c) * d.H + h) * d.W + v];
              }
          dw[((static_cast<std::int64_t>(k) * Cg + c) * d.R + r) * d.S + s] = sum;
        }
  }
}

template <typename T>
void conv2d_backward_bias_reference(const Conv2dDims& d, const T* dy, T* db) {
  for (int k = 0; k < d.K; ++k) {
    T sum = T(0);
    for (int n = 0; n < d.N; ++n)
      for (int pq = 0; pq < d.P * d.Q; ++pq) sum += dy[(static_cast<std::int64_t>(n) * d.K + k) * d.P * d.Q + pq];
    db[k] = sum;
  }
}

#define CXR_CONV2D_INSTANTIATE(T)                                                               \
  template void conv2d_forward_reference<T>(const Conv2dDims&, const T*, const T*, const T*, T*); \
  template void conv2d_backward_data_reference<T>(const Conv2dDims&, const T*, const T*, T*);     \
  template void conv2d_backward_weight_reference<T>(const Conv2dDims&, const T*, const T*, T*);   \
  template void conv2d_backward_bias_reference<T>(const Conv2dDims&, const T*, T*);
CXR_CONV2D_INSTANTIATE(float)
CXR_CONV2D_INSTANTIATE(double)
#undef CXR_CONV2D_INSTANTIATE

// ---- fast path ------------------------------------------------------------------------------

namespace {

// The valid output range [lo, hi) of q for tap offset `off` = s dw - pw: 0 <= q sw + off < W.
void valid_range(int off, int stride, int size, int out, int& lo, int& hi) {
  lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
  hi = size - off <= 0 ? 0 : (size - off + stride - 1) / stride;
  lo = std::min(lo, out);
  hi = std::clamp(hi, lo, out);
}

// Parallel loops below only pay for themselves above this many floats moved.
constexpr std::int64_t kParallelFloats = 1 << 15;
// Panels: about kPanelColumns GEMM columns, and each panel buffer at most kPanelFloats
// floats (8 MiB) unless one image alone needs more.
constexpr std::int64_t kPanelColumns = 256;
constexpr std::int64_t kPanelFloats = std::int64_t{1} << 21;

// Images per panel (see the top of the file).
int panel_images(const Conv2dDims& d) {
  const std::int64_t PQ = static_cast<std::int64_t>(d.P) * d.Q;
  const std::int64_t rows = std::max<std::int64_t>(static_cast<std::int64_t>(d.Cg()) * d.R * d.S, d.Kg());
  const std::int64_t want = std::min((kPanelColumns + PQ - 1) / PQ, kPanelFloats / (rows * PQ));
  const int nb = static_cast<int>(std::clamp<std::int64_t>(want, 1, d.N));
  const int panels = (d.N + nb - 1) / nb;
  return (d.N + panels - 1) / panels;
}

// col[(c R + r) S + s][n PQ + p Q + q] = x[n, c, p sh - ph + r dh, q sw - pw + s dw] (0 outside)
// for the nb images of a panel; x: image 0, channel 0 of the group (images C H W apart).
// Rows are short at 64x64 (Q = 2..32), so each row of col is filled by plain loops, and with
// stride 1 and Q == W ("same" padding, most 3x3 convs) by one shifted copy of the plane (see
// shifted_plane).
void im2col(const Conv2dDims& d, const float* x, int nb, float* col) {
  const std::int64_t PQ = static_cast<std::int64_t>(d.P) * d.Q, ld = nb * PQ;
  const std::int64_t HW = static_cast<std::int64_t>(d.H) * d.W;
  const int Cg = d.Cg(), Q = d.Q;
  const bool same = d.sh == 1 && d.sw == 1 && d.Q == d.W;
#pragma omp parallel for collapse(2) schedule(static) if (Cg * d.R * d.S * ld > kParallelFloats)
  for (int n = 0; n < nb; ++n)
    for (int c = 0; c < Cg; ++c) {
      const float* plane = x + (static_cast<std::int64_t>(n) * d.C + c) * HW;
      for (int r = 0; r < d.R; ++r)
        for (int s = 0; s < d.S; ++s) {
          float* __restrict__ row = col + (static_cast<std::int64_t>(c * d.R + r) * d.S + s) * ld + n * PQ;
          int q_lo, q_hi;
          valid_range(s * d.dw - d.pw, d.sw, d.W, Q, q_lo, q_hi);
          if (same) {
            // out[p Q + q] = plane[(p + oh) W + q + ow] for the rows p in range: one copy of
            // the span, clipped to the plane; then zero the columns outside [q_lo, q_hi) (the
            // copy wrapped them round from the neighbouring row) and the rows outside.
            const int oh = r * d.dh - d.ph, ow = s * d.dw - d.pw;
            int p_lo, p_hi;
            valid_range(oh, 1, d.H, d.P, p_lo, p_hi);
            const std::int64_t lo = std::max<std::int64_t>(p_lo * Q, -(static_cast<std::int64_t>(oh) * d.W + ow));
            const std::int64_t hi = std::min<std::int64_t>(p_hi * Q, HW - (static_cast<std::int64_t>(oh) * d.W + ow));
            const float* __restrict__ in = plane + static_cast<std::int64_t>(oh) * d.W + ow;
            for (std::int64_t i = 0; i < p_lo * Q; ++i) row[i] = 0.f;
            for (std::int64_t i = lo; i < hi; ++i) row[i] = in[i];
            for (std::int64_t i = p_hi * Q; i < PQ; ++i) row[i] = 0.f;
            for (int p = p_lo; p < p_hi; ++p) {
              for (int q = 0; q < q_lo; ++q) row[p * Q + q] = 0.f;
              for (int q = q_hi; q < Q; ++q) row[p * Q + q] = 0.f;
            }
            continue;
          }
          for (int p = 0; p < d.P; ++p) {
            float* __restrict__ out = row + p * Q;
            const int h = p * d.sh - d.ph + r * d.dh;
            if (h < 0 || h >= d.H) {
              for (int q = 0; q < Q; ++q) out[q] = 0.f;
              continue;
            }
            const float* __restrict__ in = plane + static_cast<std::int64_t>(h) * d.W + s * d.dw - d.pw;
            for (int q = 0; q < q_lo; ++q) out[q] = 0.f;
            if (d.sw == 1)
              for (int q = q_lo; q < q_hi; ++q) out[q] = in[q];
            else
              for (int q = q_lo; q < q_hi; ++q) out[q] = in[q * d.sw];
            for (int q = q_hi; q < Q; ++q) out[q] = 0.f;
          }
        }
    }
}

// The adjoint of im2col: dx[n, c, h, v] = sum of the col entries that im2col copied from
// (n, c, h, v). Each (image, channel) plane is zeroed, then accumulated by one thread. With
// stride 1 and Q == W a row of col is added to the plane as one shifted span, after zeroing
// (in col, a scratch buffer) the entries that im2col would have padded.
void col2im(const Conv2dDims& d, float* col, int nb, float* dx) {
  const std::int64_t PQ = static_cast<std::int64_t>(d.P) * d.Q, ld = nb * PQ;
  const std::int64_t HW = static_cast<std::int64_t>(d.H) * d.W;
  const int Cg = d.Cg(), Q = d.Q;
  const bool same = d.sh == 1 && d.sw == 1 && d.Q == d.W;
  // Channel-major: the R S rows of channel c in col hold every image of the panel, so they are
  // used up while in L1 (image-major loops over small planes, 2 x 2 at 64 px with 4 floats per
  // image in each row, went through col's 2.4 MB once per image: a third of backward-data's time).
#pragma omp parallel for collapse(2) schedule(static) if (Cg * d.R * d.S * ld > kParallelFloats)
  for (int c = 0; c < Cg; ++c)
    for (int n = 0; n < nb; ++n) {
      float* plane = dx + (static_cast<std::int64_t>(n) * d.C + c) * HW;
      for (std::int64_t i = 0; i < HW; ++i) plane[i] = 0.f;
      for (int r = 0; r < d.R; ++r)
        for (int s = 0; s < d.S; ++s) {
          float* row = col + (static_cast<std::int64_t>(c * d.R + r) * d.S + s) * ld + n * PQ;
          int q_lo, q_hi;
          valid_range(s * d.dw - d.pw, d.sw, d.W, Q, q_lo, q_hi);
          if (same) {
            const int oh = r * d.dh - d.ph, ow = s * d.dw - d.pw;
            int p_lo, p_hi;
            valid_range(oh, 1, d.H, d.P, p_lo, p_hi);
            for (int p = p_lo; p < p_hi; ++p) {
              for (int q = 0; q < q_lo; ++q) row[p * Q + q] = 0.f;
              for (int q = q_hi; q < Q; ++q) row[p * Q + q] = 0.f;
            }
            const std::int64_t lo = std::max<std::int64_t>(p_lo * Q, -(static_cast<std::int64_t>(oh) * d.W + ow));
            const std::int64_t hi = std::min<std::int64_t>(p_hi * Q, HW - (static_cast<std::int64_t>(oh) * d.W + ow));
            const float* __restrict__ in = row;
            float* __restrict__ out = plane + static_cast<std::int64_t>(oh) * d.W + ow;
            for (std::int64_t i = lo; i < hi; ++i) out[i] += in[i];
            continue;
          }
          for (int p = 0; p < d.P; ++p) {
            const int h = p * d.sh - d.ph + r * d.dh;
            if (h < 0 || h >= d.H) continue;
            const float* __restrict__ in = row + p * Q;
            float* __restrict__ out = plane + static_cast<std::int64_t>(h) * d.W + s * d.dw - d.pw;
            if (d.sw == 1)
              for (int q = q_lo; q < q_hi; ++q) out[q] += in[q];
            else
              for (int q = q_lo; q < q_hi; ++q) out[q * d.sw] += in[q];
          }
        }
    }
}

// Gather: dst[i][n PQ + pq] = src[n image + i PQ + pq] for i < rows, n < nb (rows of nb images,
// `image` floats apart, side by side).
void to_columns(const float* src, std::int64_t image, std::int64_t rows, std::int64_t PQ, int nb, float* dst) {
#pragma omp parallel for collapse(2) schedule(static) if (rows * PQ * nb > kParallelFloats)
  for (int n = 0; n < nb; ++n)
    for (std::int64_t i = 0; i < rows; ++i)
      std::memcpy(dst + i * nb * PQ + n * PQ, src + n * image + i * PQ, sizeof(float) * PQ);
}

// Scatter, the inverse of to_columns, adding bias[i] to row i when bias is given.
void from_columns(const float* src, std::int64_t rows, std::int64_t PQ, int nb, float* dst, std::int64_t image,
                  const float* bias, const BnEvalChannels* bn = nullptr, std::int64_t channel0 = 0) {
#pragma omp parallel for collapse(2) schedule(static) if (rows * PQ * nb > kParallelFloats)
  for (int n = 0; n < nb; ++n)
    for (std::int64_t i = 0; i < rows; ++i) {
      const float* in = src + i * nb * PQ + n * PQ;
      float* out = dst + n * image + i * PQ;
      const float add = bias ? bias[i] : 0.f;
      for (std::int64_t j = 0; j < PQ; ++j) out[j] = in[j] + add;
      if (bn) batch_norm2d_eval_plane(*bn, channel0 + i, out, PQ);
    }
}

// The panel buffers of the calling thread (columns, outputs, flipped weights, packed weights),
// reused between calls.
float* panel_buffer(int which, std::int64_t size) {
  thread_local std::vector<float> buffers[4];
  std::vector<float>& b = buffers[which];
  if (static_cast<std::int64_t>(b.size()) < size) b.resize(static_cast<std::size_t>(size));
  return b.data();
}

// Room for a PackedA of an M x K operand (the weights of a pass, packed once for its panels).
float* packing_room(std::int64_t M, std::int64_t K) { return panel_buffer(3, PackedA::floats_for(M, K)); }

// The sizes of one convolution as the panel loops use them.
struct Geometry {
  int Cg, Kg;
  std::int64_t CRS, PQ, HW;
  explicit Geometry(const Conv2dDims& d)
      : Cg(d.Cg()), Kg(d.Kg()), CRS(static_cast<std::int64_t>(d.Cg()) * d.R * d.S),
        PQ(static_cast<std::int64_t>(d.P) * d.Q), HW(static_cast<std::int64_t>(d.H) * d.W) {}
};

// Stride 1 and output rows as wide as the input's (Q = W): the GEMMs read the columns straight
// from the input (sgemm_conv_columns, implicit im2col) instead of an im2col matrix.
bool implicit_columns(const Conv2dDims& d) {
  return d.sh == 1 && d.sw == 1 && d.Q == d.W && !d.pointwise() && d.R * d.S <= kMaxConvTaps;
}

// The columns of group g's channels of a panel of nb images (x: image 0, channel 0 of the group).
ConvColumns columns_of(const Conv2dDims& d, const Geometry& e, const float* xg, int nb) {
  ConvColumns c;
  c.x = xg;
  c.image = d.C * e.HW;
  c.C = e.Cg, c.H = d.H, c.W = d.W, c.R = d.R, c.S = d.S, c.ph = d.ph, c.pw = d.pw, c.dh = d.dh, c.dw = d.dw;
  c.P = d.P, c.images = nb;
  return c;
}

// Backward-data of a stride-1 convolution as a forward one: dx[c, h, v] = sum_{k, r, s}
// dy[k, h + ph - r dh, v + pw - s dw] w[k, c, r, s] is the convolution of dy (K' channels,
// P x Q) with the flipped, transposed weights w'[c, k, r', s'] = w[k, c, R-1-r', S-1-s'] and
// padding dh (R-1) - ph, dw (S-1) - pw, which gives H x W back. When it too has Q' = W' (it does
// when the forward one has Q = W), its columns come straight from dy: no col2im, no column
// matrix.
// The flip reads and writes the K' C' R S weights once per call, a transposing pass; im2col's
// matrix costs C' R S floats per output pixel. So the flipped convolution is taken when the
// batch has at least 2 K' output pixels: measured (bench_conv2d, one thread, batch 2) it lost
// at 14 x 14 x 256 (392 pixels: 4.0 -> 4.8 ms) and 7 x 7 x 512 (98: 6.5 -> 8.8 ms) and won at
// 56 x 56 x 64 (6,272: 5.6 -> 4.1 ms).
bool implicit_backward_data(const Conv2dDims& d) {
  const std::int64_t pixels = static_cast<std::int64_t>(d.N) * d.H * d.W;
  return implicit_columns(d) && d.dh * (d.R - 1) >= d.ph && d.dw * (d.S - 1) >= d.pw && pixels >= 2 * d.Kg();
}

// w' of every group, (G, C', K' R S), in 32 x 32 blocks of (k, c): a block reads 32 runs of
// 32 R S floats of w and writes 32 runs of 32 R S floats of w' (a plain loop over k for each c
// wrote each R S run a whole K' R S apart and missed the cache every time: 3 ms for ResNet's
// 512 x 512 x 3 x 3).
const float* flipped_weights(const Conv2dDims& d, const Geometry& e, const float* w) {
  float* out = panel_buffer(2, static_cast<std::int64_t>(d.K) * e.CRS);
  const int RS = d.R * d.S;
  constexpr int kBlock = 32;
  for (int g = 0; g < d.G; ++g)
    for (int k0 = 0; k0 < e.Kg; k0 += kBlock)
      for (int c0 = 0; c0 < e.Cg; c0 += kBlock)
        for (int k = k0; k < std::min(k0 + kBlock, e.Kg); ++k)
          for (int c = c0; c < std::min(c0 + kBlock, e.Cg); ++c) {
            const float* from = w + (static_cast<std::int64_t>(g * e.Kg + k) * e.Cg + c) * RS;
            float* to = out + ((static_cast<std::int64_t>(g) * e.Cg + c) * e.Kg + k) * RS;
            for (int t = 0; t < RS; ++t) to[t] = from[RS - 1 - t];
          }
  return out;
}

// The columns of the flipped convolution: dy of group g for a panel of nb images.
ConvColumns dy_columns_of(const Conv2dDims& d, const Geometry& e, const float* dyg, int nb) {
  ConvColumns c;
  c.x = dyg;
  c.image = d.K * e.PQ;
  c.C = e.Kg, c.H = d.P, c.W = d.Q, c.R = d.R, c.S = d.S;
  c.ph = d.dh * (d.R - 1) - d.ph, c.pw = d.dw * (d.S - 1) - d.pw, c.dh = d.dh, c.dw = d.dw;
  c.P = d.H, c.images = nb;
  return c;
}

// The 3x3 convolutions that go through Winograd's F(2x2, 3x3) (kernels/cpu/winograd.h).
bool winograd_fits(const Conv2dDims& d) {
  return d.R == 3 && d.S == 3 && d.sh == 1 && d.sw == 1 && d.dh == 1 && d.dw == 1 && d.ph == 1 && d.pw == 1 &&
         d.G == 1;
}

// Conv3x3Algorithm::Measure: a plan per pass and shape (and whether the weights are frozen, and
// the thread count), made at its first call by timing both paths on that call's operands.
enum class Pass { Forward, BackwardData, BackwardWeight };
struct PlanKey {
  Pass pass;
  int N, C, K, H, W;
  bool frozen;
  int threads;
  auto operator<=>(const PlanKey&) const = default;
};
std::mutex g_plans_mutex;
std::map<PlanKey, bool> g_plans;  // -> Winograd
thread_local int t_forced = -1;   // while a plan is being measured: 0 direct, 1 Winograd

PlanKey plan_key(Pass pass, const Conv2dDims& d) {
  return {pass, d.N, d.C, d.K, d.H, d.W, weights_frozen(), omp_in_parallel() ? 1 : omp_get_max_threads()};
}
std::optional<bool> planned(const PlanKey& key) {
  std::lock_guard<std::mutex> lock(g_plans_mutex);
  const auto it = g_plans.find(key);
  if (it == g_plans.end()) return std::nullopt;
  return it->second;
}

// Winograd for this 3x3 shape: the switch (CXR_CPU_CONV3X3, tests; with measure, the plan made
// for this pass and shape), else at least min_channels on both sides and min_tiles 2 x 2 output
// tiles. With the weights frozen (evaluation, prediction) the tiles of one image count, not the
// batch's: the two paths round differently, and an image's prediction must not depend on the
// batch it came in (a sharded evaluation writes the single-process predictions bit for bit:
// tests/dist, step 3).
bool winograd_taken(const Conv2dDims& d, int min_channels, std::int64_t min_tiles, Pass pass) {
  if (!winograd_fits(d)) return false;
  if (t_forced >= 0) return t_forced == 1;
  switch (cpu_conv3x3_algorithm()) {
    case Conv3x3Algorithm::Direct: return false;
    case Conv3x3Algorithm::Winograd: return true;
    case Conv3x3Algorithm::Measure:
      if (const std::optional<bool> p = planned(plan_key(pass, d))) return *p;
      break;  // (not measured: the rule)
    case Conv3x3Algorithm::Auto: break;
  }
  const std::int64_t images = weights_frozen() ? 1 : d.N;
  const std::int64_t tiles = images * ((d.P + 1) / 2) * ((d.Q + 1) / 2);
  return d.C >= min_channels && d.K >= min_channels && tiles >= min_tiles;
}
// Measured (bench_conv2d conv2d/cpu3x3, 2 threads, Xeon; docs/speed.md), Winograd against the
// direct path: 1.1-1.9x faster at every ResNet-34 and DenseNet-121 3x3 shape with 49 tiles or
// more (14 x 14 for one image: 1.1x), and slower with 32 tiles or fewer (7 x 7 for one image:
// 0.47x; 2 x 2 planes in a batch of 32: 0.7x), where transforming the K C filters costs more
// than the products save. Fewer than 32 channels on either side was not measured.
bool winograd_pays(const Conv2dDims& d, Pass pass) { return winograd_taken(d, 32, 48, pass); }
// Backward-weight writes V and Mg out for every tile (kernels/cpu/winograd.h), and its GEMMs
// read them back from memory: measured the same way, it ran 1.1-1.5x the direct path with 128
// channels or more on both sides and at least 256 tiles (ResNet-34's layers 2-4 at 224 px,
// batch 16 and 32; layer 2 at 64 px, batch 32), and 0.6-0.96x with 64 channels (56 x 56 and
// 16 x 16 planes: 51 MB of V and Mg at batch 16) or 64 tiles and fewer.
bool winograd_pays_backward_weight(const Conv2dDims& d) {
  return winograd_taken(d, 128, 256, Pass::BackwardWeight);
}

// Measure: whether this pass of shape d (as winograd_taken sees it) still needs its plan.
bool needs_plan(Pass pass, const Conv2dDims& d) {
  return t_forced < 0 && winograd_fits(d) && cpu_conv3x3_algorithm() == Conv3x3Algorithm::Measure &&
         !planned(plan_key(pass, d));
}
// Times `run` (one call of the pass, overwriting its output) with the direct path and with
// Winograd, keeps the faster as the plan, and leaves the output of that path.
template <typename F>
void measure_plan(Pass pass, const Conv2dDims& d, F&& run) {
  struct Forced {  // winograd_taken's answer while measuring (also if run throws)
    explicit Forced(int path) { t_forced = path; }
    ~Forced() { t_forced = -1; }
  };
  double seconds[2];
  for (int winograd : {1, 0}) {
    const Forced forced(winograd);
    const double t0 = omp_get_wtime();
    run();
    seconds[winograd] = omp_get_wtime() - t0;
  }
  const bool winograd = seconds[1] < seconds[0];
  {
    std::lock_guard<std::mutex> lock(g_plans_mutex);
    g_plans[plan_key(pass, d)] = winograd;
  }
  if (winograd) run();  // the output is the direct path's until then
}

// The same convolution's backward-data as a forward one (the flipped convolution, see
// implicit_backward_data): K channels in, C out.
Conv2dDims flipped_dims(const Conv2dDims& d) {
  Conv2dDims f = d;
  std::swap(f.C, f.K);
  std::swap(f.H, f.P);
  std::swap(f.W, f.Q);
  f.ph = d.dh * (d.R - 1) - d.ph, f.pw = d.dw * (d.S - 1) - d.pw;
  return f;
}

// The B operand of the forward and backward-weight GEMMs for group g of a panel: im2col, or for
// 1x1 stride 1 the input itself (gathered when the panel holds several images).
const float* panel_columns(const Conv2dDims& d, const Geometry& e, const float* xg, int nb) {
  if (d.pointwise() && nb == 1) return xg;
  float* col = panel_buffer(0, e.CRS * nb * e.PQ);
  if (d.pointwise()) to_columns(xg, d.C * e.HW, e.Cg, e.PQ, nb, col);
  else im2col(d, xg, nb, col);
  return col;
}

// dy of group g for a panel as a (K', nb PQ) matrix.
const float* panel_dy(const Conv2dDims& d, const Geometry& e, const float* dyg, int nb) {
  if (nb == 1) return dyg;
  float* rows = panel_buffer(1, e.Kg * nb * e.PQ);
  to_columns(dyg, d.K * e.PQ, e.Kg, e.PQ, nb, rows);
  return rows;
}

// The depthwise loops of strided convolutions (stride 1: depthwise_padded.h) work on one
// (image, channel) plane at a time. Each plane body exists twice:
// wide (unit-stride rows in loops of their own, backward-weight's row sums in eight lanes,
// compiled for AVX2 + FMA by target_clones, the baseline where the CPU lacks it) and narrow (the
// plain loops, baseline code). Rows of at least kWideRow outputs take the wide one: measured on
// one core (Xeon with AVX-512, bench_conv2d effb0_dw*, CPU time), 112 x 112 planes run 1.3x
// (forward, backward-data) and 3x (backward-weight) faster wide, while 14 x 14 planes ran 1.15x
// (forward) and 1.4x (backward-weight) slower wide than narrow: the vector loops' set-up costs
// more than short rows save (AVX-512 clones were slower still). The body depends on the shape
// only, never on the thread count.
constexpr int kWideRow = 24;
#define CXR_INLINE_BODY __attribute__((always_inline)) inline
#define CXR_WIDE_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#define CXR_PLANE_VARIANTS(name, params, args)                  \
  CXR_WIDE_CLONES void name##_wide params { name<true> args; }  \
  void name##_narrow params { name<false> args; }

// kWide: the unit-stride rows get their own loop (it vectorises); otherwise one strided loop.
template <bool kWide>
CXR_INLINE_BODY void depthwise_forward_plane(const Conv2dDims& d, const float* plane, const float* wc,
                                                  float bias, float* out) {
  for (int p = 0; p < d.P * d.Q; ++p) out[p] = bias;
  for (int r = 0; r < d.R; ++r)
    for (int s = 0; s < d.S; ++s) {
      const float wv = wc[r * d.S + s];
      int q_lo, q_hi;
      valid_range(s * d.dw - d.pw, d.sw, d.W, d.Q, q_lo, q_hi);
      for (int p = 0; p < d.P; ++p) {
        const int h = p * d.sh - d.ph + r * d.dh;
        if (h < 0 || h >= d.H) continue;
        const float* in = plane + static_cast<std::int64_t>(h) * d.W + s * d.dw - d.pw;
        float* o = out + p * d.Q;
        if (kWide && d.sw == 1)
          for (int q = q_lo; q < q_hi; ++q) o[q] += wv * in[q];
        else
          for (int q = q_lo; q < q_hi; ++q) o[q] += wv * in[q * d.sw];
      }
    }
}

CXR_PLANE_VARIANTS(depthwise_forward_plane,
                   (const Conv2dDims& d, const float* plane, const float* wc, float bias, float* out),
                   (d, plane, wc, bias, out))

// Stride 1: the padded-plane kernels (kernels/cpu/depthwise_padded.h); the plane of the
// forward (and backward-weight), and of backward-data as the forward of dy with the flipped
// filter.
bool depthwise_padded(const Conv2dDims& d) { return d.sh == 1 && d.sw == 1; }
DepthwisePlane forward_plane(const Conv2dDims& d) { return {d.H, d.W, d.P, d.Q, d.R, d.S, d.dh, d.dw, d.ph, d.pw}; }
DepthwisePlane backward_data_plane(const Conv2dDims& d) {
  return {d.P, d.Q, d.H, d.W, d.R, d.S, d.dh, d.dw, (d.R - 1) * d.dh - d.ph, (d.S - 1) * d.dw - d.pw};
}

void depthwise_forward(const Conv2dDims& d, const float* x, const float* w, const float* b, float* y,
                       const BnEvalChannels* bn) {
  if (depthwise_padded(d)) {
    const DepthwisePlane plane = forward_plane(d);
#pragma omp parallel for schedule(static)
    for (int nc = 0; nc < d.N * d.C; ++nc) {
      const int c = nc % d.C;
      float* out = y + static_cast<std::int64_t>(nc) * d.P * d.Q;
      depthwise_plane_forward(plane, x + static_cast<std::int64_t>(nc) * d.H * d.W,
                              w + static_cast<std::int64_t>(c) * d.R * d.S, b ? b[c] : 0.f, out);
      if (bn) batch_norm2d_eval_plane(*bn, c, out, static_cast<std::int64_t>(d.P) * d.Q);
    }
    return;
  }
  const auto plane_fn = d.Q >= kWideRow ? depthwise_forward_plane_wide : depthwise_forward_plane_narrow;
#pragma omp parallel for schedule(static)
  for (int nc = 0; nc < d.N * d.C; ++nc) {
    const int c = nc % d.C;
    float* out = y + static_cast<std::int64_t>(nc) * d.P * d.Q;
    plane_fn(d, x + static_cast<std::int64_t>(nc) * d.H * d.W, w + static_cast<std::int64_t>(c) * d.R * d.S,
             b ? b[c] : 0.f, out);
    if (bn) batch_norm2d_eval_plane(*bn, c, out, static_cast<std::int64_t>(d.P) * d.Q);
  }
}

template <bool kWide>
CXR_INLINE_BODY void depthwise_backward_data_plane(const Conv2dDims& d, const float* g, const float* wc,
                                                        float* plane) {
  std::fill(plane, plane + static_cast<std::int64_t>(d.H) * d.W, 0.f);
  for (int r = 0; r < d.R; ++r)
    for (int s = 0; s < d.S; ++s) {
      const float wv = wc[r * d.S + s];
      int q_lo, q_hi;
      valid_range(s * d.dw - d.pw, d.sw, d.W, d.Q, q_lo, q_hi);
      for (int p = 0; p < d.P; ++p) {
        const int h = p * d.sh - d.ph + r * d.dh;
        if (h < 0 || h >= d.H) continue;
        float* o = plane + static_cast<std::int64_t>(h) * d.W + s * d.dw - d.pw;
        const float* gi = g + p * d.Q;
        if (kWide && d.sw == 1)
          for (int q = q_lo; q < q_hi; ++q) o[q] += wv * gi[q];
        else
          for (int q = q_lo; q < q_hi; ++q) o[q * d.sw] += wv * gi[q];
      }
    }
}

CXR_PLANE_VARIANTS(depthwise_backward_data_plane, (const Conv2dDims& d, const float* g, const float* wc, float* plane),
                   (d, g, wc, plane))

void depthwise_backward_data(const Conv2dDims& d, const float* dy, const float* w, float* dx) {
  const DepthwisePlane flipped_plane = backward_data_plane(d);
  if (depthwise_padded(d) && flipped_plane.ph >= 0 && flipped_plane.pw >= 0) {
    const int RS = d.R * d.S;
    const float* flipped = flipped_weights(d, Geometry(d), w);  // each channel's filter reversed (C' = K' = 1)
#pragma omp parallel for schedule(static)
    for (int nc = 0; nc < d.N * d.C; ++nc)
      depthwise_plane_forward(flipped_plane, dy + static_cast<std::int64_t>(nc) * d.P * d.Q,
                              flipped + static_cast<std::int64_t>(nc % d.C) * RS, 0.f,
                              dx + static_cast<std::int64_t>(nc) * d.H * d.W);
    return;
  }
  const auto plane_fn = d.Q >= kWideRow ? depthwise_backward_data_plane_wide : depthwise_backward_data_plane_narrow;
#pragma omp parallel for schedule(static)
  for (int nc = 0; nc < d.N * d.C; ++nc) {
    const int c = nc % d.C;
    plane_fn(d, dy + static_cast<std::int64_t>(nc) * d.P * d.Q,
                                  w + static_cast<std::int64_t>(c) * d.R * d.S,
                                  dx + static_cast<std::int64_t>(nc) * d.H * d.W);
  }
}

// sum_q g[q] x[q sw] over [lo, hi) in a fixed order. kWide: eight partial sums (lane j takes the
// q with (q - lo) % 8 == j), added pairwise, then the tail in order, so it vectorises without
// -ffast-math; otherwise one running sum.
template <bool kWide>
CXR_INLINE_BODY float row_dot(const float* g, const float* x, int sw, int lo, int hi) {
  int q = lo;
  float sum = 0.f;
  if (kWide) {
    float lane[8] = {};
    if (sw == 1)  // its own loop: unit stride vectorises
      for (; q + 8 <= hi; q += 8)
        for (int j = 0; j < 8; ++j) lane[j] += g[q + j] * x[q + j];
    else
      for (; q + 8 <= hi; q += 8)
        for (int j = 0; j < 8; ++j) lane[j] += g[q + j] * x[(q + j) * sw];
    sum = ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
  }
  for (; q < hi; ++q) sum += g[q] * x[q * sw];
  return sum;
}

// dw[c, r, s] for one channel: per (r, s) a double sum over images and rows of row_dot.
template <bool kWide>
CXR_INLINE_BODY void depthwise_backward_weight_channel(const Conv2dDims& d, const float* dy, const float* x,
                                                            int c, float* dwc) {
  for (int r = 0; r < d.R; ++r)
    for (int s = 0; s < d.S; ++s) {
      int q_lo, q_hi;
      valid_range(s * d.dw - d.pw, d.sw, d.W, d.Q, q_lo, q_hi);
      double sum = 0.0;
      for (int n = 0; n < d.N; ++n) {
        const std::int64_t nc = static_cast<std::int64_t>(n) * d.C + c;
        const float* plane = x + nc * d.H * d.W;
        const float* g = dy + nc * d.P * d.Q;
        for (int p = 0; p < d.P; ++p) {
          const int h = p * d.sh - d.ph + r * d.dh;
          if (h < 0 || h >= d.H) continue;
          sum += row_dot<kWide>(g + p * d.Q, plane + static_cast<std::int64_t>(h) * d.W + s * d.dw - d.pw, d.sw, q_lo,
                                q_hi);
        }
      }
      dwc[r * d.S + s] = static_cast<float>(sum);
    }
}

CXR_PLANE_VARIANTS(depthwise_backward_weight_channel,
                   (const Conv2dDims& d, const float* dy, const float* x, int c, float* dwc), (d, dy, x, c, dwc))

void depthwise_backward_weight(const Conv2dDims& d, const float* dy, const float* x, float* dw) {
  if (depthwise_padded(d)) {  // per channel: the planes' f32 sums added in image order, in double
    const DepthwisePlane plane = forward_plane(d);
    const int RS = d.R * d.S;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < d.C; ++c) {
      std::vector<double> sum(static_cast<std::size_t>(RS), 0.0);
      std::vector<float> g(static_cast<std::size_t>(RS));
      for (int n = 0; n < d.N; ++n) {
        const std::int64_t nc = static_cast<std::int64_t>(n) * d.C + c;
        depthwise_plane_weight_grad(plane, x + nc * d.H * d.W, dy + nc * d.P * d.Q, g.data());
        for (int t = 0; t < RS; ++t) sum[static_cast<std::size_t>(t)] += g[static_cast<std::size_t>(t)];
      }
      for (int t = 0; t < RS; ++t)
        dw[static_cast<std::int64_t>(c) * RS + t] = static_cast<float>(sum[static_cast<std::size_t>(t)]);
    }
    return;
  }
  const auto channel_fn =
      d.Q >= kWideRow ? depthwise_backward_weight_channel_wide : depthwise_backward_weight_channel_narrow;
#pragma omp parallel for schedule(static)
  for (int c = 0; c < d.C; ++c) channel_fn(d, dy, x, c, dw + static_cast<std::int64_t>(c) * d.R * d.S);
}

}  // namespace

std::size_t cpu_conv3x3_plan_count() {
  std::lock_guard<std::mutex> lock(g_plans_mutex);
  return g_plans.size();
}

void clear_cpu_conv3x3_plans() {
  std::lock_guard<std::mutex> lock(g_plans_mutex);
  g_plans.clear();
}

void conv2d_forward(const Conv2dDims& d, const float* x, const float* w, const float* b, float* y,
                    const BnEvalChannels* bn) {
  if (d.depthwise()) return depthwise_forward(d, x, w, b, y, bn);
  if (needs_plan(Pass::Forward, d)) return measure_plan(Pass::Forward, d, [&] { conv2d_forward(d, x, w, b, y, bn); });
  if (winograd_pays(d, Pass::Forward)) return winograd3x3_forward({d.N, d.C, d.K, d.H, d.W}, x, w, b, y, bn);
  const Geometry e(d);
  const int panel = panel_images(d);
  // w[g], packed once for every panel (per panel with groups), or once for the whole scope when
  // the weights are frozen (kernels/cpu/frozen_weights.h)
  std::optional<PackedA> packed;
  const PackedA* weights = nullptr;
  const bool implicit = implicit_columns(d);
  for (int n0 = 0; n0 < d.N; n0 += panel) {
    const int nb = std::min(panel, d.N - n0);
    for (int g = 0; g < d.G; ++g) {
      const float* xg = x + (static_cast<std::int64_t>(n0) * d.C + g * e.Cg) * e.HW;
      float* yg = y + (static_cast<std::int64_t>(n0) * d.K + g * e.Kg) * e.PQ;
      const float* bg = b ? b + g * e.Kg : nullptr;
      if (!weights || d.G > 1) {
        const float* wg = w + g * e.Kg * e.CRS;
        weights = frozen_packed_a(false, e.Kg, e.CRS, wg, e.CRS);
        if (!weights) weights = &packed.emplace(false, e.Kg, e.CRS, wg, e.CRS, packing_room(e.Kg, e.CRS));
      }
      const ConvColumns cols = columns_of(d, e, xg, nb);
      const float* col = implicit ? nullptr : panel_columns(d, e, xg, nb);
      // Y (Kg, ld) = w[g] (Kg, C' R S) times the columns (+ row_bias[k] on row k)
      const auto product = [&](float* out, std::int64_t ld, const float* row_bias) {
        if (implicit) sgemm_conv_columns(*weights, 1.f, cols, 0.f, out, ld, row_bias);
        else sgemm(*weights, ld, 1.f, col, ld, 0.f, out, ld, row_bias);
      };
      if (nb == 1) {  // straight into y, the bias added where the GEMM stores its tiles
        product(yg, e.PQ, bg);
        if (bn) {
#pragma omp parallel for schedule(static) if (e.Kg * e.PQ > kParallelFloats)
          for (int k = 0; k < e.Kg; ++k) batch_norm2d_eval_plane(*bn, g * e.Kg + k, yg + k * e.PQ, e.PQ);
        }
      } else {
        float* out = panel_buffer(1, e.Kg * nb * e.PQ);
        product(out, nb * e.PQ, nullptr);
        from_columns(out, e.Kg, e.PQ, nb, yg, d.K * e.PQ, bg, bn, g * e.Kg);
      }
    }
  }
}

void conv2d_backward_data(const Conv2dDims& d, const float* dy, const float* w, float* dx) {
  if (d.depthwise()) return depthwise_backward_data(d, dy, w, dx);
  if (needs_plan(Pass::BackwardData, flipped_dims(d)))
    return measure_plan(Pass::BackwardData, flipped_dims(d), [&] { conv2d_backward_data(d, dy, w, dx); });
  if (winograd_pays(flipped_dims(d), Pass::BackwardData))
    return winograd3x3_backward_data({d.N, d.C, d.K, d.H, d.W}, dy, w, dx);
  const Geometry e(d);
  const int panel = panel_images(d);
  const float* flipped = implicit_backward_data(d) ? flipped_weights(d, e, w) : nullptr;
  const std::int64_t KRS = static_cast<std::int64_t>(e.Kg) * d.R * d.S;
  std::optional<PackedA> packed;  // w'[g] (C', K' R S) or w[g]^T (C' R S, K'), packed once for every panel
  for (int n0 = 0; n0 < d.N; n0 += panel) {
    const int nb = std::min(panel, d.N - n0);
    const std::int64_t cols = nb * e.PQ;
    for (int g = 0; g < d.G; ++g) {
      const float* dy_images = dy + (static_cast<std::int64_t>(n0) * d.K + g * e.Kg) * e.PQ;
      float* dxg = dx + (static_cast<std::int64_t>(n0) * d.C + g * e.Cg) * e.HW;
      if (!packed || d.G > 1) {
        if (flipped) packed.emplace(false, e.Cg, KRS, flipped + g * e.Cg * KRS, KRS, packing_room(e.Cg, KRS));
        else packed.emplace(true, e.CRS, e.Kg, w + g * e.Kg * e.CRS, e.CRS, packing_room(e.CRS, e.Kg));
      }
      if (flipped) {  // the flipped convolution of dy, its columns read from dy itself
        const ConvColumns dy_cols = dy_columns_of(d, e, dy_images, nb);
        if (nb == 1) {
          sgemm_conv_columns(*packed, 1.f, dy_cols, 0.f, dxg, e.HW);
        } else {
          float* out = panel_buffer(1, e.Cg * nb * e.HW);
          sgemm_conv_columns(*packed, 1.f, dy_cols, 0.f, out, nb * e.HW);
          from_columns(out, e.Cg, e.HW, nb, dxg, d.C * e.HW, nullptr);
        }
        continue;
      }
      const float* dyg = panel_dy(d, e, dy_images, nb);
      if (d.pointwise() && nb == 1) {  // dx = w^T dy in place
        sgemm(*packed, e.PQ, 1.f, dyg, e.PQ, 0.f, dxg, e.PQ);
        continue;
      }
      float* col = panel_buffer(0, e.CRS * cols);
      sgemm(*packed, cols, 1.f, dyg, cols, 0.f, col, cols);
      if (d.pointwise()) from_columns(col, e.Cg, e.PQ, nb, dxg, d.C * e.HW, nullptr);
      else col2im(d, col, nb, dxg);
    }
  }
}

void conv2d_backward_weight(const Conv2dDims& d, const float* dy, const float* x, float* dw) {
  if (d.depthwise()) return depthwise_backward_weight(d, dy, x, dw);
  if (needs_plan(Pass::BackwardWeight, d))
    return measure_plan(Pass::BackwardWeight, d, [&] { conv2d_backward_weight(d, dy, x, dw); });
  if (winograd_pays_backward_weight(d)) return winograd3x3_backward_weight({d.N, d.C, d.K, d.H, d.W}, x, dy, dw);
  const Geometry e(d);
  const int panel = panel_images(d);
  if (d.N <= 0) return std::fill(dw, dw + static_cast<std::int64_t>(d.K) * e.CRS, 0.f);
  for (int n0 = 0; n0 < d.N; n0 += panel) {  // panels in order: a fixed summation order
    const int nb = std::min(panel, d.N - n0);
    const std::int64_t cols = nb * e.PQ;
    const float beta = n0 == 0 ? 0.f : 1.f;  // the first panel writes dw (no zeroing pass)
    for (int g = 0; g < d.G; ++g) {
      const float* dyg = panel_dy(d, e, dy + (static_cast<std::int64_t>(n0) * d.K + g * e.Kg) * e.PQ, nb);
      const float* xg = x + (static_cast<std::int64_t>(n0) * d.C + g * e.Cg) * e.HW;
      float* dwg = dw + g * e.Kg * e.CRS;
      if (implicit_columns(d)) {
        sgemm_conv_columns(true, e.Kg, 1.f, dyg, cols, columns_of(d, e, xg, nb), beta, dwg, e.CRS);
        continue;
      }
      const float* col = panel_columns(d, e, xg, nb);
      sgemm(false, true, e.Kg, e.CRS, cols, 1.f, dyg, cols, col, cols, beta, dwg, e.CRS);
    }
  }
}

void conv2d_backward_bias(const Conv2dDims& d, const float* dy, float* db) {
  const std::int64_t PQ = static_cast<std::int64_t>(d.P) * d.Q;
#pragma omp parallel for schedule(static) if (static_cast<std::int64_t>(d.N) * d.K * PQ > (1 << 16))
  for (int k = 0; k < d.K; ++k) {
    double sum = 0.0;
    for (int n = 0; n < d.N; ++n) {
      const float* g = dy + (static_cast<std::int64_t>(n) * d.K + k) * PQ;
      float row = 0.f;
      for (std::int64_t i = 0; i < PQ; ++i) row += g[i];
      sum += row;
    }
    db[k] = static_cast<float>(sum);
  }
}

}  // namespace cxr::cpu
