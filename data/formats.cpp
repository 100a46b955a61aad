// Format detection, dispatch and the helpers the readers share.
#include "data/formats.h"

#include <filesystem>
#include <fstream>

#include "data/csv.h"
#include "tensor/error.h"

namespace fs = std::filesystem;

namespace cxr::data {

CsvRows::CsvRows(const std::string& path, const std::string& expected, Report& report, int& skipped,
                 std::string what)
    : in_(path, std::ios::binary), reader_(in_), header_{path, {}}, report_(report), skipped_(skipped),
      what_(std::move(what)) {
  CXR_CHECK(in_.good(), "cannot open ", path);
  const auto header = reader_.next();
  CXR_CHECK(header.has_value(), path, ": empty file, expected ", expected);
  for (const auto& c : split_csv_line(*header)) header_.names.emplace_back(trim(c));
}

bool CsvRows::next() {
  while (auto line = reader_.next()) {
    fields_ = split_csv_line(*line);
    if (fields_.size() == header_.names.size()) return true;
    skip(detail::concat("expected ", header_.names.size(), " fields, found ", fields_.size()));
  }
  return false;
}

std::string CsvRows::cell(int column) const { return std::string(trim(fields_.at(static_cast<std::size_t>(column)))); }

void CsvRows::skip(const std::string& why) {
  report_.warn(detail::concat(header_.source, ":", line(), ": ", what_, " skipped: ", why));
  ++skipped_;
}

UncertainPolicy parse_uncertain_policy(const std::string& name) {
  if (name == "ignore") return UncertainPolicy::ignore;
  if (name == "zeros") return UncertainPolicy::zeros;
  if (name == "ones") return UncertainPolicy::ones;
  CXR_FAIL("unknown uncertainty policy '", name, "': expected ignore, zeros or ones");
}

const char* uncertain_policy_name(UncertainPolicy p) {
  switch (p) {
    case UncertainPolicy::ignore: return "ignore";
    case UncertainPolicy::zeros: return "zeros";
    case UncertainPolicy::ones: return "ones";
  }
  return "?";
}

const std::vector<std::string>& format_names() {
  static const std::vector<std::string> names = {"nih", "chexpert", "mimic", "padchest", "rsna", "vindr", "folders"};
  return names;
}

namespace {

bool file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// The first line of a file ("" when unreadable).
std::string first_line(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  LineReader r(in);
  auto line = r.next();
  return line ? *line : std::string();
}

bool has_padchest_csv(const fs::path& root) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    if (!e.is_regular_file(ec) || e.path().extension() != ".csv") continue;
    const std::string h = first_line(e.path());
    if (h.find("ImageID") != std::string::npos && h.find("Labels") != std::string::npos &&
        h.find("Projection") != std::string::npos)
      return true;
  }
  return false;
}

bool has_class_folders(const fs::path& root) {
  std::error_code ec;
  for (const char* split : {"train", "test", "val"}) {
    if (!fs::is_directory(root / split, ec)) continue;
    for (const auto& e : fs::directory_iterator(root / split, ec))
      if (e.is_directory(ec)) return true;
  }
  return false;
}

}  // namespace

std::string detect_format(const std::string& dir) {
  const fs::path root(dir);
  std::error_code ec;
  CXR_CHECK(fs::is_directory(root, ec), "data folder ", dir, " does not exist or is not a folder");
  if (file(root / "Data_Entry_2017_v2020.csv") || file(root / "Data_Entry_2017.csv")) return "nih";
  if (file(root / "mimic-cxr-2.0.0-metadata.csv") || file(root / "mimic-cxr-2.0.0-metadata.csv.gz")) return "mimic";
  for (const char* f : {"train.csv", "valid.csv"})
    if (file(root / f) && first_line(root / f).rfind("Path", 0) == 0) return "chexpert";
  if (file(root / "stage_2_train_labels.csv") || file(root / "stage_1_train_labels.csv")) return "rsna";
  if (file(root / "image_labels_train.csv") || file(root / "image_labels_test.csv")) return "vindr";
  if (has_padchest_csv(root)) return "padchest";
  if (has_class_folders(root)) return "folders";
  CXR_FAIL("cannot tell the format of ", dir, ": found none of Data_Entry_2017[_v2020].csv (nih), ",
           "train.csv/valid.csv with a Path column (chexpert), mimic-cxr-2.0.0-metadata.csv (mimic), a CSV with "
           "ImageID, Labels and Projection columns (padchest), stage_2_train_labels.csv (rsna), "
           "image_labels_train.csv (vindr), train/<CLASS>/ folders (folders); name it with --format");
}

Dataset load_dataset(const std::string& dir, const ReaderOptions& o, Report& report) {
  const std::string format = o.format.empty() || o.format == "auto" ? detect_format(dir) : o.format;
  Dataset ds;
  if (format == "nih") ds = Dataset::load(dir, report);
  else if (format == "chexpert") ds = load_chexpert(dir, o, report);
  else if (format == "mimic") ds = load_mimic(dir, o, report);
  else if (format == "padchest") ds = load_padchest(dir, o, report);
  else if (format == "rsna") ds = load_rsna(dir, o, report);
  else if (format == "vindr") ds = load_vindr(dir, o, report);
  else if (format == "folders") ds = load_class_folders(dir, o, report);
  else {
    std::string all;
    for (const auto& n : format_names()) all += (all.empty() ? "" : ", ") + n;
    CXR_FAIL("unknown data format '", format, "': expected auto or one of ", all);
  }
  ds.format = format;
  return ds;
}

int CsvHeader::find(const std::string& name) const {
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<int>(i);
  return -1;
}

int CsvHeader::require(const std::string& name) const {
  const int i = find(name);
  if (i < 0) {
    std::string found;
    for (const auto& n : names) found += (found.empty() ? "" : ", ") + n;
    CXR_FAIL(source, ": no column '", name, "' in the header (found: ", found, ")");
  }
  return i;
}

std::int64_t PatientIds::id(const std::string& key) {
  return ids_.emplace(key, static_cast<std::int64_t>(ids_.size())).first->second;
}

CellValue parse_label_cell(const std::string& cell) {
  const std::string_view s = trim(cell);
  if (s.empty()) return CellValue::missing;
  const auto v = parse_double(s);
  if (!v) return CellValue::bad;
  if (*v == 1.0) return CellValue::positive;
  if (*v == 0.0) return CellValue::negative;
  if (*v == -1.0) return CellValue::uncertain;
  return CellValue::bad;
}

void apply_label(ImageRecord& r, int g, CellValue v, UncertainPolicy policy) {
  const LabelMask b = bit(g);
  if (v == CellValue::uncertain) {
    r.uncertain |= b;
    if (policy == UncertainPolicy::ignore) return;
    v = policy == UncertainPolicy::ones ? CellValue::positive : CellValue::negative;
  }
  if (v == CellValue::positive) {
    r.known |= b;
    r.labels |= b;
  } else if (v == CellValue::negative) {
    r.known |= b;
  }
}

bool is_frontal_view(const std::string& view) {
  return view == "PA" || view == "AP" || view == "AP_horizontal" || view == "Frontal";
}

}  // namespace cxr::data
