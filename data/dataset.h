// Dataset: an NIH-format folder, read once.
//
//   DIR/Data_Entry_2017_v2020.csv  or  DIR/Data_Entry_2017.csv   (required; v2020 preferred)
//   DIR/BBox_List_2017.csv                                       (optional)
//   DIR/train_val_list.txt, DIR/test_list.txt                     (optional: the official split)
//   DIR/images/*.png  or the Kaggle layout DIR/images_*/images/*.png
//
// Loading never decodes an image: it records where each one is (or that it is missing).
// A table with no usable row is an error that says why.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/metadata.h"
#include "data/report.h"

namespace cxr::data {

class Dataset {
 public:
  static Dataset load(const std::string& dir, Report& report = default_report());

  std::int64_t size() const { return static_cast<std::int64_t>(meta.images.size()); }
  const ImageRecord& record(std::int64_t i) const { return meta.images[static_cast<std::size_t>(i)]; }
  // Full path of image i, or "" when its file was not found under the image folders.
  const std::string& image_path(std::int64_t i) const { return paths_[static_cast<std::size_t>(i)]; }
  std::int64_t missing_images() const { return missing_; }
  // Adds records and paths by hand (tests, synthetic sets built in memory).
  void add(ImageRecord record, std::string path);

  // Whether record i has a label for global finding g (positive or negative), as opposed to
  // missing: the set has the finding and the record's row gave a value.
  bool present(std::int64_t i, int g) const { return has_label(findings & record(i).known, g); }

  std::string root;
  std::string format = "nih";              // the reader (data/formats/formats.h)
  LabelMask findings = kNihFindings;       // the findings this set labels
  std::string data_entry_file, bbox_file;  // "" when absent (data_entry_file: the main table)
  Metadata meta;
  std::optional<std::vector<std::string>> train_val_list, test_list;  // when the files exist
  std::vector<std::string> image_dirs;  // the folders searched for images

 private:
  std::vector<std::string> paths_;
  std::int64_t missing_ = 0;
};

}  // namespace cxr::data
