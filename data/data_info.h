// data-info: the numbers that describe a data set folder (images, patients, per-label
// counts, boxes, splits, missing files), as text for people and as JSON for scripts.
//
// JSON keys: images, patients, no_finding, labels {name: count}, boxes, boxed_images,
// box_labels {name: count}, missing_images, splits {train, val, test}, split_source,
// malformed_rows, unknown_labels {name: rows}.
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
  std::string root;
  std::int64_t images = 0, patients = 0, no_finding = 0;
  std::array<std::int64_t, kNumClasses> labels{};
  std::int64_t boxes = 0, boxed_images = 0;
  std::array<std::int64_t, kNumClasses> box_labels{};
  std::int64_t missing_images = 0;
  std::int64_t train = 0, val = 0, test = 0;
  std::string split_source;
  std::int64_t malformed_rows = 0;
  std::map<std::string, int> unknown_labels;
};

DataInfo compute_data_info(const Dataset& dataset, const Splits& splits);
std::string data_info_text(const DataInfo& info);
nlohmann::ordered_json data_info_json(const DataInfo& info);

}  // namespace cxr::data
