// RSNA Pneumonia Detection Challenge (Kaggle, 2018): one table of boxes and DICOM images.
//
//   stage_2_train_labels.csv   patientId,x,y,width,height,Target
//                              0004cfab-14fd-4e49-80ba-63a80b6bddd6,,,,,0
//                              00436515-870c-4b36-a041-de91049b9ab4,264.0,152.0,213.0,379.0,1
//                              00436515-870c-4b36-a041-de91049b9ab4,562.0,152.0,256.0,453.0,1
//   stage_2_train_images/<patientId>.dcm   (stage_1_* accepted too)
//
// One image per patientId; an image with Target 1 has one row per box (several boxes per
// image), Target 0 one row with empty box cells. Target is the "Lung Opacity" class of the
// challenge, read as both Pneumonia and Lung Opacity (as TorchXRayVision); the boxes are kept
// for both. The set has no other label (all others missing). Rows of one image that disagree
// on Target are reported; positive wins. Split: seeded patient-wise (patientId = image).
#include <cmath>
#include <filesystem>
#include <fstream>

#include "data/csv.h"
#include "data/formats.h"
#include "tensor/error.h"

namespace fs = std::filesystem;

namespace cxr::data {

Dataset load_rsna(const std::string& dir, const ReaderOptions&, Report& report) {
  const fs::path root(dir);
  std::error_code ec;
  std::string stage;
  for (const char* s : {"stage_2", "stage_1"})
    if (stage.empty() && fs::is_regular_file(root / (std::string(s) + "_train_labels.csv"), ec)) stage = s;
  CXR_CHECK(!stage.empty(), "data folder ", dir, " has no stage_2_train_labels.csv (RSNA Pneumonia)");
  const std::string source = (root / (stage + "_train_labels.csv")).string();
  const fs::path images = root / (stage + "_train_images");
  Dataset ds;
  ds.root = dir;
  ds.findings = bit(finding::kPneumonia) | bit(finding::kLungOpacity);
  ds.data_entry_file = source;
  CsvRows rows(source, "the header patientId,x,y,width,height,Target", report, ds.meta.malformed_rows);
  const CsvHeader& h = rows.header();
  const int id = h.require("patientId"), target = h.require("Target");
  const int cx = h.require("x"), cy = h.require("y"), cw = h.require("width"), ch = h.require("height");
  PatientIds patients;
  while (rows.next()) {
    auto cell = [&](int c) { return rows.cell(c); };
    const std::string pid = cell(id);
    const auto t = parse_int(cell(target));
    if (pid.empty()) { rows.skip("empty patientId"); continue; }
    if (!t || (*t != 0 && *t != 1)) { rows.skip("Target '" + cell(target) + "' (expected 0 or 1)"); continue; }
    Box b;
    if (*t == 1) {
      float v[4];
      bool ok = true;
      const int cols[4] = {cx, cy, cw, ch};
      for (int k = 0; k < 4; ++k) {
        const auto d = parse_double(cell(cols[k]));
        ok = ok && d && std::isfinite(*d) && std::fabs(*d) < 1e7;
        v[k] = ok ? static_cast<float>(*d) : 0.f;
      }
      if (!ok || v[2] <= 0 || v[3] <= 0) { rows.skip("Target 1 without a box (x, y, width, height)"); continue; }
      b = Box{finding::kPneumonia, v[0], v[1], v[2], v[3]};
    }
    std::int64_t i = ds.meta.find(pid + ".dcm");
    if (i < 0) {
      ImageRecord r;
      r.name = pid + ".dcm";
      r.patient_id = patients.id(pid);
      const fs::path p = images / r.name;
      std::string path = fs::is_regular_file(p, ec) ? p.string() : std::string();
      ds.add(std::move(r), std::move(path));
      i = ds.size() - 1;
    } else if (has_label(ds.record(i).labels, finding::kPneumonia) != (*t == 1)) {
      report.warn(detail::concat(source, ":", rows.line(), ": Target ", *t, " disagrees with an earlier row of ", pid,
                                 " (positive kept)"));
    }
    ImageRecord& r = ds.meta.images[static_cast<std::size_t>(i)];
    if (*t == 1) {
      r.labels |= bit(finding::kPneumonia) | bit(finding::kLungOpacity);
      r.boxes.push_back(b);
      b.label = finding::kLungOpacity;
      r.boxes.push_back(b);
    }
  }
  CXR_CHECK(ds.size() > 0, "the data set is empty: ", source, " has no usable row");
  return ds;
}

}  // namespace cxr::data
