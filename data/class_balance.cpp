// Class counts and weights.
#include "data/class_balance.h"

namespace cxr::data {

ClassCounts count_classes(const Dataset& ds, const std::vector<std::int64_t>& indices) {
  ClassCounts c;
  for (auto i : indices) {
    const LabelMask m = ds.record(i).labels;
    ++c.images;
    if (m == 0) ++c.no_finding;
    for (int g = 0; g < kNumFindings; ++g) {
      const bool present = ds.present(i, g);
      c.present[static_cast<std::size_t>(g)] += present;
      c.positives[static_cast<std::size_t>(g)] += present && has_label(m, g);
    }
  }
  return c;
}

std::vector<float> positive_weights(const ClassCounts& c, const std::vector<int>& label_findings) {
  std::vector<float> w;
  for (int g : label_findings) {
    const auto pos = g >= 0 ? c.positives[static_cast<std::size_t>(g)] : 0;
    const auto present = g >= 0 ? c.present[static_cast<std::size_t>(g)] : 0;
    w.push_back(pos > 0 ? static_cast<float>(present - pos) / static_cast<float>(pos) : 1.f);
  }
  return w;
}

std::array<float, kNumClasses> positive_weights(const ClassCounts& c) {
  std::array<float, kNumClasses> w{};
  for (std::size_t k = 0; k < w.size(); ++k) {
    const auto pos = c.positives[k];
    w[k] = pos > 0 ? static_cast<float>(c.present[k] - pos) / static_cast<float>(pos) : 1.f;
  }
  return w;
}

std::vector<double> sampling_weights(const Dataset& ds, const std::vector<std::int64_t>& indices) {
  const ClassCounts c = count_classes(ds, indices);
  std::vector<double> w;
  w.reserve(indices.size());
  for (auto i : indices) {
    const LabelMask m = ds.record(i).labels;
    if (m == 0) {
      w.push_back(1.0 / static_cast<double>(c.no_finding));
      continue;
    }
    double sum = 0;
    int n = 0;
    for (int k = 0; k < kNumFindings; ++k)
      if (has_label(m, k)) {
        sum += 1.0 / static_cast<double>(c.positives[static_cast<std::size_t>(k)]);
        ++n;
      }
    w.push_back(sum / n);
  }
  return w;
}

}  // namespace cxr::data
