// Metadata readers: both Data_Entry formats and their quirks, the box list, split lists,
// malformed rows and unknown labels, and the real NIH files where they are present.
#include <doctest/doctest.h>

#include <filesystem>
#include <set>
#include <sstream>

#include "data/dataset.h"
#include "data/labels.h"
#include "data/metadata.h"
#include "tensor/error.h"
#include "tests/data/data_test_util.h"

using namespace cxr;
using namespace cxr::data;

namespace {

const char* kOriginal2017 =
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],\n"
    "00000001_000.png,Cardiomegaly,0,1,058Y,M,PA,2682,2749,0.143,0.143,\n"
    "00000001_001.png,Cardiomegaly|Emphysema,1,1,058Y,M,PA,2894,2729,0.143,0.143,\r\n"
    "00000002_000.png,No Finding,0,2,081Y,M,PA,2500,2048,0.171,0.171,\n"
    "00000003_000.png,Hernia|Pleural_Thickening,0,3,006M,F,AP,2048,2500,0.168,0.168,\n";

const char* kV2020 =
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n"
    "00000001_000.png,Cardiomegaly,0,1,57,M,PA,2682,2749,0.143,0.143\n"
    "00000001_001.png,Cardiomegaly|Emphysema,1,1,58,M,PA,2894,2729,0.143,0.143\n"
    "00000002_000.png,No Finding,0,2,81,M,PA,2500,2048,0.171,0.171\n";

Metadata parse(const std::string& text, Report& report) {
  Metadata m;
  std::istringstream in(text);
  read_data_entry(in, "test.csv", m, report);
  return m;
}

}  // namespace

TEST_SUITE("data") {

TEST_CASE("the 14 labels keep the CheXNet order and the data set's spelling") {
  CHECK(kClassNames[0] == "Atelectasis");
  CHECK(kClassNames[3] == "Infiltration");
  CHECK(kClassNames[12] == "Pleural_Thickening");
  CHECK(kClassNames[13] == "Hernia");
  CHECK(label_index("Pneumothorax") == 7);
  CHECK(label_index("Infiltrate") == 3);  // box-list spelling
  CHECK(label_index("No Finding") == -1);
  CHECK(label_index("pleural thickening") == -1);
}

TEST_CASE("Data_Entry_2017.csv in its original form: trailing commas, 058Y ages, split header cells") {
  Report report(Report::Echo::Off);
  const Metadata m = parse(kOriginal2017, report);
  REQUIRE(m.images.size() == 4);
  CHECK(report.count() == 0);
  const ImageRecord& a = m.images[0];
  CHECK(a.name == "00000001_000.png");
  CHECK(a.patient_id == 1);
  CHECK(a.age_years == 58);
  CHECK(a.gender == "M");
  CHECK(a.view == "PA");
  CHECK(a.original_width == 2682);
  CHECK(a.original_height == 2749);
  CHECK(a.labels == (1u << 1));
  CHECK(m.images[1].labels == ((1u << 1) | (1u << 10)));
  CHECK(m.images[1].follow_up == 1);
  CHECK(m.images[2].labels == 0);  // No Finding: nothing positive
  CHECK(m.images[3].age_years == 0);  // 006M
  CHECK(m.images[3].labels == ((1u << 13) | (1u << 12)));
  CHECK(m.find("00000002_000.png") == 2);
  CHECK(m.find("nope.png") == -1);
}

TEST_CASE("Data_Entry_2017_v2020.csv: plain ages, no trailing comma, same records") {
  Report report(Report::Echo::Off);
  const Metadata m = parse(kV2020, report);
  REQUIRE(m.images.size() == 3);
  CHECK(report.count() == 0);
  CHECK(m.images[0].age_years == 57);
  CHECK(m.images[1].labels == ((1u << 1) | (1u << 10)));
  CHECK(m.images[2].original_width == 2500);
  CHECK(parse_age_years("058Y") == 58);
  CHECK(parse_age_years(" 41 ") == 41);
  CHECK(parse_age_years("x") == -1);
}

TEST_CASE("malformed rows are reported with their line number and skipped") {
  Report report(Report::Echo::Off);
  const std::string text = std::string(kV2020) +
                           "00000004_000.png,Mass,0\n"                                      // line 5: short
                           "00000005_000.png,Mass,0,abc,40,F,PA,1,1,0.1,0.1\n"              // line 6: bad id
                           "00000006_000.png,,0,6,40,F,PA,1,1,0.1,0.1\n"                    // line 7: no labels
                           "00000001_000.png,Mass,0,1,40,F,PA,1,1,0.1,0.1\n"                // line 8: duplicate
                           "\n"
                           "00000007_000.png,Mass,0,7,40,F,PA,1,1,0.1,0.1,extra\n"          // line 10
                           "00000008_000.png,Nodule,2,8,40,F,PA,1024,1024,0.1,0.1\n";       // good
  const Metadata m = parse(text, report);
  CHECK(m.images.size() == 4);
  CHECK(m.malformed_rows == 5);
  CHECK(report.contains("test.csv:5: malformed row skipped: expected 11 fields, found 3"));
  CHECK(report.contains("test.csv:6: malformed row skipped: bad Patient ID 'abc'"));
  CHECK(report.contains("test.csv:7:"));
  CHECK(report.contains("test.csv:8: malformed row skipped: duplicate Image Index"));
  CHECK(report.contains("test.csv:10:"));
  CHECK(m.find("00000008_000.png") == 3);
}

TEST_CASE("unknown finding labels are reported by name and ignored") {
  Report report(Report::Echo::Off);
  const std::string text = std::string(kV2020) +
                           "00000009_000.png,Mass|Covid|Sarcoid,0,9,40,F,PA,1,1,0.1,0.1\n"
                           "00000010_000.png,Covid,0,10,40,F,PA,1,1,0.1,0.1\n";
  const Metadata m = parse(text, report);
  REQUIRE(m.images.size() == 5);
  CHECK(m.images[3].labels == (1u << 4));  // Mass kept
  CHECK(m.images[4].labels == 0);
  CHECK(m.unknown_labels.at("Covid") == 2);
  CHECK(m.unknown_labels.at("Sarcoid") == 1);
  CHECK(report.contains("unknown finding label 'Covid' ignored (2 rows, first at line 5)"));
}

TEST_CASE("a header without the required columns is an error that names them") {
  Report report(Report::Echo::Off);
  CHECK_THROWS_WITH_AS(parse("a,b,c\n1,2,3\n", report), doctest::Contains("'Image Index'"), Error);
}

TEST_CASE("BBox_List_2017.csv: odd header, Infiltrate means Infiltration, bad boxes skipped") {
  Report report(Report::Echo::Off);
  Metadata m = parse(kV2020, report);
  std::istringstream in(
      "Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
      "00000001_000.png,Cardiomegaly,100.5,200,300,250.25\n"
      "00000001_001.png,Infiltrate,10,20,30,40\n"
      "00000002_000.png,Hernia,1,2,3,4\n"      // line 4: not a boxed label? still one of 14: kept
      "00000002_000.png,Fracture,1,2,3,4\n"    // line 5: unknown label
      "00000099_000.png,Mass,1,2,3,4\n"        // line 6: image not in the table
      "00000002_000.png,Mass,1,2,x,4\n");      // line 7: bad number
  const int attached = read_bbox_list(in, "boxes.csv", m, report);
  CHECK(attached == 3);
  REQUIRE(m.images[0].boxes.size() == 1);
  const Box& b = m.images[0].boxes[0];
  CHECK(b.label == 1);
  CHECK(b.x == doctest::Approx(100.5));
  CHECK(b.h == doctest::Approx(250.25));
  CHECK(m.images[1].boxes.at(0).label == 3);
  CHECK(m.skipped_boxes == 3);
  CHECK(report.contains("boxes.csv:5: box skipped: unknown finding label 'Fracture'"));
  CHECK(report.contains("boxes.csv:6:"));
  CHECK(report.contains("boxes.csv:7:"));
}

TEST_CASE("split lists: one name per line, blank lines and CRLF ignored") {
  std::istringstream in("a.png\r\n\nb.png\n  c.png  \n");
  CHECK(read_image_list(in) == std::vector<std::string>{"a.png", "b.png", "c.png"});
}

TEST_CASE("a data set with no usable row is an error that says why") {
  test::TempDir dir("empty");
  test::write_text(dir / "Data_Entry_2017.csv",
                   "Image Index,Finding Labels,Follow-up #,Patient ID\nx.png,Mass,0,oops\n");
  Report report(Report::Echo::Off);
  CHECK_THROWS_WITH_AS(Dataset::load(dir.path(), report), doctest::Contains("no usable row (1 malformed"), Error);
  CHECK_THROWS_WITH_AS(Dataset::load(dir / "absent", report), doctest::Contains("does not exist"), Error);
  test::TempDir none("none");
  CHECK_THROWS_WITH_AS(Dataset::load(none.path(), report), doctest::Contains("neither Data_Entry_2017_v2020.csv"),
                       Error);
}

TEST_CASE("the real NIH metadata: 112,120 images, 30,805 patients, 984 boxes on 880 images") {
  const auto nih = test::nih_dir();
  if (!nih) {
    MESSAGE("skipped: ../shared/data/nih is absent (set CXR_SHARED_DATA)");
    return;
  }
  Report report(Report::Echo::Off);
  const Dataset ds = Dataset::load(*nih, report);
  CHECK(report.count() == 0);
  CHECK(ds.size() == 112120);
  CHECK(ds.meta.malformed_rows == 0);
  std::set<std::int64_t> patients;
  std::int64_t boxes = 0, boxed = 0, no_finding = 0, infiltration = 0, hernia = 0;
  for (const auto& r : ds.meta.images) {
    patients.insert(r.patient_id);
    boxes += static_cast<std::int64_t>(r.boxes.size());
    boxed += !r.boxes.empty();
    no_finding += r.labels == 0;
    infiltration += has_label(r.labels, 3);
    hernia += has_label(r.labels, 13);
  }
  CHECK(patients.size() == 30805);
  CHECK(boxes == 984);
  CHECK(boxed == 880);
  CHECK(no_finding == 60361);
  CHECK(infiltration == 19894);
  CHECK(hernia == 227);
  const ImageRecord& first = ds.record(ds.meta.find("00000001_000.png"));
  CHECK(first.labels == (1u << 1));
  CHECK(first.original_width == 2682);
  CHECK(!ds.image_path(ds.meta.find("00009285_000.png")).empty());
  CHECK(ds.missing_images() == 112120 - 3);
  // The real box list's first row: Atelectasis on 00013118_008.png.
  const ImageRecord& boxed_rec = ds.record(ds.meta.find("00013118_008.png"));
  REQUIRE(!boxed_rec.boxes.empty());
  CHECK(boxed_rec.boxes[0].label == 0);
  CHECK(boxed_rec.boxes[0].x == doctest::Approx(225.0847));
}

}  // TEST_SUITE

TEST_SUITE("data") {

TEST_CASE("images are found under DIR/images/ and in the Kaggle layout DIR/images_*/images/") {
  test::TempDir dir("kaggle");
  test::write_text(dir / "Data_Entry_2017.csv",
                   "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
                   "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],\n"
                   "a.png,Mass,0,1,040Y,F,PA,8,8,0.1,0.1,\nb.png,No Finding,0,2,041Y,M,PA,8,8,0.1,0.1,\n"
                   "c.png,Nodule,0,3,042Y,M,PA,8,8,0.1,0.1,\nd.png,Edema,0,4,043Y,M,PA,8,8,0.1,0.1,\n");
  for (const char* sub : {"images", "images_001/images", "images_002/images"})
    std::filesystem::create_directories(dir / sub);
  test::write_text(dir / "images/a.png", "x");
  test::write_text(dir / "images_001/images/b.png", "x");
  test::write_text(dir / "images_002/images/c.png", "x");
  Report report(Report::Echo::Off);
  const Dataset ds = Dataset::load(dir.path(), report);
  CHECK(ds.image_dirs.size() == 3);
  CHECK(ds.image_path(0) == dir / "images/a.png");
  CHECK(ds.image_path(1) == dir / "images_001/images/b.png");
  CHECK(ds.image_path(2) == dir / "images_002/images/c.png");
  CHECK(ds.image_path(3).empty());
  CHECK(ds.missing_images() == 1);
}

}  // TEST_SUITE
