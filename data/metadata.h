// The NIH metadata files, read into plain records.
//
//   Data_Entry_2017.csv        the original release: every line ends with a comma, ages
//                              like "058Y"; the header cells "OriginalImage[Width,Height]"
//                              and "OriginalImagePixelSpacing[x,y]" split into two columns.
//   Data_Entry_2017_v2020.csv  the 2020 revision: no trailing comma, ages like "58".
//   BBox_List_2017.csv         header "Image Index,Finding Label,Bbox [x,y,w,h],,,";
//                              "Infiltrate" means Infiltration; boxes in the image's pixels.
//   train_val_list.txt, test_list.txt   one image name per line.
//
// Both Data_Entry formats go through one reader: columns are found by their header names,
// so their order does not matter and trailing empty fields are ignored. Malformed rows are
// reported (file:line and why) and skipped; unknown finding labels are reported by name
// (once per name, with a count) and ignored.
#pragma once

#include <cstdint>
#include <istream>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/labels.h"
#include "data/report.h"

namespace cxr::data {

// One hand-drawn box, in the pixels of the image as released (x, y = top-left corner).
struct Box {
  int label = -1;  // global finding index (data/labels.h); the NIH box list: 0..7
  float x = 0, y = 0, w = 0, h = 0;
};

struct ImageRecord {
  std::string name;            // "00000001_000.png"
  std::int64_t patient_id = 0;
  int follow_up = 0;
  int age_years = -1;          // -1 when absent
  std::string gender;          // "M" / "F"
  std::string view;            // "PA" / "AP"
  int original_width = 0, original_height = 0;  // of the scan before release; 0 if absent
  LabelMask labels = 0;        // bit g: finding g positive; 0 = "No Finding"
  // Finding g has a label in this record when bit g of `known` is set and the data set has
  // the finding (Dataset::present); otherwise it is *missing* (never counted as negative).
  LabelMask known = kAllFindings;
  // Findings the source called uncertain (CheXpert / MIMIC -1), whatever the policy made of
  // them (data-info counts them).
  LabelMask uncertain = 0;
  std::vector<Box> boxes;      // NIH: at most one per class; other sets: every box of the file
  // The set's own split, when it has one (CheXpert's valid.csv, MIMIC's split.csv, folders):
  // -1 none, 0 train, 1 validation, 2 test.
  std::int8_t split = -1;
};

struct Metadata {
  std::vector<ImageRecord> images;
  std::unordered_map<std::string, std::int64_t> by_name;  // name -> index in images
  // What the readers skipped or ignored.
  int malformed_rows = 0;
  std::map<std::string, int> unknown_labels;  // name -> rows
  // Labels a reader knows but that have no finding in cxr's label space (PadChest's
  // "aortic elongation", VinDr's "Nodule/Mass", ...): counted, ignored, never warned about.
  std::map<std::string, int> unmapped_labels;  // name -> rows
  int skipped_boxes = 0;

  std::int64_t find(const std::string& name) const;  // -1 when absent
};

// Parses a Data_Entry table (either format) into `meta` (appending). `source` names the
// file in messages. Throws cxr::Error when the header lacks a required column.
void read_data_entry(std::istream& in, const std::string& source, Metadata& meta, Report& report);
void read_data_entry_file(const std::string& path, Metadata& meta, Report& report);

// Attaches the boxes of a box list to the images of `meta`. Boxes of images not in `meta`,
// of unknown labels or with bad numbers are reported and skipped; returns boxes attached.
int read_bbox_list(std::istream& in, const std::string& source, Metadata& meta, Report& report);
int read_bbox_list_file(const std::string& path, Metadata& meta, Report& report);

// An image list (train_val_list.txt / test_list.txt): one name per line, blanks ignored.
std::vector<std::string> read_image_list(std::istream& in);
std::vector<std::string> read_image_list_file(const std::string& path);

// Age cell: "58", "058Y" (years), "006M" (months), "010D" (days) -> whole years; -1 if bad.
int parse_age_years(const std::string& cell);

}  // namespace cxr::data
