// One training sample, from source pixels to its slot in a batch:
//   resize (antialiased) to S x S -> [augment: affine warp] -> [brightness/contrast] ->
//   normalise into (C, S, S) f32; labels to 14 floats; boxes scaled to S x S, warped alike,
//   written as (cx, cy, w, h) / S with a mask of the classes that have a box.
// Deterministic: the augmentation is a function of (seed, epoch, index) only.
#pragma once

#include <cstdint>
#include <vector>

#include "data/augment.h"
#include "data/metadata.h"
#include "data/normalize.h"

namespace cxr::data {

struct SampleOptions {
  int image_size = 224;
  bool augment = false;
  AugmentOptions augment_options;
  NormalizeOptions normalize;
  std::uint64_t seed = 0;
};

// Where a sample goes: image (C, S, S), labels (14), boxes (14, 4), box_mask (14).
struct SampleSlot {
  float* image;
  float* labels;
  float* boxes;
  float* box_mask;
};

// Per-thread buffers, reused from sample to sample.
struct SampleScratch {
  std::vector<std::uint8_t> resized, warped;
};

// src: (src_h, src_w) gray pixels; the record's boxes are in the pixels of a
// (box_ref_w x box_ref_h) image (the file as decoded, before any resizing).
void prepare_sample(const std::uint8_t* src, int src_w, int src_h, int box_ref_w, int box_ref_h,
                    const ImageRecord& record, std::int64_t index, std::int64_t epoch, const SampleOptions& options,
                    SampleScratch& scratch, const SampleSlot& out);

}  // namespace cxr::data
