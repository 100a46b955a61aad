// data-info: the numbers that describe a data set folder of any format (images, patients,
// per-label counts, missing and uncertain labels, views, boxes, splits, missing files), as
// text for people and as JSON for scripts.
//
// JSON keys: format, images, patients, no_finding, labels {name: count}, boxes, boxed_images,
// box_labels {name: count}, missing_images, splits {train, val, test}, split_source,
// malformed_rows, unknown_labels {name: rows}; then missing_labels {name: images without a
// label for it}, uncertain_labels {name: images}, views {view: images}, unmapped_labels
// {name: rows}. `labels`, `box_labels`, `missing_labels` and `uncertain_labels` list the
// findings of the set (an NIH folder: the 14, as before).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "data/dataset.h"
#include "data/labels.h"
#include "data/splits.h"

namespace cxr::data {

struct DataInfo {
  std::string root, format = "nih";
  LabelMask findings = kNihFindings;
  std::int64_t images = 0, patients = 0, no_finding = 0;
  std::array<std::int64_t, kNumFindings> labels{};     // positives, by global finding index
  std::array<std::int64_t, kNumFindings> missing{};    // images without a label for it
  std::array<std::int64_t, kNumFindings> uncertain{};  // images the source called uncertain
  std::int64_t boxes = 0, boxed_images = 0;
  std::array<std::int64_t, kNumFindings> box_labels{};
  std::int64_t missing_images = 0;
  std::int64_t train = 0, val = 0, test = 0;
  std::string split_source;
  std::int64_t malformed_rows = 0;
  std::map<std::string, int> unknown_labels, unmapped_labels;
  std::map<std::string, std::int64_t> views;
};

DataInfo compute_data_info(const Dataset& dataset, const Splits& splits);
std::string data_info_text(const DataInfo& info);
nlohmann::ordered_json data_info_json(const DataInfo& info);

}  // namespace cxr::data
