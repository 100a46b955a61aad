// `train_cxr predict`: a checkpoint on image files, without a data set folder.
//
// Preprocessing, the same as training's (without augmentation): decode to 8-bit gray
// (data/image_io.h), antialiased resize to S x S (data/resize.h), x / 255, three channels,
// (x - mean) / std with the checkpoint's normalisation (ImageNet's by default).
// Outputs in OUT:
//   predictions.csv   Image Index, the 14 class probabilities, No Finding (see evaluate.h)
//   boxes.csv         image, finding, x, y, w, h, score: the box head's box of each finding
//                     whose probability reaches its threshold (every finding with all_boxes),
//                     in the pixels of the image as read (x, y = top-left corner), score = p.
//   overlays/NAME.png with `overlay`: the radiograph with each finding's class activation map,
//                     the box head's box, the CAM box, the probability and the ground-truth
//                     boxes of the image when a box list is given (eval/overlay.h).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "tensor/dtype.h"

namespace cxr {

struct PredictOptions {
  std::string checkpoint, out_dir;
  std::string model;         // overrides / supplies the architecture
  int image_size = 0;        // overrides / supplies the input size
  Device device = Device::CPU;
  std::vector<std::string> images;
  int batch_size = 16;
  bool all_boxes = false;
  std::string no_finding = "product";
  bool quiet = false;
  bool overlay = false;      // write OUT/overlays/<image>.png
  std::string boxes_file;    // ground-truth boxes for the overlays (BBox_List_2017.csv format)
};

struct PredictSummary {
  std::size_t images = 0, boxes = 0, overlays = 0;
};

PredictSummary predict_images(const PredictOptions& options, std::ostream& out);

// Up to n of `names`: those with a box in `box_list` (BBox_List_2017.csv format) first, then
// the others, each group in the given order (the demo's overlays show ground truth this way).
std::vector<std::string> pick_images_with_boxes(const std::vector<std::string>& names, const std::string& box_list,
                                                std::size_t n);

}  // namespace cxr
