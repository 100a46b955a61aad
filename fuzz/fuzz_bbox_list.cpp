// Fuzzes the BBox_List_2017.csv reader (data/metadata.h read_bbox_list).
// Feeds: arbitrary bytes as the whole box file, read against a fixed Data_Entry table of
// the images of the seed excerpt (fuzz/corpus/bbox_list, built by fuzz/make_corpus.py).
// Checks: no crash, leak or UB; a bad header is a cxr::Error; every box kept has a class in
// 0..13, finite coordinates and a positive finite size, at most one box per class and
// image; the count returned equals the boxes attached; every row is attached or skipped.
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>

#include "data/csv.h"
#include "data/labels.h"
#include "data/metadata.h"
#include "fuzz/fuzz_check.h"
#include "tensor/error.h"

using namespace cxr::data;

namespace {

const Metadata& table() {
  static const Metadata meta = [] {
    const char* names[] = {
        "00000661_000.png", "00001688_000.png", "00004547_003.png", "00005066_030.png", "00008814_010.png",
        "00009608_024.png", "00010007_168.png", "00010172_001.png", "00010815_006.png", "00011136_002.png",
        "00012021_081.png", "00013118_008.png", "00013659_019.png", "00013993_077.png", "00014687_001.png",
        "00014716_007.png", "00019018_007.png", "00019892_003.png", "00020259_002.png", "00023068_003.png",
        "00023075_033.png", "00023078_000.png", "00026586_009.png", "00029579_005.png", "00029817_009.png",
        "00030162_026.png"};
    Metadata m;
    for (const char* n : names) {
      ImageRecord r;
      r.name = n;
      r.patient_id = std::stoll(std::string(n, 8));
      m.by_name.emplace(r.name, static_cast<std::int64_t>(m.images.size()));
      m.images.push_back(std::move(r));
    }
    return m;
  }();
  return meta;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  Metadata meta = table();
  Report report(Report::Echo::Off);
  std::istringstream in(text);
  int attached = 0;
  try {
    attached = read_bbox_list(in, "fuzz_bbox.csv", meta, report);
  } catch (const cxr::Error&) {
    for (const auto& r : meta.images) FUZZ_CHECK(r.boxes.empty(), "a rejected file attached boxes");
    return 0;
  }
  int total = 0;
  for (const auto& r : meta.images) {
    unsigned seen = 0;
    for (const Box& b : r.boxes) {
      FUZZ_CHECK(b.label >= 0 && b.label < kNumClasses, "label %d", b.label);
      FUZZ_CHECK(!(seen >> b.label & 1u), "two boxes of class %d on %s", b.label, r.name.c_str());
      seen |= 1u << b.label;
      FUZZ_CHECK(std::isfinite(b.x) && std::isfinite(b.y) && std::isfinite(b.w) && std::isfinite(b.h),
                 "box %g %g %g %g on %s", b.x, b.y, b.w, b.h, r.name.c_str());
      FUZZ_CHECK(b.w > 0 && b.h > 0, "box size %g x %g", b.w, b.h);
      ++total;
    }
  }
  FUZZ_CHECK(total == attached, "returned %d, attached %d", attached, total);
  std::istringstream again(text);
  LineReader lines(again);
  long long rows = -1;  // the header
  while (lines.next()) ++rows;
  FUZZ_CHECK(rows == static_cast<long long>(attached) + meta.skipped_boxes, "%lld rows, %d attached, %d skipped",
             rows, attached, meta.skipped_boxes);
  return 0;
}
