// 3x3 convolutions on the CPU by Winograd's minimal filtering, F(2x2, 3x3) (Lavin and Gray,
// "Fast Algorithms for Convolutional Neural Networks", 2016). Used by kernels/cpu/conv2d.cpp for
// the three passes of the dense 3x3, stride-1, "same" convolutions that make up most of ResNet
// (kernels/cpu/conv2d.cpp: winograd_pays and winograd_pays_backward_weight say which shapes).
//
// A 2 x 2 block of outputs of one channel k needs a 4 x 4 tile d of each input channel c:
//   y[k] (2 x 2) = A^T [ sum_c U[k, c] . V[c] ] A,   U = G g[k, c] G^T,   V = B^T d[c] B
// (. elementwise, 4 x 4), with
//   B^T = | 1  0 -1  0 |    G = |  1    0    0  |    A^T = | 1  1  1  0 |
//         | 0  1  1  0 |        | 1/2  1/2  1/2 |          | 0  1 -1 -1 |
//         | 0 -1  1  0 |        | 1/2 -1/2  1/2 |
//         | 0  1  0 -1 |        |  0    0    1  |
// For each of the 16 positions xi of the 4 x 4 tile that sum is a matrix product,
//   M[xi] (K, tiles) = U[xi] (K, C) V[xi] (C, tiles),
// 16 C K multiply-adds per tile of 4 outputs where the direct convolution (im2col + GEMM) needs
// 36 C K: 2.25x fewer. The transforms are additions only (the halves of G are exact), so the
// result differs from the direct sums by rounding alone (a few ulps of the terms' magnitude).
//
// Shapes: x (N, C, H, W), w (K, C, 3, 3), y (N, K, H, W); padding 1, stride 1, one group.
// Tiles: (N, ceil(H/2), ceil(W/2)); the last row / column of tiles of an odd plane reads zeros
// past the edge and its extra outputs are dropped.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cxr::cpu {

struct BnEvalChannels;  // kernels/batch_norm.h

struct Winograd3x3 {
  int N = 0, C = 0, K = 0, H = 0, W = 0;
};

// y = conv(x, w) (+ b[k]) (then the evaluation batch norm bn, in place), on all OpenMP threads.
// The result does not depend on the thread count.
void winograd3x3_forward(const Winograd3x3& s, const float* x, const float* w, const float* b, float* y,
                         const BnEvalChannels* bn = nullptr);

// Which 3x3 convolutions take this path (kernels/cpu/conv2d.cpp): Auto (the default) those
// whose shape measured faster (conv2d.cpp: winograd_pays, a rule from bench_conv2d's rows), Direct
// none, Winograd every one that fits (3x3, stride 1, dilation 1, padding 1, one group), Measure
// the faster for each pass and shape as timed at its first call in this process (a plan cache,
// as cudnn.benchmark; opt-in, because the two paths round differently and which one wins
// depends on the timing: runs no longer repeat bit for bit). CXR_CPU_CONV3X3=direct, winograd or
// measure sets it for the process; the setter is for tests and benchmarks.
enum class Conv3x3Algorithm { Auto, Direct, Winograd, Measure };
void set_cpu_conv3x3_algorithm(Conv3x3Algorithm a);  // process-wide
Conv3x3Algorithm cpu_conv3x3_algorithm();
// Measure's plans so far (pass and shape -> Winograd or not), and forgetting them (tests).
std::size_t cpu_conv3x3_plan_count();
void clear_cpu_conv3x3_plans();

// The input gradient dx (N, C, H, W) = the convolution of dy (N, K, H, W) with the flipped
// filters w'[c, k] = w[k, c] rotated by 180 degrees (padding 1 again): the forward above, its
// filters transformed from w itself (no flipped copy).
void winograd3x3_backward_data(const Winograd3x3& s, const float* dy, const float* w, float* dx);

// The weight gradient dw (K, C, 3, 3) = the correlation of x with dy (N, K, H, W), overwritten:
// with Mg = A g A^T of each 2 x 2 block g of dy and V of x's tiles as above,
//   dw[k, c] = G^T [ sum_tiles Mg[k] . V[c] ] G
// (y = A^T (U . V) A is linear in U = G w G^T). V and Mg of every tile are written out (16 (C + K)
// floats a tile) and the 16 sums over the tiles are GEMMs with a long K (the tiles), split
// among the threads by their output: the result does not depend on the thread count.
void winograd3x3_backward_weight(const Winograd3x3& s, const float* x, const float* dy, float* dw);

// U = G g G^T for every (k, c): u[(xi K + k) C + c], xi = 4 a + b (16 K C floats). The forward
// writes the same values straight into the GEMM's packing; this plain layout is for tests.
void winograd3x3_filter_transform(int K, int C, const float* w, float* u);

}  // namespace cxr::cpu
