// Train / validation / test splits, always patient-disjoint.
//
// With train_val_list.txt and test_list.txt present, the official split is used: the test
// split is test_list, and validation is carved out of train_val by patient (a seeded choice
// of val_fraction of its patients). Without them, patients are shuffled with the seed and
// cut into test (test_fraction of the patients), validation (val_fraction of the rest) and
// train. Indices are into the Dataset's records, in ascending order.
// A set whose reader gives each record its own split (ImageRecord::split: CheXpert, MIMIC,
// VinDr, class folders) uses it instead: train / val / test as given, records without one left
// out, and when the set has no validation part, validation carved out of train by patient.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/report.h"

namespace cxr::data {

struct SplitOptions {
  double val_fraction = 0.1;   // of the train_val patients
  double test_fraction = 0.2;  // of all patients, when there are no official lists
  std::uint64_t seed = 0;
  bool use_official = true;    // use the lists when both files exist
};

struct Splits {
  std::vector<std::int64_t> train, val, test;
  std::string source;            // "official lists" or "seeded patient-wise split"
  std::int64_t unlisted = 0;     // records in neither official list (left out)
};

Splits make_splits(const Dataset& dataset, const SplitOptions& options = {}, Report& report = default_report());

// True when no patient has images in two of the splits; otherwise `why` names one.
bool patient_disjoint(const Dataset& dataset, const Splits& splits, std::string* why = nullptr);

// "train", "val" or "test" -> the indices; throws cxr::Error on another name.
const std::vector<std::int64_t>& split_by_name(const Splits& splits, const std::string& name);

}  // namespace cxr::data
