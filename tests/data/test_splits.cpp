// Splits: official lists with validation carved out by patient, seeded patient-wise split
// otherwise; no patient in two splits; deterministic in the seed.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "data/class_balance.h"
#include "data/dataset.h"
#include "data/splits.h"
#include "tensor/error.h"
#include "tests/data/data_test_util.h"

using namespace cxr;
using namespace cxr::data;

namespace {

// n patients with 1..4 images each, labels cycling.
Dataset in_memory(int patients) {
  Dataset ds;
  for (int p = 1; p <= patients; ++p)
    for (int k = 0; k < 1 + p % 4; ++k) {
      ImageRecord r;
      r.name = std::to_string(p) + "_" + std::to_string(k) + ".png";
      r.patient_id = p;
      r.labels = static_cast<LabelMask>((p + k) % 5 == 0 ? 0 : 1u << ((p + k) % kNumClasses));
      ds.add(r, "");
    }
  return ds;
}

std::size_t total(const Splits& s) { return s.train.size() + s.val.size() + s.test.size(); }

}  // namespace

TEST_SUITE("data") {

TEST_CASE("seeded patient-wise split: disjoint, complete, sized, repeatable") {
  const Dataset ds = in_memory(500);
  Report report(Report::Echo::Off);
  SplitOptions o;
  o.seed = 3;
  const Splits a = make_splits(ds, o, report);
  CHECK(a.source == "seeded patient-wise split");
  CHECK(total(a) == static_cast<std::size_t>(ds.size()));
  std::string why;
  CHECK_MESSAGE(patient_disjoint(ds, a, &why), why);
  std::set<std::int64_t> test_patients;
  for (auto i : a.test) test_patients.insert(ds.record(i).patient_id);
  CHECK(test_patients.size() == 100);  // 20 % of 500 patients
  const Splits b = make_splits(ds, o, report);
  CHECK(a.train == b.train);
  CHECK(a.val == b.val);
  CHECK(a.test == b.test);
  o.seed = 4;
  CHECK(make_splits(ds, o, report).test != a.test);
  // A split that shares a patient is detected.
  Splits bad = a;
  bad.val.push_back(a.train.front());
  CHECK_FALSE(patient_disjoint(ds, bad, &why));
  CHECK(why.find("is in train and val") != std::string::npos);
}

TEST_CASE("official lists: test as listed, validation carved out of train_val by patient") {
  const std::string& dir = test::small_synth_dir();
  Report report(Report::Echo::Off);
  const Dataset ds = Dataset::load(dir, report);
  REQUIRE(ds.train_val_list.has_value());
  REQUIRE(ds.test_list.has_value());
  SplitOptions o;
  o.val_fraction = 0.25;
  const Splits s = make_splits(ds, o, report);
  CHECK(s.source == "official lists");
  CHECK(s.test.size() == ds.test_list->size());
  CHECK(s.train.size() + s.val.size() == ds.train_val_list->size());
  CHECK(!s.val.empty());
  CHECK(s.unlisted == 0);
  std::string why;
  CHECK_MESSAGE(patient_disjoint(ds, s, &why), why);
  CHECK(&split_by_name(s, "val") == &s.val);
  CHECK_THROWS_AS(split_by_name(s, "dev"), Error);
}

TEST_CASE("the real metadata: seeded split of 30,805 patients is patient-disjoint") {
  const auto nih = test::nih_dir();
  if (!nih) {
    MESSAGE("skipped: ../shared/data/nih is absent");
    return;
  }
  Report report(Report::Echo::Off);
  const Dataset ds = Dataset::load(*nih, report);
  // The official train_val_list.txt / test_list.txt are not in ../shared/data/nih: seeded split.
  CHECK_FALSE(ds.train_val_list.has_value());
  const Splits s = make_splits(ds, {}, report);
  CHECK(s.source == "seeded patient-wise split");
  CHECK(total(s) == 112120);
  std::string why;
  CHECK_MESSAGE(patient_disjoint(ds, s, &why), why);
  CHECK(s.test.size() > 15000);
  CHECK(s.test.size() < 30000);
}

TEST_CASE("class balance: positive weights and sampling weights from the training split") {
  const Dataset ds = in_memory(50);
  std::vector<std::int64_t> all;
  for (std::int64_t i = 0; i < ds.size(); ++i) all.push_back(i);
  const ClassCounts c = count_classes(ds, all);
  CHECK(c.images == ds.size());
  std::int64_t sum = c.no_finding;
  for (auto p : c.positives) sum += p;
  CHECK(sum == ds.size());  // one label or none per image here
  const auto w = positive_weights(c);
  for (int k = 0; k < kNumClasses; ++k) {
    const auto pos = c.positives[static_cast<std::size_t>(k)];
    if (pos > 0) CHECK(w[static_cast<std::size_t>(k)] == doctest::Approx(double(ds.size() - pos) / double(pos)));
    else CHECK(w[static_cast<std::size_t>(k)] == 1.f);
  }
  // Sampling weights give every class the same total mass.
  const auto sw = sampling_weights(ds, all);
  std::array<double, kNumClasses> mass{};
  for (std::size_t i = 0; i < all.size(); ++i)
    for (int k = 0; k < kNumClasses; ++k)
      if (has_label(ds.record(all[i]).labels, k)) mass[static_cast<std::size_t>(k)] += sw[i];
  for (int k = 0; k < kNumClasses; ++k)
    if (c.positives[static_cast<std::size_t>(k)] > 0) CHECK(mass[static_cast<std::size_t>(k)] == doctest::Approx(1.0));
}

}  // TEST_SUITE
