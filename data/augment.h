// Training-time augmentation: a random affine warp (rotation, shift, scale, optional
// horizontal flip) of the image and its boxes, and random brightness/contrast.
//
// The parameters of a sample come from sample_augment(options, seed, epoch, index), a pure
// function: the same sample in the same epoch is always augmented alike, whichever thread
// does it. Horizontal flip is off by default: the heart lies on the patient's left, and a
// flipped radiograph is an anatomically different (situs inversus) image.
//
// The warp maps an input point p (pixel centres at i + 0.5) to
//   p' = c + s R(angle) (F(p) - c) + t        c: image centre, F: optional flip of x
// and fills what comes from outside the image with black (0). Output pixels are bilinear
// samples of the input at the inverse image of their centre.
#pragma once

#include <cstdint>

#include "data/metadata.h"

namespace cxr::data {

struct AugmentOptions {
  float rotation_deg = 7.f;     // angle uniform in [-r, r]
  float translate = 0.05f;      // shift uniform in [-t, t] * size, per axis
  float scale_min = 0.9f, scale_max = 1.1f;
  float brightness = 0.1f;      // factor uniform in [1 - b, 1 + b]
  float contrast = 0.1f;        // factor uniform in [1 - c, 1 + c]
  bool hflip = false;           // flip with probability 0.5 when on
};

struct AugmentParams {
  float angle = 0.f;  // radians
  float tx = 0.f, ty = 0.f;  // pixels
  float scale = 1.f;
  bool flip = false;
  float brightness = 1.f, contrast = 1.f;
  bool is_geometric_identity() const { return angle == 0.f && tx == 0.f && ty == 0.f && scale == 1.f && !flip; }
};

// Parameters for an image of size (width x height); pure function of its arguments.
AugmentParams sample_augment(const AugmentOptions& options, std::uint64_t seed, std::int64_t epoch,
                             std::int64_t index, int width, int height);

// dst and src: (height, width). dst must not alias src.
void warp_affine_gray8(const std::uint8_t* src, std::uint8_t* dst, int width, int height, const AugmentParams& p);

// The box (pixels of the same image) after the warp: the axis-aligned box around its four
// transformed corners, clipped to the image. False when less than a quarter of it remains
// inside (the box is then dropped from the sample).
bool transform_box(Box& box, int width, int height, const AugmentParams& p);

}  // namespace cxr::data
