// Fuzzes the split-list reader (train_val_list.txt / test_list.txt: data/metadata.h
// read_image_list) and the official-list split built from it (data/splits.h make_splits).
// Feeds: arbitrary bytes as a list file. The names read are cut in two (the first two
// thirds as train_val_list, the rest as test_list) and split over a fixed table of 320
// images ("%08d_%03d.png", patients 1..40, follow-ups 0..7: the first rows of the real
// Data_Entry file have these names).
// Checks: no crash, leak or UB; every name read is non-empty, trimmed and one line; one
// name per non-blank line; the splits hold valid, strictly ascending, disjoint indices that
// add up to the table with the unlisted ones; test holds only test_list images; val and
// train share no patient.
#include <cstdint>
#include <cstdio>
#include <set>
#include <sstream>
#include <string>

#include "data/csv.h"
#include "data/dataset.h"
#include "data/metadata.h"
#include "data/splits.h"
#include "fuzz/fuzz_check.h"
#include "tensor/error.h"

using namespace cxr::data;

namespace {

const Dataset& table() {
  static const Dataset ds = [] {
    Dataset d;
    d.root = "fuzz";
    d.data_entry_file = "fuzz/Data_Entry_2017_v2020.csv";
    for (int p = 1; p <= 40; ++p)
      for (int f = 0; f < 8; ++f) {
        char name[32];
        std::snprintf(name, sizeof name, "%08d_%03d.png", p, f);
        ImageRecord r;
        r.name = name;
        r.patient_id = p;
        r.follow_up = f;
        d.add(std::move(r), "");
      }
    return d;
  }();
  return ds;
}

void check_sorted(const std::vector<std::int64_t>& v, std::int64_t n, const char* what) {
  for (std::size_t i = 0; i < v.size(); ++i) {
    FUZZ_CHECK(v[i] >= 0 && v[i] < n, "%s index %lld out of range", what, static_cast<long long>(v[i]));
    FUZZ_CHECK(i == 0 || v[i - 1] < v[i], "%s not strictly ascending", what);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::istringstream in(text);
  const std::vector<std::string> names = read_image_list(in);
  std::istringstream again(text);
  LineReader lines(again);
  std::size_t rows = 0;
  while (lines.next()) ++rows;
  FUZZ_CHECK(rows == names.size(), "%zu non-blank lines, %zu names", rows, names.size());
  for (const auto& n : names)
    FUZZ_CHECK(!n.empty() && trim(n) == n && n.find('\n') == std::string::npos, "bad name '%s'", n.c_str());

  Dataset ds = table();
  const std::size_t cut = names.size() * 2 / 3;
  ds.train_val_list = std::vector<std::string>(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(cut));
  ds.test_list = std::vector<std::string>(names.begin() + static_cast<std::ptrdiff_t>(cut), names.end());
  SplitOptions opt;
  opt.seed = size;
  opt.val_fraction = static_cast<double>(size % 10) / 10.0;
  Report report(Report::Echo::Off);
  const Splits s = make_splits(ds, opt, report);
  const std::int64_t n = ds.size();
  check_sorted(s.train, n, "train");
  check_sorted(s.val, n, "val");
  check_sorted(s.test, n, "test");
  std::set<std::int64_t> all;
  for (const auto* v : {&s.train, &s.val, &s.test}) all.insert(v->begin(), v->end());
  FUZZ_CHECK(all.size() == s.train.size() + s.val.size() + s.test.size(), "splits overlap");
  FUZZ_CHECK(static_cast<std::int64_t>(all.size()) + s.unlisted == n, "%zu listed + %lld unlisted != %lld",
             all.size(), static_cast<long long>(s.unlisted), static_cast<long long>(n));
  const std::set<std::string> test_names(ds.test_list->begin(), ds.test_list->end());
  for (auto i : s.test) FUZZ_CHECK(test_names.count(ds.record(i).name), "%s in test", ds.record(i).name.c_str());
  std::set<std::int64_t> train_patients;
  for (auto i : s.train) train_patients.insert(ds.record(i).patient_id);
  for (auto i : s.val)
    FUZZ_CHECK(!train_patients.count(ds.record(i).patient_id), "patient %lld in train and val",
               static_cast<long long>(ds.record(i).patient_id));
  return 0;
}
