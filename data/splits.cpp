// Patient-wise splits: official lists or a seeded shuffle of patients.
#include "data/splits.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "data/random.h"
#include "tensor/error.h"

namespace cxr::data {

namespace {

// The sorted distinct patients of `indices`, shuffled with `seed`.
std::vector<std::int64_t> shuffled_patients(const Dataset& ds, const std::vector<std::int64_t>& indices,
                                            std::uint64_t seed) {
  std::vector<std::int64_t> patients;
  for (auto i : indices) patients.push_back(ds.record(i).patient_id);
  std::sort(patients.begin(), patients.end());
  patients.erase(std::unique(patients.begin(), patients.end()), patients.end());
  Rng rng(hash_seed(seed, 0x5B17));
  shuffle(patients.data(), patients.size(), rng);
  return patients;
}

std::size_t fraction_of(std::size_t n, double fraction) {
  return static_cast<std::size_t>(std::llround(static_cast<double>(n) * fraction));
}

// Moves the images of `chosen` patients from `from` into `to`, keeping both sorted.
void move_patients(const Dataset& ds, const std::unordered_set<std::int64_t>& chosen,
                   std::vector<std::int64_t>& from, std::vector<std::int64_t>& to) {
  std::vector<std::int64_t> keep;
  for (auto i : from) (chosen.count(ds.record(i).patient_id) ? to : keep).push_back(i);
  from = std::move(keep);
  std::sort(to.begin(), to.end());
}

}  // namespace

Splits make_splits(const Dataset& ds, const SplitOptions& opt, Report& report) {
  CXR_CHECK(opt.val_fraction >= 0 && opt.val_fraction < 1 && opt.test_fraction >= 0 && opt.test_fraction < 1,
            "split fractions must lie in [0, 1): val ", opt.val_fraction, ", test ", opt.test_fraction);
  Splits s;
  std::vector<std::int64_t> train_val;
  bool per_record = false;  // the set's own split, in its records (CheXpert, MIMIC, VinDr, folders)
  for (std::int64_t i = 0; i < ds.size() && opt.use_official && !per_record; ++i) per_record = ds.record(i).split >= 0;
  if (per_record) {
    s.source = "the set's own split";
    bool has_val = false;
    for (std::int64_t i = 0; i < ds.size(); ++i) has_val |= ds.record(i).split == 1;
    for (std::int64_t i = 0; i < ds.size(); ++i) {
      const std::int8_t w = ds.record(i).split;
      if (w == 0) train_val.push_back(i);
      else if (w == 1) s.val.push_back(i);
      else if (w == 2) s.test.push_back(i);
      else ++s.unlisted;
    }
    if (has_val) {
      s.train = std::move(train_val);
      std::string why;
      if (!patient_disjoint(ds, s, &why)) report.warn("the set's own split is not patient-disjoint: " + why);
      return s;
    }
    s.source = "the set's own split, validation carved out by patient";
  }
  const bool official = !per_record && opt.use_official && ds.train_val_list && ds.test_list;
  if (opt.use_official && (ds.train_val_list.has_value() != ds.test_list.has_value()))
    report.warn("only one of train_val_list.txt and test_list.txt exists in " + ds.root +
                ": using a seeded patient-wise split instead");
  if (official) {
    s.source = "official lists";
    std::vector<char> where(static_cast<std::size_t>(ds.size()), 0);  // 1 train_val, 2 test
    int not_in_table = 0;
    for (const auto* list : {&*ds.train_val_list, &*ds.test_list}) {
      const char tag = list == &*ds.train_val_list ? 1 : 2;
      for (const auto& name : *list) {
        const auto i = ds.meta.find(name);
        if (i < 0) ++not_in_table;
        else where[static_cast<std::size_t>(i)] = tag;
      }
    }
    if (not_in_table > 0)
      report.warn(detail::concat(not_in_table, " images of the split lists are not in ", ds.data_entry_file,
                                 " (ignored)"));
    for (std::int64_t i = 0; i < ds.size(); ++i) {
      const char w = where[static_cast<std::size_t>(i)];
      if (w == 1) train_val.push_back(i);
      else if (w == 2) s.test.push_back(i);
      else ++s.unlisted;
    }
    if (s.unlisted > 0)
      report.warn(detail::concat(s.unlisted, " images are in neither split list (left out)"));
  } else if (!per_record) {
    s.source = "seeded patient-wise split";
    std::vector<std::int64_t> all(static_cast<std::size_t>(ds.size()));
    for (std::int64_t i = 0; i < ds.size(); ++i) all[static_cast<std::size_t>(i)] = i;
    const auto patients = shuffled_patients(ds, all, opt.seed);
    const std::unordered_set<std::int64_t> test_patients(
        patients.begin(), patients.begin() + static_cast<std::ptrdiff_t>(fraction_of(patients.size(), opt.test_fraction)));
    train_val = std::move(all);
    move_patients(ds, test_patients, train_val, s.test);
  }
  const auto patients = shuffled_patients(ds, train_val, hash_seed(opt.seed, 1));
  const std::unordered_set<std::int64_t> val_patients(
      patients.begin(), patients.begin() + static_cast<std::ptrdiff_t>(fraction_of(patients.size(), opt.val_fraction)));
  s.train = std::move(train_val);
  move_patients(ds, val_patients, s.train, s.val);

  std::string why;
  if (!patient_disjoint(ds, s, &why)) report.warn("the split lists are not patient-disjoint: " + why);
  return s;
}

bool patient_disjoint(const Dataset& ds, const Splits& s, std::string* why) {
  std::unordered_map<std::int64_t, int> owner;
  const std::vector<std::int64_t>* lists[3] = {&s.train, &s.val, &s.test};
  const char* names[3] = {"train", "val", "test"};
  for (int k = 0; k < 3; ++k) {
    for (auto i : *lists[k]) {
      const auto p = ds.record(i).patient_id;
      const auto [it, inserted] = owner.emplace(p, k);
      if (!inserted && it->second != k) {
        if (why) *why = detail::concat("patient ", p, " is in ", names[it->second], " and ", names[k]);
        return false;
      }
    }
  }
  return true;
}

const std::vector<std::int64_t>& split_by_name(const Splits& s, const std::string& name) {
  if (name == "train") return s.train;
  if (name == "val") return s.val;
  if (name == "test") return s.test;
  CXR_FAIL("unknown split '", name, "': expected train, val or test");
}

}  // namespace cxr::data
