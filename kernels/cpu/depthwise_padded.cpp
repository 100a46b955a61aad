// Stride-1 depthwise planes through a zero-padded copy (math and shapes in
// kernels/cpu/depthwise_padded.h).
//
// The buffer holds input rows -ph .. P - 1 - ph + (R-1) dh (Hb = P + (R-1) dh rows) and columns
// -pw .. Qv - 1 - pw + (S-1) dw (Wb = Qv + (S-1) dw), Qv = Q rounded up to 8, zero outside the
// plane. Output row p, lanes q0 .. q0 + 7, is then
//   bias + sum_r sum_s f[r, s] * buffer[p + r dh][q0 + s dw .. + 8)
// one unaligned load and one FMA per tap and 8 outputs. The old loops (conv2d.cpp's narrow body)
// clipped every (row, tap) to the plane and ran 7 or 14 scalar FMAs at a time: ConvNeXt-Tiny's
// 7x7 on 14 x 14 planes ran at 13 GFLOP/s on two cores.
// Memory traffic per plane: the plane read once and copied into the buffer (H W floats plus
// the border), the output written once; the buffer (at most ~60 KiB for 56 x 56 with 7x7) stays
// in L1/L2 while R S shifted rows are read from it.
// Backward-weight keeps 8-lane partial sums per tap of a filter row, over the output rows in
// order, then adds the lanes pairwise: a fixed order, independent of the thread count (the
// caller sums planes in image order).
#include "kernels/cpu/depthwise_padded.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/lanes8.h"

namespace cxr::cpu {

namespace {

using namespace lanes8;

constexpr int kMaxS = 8;  // backward-weight keeps S vector sums of one filter row in registers

int round_up(int v, int m) { return (v + m - 1) / m * m; }

// The calling thread's padded buffer, filled from `in` (H x W): Hb x Wb, row i = input row
// i - ph, column j = input column j - pw.
struct Padded {
  const float* data;
  int Hb, Wb;
};

CXR_INLINE Padded pad_plane(const DepthwisePlane& d, const float* in, std::vector<float>& room) {
  const int Qv = round_up(d.Q, kLanes);
  const int Hb = d.P + (d.R - 1) * d.dh, Wb = Qv + (d.S - 1) * d.dw;
  room.assign(static_cast<std::size_t>(Hb) * Wb + kLanes, 0.f);
  for (int i = 0; i < Hb; ++i) {
    const int h = i - d.ph;
    if (h < 0 || h >= d.H) continue;
    const int j0 = std::max(0, d.pw), j1 = std::min(Wb, d.W + d.pw);  // columns inside the plane
    if (j0 < j1)
      std::memcpy(room.data() + static_cast<std::int64_t>(i) * Wb + j0,
                  in + static_cast<std::int64_t>(h) * d.W + j0 - d.pw, sizeof(float) * (j1 - j0));
  }
  return {room.data(), Hb, Wb};
}

// The plane's output vectors (row p, lanes q0 .. q0 + 7), numbered row by row, go kGroup at a
// time: each tap's weight is applied to kGroup independent accumulators, whose R S chained FMAs
// then overlap (one accumulator at a time waited out each FMA's latency: a 7x7 filter is 49 in
// a chain). Every output still gets bias + its taps in order: the same bits.
constexpr int kGroup = 4;

CXR_INLINE void forward_body(const DepthwisePlane& d, const float* in, const float* filter, float bias, float* out) {
  thread_local std::vector<float> room;
  const Padded b = pad_plane(d, in, room);
  const int per_row = (d.Q + kLanes - 1) / kLanes, vectors = d.P * per_row;
  for (int t0 = 0; t0 < vectors; t0 += kGroup) {
    const int n = std::min(kGroup, vectors - t0);
    const float* at[kGroup];  // each vector's first input: buffer row p, column q0
    v8 acc[kGroup];
    for (int j = 0; j < kGroup; ++j) {
      const int t = t0 + std::min(j, n - 1), p = t / per_row, q0 = t % per_row * kLanes;
      at[j] = b.data + static_cast<std::int64_t>(p) * b.Wb + q0;
      acc[j] = v8{} + bias;
    }
    for (int r = 0; r < d.R; ++r) {
      const std::int64_t down = static_cast<std::int64_t>(r) * d.dh * b.Wb;
      const float* f = filter + r * d.S;
      for (int s = 0; s < d.S; ++s)
        for (int j = 0; j < kGroup; ++j) acc[j] += f[s] * load8(at[j] + down + s * d.dw);
    }
    for (int j = 0; j < n; ++j) {
      const int t = t0 + j, p = t / per_row, q0 = t % per_row * kLanes;
      float* o = out + static_cast<std::int64_t>(p) * d.Q + q0;
      if (q0 + kLanes <= d.Q) std::memcpy(o, &acc[j], sizeof acc[j]);
      else for (int k = 0; k < d.Q - q0; ++k) o[k] = acc[j][k];
    }
  }
}

CXR_INLINE void weight_grad_body(const DepthwisePlane& d, const float* in, const float* dy, float* g) {
  thread_local std::vector<float> room, dy_room;
  const Padded b = pad_plane(d, in, room);
  const int Qv = round_up(d.Q, kLanes);
  dy_room.assign(static_cast<std::size_t>(d.P) * Qv, 0.f);  // dy with zero lanes past Q
  for (int p = 0; p < d.P; ++p)
    std::memcpy(dy_room.data() + static_cast<std::int64_t>(p) * Qv, dy + static_cast<std::int64_t>(p) * d.Q,
                sizeof(float) * d.Q);
  for (int r = 0; r < d.R; ++r) {
    v8 acc[kMaxS] = {};
    for (int p = 0; p < d.P; ++p) {
      const float* row = b.data + static_cast<std::int64_t>(p + r * d.dh) * b.Wb;
      const float* gy = dy_room.data() + static_cast<std::int64_t>(p) * Qv;
      for (int q0 = 0; q0 < Qv; q0 += kLanes) {
        const v8 gv = load8(gy + q0);
        for (int s = 0; s < d.S; ++s) acc[s] += gv * load8(row + q0 + s * d.dw);
      }
    }
    for (int s = 0; s < d.S; ++s) {
      const v8 a = acc[s];
      g[r * d.S + s] = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
    }
  }
}

CXR_CLONES void forward_clone(const DepthwisePlane& d, const float* in, const float* filter, float bias, float* out) {
  forward_body(d, in, filter, bias, out);
}

CXR_CLONES void weight_grad_clone(const DepthwisePlane& d, const float* in, const float* dy, float* g) {
  weight_grad_body(d, in, dy, g);
}

}  // namespace

void depthwise_plane_forward(const DepthwisePlane& d, const float* in, const float* filter, float bias, float* out) {
  forward_clone(d, in, filter, bias, out);
}

void depthwise_plane_weight_grad(const DepthwisePlane& d, const float* in, const float* dy, float* g) {
  if (d.S > kMaxS) {  // not in the models; one tap at a time
    for (int r = 0; r < d.R; ++r)
      for (int s = 0; s < d.S; ++s) {
        float sum = 0.f;
        for (int p = 0; p < d.P; ++p)
          for (int q = 0; q < d.Q; ++q) {
            const int h = p - d.ph + r * d.dh, w = q - d.pw + s * d.dw;
            if (h >= 0 && h < d.H && w >= 0 && w < d.W) sum += dy[p * d.Q + q] * in[h * d.W + w];
          }
        g[r * d.S + s] = sum;
      }
    return;
  }
  weight_grad_clone(d, in, dy, g);
}

}  // namespace cxr::cpu
