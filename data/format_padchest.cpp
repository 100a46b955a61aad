// PadChest (BIMCV, Universidad de Alicante): one CSV and 16-bit PNGs.
//
//   PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv:
//   ImageID,ImageDir,StudyDate_DICOM,StudyID,PatientID,PatientBirth,PatientSex_DICOM,
//   ViewPosition_DICOM,Projection,MethodProjection,Labels,Localizations,...
//   Labels: a Python list of strings, "['pleural effusion', 'cardiomegaly']" (quoted in the CSV
//   because of its commas; entries may carry leading blanks); "['normal']" = no finding; an
//   empty cell or "[]" has no labels (row skipped, as TorchXRayVision drops them).
//   Images: DIR/<ImageDir>/<ImageID> (the release's numbered folders) or DIR/images/<ImageID>.
//
// PadChest's vocabulary has 174 findings; those that match a finding of cxr's label space are
// mapped (table below, docs/data.md), the others are counted as unmapped and ignored. Every
// finding the map reaches is negative on an image whose list lacks it. Projection filter
// (--frontal-only): PA, AP, AP_horizontal. Split: seeded patient-wise (PatientID).
#include <cctype>
#include <filesystem>
#include <fstream>

#include "data/csv.h"
#include "data/formats.h"
#include "tensor/error.h"

namespace fs = std::filesystem;

namespace cxr::data {

namespace {

struct PadchestLabel {
  std::string_view name;
  int finding;
};
constexpr PadchestLabel kMap[] = {
    {"atelectasis", finding::kAtelectasis},
    {"laminar atelectasis", finding::kAtelectasis},
    {"lobar atelectasis", finding::kAtelectasis},
    {"segmental atelectasis", finding::kAtelectasis},
    {"round atelectasis", finding::kAtelectasis},
    {"total atelectasis", finding::kAtelectasis},
    {"cardiomegaly", finding::kCardiomegaly},
    {"pleural effusion", finding::kEffusion},
    {"loculated pleural effusion", finding::kEffusion},
    {"infiltrates", finding::kInfiltration},
    {"interstitial pattern", finding::kInfiltration},
    {"reticular interstitial pattern", finding::kInfiltration},
    {"reticulonodular interstitial pattern", finding::kInfiltration},
    {"ground glass pattern", finding::kInfiltration},
    {"mass", finding::kMass},
    {"pulmonary mass", finding::kMass},
    {"nodule", finding::kNodule},
    {"multiple nodules", finding::kNodule},
    {"pneumonia", finding::kPneumonia},
    {"pneumothorax", finding::kPneumothorax},
    {"consolidation", finding::kConsolidation},
    {"air bronchogram", finding::kConsolidation},
    {"pulmonary edema", finding::kEdema},
    {"emphysema", finding::kEmphysema},
    {"pulmonary fibrosis", finding::kFibrosis},
    {"pleural thickening", finding::kPleuralThickening},
    {"apical pleural thickening", finding::kPleuralThickening},
    {"calcified pleural thickening", finding::kPleuralThickening},
    {"hiatal hernia", finding::kHernia},
    {"fracture", finding::kFracture},
    {"rib fracture", finding::kFracture},
    {"clavicle fracture", finding::kFracture},
    {"humeral fracture", finding::kFracture},
    {"vertebral fracture", finding::kFracture},
    {"pacemaker", finding::kSupportDevices},
    {"dual chamber device", finding::kSupportDevices},
    {"single chamber device", finding::kSupportDevices},
    {"nsg tube", finding::kSupportDevices},
    {"endotracheal tube", finding::kSupportDevices},
    {"tracheostomy tube", finding::kSupportDevices},
    {"chest drain tube", finding::kSupportDevices},
    {"central venous catheter", finding::kSupportDevices},
    {"central venous catheter via jugular vein", finding::kSupportDevices},
    {"central venous catheter via subclavian vein", finding::kSupportDevices},
    {"reservoir central venous catheter", finding::kSupportDevices},
};

int padchest_finding(std::string_view name) {
  for (const auto& m : kMap)
    if (m.name == name) return m.finding;
  return -1;
}

LabelMask padchest_findings() {
  LabelMask m = 0;
  for (const auto& e : kMap) m |= bit(e.finding);
  return m;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

// "['a', 'b']" -> {"a", "b"} (trimmed, lower case); nullopt when it is not such a list.
std::optional<std::vector<std::string>> parse_padchest_labels(std::string_view cell) {
  std::string_view s = trim(cell);
  if (s.size() < 2 || s.front() != '[' || s.back() != ']') return std::nullopt;
  s = s.substr(1, s.size() - 2);
  std::vector<std::string> out;
  std::size_t i = 0;
  while (true) {
    while (i < s.size() && (s[i] == ' ' || s[i] == ',')) ++i;
    if (i >= s.size()) break;
    const char q = s[i];
    if (q != '\'' && q != '"') return std::nullopt;
    const auto end = s.find(q, i + 1);
    if (end == std::string_view::npos) return std::nullopt;
    const std::string item = lower(trim(s.substr(i + 1, end - i - 1)));
    if (!item.empty()) out.push_back(item);
    i = end + 1;
    while (i < s.size() && s[i] == ' ') ++i;
    if (i < s.size() && s[i] != ',') return std::nullopt;
  }
  return out;
}

Dataset load_padchest(const std::string& dir, const ReaderOptions& o, Report& report) {
  const fs::path root(dir);
  std::error_code ec;
  std::string source;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    if (!e.is_regular_file(ec) || e.path().extension() != ".csv") continue;
    std::ifstream in(e.path(), std::ios::binary);
    LineReader r(in);
    const auto h = r.next();
    if (h && h->find("ImageID") != std::string::npos && h->find("Labels") != std::string::npos &&
        (source.empty() || e.path().string() < source))
      source = e.path().string();
  }
  CXR_CHECK(!source.empty(), "data folder ", dir, " has no PadChest CSV (a .csv whose header names ImageID and Labels)");
  Dataset ds;
  ds.root = dir;
  ds.findings = padchest_findings();
  ds.data_entry_file = source;
  CsvRows rows(source, "a PadChest header (ImageID,...,PatientID,...,Labels,...)", report, ds.meta.malformed_rows);
  const CsvHeader& h = rows.header();
  const int image = h.require("ImageID"), labels = h.require("Labels"), patient = h.require("PatientID");
  const int projection = h.find("Projection"), dir_col = h.find("ImageDir"), sex = h.find("PatientSex_DICOM");
  CXR_CHECK(!o.frontal_only || projection >= 0, source, ": no column 'Projection' for the frontal-only filter");
  PatientIds patients;
  while (rows.next()) {
    auto cell = [&](int c) { return rows.cell(c); };
    ImageRecord r;
    r.name = cell(image);
    if (r.name.empty()) { rows.skip("empty ImageID"); continue; }
    const std::string pid = cell(patient);
    if (pid.empty()) { rows.skip("empty PatientID"); continue; }
    r.patient_id = patients.id(pid);
    if (projection >= 0) r.view = cell(projection);
    if (sex >= 0) r.gender = cell(sex);
    if (o.frontal_only && !is_frontal_view(r.view)) continue;
    if (cell(labels).empty()) { rows.skip("no labels (empty Labels cell)"); continue; }
    const auto list = parse_padchest_labels(rows.fields()[static_cast<std::size_t>(labels)]);
    if (!list) { rows.skip("Labels '" + cell(labels) + "' is not a list like ['pleural effusion', 'cardiomegaly']"); continue; }
    if (list->empty()) { rows.skip("no labels"); continue; }
    for (const auto& name : *list) {
      if (name == "normal") continue;
      const int g = padchest_finding(name);
      if (g >= 0) r.labels |= bit(g);
      else ++ds.meta.unmapped_labels[name];
    }
    if (ds.meta.find(r.name) >= 0) { rows.skip("duplicate ImageID " + r.name); continue; }
    std::string path;
    std::vector<fs::path> candidates;
    if (dir_col >= 0 && !cell(dir_col).empty()) candidates.push_back(root / cell(dir_col) / r.name);
    candidates.push_back(root / "images" / r.name);
    candidates.push_back(root / r.name);
    for (const auto& c : candidates)
      if (path.empty() && fs::is_regular_file(c, ec)) path = c.string();
    ds.add(std::move(r), std::move(path));
  }
  CXR_CHECK(ds.size() > 0, "the data set is empty: ", source, " has no usable row (", ds.meta.malformed_rows,
            " malformed rows skipped)");
  return ds;
}

}  // namespace cxr::data
