// data-info: counting and formatting.
#include "data/data_info.h"

#include <cstdio>
#include <unordered_set>

namespace cxr::data {

DataInfo compute_data_info(const Dataset& ds, const Splits& splits) {
  DataInfo info;
  info.root = ds.root;
  std::unordered_set<std::int64_t> patients;
  for (std::int64_t i = 0; i < ds.size(); ++i) {
    const ImageRecord& r = ds.record(i);
    ++info.images;
    patients.insert(r.patient_id);
    if (r.labels == 0) ++info.no_finding;
    for (int k = 0; k < kNumClasses; ++k) info.labels[static_cast<std::size_t>(k)] += has_label(r.labels, k);
    if (!r.boxes.empty()) ++info.boxed_images;
    for (const Box& b : r.boxes) {
      ++info.boxes;
      ++info.box_labels[static_cast<std::size_t>(b.label)];
    }
  }
  info.patients = static_cast<std::int64_t>(patients.size());
  info.missing_images = ds.missing_images();
  info.train = static_cast<std::int64_t>(splits.train.size());
  info.val = static_cast<std::int64_t>(splits.val.size());
  info.test = static_cast<std::int64_t>(splits.test.size());
  info.split_source = splits.source;
  info.malformed_rows = ds.meta.malformed_rows;
  info.unknown_labels = ds.meta.unknown_labels;
  return info;
}

std::string data_info_text(const DataInfo& d) {
  std::string s;
  char line[256];
  auto add = [&](const char* fmt, auto... args) {
    std::snprintf(line, sizeof line, fmt, args...);
    s += line;
  };
  auto pct = [&](std::int64_t v) { return d.images ? 100.0 * static_cast<double>(v) / static_cast<double>(d.images) : 0.0; };
  add("data set        %s\n", d.root.c_str());
  add("images          %lld\n", static_cast<long long>(d.images));
  add("patients        %lld\n", static_cast<long long>(d.patients));
  add("missing files   %lld\n", static_cast<long long>(d.missing_images));
  add("no finding      %lld (%.1f%%)\n", static_cast<long long>(d.no_finding), pct(d.no_finding));
  add("boxes           %lld on %lld images\n", static_cast<long long>(d.boxes), static_cast<long long>(d.boxed_images));
  add("splits          train %lld, val %lld, test %lld (%s)\n", static_cast<long long>(d.train),
      static_cast<long long>(d.val), static_cast<long long>(d.test), d.split_source.c_str());
  if (d.malformed_rows) add("malformed rows  %lld (skipped)\n", static_cast<long long>(d.malformed_rows));
  for (const auto& [name, rows] : d.unknown_labels) add("unknown label   %s on %d rows (ignored)\n", name.c_str(), rows);
  add("\n%-20s %8s %7s %6s\n", "finding", "images", "%", "boxes");
  for (int k = 0; k < kNumClasses; ++k) {
    const auto kk = static_cast<std::size_t>(k);
    const std::string name(kClassNames[kk]);
    add("%-20s %8lld %6.2f%% %6lld\n", name.c_str(), static_cast<long long>(d.labels[kk]), pct(d.labels[kk]),
        static_cast<long long>(d.box_labels[kk]));
  }
  return s;
}

nlohmann::ordered_json data_info_json(const DataInfo& d) {
  nlohmann::ordered_json j;
  j["images"] = d.images;
  j["patients"] = d.patients;
  j["no_finding"] = d.no_finding;
  nlohmann::ordered_json labels = nlohmann::ordered_json::object(), box_labels = nlohmann::ordered_json::object();
  for (std::size_t k = 0; k < kClassNames.size(); ++k) {
    labels[std::string(kClassNames[k])] = d.labels[k];
    box_labels[std::string(kClassNames[k])] = d.box_labels[k];
  }
  j["labels"] = labels;
  j["boxes"] = d.boxes;
  j["boxed_images"] = d.boxed_images;
  j["box_labels"] = box_labels;
  j["missing_images"] = d.missing_images;
  j["splits"] = {{"train", d.train}, {"val", d.val}, {"test", d.test}};
  j["split_source"] = d.split_source;
  j["malformed_rows"] = d.malformed_rows;
  j["unknown_labels"] = nlohmann::ordered_json::object();
  for (const auto& [name, rows] : d.unknown_labels) j["unknown_labels"][name] = rows;
  return j;
}

}  // namespace cxr::data
