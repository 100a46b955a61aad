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
};

struct PredictSummary {
  std::size_t images = 0, boxes = 0;
};

PredictSummary predict_images(const PredictOptions& options, std::ostream& out);

}  // namespace cxr
