// Class balance of a split: positive counts, the loss's per-class positive weights, and
// per-image weights for optional weighted sampling.
//
//   pos_weight[k] = negatives_k / positives_k   (BCEWithLogits pos_weight; 1 when k has no
//                                               positive, so an absent class is not blown up;
//                                               negatives counted among the images where the
//                                               label is present, missing ones left out)
//   image weight  = mean over its positive classes k of 1 / positives_k, or
//                   1 / no_finding_count for an image with no finding
// so that, sampled with these weights, every class (and "No Finding") is drawn about equally
// often in expectation.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "data/dataset.h"
#include "data/labels.h"

namespace cxr::data {

struct ClassCounts {
  std::int64_t images = 0;
  std::int64_t no_finding = 0;
  std::array<std::int64_t, kNumFindings> positives{};  // by global finding index
  std::array<std::int64_t, kNumFindings> present{};    // images where the label is not missing
};

ClassCounts count_classes(const Dataset& dataset, const std::vector<std::int64_t>& indices);
std::array<float, kNumClasses> positive_weights(const ClassCounts& counts);  // the NIH 14
// One weight per output of a label space (global indices; -1: 1).
std::vector<float> positive_weights(const ClassCounts& counts, const std::vector<int>& label_findings);
// One weight per entry of `indices`.
std::vector<double> sampling_weights(const Dataset& dataset, const std::vector<std::int64_t>& indices);

}  // namespace cxr::data
