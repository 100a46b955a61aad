// Several data sets as one: `--data A --data B:2` (docs/data.md, "Several data sets").
//
//   DataSource        a folder, optionally with a sampling weight ("DIR:W"; W > 0)
//   load_data_sets    one source: that set and its splits, exactly as a single-set run;
//                     several: each set read (data/formats.h) and split patient-wise on its
//                     own, then concatenated into one Dataset: record names prefixed with the
//                     set's number ("2:CheXpert-v1.0-small/train/..."), patients kept apart,
//                     each record's `known` limited to its set's findings (so a finding only
//                     another set has is *missing*, not negative), the splits concatenated.
//   source_sample_weights  with weights given: per image w_s / n_s, so that an epoch draws
//                     set s with probability w_s / Σ w (with replacement, as --weighted
//                     sampling); sets without a weight count as 1.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/formats.h"
#include "data/splits.h"

namespace cxr::data {

struct DataSource {
  std::string dir;
  double weight = 0;  // 0: not given
};
// "DIR" or "DIR:W" (W a positive number; a folder whose name ends in ':<number>' is written
// "DIR:1" to keep it whole).
DataSource parse_data_source(const std::string& arg);

struct DataSets {
  Dataset dataset;
  Splits splits;
  std::vector<std::string> dirs, formats;  // per source
  std::vector<LabelMask> findings;          // per source
  std::vector<std::int64_t> first;          // first record of each source, then size()
  int source_of(std::int64_t record) const;
};

DataSets load_data_sets(const std::vector<DataSource>& sources, const ReaderOptions& reader,
                        const SplitOptions& split, Report& report = default_report());

// One weight per entry of `indices` (empty when no source has a weight).
std::vector<double> source_sample_weights(const DataSets& sets, const std::vector<DataSource>& sources,
                                          const std::vector<std::int64_t>& indices);

}  // namespace cxr::data
