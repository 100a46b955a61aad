// VinDr-CXR (Vingroup, PhysioNet 1.0.0): labels per radiologist, boxes per radiologist, DICOM.
//
//   image_labels_train.csv   image_id,rad_id,Aortic enlargement,Atelectasis,Calcification,
//                            Cardiomegaly,Clavicle fracture,Consolidation,Edema,Emphysema,
//                            Enlarged PA,ILD,Infiltration,Lung Opacity,Lung cavity,Lung cyst,
//                            Mediastinal shift,Nodule/Mass,Pleural effusion,Pleural thickening,
//                            Pneumothorax,Pulmonary fibrosis,Rib fracture,Other lesion,COPD,
//                            Lung tumor,Pneumonia,Tuberculosis,Other diseases,No finding
//                            (0/1; three rows per training image, one per radiologist R1..R17)
//   image_labels_test.csv    the same columns, one consensus row per image (rad_id may be absent)
//   annotations_train.csv    image_id,rad_id,class_name,x_min,y_min,x_max,y_max  (test alike)
//   train/<image_id>.dicom, test/<image_id>.dicom   (.dcm and .png accepted)
//
// Fusion (documented choice): a label is positive when at least half of the image's rows
// (radiologists) mark it -- a majority of the three readers in train, the consensus in test.
// Boxes: for each finding, the boxes of the radiologist with the smallest rad_id (in string
// order) who drew any for it: one reader's boxes, not a mix of three overlapping ones.
// Label map: Pleural effusion -> Effusion, Pleural thickening -> Pleural_Thickening, Pulmonary
// fibrosis -> Fibrosis, Clavicle fracture / Rib fracture -> Fracture (either); Atelectasis,
// Cardiomegaly, Consolidation, Edema, Emphysema, Infiltration, Lung Opacity, Pneumothorax,
// Pneumonia as named. The other classes (Aortic enlargement, Nodule/Mass -- which cannot say
// which of Nodule and Mass --, ILD, ...) are unmapped: counted, ignored. VinDr has no patient
// ids: each image is its own patient. Split: train files -> train (validation carved out),
// test files -> test.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <array>
#include <map>
#include <tuple>

#include "data/csv.h"
#include "data/formats.h"
#include "tensor/error.h"

namespace fs = std::filesystem;

namespace cxr::data {

namespace {

// -1: known to VinDr but not mapped; -2: not a VinDr class.
int vindr_finding(const std::string& name) {
  static const std::map<std::string, int> map = {
      {"Atelectasis", finding::kAtelectasis},     {"Cardiomegaly", finding::kCardiomegaly},
      {"Clavicle fracture", finding::kFracture},  {"Rib fracture", finding::kFracture},
      {"Consolidation", finding::kConsolidation}, {"Edema", finding::kEdema},
      {"Emphysema", finding::kEmphysema},         {"Infiltration", finding::kInfiltration},
      {"Lung Opacity", finding::kLungOpacity},    {"Pleural effusion", finding::kEffusion},
      {"Pleural thickening", finding::kPleuralThickening}, {"Pneumothorax", finding::kPneumothorax},
      {"Pulmonary fibrosis", finding::kFibrosis}, {"Pneumonia", finding::kPneumonia},
      {"Aortic enlargement", -1}, {"Calcification", -1}, {"Enlarged PA", -1}, {"ILD", -1}, {"Lung cavity", -1},
      {"Lung cyst", -1}, {"Mediastinal shift", -1}, {"Nodule/Mass", -1}, {"Other lesion", -1}, {"COPD", -1},
      {"Lung tumor", -1}, {"Tuberculosis", -1}, {"Other diseases", -1}, {"Other disease", -1}};
  const auto it = map.find(name);
  return it == map.end() ? -2 : it->second;
}

struct Votes {
  int readers = 0;
  std::array<int, kNumFindings> positive{};
};

struct SplitFiles {
  const char* labels;
  const char* boxes;
  const char* folder;
  std::int8_t split;
};

}  // namespace

Dataset load_vindr(const std::string& dir, const ReaderOptions&, Report& report) {
  const fs::path root(dir);
  std::error_code ec;
  Dataset ds;
  ds.root = dir;
  ds.findings = 0;
  bool any = false;
  for (const SplitFiles sf : {SplitFiles{"image_labels_train.csv", "annotations_train.csv", "train", 0},
                              SplitFiles{"image_labels_test.csv", "annotations_test.csv", "test", 2}}) {
    const fs::path labels_path = root / sf.labels;
    if (!fs::is_regular_file(labels_path, ec)) continue;
    any = true;
    const std::string source = labels_path.string();
    if (ds.data_entry_file.empty()) ds.data_entry_file = source;
    CsvRows rows(source, "the header image_id,rad_id,<classes>", report, ds.meta.malformed_rows);
    const CsvHeader& h = rows.header();
    const int id = h.require("image_id");
    const int rad = h.find("rad_id");
    std::vector<std::pair<int, int>> cols;  // (column, finding)
    for (std::size_t c = 0; c < h.names.size(); ++c) {
      const std::string& n = h.names[c];
      if (static_cast<int>(c) == id || static_cast<int>(c) == rad || n == "No finding") continue;
      const int g = vindr_finding(n);
      if (g == -2) {
        report.warn(source + ": unknown label column '" + n + "' ignored");
        ++ds.meta.unknown_labels[n];
      } else if (g >= 0) {
        cols.emplace_back(static_cast<int>(c), g);
        ds.findings |= bit(g);  // the set's findings: the mapped columns its files have
      } else {
        cols.emplace_back(static_cast<int>(c), -1 - static_cast<int>(c));  // unmapped: counted by name
      }
    }
    std::map<std::string, Votes> votes;  // image_id -> its readers' votes, in file order of first row
    std::vector<std::string> order;
    std::map<std::string, std::map<std::string, int>> unmapped;  // image -> name -> votes
    while (rows.next()) {
      const std::string image = rows.cell(id);
      std::array<int, kNumFindings> row{};
      std::vector<std::string> row_unmapped;
      bool bad = false;
      for (const auto& [c, g] : cols) {
        const std::string cell = rows.cell(c);
        const auto v = parse_double(cell);
        if (!v || (*v != 0.0 && *v != 1.0)) {
          rows.skip(detail::concat(h.names[static_cast<std::size_t>(c)], " is '", cell, "' (expected 0 or 1)"));
          bad = true;
          break;
        }
        if (*v == 1.0) {
          if (g >= 0) row[static_cast<std::size_t>(g)] = 1;  // Clavicle or Rib fracture: one vote for Fracture
          else row_unmapped.push_back(h.names[static_cast<std::size_t>(-1 - g)]);
        }
      }
      if (bad || image.empty()) continue;
      auto [it, inserted] = votes.try_emplace(image);
      if (inserted) order.push_back(image);
      ++it->second.readers;
      for (int g = 0; g < kNumFindings; ++g) it->second.positive[static_cast<std::size_t>(g)] += row[static_cast<std::size_t>(g)];
      for (const auto& n : row_unmapped) ++unmapped[image][n];
    }
    for (const auto& image : order) {
      const Votes& v = votes[image];
      ImageRecord r;
      r.name = std::string(sf.folder) + "/" + image;
      r.patient_id = static_cast<std::int64_t>(ds.size());
      r.split = sf.split;
      for (int g = 0; g < kNumFindings; ++g)
        if (2 * v.positive[static_cast<std::size_t>(g)] >= v.readers && v.positive[static_cast<std::size_t>(g)] > 0)
          r.labels |= bit(g);
      for (const auto& [n, count] : unmapped[image])
        if (2 * count >= v.readers) ++ds.meta.unmapped_labels[n];
      std::string path;
      for (const char* ext : {".dicom", ".dcm", ".png", ".jpg"}) {
        const fs::path p = root / sf.folder / (image + ext);
        if (path.empty() && fs::is_regular_file(p, ec)) path = p.string();
      }
      ds.add(std::move(r), std::move(path));
    }

    // Boxes: per image and finding, those of the first radiologist (rad_id order) who drew one.
    const fs::path boxes_path = root / sf.boxes;
    if (!fs::is_regular_file(boxes_path, ec)) continue;
    const std::string bsource = boxes_path.string();
    if (ds.bbox_file.empty()) ds.bbox_file = bsource;
    CsvRows box_rows(bsource, "image_id,rad_id,class_name,x_min,y_min,x_max,y_max", report, ds.meta.skipped_boxes,
                     "box");
    const CsvHeader& bh = box_rows.header();
    const int bid = bh.require("image_id"), bclass = bh.require("class_name");
    const int brad = bh.find("rad_id");
    const int bx0 = bh.require("x_min"), by0 = bh.require("y_min"), bx1 = bh.require("x_max"), by1 = bh.require("y_max");
    std::map<std::pair<std::string, int>, std::string> chosen_reader;  // (image, finding) -> rad_id
    std::vector<std::tuple<std::string, std::string, Box>> boxes;        // (image, rad, box)
    while (box_rows.next()) {
      auto skip = [&](const std::string& why) { box_rows.skip(why); };
      auto cell = [&](int c) { return box_rows.cell(c); };
      const std::string cls = cell(bclass);
      if (cls == "No finding") continue;
      const int g = vindr_finding(cls);
      if (g == -2) { skip("unknown class_name '" + cls + "'"); continue; }
      if (g < 0) continue;  // unmapped class
      double v[4];
      bool ok = true;
      const int cs[4] = {bx0, by0, bx1, by1};
      for (int k = 0; k < 4; ++k) {
        const auto d = parse_double(cell(cs[k]));
        ok = ok && d && std::isfinite(*d) && std::fabs(*d) < 1e7;
        v[k] = ok ? *d : 0;
      }
      if (!ok || v[2] <= v[0] || v[3] <= v[1]) { skip("bad box (x_min, y_min, x_max, y_max)"); continue; }
      const std::string image = cell(bid), rad = brad >= 0 ? cell(brad) : "";
      if (ds.meta.find(std::string(sf.folder) + "/" + image) < 0) { skip("image " + image + " is not in " + source); continue; }
      auto [it, inserted] = chosen_reader.try_emplace({image, g}, rad);
      if (!inserted && rad < it->second) it->second = rad;
      boxes.emplace_back(image, rad, Box{g, static_cast<float>(v[0]), static_cast<float>(v[1]),
                                         static_cast<float>(v[2] - v[0]), static_cast<float>(v[3] - v[1])});
    }
    for (const auto& [image, rad, b] : boxes) {
      if (chosen_reader[{image, b.label}] != rad) continue;
      ds.meta.images[static_cast<std::size_t>(ds.meta.find(std::string(sf.folder) + "/" + image))].boxes.push_back(b);
    }
  }
  CXR_CHECK(any, "data folder ", dir, " has neither image_labels_train.csv nor image_labels_test.csv (VinDr-CXR)");
  CXR_CHECK(ds.size() > 0, "the data set is empty: ", dir, "'s VinDr tables have no usable row");
  return ds;
}

}  // namespace cxr::data
