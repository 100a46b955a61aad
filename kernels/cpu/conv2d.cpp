// conv2d on the CPU (math and shapes in kernels/conv2d.h).
//
// conv2d_*_reference<T>: the sums of the definition as plain loops, float and double; the
// specification the tests check everything else against.
//
// The fast f32 path, per image n and group g (C' = C/G, K' = K/G, PQ = P Q):
//   forward:         col = im2col(x[n, g])            (C' R S, PQ)
//                    y[n, g] = w[g] (K', C' R S) col  + bias            blocked sgemm
//   backward-data:   col = w[g]^T (C' R S, K') dy[n, g] (K', PQ)       sgemm, trans A
//                    dx[n, g] = col2im(col)           (scatter-add of the patches)
//   backward-weight: dw[g] += dy[n, g] (K', PQ) col^T (PQ, C' R S)     sgemm, trans B
//   backward-bias:   db[k] = sum_{n,p,q} dy[n,k,p,q]
//   1x1 stride 1 pad 0: col is x[n, g] itself (no im2col, no col2im); 1x1 stride 2 goes
//   through im2col, which then is just a subsampling copy (C' PQ floats).
//   depthwise (G == C == K): direct loops, R S FMAs per output, memory bound; a GEMM of
//   K' = C' = 1 would waste the micro-kernel.
// Threads: with at least as many (image, group) tasks as threads, OpenMP runs whole tasks
// (each with its own col buffer; sgemm then runs single-threaded); otherwise the tasks run
// one after the other and sgemm uses all threads. backward-weight sums per-thread partial dw
// in thread order, so results do not depend on scheduling.
// Memory: col is C' R S P Q floats per thread (ResNet-50 conv2 at 56x56: 576 x 3136 = 7 MiB).
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/conv2d.h"
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

// col[(c R + r) S + s][p Q + q] = x[c, p sh - ph + r dh, q sw - pw + s dw] (0 outside); x: (C', H, W).
void im2col(const Conv2dDims& d, const float* x, float* col) {
  const int PQ = d.P * d.Q;
  for (int c = 0; c < d.Cg(); ++c)
    for (int r = 0; r < d.R; ++r)
      for (int s = 0; s < d.S; ++s) {
        float* row = col + (static_cast<std::int64_t>(c * d.R + r) * d.S + s) * PQ;
        const float* plane = x + static_cast<std::int64_t>(c) * d.H * d.W;
        int q_lo, q_hi;
        valid_range(s * d.dw - d.pw, d.sw, d.W, d.Q, q_lo, q_hi);
        for (int p = 0; p < d.P; ++p) {
          float* out = row + p * d.Q;
          const int h = p * d.sh - d.ph + r * d.dh;
          if (h < 0 || h >= d.H) {
            std::fill(out, out + d.Q, 0.f);
            continue;
          }
          const float* in = plane + static_cast<std::int64_t>(h) * d.W + s * d.dw - d.pw;
          std::fill(out, out + q_lo, 0.f);
          if (d.sw == 1) std::memcpy(out + q_lo, in + q_lo, sizeof(float) * (q_hi - q_lo));
          else for (int q = q_lo; q < q_hi; ++q) out[q] = in[q * d.sw];
          std::fill(out + q_hi, out + d.Q, 0.f);
        }
      }
}

// dx[c, h, v] += col[...] for every patch position, the adjoint of im2col; dx: (C', H, W) zeroed.
void col2im(const Conv2dDims& d, const float* col, float* dx) {
  const int PQ = d.P * d.Q;
  for (int c = 0; c < d.Cg(); ++c)
    for (int r = 0; r < d.R; ++r)
      for (int s = 0; s < d.S; ++s) {
        const float* row = col + (static_cast<std::int64_t>(c * d.R + r) * d.S + s) * PQ;
        float* plane = dx + static_cast<std::int64_t>(c) * d.H * d.W;
        int q_lo, q_hi;
        valid_range(s * d.dw - d.pw, d.sw, d.W, d.Q, q_lo, q_hi);
        for (int p = 0; p < d.P; ++p) {
          const int h = p * d.sh - d.ph + r * d.dh;
          if (h < 0 || h >= d.H) continue;
          const float* in = row + p * d.Q;
          float* out = plane + static_cast<std::int64_t>(h) * d.W + s * d.dw - d.pw;
          for (int q = q_lo; q < q_hi; ++q) out[q * d.sw] += in[q];
        }
      }
}

// Runs body(n, g, thread) for every (image, group): whole tasks in parallel when there are
// enough of them, else one after the other (sgemm then parallelises inside). The static
// schedule maps tasks to threads the same way in every run, so the per-thread partial sums
// of backward-weight, and therefore training, are reproducible for a given thread count.
template <class Body>
void for_each_task(const Conv2dDims& d, Body body) {
  const int tasks = d.N * d.G;
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (threads > 1 && tasks >= threads) {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int t = 0; t < tasks; ++t) body(t / d.G, t % d.G, omp_get_thread_num());
  } else {
    for (int t = 0; t < tasks; ++t) body(t / d.G, t % d.G, 0);
  }
}

// One im2col buffer per thread (OpenMP workers are distinct OS threads), reused between calls.
std::vector<float>& col_buffer(std::size_t size) {
  thread_local std::vector<float> buffer;
  if (buffer.size() < size) buffer.resize(size);
  return buffer;
}

void depthwise_forward(const Conv2dDims& d, const float* x, const float* w, const float* b, float* y) {
#pragma omp parallel for schedule(static)
  for (int nc = 0; nc < d.N * d.C; ++nc) {
    const int c = nc % d.C;
    const float* plane = x + static_cast<std::int64_t>(nc) * d.H * d.W;
    const float* wc = w + static_cast<std::int64_t>(c) * d.R * d.S;
    float* out = y + static_cast<std::int64_t>(nc) * d.P * d.Q;
    const float bias = b ? b[c] : 0.f;
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
          for (int q = q_lo; q < q_hi; ++q) o[q] += wv * in[q * d.sw];
        }
      }
  }
}

void depthwise_backward_data(const Conv2dDims& d, const float* dy, const float* w, float* dx) {
#pragma omp parallel for schedule(static)
  for (int nc = 0; nc < d.N * d.C; ++nc) {
    const int c = nc % d.C;
    const float* g = dy + static_cast<std::int64_t>(nc) * d.P * d.Q;
    const float* wc = w + static_cast<std::int64_t>(c) * d.R * d.S;
    float* plane = dx + static_cast<std::int64_t>(nc) * d.H * d.W;
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
          for (int q = q_lo; q < q_hi; ++q) o[q * d.sw] += wv * gi[q];
        }
      }
  }
}

void depthwise_backward_weight(const Conv2dDims& d, const float* dy, const float* x, float* dw) {
#pragma omp parallel for schedule(static)
  for (int c = 0; c < d.C; ++c)
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
            const float* in = plane + static_cast<std::int64_t>(h) * d.W + s * d.dw - d.pw;
            const float* gi = g + p * d.Q;
            float row = 0.f;
            for (int q = q_lo; q < q_hi; ++q) row += gi[q] * in[q * d.sw];
            sum += row;
          }
        }
        dw[(static_cast<std::int64_t>(c) * d.R + r) * d.S + s] = static_cast<float>(sum);
      }
}

}  // namespace

void conv2d_forward(const Conv2dDims& d, const float* x, const float* w, const float* b, float* y) {
  if (d.depthwise()) return depthwise_forward(d, x, w, b, y);
  const int Cg = d.Cg(), Kg = d.Kg();
  const std::int64_t CRS = static_cast<std::int64_t>(Cg) * d.R * d.S, PQ = static_cast<std::int64_t>(d.P) * d.Q;
  const std::int64_t HW = static_cast<std::int64_t>(d.H) * d.W;
  const bool direct = d.pointwise();
  for_each_task(d, [&](int n, int g, int) {
    const float* xg = x + (static_cast<std::int64_t>(n) * d.C + g * Cg) * HW;
    float* yg = y + (static_cast<std::int64_t>(n) * d.K + g * Kg) * PQ;
    const float* wg = w + g * Kg * CRS;
    if (b)
      for (int k = 0; k < Kg; ++k) std::fill(yg + k * PQ, yg + (k + 1) * PQ, b[g * Kg + k]);
    const float* cols = xg;
    if (!direct) {
      std::vector<float>& buf = col_buffer(static_cast<std::size_t>(CRS * PQ));
      im2col(d, xg, buf.data());
      cols = buf.data();
    }
    sgemm(false, false, Kg, PQ, CRS, 1.f, wg, CRS, cols, PQ, b ? 1.f : 0.f, yg, PQ);
  });
}

void conv2d_backward_data(const Conv2dDims& d, const float* dy, const float* w, float* dx) {
  if (d.depthwise()) return depthwise_backward_data(d, dy, w, dx);
  const int Cg = d.Cg(), Kg = d.Kg();
  const std::int64_t CRS = static_cast<std::int64_t>(Cg) * d.R * d.S, PQ = static_cast<std::int64_t>(d.P) * d.Q;
  const std::int64_t HW = static_cast<std::int64_t>(d.H) * d.W;
  const bool direct = d.pointwise();
  for_each_task(d, [&](int n, int g, int) {
    const float* dyg = dy + (static_cast<std::int64_t>(n) * d.K + g * Kg) * PQ;
    float* dxg = dx + (static_cast<std::int64_t>(n) * d.C + g * Cg) * HW;
    const float* wg = w + g * Kg * CRS;
    if (direct) {
      sgemm(true, false, Cg, PQ, Kg, 1.f, wg, CRS, dyg, PQ, 0.f, dxg, PQ);
      return;
    }
    std::vector<float>& buf = col_buffer(static_cast<std::size_t>(CRS * PQ));
    sgemm(true, false, CRS, PQ, Kg, 1.f, wg, CRS, dyg, PQ, 0.f, buf.data(), PQ);
    std::fill(dxg, dxg + Cg * HW, 0.f);
    col2im(d, buf.data(), dxg);
  });
}

void conv2d_backward_weight(const Conv2dDims& d, const float* dy, const float* x, float* dw) {
  if (d.depthwise()) return depthwise_backward_weight(d, dy, x, dw);
  const int Cg = d.Cg(), Kg = d.Kg();
  const std::int64_t CRS = static_cast<std::int64_t>(Cg) * d.R * d.S, PQ = static_cast<std::int64_t>(d.P) * d.Q;
  const std::int64_t HW = static_cast<std::int64_t>(d.H) * d.W;
  const std::int64_t wsize = static_cast<std::int64_t>(d.K) * CRS;
  const bool direct = d.pointwise();
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const bool parallel_tasks = threads > 1 && d.N * d.G >= threads;
  // Thread t accumulates into partial[t] (thread 0 straight into dw); summed in thread order.
  std::vector<std::vector<float>> partial(parallel_tasks ? threads : 1);
  std::fill(dw, dw + wsize, 0.f);
  for_each_task(d, [&](int n, int g, int thread) {
    float* acc = dw;
    if (thread > 0) {
      std::vector<float>& mine = partial[static_cast<std::size_t>(thread)];
      if (mine.empty()) mine.assign(static_cast<std::size_t>(wsize), 0.f);
      acc = mine.data();
    }
    const float* dyg = dy + (static_cast<std::int64_t>(n) * d.K + g * Kg) * PQ;
    const float* xg = x + (static_cast<std::int64_t>(n) * d.C + g * Cg) * HW;
    const float* cols = xg;
    if (!direct) {
      std::vector<float>& buf = col_buffer(static_cast<std::size_t>(CRS * PQ));
      im2col(d, xg, buf.data());
      cols = buf.data();
    }
    sgemm(false, true, Kg, CRS, PQ, 1.f, dyg, PQ, cols, PQ, 1.f, acc + g * Kg * CRS, CRS);
  });
  for (std::size_t t = 1; t < partial.size(); ++t)
    if (!partial[t].empty())
      for (std::int64_t i = 0; i < wsize; ++i) dw[i] += partial[t][static_cast<std::size_t>(i)];
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
