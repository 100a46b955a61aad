// Several data sets in one label space: the loader's label masks, the union of an NIH set and
// a class-folder set, per-set sampling weights, and the metrics over present labels only.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "data/class_balance.h"
#include "data/data_sources.h"
#include "data/label_space.h"
#include "data/loader.h"
#include "eval/metrics.h"
#include "tensor/error.h"
#include "tests/data/data_test_util.h"

using namespace cxr;
using namespace cxr::data;
namespace fs = std::filesystem;

namespace {

void write_png8(const std::string& path, int size, int value) {
  fs::create_directories(fs::path(path).parent_path());
  std::vector<std::uint16_t> px(static_cast<std::size_t>(size) * size, static_cast<std::uint16_t>(value));
  test::write_bytes(path, test::encode_png(px, size, size, 1, 8));
}

// DIR/{train,test}/{NORMAL,PNEUMONIA}/personN_*.png: 12 patients, one image each.
void write_pediatric(const std::string& dir) {
  for (int p = 0; p < 12; ++p) {
    const std::string split = p < 9 ? "train" : "test";
    const std::string cls = p % 2 ? "PNEUMONIA" : "NORMAL";
    write_png8(dir + "/" + split + "/" + cls + "/person" + std::to_string(p) + "_x.png", 24, 40 + 10 * p);
  }
}

std::vector<std::int64_t> all_indices(const Dataset& ds) {
  std::vector<std::int64_t> v;
  for (std::int64_t i = 0; i < ds.size(); ++i) v.push_back(i);
  return v;
}

}  // namespace

TEST_SUITE("data") {

TEST_CASE("loader: an NIH set in the NIH space has no label mask and today's labels") {
  Report quiet(Report::Echo::Off);
  const Dataset ds = load_dataset(test::small_synth_dir(), {}, quiet);
  CHECK(ds.format == "nih");
  LoaderOptions o;
  o.batch_size = 16;
  o.image_size = 32;
  DataLoader plain(ds, all_indices(ds), o, quiet);
  o.label_findings = LabelSpace::nih().findings();
  DataLoader spaced(ds, all_indices(ds), o, quiet);
  CHECK_FALSE(spaced.has_missing_labels());
  plain.start_epoch(0);
  const Batch* a = plain.next();
  REQUIRE(a != nullptr);
  const std::vector<float> la = a->labels.to_vector(), ba = a->boxes.to_vector(), ma = a->box_mask.to_vector();
  spaced.start_epoch(0);
  const Batch* b = spaced.next();
  REQUIRE(b != nullptr);
  CHECK_FALSE(b->label_mask.defined());
  CHECK(b->label_count == 16.0 * 14);
  CHECK(b->labels.to_vector() == la);
  CHECK(b->boxes.to_vector() == ba);
  CHECK(b->box_mask.to_vector() == ma);
}

TEST_CASE("several sets: the union of findings, labels a set lacks are missing, the splits kept per set") {
  test::TempDir dir("sources");
  write_pediatric(dir / "peds");
  Report quiet(Report::Echo::Off);
  const DataSets sets = load_data_sets({parse_data_source(test::small_synth_dir()), parse_data_source(dir / "peds:3")},
                                       {}, {.val_fraction = 0.2, .seed = 3}, quiet);
  const Dataset& ds = sets.dataset;
  REQUIRE(sets.first.size() == 3);
  const std::int64_t nih = sets.first[1];
  CHECK(ds.size() == nih + 12);
  CHECK(ds.format == "nih+folders");
  CHECK(ds.findings == kNihFindings);  // Pneumonia is an NIH finding already
  CHECK(sets.source_of(0) == 0);
  CHECK(sets.source_of(nih) == 1);
  // A pediatric image has Pneumonia only: Effusion is missing there, present on NIH images.
  const auto peds = nih + 1;
  CHECK(ds.record(peds).name.rfind("2:train/", 0) == 0);
  CHECK(ds.present(peds, finding::kPneumonia));
  CHECK_FALSE(ds.present(peds, finding::kEffusion));
  CHECK(ds.present(0, finding::kEffusion));
  // The splits: each set's own, concatenated, patient-disjoint; the pediatric test folder is test.
  std::int64_t peds_test = 0;
  for (auto i : sets.splits.test) peds_test += i >= nih;
  CHECK(peds_test == 3);
  CHECK(patient_disjoint(ds, sets.splits));
  for (auto i : sets.splits.train) CHECK(ds.record(i).patient_id >= 0);

  // The loader in the union space: a label mask, 0 where the set has no label.
  const LabelSpace space = choose_label_space(sets.findings);
  CHECK(space == LabelSpace::nih());
  LoaderOptions o;
  o.batch_size = 4;
  o.image_size = 24;
  o.label_findings = space.findings();
  DataLoader loader(ds, {0, 1, peds, peds + 1}, o, quiet);
  CHECK(loader.has_missing_labels());
  loader.start_epoch(0);
  const Batch* b = loader.next();
  REQUIRE(b != nullptr);
  REQUIRE(b->label_mask.defined());
  const std::vector<float> m = b->label_mask.to_vector(), y = b->labels.to_vector();
  double present = 0;
  for (int k = 0; k < 14; ++k) {
    CHECK(m[static_cast<std::size_t>(k)] == 1.f);            // NIH image: every label
    CHECK(m[static_cast<std::size_t>(2 * 14 + k)] == (k == finding::kPneumonia ? 1.f : 0.f));
    for (int r = 0; r < 4; ++r) present += m[static_cast<std::size_t>(r * 14 + k)];
  }
  CHECK(b->label_count == present);
  CHECK(b->label_count == 2 * 14 + 2);
  CHECK(y[static_cast<std::size_t>(2 * 14 + finding::kPneumonia)] == (has_label(ds.record(peds).labels, finding::kPneumonia) ? 1.f : 0.f));

  // Positive weights count negatives among the present labels only.
  const ClassCounts c = count_classes(ds, {0, 1, peds, peds + 1});
  CHECK(c.present[finding::kEffusion] == 2);
  CHECK(c.present[finding::kPneumonia] == 4);

  // Sampling weights: w_s / n_s (the NIH set counts as 1).
  const std::vector<DataSource> sources = {parse_data_source(test::small_synth_dir()), parse_data_source(dir / "peds:3")};
  CHECK(sources[1].weight == 3.0);
  CHECK(sources[1].dir == dir / "peds");
  const std::vector<double> w = source_sample_weights(sets, sources, sets.splits.train);
  REQUIRE(w.size() == sets.splits.train.size());
  double w_nih = 0, w_peds = 0;
  for (std::size_t k = 0; k < w.size(); ++k) (sets.splits.train[k] >= nih ? w_peds : w_nih) += w[k];
  CHECK(w_nih == doctest::Approx(1.0));
  CHECK(w_peds == doctest::Approx(3.0));
  CHECK(source_sample_weights(sets, {{"a", 0}, {"b", 0}}, sets.splits.train).empty());
  CHECK_THROWS_WITH_AS(parse_data_source("dir:-2"), doctest::Contains("positive"), cxr::Error);
}

TEST_CASE("metrics: a missing (NaN) label leaves that sample out of its class; all missing is undefined") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // 5 samples x 2 classes. Class 0 present everywhere; class 1 missing on samples 3 and 4.
  const std::vector<float> scores = {0.9f, 0.8f, 0.2f, 0.1f, 0.7f, 0.3f, 0.4f, 0.99f, 0.1f, 0.95f};
  const std::vector<float> labels = {1, 1, 0, 0, 1, 0, 0, nan, 0, nan};
  const ClassificationReport r = evaluate_classification(scores, labels, 2, {"a", "b"});
  // class 1 over samples 0..2 only: scores .8 (+), .2 (-), .3 (-): AUROC 1 (the 0.99 and 0.95 of
  // the missing samples would otherwise rank above the positive).
  CHECK(r.classes[1].auc == doctest::Approx(1.0));
  CHECK(r.classes[1].missing == 2);
  CHECK(r.classes[1].positives == 1);
  CHECK(r.classes[1].negatives == 2);
  CHECK(r.classes[0].missing == 0);
  const std::vector<double> t = select_thresholds(scores, labels, 2, ThresholdRule::youden);
  CHECK(t[1] == doctest::Approx(0.8));
  const std::vector<float> none = {0.9f, nan, 0.2f, nan, 0.7f, nan, 0.4f, nan, 0.1f, nan};
  const ClassificationReport u = evaluate_classification(scores, none, 2, {"a", "b"});
  CHECK(std::isnan(u.classes[1].auc));
  CHECK(u.undefined == std::vector<std::string>{"b"});
  CHECK(u.mean_auc == doctest::Approx(u.classes[0].auc));
}

}  // TEST_SUITE
