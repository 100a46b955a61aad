// A class-per-folder set: DIR/{train,val,test}/<CLASS>/*.{png,jpg,jpeg,dcm,dicom}, as the
// pediatric pneumonia set (Kermany et al.: chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}).
//
// Class folders map to findings by name (data/labels.h's finding_index: case-insensitive, '_'
// = ' ', aliases: "PNEUMONIA" -> Pneumonia, "Pleural Effusion" -> Effusion); "NORMAL",
// "No Finding" and "No_Finding" mean no finding. A folder that matches nothing is an error that
// names it (a class cxr cannot label is not silently dropped or called negative). The set's
// findings are the classes found: an image of one class folder is positive for it and
// negative for the others. Patients: the pediatric set names files personNNN_..., so a name
// starting with "person<digits>_" gives that patient; any other file is its own patient.
// Split: the folders' own (train, val, test); without val/, validation is carved out of
// train by patient.
#include <algorithm>
#include <cctype>
#include <filesystem>

#include "data/csv.h"
#include "data/formats.h"
#include "tensor/error.h"

namespace fs = std::filesystem;

namespace cxr::data {

namespace {

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".dcm" || ext == ".dicom";
}

bool means_no_finding(std::string name) {
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c == '_' ? ' ' : c)));
  return name == "normal" || name == "no finding";
}

// "person1234_bacteria_1.jpeg" -> "person1234"; "" otherwise.
std::string person_prefix(const std::string& file) {
  if (file.rfind("person", 0) != 0) return "";
  std::size_t e = 6;
  while (e < file.size() && std::isdigit(static_cast<unsigned char>(file[e]))) ++e;
  return e > 6 && e < file.size() && file[e] == '_' ? file.substr(0, e) : "";
}

}  // namespace

Dataset load_class_folders(const std::string& dir, const ReaderOptions&, Report&) {
  const fs::path root(dir);
  std::error_code ec;
  Dataset ds;
  ds.root = dir;
  ds.findings = 0;
  struct Entry {
    std::string name, path, patient;
    int finding;  // -1: no finding
    std::int8_t split;
  };
  std::vector<Entry> entries;
  for (const auto& [split_name, split] : {std::pair<const char*, std::int8_t>{"train", 0}, {"val", 1}, {"test", 2}}) {
    if (!fs::is_directory(root / split_name, ec)) continue;
    std::vector<fs::path> classes;
    for (const auto& e : fs::directory_iterator(root / split_name, ec))
      if (e.is_directory(ec)) classes.push_back(e.path());
    std::sort(classes.begin(), classes.end());
    for (const auto& cdir : classes) {
      const std::string cls = cdir.filename().string();
      int g = -1;
      if (!means_no_finding(cls)) {
        g = finding_index(cls);
        CXR_CHECK(g >= 0, "class folder ", cdir.string(), ": '", cls, "' is no finding cxr knows (expected NORMAL ",
                  "or a finding such as PNEUMONIA, Effusion, Cardiomegaly; docs/data.md lists them)");
        ds.findings |= bit(g);
      }
      std::vector<fs::path> files;
      for (const auto& e : fs::directory_iterator(cdir, ec))
        if (e.is_regular_file(ec) && is_image_file(e.path())) files.push_back(e.path());
      std::sort(files.begin(), files.end());
      for (const auto& f : files) {
        const std::string file = f.filename().string();
        const std::string rel = std::string(split_name) + "/" + cls + "/" + file;
        const std::string person = person_prefix(file);
        entries.push_back({rel, f.string(), person.empty() ? rel : person, g, split});
      }
    }
  }
  CXR_CHECK(!entries.empty(), "data folder ", dir, " has no images under {train,val,test}/<CLASS>/ (.png, .jpg, .jpeg, .dcm)");
  PatientIds patients;
  for (auto& e : entries) {
    ImageRecord r;
    r.name = e.name;
    r.patient_id = patients.id(e.patient);
    r.split = e.split;
    if (e.finding >= 0) r.labels = bit(e.finding);
    ds.add(std::move(r), std::move(e.path));
  }
  return ds;
}

}  // namespace cxr::data
