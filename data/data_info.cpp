// data-info: counting and formatting.
#include "data/data_info.h"

#include <cstdio>
#include <set>
#include <tuple>
#include <unordered_set>

namespace cxr::data {

DataInfo compute_data_info(const Dataset& ds, const Splits& splits) {
  DataInfo info;
  info.root = ds.root;
  info.format = ds.format;
  info.findings = ds.findings;
  std::unordered_set<std::int64_t> patients;
  for (std::int64_t i = 0; i < ds.size(); ++i) {
    const ImageRecord& r = ds.record(i);
    ++info.images;
    patients.insert(r.patient_id);
    if ((r.labels & ds.findings) == 0 && (r.known & ds.findings) != 0) ++info.no_finding;
    for (int g = 0; g < kNumFindings; ++g) {
      if (!has_label(ds.findings, g)) continue;
      const auto k = static_cast<std::size_t>(g);
      info.labels[k] += ds.present(i, g) && has_label(r.labels, g);
      info.missing[k] += !ds.present(i, g);
      info.uncertain[k] += has_label(r.uncertain, g);
    }
    if (!r.view.empty()) ++info.views[r.view];
    if (!r.boxes.empty()) ++info.boxed_images;
    // A rectangle kept under two findings (RSNA: Pneumonia and Lung Opacity) is one box.
    std::set<std::tuple<float, float, float, float>> rects;
    for (const Box& b : r.boxes) {
      rects.emplace(b.x, b.y, b.w, b.h);
      if (b.label >= 0 && b.label < kNumFindings) ++info.box_labels[static_cast<std::size_t>(b.label)];
    }
    info.boxes += static_cast<std::int64_t>(rects.size());
  }
  info.patients = static_cast<std::int64_t>(patients.size());
  info.missing_images = ds.missing_images();
  info.train = static_cast<std::int64_t>(splits.train.size());
  info.val = static_cast<std::int64_t>(splits.val.size());
  info.test = static_cast<std::int64_t>(splits.test.size());
  info.split_source = splits.source;
  info.malformed_rows = ds.meta.malformed_rows;
  info.unknown_labels = ds.meta.unknown_labels;
  info.unmapped_labels = ds.meta.unmapped_labels;
  return info;
}

namespace {
bool any_nonzero(const std::array<std::int64_t, kNumFindings>& a) {
  for (auto v : a)
    if (v) return true;
  return false;
}
}  // namespace

std::string data_info_text(const DataInfo& d) {
  std::string s;
  char line[256];
  auto add = [&](const char* fmt, auto... args) {
    std::snprintf(line, sizeof line, fmt, args...);
    s += line;
  };
  auto pct = [&](std::int64_t v) { return d.images ? 100.0 * static_cast<double>(v) / static_cast<double>(d.images) : 0.0; };
  add("data set        %s\n", d.root.c_str());
  if (d.format != "nih") add("format          %s\n", d.format.c_str());
  add("images          %lld\n", static_cast<long long>(d.images));
  add("patients        %lld\n", static_cast<long long>(d.patients));
  add("missing files   %lld\n", static_cast<long long>(d.missing_images));
  add("no finding      %lld (%.1f%%)\n", static_cast<long long>(d.no_finding), pct(d.no_finding));
  add("boxes           %lld on %lld images\n", static_cast<long long>(d.boxes), static_cast<long long>(d.boxed_images));
  add("splits          train %lld, val %lld, test %lld (%s)\n", static_cast<long long>(d.train),
      static_cast<long long>(d.val), static_cast<long long>(d.test), d.split_source.c_str());
  if (!d.views.empty() && d.format != "nih") {
    std::string v;
    for (const auto& [view, n] : d.views) v += (v.empty() ? "" : ", ") + view + " " + std::to_string(n);
    add("views           %s\n", v.c_str());
  }
  if (d.malformed_rows) add("malformed rows  %lld (skipped)\n", static_cast<long long>(d.malformed_rows));
  for (const auto& [name, rows] : d.unknown_labels) add("unknown label   %s on %d rows (ignored)\n", name.c_str(), rows);
  if (!d.unmapped_labels.empty())
    add("unmapped        %zu labels of the set have no finding in cxr's label space (--json lists them)\n",
        d.unmapped_labels.size());
  const bool extra = any_nonzero(d.missing) || any_nonzero(d.uncertain);
  if (extra) add("\n%-26s %8s %7s %6s %8s %9s\n", "finding", "images", "%", "boxes", "missing", "uncertain");
  else add("\n%-20s %8s %7s %6s\n", "finding", "images", "%", "boxes");
  for (int g = 0; g < kNumFindings; ++g) {
    if (!has_label(d.findings, g)) continue;
    const auto k = static_cast<std::size_t>(g);
    const std::string name(kFindingNames[k]);
    if (extra)
      add("%-26s %8lld %6.2f%% %6lld %8lld %9lld\n", name.c_str(), static_cast<long long>(d.labels[k]), pct(d.labels[k]),
          static_cast<long long>(d.box_labels[k]), static_cast<long long>(d.missing[k]),
          static_cast<long long>(d.uncertain[k]));
    else
      add("%-20s %8lld %6.2f%% %6lld\n", name.c_str(), static_cast<long long>(d.labels[k]), pct(d.labels[k]),
          static_cast<long long>(d.box_labels[k]));
  }
  return s;
}

nlohmann::ordered_json data_info_json(const DataInfo& d) {
  nlohmann::ordered_json j;
  j["format"] = d.format;
  j["images"] = d.images;
  j["patients"] = d.patients;
  j["no_finding"] = d.no_finding;
  nlohmann::ordered_json labels = nlohmann::ordered_json::object(), box_labels = nlohmann::ordered_json::object(),
                         missing = nlohmann::ordered_json::object(), uncertain = nlohmann::ordered_json::object();
  for (int g = 0; g < kNumFindings; ++g) {
    if (!has_label(d.findings, g)) continue;
    const auto k = static_cast<std::size_t>(g);
    const std::string name(kFindingNames[k]);
    labels[name] = d.labels[k];
    box_labels[name] = d.box_labels[k];
    missing[name] = d.missing[k];
    uncertain[name] = d.uncertain[k];
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
  j["missing_labels"] = missing;
  j["uncertain_labels"] = uncertain;
  j["views"] = nlohmann::ordered_json::object();
  for (const auto& [view, n] : d.views) j["views"][view] = n;
  j["unmapped_labels"] = nlohmann::ordered_json::object();
  for (const auto& [name, rows] : d.unmapped_labels) j["unmapped_labels"][name] = rows;
  return j;
}

}  // namespace cxr::data
