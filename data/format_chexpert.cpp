// CheXpert (Stanford): train.csv and valid.csv.
//
//   Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,
//   Lung Opacity,Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,
//   Pleural Effusion,Pleural Other,Fracture,Support Devices
//   CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg,Female,68,Frontal,AP,1.0,,,,,...
//
// Cells: 1.0 positive, 0.0 negative, -1.0 uncertain, blank not mentioned (missing, as in
// TorchXRayVision); valid.csv writes 1.0/0.0 (some copies 1/0): both are read. Path starts
// with the release's folder name; it is looked up under DIR as given, then with its first
// component dropped (DIR is usually that folder). Patient: the "patientNNNNN" component.
// Split: train.csv is train (validation carved out by patient), valid.csv -- the 234
// radiologist-labelled images -- is the test split. "No Finding" is not a class; label
// columns cxr does not know are reported once and ignored.
#include <cctype>
#include <filesystem>
#include <fstream>

#include "data/csv.h"
#include "data/formats.h"
#include "tensor/error.h"

namespace fs = std::filesystem;

namespace cxr::data {

namespace {

// Numeric part of the "patientNNNNN" component of a CheXpert path, or -1.
std::int64_t patient_of(const std::string& path) {
  const auto p = path.find("patient");
  if (p == std::string::npos) return -1;
  std::size_t e = p + 7;
  while (e < path.size() && std::isdigit(static_cast<unsigned char>(path[e]))) ++e;
  const auto v = parse_int(std::string_view(path).substr(p + 7, e - p - 7));
  return v ? *v : -1;
}

std::string resolve(const fs::path& root, const std::string& rel) {
  std::error_code ec;
  if (fs::is_regular_file(root / rel, ec)) return (root / rel).string();
  const auto slash = rel.find('/');
  if (slash != std::string::npos && fs::is_regular_file(root / rel.substr(slash + 1), ec))
    return (root / rel.substr(slash + 1)).string();
  return "";
}

void read_table(const fs::path& root, const std::string& file, std::int8_t split, const ReaderOptions& o,
                Dataset& ds, Report& report) {
  const std::string source = (root / file).string();
  CsvRows rows(source, "a CheXpert header (Path,Sex,Age,...)", report, ds.meta.malformed_rows);
  const CsvHeader& h = rows.header();
  const int path_col = h.require("Path");
  const int sex_col = h.find("Sex"), age_col = h.find("Age");
  const int fl_col = h.require("Frontal/Lateral"), view_col = h.find("AP/PA");
  std::vector<std::pair<int, int>> label_cols;  // (column, finding)
  for (std::size_t c = 0; c < h.names.size(); ++c) {
    const std::string& n = h.names[c];
    if (n == "Path" || n == "Sex" || n == "Age" || n == "Frontal/Lateral" || n == "AP/PA" || n == "No Finding") continue;
    const int g = finding_index(n);
    if (g < 0) {
      report.warn(source + ": unknown label column '" + n + "' ignored");
      ++ds.meta.unknown_labels[n];
      continue;
    }
    label_cols.emplace_back(static_cast<int>(c), g);
    ds.findings |= bit(g);
  }
  CXR_CHECK(!label_cols.empty(), source, ": no label column (expected CheXpert's 14, e.g. 'Cardiomegaly')");
  while (rows.next()) {
    const auto& f = rows.fields();
    ImageRecord r;
    r.name = rows.cell(path_col);
    r.patient_id = patient_of(r.name);
    if (r.patient_id < 0) { rows.skip("no 'patientNNNNN' in Path '" + r.name + "'"); continue; }
    if (sex_col >= 0) r.gender = rows.cell(sex_col);
    if (age_col >= 0) r.age_years = parse_age_years(f[static_cast<std::size_t>(age_col)]);
    const std::string fl = rows.cell(fl_col);
    if (fl != "Frontal" && fl != "Lateral") { rows.skip("Frontal/Lateral is '" + fl + "'"); continue; }
    r.view = fl == "Lateral" ? "LL" : view_col >= 0 ? rows.cell(view_col) : "";
    if (o.frontal_only && fl != "Frontal") continue;
    r.known = 0;
    r.split = split;
    bool bad = false;
    for (const auto& [c, g] : label_cols) {
      const std::string& cell = f[static_cast<std::size_t>(c)];
      const CellValue v = parse_label_cell(cell);
      if (v == CellValue::bad) {
        rows.skip("label " + h.names[static_cast<std::size_t>(c)] + " is '" + cell + "' (expected 1.0, 0.0, -1.0 or blank)");
        bad = true;
        break;
      }
      apply_label(r, g, v, o.uncertain);
    }
    if (bad) continue;
    if (ds.meta.find(r.name) >= 0) { rows.skip("duplicate Path " + r.name); continue; }
    std::string path = resolve(root, r.name);
    ds.add(std::move(r), std::move(path));
  }
}

}  // namespace

Dataset load_chexpert(const std::string& dir, const ReaderOptions& o, Report& report) {
  const fs::path root(dir);
  std::error_code ec;
  Dataset ds;
  ds.root = dir;
  ds.findings = 0;
  bool any = false;
  for (const auto& [file, split] : {std::pair<const char*, std::int8_t>{"train.csv", 0}, {"valid.csv", 2}}) {
    if (!fs::is_regular_file(root / file, ec)) continue;
    any = true;
    if (ds.data_entry_file.empty()) ds.data_entry_file = (root / file).string();
    read_table(root, file, split, o, ds, report);
  }
  CXR_CHECK(any, "data folder ", dir, " has neither train.csv nor valid.csv (CheXpert)");
  CXR_CHECK(ds.size() > 0, "the data set is empty: ", dir, "'s CheXpert tables have no usable row (",
            ds.meta.malformed_rows, " malformed rows skipped)");
  return ds;
}

}  // namespace cxr::data
