// MIMIC-CXR-JPG 2.0.0 (PhysioNet): three tables and the JPEG tree.
//
//   mimic-cxr-2.0.0-metadata.csv  dicom_id,subject_id,study_id,PerformedProcedureStepDescription,
//                                 ViewPosition,Rows,Columns,StudyDate,StudyTime,...  (one row per image)
//   mimic-cxr-2.0.0-chexpert.csv  subject_id,study_id,Atelectasis,Cardiomegaly,Consolidation,Edema,
//                                 Enlarged Cardiomediastinum,Fracture,Lung Lesion,Lung Opacity,
//                                 No Finding,Pleural Effusion,Pleural Other,Pneumonia,Pneumothorax,
//                                 Support Devices  (one row per study; 1.0 / 0.0 / -1.0 / blank)
//   mimic-cxr-2.0.0-split.csv     dicom_id,study_id,subject_id,split (train / validate / test)
//   files/p10/p10000032/s50414267/<dicom_id>.jpg
//
// Labels are per study (the report's); every image of a study gets them. An image whose study
// has no label row keeps every label missing. The official split is used when split.csv is
// there; without it, a seeded patient-wise split (subject_id). PhysioNet ships the tables
// gzipped: a folder with only the .csv.gz is an error that says to gunzip them.
#include <filesystem>
#include <fstream>
#include <unordered_map>

#include "data/csv.h"
#include "data/formats.h"
#include "tensor/error.h"

namespace fs = std::filesystem;

namespace cxr::data {

namespace {

constexpr const char* kMeta = "mimic-cxr-2.0.0-metadata.csv";
constexpr const char* kLabels = "mimic-cxr-2.0.0-chexpert.csv";
constexpr const char* kSplit = "mimic-cxr-2.0.0-split.csv";

struct Table {
  CsvHeader header;
  std::vector<std::pair<int, std::vector<std::string>>> rows;  // (line, fields)
};

Table read_table(const fs::path& path, Report& report, int& malformed) {
  CsvRows rows(path.string(), "a header", report, malformed);
  Table t;
  t.header = rows.header();
  while (rows.next()) t.rows.emplace_back(rows.line(), rows.fields());
  return t;
}

}  // namespace

Dataset load_mimic(const std::string& dir, const ReaderOptions& o, Report& report) {
  const fs::path root(dir);
  std::error_code ec;
  for (const char* f : {kMeta, kLabels})
    if (!fs::is_regular_file(root / f, ec)) {
      CXR_CHECK(!fs::is_regular_file(root / (std::string(f) + ".gz"), ec), dir, " has ", f,
                ".gz but not ", f, ": decompress the MIMIC-CXR-JPG tables first (gunzip ", f, ".gz)");
      CXR_FAIL("data folder ", dir, " has no ", f, " (MIMIC-CXR-JPG)");
    }
  Dataset ds;
  ds.root = dir;
  ds.findings = 0;
  ds.data_entry_file = (root / kMeta).string();

  // Labels per study.
  const Table labels = read_table(root / kLabels, report, ds.meta.malformed_rows);
  const int study_l = labels.header.require("study_id");
  labels.header.require("subject_id");
  std::vector<std::pair<int, int>> label_cols;
  for (std::size_t c = 0; c < labels.header.names.size(); ++c) {
    const std::string& n = labels.header.names[c];
    if (n == "subject_id" || n == "study_id" || n == "No Finding") continue;
    const int g = finding_index(n);
    if (g < 0) {
      report.warn(labels.header.source + ": unknown label column '" + n + "' ignored");
      ++ds.meta.unknown_labels[n];
      continue;
    }
    label_cols.emplace_back(static_cast<int>(c), g);
    ds.findings |= bit(g);
  }
  std::unordered_map<std::string, ImageRecord> study_labels;
  for (const auto& [ln, f] : labels.rows) {
    ImageRecord r;
    r.known = 0;
    bool bad = false;
    for (const auto& [c, g] : label_cols) {
      const CellValue v = parse_label_cell(f[static_cast<std::size_t>(c)]);
      if (v == CellValue::bad) {
        report.warn(detail::concat(labels.header.source, ":", ln, ": malformed row skipped: label ",
                                   labels.header.names[static_cast<std::size_t>(c)], " is '",
                                   f[static_cast<std::size_t>(c)], "' (expected 1.0, 0.0, -1.0 or blank)"));
        ++ds.meta.malformed_rows;
        bad = true;
        break;
      }
      apply_label(r, g, v, o.uncertain);
    }
    if (!bad) study_labels[std::string(trim(f[static_cast<std::size_t>(study_l)]))] = r;
  }

  // The official split, per image.
  std::unordered_map<std::string, std::int8_t> split_of;
  if (fs::is_regular_file(root / kSplit, ec)) {
    const Table split = read_table(root / kSplit, report, ds.meta.malformed_rows);
    const int id = split.header.require("dicom_id"), sp = split.header.require("split");
    for (const auto& [ln, f] : split.rows) {
      const std::string s(trim(f[static_cast<std::size_t>(sp)]));
      const std::int8_t v = s == "train" ? 0 : s == "validate" ? 1 : s == "test" ? 2 : -1;
      if (v < 0) {
        report.warn(detail::concat(split.header.source, ":", ln, ": malformed row skipped: split '", s,
                                   "' (expected train, validate or test)"));
        ++ds.meta.malformed_rows;
        continue;
      }
      split_of[std::string(trim(f[static_cast<std::size_t>(id)]))] = v;
    }
  }

  // One record per image of the metadata table.
  const Table meta = read_table(root / kMeta, report, ds.meta.malformed_rows);
  const int id = meta.header.require("dicom_id"), subject = meta.header.require("subject_id");
  const int study = meta.header.require("study_id"), view = meta.header.require("ViewPosition");
  std::int64_t unlabelled = 0;
  for (const auto& [ln, f] : meta.rows) {
    ImageRecord r;
    const std::string dicom(trim(f[static_cast<std::size_t>(id)]));
    const std::string subj(trim(f[static_cast<std::size_t>(subject)]));
    const std::string stud(trim(f[static_cast<std::size_t>(study)]));
    const auto pid = parse_int(subj);
    if (dicom.empty() || !pid || *pid < 0 || subj.size() < 2 || !parse_int(stud)) {
      report.warn(detail::concat(meta.header.source, ":", ln, ": malformed row skipped: bad dicom_id '", dicom,
                                 "', subject_id '", subj, "' or study_id '", stud, "'"));
      ++ds.meta.malformed_rows;
      continue;
    }
    r.view = std::string(trim(f[static_cast<std::size_t>(view)]));
    if (o.frontal_only && !is_frontal_view(r.view)) continue;
    const auto it = study_labels.find(stud);
    if (it != study_labels.end()) {
      r.labels = it->second.labels;
      r.known = it->second.known;
      r.uncertain = it->second.uncertain;
    } else {
      r.known = 0;
      ++unlabelled;
    }
    r.patient_id = *pid;
    const auto s = split_of.find(dicom);
    if (s != split_of.end()) r.split = s->second;
    r.name = "files/p" + subj.substr(0, 2) + "/p" + subj + "/s" + stud + "/" + dicom + ".jpg";
    if (ds.meta.find(r.name) >= 0) {
      report.warn(detail::concat(meta.header.source, ":", ln, ": malformed row skipped: duplicate dicom_id ", dicom));
      ++ds.meta.malformed_rows;
      continue;
    }
    const fs::path p = root / r.name;
    std::string path = fs::is_regular_file(p, ec) ? p.string() : std::string();
    ds.add(std::move(r), std::move(path));
  }
  if (unlabelled > 0)
    report.warn(detail::concat(unlabelled, " images of ", meta.header.source, " belong to studies without a row in ",
                               labels.header.source, ": every label missing"));
  if (!split_of.empty()) {
    std::int64_t unsplit = 0;
    for (std::int64_t i = 0; i < ds.size(); ++i) unsplit += ds.record(i).split < 0;
    if (unsplit > 0)
      report.warn(detail::concat(unsplit, " images are not in ", kSplit, " (left out of every split)"));
  }
  CXR_CHECK(ds.size() > 0, "the data set is empty: ", ds.data_entry_file, " has no usable row");
  return ds;
}

}  // namespace cxr::data
