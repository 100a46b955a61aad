// Readers for Data_Entry_2017(.csv|_v2020.csv), BBox_List_2017.csv and the split lists.
#include "data/metadata.h"

#include <cctype>
#include <cmath>
#include <limits>
#include <optional>
#include <fstream>

#include "data/csv.h"
#include "tensor/error.h"

namespace cxr::data {

std::int64_t Metadata::find(const std::string& name) const {
  const auto it = by_name.find(name);
  return it == by_name.end() ? -1 : it->second;
}

int parse_age_years(const std::string& cell) {
  std::string_view s = trim(cell);
  int divisor = 1;
  if (!s.empty() && std::isalpha(static_cast<unsigned char>(s.back()))) {
    const char unit = static_cast<char>(std::toupper(static_cast<unsigned char>(s.back())));
    if (unit == 'Y') divisor = 1;
    else if (unit == 'M') divisor = 12;
    else if (unit == 'W') divisor = 52;
    else if (unit == 'D') divisor = 365;
    else return -1;
    s.remove_suffix(1);
  }
  const auto v = parse_int(s);
  if (!v || *v < 0 || *v / divisor > std::numeric_limits<int>::max()) return -1;
  return static_cast<int>(*v / divisor);
}

namespace {

// A cell holding a whole number in [lo, int's max]; nullopt otherwise (numbers too large
// for an int used to wrap around silently).
std::optional<int> parse_int_field(const std::string& cell, long long lo) {
  const auto v = parse_int(cell);
  if (!v || *v < lo || *v > std::numeric_limits<int>::max()) return std::nullopt;
  return static_cast<int>(*v);
}

std::ifstream open_or_throw(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  CXR_CHECK(in.good(), "cannot open ", path);
  return in;
}

// Column positions of a Data_Entry header. The header is split on every comma, quoted or
// not, so "OriginalImage[Width,Height]" always yields two columns, as in the data rows.
struct DataEntryColumns {
  int image = -1, labels = -1, follow_up = -1, patient = -1, age = -1, gender = -1, view = -1,
      width = -1, height = -1;
  int count = 0;  // non-empty header cells: the fields a row must have
};

DataEntryColumns find_columns(const std::string& header, const std::string& source) {
  DataEntryColumns c;
  int index = 0;
  std::size_t start = 0;
  while (start <= header.size()) {
    std::size_t end = header.find(',', start);
    if (end == std::string::npos) end = header.size();
    std::string cell(trim(header.substr(start, end - start)));
    std::erase(cell, '"');
    if (!cell.empty()) c.count = index + 1;
    if (cell == "Image Index") c.image = index;
    else if (cell == "Finding Labels") c.labels = index;
    else if (cell == "Follow-up #") c.follow_up = index;
    else if (cell == "Patient ID") c.patient = index;
    else if (cell == "Patient Age") c.age = index;
    else if (cell == "Patient Gender") c.gender = index;
    else if (cell == "View Position") c.view = index;
    else if (cell == "OriginalImage[Width") c.width = index;
    else if (cell == "Height]") c.height = index;
    start = end + 1;
    ++index;
  }
  CXR_CHECK(c.image >= 0 && c.labels >= 0 && c.patient >= 0, source,
            ": not a Data_Entry table: the header must name the columns 'Image Index', "
            "'Finding Labels' and 'Patient ID'; found: ", header);
  return c;
}

}  // namespace

void read_data_entry(std::istream& in, const std::string& source, Metadata& meta, Report& report) {
  LineReader reader(in);
  const auto header = reader.next();
  CXR_CHECK(header.has_value(), source, ": empty file, expected a Data_Entry header");
  const DataEntryColumns col = find_columns(*header, source);
  std::map<std::string, int> first_line_of_unknown;

  while (auto line = reader.next()) {
    const int ln = reader.line_number();
    const auto f = split_csv_line(*line);
    auto malformed = [&](const std::string& why) {
      report.warn(detail::concat(source, ":", ln, ": malformed row skipped: ", why));
      ++meta.malformed_rows;
    };
    const int n = static_cast<int>(f.size());
    bool extra = false;
    for (int i = col.count; i < n; ++i) extra |= !trim(f[i]).empty();
    if (n < col.count || extra) {
      malformed(detail::concat("expected ", col.count, " fields, found ", n));
      continue;
    }
    ImageRecord r;
    r.name = std::string(trim(f[col.image]));
    if (r.name.empty()) { malformed("empty Image Index"); continue; }
    const auto patient = parse_int(f[col.patient]);
    if (!patient || *patient < 0) { malformed("bad Patient ID '" + f[col.patient] + "'"); continue; }
    r.patient_id = *patient;
    if (col.follow_up >= 0) {
      const auto fu = parse_int_field(f[col.follow_up], 0);
      if (!fu) { malformed("bad Follow-up # '" + f[col.follow_up] + "': expected a whole number >= 0"); continue; }
      r.follow_up = *fu;
    }
    if (col.age >= 0) {
      r.age_years = parse_age_years(f[col.age]);
      if (r.age_years < 0) { malformed("bad Patient Age '" + f[col.age] + "'"); continue; }
    }
    if (col.gender >= 0) r.gender = std::string(trim(f[col.gender]));
    if (col.view >= 0) r.view = std::string(trim(f[col.view]));
    if (col.width >= 0 && col.height >= 0) {
      const auto w = parse_int_field(f[col.width], 1), h = parse_int_field(f[col.height], 1);
      if (!w || !h) {
        malformed("bad OriginalImage size '" + f[col.width] + "," + f[col.height] +
                  "': expected two whole numbers in [1, 2^31)");
        continue;
      }
      r.original_width = *w;
      r.original_height = *h;
    }
    const std::string_view labels = trim(f[col.labels]);
    if (labels.empty()) { malformed("empty Finding Labels"); continue; }
    std::size_t start = 0;
    while (start <= labels.size()) {
      std::size_t end = labels.find('|', start);
      if (end == std::string_view::npos) end = labels.size();
      const std::string_view name = trim(labels.substr(start, end - start));
      start = end + 1;
      if (name.empty() || name == kNoFinding) continue;
      const int k = label_index(name);
      if (k >= 0) {
        r.labels = static_cast<LabelMask>(r.labels | (1u << k));
      } else {
        const std::string key(name);
        if (meta.unknown_labels[key]++ == 0) first_line_of_unknown[key] = ln;
      }
    }
    if (meta.by_name.count(r.name)) {
      malformed("duplicate Image Index " + r.name);
      continue;
    }
    meta.by_name.emplace(r.name, static_cast<std::int64_t>(meta.images.size()));
    meta.images.push_back(std::move(r));
  }
  for (const auto& [name, line] : first_line_of_unknown)
    report.warn(detail::concat(source, ": unknown finding label '", name, "' ignored (",
                               meta.unknown_labels[name], " rows, first at line ", line, ")"));
}

void read_data_entry_file(const std::string& path, Metadata& meta, Report& report) {
  auto in = open_or_throw(path);
  read_data_entry(in, path, meta, report);
}

int read_bbox_list(std::istream& in, const std::string& source, Metadata& meta, Report& report) {
  LineReader reader(in);
  const auto header = reader.next();
  CXR_CHECK(header.has_value(), source, ": empty file, expected a box list header");
  const auto h = split_csv_line(*header);
  CXR_CHECK(!h.empty() && trim(h[0]) == "Image Index", source,
            ": not a box list: expected the header 'Image Index,Finding Label,Bbox [x,y,w,h],,,', found: ",
            *header);
  int attached = 0;
  while (auto line = reader.next()) {
    const int ln = reader.line_number();
    const auto f = split_csv_line(*line);
    auto skip = [&](const std::string& why) {
      report.warn(detail::concat(source, ":", ln, ": box skipped: ", why));
      ++meta.skipped_boxes;
    };
    bool extra = false;
    for (std::size_t i = 6; i < f.size(); ++i) extra |= !trim(f[i]).empty();
    if (f.size() < 6 || extra) { skip(detail::concat("expected 6 fields, found ", f.size())); continue; }
    const std::string name(trim(f[0]));
    const std::string label(trim(f[1]));
    const int k = label_index(label);
    if (k < 0) { skip("unknown finding label '" + label + "'"); continue; }
    // x, y, w, h: finite numbers within float's range ("nan", "inf" and 1e39 parse as
    // doubles but are no box), w and h positive.
    float v[4];
    bool ok = true;
    for (int i = 0; i < 4; ++i) {
      const auto d = parse_double(f[2 + i]);
      const bool finite = d && std::isfinite(*d) && std::fabs(*d) <= std::numeric_limits<float>::max();
      ok = ok && finite;
      v[i] = finite ? static_cast<float>(*d) : 0.f;
    }
    if (!ok || v[2] <= 0 || v[3] <= 0) {
      skip(detail::concat("bad box numbers '", trim(f[2]), "','", trim(f[3]), "','", trim(f[4]), "','", trim(f[5]),
                          "': expected finite x, y and positive finite w, h"));
      continue;
    }
    const std::int64_t idx = meta.find(name);
    if (idx < 0) { skip("image " + name + " is not in the Data_Entry table"); continue; }
    auto& boxes = meta.images[static_cast<std::size_t>(idx)].boxes;
    bool duplicate = false;
    for (const auto& b : boxes) duplicate |= b.label == k;
    if (duplicate) { skip("second " + label + " box on " + name + " (one per class is kept)"); continue; }
    boxes.push_back(Box{k, v[0], v[1], v[2], v[3]});
    ++attached;
  }
  return attached;
}

int read_bbox_list_file(const std::string& path, Metadata& meta, Report& report) {
  auto in = open_or_throw(path);
  return read_bbox_list(in, path, meta, report);
}

std::vector<std::string> read_image_list(std::istream& in) {
  std::vector<std::string> names;
  LineReader reader(in);
  while (auto line = reader.next()) names.emplace_back(trim(*line));
  return names;
}

std::vector<std::string> read_image_list_file(const std::string& path) {
  auto in = open_or_throw(path);
  return read_image_list(in);
}

}  // namespace cxr::data
