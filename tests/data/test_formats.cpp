// The data-set readers (data/formats.h) on small files written here in each set's exact
// format (headers as released, quirks included), format detection, and bad input.
#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <set>

#include "data/csv.h"
#include "data/data_info.h"
#include "data/formats.h"
#include "data/label_space.h"
#include "data/splits.h"
#include "tensor/error.h"
#include "tests/data/data_test_util.h"

using namespace cxr;
using namespace cxr::data;
namespace fs = std::filesystem;

namespace {

void touch(const std::string& path) {
  fs::create_directories(fs::path(path).parent_path());
  test::write_text(path, "");
}

void write_png(const std::string& path, int w, int h, int bits) {
  fs::create_directories(fs::path(path).parent_path());
  std::vector<std::uint16_t> px(static_cast<std::size_t>(w) * h);
  for (std::size_t i = 0; i < px.size(); ++i) px[i] = static_cast<std::uint16_t>((i * 37) % (bits == 16 ? 65536 : 256));
  test::write_bytes(path, test::encode_png(px, w, h, 1, bits));
}

const ImageRecord& by_name(const Dataset& ds, const std::string& name) {
  const auto i = ds.meta.find(name);
  REQUIRE_MESSAGE(i >= 0, name);
  return ds.record(i);
}

bool positive(const Dataset& ds, const std::string& name, int g) {
  return ds.present(ds.meta.find(name), g) && has_label(by_name(ds, name).labels, g);
}
bool negative(const Dataset& ds, const std::string& name, int g) {
  return ds.present(ds.meta.find(name), g) && !has_label(by_name(ds, name).labels, g);
}
bool missing(const Dataset& ds, const std::string& name, int g) { return !ds.present(ds.meta.find(name), g); }

constexpr const char* kChexpertHeader =
    "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,Lung Opacity,"
    "Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,Pleural Effusion,Pleural Other,Fracture,"
    "Support Devices\n";

// The message of the cxr::Error `f` throws ("" when it throws none).
template <typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const cxr::Error& e) {
    return e.what();
  }
  return "";
}

// `n` cells joined by commas, "" except the given ones.
std::string cells(int n, const std::map<int, std::string>& given) {
  std::string s;
  for (int c = 0; c < n; ++c) {
    if (c) s += ",";
    const auto it = given.find(c);
    if (it != given.end()) s += it->second;
  }
  return s;
}

// CheXpert's label columns, in the file's order.
enum Chx { kNoFind, kEC, kCardio, kLungOp, kLungLes, kEdema, kConsol, kPneu, kAtel, kPtx, kEff, kPlOther, kFract, kSupport };

std::string chexpert_row(const std::string& path, const std::string& sex, int age, const std::string& fl,
                         const std::string& ap, const std::map<int, std::string>& labels) {
  return path + "," + sex + "," + std::to_string(age) + "," + fl + "," + ap + "," + cells(14, labels) + "\n";
}

// A CheXpert-v1.0-small folder: train.csv (floats, blanks, -1.0) and valid.csv (0/1 ints in
// some copies), files under train/ without the release prefix.
void write_chexpert(const std::string& dir) {
  const std::string t = "CheXpert-v1.0-small/train/";
  test::write_text(dir + "/train.csv",
                   std::string(kChexpertHeader) +
                       chexpert_row(t + "patient00001/study1/view1_frontal.jpg", "Female", 68, "Frontal", "AP",
                                    {{kNoFind, "1.0"}, {kPtx, "0.0"}, {kSupport, "1.0"}}) +
                       chexpert_row(t + "patient00002/study2/view1_frontal.jpg", "Female", 87, "Frontal", "AP",
                                    {{kCardio, "-1.0"}, {kLungOp, "1.0"}, {kEdema, "-1.0"}, {kConsol, "-1.0"},
                                     {kAtel, "-1.0"}, {kEff, "-1.0"}, {kFract, "1.0"}}) +
                       chexpert_row(t + "patient00002/study1/view1_frontal.jpg", "Female", 83, "Frontal", "AP",
                                    {{kLungOp, "1.0"}, {kConsol, "-1.0"}, {kFract, "1.0"}}) +
                       chexpert_row(t + "patient00002/study1/view2_lateral.jpg", "Female", 83, "Lateral", "",
                                    {{kLungOp, "1.0"}, {kFract, "1.0"}}) +
                       chexpert_row(t + "patient00003/study1/view1_frontal.jpg", "Male", 41, "Frontal", "AP",
                                    {{kEdema, "1.0"}, {kPtx, "0.0"}}) +
                       chexpert_row(t + "patient00004/study1/view1_frontal.jpg", "Female", 20, "Frontal", "PA",
                                    {{kNoFind, "1.0"}, {kEC, "0.0"}, {kPtx, "0.0"}}) +
                       chexpert_row(t + "patient00005/study1/view1_frontal.jpg", "Male", 33, "Frontal", "PA",
                                    {{kEff, "1.0"}}));
  std::map<int, std::string> v1, v2;
  for (int c = 0; c < 14; ++c) {
    v1[c] = c == kEC || c == kCardio || c == kLungOp ? "1" : "0";
    v2[c] = c == kNoFind ? "1" : "0";
  }
  test::write_text(dir + "/valid.csv",
                   std::string(kChexpertHeader) +
                       chexpert_row("CheXpert-v1.0-small/valid/patient64541/study1/view1_frontal.jpg", "Male", 73,
                                    "Frontal", "AP", v1) +
                       chexpert_row("CheXpert-v1.0-small/valid/patient64542/study1/view1_frontal.jpg", "Male", 70,
                                    "Frontal", "PA", v2));
  touch(dir + "/train/patient00001/study1/view1_frontal.jpg");
  touch(dir + "/train/patient00002/study2/view1_frontal.jpg");
  touch(dir + "/valid/patient64541/study1/view1_frontal.jpg");
}

}  // namespace

TEST_SUITE("data") {

TEST_CASE("label space: the union, its order, the aliases, the NIH space is today's 14") {
  CHECK(kNumFindings == 20);
  for (int k = 0; k < kNumClasses; ++k) CHECK(kFindingNames[static_cast<std::size_t>(k)] == kClassNames[static_cast<std::size_t>(k)]);
  CHECK(finding_index("Pleural Effusion") == finding::kEffusion);
  CHECK(finding_index("Effusion") == finding::kEffusion);
  CHECK(finding_index("Infiltrate") == finding::kInfiltration);
  CHECK(finding_index("infiltrates") == finding::kInfiltration);
  CHECK(finding_index("PNEUMONIA") == finding::kPneumonia);
  CHECK(finding_index("Pleural Thickening") == finding::kPleuralThickening);
  CHECK(finding_index("Pleural_Thickening") == finding::kPleuralThickening);
  CHECK(finding_index("Enlarged Cardiomediastinum") == finding::kEnlargedCardiomediastinum);
  CHECK(finding_index("Support Devices") == finding::kSupportDevices);
  CHECK(finding_index("Nodule/Mass") == -1);
  CHECK(finding_index("No Finding") == -1);
  // The NIH reader keeps its exact names: a CheXpert spelling is no NIH label.
  CHECK(label_index("Pleural Effusion") == -1);

  const LabelSpace nih = LabelSpace::nih();
  REQUIRE(nih.size() == 14);
  for (int k = 0; k < 14; ++k) {
    CHECK(nih.finding(k) == k);
    CHECK(nih.names()[static_cast<std::size_t>(k)] == kClassNames[static_cast<std::size_t>(k)]);
  }
  CHECK(choose_label_space({kNihFindings}) == nih);
  const LabelSpace u = choose_label_space({kNihFindings, bit(finding::kFracture) | bit(finding::kEffusion)});
  CHECK(u.size() == 15);
  CHECK(u.names().back() == "Fracture");
  CHECK(u.index_of(finding::kFracture) == 14);
  const LabelSpace from = LabelSpace::from_names({"Pleural Effusion", "Cardiomegaly", "Something Else"});
  CHECK(from.findings() == std::vector<int>{finding::kEffusion, finding::kCardiomegaly, -1});
  CHECK(from.index_of(-1) == -1);
}

TEST_CASE("format detection from the folder's files, and --format names an unknown one") {
  test::TempDir dir("detect");
  CHECK_THROWS_WITH_AS(detect_format(dir.path()), doctest::Contains("cannot tell the format"), cxr::Error);
  write_chexpert(dir.path());
  CHECK(detect_format(dir.path()) == "chexpert");
  CHECK(detect_format(test::small_synth_dir()) == "nih");
  CHECK_THROWS_WITH_AS(load_dataset(dir.path(), {.format = "dicomdir"}), doctest::Contains("unknown data format 'dicomdir'"),
                       cxr::Error);
}

TEST_CASE("CheXpert: labels 1.0 / 0.0 / -1.0 / blank, the uncertainty policies, views, patients, paths, split") {
  test::TempDir dir("chexpert");
  write_chexpert(dir.path());
  Report quiet(Report::Echo::Off);
  const Dataset ds = load_dataset(dir.path(), {}, quiet);
  CHECK(ds.format == "chexpert");
  CHECK(ds.size() == 9);
  CHECK(ds.findings == (bit(finding::kEnlargedCardiomediastinum) | bit(finding::kCardiomegaly) |
                        bit(finding::kLungOpacity) | bit(finding::kLungLesion) | bit(finding::kEdema) |
                        bit(finding::kConsolidation) | bit(finding::kPneumonia) | bit(finding::kAtelectasis) |
                        bit(finding::kPneumothorax) | bit(finding::kEffusion) | bit(finding::kPleuralOther) |
                        bit(finding::kFracture) | bit(finding::kSupportDevices)));
  const std::string p1 = "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg";
  const std::string p2 = "CheXpert-v1.0-small/train/patient00002/study2/view1_frontal.jpg";
  CHECK(negative(ds, p1, finding::kPneumothorax));
  CHECK(positive(ds, p1, finding::kSupportDevices));
  CHECK(missing(ds, p1, finding::kCardiomegaly));  // blank: not mentioned
  CHECK(missing(ds, p1, finding::kMass));          // CheXpert has no Mass
  // U-Ignore (default): -1.0 is missing, but counted as uncertain.
  CHECK(missing(ds, p2, finding::kCardiomegaly));
  CHECK(has_label(by_name(ds, p2).uncertain, finding::kCardiomegaly));
  CHECK(positive(ds, p2, finding::kLungOpacity));
  CHECK(by_name(ds, p1).patient_id == 1);
  CHECK(by_name(ds, p2).patient_id == 2);
  CHECK(by_name(ds, p1).gender == "Female");
  CHECK(by_name(ds, p1).age_years == 68);
  CHECK(by_name(ds, p1).view == "AP");
  CHECK(by_name(ds, "CheXpert-v1.0-small/train/patient00002/study1/view2_lateral.jpg").view == "LL");
  // Files found without the release's folder prefix; absent ones counted.
  CHECK(ds.image_path(ds.meta.find(p1)) == dir / "train/patient00001/study1/view1_frontal.jpg");
  CHECK(ds.missing_images() == 6);
  // valid.csv (ints) is the test split.
  const std::string v1 = "CheXpert-v1.0-small/valid/patient64541/study1/view1_frontal.jpg";
  CHECK(positive(ds, v1, finding::kEnlargedCardiomediastinum));
  CHECK(negative(ds, v1, finding::kEdema));
  const Splits s = make_splits(ds, {.val_fraction = 0.25, .seed = 1}, quiet);
  CHECK(s.test.size() == 2);
  CHECK(s.train.size() + s.val.size() == 7);
  CHECK(!s.val.empty());
  CHECK(patient_disjoint(ds, s));

  const Dataset zeros = load_dataset(dir.path(), {.uncertain = UncertainPolicy::zeros}, quiet);
  CHECK(negative(zeros, p2, finding::kCardiomegaly));
  const Dataset ones = load_dataset(dir.path(), {.uncertain = UncertainPolicy::ones}, quiet);
  CHECK(positive(ones, p2, finding::kCardiomegaly));
  CHECK(has_label(by_name(ones, p2).uncertain, finding::kCardiomegaly));
  const Dataset frontal = load_dataset(dir.path(), {.frontal_only = true}, quiet);
  CHECK(frontal.size() == 8);

  const DataInfo info = compute_data_info(ds, s);
  CHECK(info.format == "chexpert");
  CHECK(info.uncertain[finding::kCardiomegaly] == 1);
  CHECK(info.uncertain[finding::kEffusion] == 1);
  CHECK(info.missing[finding::kMass] == 0);  // not a CheXpert finding: not listed
  CHECK(info.missing[finding::kCardiomegaly] == 7);  // blank or uncertain on all but valid's two
  CHECK(info.views.at("AP") == 5);
  const auto j = data_info_json(info);
  CHECK(j["format"] == "chexpert");
  CHECK(j["labels"].size() == 13);
  CHECK(j["uncertain_labels"]["Cardiomegaly"] == 1);
  CHECK(j["missing_labels"]["Cardiomegaly"] == 7);
  CHECK(j["views"]["LL"] == 1);
}

TEST_CASE("CheXpert bad input: a missing column, a bad cell, an unknown label column, no patient") {
  test::TempDir dir("chexpert_bad");
  Report quiet(Report::Echo::Off);
  test::write_text(dir / "train.csv", "Path,Sex,Age,AP/PA,Cardiomegaly\nx/train/patient00001/s/v.jpg,M,1,AP,1.0\n");
  const std::string e = error_of([&] { load_chexpert(dir.path(), {}, quiet); });
  CHECK(e.find(dir / "train.csv") != std::string::npos);
  CHECK(e.find("no column 'Frontal/Lateral'") != std::string::npos);
  test::write_text(dir / "train.csv",
                   "Path,Sex,Age,Frontal/Lateral,AP/PA,Cardiomegaly,Kidney Stones\n"
                   "x/train/patient00001/s1/v1.jpg,Male,50,Frontal,AP,1.0,1.0\n"
                   "x/train/patient00001/s1/v2.jpg,Male,50,Frontal,AP,2.0,\n"
                   "x/train/nobody/s1/v1.jpg,Male,50,Frontal,AP,1.0,\n"
                   "x/train/patient00003/s1/v1.jpg,Male,50,Frontal,AP\n");
  const Dataset ds = load_chexpert(dir.path(), {}, quiet);
  CHECK(ds.size() == 1);
  CHECK(ds.meta.malformed_rows == 3);
  CHECK(quiet.contains(dir / "train.csv:3: malformed row skipped: label Cardiomegaly is '2.0'"));
  CHECK(quiet.contains(dir / "train.csv:4: malformed row skipped: no 'patientNNNNN'"));
  CHECK(quiet.contains(dir / "train.csv:5: malformed row skipped: expected 7 fields, found 5"));
  CHECK(quiet.contains("unknown label column 'Kidney Stones' ignored"));
  CHECK(ds.meta.unknown_labels.count("Kidney Stones") == 1);
}

TEST_CASE("MIMIC-CXR-JPG: labels per study, ViewPosition, the official split, the files/pXX/... paths") {
  test::TempDir dir("mimic");
  Report quiet(Report::Echo::Off);
  // MIMIC's label columns: 0 Atelectasis, 1 Cardiomegaly, 2 Consolidation, 3 Edema, 4 Enlarged
  // Cardiomediastinum, 5 Fracture, 6 Lung Lesion, 7 Lung Opacity, 8 No Finding, 9 Pleural
  // Effusion, 10 Pleural Other, 11 Pneumonia, 12 Pneumothorax, 13 Support Devices.
  test::write_text(dir / "mimic-cxr-2.0.0-chexpert.csv",
                   "subject_id,study_id,Atelectasis,Cardiomegaly,Consolidation,Edema,Enlarged Cardiomediastinum,"
                   "Fracture,Lung Lesion,Lung Opacity,No Finding,Pleural Effusion,Pleural Other,Pneumonia,"
                   "Pneumothorax,Support Devices\n"
                   "10000032,50414267," + cells(14, {{8, "1.0"}}) + "\n"
                   "10000032,53189527," + cells(14, {{8, "1.0"}}) + "\n"
                   "10000764,57375967," + cells(14, {{2, "1.0"}, {11, "-1.0"}}) + "\n"
                   "10000898,50771383," + cells(14, {{1, "1.0"}, {3, "0.0"}, {9, "1.0"}}) + "\n");
  test::write_text(dir / "mimic-cxr-2.0.0-metadata.csv",
                   "dicom_id,subject_id,study_id,PerformedProcedureStepDescription,ViewPosition,Rows,Columns,"
                   "StudyDate,StudyTime,ProcedureCodeSequence_CodeMeaning,ViewCodeSequence_CodeMeaning,"
                   "PatientOrientationCodeSequence_CodeMeaning\n"
                   "02aa804e-bde0afdd-112c0b34-7bc16630-4e384014,10000032,50414267,CHEST (PA AND LAT),PA,3056,2544,21800506,213014.531,CHEST (PA AND LAT),postero-anterior,Erect\n"
                   "174413ec-4ec4c1f7-34ea26b7-c5f994f8-79ef1962,10000032,50414267,CHEST (PA AND LAT),LATERAL,3056,2544,21800506,213014.531,CHEST (PA AND LAT),lateral,Erect\n"
                   "fffabebf-74fd3a1f-673b6b41-96ec0ac9-2ab69818,10000764,57375967,CHEST (PORTABLE AP),AP,2705,2539,21321015,000000.000,CHEST (PORTABLE AP),antero-posterior,\n"
                   "ea030e7a-2e3b1346-bc518786-7a8fd698-f673b44c,10000898,50771383,CHEST (PA AND LAT),PA,3056,2544,21321015,000000.000,CHEST (PA AND LAT),postero-anterior,Erect\n"
                   "aaaaaaaa-2e3b1346-bc518786-7a8fd698-f673b44c,10000999,59999999,CHEST (PA AND LAT),PA,3056,2544,21321015,000000.000,CHEST (PA AND LAT),postero-anterior,Erect\n");
  test::write_text(dir / "mimic-cxr-2.0.0-split.csv",
                   "dicom_id,study_id,subject_id,split\n"
                   "02aa804e-bde0afdd-112c0b34-7bc16630-4e384014,50414267,10000032,train\n"
                   "174413ec-4ec4c1f7-34ea26b7-c5f994f8-79ef1962,50414267,10000032,train\n"
                   "fffabebf-74fd3a1f-673b6b41-96ec0ac9-2ab69818,57375967,10000764,validate\n"
                   "ea030e7a-2e3b1346-bc518786-7a8fd698-f673b44c,50771383,10000898,test\n"
                   "aaaaaaaa-2e3b1346-bc518786-7a8fd698-f673b44c,59999999,10000999,train\n");
  const std::string n1 = "files/p10/p10000032/s50414267/02aa804e-bde0afdd-112c0b34-7bc16630-4e384014.jpg";
  touch(dir / n1);
  CHECK(detect_format(dir.path()) == "mimic");
  const Dataset ds = load_dataset(dir.path(), {}, quiet);
  REQUIRE(ds.size() == 5);
  CHECK(ds.image_path(ds.meta.find(n1)) == dir / n1);
  CHECK(ds.missing_images() == 4);
  CHECK(negative(ds, n1, finding::kNodule) == false);  // MIMIC has no Nodule: missing
  CHECK(missing(ds, n1, finding::kCardiomegaly));       // No Finding = 1.0, the rest blank
  const std::string n3 = "files/p10/p10000764/s57375967/fffabebf-74fd3a1f-673b6b41-96ec0ac9-2ab69818.jpg";
  CHECK(positive(ds, n3, finding::kConsolidation));
  CHECK(missing(ds, n3, finding::kPneumonia));
  CHECK(has_label(by_name(ds, n3).uncertain, finding::kPneumonia));
  CHECK(by_name(ds, n3).view == "AP");
  const std::string n4 = "files/p10/p10000898/s50771383/ea030e7a-2e3b1346-bc518786-7a8fd698-f673b44c.jpg";
  CHECK(positive(ds, n4, finding::kEffusion));
  CHECK(negative(ds, n4, finding::kEdema));
  CHECK(by_name(ds, n4).patient_id == 10000898);
  // A study without a label row: every label missing, reported.
  CHECK(by_name(ds, "files/p10/p10000999/s59999999/aaaaaaaa-2e3b1346-bc518786-7a8fd698-f673b44c.jpg").known == 0);
  CHECK(quiet.contains("1 images of"));
  const Splits s = make_splits(ds, {}, quiet);
  CHECK(s.train.size() == 3);
  CHECK(s.val.size() == 1);
  CHECK(s.test.size() == 1);
  CHECK(s.source == "the set's own split");
  CHECK(load_dataset(dir.path(), {.frontal_only = true}, quiet).size() == 4);

  fs::rename(dir / "mimic-cxr-2.0.0-chexpert.csv", dir / "mimic-cxr-2.0.0-chexpert.csv.gz");
  CHECK_THROWS_WITH_AS(load_mimic(dir.path(), {}, quiet), doctest::Contains("gunzip"), cxr::Error);
}

TEST_CASE("PadChest: label lists as strings, normal, unmapped labels, the projection filter, 16-bit PNGs") {
  CHECK(parse_padchest_labels("['pleural effusion', 'cardiomegaly']") ==
        std::vector<std::string>{"pleural effusion", "cardiomegaly"});
  CHECK(parse_padchest_labels("[' pleural effusion', 'COPD signs']") ==
        std::vector<std::string>{"pleural effusion", "copd signs"});
  CHECK(parse_padchest_labels("['normal']") == std::vector<std::string>{"normal"});
  CHECK(parse_padchest_labels("[]") == std::vector<std::string>{});
  CHECK_FALSE(parse_padchest_labels("pleural effusion").has_value());
  CHECK_FALSE(parse_padchest_labels("['pleural effusion").has_value());

  test::TempDir dir("padchest");
  Report quiet(Report::Echo::Off);
  const std::string csv = dir / "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv";
  test::write_text(csv,
                   "ImageID,ImageDir,StudyDate_DICOM,StudyID,PatientID,PatientBirth,PatientSex_DICOM,ViewPosition_DICOM,"
                   "Projection,MethodProjection,Labels,Localizations\n"
                   "a.png,0,20140915,s1,111111111111111111111111111111111111,1939.0,M,POSTEROANTERIOR,PA,Manual review of DICOM fields,\"['pleural effusion', 'cardiomegaly', 'aortic elongation']\",\"['loc left']\"\n"
                   "b.png,0,20140915,s1,111111111111111111111111111111111111,1939.0,M,LATERAL,L,Manual review of DICOM fields,\"['normal']\",[]\n"
                   "c.png,1,20150101,s2,222222222222222222222222222222222222,1950.0,F,AP,AP_horizontal,Manual review of DICOM fields,\"[' rib fracture', 'NSG tube']\",[]\n"
                   "d.png,1,20150101,s3,333,1950.0,F,PA,PA,Manual review of DICOM fields,,[]\n"
                   "e.png,1,20150101,s3,333,1950.0,F,PA,PA,Manual review of DICOM fields,pleural effusion,[]\n");
  write_png(dir / "0/a.png", 40, 30, 16);
  write_png(dir / "images/c.png", 20, 20, 16);
  CHECK(detect_format(dir.path()) == "padchest");
  const Dataset ds = load_dataset(dir.path(), {}, quiet);
  REQUIRE(ds.size() == 3);
  CHECK(ds.meta.malformed_rows == 2);
  CHECK(quiet.contains(csv + ":5: malformed row skipped: no labels"));
  CHECK(quiet.contains(csv + ":6: malformed row skipped: Labels 'pleural effusion' is not a list"));
  CHECK(positive(ds, "a.png", finding::kEffusion));
  CHECK(positive(ds, "a.png", finding::kCardiomegaly));
  CHECK(negative(ds, "a.png", finding::kPneumonia));
  CHECK(missing(ds, "a.png", finding::kLungOpacity));  // not in PadChest's map
  CHECK(by_name(ds, "b.png").labels == 0);
  CHECK(positive(ds, "c.png", finding::kFracture));
  CHECK(positive(ds, "c.png", finding::kSupportDevices));
  CHECK(ds.meta.unmapped_labels.at("aortic elongation") == 1);
  CHECK(by_name(ds, "a.png").patient_id == by_name(ds, "b.png").patient_id);
  CHECK(by_name(ds, "a.png").patient_id != by_name(ds, "c.png").patient_id);
  CHECK(ds.image_path(ds.meta.find("a.png")) == dir / "0/a.png");
  CHECK(ds.image_path(ds.meta.find("c.png")) == dir / "images/c.png");
  CHECK(ds.missing_images() == 1);
  const Dataset frontal = load_dataset(dir.path(), {.frontal_only = true}, quiet);
  CHECK(frontal.size() == 2);  // PA and AP_horizontal; L dropped
  const auto j = data_info_json(compute_data_info(ds, make_splits(ds, {}, quiet)));
  CHECK(j["format"] == "padchest");
  CHECK(j["unmapped_labels"]["aortic elongation"] == 1);
  CHECK(j["views"]["L"] == 1);
}

TEST_CASE("RSNA Pneumonia: several boxes per image, Target 0 rows, both findings, bad Target") {
  test::TempDir dir("rsna");
  Report quiet(Report::Echo::Off);
  test::write_text(dir / "stage_2_train_labels.csv",
                   "patientId,x,y,width,height,Target\n"
                   "0004cfab-14fd-4e49-80ba-63a80b6bddd6,,,,,0\n"
                   "00436515-870c-4b36-a041-de91049b9ab4,264.0,152.0,213.0,379.0,1\n"
                   "00436515-870c-4b36-a041-de91049b9ab4,562.0,152.0,256.0,453.0,1\n"
                   "00322d4d-1c29-4943-afc9-b6754be640eb,,,,,2\n"
                   "003d8fa0-6bf1-40ed-b54c-ac657f8495c5,,,,,1\n");
  touch(dir / "stage_2_train_images/0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm");
  CHECK(detect_format(dir.path()) == "rsna");
  const Dataset ds = load_dataset(dir.path(), {}, quiet);
  REQUIRE(ds.size() == 2);
  CHECK(ds.meta.malformed_rows == 2);
  CHECK(quiet.contains(":5: malformed row skipped: Target '2'"));
  CHECK(quiet.contains(":6: malformed row skipped: Target 1 without a box"));
  const std::string pos = "00436515-870c-4b36-a041-de91049b9ab4.dcm", neg = "0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm";
  CHECK(positive(ds, pos, finding::kPneumonia));
  CHECK(positive(ds, pos, finding::kLungOpacity));
  CHECK(negative(ds, neg, finding::kPneumonia));
  CHECK(missing(ds, neg, finding::kEffusion));
  REQUIRE(by_name(ds, pos).boxes.size() == 4);  // two boxes, each under both findings
  CHECK(by_name(ds, pos).boxes[0].x == 264.f);
  CHECK(by_name(ds, pos).boxes[0].h == 379.f);
  CHECK(ds.missing_images() == 1);
  const DataInfo info = compute_data_info(ds, make_splits(ds, {}, quiet));
  CHECK(info.boxes == 2);  // rectangles, not (rectangle, finding) pairs
  CHECK(info.box_labels[finding::kPneumonia] == 2);
  CHECK(info.box_labels[finding::kLungOpacity] == 2);
  test::write_text(dir / "stage_2_train_labels.csv", "patientId,x,y,width,height\n");
  CHECK_THROWS_WITH_AS(load_rsna(dir.path(), {}, quiet), doctest::Contains("no column 'Target'"), cxr::Error);
}

TEST_CASE("VinDr-CXR: three radiologists fused by majority, fractures merged, one reader's boxes, test consensus") {
  test::TempDir dir("vindr");
  Report quiet(Report::Echo::Off);
  const std::string classes =
      "Aortic enlargement,Atelectasis,Calcification,Cardiomegaly,Clavicle fracture,Consolidation,Edema,Emphysema,"
      "Enlarged PA,ILD,Infiltration,Lung Opacity,Lung cavity,Lung cyst,Mediastinal shift,Nodule/Mass,Pleural effusion,"
      "Pleural thickening,Pneumothorax,Pulmonary fibrosis,Rib fracture,Other lesion,COPD,Lung tumor,Pneumonia,"
      "Tuberculosis,Other diseases,No finding";
  // columns: 0 Aortic, 1 Atelectasis, 2 Calc, 3 Cardiomegaly, 4 Clavicle fx, ... 16 Pleural effusion, 20 Rib fx, 27 No finding
  auto row = [](const std::string& id, const std::string& rad, std::set<int> on) {
    std::string s = id + "," + rad;
    for (int c = 0; c < 28; ++c) s += on.count(c) ? ",1" : ",0";
    return s + "\n";
  };
  test::write_text(dir / "image_labels_train.csv",
                   "image_id,rad_id," + classes + "\n" + row("img1", "R9", {3, 16, 0}) + row("img1", "R10", {3, 0}) +
                       row("img1", "R11", {16, 4}) + row("img2", "R1", {27}) + row("img2", "R2", {20}) +
                       row("img2", "R3", {27}));
  test::write_text(dir / "annotations_train.csv",
                   "image_id,rad_id,class_name,x_min,y_min,x_max,y_max\n"
                   "img1,R9,Cardiomegaly,100,200,300,260\n"
                   "img1,R10,Cardiomegaly,110,190,310,250\n"
                   "img1,R9,Aortic enlargement,1,2,3,4\n"
                   "img2,R1,No finding,,,,\n"
                   "img1,R11,Pleural effusion,10,10,5,5\n");
  std::string consensus = "img3";
  for (int c = 0; c < 28; ++c) consensus += c == 5 ? ",1" : ",0";
  test::write_text(dir / "image_labels_test.csv", "image_id," + classes + "\n" + consensus + "\n");
  touch(dir / "train/img1.dicom");
  CHECK(detect_format(dir.path()) == "vindr");
  const Dataset ds = load_dataset(dir.path(), {}, quiet);
  REQUIRE(ds.size() == 3);
  CHECK(positive(ds, "train/img1", finding::kCardiomegaly));     // 2 of 3
  CHECK(negative(ds, "train/img1", finding::kEffusion) == false);  // 2 of 3 too
  CHECK(positive(ds, "train/img1", finding::kEffusion));
  CHECK(negative(ds, "train/img1", finding::kFracture));        // 1 of 3 (clavicle)
  CHECK(negative(ds, "train/img2", finding::kFracture));        // 1 of 3 (rib)
  CHECK(missing(ds, "train/img1", finding::kNodule));           // Nodule/Mass is unmapped
  CHECK(positive(ds, "test/img3", finding::kConsolidation));   // column 5 of the consensus row
  CHECK(ds.meta.unmapped_labels.at("Aortic enlargement") == 1);
  // Boxes: R10 < R9 in rad_id string order: R10's Cardiomegaly box; the bad effusion box skipped.
  REQUIRE(by_name(ds, "train/img1").boxes.size() == 1);
  CHECK(by_name(ds, "train/img1").boxes[0].x == 110.f);
  CHECK(by_name(ds, "train/img1").boxes[0].w == 200.f);
  CHECK(quiet.contains("annotations_train.csv:6: box skipped: bad box"));
  CHECK(ds.image_path(ds.meta.find("train/img1")) == dir / "train/img1.dicom");
  const Splits s = make_splits(ds, {.val_fraction = 0.5}, quiet);
  CHECK(s.test.size() == 1);
  CHECK(s.train.size() + s.val.size() == 2);
}

TEST_CASE("class folders: NORMAL / PNEUMONIA, patients from person<N>_, the folders' split, an unknown class") {
  test::TempDir dir("folders");
  Report quiet(Report::Echo::Off);
  write_png(dir / "train/NORMAL/IM-0115-0001.png", 16, 16, 8);
  write_png(dir / "train/PNEUMONIA/person1_bacteria_1.png", 16, 16, 8);
  write_png(dir / "train/PNEUMONIA/person1_virus_6.png", 16, 16, 8);
  write_png(dir / "train/PNEUMONIA/person2_bacteria_3.png", 16, 16, 8);
  write_png(dir / "test/NORMAL/IM-0001-0001.png", 16, 16, 8);
  write_png(dir / "test/PNEUMONIA/person100_bacteria_475.png", 16, 16, 8);
  test::write_text(dir / "train/NORMAL/notes.txt", "not an image");
  CHECK(detect_format(dir.path()) == "folders");
  const Dataset ds = load_dataset(dir.path(), {}, quiet);
  REQUIRE(ds.size() == 6);
  CHECK(ds.findings == bit(finding::kPneumonia));
  CHECK(negative(ds, "train/NORMAL/IM-0115-0001.png", finding::kPneumonia));
  CHECK(positive(ds, "train/PNEUMONIA/person1_bacteria_1.png", finding::kPneumonia));
  CHECK(missing(ds, "train/PNEUMONIA/person1_bacteria_1.png", finding::kEffusion));
  CHECK(by_name(ds, "train/PNEUMONIA/person1_bacteria_1.png").patient_id ==
        by_name(ds, "train/PNEUMONIA/person1_virus_6.png").patient_id);
  CHECK(by_name(ds, "train/PNEUMONIA/person1_bacteria_1.png").patient_id !=
        by_name(ds, "train/PNEUMONIA/person2_bacteria_3.png").patient_id);
  const Splits s = make_splits(ds, {.val_fraction = 0.34}, quiet);
  CHECK(s.test.size() == 2);
  CHECK(s.train.size() + s.val.size() == 4);
  CHECK(patient_disjoint(ds, s));
  write_png(dir / "train/COVID-19/covid_1.png", 16, 16, 8);
  const std::string e = error_of([&] { load_dataset(dir.path(), {}, quiet); });
  CHECK(e.find(dir / "train/COVID-19") != std::string::npos);
  CHECK(e.find("no finding cxr knows") != std::string::npos);
}

}  // TEST_SUITE
