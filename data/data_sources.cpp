// Several data sets as one (see data_sources.h).
#include "data/data_sources.h"

#include <algorithm>
#include <map>

#include "data/csv.h"
#include "tensor/error.h"

namespace cxr::data {

DataSource parse_data_source(const std::string& arg) {
  DataSource s{arg, 0};
  const auto colon = arg.rfind(':');
  if (colon != std::string::npos && colon > 0) {
    const auto w = parse_double(std::string_view(arg).substr(colon + 1));
    if (w) {
      CXR_CHECK(*w > 0 && *w < 1e9, "--data ", arg, ": the sampling weight must be a positive number, got ", *w);
      s.dir = arg.substr(0, colon);
      s.weight = *w;
    }
  }
  CXR_CHECK(!s.dir.empty(), "--data needs a folder, got '", arg, "'");
  return s;
}

int DataSets::source_of(std::int64_t record) const {
  const auto it = std::upper_bound(first.begin(), first.end(), record);
  return static_cast<int>(it - first.begin()) - 1;
}

DataSets load_data_sets(const std::vector<DataSource>& sources, const ReaderOptions& reader, const SplitOptions& split,
                        Report& report) {
  CXR_CHECK(!sources.empty(), "no data set given (--data DIR)");
  DataSets out;
  if (sources.size() == 1) {
    out.dataset = load_dataset(sources[0].dir, reader, report);
    out.splits = make_splits(out.dataset, split, report);
    out.dirs = {sources[0].dir};
    out.formats = {out.dataset.format};
    out.findings = {out.dataset.findings};
    out.first = {0, out.dataset.size()};
    return out;
  }
  Dataset& m = out.dataset;
  m.findings = 0;
  m.format.clear();
  std::map<std::pair<int, std::int64_t>, std::int64_t> patients;
  std::int64_t unlisted = 0;
  for (std::size_t k = 0; k < sources.size(); ++k) {
    const Dataset ds = load_dataset(sources[k].dir, reader, report);
    const Splits sp = make_splits(ds, split, report);
    unlisted += sp.unlisted;
    std::vector<std::int8_t> where(static_cast<std::size_t>(ds.size()), -1);
    for (auto i : sp.train) where[static_cast<std::size_t>(i)] = 0;
    for (auto i : sp.val) where[static_cast<std::size_t>(i)] = 1;
    for (auto i : sp.test) where[static_cast<std::size_t>(i)] = 2;
    out.dirs.push_back(sources[k].dir);
    out.formats.push_back(ds.format);
    out.findings.push_back(ds.findings);
    out.first.push_back(m.size());
    m.root += (m.root.empty() ? "" : " + ") + sources[k].dir;
    m.format += (m.format.empty() ? "" : "+") + ds.format;
    m.findings |= ds.findings;
    m.meta.malformed_rows += ds.meta.malformed_rows;
    for (const auto& [n, c] : ds.meta.unknown_labels) m.meta.unknown_labels[n] += c;
    for (const auto& [n, c] : ds.meta.unmapped_labels) m.meta.unmapped_labels[n] += c;
    for (std::int64_t i = 0; i < ds.size(); ++i) {
      ImageRecord r = ds.record(i);
      r.known &= ds.findings;
      r.name = std::to_string(k + 1) + ":" + r.name;
      r.patient_id = patients.emplace(std::make_pair(static_cast<int>(k), r.patient_id),
                                      static_cast<std::int64_t>(patients.size()))
                         .first->second;
      r.split = where[static_cast<std::size_t>(i)];
      m.add(std::move(r), ds.image_path(i));
    }
  }
  out.first.push_back(m.size());
  out.splits = make_splits(m, split, report);
  out.splits.source = "each set's own split";
  out.splits.unlisted = unlisted;
  return out;
}

std::vector<double> source_sample_weights(const DataSets& sets, const std::vector<DataSource>& sources,
                                          const std::vector<std::int64_t>& indices) {
  bool any = false;
  for (const auto& s : sources) any |= s.weight > 0;
  if (!any) return {};
  std::vector<std::int64_t> count(sources.size(), 0);
  for (auto i : indices) ++count[static_cast<std::size_t>(sets.source_of(i))];
  std::vector<double> w;
  w.reserve(indices.size());
  for (auto i : indices) {
    const auto s = static_cast<std::size_t>(sets.source_of(i));
    w.push_back((sources[s].weight > 0 ? sources[s].weight : 1.0) / static_cast<double>(count[s]));
  }
  return w;
}

}  // namespace cxr::data
