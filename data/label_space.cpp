// LabelSpace: output order <-> global finding index.
#include "data/label_space.h"

namespace cxr::data {

LabelSpace LabelSpace::nih() { return of(kNihFindings); }

LabelSpace LabelSpace::of(LabelMask findings) {
  LabelSpace s;
  for (int g = 0; g < kNumFindings; ++g)
    if (has_label(findings, g)) {
      s.findings_.push_back(g);
      s.names_.emplace_back(kFindingNames[static_cast<std::size_t>(g)]);
    }
  return s;
}

LabelSpace LabelSpace::from_names(const std::vector<std::string>& names) {
  LabelSpace s;
  for (const auto& n : names) {
    s.findings_.push_back(finding_index(n));
    s.names_.push_back(n);
  }
  return s;
}

int LabelSpace::index_of(int g) const {
  for (std::size_t k = 0; k < findings_.size(); ++k)
    if (findings_[k] == g && g >= 0) return static_cast<int>(k);
  return -1;
}

LabelMask LabelSpace::mask() const {
  LabelMask m = 0;
  for (int g : findings_)
    if (g >= 0) m |= bit(g);
  return m;
}

LabelSpace choose_label_space(const std::vector<LabelMask>& set_findings) {
  LabelMask m = 0;
  for (LabelMask f : set_findings) m |= f;
  return LabelSpace::of(m);
}

}  // namespace cxr::data
