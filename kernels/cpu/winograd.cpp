// Winograd F(2x2, 3x3) on the CPU (the math and shapes are in kernels/cpu/winograd.h).
//
// The tiles are taken in blocks of whole tile rows (128-256 tiles, across images when
// the planes are small), one block at a time per thread, and a block goes through the three
// steps while its data stays in the core's L2:
//   1. input transform: for each channel, the block's input rows are copied into a small buffer
//      with zero borders, and V[xi][c][t] = (B^T d B)[xi] is computed for 8 tiles of a tile row
//      at a time (8-lane vectors: each of the 4 rows of the 8 tiles' 4 x 4 inputs is two pairs of
//      loads split into even and odd columns), additions only;
//   2. 16 products M[xi] (K, T) = U[xi] (K, C) V[xi] (C, T) by the blocked GEMM on this thread
//      (kernels/gemm.h: sgemm with U[xi] packed once for the whole call, PackedA);
//   3. output transform: Y = A^T M A for 8 tiles at a time, the bias added, the 2 x 2 outputs
//      interleaved back into two rows of y (the evaluation batch norm applied to those rows).
// Backward-data is the same with the flipped filters; backward-weight (winograd3x3_backward_weight)
// transforms every tile of x and dy first and sums over them with 16 GEMMs.
// Memory traffic per block of T tiles: the input rows once (4 T C floats), V (16 T C) written
// and read and M (16 T K) written and read within L2, the output once (4 T K); U (16 K C,
// packed) read once per block from L2 / L3. FLOPs: 2 x 16 K C per tile (against 2 x 36 K C for
// the direct convolution), plus 48 C + 28 K additions per tile for the transforms.
// Every output is computed by one block whatever thread takes it, and a block's arithmetic does
// not depend on the thread count: the result does not either.
#include "kernels/cpu/winograd.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/batch_norm.h"
#include "kernels/cpu/frozen_weights.h"
#include "kernels/cpu/lanes8.h"
#include "kernels/gemm.h"

namespace cxr::cpu {

namespace {

using namespace lanes8;

constexpr int kPositions = 16;    // xi = 4 a + b
// tiles per block (rounded up to whole tile rows; see Layout)
constexpr std::int64_t kBlockWork = 49152, kMinBlockTiles = 128, kMaxBlockTiles = 256;

CXR_INLINE v8 even(const v8& lo, const v8& hi) { return __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14); }
CXR_INLINE v8 odd(const v8& lo, const v8& hi) { return __builtin_shufflevector(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15); }

// The sizes of one call as the block loops use them.
struct Layout {
  int N, C, K, H, W;
  int th, tw;                     // tile rows per image, tiles per tile row
  int rows_per_block;             // tile rows per block
  std::int64_t tile_rows;         // N th
  std::int64_t ld;                // leading dimension of the V and M blocks (tiles, plus slack)
  int band_width;                 // floats per row of the padded input buffer
  Layout(const Winograd3x3& s, int threads)
      : N(s.N), C(s.C), K(s.K), H(s.H), W(s.W), th((s.H + 1) / 2), tw((s.W + 1) / 2) {
    tile_rows = static_cast<std::int64_t>(N) * th;
    // Tiles per block: kBlockWork / (C + K) between kMinBlockTiles and kMaxBlockTiles. Measured
    // (bench_conv2d conv2d/cpu3x3, ResNet-34 at batch 16 and 32, 2 threads), 256 tiles ran the 64-
    // channel layer 1.15x faster than 128, 192 the 128-channel one 1.08x, and 128 was best for
    // 256 and 512 channels (larger blocks: V and M leave L2).
    const std::int64_t target = std::clamp<std::int64_t>(kBlockWork / (C + K), kMinBlockTiles, kMaxBlockTiles);
    std::int64_t rows = std::max<std::int64_t>(1, (target + tw - 1) / tw);
    // Few blocks: as many for every thread (3 blocks of 7 x 7 planes on 2 threads took 1.4x as
    // long as 2 or 4).
    std::int64_t blocks = (tile_rows + rows - 1) / rows;
    if (blocks < 4 * threads) {
      blocks = (blocks + threads - 1) / threads * threads;
      rows = std::max<std::int64_t>(1, (tile_rows + blocks - 1) / blocks);
    }
    rows_per_block = static_cast<int>(rows);
    // the last vector of a tile row stores kLanes - 1 tiles past the block (slack) and, rounded
    // to 16 floats, rows start on a cache line
    ld = (static_cast<std::int64_t>(rows_per_block) * tw + kLanes + 15) / 16 * 16;
    // tile tj reads buffer columns 2 tj .. 2 tj + 3; the vectors of the last group read up to
    // 2 (tw - 1) + 2 kLanes + 1
    band_width = 2 * tw + 2 * kLanes;
  }
};

// A band: tile rows ti0 .. ti0 + rows - 1 of image n, whose tiles are the columns col0 ..
// col0 + rows tw - 1 of the block.
struct Band {
  int n, ti0, rows;
  std::int64_t col0;
};

// V[xi][c][col0 + i tw + tj] for channel c of the band (v: V[0][c][col0], planes C ld apart).
// buf: (2 rows + 2) x band_width floats, row u = input row 2 ti0 - 1 + u, column j = input column
// j - 1, zero outside the plane.
CXR_CLONES void input_transform(const Layout& l, const Band& b, const float* plane, float* buf, float* v,
                                std::int64_t plane_stride) {
  const int Wb = l.band_width, rows = 2 * b.rows + 2;
  for (int u = 0; u < rows; ++u) {
    float* row = buf + static_cast<std::int64_t>(u) * Wb;
    const int h = 2 * b.ti0 - 1 + u;
    std::fill(row, row + Wb, 0.f);
    if (h >= 0 && h < l.H) std::memcpy(row + 1, plane + static_cast<std::int64_t>(h) * l.W, sizeof(float) * l.W);
  }
  for (int i = 0; i < b.rows; ++i)
    for (int tj = 0; tj < l.tw; tj += kLanes) {
      v8 d[4][4];
      for (int a = 0; a < 4; ++a) {
        const float* r = buf + static_cast<std::int64_t>(2 * i + a) * Wb + 2 * tj;
        const v8 lo = load8(r), hi = load8(r + kLanes), lo2 = load8(r + 2), hi2 = load8(r + 2 + kLanes);
        d[a][0] = even(lo, hi), d[a][1] = odd(lo, hi), d[a][2] = even(lo2, hi2), d[a][3] = odd(lo2, hi2);
      }
      v8 t[4][4];  // B^T d
      for (int j = 0; j < 4; ++j) {
        t[0][j] = d[0][j] - d[2][j];
        t[1][j] = d[1][j] + d[2][j];
        t[2][j] = d[2][j] - d[1][j];
        t[3][j] = d[1][j] - d[3][j];
      }
      float* out = v + static_cast<std::int64_t>(i) * l.tw + tj;
      for (int a = 0; a < 4; ++a) {  // (B^T d) B
        store8(out + (4 * a + 0) * plane_stride, t[a][0] - t[a][2]);
        store8(out + (4 * a + 1) * plane_stride, t[a][1] + t[a][2]);
        store8(out + (4 * a + 2) * plane_stride, t[a][2] - t[a][1]);
        store8(out + (4 * a + 3) * plane_stride, t[a][1] - t[a][3]);
      }
    }
}

// y's rows of channel k for the band from M[xi][k][col0 ..] (m: M[0][k][col0], planes K ld apart).
CXR_CLONES void output_transform(const Layout& l, const Band& b, const float* m, std::int64_t plane_stride,
                                 float bias, float* y_plane, const BnEvalChannels* bn, int k) {
  for (int i = 0; i < b.rows; ++i) {
    const int h = 2 * (b.ti0 + i);
    float* row0 = y_plane + static_cast<std::int64_t>(h) * l.W;
    const bool second = h + 1 < l.H;
    for (int tj = 0; tj < l.tw; tj += kLanes) {
      const float* at = m + static_cast<std::int64_t>(i) * l.tw + tj;
      v8 s[2][4];  // A^T M
      for (int j = 0; j < 4; ++j) {
        const v8 m0 = load8(at + (0 + j) * plane_stride), m1 = load8(at + (4 + j) * plane_stride);
        const v8 m2 = load8(at + (8 + j) * plane_stride), m3 = load8(at + (12 + j) * plane_stride);
        s[0][j] = m0 + m1 + m2;
        s[1][j] = m1 - m2 - m3;
      }
      const int q = 2 * tj, valid = std::min(2 * kLanes, l.W - q);
      for (int r = 0; r < (second ? 2 : 1); ++r) {  // (A^T M) A, plus the bias, interleaved
        const v8 y0 = s[r][0] + s[r][1] + s[r][2] + bias, y1 = s[r][1] - s[r][2] - s[r][3] + bias;
        float* dst = row0 + static_cast<std::int64_t>(r) * l.W + q;
        const v8 lo = __builtin_shufflevector(y0, y1, 0, 8, 1, 9, 2, 10, 3, 11);
        const v8 hi = __builtin_shufflevector(y0, y1, 4, 12, 5, 13, 6, 14, 7, 15);
        if (valid == 2 * kLanes) {
          store8(dst, lo);
          store8(dst + kLanes, hi);
        } else {
          alignas(32) float both[2 * kLanes];
          store8(both, lo);
          store8(both + kLanes, hi);
          std::memcpy(dst, both, sizeof(float) * valid);
        }
      }
    }
    if (bn) batch_norm2d_eval_plane(*bn, k, row0, (second ? 2 : 1) * static_cast<std::int64_t>(l.W));
  }
}

// Backward-weight's transform of the output gradient: Mg[xi][k][col0 + i tw + tj] =
// (A g A^T)[xi], g the tile's 2 x 2 block of dy (0 past the plane), for channel k of the band
// (m: Mg[0][k][col0], planes plane_stride apart). buf: 2 rows x band_width floats a tile row.
CXR_CLONES void gradient_transform(const Layout& l, const Band& b, const float* plane, float* buf, float* m,
                                   std::int64_t plane_stride) {
  const int Wb = l.band_width;
  for (int u = 0; u < 2 * b.rows; ++u) {
    float* row = buf + static_cast<std::int64_t>(u) * Wb;
    const int h = 2 * b.ti0 + u;
    std::fill(row, row + Wb, 0.f);
    if (h < l.H) std::memcpy(row, plane + static_cast<std::int64_t>(h) * l.W, sizeof(float) * l.W);
  }
  for (int i = 0; i < b.rows; ++i)
    for (int tj = 0; tj < l.tw; tj += kLanes) {
      v8 g[2][2];
      for (int a = 0; a < 2; ++a) {
        const float* r = buf + static_cast<std::int64_t>(2 * i + a) * Wb + 2 * tj;
        const v8 lo = load8(r), hi = load8(r + kLanes);
        g[a][0] = even(lo, hi), g[a][1] = odd(lo, hi);
      }
      v8 t[4][2];  // A g, A = A^T's transpose (4 x 2)
      for (int j = 0; j < 2; ++j) {
        t[0][j] = g[0][j];
        t[1][j] = g[0][j] + g[1][j];
        t[2][j] = g[0][j] - g[1][j];
        t[3][j] = -g[1][j];
      }
      float* out = m + static_cast<std::int64_t>(i) * l.tw + tj;
      for (int a = 0; a < 4; ++a) {  // (A g) A^T
        store8(out + (4 * a + 0) * plane_stride, t[a][0]);
        store8(out + (4 * a + 1) * plane_stride, t[a][0] + t[a][1]);
        store8(out + (4 * a + 2) * plane_stride, t[a][0] - t[a][1]);
        store8(out + (4 * a + 3) * plane_stride, -t[a][1]);
      }
    }
}

// The bands of block [r0, r1) of the N th tile rows: one per image it touches.
template <class F>
void for_each_band(const Layout& l, std::int64_t r0, std::int64_t r1, F&& f) {
  for (std::int64_t r = r0; r < r1;) {
    const int n = static_cast<int>(r / l.th), ti0 = static_cast<int>(r % l.th);
    const int rows = static_cast<int>(std::min<std::int64_t>(r1 - r, l.th - ti0));
    f(Band{n, ti0, rows, (r - r0) * l.tw});
    r += rows;
  }
}

// Floats from one position's (rows, ld) plane of V or M to the next. The transforms write (and
// read) 16 planes at once, 8 floats in each; planes a multiple of 4 KiB apart (64 x 160 floats)
// all fell into the same L1 sets, so each plane starts one cache line later in the 4 KiB cycle.
std::int64_t plane_stride(std::int64_t floats) {
  const std::int64_t cycle = 1024;  // 4 KiB
  return (floats + cycle - 1) / cycle * cycle + 16;
}

// Room that outlives a call on the calling thread: the packed U; backward-weight's V, Mg and dU.
float* room(std::int64_t floats, int which = 0) {
  thread_local std::vector<float> buffers[4];
  std::vector<float>& b = buffers[which];
  if (static_cast<std::int64_t>(b.size()) < floats) b.resize(static_cast<std::size_t>(floats));
  return b.data();
}

std::atomic<Conv3x3Algorithm> g_algorithm{Conv3x3Algorithm::Auto};

}  // namespace

void set_cpu_conv3x3_algorithm(Conv3x3Algorithm a) { g_algorithm.store(a, std::memory_order_relaxed); }

Conv3x3Algorithm cpu_conv3x3_algorithm() {
  static const Conv3x3Algorithm from_env = [] {
    const char* env = std::getenv("CXR_CPU_CONV3X3");
    const std::string v = env ? env : "";
    return v == "direct"     ? Conv3x3Algorithm::Direct
           : v == "winograd" ? Conv3x3Algorithm::Winograd
           : v == "measure"  ? Conv3x3Algorithm::Measure
                             : Conv3x3Algorithm::Auto;
  }();
  const Conv3x3Algorithm a = g_algorithm.load(std::memory_order_relaxed);
  return a == Conv3x3Algorithm::Auto ? from_env : a;
}

namespace {

// U = G g G^T of one filter g (3 x 3): u[4 a + b] (4 x 4).
CXR_INLINE void filter_tile(const float* g, float* u) {
  float t[4][3];  // G g
  for (int j = 0; j < 3; ++j) {
    t[0][j] = g[j];
    t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
    t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
    t[3][j] = g[6 + j];
  }
  for (int a = 0; a < 4; ++a) {  // (G g) G^T
    u[4 * a + 0] = t[a][0];
    u[4 * a + 1] = 0.5f * (t[a][0] + t[a][1] + t[a][2]);
    u[4 * a + 2] = 0.5f * (t[a][0] - t[a][1] + t[a][2]);
    u[4 * a + 3] = t[a][2];
  }
}

// The 16 U[xi] (K, C) written straight into their GEMM packings (PackedA's offsets), which share
// one layout, in the order of the packing: per sliver of MR filters and K block, channel by
// channel, the MR filters of the sliver. Each of the 16 packings is then written front to back
// (the MR filters are read from MR rows of w, each front to back); in the order of w, each
// value went to a line of its own, 16 x C x 56 bytes apart, and this pass took as long as
// the products it feeds (ResNet's 512 x 512 x 3 x 3).
// flipped: the filters of the flipped convolution (backward-data, see winograd3x3_backward_data),
// (k, c) = w[c, k] rotated by 180 degrees, read from w itself.
void pack_filters(int K, int C, const float* w, bool flipped, float* const* rooms, const PackedA& layout) {
  const std::int64_t mr = layout.tile_rows(), slivers = (K + mr - 1) / mr;
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && static_cast<std::int64_t>(K) * C > 4096)
  for (std::int64_t sliver = 0; sliver < slivers; ++sliver) {
    const std::int64_t k0 = sliver * mr, rows = std::min<std::int64_t>(mr, K - k0);
    float u[kPositions];
    for (std::int64_t pc = 0; pc < C; pc += layout.k_block()) {
      const std::int64_t end = std::min<std::int64_t>(C, pc + layout.k_block());
      std::int64_t at = layout.offset(k0, pc);
      for (std::int64_t c = pc; c < end; ++c, at += mr)
        for (std::int64_t i = 0; i < rows; ++i) {
          if (flipped) {
            const float* from = w + (c * K + k0 + i) * 9;
            const float g[9] = {from[8], from[7], from[6], from[5], from[4], from[3], from[2], from[1], from[0]};
            filter_tile(g, u);
          } else {
            filter_tile(w + ((k0 + i) * C + c) * 9, u);
          }
          for (int xi = 0; xi < kPositions; ++xi) rooms[xi][at + i] = u[xi];
        }
    }
  }
}

}  // namespace

void winograd3x3_filter_transform(int K, int C, const float* w, float* u) {
  const std::int64_t KC = static_cast<std::int64_t>(K) * C;
  for (std::int64_t f = 0; f < KC; ++f) {
    float tile[kPositions];
    filter_tile(w + f * 9, tile);
    for (int xi = 0; xi < kPositions; ++xi) u[xi * KC + f] = tile[xi];
  }
}

namespace {

// y = conv(x, U) for the filters of w (flipped: w's flipped convolution's), see winograd3x3_forward.
void forward(const Winograd3x3& s, const float* x, const float* w, bool flipped, const float* b, float* y,
             const BnEvalChannels* bn) {
  if (s.N <= 0 || s.K <= 0 || s.H <= 0 || s.W <= 0) return;
  const Layout l(s, omp_in_parallel() ? 1 : omp_get_max_threads());
  // the 16 packings are written side by side (pack_filters): apart by a line more than a multiple of 4 KiB
  const std::int64_t packed_floats = plane_stride(PackedA::floats_for(s.K, s.C));
  const auto make = [&](float* packed) {
    float* rooms[kPositions];
    for (int xi = 0; xi < kPositions; ++xi) rooms[xi] = packed + xi * packed_floats;
    pack_filters(s.K, s.C, w, flipped, rooms, PackedA(s.K, s.C, rooms[0]));
    for (int xi = 1; xi < kPositions; ++xi) PackedA(s.K, s.C, rooms[xi]);  // their padding rows
  };
  // within a FrozenWeightsScope (evaluation) once per weight tensor, else every call
  const FrozenKind kind = flipped ? FrozenKind::WinogradFlippedFilters : FrozenKind::WinogradFilters;
  const float* packed = frozen_derived(kind, w, s.K, s.C * 9, kPositions * packed_floats, make);
  if (!packed) {
    float* fresh = room(kPositions * packed_floats);
    make(fresh);
    packed = fresh;
  }
  std::vector<PackedA> U;
  U.reserve(kPositions);
  for (int xi = 0; xi < kPositions; ++xi) U.push_back(PackedA::view(s.K, s.C, packed + xi * packed_floats));

  const std::int64_t HW = static_cast<std::int64_t>(s.H) * s.W;
  const std::int64_t blocks = (l.tile_rows + l.rows_per_block - 1) / l.rows_per_block;
#pragma omp parallel
  {
    thread_local std::vector<float> v_room, m_room, band_room;
    v_room.resize(static_cast<std::size_t>(kPositions * plane_stride(s.C * l.ld)));
    m_room.resize(static_cast<std::size_t>(kPositions * plane_stride(s.K * l.ld)));
    band_room.resize(static_cast<std::size_t>((2 * l.rows_per_block + 2) * l.band_width));
    float *V = v_room.data(), *M = m_room.data();
    const std::int64_t v_plane = plane_stride(s.C * l.ld), m_plane = plane_stride(s.K * l.ld);
#pragma omp for schedule(dynamic)
    for (std::int64_t blk = 0; blk < blocks; ++blk) {
      const std::int64_t r0 = blk * l.rows_per_block, r1 = std::min(l.tile_rows, r0 + l.rows_per_block);
      const std::int64_t tiles = (r1 - r0) * l.tw;
      for_each_band(l, r0, r1, [&](const Band& band) {
        for (int c = 0; c < s.C; ++c)
          input_transform(l, band, x + (static_cast<std::int64_t>(band.n) * s.C + c) * HW, band_room.data(),
                          V + c * l.ld + band.col0, v_plane);
      });
      for (int xi = 0; xi < kPositions; ++xi)
        sgemm(U[static_cast<std::size_t>(xi)], tiles, 1.f, V + xi * v_plane, l.ld, 0.f, M + xi * m_plane, l.ld);
      for_each_band(l, r0, r1, [&](const Band& band) {
        for (int k = 0; k < s.K; ++k)
          output_transform(l, band, M + k * l.ld + band.col0, m_plane, b ? b[k] : 0.f,
                           y + (static_cast<std::int64_t>(band.n) * s.K + k) * HW, bn, k);
      });
    }
  }
}

}  // namespace

void winograd3x3_forward(const Winograd3x3& s, const float* x, const float* w, const float* b, float* y,
                         const BnEvalChannels* bn) {
  forward(s, x, w, false, b, y, bn);
}

void winograd3x3_backward_data(const Winograd3x3& s, const float* dy, const float* w, float* dx) {
  forward({s.N, s.K, s.C, s.H, s.W}, dy, w, true, nullptr, dx, nullptr);
}

void winograd3x3_backward_weight(const Winograd3x3& s, const float* x, const float* dy, float* dw) {
  const std::int64_t KC = static_cast<std::int64_t>(s.K) * s.C;
  if (s.N <= 0 || s.H <= 0 || s.W <= 0) return std::fill(dw, dw + 9 * KC, 0.f);
  const Layout l(s, 1);
  const std::int64_t HW = static_cast<std::int64_t>(s.H) * s.W, image_tiles = static_cast<std::int64_t>(l.th) * l.tw;
  const std::int64_t ld = (l.tile_rows * l.tw + kLanes + 15) / 16 * 16;  // every tile, plus the last vector's slack
  const std::int64_t v_plane = plane_stride(s.C * ld), m_plane = plane_stride(s.K * ld);
  float* V = room(kPositions * v_plane, 1);
  float* M = room(kPositions * m_plane, 2);
  float* dU = room(kPositions * KC, 3);
  // The transforms of every tile, a channel per thread at a time: images in order, so that the
  // last vector of an image's tile row, which runs into the next image's columns, is overwritten.
#pragma omp parallel
  {
    thread_local std::vector<float> band_room;
    band_room.resize(static_cast<std::size_t>((2 * l.th + 2) * l.band_width));
#pragma omp for schedule(static) nowait
    for (int c = 0; c < s.C; ++c)
      for (int n = 0; n < s.N; ++n)
        input_transform(l, Band{n, 0, l.th, n * image_tiles}, x + (static_cast<std::int64_t>(n) * s.C + c) * HW,
                        band_room.data(), V + c * ld + n * image_tiles, v_plane);
#pragma omp for schedule(static)
    for (int k = 0; k < s.K; ++k)
      for (int n = 0; n < s.N; ++n)
        gradient_transform(l, Band{n, 0, l.th, n * image_tiles}, dy + (static_cast<std::int64_t>(n) * s.K + k) * HW,
                           band_room.data(), M + k * ld + n * image_tiles, m_plane);
  }
  // dU[xi] (K, C) = Mg[xi] V[xi]^T, summed over the tiles
  for (int xi = 0; xi < kPositions; ++xi)
    sgemm(false, true, s.K, s.C, l.tile_rows * l.tw, 1.f, M + xi * m_plane, ld, V + xi * v_plane, ld, 0.f,
          dU + xi * KC, s.C);
  // dw = G^T dU G, G^T = | 1 1/2  1/2 0 |
  //                      | 0 1/2 -1/2 0 |
  //                      | 0 1/2  1/2 1 |
#pragma omp parallel for schedule(static) if (KC > 4096)
  for (std::int64_t f = 0; f < KC; ++f) {
    float u[4][4], t[3][4];
    for (int xi = 0; xi < kPositions; ++xi) u[xi / 4][xi % 4] = dU[xi * KC + f];
    for (int j = 0; j < 4; ++j) {
      t[0][j] = u[0][j] + 0.5f * (u[1][j] + u[2][j]);
      t[1][j] = 0.5f * (u[1][j] - u[2][j]);
      t[2][j] = 0.5f * (u[1][j] + u[2][j]) + u[3][j];
    }
    float* g = dw + f * 9;
    for (int r = 0; r < 3; ++r) {
      g[3 * r + 0] = t[r][0] + 0.5f * (t[r][1] + t[r][2]);
      g[3 * r + 1] = 0.5f * (t[r][1] - t[r][2]);
      g[3 * r + 2] = 0.5f * (t[r][1] + t[r][2]) + t[r][3];
    }
  }
}

}  // namespace cxr::cpu
