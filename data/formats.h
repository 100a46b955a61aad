// The data-set formats cxr reads, one small reader per file (data/format_<name>.cpp), each
// turning a folder as its publisher releases it into a Dataset in cxr's label space
// (data/labels.h): records with positive / negative / missing / uncertain findings, boxes in
// the pixels of the image file, patient ids and the set's own split where it has one.
//
//   nih        Data_Entry_2017[_v2020].csv, BBox_List_2017.csv, images/ (data/dataset.h)
//   chexpert   train.csv / valid.csv (Path, Sex, Age, Frontal/Lateral, AP/PA, 14 labels)
//   mimic      mimic-cxr-2.0.0-{metadata,chexpert,split}.csv, files/pXX/pXXXXXXXX/sXXXXXXXX/*.jpg
//   padchest   PADCHEST_*.csv (ImageID, PatientID, Projection, Labels "['a', 'b']"), 16-bit PNGs
//   rsna       stage_2_train_labels.csv (patientId,x,y,width,height,Target), *.dcm
//   vindr      image_labels_{train,test}.csv, annotations_{train,test}.csv, {train,test}/*.dicom
//   folders    {train,val,test}/<CLASS>/*.{png,jpg,jpeg,dcm}
// The quirks and label maps of each are in docs/data.md ("Formats"). detect_format() picks the
// reader from the files a folder holds; --format names it.
//
// Bad input: a table without a required column is an error naming the file and the column; a
// malformed row is reported as FILE:LINE and skipped; an unknown label (column or value) is
// reported once by name and ignored; a missing image file is counted (Dataset::missing_images)
// and skipped by the loader (an error with --strict).
#pragma once

#include <cstdint>
#include <fstream>
#include <optional>
#include <string_view>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/csv.h"
#include "data/dataset.h"
#include "data/report.h"

namespace cxr::data {

// What a reader does with an uncertain label (CheXpert / MIMIC -1): the CheXpert paper's
// U-Ignore (missing: masked out of the loss, as TorchXRayVision), U-Zeros, U-Ones.
enum class UncertainPolicy { ignore, zeros, ones };
UncertainPolicy parse_uncertain_policy(const std::string& name);  // ignore | zeros | ones
const char* uncertain_policy_name(UncertainPolicy p);

struct ReaderOptions {
  std::string format = "auto";  // auto | one of format_names()
  UncertainPolicy uncertain = UncertainPolicy::ignore;
  bool frontal_only = false;    // keep frontal views only (PA / AP): CheXpert, MIMIC, PadChest
};

const std::vector<std::string>& format_names();
// The format of a folder, from the files it holds; throws naming what it looked for.
std::string detect_format(const std::string& dir);
// Loads a folder with the named (or detected) format's reader.
Dataset load_dataset(const std::string& dir, const ReaderOptions& options = {}, Report& report = default_report());

Dataset load_chexpert(const std::string& dir, const ReaderOptions& options, Report& report);
Dataset load_mimic(const std::string& dir, const ReaderOptions& options, Report& report);
Dataset load_padchest(const std::string& dir, const ReaderOptions& options, Report& report);
Dataset load_rsna(const std::string& dir, const ReaderOptions& options, Report& report);
Dataset load_vindr(const std::string& dir, const ReaderOptions& options, Report& report);
Dataset load_class_folders(const std::string& dir, const ReaderOptions& options, Report& report);

// --- helpers the readers share -----------------------------------------------------------

// A CSV header: columns found by name (trimmed, quotes removed).
struct CsvHeader {
  std::string source;  // the file, for messages
  std::vector<std::string> names;
  int find(const std::string& name) const;  // -1 when absent
  // The column's index; throws "FILE: no column 'NAME' in the header (found: ...)".
  int require(const std::string& name) const;
};

// A reader's CSV table, row by row: opens `path` (an error naming it when it cannot), reads the
// header (names trimmed; an empty file is an error "FILE: empty file, expected EXPECTED"), then
// yields the rows with as many fields as the header. A row with another count is reported as
// "FILE:LINE: <what> skipped: expected N fields, found M" and counted in `skipped`; so is a row
// the reader rejects with skip(why).
//   CsvRows rows(path, "the header patientId,x,...", report, ds.meta.malformed_rows);
//   const int id = rows.header().require("patientId");
//   while (rows.next()) { if (rows.cell(id).empty()) { rows.skip("empty patientId"); continue; } ... }
class CsvRows {
 public:
  CsvRows(const std::string& path, const std::string& expected, Report& report, int& skipped,
          std::string what = "malformed row");
  const CsvHeader& header() const { return header_; }
  const std::string& source() const { return header_.source; }
  bool next();  // the next row with the header's field count; false at the end
  int line() const { return reader_.line_number(); }
  const std::vector<std::string>& fields() const { return fields_; }
  std::string cell(int column) const;  // trimmed
  void skip(const std::string& why);   // reports and counts the current row (the caller moves on)

 private:
  std::ifstream in_;
  LineReader reader_;
  CsvHeader header_;
  Report& report_;
  int& skipped_;
  std::string what_;
  std::vector<std::string> fields_;
};

// String patient ids (PadChest's long numbers, RSNA's UUIDs, CheXpert's "patient00001") to
// dense int64 ids, in order of first appearance.
class PatientIds {
 public:
  std::int64_t id(const std::string& key);

 private:
  std::unordered_map<std::string, std::int64_t> ids_;
};

// The value of a CheXpert-style label cell: "1.0"/"1", "0.0"/"0", "-1.0"/"-1", "" (missing).
enum class CellValue { positive, negative, uncertain, missing, bad };
CellValue parse_label_cell(const std::string& cell);

// Applies one cell to finding g of `r` under `policy` (uncertain also sets r.uncertain).
void apply_label(ImageRecord& r, int g, CellValue v, UncertainPolicy policy);

// Frontal view names: PA, AP (and PadChest's AP_horizontal).
bool is_frontal_view(const std::string& view);

// PadChest's Labels cell: "['a', 'b']" -> {"a", "b"} (trimmed, lower case); nullopt when the
// cell is not such a list.
std::optional<std::vector<std::string>> parse_padchest_labels(std::string_view cell);

}  // namespace cxr::data
