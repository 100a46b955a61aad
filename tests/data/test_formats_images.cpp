// The readers end to end with the image formats the sets ship: CheXpert and MIMIC JPEGs
// (libjpeg-turbo), RSNA and VinDr DICOM (written with DCMTK by tests/data/dicom_writer), through
// the loader into batches: decoded pixels, labels and label masks in the set's label space,
// boxes scaled to the training size.
#include <doctest/doctest.h>

#include <turbojpeg.h>

#include <filesystem>
#include <map>
#include <memory>

#include "data/formats.h"
#include "data/label_space.h"
#include "data/loader.h"
#include "tensor/error.h"
#include "tests/data/data_test_util.h"
#include "tests/data/dicom_writer.h"

using namespace cxr;
using namespace cxr::data;
namespace fs = std::filesystem;

namespace {

// A gray w x h JPEG of a gradient (quality 90).
void write_jpeg(const std::string& path, int w, int h, int seed) {
  std::vector<std::uint8_t> px(static_cast<std::size_t>(w) * h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) px[static_cast<std::size_t>(y * w + x)] = static_cast<std::uint8_t>((x * 4 + y * 2 + seed * 30) % 256);
  std::unique_ptr<void, int (*)(tjhandle)> tj(tjInitCompress(), tjDestroy);
  REQUIRE(tj != nullptr);
  unsigned char* out = nullptr;
  unsigned long size = 0;
  REQUIRE(tjCompress2(tj.get(), px.data(), w, 0, h, TJPF_GRAY, &out, &size, TJSAMP_GRAY, 90, 0) == 0);
  fs::create_directories(fs::path(path).parent_path());
  test::write_bytes(path, std::vector<std::uint8_t>(out, out + size));
  tjFree(out);
}

test::DicomSpec dicom_image(int w, int h, const std::string& photometric = "MONOCHROME2") {
  test::DicomSpec s;
  s.width = w;
  s.height = h;
  s.photometric = photometric;
  for (int i = 0; i < w * h; ++i) s.values.push_back((i * 37) % 4096);
  s.windows = {{2048, 4096}};
  s.pixel_spacing = "0.139\\0.139";
  return s;
}

void write_dicom_file(const std::string& path, const test::DicomSpec& spec) {
  fs::create_directories(fs::path(path).parent_path());
  test::write_dicom(path, spec);
}

std::vector<std::int64_t> all_indices(const Dataset& ds) {
  std::vector<std::int64_t> v;
  for (std::int64_t i = 0; i < ds.size(); ++i) v.push_back(i);
  return v;
}

struct OneBatch {
  std::vector<float> images, labels, mask, boxes, box_mask;
  std::vector<std::string> names;
  std::int64_t skipped = 0;
};

OneBatch load_all(const Dataset& ds, const LabelSpace& space, int size, Report& report) {
  LoaderOptions o;
  o.batch_size = static_cast<int>(ds.size());
  o.image_size = size;
  o.workers = 1;
  o.label_findings = space.findings();
  DataLoader loader(ds, all_indices(ds), o, report);
  OneBatch out;
  for (const Batch& b : loader.epoch(0)) {
    out.images = b.images.to_vector();
    out.labels = b.labels.to_vector();
    if (b.label_mask.defined()) out.mask = b.label_mask.to_vector();
    out.boxes = b.boxes.to_vector();
    out.box_mask = b.box_mask.to_vector();
    out.names = b.names;
  }
  out.skipped = loader.stats().skipped;
  return out;
}

}  // namespace

TEST_SUITE("data") {

TEST_CASE("CheXpert with JPEGs: decoded, labels and masks in CheXpert's label space") {
  test::TempDir dir("chexpert_jpeg");
  test::write_text(dir / "train.csv",
                   "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Cardiomegaly,Pleural Effusion,Fracture\n"
                   "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg,Female,68,Frontal,AP,,1.0,-1.0,\n"
                   "CheXpert-v1.0-small/train/patient00002/study1/view1_frontal.jpg,Male,50,Frontal,PA,1.0,0.0,0.0,0.0\n"
                   "CheXpert-v1.0-small/train/patient00003/study1/view1_frontal.jpg,Male,50,Frontal,PA,,,1,\n");
  for (int p = 1; p <= 3; ++p)
    write_jpeg(dir / ("train/patient0000" + std::to_string(p) + "/study1/view1_frontal.jpg"), 48, 40, p);
  Report quiet(Report::Echo::Off);
  const Dataset ds = load_dataset(dir.path(), {}, quiet);
  const LabelSpace space = LabelSpace::of(ds.findings);
  REQUIRE(space.names() == std::vector<std::string>{"Cardiomegaly", "Effusion", "Fracture"});
  const OneBatch b = load_all(ds, space, 32, quiet);
  CHECK(b.skipped == 0);
  REQUIRE(b.names.size() == 3);
  REQUIRE(b.mask.size() == 9);
  CHECK(b.labels == std::vector<float>{1, 0, 0, 0, 0, 0, 0, 1, 0});
  // Image 1: Effusion uncertain (U-Ignore) and Fracture blank are missing.
  CHECK(b.mask == std::vector<float>{1, 0, 0, 1, 1, 1, 0, 1, 0});
  float lo = 1e9f, hi = -1e9f;
  for (float v : b.images) lo = std::min(lo, v), hi = std::max(hi, v);
  CHECK(hi - lo > 1.f);  // a gradient, not a blank image
}

TEST_CASE("MIMIC-CXR-JPG: the files/pXX/... JPEGs load") {
  test::TempDir dir("mimic_jpeg");
  test::write_text(dir / "mimic-cxr-2.0.0-chexpert.csv",
                   "subject_id,study_id,Atelectasis,Cardiomegaly,No Finding\n10000032,50414267,1.0,,\n");
  test::write_text(dir / "mimic-cxr-2.0.0-metadata.csv",
                   "dicom_id,subject_id,study_id,ViewPosition\nabc-1,10000032,50414267,PA\nabc-2,10000032,50414267,LATERAL\n");
  write_jpeg(dir / "files/p10/p10000032/s50414267/abc-1.jpg", 30, 30, 1);
  write_jpeg(dir / "files/p10/p10000032/s50414267/abc-2.jpg", 30, 30, 2);
  Report quiet(Report::Echo::Off);
  const Dataset ds = load_dataset(dir.path(), {}, quiet);
  const OneBatch b = load_all(ds, LabelSpace::of(ds.findings), 16, quiet);
  CHECK(b.skipped == 0);
  CHECK(b.labels == std::vector<float>{1, 0, 1, 0});
  CHECK(b.mask == std::vector<float>{1, 0, 1, 0});
}

TEST_CASE("RSNA with DICOM: boxes from every row, scaled to the training size; a broken file is skipped by name") {
  test::TempDir dir("rsna_dicom");
  test::write_text(dir / "stage_2_train_labels.csv",
                   "patientId,x,y,width,height,Target\n"
                   "p-neg,,,,,0\n"
                   "p-pos,8.0,16.0,16.0,32.0,1\n"
                   "p-pos,40.0,16.0,16.0,32.0,1\n"
                   "p-broken,,,,,0\n");
  write_dicom_file(dir / "stage_2_train_images/p-neg.dcm", dicom_image(64, 64));
  write_dicom_file(dir / "stage_2_train_images/p-pos.dcm", dicom_image(64, 64));
  test::write_text(dir / "stage_2_train_images/p-broken.dcm", "not a dicom file");
  Report quiet(Report::Echo::Off);
  const Dataset ds = load_dataset(dir.path(), {}, quiet);
  const LabelSpace space = LabelSpace::of(ds.findings);  // Pneumonia, Lung Opacity
  REQUIRE(space.size() == 2);
  const OneBatch b = load_all(ds, space, 32, quiet);
  CHECK(b.skipped == 1);
  CHECK(quiet.contains("image p-broken.dcm skipped"));
  REQUIRE(b.names == std::vector<std::string>{"p-neg.dcm", "p-pos.dcm"});
  CHECK(b.labels == std::vector<float>{0, 0, 1, 1});
  CHECK(b.box_mask == std::vector<float>{0, 0, 1, 1});
  // The first box of the image for each output: (8, 16, 16, 32) of 64 px -> (cx, cy, w, h).
  for (int k = 0; k < 2; ++k) {
    const float* box = &b.boxes[static_cast<std::size_t>((2 + k) * 4)];
    CHECK(box[0] == doctest::Approx(0.25));
    CHECK(box[1] == doctest::Approx(0.5));
    CHECK(box[2] == doctest::Approx(0.25));
    CHECK(box[3] == doctest::Approx(0.5));
  }
  Report strict_report(Report::Echo::Off);
  LoaderOptions o;
  o.batch_size = 3;
  o.image_size = 16;
  o.strict = true;
  o.label_findings = space.findings();
  DataLoader strict(ds, all_indices(ds), o, strict_report);
  CHECK_THROWS_WITH_AS([&] { for (const Batch& x : strict.epoch(0)) (void)x; }(), doctest::Contains("p-broken.dcm"),
                       cxr::Error);
}

TEST_CASE("VinDr with .dicom files (MONOCHROME1) loads; a missing file is counted") {
  test::TempDir dir("vindr_dicom");
  std::string header = "image_id,rad_id,Cardiomegaly,Pleural effusion,No finding\n";
  test::write_text(dir / "image_labels_train.csv",
                   header + "a,R1,1,0,0\na,R2,1,0,0\na,R3,0,0,1\nb,R1,0,0,1\nb,R2,0,1,0\nb,R3,0,0,1\nc,R1,0,0,1\n");
  write_dicom_file(dir / "train/a.dicom", dicom_image(40, 40, "MONOCHROME1"));
  write_dicom_file(dir / "train/b.dicom", dicom_image(40, 40));
  Report quiet(Report::Echo::Off);
  const Dataset ds = load_dataset(dir.path(), {}, quiet);
  CHECK(ds.missing_images() == 1);
  const OneBatch b = load_all(ds, LabelSpace::of(ds.findings), 16, quiet);  // Cardiomegaly, Effusion
  CHECK(b.skipped == 1);
  REQUIRE(b.names.size() == 2);
  CHECK(b.labels == std::vector<float>{1, 0, 0, 0});  // a: Cardiomegaly by 2 of 3; b: Effusion by 1 of 3
}

}  // TEST_SUITE
