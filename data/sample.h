// One training sample, from source pixels to its slot in a batch:
//   resize (antialiased) to S x S -> [augment: affine warp] -> [brightness/contrast] ->
//   normalise into (C, S, S) f32; labels to K floats (K: the run's label space, 14 for NIH),
//   with a mask of the labels present (1) or missing (0); boxes scaled to S x S, warped
//   alike, written as (cx, cy, w, h) / S with a mask of the classes that have a box (the
//   first box of a class when a set has several).
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
  // Output k is global finding label_findings[k] (-1: a finding no data set has); empty: the
  // 14 NIH classes.
  std::vector<int> label_findings;
  // The findings the data set labels (Dataset::findings): finding g of a record is present
  // when it is here and in the record's `known`.
  LabelMask set_findings = kNihFindings;
  int classes() const { return label_findings.empty() ? kNumClasses : static_cast<int>(label_findings.size()); }
};

// Where a sample goes: image (C, S, S), labels (K), boxes (K, 4), box_mask (K), label_mask
// (K; nullptr: not written).
struct SampleSlot {
  float* image;
  float* labels;
  float* boxes;
  float* box_mask;
  float* label_mask = nullptr;
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
