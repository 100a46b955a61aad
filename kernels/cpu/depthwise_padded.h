// Stride-1 depthwise convolution planes on the CPU through a zero-padded copy of the input plane
// (kernels/cpu/depthwise_padded.cpp). Used by kernels/cpu/conv2d.cpp for every depthwise
// convolution with stride 1 (ConvNeXt's 7x7, EfficientNet's stride-1 3x3 and 5x5).
//
// One (image, channel) plane, filter f (R x S), dilation (dh, dw), padding (ph, pw) before the
// first row / column, output P x Q:
//   forward         out[p, q] = bias + sum_{r, s} f[r, s] in[p - ph + r dh, q - pw + s dw]
//   backward-data   is the forward of dy with the flipped filter f'[r, s] = f[R-1-r, S-1-s] and
//                   padding dh - ph, (S-1) dw - pw (giving H x W back)
//   backward-weight g[r, s] = sum_{p, q} dy[p, q] in[p - ph + r dh, q - pw + s dw]
// (0 outside the plane). With the plane copied once into a buffer with zero borders, every output
// row is R S shifted rows of the buffer: 8-lane vectors, no bounds checks, the last vector of a
// row padded (rows of 7 and 14 outputs: one and two vectors).
#pragma once

#include <cstdint>

namespace cxr::cpu {

struct DepthwisePlane {
  int H, W;      // input plane
  int P, Q;      // output plane
  int R, S, dh, dw, ph, pw;
};

// out (P x Q) = bias + the forward sums above for one plane.
void depthwise_plane_forward(const DepthwisePlane& d, const float* in, const float* filter, float bias, float* out);

// g[r S + s] (R x S, f32) = the backward-weight sums above for one plane, in a fixed order
// (8 lanes over q, rows in order, then the lanes added pairwise).
void depthwise_plane_weight_grad(const DepthwisePlane& d, const float* in, const float* dy, float* g);

}  // namespace cxr::cpu
