// Fuzzes the Data_Entry_2017(.csv|_v2020.csv) reader (data/metadata.h read_data_entry).
// Feeds: arbitrary bytes as the whole file (header line + rows; both NIH formats seed it).
// Checks: no crash, leak or UB; a bad header is a cxr::Error, anything else a skipped row;
// every kept record is sane: a non-empty trimmed unique name indexed by by_name, patient
// id, follow-up and age non-negative, original size both positive or both 0, label bits
// only in the 14 classes, and every row accounted for (kept or counted as malformed).
#include <cstdint>
#include <sstream>
#include <string>

#include "data/csv.h"
#include "data/labels.h"
#include "data/metadata.h"
#include "fuzz/fuzz_check.h"
#include "tensor/error.h"

using namespace cxr::data;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  Metadata meta;
  Report report(Report::Echo::Off);
  std::istringstream in(text);
  try {
    read_data_entry(in, "fuzz.csv", meta, report);
  } catch (const cxr::Error&) {
    FUZZ_CHECK(meta.images.empty(), "a rejected file kept %zu records", meta.images.size());
    return 0;
  }
  FUZZ_CHECK(meta.by_name.size() == meta.images.size(), "by_name %zu vs images %zu", meta.by_name.size(),
             meta.images.size());
  for (std::size_t i = 0; i < meta.images.size(); ++i) {
    const ImageRecord& r = meta.images[i];
    FUZZ_CHECK(!r.name.empty() && trim(r.name) == r.name, "bad name '%s'", r.name.c_str());
    FUZZ_CHECK(meta.find(r.name) == static_cast<std::int64_t>(i), "by_name does not index '%s'", r.name.c_str());
    FUZZ_CHECK(r.patient_id >= 0, "patient %lld", static_cast<long long>(r.patient_id));
    FUZZ_CHECK(r.follow_up >= 0, "follow-up %d", r.follow_up);
    FUZZ_CHECK(r.age_years >= -1, "age %d", r.age_years);
    FUZZ_CHECK((r.original_width > 0) == (r.original_height > 0) && r.original_width >= 0 && r.original_height >= 0,
               "original size %dx%d", r.original_width, r.original_height);
    FUZZ_CHECK((r.labels >> kNumClasses) == 0, "label mask %x", static_cast<unsigned>(r.labels));
    FUZZ_CHECK(r.boxes.empty(), "boxes before any box list");
  }
  // Every non-blank line after the header is a record or a counted malformed row.
  std::istringstream again(text);
  LineReader lines(again);
  long long rows = -1;  // the header
  while (lines.next()) ++rows;
  FUZZ_CHECK(rows == static_cast<long long>(meta.images.size()) + meta.malformed_rows,
             "%lld rows, %zu kept, %d malformed", rows, meta.images.size(), meta.malformed_rows);
  return 0;
}
