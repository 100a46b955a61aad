// Antialiased resize of 8-bit gray images, and the matching box scaling.
//
// The filter is the triangle (bilinear) kernel widened by the scale factor when shrinking,
// as PIL's BILINEAR and torchvision's resize(antialias=True) do: every output pixel is a
// weighted mean of all input pixels under its footprint, so shrinking 1024 -> 224 averages
// about 4.6 x 4.6 pixels instead of sampling 2 x 2 and aliasing the ribs.
// Pixel centres are aligned ((o + 0.5) * in / out - 0.5). Resizing to the same size returns
// every pixel unchanged.
//
//   cost: H_in * W_out * taps_x + H_out * W_out * taps_y multiply-adds, taps ~ 2 * in / out.
#pragma once

#include <cstdint>

#include "data/image_io.h"
#include "data/metadata.h"

namespace cxr::data {

// dst: (dst_h, dst_w) row-major; src: (src_h, src_w).
void resize_gray8(const std::uint8_t* src, int src_w, int src_h, std::uint8_t* dst, int dst_w, int dst_h);
GrayImage resize_gray8(const GrayImage& src, int dst_w, int dst_h);

// A box in the pixels of a (from_w x from_h) image, in the pixels of the same image resized
// to (to_w x to_h).
Box scale_box(const Box& box, int from_w, int from_h, int to_w, int to_h);

}  // namespace cxr::data
