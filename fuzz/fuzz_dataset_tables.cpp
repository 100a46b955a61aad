// Fuzzes the data-set readers of data/formats.h on their CSV tables: CheXpert (train.csv),
// MIMIC-CXR-JPG (chexpert, metadata and split tables), PadChest, RSNA (stage_2_train_labels.csv)
// and VinDr (image_labels_train.csv, annotations_train.csv).
// Feeds: byte 0 picks the reader; the rest is split at NUL bytes into that reader's files, in
// the order above, written into a scratch folder (emptied for every input).
// Checks: no crash, leak or UB; a refused folder is a cxr::Error; every kept record is sane: a
// unique non-empty name indexed by by_name, patient id >= 0, split in {-1, 0, 1, 2}, label bits
// only within the 20 findings, a positive label never missing, every box of a known finding
// with finite coordinates and positive size, and the missing-file count equal to the records
// (the scratch folder has no images).
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/formats.h"
#include "data/labels.h"
#include "fuzz/fuzz_check.h"
#include "tensor/error.h"

using namespace cxr::data;
namespace fs = std::filesystem;

namespace {

struct Reader {
  const char* format;
  std::vector<const char*> files;
};
const Reader kReaders[] = {
    {"chexpert", {"train.csv"}},
    {"mimic", {"mimic-cxr-2.0.0-chexpert.csv", "mimic-cxr-2.0.0-metadata.csv", "mimic-cxr-2.0.0-split.csv"}},
    {"padchest", {"PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv"}},
    {"rsna", {"stage_2_train_labels.csv"}},
    {"vindr", {"image_labels_train.csv", "annotations_train.csv"}},
};

const fs::path& scratch() {
  static const fs::path dir = fs::temp_directory_path() / ("cxr_fuzz_tables_" + std::to_string(getpid()));
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const Reader& reader = kReaders[data[0] % (sizeof(kReaders) / sizeof(kReaders[0]))];
  std::error_code ec;
  fs::remove_all(scratch(), ec);
  fs::create_directories(scratch());
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::size_t start = 0;
  for (const char* name : reader.files) {
    if (start > body.size()) break;
    std::size_t end = body.find('\0', start);
    if (end == std::string::npos) end = body.size();
    std::ofstream(scratch() / name, std::ios::binary) << body.substr(start, end - start);
    start = end + 1;
  }
  Report report(Report::Echo::Off);
  Dataset ds;
  try {
    ds = load_dataset(scratch().string(), {.format = reader.format}, report);
  } catch (const cxr::Error&) {
    return 0;
  }
  FUZZ_CHECK(ds.format == reader.format, "format %s", ds.format.c_str());
  FUZZ_CHECK(ds.size() > 0, "an empty data set was accepted");
  FUZZ_CHECK(ds.meta.by_name.size() == ds.meta.images.size(), "by_name %zu vs images %zu", ds.meta.by_name.size(),
             ds.meta.images.size());
  FUZZ_CHECK(ds.missing_images() == ds.size(), "%lld missing of %lld (no image exists)",
             static_cast<long long>(ds.missing_images()), static_cast<long long>(ds.size()));
  FUZZ_CHECK((ds.findings & ~kAllFindings) == 0, "findings %x", static_cast<unsigned>(ds.findings));
  for (std::int64_t i = 0; i < ds.size(); ++i) {
    const ImageRecord& r = ds.record(i);
    FUZZ_CHECK(!r.name.empty(), "empty name at %lld", static_cast<long long>(i));
    FUZZ_CHECK(ds.meta.find(r.name) == i, "by_name does not index '%s'", r.name.c_str());
    FUZZ_CHECK(r.patient_id >= 0, "patient %lld", static_cast<long long>(r.patient_id));
    FUZZ_CHECK(r.split >= -1 && r.split <= 2, "split %d", r.split);
    FUZZ_CHECK((r.labels & ~kAllFindings) == 0 && (r.uncertain & ~kAllFindings) == 0, "label bits %x / %x",
               static_cast<unsigned>(r.labels), static_cast<unsigned>(r.uncertain));
    FUZZ_CHECK((r.labels & ~r.known) == 0, "a positive label is missing: %x / %x", static_cast<unsigned>(r.labels),
               static_cast<unsigned>(r.known));
    for (const Box& b : r.boxes) {
      FUZZ_CHECK(b.label >= 0 && b.label < kNumFindings, "box label %d", b.label);
      FUZZ_CHECK(std::isfinite(b.x) && std::isfinite(b.y) && std::isfinite(b.w) && std::isfinite(b.h) && b.w > 0 &&
                     b.h > 0,
                 "box %g %g %g %g", b.x, b.y, b.w, b.h);
    }
  }
  return 0;
}
