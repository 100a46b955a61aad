// Prediction overlays: one PNG per image (`train_cxr predict --overlay`), a row of panels, one
// per finding at or above its threshold and one per finding with a ground-truth box (at most
// max_panels, the likeliest first), or one plain panel when there is neither. Each panel shows the radiograph with
//   - the finding's class activation map (eval/cam.h), upsampled to the panel, min-max
//     normalised and blended in the jet colour map (alpha = 0.6 x the normalised value);
//   - the box head's box (magenta, solid);
//   - the CAM box: the bounding box of the normalised CAM >= 0.5 (white, dashed);
//   - the ground-truth box of that finding when the image is in the box list (green, solid);
//   - the finding's name, probability and threshold (stb_easy_font's bitmap font).
// A header names the image; a footer is the legend.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "data/image_io.h"
#include "data/metadata.h"
#include "eval/draw.h"

namespace cxr {

inline constexpr Rgb kBoxHeadColor{255, 0, 255};
inline constexpr Rgb kCamBoxColor{255, 255, 255};
inline constexpr Rgb kTruthColor{0, 230, 0};

struct OverlayInput {
  const data::GrayImage* image = nullptr;  // as read (boxes are in its pixels)
  std::string name;                        // shown in the header
  std::vector<std::string> class_names;    // C
  std::vector<float> probs;                // C
  std::vector<double> thresholds;          // C
  std::vector<float> boxes;                // C x 4: (cx, cy, w, h) in [0, 1] of the image
  std::vector<float> cams;                 // C x cam_h x cam_w: raw CAMs (no normalisation)
  int cam_h = 0, cam_w = 0;
  std::vector<data::Box> truth;            // ground-truth boxes in the image's pixels
};

struct OverlayOptions {
  int panel_size = 0;         // the longer side of a panel in pixels; 0: 4 x the image's, in [256, 512]
  int max_panels = 4;         // most findings shown (highest probability / threshold first)
  float cam_fraction = 0.5f;  // CAM box: normalised CAM >= this
  float max_alpha = 0.6f;
};

// Which findings get a panel, in display order: at or above threshold, or with a truth box;
// sorted by probability / threshold (descending), at most max_panels.
std::vector<int> overlay_findings(const OverlayInput& in, const OverlayOptions& options = {});

RgbImage render_overlay(const OverlayInput& in, const OverlayOptions& options = {});

// Ground-truth boxes from a BBox_List_2017.csv file for the images named (others skipped);
// name -> boxes. Unknown labels and malformed rows are skipped silently.
std::map<std::string, std::vector<data::Box>> read_truth_boxes(const std::string& path,
                                                               const std::vector<std::string>& names);

}  // namespace cxr
