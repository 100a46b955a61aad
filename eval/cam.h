// Class activation maps (Zhou et al. 2016, "Learning Deep Features for Discriminative
// Localization"), on the CPU, in plain loops.
//
// For a network whose class head is a linear layer on the global average of the last feature
// map F (F_k: (h, w), k = 1..K), the class-c logit is b_c + sum_k w_ck * mean(F_k), so
//
//   CAM_c(y, x) = sum_k w_ck * F_k(y, x)          (no bias; mean(CAM_c) + b_c = logit_c)
//
// says where in the image the evidence for class c sits. For display and for a box the map is
// upsampled bilinearly to the image (align_corners = false, as PyTorch's interpolate) and
// min-max normalised to [0, 1]; the CAM box is the bounding box of the normalised map's
// pixels >= `fraction` (0.5 by default: CAM >= 0.5 * max when the map's minimum is 0).
#pragma once

#include <cstdint>
#include <vector>

namespace cxr {

// features: (K, h, w) row-major; weights: (K). Returns CAM (h, w).
std::vector<float> class_activation_map(const float* features, int K, int h, int w, const float* weights);

// (h, w) -> (H, W), bilinear, align_corners = false (pixel centres; edges clamped).
std::vector<float> upsample_bilinear(const std::vector<float>& map, int h, int w, int H, int W);

// (v - min) / (max - min); all zeros for a constant map.
std::vector<float> normalize_min_max(const std::vector<float>& map);

// Inclusive pixel box; empty when nothing qualified.
struct PixelBox {
  int x0 = 0, y0 = 0, x1 = -1, y1 = -1;
  bool empty() const { return x1 < x0 || y1 < y0; }
  int width() const { return empty() ? 0 : x1 - x0 + 1; }
  int height() const { return empty() ? 0 : y1 - y0 + 1; }
};

// Bounding box of the pixels of a [0, 1] map (H, W) that are >= fraction.
PixelBox threshold_box(const std::vector<float>& map01, int W, int H, float fraction = 0.5f);

}  // namespace cxr
